"""Organization membership: who belongs to an organization, with which role, and what that role allows.

Every change that can take an OWNER away (a demotion, a removal, a departure) first locks the rows it
decides on: the organization's OWNER rows plus the actor's and the target's rows, in ``user_id`` order, with
``SELECT … FOR UPDATE`` on PostgreSQL and MySQL/MariaDB. Its decision is then taken on rows nobody else can
change until it commits, so two such changes in one organization run one after the other and the last OWNER
is never lost. SQLite has no row locks; there the same step takes the database's single write lock (with a
no-op ``UPDATE``) before reading, which serializes writers the same way.

A change that assigns a custom role first reads the role's row with a shared lock (see
:mod:`tenantkit.roles._store`), before the member rows: a concurrent deletion of the role either waits and
then sees the new holder, or commits first and the assignment finds no such role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, as_actor
from tenantkit._clock import Clock, system_clock
from tenantkit._db import RawQuery, begin_write, fetch_page, typed_concurrency_errors
from tenantkit._errors import (
    AlreadyMemberError,
    ConfigurationError,
    InvalidInputError,
    LastOwnerError,
    MemberNotFoundError,
    MemberSuspendedError,
    PermissionDeniedError,
    UnknownRoleError,
)
from tenantkit._events import (
    EventDispatcher,
    MemberAdded,
    MemberAttributesRecorded,
    MemberRemoved,
    MemberResumed,
    MemberRoleChanged,
    MemberSuspended,
    OwnershipTransferred,
)
from tenantkit._missing_schema import translate_missing_schema
from tenantkit._pagination import DEFAULT_PAGE_SIZE, Keyset, Page
from tenantkit._tables import department_members, new_id, team_members
from tenantkit._validation import check_identifier, check_name, check_schema_name
from tenantkit._writes import confirm_written
from tenantkit.members._attributes import (
    MemberAttributes,
    attributes_from_row,
    attributes_to_row,
    check_aware,
)
from tenantkit.roles._authorizer import AccessRequest, Authorizer
from tenantkit.roles._policy import Action, CustomRole, EffectivePermissions, Permissions, Role, is_role_key
from tenantkit.roles._store import Lock, PermissionCache, load_role

if TYPE_CHECKING:
    # Only for annotations: the organization service is built on this one.
    from tenantkit.organizations._document import OrganizationPolicy, PolicySource


class Member(BaseModel):
    """A user's membership of an organization.

    ``attributes`` is what an accept policy (or :meth:`MembershipService.record_attributes`) verified about
    the member, ``None`` when nothing was. ``suspended_at`` is set while the member is suspended: the row
    stays, but the membership holds no permission until it is resumed.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    user_id: str
    role: Role
    created_at: datetime
    updated_at: datetime
    custom_role: str | None = None
    """The key of the custom role held inside the rank :attr:`role`, or ``None`` for the rank alone."""
    attributes: MemberAttributes | None = None
    suspended_at: datetime | None = None
    suspended_by: str | None = None
    suspension_reason: str | None = None

    @property
    def suspended(self) -> bool:
        """Whether the membership is suspended (and so holds no permission)."""
        return self.suspended_at is not None


_ROLE_BY_VALUE: Mapping[str, Role] = {role.value: role for role in Role}

# The unique index on (organization_id, user_id) makes a LIMIT pointless; leaving it out keeps the SQL
# identical to what a hand-written query would send.
# ``suspended_at`` comes along: a suspended membership resolves to no role (see ``_standing``); so does
# ``custom_role``, which the adapters' authorizations report, from the same row.
_ROLE_OF = sa.select(team_members.c.role, team_members.c.suspended_at, team_members.c.custom_role).where(
    team_members.c.organization_id == sa.bindparam("organization_id"),
    team_members.c.user_id == sa.bindparam("user_id"),
)

_RAW_ROLE_OF = RawQuery(_ROLE_OF, ("organization_id", "user_id"))

_MEMBER = sa.select(team_members).where(
    team_members.c.organization_id == sa.bindparam("organization_id"),
    team_members.c.user_id == sa.bindparam("user_id"),
)

_MEMBER_SHARED = _MEMBER.with_for_update(read=True)

_HOLDING = sa.select(team_members.c.role, team_members.c.custom_role, team_members.c.suspended_at).where(
    team_members.c.organization_id == sa.bindparam("organization_id"),
    team_members.c.user_id == sa.bindparam("user_id"),
)

# The rows a change decides on, locked in one consistent order (user_id) so that two changes in one
# organization queue behind each other instead of deadlocking.
_LOCK_ROWS = (
    sa.select(team_members)
    .where(
        team_members.c.organization_id == sa.bindparam("organization_id"),
        sa.or_(
            team_members.c.role == Role.OWNER,
            team_members.c.user_id.in_(sa.bindparam("user_ids", expanding=True)),
        ),
    )
    .order_by(team_members.c.user_id)
    .with_for_update()
)

# The same, plus every holder of one custom role: what deleting that role decides on.
_LOCK_ROWS_AND_HOLDERS = (
    sa.select(team_members)
    .where(
        team_members.c.organization_id == sa.bindparam("organization_id"),
        sa.or_(
            team_members.c.role == Role.OWNER,
            team_members.c.user_id.in_(sa.bindparam("user_ids", expanding=True)),
            team_members.c.custom_role == sa.bindparam("custom_role"),
        ),
    )
    .order_by(team_members.c.user_id)
    .with_for_update()
)

# The one membership a change writes: bound as ``org`` and ``uid``.
_THE_MEMBER = (
    team_members.c.organization_id == sa.bindparam("org"),
    team_members.c.user_id == sa.bindparam("uid"),
)

# Bind names differ from column names: SQLAlchemy reserves those for the SET clause.
_SET_ROLE = (
    team_members.update()
    .where(*_THE_MEMBER)
    .values(
        role=sa.bindparam("new_role", type_=team_members.c.role.type),
        custom_role=sa.bindparam("new_custom_role", type_=team_members.c.custom_role.type),
        updated_at=sa.bindparam("now"),
    )
)

_DELETE = team_members.delete().where(*_THE_MEMBER)

_INSERT = team_members.insert()

_SET_STANDING = (
    team_members.update()
    .where(*_THE_MEMBER)
    .values(
        suspended_at=sa.bindparam("new_suspended_at", type_=team_members.c.suspended_at.type),
        suspended_by=sa.bindparam("new_suspended_by", type_=team_members.c.suspended_by.type),
        suspension_reason=sa.bindparam("new_reason", type_=team_members.c.suspension_reason.type),
        updated_at=sa.bindparam("now"),
    )
)

_SET_ATTRIBUTES = (
    team_members.update()
    .where(*_THE_MEMBER)
    .values(
        attributes=sa.bindparam("new_attributes", type_=team_members.c.attributes.type),
        credential_expires_at=sa.bindparam("new_expires_at", type_=team_members.c.credential_expires_at.type),
        updated_at=sa.bindparam("now"),
    )
)

# A member's departments go with the membership (no foreign key can say so: the membership's key is a pair).
_LEAVE_DEPARTMENTS = department_members.delete().where(
    department_members.c.organization_id == sa.bindparam("org"),
    department_members.c.user_id == sa.bindparam("uid"),
)

# The two listings of memberships: an organization's members by user id, a user's organizations by id.
_MEMBERS_ORDER = Keyset("members", team_members.c.user_id)
_ORGANIZATIONS_ORDER = Keyset("organizations", team_members.c.organization_id)
# Members whose verified attributes lapse, soonest first.
_LAPSING_ORDER = Keyset("lapsing", team_members.c.credential_expires_at, team_members.c.user_id)


def _member(row: Any) -> Member:
    return Member(
        id=row.id,
        organization_id=row.organization_id,
        user_id=row.user_id,
        role=Role(row.role),
        created_at=row.created_at,
        updated_at=row.updated_at,
        attributes=attributes_from_row(row.attributes, row.credential_expires_at),
        suspended_at=row.suspended_at,
        suspended_by=row.suspended_by,
        suspension_reason=row.suspension_reason,
        custom_role=row.custom_role,
    )


class _Locked:
    """The rows a change decides on, read under lock: who is OWNER, and the actor's and target's rows."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.by_user = {row.user_id: _member(row) for row in rows}
        # Only active owners keep an organization governable: a suspended OWNER does not count.
        self.owners = [
            member.user_id
            for member in self.by_user.values()
            if member.role is Role.OWNER and not member.suspended
        ]

    def role_of(self, user_id: str | None) -> Role | None:
        member = self.by_user.get(user_id) if user_id is not None else None
        return member.role if member is not None else None

    def is_last_owner(self, member: Member) -> bool:
        """Whether taking ``member``'s ownership away (demote, remove, suspend) leaves no active OWNER."""
        return member.role is Role.OWNER and not member.suspended and len(self.owners) < 2


@runtime_checkable
class SignInPolicy(Protocol):
    """Asked before an actor that says how it signed in acts in an organization (see :mod:`tenantkit.sso`)."""

    def check_actor(
        self, session: Session | Connection, organization_id: str, actor: Actor, action: str
    ) -> None:
        """Raise when the organization refuses how ``actor`` signed in; return otherwise."""
        ...


@translate_missing_schema(done_inline=("get_role", "authorize", "authorize_role"))
class MembershipService:
    """Membership of organizations, bounded by roles.

    Every method takes the caller's ``Session`` first and works inside its transaction: it flushes and
    executes, never commits. Events reach listeners of :attr:`events` after that transaction commits.

    Every read that returns an organization's or a member's data (:meth:`get`, :meth:`list_members`,
    :meth:`list_organizations`) takes an ``actor`` and authorizes it here, as every change does, so the HTTP
    adapters, the CLI and a host's own pages get the same answer. :meth:`get_role` and :meth:`authorize`
    take none: they are the authorization question itself, which the host asks about the request's own user.

    Args:
        permissions: The permission table (the default one when omitted).
        clock: Where the current time comes from.
        events: The dispatcher that delivers events after commit (a private one when omitted).
        schema: The PostgreSQL schema that holds tenantkit's tables, when not the connection's default
            (``public``); the API key and invitation services built on this one use it too.
        authorizer: An external policy engine asked every permission question (see
            :class:`~tenantkit.roles.Authorizer`); tenantkit's permission table when omitted.
        permission_cache_ttl: How long a member's effective permissions (rank plus custom role) may be
            reused by :meth:`authorize` for an action their rank alone does not hold; ``None`` or zero reads
            them every time. Changes made in this process evict at once; others within the TTL, or at
            once with a cross-process invalidator.

    Raises:
        InvalidSettingError: ``schema`` is not a plain identifier.
        ConfigurationError: ``authorizer`` has no ``authorize`` method, or the TTL is negative.
    """

    def __init__(
        self,
        *,
        permissions: Permissions | None = None,
        clock: Clock = system_clock,
        events: EventDispatcher | None = None,
        schema: str | None = None,
        authorizer: Authorizer | None = None,
        permission_cache_ttl: timedelta | None = timedelta(seconds=5),
    ) -> None:
        self.permissions: Permissions = permissions or Permissions()
        if authorizer is not None and not isinstance(authorizer, Authorizer):
            raise ConfigurationError("authorizer must have an authorize(request) -> bool method")
        self.authorizer: Authorizer | None = authorizer
        ttl = 0.0 if permission_cache_ttl is None else permission_cache_ttl.total_seconds()
        if ttl < 0:
            raise ConfigurationError("permission_cache_ttl must not be negative")
        self.clock = clock
        self.events: EventDispatcher = events or EventDispatcher()
        self.schema: str | None = check_schema_name(schema)
        # Every statement of the three services runs with these options: tenantkit's tables (whose schema
        # is None) are looked up in ``schema``, the host's own tables in the same session are left alone.
        self.execution_options: Mapping[str, Any] = (
            {"schema_translate_map": {None: schema}} if schema is not None else {}
        )
        # Read on every hot lookup: kept apart rather than fetched from the options each time.
        self._own_schema_map: Mapping[str | None, str | None] | None = self.execution_options.get(
            "schema_translate_map"
        )
        self.policies: PolicySource | None = None
        """Each organization's settings policy (``kit.organizations``; the kit sets it): where the default
        role of :meth:`add` without a role comes from. ``None``: MEMBER."""
        self.sign_in_policy: SignInPolicy | None = None
        """Asked about every user actor that states how it signed in (the SSO service sets itself here)."""
        self._permission_cache: PermissionCache | None = None
        if ttl > 0:
            self._permission_cache = PermissionCache(ttl)
            self.events.caches.register(self._permission_cache)

    def schema_translate_map(self, connection: Connection) -> Mapping[str | None, str | None] | None:
        """The schema translation a statement of tenantkit's runs under on ``connection``.

        This service's own (from ``schema``) when set, else whatever the host set on the connection.
        """
        own = self._own_schema_map
        if own is not None:
            return own
        return connection.get_execution_options().get("schema_translate_map")

    # -- permissions -----------------------------------------------------------------------------------

    def can(self, role: Role | None, action: Action | str) -> bool:
        """Whether ``role`` may perform ``action`` according to :attr:`permissions`.

        Args:
            role: A role, or ``None`` for "not a member" (which may do nothing).
            action: An :class:`Action` or a host-defined action name.

        Returns:
            ``True`` when the permission table allows it.

        Raises:
            InvalidInputError: ``action`` is empty or not a string.
        """
        return self.permissions.can(role, action)

    def require(self, role: Role | None, action: Action | str) -> None:
        """Raise unless ``role`` may perform ``action``.

        Raises:
            PermissionDeniedError: The permission table does not allow it.
            InvalidInputError: ``action`` is empty or not a string.
        """
        self.permissions.require(role, action)

    def check_grant(self, actor_role: Role | None, role: Role) -> None:
        """Raise :class:`RoleEscalationError` unless an actor with ``actor_role`` may grant ``role``.

        ``actor_role`` is ``None`` for the host, which may grant any role; a member's role is judged by
        :meth:`Permissions.require_grant`.
        """
        if actor_role is not None:
            self.permissions.require_grant(actor_role, role)

    def resolve_role(
        self, session: Session | Connection, organization_id: str, role: Role | str, *, lock: Lock = None
    ) -> tuple[Role, CustomRole | None]:
        """The rank and custom role that ``role`` names: a rank (``"ADMIN"``, any case) or a custom role's key
        (deployment-wide first, then the organization's own).

        Args:
            session: The caller's session (or connection).
            organization_id: The organization whose roles are searched.
            role: A :class:`Role`, a rank's name, or a custom role's key.
            lock: ``"share"`` to keep the organization role's row from being deleted until the transaction
                ends (every path that assigns it), ``"update"`` to change it.

        Raises:
            UnknownRoleError: No rank or custom role has this name.
            InvalidInputError: ``role`` is not a string.
        """
        if isinstance(role, Role):
            return role, None
        if not isinstance(role, str):
            Role.parse(role)  # raises the usual InvalidInputError
        text = role.strip()
        rank = _ROLE_BY_VALUE.get(text.upper())
        if rank is not None:
            return rank, None
        declared = self.permissions.deployment_role(text)
        if declared is not None:
            return declared.rank, declared
        if is_role_key(text):  # anything else names no role, and never reaches the database
            stored = load_role(session, organization_id, text, self.execution_options, lock=lock)
            if stored is not None:
                return stored.rank, stored
        raise UnknownRoleError(text, organization_id)

    def resolve_default_role(
        self,
        session: Session | Connection,
        organization_id: str,
        policy: OrganizationPolicy | None = None,
        *,
        lock: Lock = "share",
    ) -> tuple[Role, CustomRole | None]:
        """The rank and custom role a new member gets when nobody names one: the organization's
        ``default_role`` setting (MEMBER unless its settings, within the deployment's, say otherwise).

        A custom role chosen as the default is resolved like any assigned role (share-locked, so it cannot
        be deleted under the assignment). If its rank is now above the deployment's ceiling (the ceiling was
        lowered after it was chosen), the ceiling's rank alone is given: the ceiling wins, as for every
        setting. Whoever assigns it is still held to the escalation rule.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            policy: The organization's policy, when the caller has read it already (from :attr:`policies`
                otherwise).
            lock: How to lock an organization role's row (see :meth:`resolve_role`).

        Raises:
            UnknownRoleError: The default is a custom role that no longer exists (deleted after it was
                chosen): name a role, or change the organization's ``default_role`` setting.
        """
        if policy is None:
            if self.policies is None:
                return Role.MEMBER, None
            policy = self.policies.policy(session, organization_id)
        key = policy.default_custom_role
        if key is None:
            return policy.default_role, None
        try:
            rank, custom = self.resolve_role(session, organization_id, key, lock=lock)
        except UnknownRoleError:
            raise UnknownRoleError(
                key,
                organization_id,
                hint="it is the organization's default_role setting: name a role, or change the setting",
            ) from None
        if rank.rank > policy.default_role.rank:
            return policy.default_role, None
        return rank, custom

    def custom_role_of(
        self, session: Session | Connection, organization_id: str, key: str | None, *, lock: Lock = None
    ) -> CustomRole | None:
        """The definition of the custom role ``key``: ``None`` for none, or for a deployment-wide role the
        host no longer declares (its holders then keep their rank's permissions only)."""
        if key is None:
            return None
        declared = self.permissions.deployment_role(key)
        if declared is not None:
            return declared
        return load_role(session, organization_id, key, self.execution_options, lock=lock)

    def holding(self, session: Session | Connection, member: Member) -> EffectivePermissions:
        """What ``member`` holds: its rank's permissions and its custom role's, read now (no cache)."""
        return self.permissions.effective(
            member.role, self.custom_role_of(session, member.organization_id, member.custom_role)
        )

    def effective_permissions(
        self, session: Session | Connection, organization_id: str, user_id: str
    ) -> EffectivePermissions | None:
        """The rank, custom role and every permission of ``user_id`` in the organization; ``None`` when not a
        member. Kept for ``permission_cache_ttl`` (see the class).

        Raises:
            InvalidInputError: An id is empty, too long or malformed.

        .. versionadded:: 0.2
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        cache = self._permission_cache
        if cache is None:
            return self._read_effective(session, organization_id, user_id)
        schema = self.schema
        if schema is None:
            connection = session.connection() if isinstance(session, Session) else session
            schema = (self.schema_translate_map(connection) or {}).get(None)
        found, cached = cache.get(organization_id, user_id, schema)
        if found:
            return cached
        held = self._read_effective(session, organization_id, user_id)
        cache.put(organization_id, user_id, held, schema)
        return held

    def _read_effective(
        self, session: Session | Connection, organization_id: str, user_id: str
    ) -> EffectivePermissions | None:
        held, suspended = self._read_holding(session, organization_id, user_id)
        if held is not None and suspended:
            # A suspended membership keeps its rank and custom role, and holds no permission until resumed.
            return EffectivePermissions(held.rank, held.custom_role, frozenset())
        return held

    def _read_holding(
        self, session: Session | Connection, organization_id: str, user_id: str
    ) -> tuple[EffectivePermissions | None, bool]:
        """What the membership grants by its rank and custom role, and whether it is suspended."""
        row = session.execute(
            _HOLDING,
            {"organization_id": organization_id, "user_id": user_id},
            execution_options=self.execution_options,
        ).first()
        if row is None:
            return None, False
        custom = self.custom_role_of(session, organization_id, row.custom_role)
        return self.permissions.effective(Role(row.role), custom), row.suspended_at is not None

    def grant_authority(
        self, session: Session | Connection, organization_id: str, actor: Actor | str, action: Action | str
    ) -> EffectivePermissions | None:
        """Check that ``actor`` may perform ``action`` and return what it holds, read afresh (never cached):
        the authority a grant is judged against. ``None`` when the host acts.

        Raises:
            PermissionDeniedError: The actor is not a member, or may not ``action``.
            MemberSuspendedError: The actor is a suspended member.
        """
        check_identifier(organization_id, "organization_id")
        acting = as_actor(actor)
        name = self.permissions.action_name(action)
        if acting.user_id is None:
            return None
        held, suspended = self._read_holding(session, organization_id, acting.user_id)
        if held is not None and suspended:
            raise MemberSuspendedError(name, held.rank.value, organization_id, acting.user_id)
        self._check_sign_in(session, organization_id, acting, name)
        self._check_action(organization_id, acting, held, name, None)
        return held

    def _check_sign_in(
        self, session: Session | Connection, organization_id: str, acting: Actor, name: str
    ) -> None:
        """Hand an actor that states how it signed in to the sign-in policy (SSO enforcement lives there)."""
        if acting.authenticated_by is not None and self.sign_in_policy is not None:
            self.sign_in_policy.check_actor(session, organization_id, acting, name)

    # -- reads -----------------------------------------------------------------------------------------

    def get_role(self, session: Session | Connection, organization_id: str, user_id: str) -> Role | None:
        """The role of ``user_id`` in ``organization_id``, or ``None`` when not a member.

        This is the per-request question, so it runs one prebuilt indexed query with as little around it as
        possible: when nothing observes the engine's statements (no ``before_cursor_execute`` listeners),
        the SQL compiled for the dialect and schema goes straight to the session's DBAPI connection, inside
        its transaction (a bare connection begins one, as it would for any statement). Otherwise it goes
        through SQLAlchemy, so that instrumentation sees it.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            user_id: The user.

        A suspended member has no role here: what it may do is nothing until it is resumed (:meth:`get`
        shows its membership and role as stored).

        Returns:
            The user's role, or ``None`` when the user is not a member or is suspended.

        Raises:
            InvalidInputError: An id is empty, too long or malformed.
        """
        role, _, suspended = self._standing(session, organization_id, user_id)
        return None if suspended else role

    def _standing(
        self, session: Session | Connection, organization_id: str, user_id: str
    ) -> tuple[Role | None, str | None, bool]:
        """The stored rank of ``user_id`` (``None``: not a member), its custom role's key, and whether it is
        suspended.

        The one place an actor's role is resolved: :meth:`get_role` and :meth:`authorize` (and through
        it every service and adapter) read it here.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        connection = session.connection() if isinstance(session, Session) else session
        plan = _RAW_ROLE_OF.plan(connection.dialect, self.schema_translate_map(connection))
        rows = _RAW_ROLE_OF.fetch(connection, plan, (organization_id, user_id), self.execution_options)
        if not rows:
            return None, None, False
        # The role's raw value is its name, and so is the converted Role (a str enum) on the SQLAlchemy path.
        row = rows[0]
        return _ROLE_BY_VALUE[row[0]], row[2], row[1] is not None

    def get(
        self, session: Session | Connection, organization_id: str, user_id: str, *, actor: Actor | str
    ) -> Member:
        """One membership.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            user_id: The member.
            actor: Who asks (needs ``members:read``; MEMBER has it), or :data:`tenantkit.HOST`.

        Returns:
            The membership.

        Raises:
            InvalidInputError: An id is malformed.
            PermissionDeniedError: The actor may not read the organization's members.
            MemberNotFoundError: The user is not a member of this organization.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        self.authorize(session, organization_id, actor, Action.READ_MEMBERS)
        row = session.execute(
            _MEMBER,
            {"organization_id": organization_id, "user_id": user_id},
            execution_options=self.execution_options,
        ).first()
        if row is None:
            raise MemberNotFoundError(organization_id, user_id)
        return _member(row)

    def authorize(
        self,
        session: Session | Connection,
        organization_id: str,
        actor: Actor | str,
        action: Action | str,
        *,
        resource: str | None = None,
    ) -> Role | None:
        """Check that ``actor`` may perform ``action`` in the organization and return its role (its rank).

        The rank's own actions are answered from :meth:`get_role` alone; an action only a custom role holds
        costs one more (cached) lookup of the member's effective permissions. With an ``authorizer``, that
        engine decides, given the member's effective permissions; a non-member is refused whatever it says.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            actor: Who acts (a user id, an :class:`Actor`, or :data:`~tenantkit.HOST`).
            action: A built-in :class:`Action` or a permission of the host's registry.
            resource: What the action is about (``"member:alice"``), handed to an ``authorizer``.

        Returns:
            The actor's role, or ``None`` when the host acts (the host passes every permission check).

        Raises:
            InvalidInputError: The organization id or the actor is malformed.
            UnknownPermissionError: A registry is declared and ``action`` is not in it.
            PermissionDeniedError: The actor is not a member, or its role does not allow ``action``.
            MemberSuspendedError: The actor is a suspended member (a :class:`PermissionDeniedError`).
        """
        return self.authorize_role(session, organization_id, actor, action, resource=resource)[0]

    def authorize_role(
        self,
        session: Session | Connection,
        organization_id: str,
        actor: Actor | str,
        action: Action | str,
        *,
        resource: str | None = None,
    ) -> tuple[Role | None, str | None]:
        """:meth:`authorize`, returning the actor's rank and the key of the custom role it holds (``None``
        for the rank alone), both read from the one row :meth:`authorize` reads: no extra lookup.

        The adapters' ``permission(...)`` and ``require_permission(...)`` report both in their
        ``Authorization``. ``(None, None)`` when the host acts.

        Raises:
            InvalidInputError: The organization id or the actor is malformed.
            UnknownPermissionError: A registry is declared and ``action`` is not in it.
            PermissionDeniedError: The actor is not a member, or its role does not allow ``action``.
            MemberSuspendedError: The actor is a suspended member (a :class:`PermissionDeniedError`).

        .. versionadded:: 0.2
        """
        check_identifier(organization_id, "organization_id")
        acting = as_actor(actor)
        name = self.permissions.action_name(action)
        if acting.user_id is None:
            return None, None
        role, custom_role, suspended = self._standing(session, organization_id, acting.user_id)
        if suspended:
            raise MemberSuspendedError(
                name, role.value if role is not None else None, organization_id, str(acting.user_id)
            )
        self._check_sign_in(session, organization_id, acting, name)
        if role is not None and self.authorizer is None and name in self.permissions.actions(role):
            return role, custom_role
        held = (
            self.effective_permissions(session, organization_id, acting.user_id) if role is not None else None
        )
        self._check_action(organization_id, acting, held, name, resource)
        return (held.rank, custom_role) if held is not None else (None, None)

    def _check_action(
        self,
        organization_id: str,
        acting: Actor,
        held: EffectivePermissions | None,
        name: str,
        resource: str | None,
    ) -> None:
        """The one place a member's permission is decided: the table, or the host's authorizer."""
        if held is None:
            raise PermissionDeniedError(
                name, None, f"{acting.user_id!r} is not a member of organization {organization_id!r}"
            )
        if self.authorizer is None:
            allowed = name in held.permissions
        else:
            allowed = bool(
                self.authorizer.authorize(AccessRequest(acting, name, organization_id, resource, held))
            )
        if not allowed:
            raise PermissionDeniedError(name, held.rank.value)

    def list_members(
        self,
        session: Session | Connection,
        organization_id: str,
        *,
        actor: Actor | str,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        role: Role | str | None = None,
        custom_role: str | None = None,
    ) -> Page[Member]:
        """One page of the organization's members, ordered by ``user_id``.

        The order is stable: a member added or removed between two pages neither shifts nor repeats the
        others.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            actor: Who asks (needs ``members:read``; MEMBER has it), or :data:`tenantkit.HOST`.
            limit: Page size, 1 to 500.
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first page.
            role: Only members holding this rank.
            custom_role: Only members holding the custom role with this key.

        Returns:
            The page; its ``next_cursor`` is ``None`` on the last page.

        Raises:
            InvalidInputError: A malformed id, limit, cursor or role.
            PermissionDeniedError: The actor may not read the organization's members.
        """
        check_identifier(organization_id, "organization_id")
        seek = _MEMBERS_ORDER.seek(limit=limit, cursor=cursor)
        query = sa.select(team_members).where(team_members.c.organization_id == organization_id)
        if role is not None:
            query = query.where(team_members.c.role == Role.parse(role))
        if custom_role is not None:
            query = query.where(team_members.c.custom_role == check_identifier(custom_role, "custom_role"))
        self.authorize(session, organization_id, actor, Action.READ_MEMBERS)
        return fetch_page(session, query, seek, _member, execution_options=self.execution_options)

    def list_organizations(
        self,
        session: Session | Connection,
        user_id: str,
        *,
        actor: Actor | str,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Member]:
        """One page of the user's memberships (one per organization), ordered by ``organization_id``.

        Args:
            session: The caller's session (or connection).
            user_id: The user.
            actor: Who asks: the user themself, or :data:`tenantkit.HOST`. Nobody else may see which
                organizations a user belongs to, whatever their role in any of them.
            limit: Page size, 1 to 500.
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first page.

        Returns:
            The page of memberships; each names its organization and the user's role there.

        Raises:
            InvalidInputError: A malformed id, limit or cursor.
            PermissionDeniedError: The actor is another user.
        """
        check_identifier(user_id, "user_id")
        seek = _ORGANIZATIONS_ORDER.seek(limit=limit, cursor=cursor)
        query = sa.select(team_members).where(team_members.c.user_id == user_id)
        acting = as_actor(actor)
        if acting.user_id is not None and acting.user_id != user_id:
            raise PermissionDeniedError(
                Action.READ_MEMBERS.value, None, f"{acting.user_id!r} may list only their own organizations"
            )
        return fetch_page(session, query, seek, _member, execution_options=self.execution_options)

    # -- changes ---------------------------------------------------------------------------------------

    def _lock(
        self, session: Session, organization_id: str, *user_ids: str | None, holders_of: str | None = None
    ) -> _Locked:
        """Lock and read the rows a change decides on (see the module docstring); with ``holders_of``, the
        rows of every member holding that custom role as well, in the same statement and order."""
        connection = session.connection()
        begin_write(connection, team_members, self.execution_options)
        wanted = sorted({user_id for user_id in user_ids if user_id is not None})
        parameters: dict[str, Any] = {"organization_id": organization_id, "user_ids": wanted or [""]}
        statement = _LOCK_ROWS
        if holders_of is not None:
            statement = _LOCK_ROWS_AND_HOLDERS
            parameters["custom_role"] = holders_of
        rows = connection.execute(statement, parameters, execution_options=self.execution_options).all()
        return _Locked(rows)

    def _actor_holding(
        self,
        session: Session,
        organization_id: str,
        acting: Actor,
        locked: _Locked,
        action: Action,
        resource: str | None = None,
    ) -> EffectivePermissions | None:
        """What the acting member holds, from its locked row; ``None`` for the host. Raises unless it may
        ``action``."""
        if acting.user_id is None:
            return None
        member = locked.by_user.get(acting.user_id)
        held = self.holding(session, member) if member is not None else None
        if member is not None and member.suspended:
            raise MemberSuspendedError(action.value, member.role.value, organization_id, str(acting.user_id))
        self._check_sign_in(session, organization_id, acting, action.value)
        self._check_action(organization_id, acting, held, action.value, resource)
        return held

    def _check_manages(self, held: EffectivePermissions | None, target: Member, action: Action) -> None:
        # None is the host, which manages every member.
        if held is not None:
            self.permissions.require_manage(held.rank, target.role, action)

    def add(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        role: Role | str | None = None,
        *,
        actor: Actor | str,
    ) -> Member:
        """Make ``user_id`` a member of the organization with ``role``.

        The host's own "create organization" flow adds the creator as the first OWNER with ``actor=HOST``.
        Two concurrent adds of one user leave one membership; the other gets :class:`AlreadyMemberError`.

        Args:
            session: The caller's session.
            organization_id: The organization.
            user_id: The new member.
            role: The role to give: a rank, or a custom role's key. ``None`` (the default) gives the
                organization's default role (:meth:`resolve_default_role`: MEMBER unless its settings
                choose another), held to the same escalation rule.
            actor: Who adds: a user id, an :class:`Actor`, or :data:`~tenantkit.HOST`.

        Returns:
            The new membership.

        Raises:
            InvalidInputError: A malformed id, actor or role.
            UnknownRoleError: ``role`` is neither a rank nor a custom role.
            AlreadyMemberError: The user is already a member; their role is left as it was.
            PermissionDeniedError: The actor may not add members.
            RoleEscalationError: The actor may not grant ``role``.
            PermissionEscalationError: ``role`` carries a permission the actor does not hold.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        acting = as_actor(actor)
        with typed_concurrency_errors(organization_id):
            if not isinstance(role, Role):
                begin_write(session.connection(), team_members, self.execution_options)
            if role is None:
                wanted, custom = self.resolve_default_role(session, organization_id)
            else:
                wanted, custom = self.resolve_role(session, organization_id, role, lock="share")
            held = self.grant_authority(session, organization_id, acting, Action.INVITE_MEMBERS)
            self.permissions.require_may_grant(held, self.permissions.effective(wanted, custom))
            return self._admit(
                session,
                organization_id,
                user_id,
                wanted,
                acting,
                custom_role=custom.key if custom is not None else None,
            )

    def _admit(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        wanted: Role,
        acting: Actor,
        attributes: MemberAttributes | None = None,
        custom_role: str | None = None,
    ) -> Member:
        """Insert the membership and record ``MemberAdded`` with ``acting`` as its actor; no permission check.

        :meth:`add` calls it once the actor is authorized; an accepted invitation calls it with the joining
        user as the actor, the invitation having been the authority (the audit trail names who acted), and
        with the ``attributes`` its accept policy verified.
        """
        with typed_concurrency_errors(organization_id):
            existing, _, _ = self._standing(session, organization_id, user_id)
            if existing is not None:
                raise AlreadyMemberError(organization_id, user_id, existing.value)
            # Start the transaction with a write on SQLite: pysqlite would otherwise let the SAVEPOINT below
            # open (and its RELEASE commit) a transaction of its own, behind the caller's back.
            begin_write(session.connection(), team_members, self.execution_options)
            now = self.clock()
            member = Member(
                id=new_id(),
                organization_id=organization_id,
                user_id=user_id,
                role=wanted,
                created_at=now,
                updated_at=now,
                attributes=attributes,
                custom_role=custom_role,
            )
            values = member.model_dump(
                include={"id", "organization_id", "user_id", "role", "custom_role", "created_at"}
            )
            values["updated_at"] = now
            if attributes is not None:
                values.update(attributes_to_row(attributes))
            try:
                with session.begin_nested():
                    session.execute(_INSERT, values, execution_options=self.execution_options)
            except sa.exc.IntegrityError as error:
                # A concurrent add of the same user committed first; report the role it gave.
                row = session.execute(
                    _MEMBER_SHARED,
                    {"organization_id": organization_id, "user_id": user_id},
                    execution_options=self.execution_options,
                ).first()
                if row is None:
                    raise
                raise AlreadyMemberError(organization_id, user_id, Role(row.role).value) from error
            self.events.record(
                session,
                MemberAdded(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    user_id=user_id,
                    role=wanted,
                    custom_role=custom_role,
                ),
            )
            if attributes is not None:
                self._record_attributes_event(session, organization_id, user_id, attributes, acting, now)
        return member

    def change_role(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        role: Role | str,
        *,
        actor: Actor | str,
    ) -> Member:
        """Give member ``user_id`` the role ``role``.

        The actor needs ``members:change_role``, may not assign a role above its own, and may not change
        the role of a member above it (an ADMIN cannot demote an OWNER). Actors changing their own role obey
        the same rules. Demoting the last OWNER is refused. Setting the role a member already has changes
        nothing and records no event.

        A custom role's key assigns that role (and its rank); a rank's name assigns the rank alone, taking
        away any custom role. The actor must hold every permission the new role carries.

        Args:
            session: The caller's session.
            organization_id: The organization.
            user_id: The member whose role changes.
            role: The new role: a rank, or a custom role's key.
            actor: Who changes it: a user id, an :class:`Actor`, or :data:`~tenantkit.HOST`.

        Returns:
            The membership with its new role.

        Raises:
            InvalidInputError: A malformed id, actor or role.
            UnknownRoleError: ``role`` is neither a rank nor a custom role.
            MemberNotFoundError: ``user_id`` is not a member.
            PermissionDeniedError: The actor may not change roles, or not this member's.
            RoleEscalationError: The actor may not grant ``role``.
            PermissionEscalationError: ``role`` carries a permission the actor does not hold.
            LastOwnerError: ``user_id`` is the organization's last OWNER and ``role`` is not OWNER.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        return self._change_role(session, organization_id, user_id, role, as_actor(actor), authorize=True)

    def _change_role(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        role: Role | str,
        acting: Actor,
        *,
        authorize: bool,
    ) -> Member:
        """:meth:`change_role`'s work; without ``authorize`` the actor (an identity provider whose
        connection's sync is the authority) is not checked, the last-owner rule still is."""
        with typed_concurrency_errors(organization_id):
            # Role row first, member rows second: the order every path locks in.
            begin_write(session.connection(), team_members, self.execution_options)
            wanted, custom = self.resolve_role(session, organization_id, role, lock="share")
            key = custom.key if custom is not None else None
            locked = self._lock(session, organization_id, acting.user_id, user_id)
            held = (
                self._actor_holding(
                    session, organization_id, acting, locked, Action.CHANGE_ROLES, f"member:{user_id}"
                )
                if authorize
                else None
            )
            target = locked.by_user.get(user_id)
            if target is None:
                raise MemberNotFoundError(organization_id, user_id)
            self._check_manages(held, target, Action.CHANGE_ROLES)
            self.permissions.require_may_grant(held, self.permissions.effective(wanted, custom))
            if target.role is wanted and target.custom_role == key:
                return target
            if wanted is not Role.OWNER and locked.is_last_owner(target):
                raise LastOwnerError(organization_id, user_id)
            now = self.clock()
            self._set_role(session, organization_id, user_id, wanted, now, key)
            self.events.record(
                session,
                MemberRoleChanged(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    user_id=user_id,
                    old_role=target.role,
                    new_role=wanted,
                    old_custom_role=target.custom_role,
                    new_custom_role=key,
                ),
            )
        return target.model_copy(update={"role": wanted, "custom_role": key, "updated_at": now})

    def _set_role(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        role: Role,
        now: datetime,
        custom_role: str | None = None,
    ) -> None:
        session.execute(
            _SET_ROLE,
            {
                "org": organization_id,
                "uid": user_id,
                "new_role": role,
                "new_custom_role": custom_role,
                "now": now,
            },
            execution_options=self.execution_options,
        )
        confirm_written(
            session,
            team_members,
            {"organization_id": organization_id, "user_id": user_id},
            {"role": role, "custom_role": custom_role},
            execution_options=self.execution_options,
        )

    def remove(self, session: Session, organization_id: str, user_id: str, *, actor: Actor | str) -> Member:
        """Remove member ``user_id`` from the organization.

        The actor needs ``members:remove`` and may not remove a member above it (an ADMIN cannot remove an
        OWNER). An actor removing itself is leaving, which any non-owner may always do (see :meth:`leave`).
        Removing the last OWNER is refused.

        Args:
            session: The caller's session.
            organization_id: The organization.
            user_id: The member to remove.
            actor: Who removes: a user id, an :class:`Actor`, or :data:`~tenantkit.HOST`.

        Returns:
            The membership as it was before removal.

        Raises:
            InvalidInputError: A malformed id or actor.
            MemberNotFoundError: ``user_id`` is not a member.
            PermissionDeniedError: The actor may not remove members, or not this one.
            LastOwnerError: ``user_id`` is the organization's last OWNER.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        acting = as_actor(actor)
        if acting.user_id == user_id:
            return self.leave(session, organization_id, actor=acting)
        return self._remove(session, organization_id, user_id, acting, authorize=True)

    def _remove(
        self, session: Session, organization_id: str, user_id: str, acting: Actor, *, authorize: bool
    ) -> Member:
        """:meth:`remove`'s work; without ``authorize`` the actor is not checked (see :meth:`_change_role`),
        the last-owner rule still is."""
        with typed_concurrency_errors(organization_id):
            locked = self._lock(session, organization_id, acting.user_id, user_id)
            held = (
                self._actor_holding(
                    session, organization_id, acting, locked, Action.REMOVE_MEMBERS, f"member:{user_id}"
                )
                if authorize
                else None
            )
            target = locked.by_user.get(user_id)
            if target is None:
                raise MemberNotFoundError(organization_id, user_id)
            self._check_manages(held, target, Action.REMOVE_MEMBERS)
            self._delete(session, locked, target, acting, left=False)
        return target

    def leave(self, session: Session, organization_id: str, *, actor: Actor | str) -> Member:
        """The acting user leaves the organization.

        Any non-owner may always leave; an OWNER may leave while another OWNER remains.

        Args:
            session: The caller's session.
            organization_id: The organization.
            actor: The user who leaves (the host cannot leave; use :meth:`remove`).

        Returns:
            The membership as it was before leaving.

        Raises:
            InvalidInputError: A malformed id, or the host as actor.
            MemberNotFoundError: The actor is not a member.
            LastOwnerError: The actor is the organization's last OWNER.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        acting = as_actor(actor)
        if acting.user_id is None:
            raise InvalidInputError("actor", "the host is not a member and cannot leave; use remove()")
        with typed_concurrency_errors(organization_id):
            locked = self._lock(session, organization_id, acting.user_id)
            target = locked.by_user.get(acting.user_id)
            if target is None:
                raise MemberNotFoundError(organization_id, acting.user_id)
            self._delete(session, locked, target, acting, left=True)
        return target

    def _delete(
        self, session: Session, locked: _Locked, target: Member, acting: Actor, *, left: bool
    ) -> None:
        if locked.is_last_owner(target):
            raise LastOwnerError(target.organization_id, target.user_id)
        session.execute(
            _LEAVE_DEPARTMENTS,
            {"org": target.organization_id, "uid": target.user_id},
            execution_options=self.execution_options,
        )
        session.execute(
            _DELETE,
            {"org": target.organization_id, "uid": target.user_id},
            execution_options=self.execution_options,
        )
        confirm_written(
            session,
            team_members,
            {"organization_id": target.organization_id, "user_id": target.user_id},
            None,
            execution_options=self.execution_options,
        )
        self.events.record(
            session,
            MemberRemoved(
                organization_id=target.organization_id,
                actor=acting,
                occurred_at=self.clock(),
                user_id=target.user_id,
                role=target.role,
                left=left,
            ),
        )

    def transfer_ownership(  # noqa: C901, PLR0912, PLR0915  one guard per documented Raises entry, in order
        self,
        session: Session,
        organization_id: str,
        to_user_id: str,
        *,
        actor: Actor | str,
        from_user_id: str | None = None,
        demote_to: Role | str = Role.ADMIN,
    ) -> Member:
        """Make existing member ``to_user_id`` an OWNER and step the current owner down to ``demote_to``.

        A user actor transfers its own ownership (it must be an OWNER). The host names the OWNER who hands
        over with ``from_user_id``. The organization always keeps an OWNER: the new one.

        Args:
            session: The caller's session.
            organization_id: The organization.
            to_user_id: The member who becomes OWNER.
            actor: The OWNER handing over, or :data:`~tenantkit.HOST`.
            from_user_id: The OWNER handing over; required when the host acts, optional (must be the actor)
                otherwise.
            demote_to: The role the former owner keeps (ADMIN by default; OWNER keeps both owners; a custom
                role's key, whose permissions the handing-over OWNER must hold).

        Returns:
            The new owner's membership.

        Raises:
            InvalidInputError: Malformed ids, an unknown role, a missing or foreign ``from_user_id``, or a
                transfer to oneself.
            MemberNotFoundError: ``to_user_id`` (or ``from_user_id``) is not a member.
            PermissionDeniedError: The handing-over member is not an OWNER.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(to_user_id, "to_user_id")
        acting = as_actor(actor)
        if isinstance(demote_to, Role):
            new_role = demote_to
        elif not isinstance(demote_to, str) or demote_to.strip().upper() in _ROLE_BY_VALUE:
            new_role = Role.parse(demote_to)
        else:
            new_role = None  # a custom role, resolved under lock below
        if from_user_id is not None:
            check_identifier(from_user_id, "from_user_id")
        if acting.user_id is None:
            if from_user_id is None:
                raise InvalidInputError("from_user_id", "is required when the host transfers ownership")
            giver = from_user_id
        else:
            if from_user_id is not None and from_user_id != acting.user_id:
                raise InvalidInputError("from_user_id", "a user can only transfer its own ownership")
            giver = acting.user_id
        if giver == to_user_id:
            raise InvalidInputError("to_user_id", "must be another member than the current owner")
        with typed_concurrency_errors(organization_id):
            begin_write(session.connection(), team_members, self.execution_options)
            custom: CustomRole | None = None
            if new_role is None:
                new_role, custom = self.resolve_role(session, organization_id, demote_to, lock="share")
            locked = self._lock(session, organization_id, giver, to_user_id)
            if acting.user_id is not None:
                self._actor_holding(session, organization_id, acting, locked, Action.TRANSFER_OWNERSHIP)
            source = locked.by_user.get(giver)
            if source is None:
                raise MemberNotFoundError(organization_id, giver)
            if source.role is not Role.OWNER:
                raise PermissionDeniedError(
                    Action.TRANSFER_OWNERSHIP.value, source.role.value, f"{giver!r} is not an OWNER"
                )
            target = locked.by_user.get(to_user_id)
            if target is None:
                raise MemberNotFoundError(organization_id, to_user_id)
            if target.suspended:
                # The organization would be left with a suspended OWNER and nobody able to act as one.
                raise InvalidInputError("to_user_id", "is suspended; resume the member before the transfer")
            if acting.user_id is not None:
                # The giver assigns itself its new role: the escalation rule holds for it too.
                self.permissions.require_may_grant(
                    self.holding(session, source), self.permissions.effective(new_role, custom)
                )
            now = self.clock()
            key = custom.key if custom is not None else None
            # Two writes: a savepoint makes them one, so a failure between them leaves neither.
            with session.begin_nested():
                if target.role is not Role.OWNER:
                    self._set_role(session, organization_id, to_user_id, Role.OWNER, now)
                if new_role is not Role.OWNER:
                    self._set_role(session, organization_id, giver, new_role, now, key)
            self.events.record(
                session,
                OwnershipTransferred(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    from_user_id=giver,
                    to_user_id=to_user_id,
                    from_user_new_role=new_role,
                    from_user_new_custom_role=key,
                ),
            )
        if target.role is Role.OWNER:
            return target
        return target.model_copy(update={"role": Role.OWNER, "custom_role": None, "updated_at": now})

    # -- verified attributes and suspension ------------------------------------------------------------

    def record_attributes(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        attributes: MemberAttributes,
        *,
        actor: Actor | str,
    ) -> Member:
        """Store what was verified about a member (a renewed licence, say), replacing what was stored.

        An accepted invitation stores what its accept policy verified by itself; this is for verifying
        again later. The actor needs ``members:change_role`` and must be able to manage the member, as for
        a role change (the host may always).

        Args:
            session: The caller's session.
            organization_id: The organization.
            user_id: The member.
            attributes: What was verified, by what, when and until when (build it with
                :func:`tenantkit.members.make_attributes` to validate it).
            actor: Who records it: a user id, an :class:`Actor`, or :data:`~tenantkit.HOST`.

        Returns:
            The membership with its new attributes.

        Raises:
            InvalidInputError: A malformed id, actor or attributes.
            MemberNotFoundError: ``user_id`` is not a member.
            PermissionDeniedError: The actor may not change this member.
            WriteNotAppliedError: The database did not keep the change; roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        if not isinstance(attributes, MemberAttributes):
            raise InvalidInputError("attributes", "must be MemberAttributes (see make_attributes)")
        acting = as_actor(actor)
        with typed_concurrency_errors(organization_id):
            locked = self._lock(session, organization_id, acting.user_id, user_id)
            actor_role = self._actor_holding(session, organization_id, acting, locked, Action.CHANGE_ROLES)
            target = locked.by_user.get(user_id)
            if target is None:
                raise MemberNotFoundError(organization_id, user_id)
            self._check_manages(actor_role, target, Action.CHANGE_ROLES)
            now = self.clock()
            row = attributes_to_row(attributes)
            session.execute(
                _SET_ATTRIBUTES,
                {
                    "org": organization_id,
                    "uid": user_id,
                    "new_attributes": row["attributes"],
                    "new_expires_at": row["credential_expires_at"],
                    "now": now,
                },
                execution_options=self.execution_options,
            )
            confirm_written(
                session,
                team_members,
                {"organization_id": organization_id, "user_id": user_id},
                {"credential_expires_at": attributes.expires_at},
                execution_options=self.execution_options,
            )
            self._record_attributes_event(session, organization_id, user_id, attributes, acting, now)
        return target.model_copy(update={"attributes": attributes, "updated_at": now})

    def _record_attributes_event(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        attributes: MemberAttributes,
        acting: Actor,
        now: datetime,
    ) -> None:
        self.events.record(
            session,
            MemberAttributesRecorded(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                user_id=user_id,
                verified_by=attributes.verified_by,
                expires_at=attributes.expires_at,
                attribute_names=tuple(sorted(attributes.values)),
            ),
        )

    def list_lapsing(
        self,
        session: Session | Connection,
        organization_id: str,
        before: datetime,
        *,
        actor: Actor | str,
        include_suspended: bool = False,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Member]:
        """Members whose verified attributes lapse (``attributes.expires_at``) before ``before``, soonest
        first.

        Those already lapsed are included (their expiry is before ``before`` too): pass the current time to
        list who must be suspended now, a later one to warn ahead of time.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            before: An aware datetime.
            actor: Who asks (needs ``members:read``), or :data:`tenantkit.HOST`.
            include_suspended: List members already suspended as well.
            limit: Page size, 1 to 500.
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first page.

        Raises:
            InvalidInputError: A malformed id, time, limit or cursor.
            PermissionDeniedError: The actor may not read the organization's members.
        """
        check_identifier(organization_id, "organization_id")
        cutoff = check_aware(before, "before")
        seek = _LAPSING_ORDER.seek(limit=limit, cursor=cursor)
        query = sa.select(team_members).where(
            team_members.c.organization_id == organization_id,
            team_members.c.credential_expires_at.is_not(None),
            team_members.c.credential_expires_at < cutoff,
        )
        if not include_suspended:
            query = query.where(team_members.c.suspended_at.is_(None))
        self.authorize(session, organization_id, actor, Action.READ_MEMBERS)
        return fetch_page(session, query, seek, _member, execution_options=self.execution_options)

    def suspend(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        *,
        actor: Actor | str,
        reason: str | None = None,
    ) -> Member:
        """Suspend a member: the row, role and attributes stay; every permission is denied until resumed.

        The actor needs ``members:remove`` and may not suspend a member above it, exactly as for a removal
        (suspension is the reversible form of it); nobody suspends themself. The organization's last active
        OWNER cannot be suspended. Suspending a suspended member changes nothing and records no event.

        Args:
            session: The caller's session.
            organization_id: The organization.
            user_id: The member to suspend.
            actor: Who suspends: a user id, an :class:`Actor`, or :data:`~tenantkit.HOST` (a nightly job
                suspending lapsed licences acts as the host).
            reason: Why, for the member and the audit log (``"licence expired"``); at most 200 characters.

        Returns:
            The suspended membership.

        Raises:
            InvalidInputError: A malformed id, actor or reason, or an actor suspending itself.
            MemberNotFoundError: ``user_id`` is not a member.
            PermissionDeniedError: The actor may not remove members, or not this one.
            LastOwnerError: ``user_id`` is the organization's last active OWNER.
            WriteNotAppliedError: The database did not keep the change; roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        why = None if reason is None else check_name(reason, "reason")
        acting = as_actor(actor)
        if acting.user_id == user_id:
            raise InvalidInputError("user_id", "a member cannot suspend itself")
        with typed_concurrency_errors(organization_id):
            locked, target = self._target_for_standing(session, organization_id, user_id, acting)
            if target.suspended:
                return target
            if locked.is_last_owner(target):
                raise LastOwnerError(organization_id, user_id)
            now = self.clock()
            self._set_standing(session, target, now, suspended_at=now, by=acting.user_id, reason=why)
            self.events.record(
                session,
                MemberSuspended(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    user_id=user_id,
                    role=target.role,
                    reason=why,
                ),
            )
        return target.model_copy(
            update={
                "suspended_at": now,
                "suspended_by": acting.user_id,
                "suspension_reason": why,
                "updated_at": now,
            }
        )

    def resume(self, session: Session, organization_id: str, user_id: str, *, actor: Actor | str) -> Member:
        """Lift a member's suspension: its role's permissions apply again.

        The actor needs what :meth:`suspend` needs. Resuming a member that is not suspended changes nothing
        and records no event. Resuming does not look at the member's attributes: a host whose suspension
        was a lapsed licence records the renewed one (:meth:`record_attributes`) first.

        Raises:
            InvalidInputError: A malformed id or actor.
            MemberNotFoundError: ``user_id`` is not a member.
            PermissionDeniedError: The actor may not remove members, or not this one (a suspended actor may
                do nothing, so nobody resumes themself).
            WriteNotAppliedError: The database did not keep the change; roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        acting = as_actor(actor)
        with typed_concurrency_errors(organization_id):
            _, target = self._target_for_standing(session, organization_id, user_id, acting)
            if not target.suspended:
                return target
            now = self.clock()
            self._set_standing(session, target, now, suspended_at=None, by=None, reason=None)
            self.events.record(
                session,
                MemberResumed(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    user_id=user_id,
                    role=target.role,
                ),
            )
        return target.model_copy(
            update={"suspended_at": None, "suspended_by": None, "suspension_reason": None, "updated_at": now}
        )

    def _target_for_standing(
        self, session: Session, organization_id: str, user_id: str, acting: Actor
    ) -> tuple[_Locked, Member]:
        """Lock the rows a suspension decides on, authorize the actor, and return them with the target."""
        locked = self._lock(session, organization_id, acting.user_id, user_id)
        actor_role = self._actor_holding(session, organization_id, acting, locked, Action.REMOVE_MEMBERS)
        target = locked.by_user.get(user_id)
        if target is None:
            raise MemberNotFoundError(organization_id, user_id)
        self._check_manages(actor_role, target, Action.REMOVE_MEMBERS)
        return locked, target

    def _set_standing(
        self,
        session: Session,
        target: Member,
        now: datetime,
        *,
        suspended_at: datetime | None,
        by: str | None,
        reason: str | None,
    ) -> None:
        session.execute(
            _SET_STANDING,
            {
                "org": target.organization_id,
                "uid": target.user_id,
                "new_suspended_at": suspended_at,
                "new_suspended_by": by,
                "new_reason": reason,
                "now": now,
            },
            execution_options=self.execution_options,
        )
        confirm_written(
            session,
            team_members,
            {"organization_id": target.organization_id, "user_id": target.user_id},
            {"suspended_at": suspended_at},
            execution_options=self.execution_options,
        )
