"""Roles, actions and the policy: the one place that says who may do what.

:class:`Permissions` is the policy. It answers the four questions every service asks: may this role perform
an action (:meth:`~Permissions.can`), may it give a role to someone (:meth:`~Permissions.can_grant`), may
it change or remove a member holding a role (:meth:`~Permissions.can_manage`), and, for each, the
``require_*`` form that raises the typed refusal. The services hold no rule of their own.

Adding a role (the roadmap's medical roles, for example) means adding it to :class:`Role` with its rank,
to the permission table below, and a migration that widens the ``role`` type.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from tenantkit._errors import InvalidInputError, PermissionDeniedError, RoleEscalationError


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
    MANAGE_WEBHOOKS = "webhooks:manage"
    READ_WEBHOOKS = "webhooks:read"

    def __str__(self) -> str:
        return self.value


_MEMBER_ACTIONS = frozenset({Action.READ_MEMBERS.value, Action.READ_API_KEYS.value})
_ADMIN_ACTIONS = _MEMBER_ACTIONS | {
    Action.INVITE_MEMBERS.value,
    Action.CHANGE_ROLES.value,
    Action.REMOVE_MEMBERS.value,
    Action.MANAGE_API_KEYS.value,
    Action.READ_INVITATIONS.value,
    Action.MANAGE_INVITATIONS.value,
    Action.READ_AUDIT.value,
    Action.MANAGE_WEBHOOKS.value,
    Action.READ_WEBHOOKS.value,
}
_OWNER_ACTIONS = _ADMIN_ACTIONS | {
    Action.DELETE_ORGANIZATION.value,
    Action.TRANSFER_OWNERSHIP.value,
}

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


class Permissions:
    """The policy: which role may perform which action, grant which role, and manage which member.

    The default table is :data:`DEFAULT_PERMISSIONS`. Hosts extend it with :meth:`with_actions`, which
    returns a new table (tables are immutable, so one shared by threads cannot change under them)::

        permissions = Permissions().with_actions("reports:export", Role.ADMIN)

    A custom action granted to a role is granted to every role above it as well.
    """

    __slots__ = ("_table",)

    def __init__(self, table: Mapping[Role, Iterable[Action | str]] | None = None) -> None:
        source = DEFAULT_PERMISSIONS if table is None else table
        self._table: dict[Role, frozenset[str]] = {
            role: frozenset(_action_name(action) for action in source.get(role, ())) for role in Role
        }

    def can(self, role: Role | None, action: Action | str) -> bool:
        """Whether ``role`` may perform ``action``; ``None`` (not a member) may do nothing."""
        if role is None:
            return False
        return _action_name(action) in self._table[role]

    def require(self, role: Role | None, action: Action | str) -> None:
        """Raise :class:`PermissionDeniedError` unless ``role`` may perform ``action``."""
        if not self.can(role, action):
            raise PermissionDeniedError(_action_name(action), role.value if role is not None else None)

    def can_grant(self, role: Role, granted: Role) -> bool:
        """Whether a member holding ``role`` may give ``granted`` to someone (adding, promoting, inviting).

        A role grants roles up to its own rank, so only an OWNER makes an OWNER.
        """
        return granted.rank <= role.rank

    def require_grant(self, role: Role, granted: Role) -> None:
        """Raise :class:`RoleEscalationError` unless a member holding ``role`` may grant ``granted``."""
        if not self.can_grant(role, granted):
            raise RoleEscalationError(role.value, granted.value)

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
        """Every action ``role`` may perform."""
        return self._table[role]

    def with_actions(self, action: Action | str, minimum_role: Role) -> Permissions:
        """Return a copy of this table where ``minimum_role`` and every role above it may ``action``."""
        name = _action_name(action)
        extended: dict[Role, set[str]] = {role: set(actions) for role, actions in self._table.items()}
        for role in Role:
            if role.rank >= minimum_role.rank:
                extended[role].add(name)
        return Permissions(extended)

    def as_table(self) -> dict[str, list[str]]:
        """The table as plain data, role name to sorted actions (for docs and JSON)."""
        return {role.value: sorted(self._table[role]) for role in Role}

    def __repr__(self) -> str:
        return f"Permissions({self.as_table()!r})"
