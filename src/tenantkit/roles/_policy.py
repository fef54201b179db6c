"""Roles, actions and the policy: the one place that says who may do what.

:class:`Permissions` is the policy. It answers the four questions every service asks: may this role perform
an action (:meth:`~Permissions.can`), may it give a role to someone (:meth:`~Permissions.can_grant`), may
it change or remove a member holding a role (:meth:`~Permissions.can_manage`), and, for each, the
``require_*`` form that raises the typed refusal. The services hold no rule of their own.

OWNER, ADMIN and MEMBER are the **ranks**: they carry the invariants (the last OWNER, no reaching above
one's own rank). A product's own roles ("physician", "billing") are :class:`CustomRole`s inside ADMIN or
MEMBER, adding permissions from the host's :class:`PermissionRegistry` on top of the rank's. Whatever grants
anything (a role, a role's definition, an API key's scopes) passes one rule,
:meth:`Permissions.require_may_grant`: the actor must hold every permission it gives.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantkit._errors import (
    InvalidInputError,
    PermissionDeniedError,
    PermissionEscalationError,
    RoleEscalationError,
    UnknownPermissionError,
)


class Role(str, enum.Enum):
    """A member's role in an organization, ordered by :attr:`rank` (OWNER > ADMIN > MEMBER)."""

    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"

    @property
    def rank(self) -> int:
        """The role's height: :meth:`Permissions.can_grant` lets a role grant roles up to its own rank."""
        return _RANKS[self]

    @classmethod
    def parse(cls, value: Role | str) -> Role:
        """Return the role named by ``value`` (case-insensitive), or raise :class:`InvalidInputError`."""
        if isinstance(value, Role):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().upper())
            except ValueError:
                pass
        known = ", ".join(role.value for role in cls)
        raise InvalidInputError("role", f"unknown role {value!r}; expected one of {known}")

    def __str__(self) -> str:
        return self.value


_RANKS: Mapping[Role, int] = {Role.OWNER: 30, Role.ADMIN: 20, Role.MEMBER: 10}


class Action(str, enum.Enum):
    """The built-in actions of the permission table. Hosts may add their own as plain strings."""

    READ_MEMBERS = "members:read"
    INVITE_MEMBERS = "members:invite"
    CHANGE_ROLES = "members:change_role"
    REMOVE_MEMBERS = "members:remove"
    READ_API_KEYS = "api_keys:read"
    MANAGE_API_KEYS = "api_keys:manage"
    READ_INVITATIONS = "invitations:read"
    MANAGE_INVITATIONS = "invitations:manage"
    DELETE_ORGANIZATION = "organization:delete"
    TRANSFER_OWNERSHIP = "organization:transfer_ownership"
    READ_AUDIT = "audit:read"
    READ_SETTINGS = "settings:read"
    MANAGE_SETTINGS = "settings:manage"
    MANAGE_ROLES = "roles:manage"
    MANAGE_WEBHOOKS = "webhooks:manage"
    READ_WEBHOOKS = "webhooks:read"
    READ_DEPARTMENTS = "departments:read"
    MANAGE_DEPARTMENTS = "departments:manage"
    MANAGE_DOMAINS = "domains:manage"
    MANAGE_SSO = "sso:manage"

    def __str__(self) -> str:
        return self.value


_MEMBER_ACTIONS = frozenset(
    {Action.READ_MEMBERS.value, Action.READ_API_KEYS.value, Action.READ_DEPARTMENTS.value}
)
_ADMIN_ACTIONS = _MEMBER_ACTIONS | {
    Action.INVITE_MEMBERS.value,
    Action.CHANGE_ROLES.value,
    Action.REMOVE_MEMBERS.value,
    Action.MANAGE_API_KEYS.value,
    Action.READ_INVITATIONS.value,
    Action.MANAGE_INVITATIONS.value,
    Action.READ_AUDIT.value,
    Action.READ_SETTINGS.value,
    Action.MANAGE_WEBHOOKS.value,
    Action.READ_WEBHOOKS.value,
    Action.MANAGE_DEPARTMENTS.value,
    Action.MANAGE_DOMAINS.value,
    Action.MANAGE_SSO.value,
}
_OWNER_ACTIONS = _ADMIN_ACTIONS | {
    Action.DELETE_ORGANIZATION.value,
    Action.TRANSFER_OWNERSHIP.value,
    Action.MANAGE_SETTINGS.value,
    Action.MANAGE_ROLES.value,
}

OWNER_ONLY_ACTIONS: frozenset[str] = frozenset(
    {
        Action.DELETE_ORGANIZATION.value,
        Action.TRANSFER_OWNERSHIP.value,
    }
)
"""Actions no custom role may carry: only an OWNER (a rank) deletes the organization or hands it over."""

DEFAULT_PERMISSIONS: Mapping[Role, frozenset[str]] = {
    Role.OWNER: _OWNER_ACTIONS,
    Role.ADMIN: _ADMIN_ACTIONS,
    Role.MEMBER: _MEMBER_ACTIONS,
}


# How a refusal to manage a member words the action: "ADMIN may not remove an OWNER".
_MANAGING_VERBS: Mapping[str, str] = {
    Action.CHANGE_ROLES.value: "change the role of",
    Action.REMOVE_MEMBERS.value: "remove",
}


def _action_name(action: Action | str) -> str:
    name = action.value if isinstance(action, Action) else action
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("action", "must be a non-empty string")
    return name


_PERMISSION_NAME = re.compile(r"[a-z][a-z0-9_]*(?::[a-z0-9_*.-]+)+")
_MAX_PERMISSION_LENGTH = 100
_ROLE_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_RANK_NAMES = frozenset(role.value.lower() for role in Role)

BUILT_IN_ACTIONS: frozenset[str] = frozenset(action.value for action in Action)
"""The names of every :class:`Action`: always in a registry."""

_BUILT_IN_DESCRIPTIONS: Mapping[str, str] = {
    Action.READ_MEMBERS.value: "See the organization's members and their roles",
    Action.INVITE_MEMBERS.value: "Add members and invite people",
    Action.CHANGE_ROLES.value: "Change members' roles",
    Action.REMOVE_MEMBERS.value: "Remove members",
    Action.READ_API_KEYS.value: "See the organization's API keys (never a secret)",
    Action.MANAGE_API_KEYS.value: "Issue, rotate, revoke and delete API keys",
    Action.READ_INVITATIONS.value: "See pending invitations",
    Action.MANAGE_INVITATIONS.value: "Revoke and resend invitations",
    Action.DELETE_ORGANIZATION.value: "Delete the organization (OWNER only)",
    Action.TRANSFER_OWNERSHIP.value: "Hand the organization over (OWNER only)",
    Action.READ_AUDIT.value: "Read the audit log",
    Action.MANAGE_ROLES.value: "Create, edit and delete the organization's custom roles",
    Action.READ_SETTINGS.value: "See the organization's settings",
    Action.MANAGE_SETTINGS.value: "Change the organization's settings",
    Action.READ_WEBHOOKS.value: "See the organization's webhook endpoints and their deliveries",
    Action.MANAGE_WEBHOOKS.value: "Create, change, rotate and delete webhook endpoints; resend deliveries",
    Action.READ_DEPARTMENTS.value: "See the organization's departments and who is in them",
    Action.MANAGE_DEPARTMENTS.value: "Create, rename and delete departments and change who is in them",
    Action.MANAGE_DOMAINS.value: "Claim, verify and remove the organization's email domains",
    Action.MANAGE_SSO.value: "Create, change and delete the organization's SSO connections",
}


def is_role_key(text: str) -> bool:
    """Whether ``text`` is shaped like a custom role's key (what may be looked up at all)."""
    return bool(_ROLE_KEY.fullmatch(text)) and text not in _RANK_NAMES


def _check_permission_name(name: object, field: str) -> str:
    if (
        not isinstance(name, str)
        or len(name) > _MAX_PERMISSION_LENGTH
        or not _PERMISSION_NAME.fullmatch(name)
    ):
        raise InvalidInputError(
            field,
            f"{name!r} is not a permission name: lower-case words joined by ':' such as 'records:read' "
            f"(at most {_MAX_PERMISSION_LENGTH} characters)",
        )
    return name


class PermissionRegistry:
    """The permissions a product knows: tenantkit's built-in :class:`Action`s plus the host's own.

    A host declares it once, in code::

        registry = PermissionRegistry({
            "records:read": "Read patient records",
            "orders:sign": "Sign orders",
        })
        permissions = Permissions(registry=registry)

    With a registry declared, every name given to tenantkit (a permission check, a role's definition, an
    adapter's ``permission(...)``, an API key's scopes) must be one of it: an unknown name is refused with
    :class:`~tenantkit.errors.UnknownPermissionError`, so a typo fails loudly instead of denying (or
    granting) quietly.

    Args:
        permissions: The host's permission names, or a mapping of name to a one-line description.

    Raises:
        InvalidInputError: A name is not lower-case words joined by ``:``.

    .. versionadded:: 0.2
    """

    __slots__ = ("_descriptions",)

    def __init__(self, permissions: Mapping[str, str] | Iterable[str] = ()) -> None:
        if isinstance(permissions, str):
            raise InvalidInputError("permissions", "a list or mapping of permission names, not one string")
        described = permissions if isinstance(permissions, Mapping) else dict.fromkeys(permissions, "")
        # Every Action is in every registry; one without a description here is still declared.
        descriptions = {name: _BUILT_IN_DESCRIPTIONS.get(name, "") for name in sorted(BUILT_IN_ACTIONS)}
        for name, description in described.items():
            descriptions[_check_permission_name(name, "permissions")] = str(description)
        self._descriptions: dict[str, str] = descriptions

    @classmethod
    def _of_table(cls, names: Iterable[str]) -> PermissionRegistry:
        """The implicit registry of a table without a declared one: its names, taken as they are."""
        registry = cls()
        registry._descriptions.update(dict.fromkeys(names, ""))
        return registry

    @property
    def names(self) -> frozenset[str]:
        """Every declared permission, the built-in ones included."""
        return frozenset(self._descriptions)

    def __contains__(self, name: object) -> bool:
        return name in self._descriptions

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._descriptions))

    def __len__(self) -> int:
        return len(self._descriptions)

    def describe(self, name: str) -> str:
        """The description the host gave ``name`` (empty when none)."""
        return self._descriptions.get(name, "")

    def check(self, name: Action | str, field: str = "permission") -> str:
        """Return ``name`` if the registry declares it.

        Raises:
            UnknownPermissionError: It does not.
        """
        value = name.value if isinstance(name, Action) else name
        if value not in self._descriptions:
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(field, "must be a non-empty string")
            raise UnknownPermissionError(field, value, tuple(self._descriptions))
        return value

    def check_all(self, names: Iterable[Action | str], field: str = "permissions") -> frozenset[str]:
        """Return ``names`` as a set if the registry declares each of them.

        Raises:
            InvalidInputError: ``names`` is a bare string.
            UnknownPermissionError: One is not declared.
        """
        if isinstance(names, str):
            raise InvalidInputError(field, "a list of permission names, not one string")
        return frozenset(self.check(name, field) for name in names)

    def with_permissions(self, permissions: Mapping[str, str] | Iterable[str]) -> PermissionRegistry:
        """A registry declaring these permissions as well."""
        described = permissions if isinstance(permissions, Mapping) else dict.fromkeys(permissions, "")
        return PermissionRegistry({**self._descriptions, **described})

    def __repr__(self) -> str:
        own = sorted(self._descriptions.keys() - BUILT_IN_ACTIONS)
        return f"PermissionRegistry({own!r})"


class CustomRole(BaseModel):
    """A role of the product's own, inside a rank: the rank's permissions plus :attr:`permissions`.

    Deployment-wide roles are declared by the host in code (``Permissions(roles=[...])``) and are the same in
    every organization (``organization_id`` is ``None``); an organization's own roles are created by a member
    holding ``roles:manage`` (``kit.roles.create``) and stored in the database. :attr:`key` is the stable
    identifier memberships and invitations refer to; :attr:`name` and :attr:`description` may change.

    Raises:
        ValidationError: A malformed key, a rank of OWNER, or a permissions list that is a bare string.

    .. versionadded:: 0.2
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    key: str = Field(description="Stable identifier: lower-case letters, digits, '_', '.', '-' (<= 64).")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    rank: Role = Field(description="ADMIN or MEMBER: the rank whose invariants and permissions it extends.")
    permissions: frozenset[str] = Field(default_factory=frozenset)
    organization_id: str | None = Field(default=None, description="None for a deployment-wide role.")
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("key")
    @classmethod
    def _key_is_a_slug(cls, key: str) -> str:
        if not _ROLE_KEY.fullmatch(key) or key in _RANK_NAMES:
            raise ValueError(
                "a role key is 1 to 64 lower-case letters, digits, '_', '.' or '-', starting with a letter, "
                "and not a rank's name (owner, admin, member)"
            )
        return key

    @field_validator("rank", mode="before")
    @classmethod
    def _rank_below_owner(cls, rank: object) -> object:
        parsed = Role.parse(rank) if isinstance(rank, Role | str) else rank
        if parsed is Role.OWNER:
            raise ValueError("a custom role sits inside ADMIN or MEMBER, never OWNER")
        return parsed

    @field_validator("permissions", mode="before")
    @classmethod
    def _permissions_are_a_collection(cls, permissions: object) -> object:
        if isinstance(permissions, str):
            raise ValueError("a list of permission names, not one string")
        if isinstance(permissions, Iterable):
            return frozenset(
                permission.value if isinstance(permission, Action) else permission
                for permission in permissions
            )
        return permissions

    @property
    def deployment_wide(self) -> bool:
        """Whether the host declared it in code (the same in every organization)."""
        return self.organization_id is None


@dataclass(frozen=True, slots=True)
class EffectivePermissions:
    """What a membership holds, or what an assignment gives: a rank, an optional custom role, and the union
    of their permissions.

    .. versionadded:: 0.2
    """

    rank: Role
    custom_role: str | None
    permissions: frozenset[str]

    @property
    def label(self) -> str:
        """``MEMBER`` or ``MEMBER/physician``: how errors name it."""
        return self.rank.value if self.custom_role is None else f"{self.rank.value}/{self.custom_role}"

    def allows(self, action: Action | str) -> bool:
        """Whether these permissions include ``action``."""
        return (action.value if isinstance(action, Action) else action) in self.permissions


class Permissions:
    """The policy: which role may perform which action, grant which role or permission, manage which member.

    The default table is :data:`DEFAULT_PERMISSIONS`. Hosts extend it with :meth:`with_actions`, which
    returns a new table (tables are immutable, so one shared by threads cannot change under them)::

        permissions = Permissions().with_actions("reports:export", Role.ADMIN)

    A custom action granted to a role is granted to every role above it as well. ``roles:manage`` is the
    OWNER's by default; ``with_actions(Action.MANAGE_ROLES, Role.ADMIN)`` gives it to ADMIN as well.

    Args:
        table: Rank to actions (the default table when omitted).
        registry: The product's permissions. When given, every name tenantkit is handed must be declared
            (:class:`PermissionRegistry`); when omitted, the built-in actions and the table's own names form
            the registry of role definitions, and permission checks accept any name (an unknown one is
            simply not held) as before registries existed.
        roles: The deployment-wide custom roles, the same in every organization.

    Raises:
        UnknownPermissionError: With a registry, the table or a role names an undeclared permission.
        InvalidInputError: A role carries an OWNER-only action, or two roles share a key.

    .. versionchanged:: 0.2 ``registry`` and ``roles``.
    """

    __slots__ = ("_declared", "_registry", "_roles", "_table")

    def __init__(
        self,
        table: Mapping[Role, Iterable[Action | str]] | None = None,
        *,
        registry: PermissionRegistry | Mapping[str, str] | Iterable[str] | None = None,
        roles: Iterable[CustomRole] = (),
    ) -> None:
        source = DEFAULT_PERMISSIONS if table is None else table
        self._table: dict[Role, frozenset[str]] = {
            role: frozenset(_action_name(action) for action in source.get(role, ())) for role in Role
        }
        self._declared = registry is not None
        if registry is None:
            self._registry = PermissionRegistry._of_table(frozenset().union(*self._table.values()))
        else:
            self._registry = (
                registry if isinstance(registry, PermissionRegistry) else PermissionRegistry(registry)
            )
            for actions in self._table.values():
                self._registry.check_all(actions, "table")
        self._roles: dict[str, CustomRole] = {}
        for role in roles:
            if not isinstance(role, CustomRole):
                raise InvalidInputError("roles", f"expected CustomRole objects, not {type(role).__name__}")
            if role.organization_id is not None:
                raise InvalidInputError("roles", f"deployment role {role.key!r} must have no organization_id")
            if role.key in self._roles:
                raise InvalidInputError("roles", f"two deployment roles share the key {role.key!r}")
            self.check_role_permissions(role.permissions)
            self._roles[role.key] = role

    # -- the registry ----------------------------------------------------------------------------------

    @property
    def registry(self) -> PermissionRegistry:
        """The permissions role definitions (and, once declared, every check) are held to."""
        return self._registry

    @property
    def registry_declared(self) -> bool:
        """Whether the host declared a registry: then unknown names are refused everywhere, and API-key
        scopes are permissions the issuer must hold."""
        return self._declared

    def action_name(self, action: Action | str, field: str = "action") -> str:
        """``action``'s name, checked against the registry when one is declared.

        Raises:
            InvalidInputError: ``action`` is empty or not a string.
            UnknownPermissionError: A registry is declared and does not know it.
        """
        if isinstance(action, Action):
            return action.value
        name = _action_name(action)
        if self._declared:
            self._registry.check(name, field)
        return name

    def check_role_permissions(self, permissions: Iterable[str]) -> frozenset[str]:
        """Return the permissions a custom role may carry, or raise.

        Raises:
            UnknownPermissionError: One is not in the registry.
            InvalidInputError: One is OWNER-only (``organization:delete``,
                ``organization:transfer_ownership``).
        """
        names = frozenset(permissions)
        owner_only = sorted(names & OWNER_ONLY_ACTIONS)
        if owner_only:
            raise InvalidInputError(
                "permissions",
                f"{', '.join(owner_only)} belong to the OWNER rank and cannot be in a custom role",
            )
        return self._registry.check_all(names)

    # -- deployment-wide roles -------------------------------------------------------------------------

    @property
    def roles(self) -> Mapping[str, CustomRole]:
        """The deployment-wide custom roles, by key."""
        return dict(self._roles)

    def deployment_role(self, key: str) -> CustomRole | None:
        """The deployment-wide role ``key``, or ``None``."""
        return self._roles.get(key)

    # -- actions ---------------------------------------------------------------------------------------

    def can(self, role: Role | None, action: Action | str) -> bool:
        """Whether ``role`` may perform ``action``; ``None`` (not a member) may do nothing.

        Raises:
            UnknownPermissionError: A registry is declared and ``action`` is not in it.
        """
        name = self.action_name(action)
        if role is None:
            return False
        return name in self._table[role]

    def require(self, role: Role | None, action: Action | str) -> None:
        """Raise :class:`PermissionDeniedError` unless ``role`` may perform ``action``."""
        if not self.can(role, action):
            raise PermissionDeniedError(_action_name(action), role.value if role is not None else None)

    def effective(self, rank: Role, custom_role: CustomRole | None = None) -> EffectivePermissions:
        """What a membership of ``rank`` holding ``custom_role`` may do: the rank's actions plus the role's.

        A custom role of another rank than the membership's (which tenantkit never writes) adds nothing.
        """
        actions = self._table[rank]
        if custom_role is None:
            return EffectivePermissions(rank, None, actions)
        if custom_role.rank is not rank:
            return EffectivePermissions(rank, custom_role.key, actions)
        return EffectivePermissions(rank, custom_role.key, actions | custom_role.permissions)

    # -- granting --------------------------------------------------------------------------------------

    def can_grant(self, role: Role, granted: Role) -> bool:
        """Whether a member holding ``role`` may give ``granted`` to someone (adding, promoting, inviting).

        A role grants roles up to its own rank, so only an OWNER makes an OWNER.
        """
        return granted.rank <= role.rank

    def require_grant(self, role: Role, granted: Role) -> None:
        """Raise :class:`RoleEscalationError` unless a member holding ``role`` may grant ``granted``."""
        if not self.can_grant(role, granted):
            raise RoleEscalationError(role.value, granted.value)

    def require_may_grant(
        self,
        actor: EffectivePermissions | None,
        granted: EffectivePermissions | None = None,
        *,
        permissions: Iterable[str] = (),
        what: str | None = None,
    ) -> None:
        """The one escalation rule: raise unless ``actor`` already holds everything it is about to give.

        Every path that grants calls it: assigning a role (``granted``: the rank it reaches no higher than
        the actor's own, and every permission of the rank and custom role), defining or editing a role and
        issuing or rotating an API key (``permissions``). ``actor`` is ``None`` for the host, which may
        grant anything.

        Args:
            actor: What the acting member holds, or ``None`` for the host.
            granted: The rank and custom role being assigned.
            permissions: Permissions being granted otherwise (a role's new permissions, a key's scopes).
            what: How the refusal names what was being granted (the role's label by default).

        Raises:
            RoleEscalationError: ``granted``'s rank is above the actor's.
            PermissionEscalationError: Some permission being granted is not the actor's.
        """
        if actor is None:
            return
        wanted = frozenset(permissions)
        if granted is not None:
            self.require_grant(actor.rank, granted.rank)
            wanted |= granted.permissions
        missing = wanted - actor.permissions
        if missing:
            name = what or (granted.label if granted is not None else "these permissions")
            raise PermissionEscalationError(actor.label, name, sorted(missing))

    def can_manage(self, role: Role, target: Role) -> bool:
        """Whether a member holding ``role`` may change the role of, or remove, a member holding ``target``.

        A role manages only members whose role it could itself grant: an ADMIN cannot touch an OWNER.
        """
        return self.can_grant(role, target)

    def require_manage(self, role: Role, target: Role, action: Action | str) -> None:
        """Raise :class:`PermissionDeniedError` unless a member holding ``role`` may ``action`` one holding
        ``target``.
        """
        if not self.can_manage(role, target):
            name = _action_name(action)
            verb = _MANAGING_VERBS.get(name, name)
            raise PermissionDeniedError(name, role.value, f"{role.value} may not {verb} an {target.value}")

    def actions(self, role: Role) -> frozenset[str]:
        """Every action ``role`` (the rank alone) may perform."""
        return self._table[role]

    def with_actions(self, action: Action | str, minimum_role: Role) -> Permissions:
        """Return a copy of this table where ``minimum_role`` and every role above it may ``action``.

        Raises:
            UnknownPermissionError: A registry is declared and does not know ``action``.
        """
        name = self.action_name(action)
        extended: dict[Role, set[str]] = {role: set(actions) for role, actions in self._table.items()}
        for role in Role:
            if role.rank >= minimum_role.rank:
                extended[role].add(name)
        return Permissions(
            extended, registry=self._registry if self._declared else None, roles=self._roles.values()
        )

    def as_table(self) -> dict[str, list[str]]:
        """The table as plain data, role name to sorted actions (for docs and JSON)."""
        return {role.value: sorted(self._table[role]) for role in Role}

    def __repr__(self) -> str:
        return f"Permissions({self.as_table()!r})"
