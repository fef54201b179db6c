"""SSO connections as policy records, home-realm discovery, the SSO login policy and SSO enforcement.

tenantkit never speaks SAML or OIDC: the identity provider (Ory Polis, WorkOS, Auth0, Clerk, the host's
pysaml2) authenticates the user and hands the host an email and whether it is verified. tenantkit decides
whether that login is acceptable for the connection's organization, creates the membership just in time
when the connection says so, and refuses non-SSO actors where the organization requires SSO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import HOST, Actor, Authentication, AuthMethod, as_actor
from tenantkit._addresses import email_domain, normalize_email
from tenantkit._clock import Clock
from tenantkit._db import typed_concurrency_errors
from tenantkit._errors import (
    AlreadyMemberError,
    InvalidInputError,
    SsoConnectionExistsError,
    SsoConnectionNotFoundError,
    SsoLoginRefusedError,
    SsoRequiredError,
)
from tenantkit._events import (
    EventDispatcher,
    SsoConnectionCreated,
    SsoConnectionDeleted,
    SsoConnectionUpdated,
)
from tenantkit._tables import new_id, organization_domains, sso_connections, sso_member_sync
from tenantkit._validation import check_identifier, check_name
from tenantkit.domains._service import DomainService
from tenantkit.members._service import Member, MembershipService
from tenantkit.organizations._service import OrganizationService
from tenantkit.roles._policy import Action, Role

if TYPE_CHECKING:
    from tenantkit.sso._sync import MembershipSync

__all__ = [
    "Provider",
    "RealmDiscovery",
    "RoleAuthority",
    "SsoConnection",
    "SsoLogin",
    "SsoProtocol",
    "SsoService",
]

Provider = Literal["polis", "workos", "auth0", "clerk", "custom"]
SsoProtocol = Literal["saml", "oidc"]
RoleAuthority = Literal["tenantkit", "provider"]
_C = sso_connections
_D = organization_domains
_NO_ORGANIZATION = "tenantkit-no-organization"
"""The organization id discovery reads settings for when no domain matched, so every answer costs the same."""


class SsoConnection(BaseModel):
    """An organization's SSO connection: which provider, and the policy tenantkit applies to its logins.

    Attributes:
        id: tenantkit's id of the connection (what :class:`~tenantkit.Authentication` names).
        organization_id: The organization its logins land in.
        provider: ``polis``, ``workos``, ``auth0``, ``clerk`` or ``custom``.
        protocol: ``saml`` or ``oidc``.
        provider_connection_id: The provider's id of the connection (a Polis tenant/product, a WorkOS
            ``conn_…``).
        name: A label for people.
        enabled: Logins through it are accepted (and discovery offers it) only while enabled.
        enforce: Members whose email is in a verified domain of the organization must sign in through it.
        jit: Create the membership on a first SSO login, with ``default_role``.
        default_role: The rank of JIT members (``MEMBER`` or ``ADMIN``, never ``OWNER``).
        role_authority: Who decides roles after creation: ``tenantkit`` (default) or the ``provider``.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    provider: Provider
    protocol: SsoProtocol
    provider_connection_id: str
    name: str
    enabled: bool
    enforce: bool
    jit: bool
    default_role: Role
    role_authority: RoleAuthority
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RealmDiscovery:
    """Home-realm discovery's answer, of the same shape for every email.

    Attributes:
        sso: ``required`` (the user must sign in through ``connection_id``), ``available`` (may), ``none``.
        connection_id: tenantkit's connection id, ``None`` when ``sso`` is ``none``.
        provider: The connection's provider, to route the login.
        provider_connection_id: The provider's connection id, to start the login there.
    """

    sso: Literal["required", "available", "none"]
    connection_id: str | None = None
    provider: str | None = None
    provider_connection_id: str | None = None


@dataclass(frozen=True)
class SsoLogin:
    """An accepted SSO login.

    Attributes:
        connection: The connection it came through.
        member: The membership in the connection's organization (new when ``created``).
        created: Whether JIT created the membership just now.
        actor: The user as an :class:`~tenantkit.Actor` that states it signed in through the connection;
            act with it, and organizations that require SSO accept it.
    """

    connection: SsoConnection
    member: Member
    created: bool
    actor: Actor


def _connection(row: Any) -> SsoConnection:
    return SsoConnection.model_validate(row._mapping)


def _choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInputError(field, f"must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


class SsoService:
    """SSO connections and the policy of SSO logins; the one place ``require_sso`` is enforced.

    Building it makes it the membership service's sign-in policy: from then on every user actor that states
    how it signed in (:attr:`Actor.authenticated_by <tenantkit.Actor.authenticated_by>`) is checked
    against its organization's ``require_sso`` setting before it may act there.

    Args:
        membership: The membership service (permissions, JIT memberships, schema).
        domains: The verified domains a login's email must belong to.
        organizations: The organizations' settings (``require_sso``); without it, only connections decide.
        clock: Where the current time comes from (the membership service's by default).
        events: The dispatcher (the membership service's by default).
    """

    def __init__(
        self,
        *,
        membership: MembershipService,
        domains: DomainService,
        organizations: OrganizationService | None = None,
        clock: Clock | None = None,
        events: EventDispatcher | None = None,
    ) -> None:
        self.membership = membership
        self.domains = domains
        self.organizations = organizations
        self.clock: Clock = clock or membership.clock
        self.events: EventDispatcher = events or membership.events
        membership.sign_in_policy = self

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.membership.execution_options

    def _row(self, session: Session | Connection, organization_id: str | None, connection_id: str) -> Any:
        query = sa.select(_C).where(_C.c.id == connection_id)
        if organization_id is not None:
            query = query.where(_C.c.organization_id == organization_id)
        row = session.execute(query, execution_options=self._options).first()
        if row is None:
            raise SsoConnectionNotFoundError(connection_id)
        return row

    def _check_role(self, session: Session, organization_id: str, acting: Actor, role: Role | str) -> Role:
        try:
            rank = Role(role)
        except ValueError:
            raise InvalidInputError("default_role", "must be MEMBER or ADMIN") from None
        if rank is Role.OWNER:
            raise InvalidInputError("default_role", "JIT never makes an OWNER; choose MEMBER or ADMIN")
        held = self.membership.grant_authority(session, organization_id, acting, Action.MANAGE_SSO)
        permissions = self.membership.permissions
        permissions.require_may_grant(held, permissions.effective(rank))
        return rank

    # -- connections -------------------------------------------------------------------------------------

    def create_connection(
        self,
        session: Session,
        organization_id: str,
        *,
        provider: Provider,
        protocol: SsoProtocol,
        provider_connection_id: str,
        name: str,
        actor: Actor | str,
        enabled: bool = True,
        enforce: bool = False,
        jit: bool = False,
        default_role: Role | str = Role.MEMBER,
        role_authority: RoleAuthority = "tenantkit",
    ) -> SsoConnection:
        """Register an SSO connection of the organization (``sso:manage``).

        Raises:
            InvalidInputError: An unknown provider, protocol or authority; an OWNER default role.
            PermissionDeniedError: The actor may not manage SSO.
            RoleEscalationError: The actor may not grant ``default_role`` itself.
            SsoConnectionExistsError: The provider's connection id is registered already.
        """
        check_identifier(organization_id, "organization_id")
        values: dict[str, Any] = {
            "provider": _choice("provider", provider, get_args(Provider)),
            "protocol": _choice("protocol", protocol, get_args(SsoProtocol)),
            "provider_connection_id": check_identifier(provider_connection_id, "provider_connection_id"),
            "name": check_name(name, "name"),
            "enabled": bool(enabled),
            "enforce": bool(enforce),
            "jit": bool(jit),
            "role_authority": _choice("role_authority", role_authority, get_args(RoleAuthority)),
        }
        acting = as_actor(actor)
        values["default_role"] = self._check_role(session, organization_id, acting, default_role).value
        now = self.clock()
        connection_id = new_id()
        with typed_concurrency_errors(organization_id):
            try:
                with session.begin_nested():
                    session.execute(
                        sa.insert(_C).values(
                            id=connection_id,
                            organization_id=organization_id,
                            created_at=now,
                            updated_at=now,
                            **values,
                        ),
                        execution_options=self._options,
                    )
            except sa.exc.IntegrityError:
                raise SsoConnectionExistsError(values["provider"], values["provider_connection_id"]) from None
            self.events.record(
                session,
                SsoConnectionCreated(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    connection_id=connection_id,
                    **{key: values[key] for key in SsoConnectionCreated.payload_fields if key in values},
                ),
            )
        return _connection(self._row(session, organization_id, connection_id))

    def update_connection(
        self,
        session: Session,
        organization_id: str,
        connection_id: str,
        *,
        actor: Actor | str,
        name: str | None = None,
        enabled: bool | None = None,
        enforce: bool | None = None,
        jit: bool | None = None,
        default_role: Role | str | None = None,
        role_authority: RoleAuthority | None = None,
    ) -> SsoConnection:
        """Change a connection's policy; only the fields given change, and only a real change is recorded.

        Raises:
            SsoConnectionNotFoundError: No such connection in the organization.
            PermissionDeniedError: The actor may not manage SSO.
            RoleEscalationError: The actor may not grant ``default_role`` itself.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(connection_id, "connection_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_SSO)
        wanted: dict[str, str | bool] = {}
        if name is not None:
            wanted["name"] = check_name(name, "name")
        for key, flag in (("enabled", enabled), ("enforce", enforce), ("jit", jit)):
            if flag is not None:
                wanted[key] = bool(flag)
        if default_role is not None:
            wanted["default_role"] = self._check_role(session, organization_id, acting, default_role).value
        if role_authority is not None:
            wanted["role_authority"] = _choice("role_authority", role_authority, get_args(RoleAuthority))
        with typed_concurrency_errors(organization_id):
            row = self._row(session, organization_id, connection_id)
            current = _connection(row).model_dump(mode="json")
            changes = {key: value for key, value in wanted.items() if current[key] != value}
            if changes:
                now = self.clock()
                session.execute(
                    sa.update(_C).where(_C.c.id == connection_id).values(updated_at=now, **changes),
                    execution_options=self._options,
                )
                self.events.record(
                    session,
                    SsoConnectionUpdated(
                        organization_id=organization_id,
                        actor=acting,
                        occurred_at=now,
                        connection_id=connection_id,
                        changes=changes,
                    ),
                )
        return _connection(self._row(session, organization_id, connection_id))

    def delete_connection(
        self, session: Session, organization_id: str, connection_id: str, *, actor: Actor | str
    ) -> SsoConnection:
        """Delete a connection; logins through it are refused from now on (memberships stay).

        Raises:
            SsoConnectionNotFoundError: No such connection in the organization.
            PermissionDeniedError: The actor may not manage SSO.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(connection_id, "connection_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_SSO)
        with typed_concurrency_errors(organization_id):
            row = self._row(session, organization_id, connection_id)
            session.execute(
                sa.delete(sso_member_sync).where(sso_member_sync.c.connection_id == connection_id),
                execution_options=self._options,
            )
            session.execute(sa.delete(_C).where(_C.c.id == connection_id), execution_options=self._options)
            self.events.record(
                session,
                SsoConnectionDeleted(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=self.clock(),
                    connection_id=connection_id,
                ),
            )
        return _connection(row)

    def list_connections(
        self, session: Session | Connection, organization_id: str, *, actor: Actor | str
    ) -> list[SsoConnection]:
        """The organization's connections, oldest first (``sso:manage``)."""
        check_identifier(organization_id, "organization_id")
        self.membership.authorize(session, organization_id, actor, Action.MANAGE_SSO)
        rows = session.execute(
            sa.select(_C).where(_C.c.organization_id == organization_id).order_by(_C.c.created_at, _C.c.id),
            execution_options=self._options,
        )
        return [_connection(row) for row in rows]

    def get_connection(
        self, session: Session | Connection, organization_id: str, connection_id: str, *, actor: Actor | str
    ) -> SsoConnection:
        """One connection of the organization (``sso:manage``)."""
        check_identifier(organization_id, "organization_id")
        check_identifier(connection_id, "connection_id")
        self.membership.authorize(session, organization_id, actor, Action.MANAGE_SSO)
        return _connection(self._row(session, organization_id, connection_id))

    def membership_sync(
        self,
        connection_id: str,
        *,
        roles: Mapping[str, Role | str],
        provider_organization_id: str | None = None,
    ) -> MembershipSync:
        """The provider membership sync of a connection: Clerk or WorkOS membership events → memberships.

        Args:
            connection_id: tenantkit's id of the connection (its organization, its ``role_authority``).
            roles: The declared role mapping: provider role → rank or custom role's key (never ``OWNER``),
                ``{"org:admin": "ADMIN", "org:member": "MEMBER", "org:nurse": "nurse"}``.
            provider_organization_id: The provider's organization the connection stands for; events of
                another are refused.

        Raises:
            ConfigurationError: An empty mapping, or a role mapped to ``OWNER``.
        """
        from tenantkit.sso._sync import MembershipSync

        return MembershipSync(
            self, connection_id, roles=roles, provider_organization_id=provider_organization_id
        )

    # -- the login page ----------------------------------------------------------------------------------

    def _require_sso_setting(self, session: Session | Connection, organization_id: str) -> bool:
        if self.organizations is None:
            return False
        return self.organizations.policy(session, organization_id).require_sso

    def discover(self, session: Session | Connection, email: str) -> RealmDiscovery:
        """Home-realm discovery: which SSO connection (if any) an email must or may sign in through.

        The documented exception to scoping by organization: an unauthenticated read across organizations.
        Every email costs the same two queries (the organization's settings are read even when no domain
        matched) and gets an answer of the same shape, so the answers do not tell which domains exist.

        Raises:
            InvalidInputError: ``email`` is not an email address (whatever its domain).
        """
        domain = email_domain(normalize_email(email))
        row = session.execute(
            sa.select(_C.c.id, _C.c.organization_id, _C.c.provider, _C.c.provider_connection_id, _C.c.enforce)
            .join(_D, _D.c.organization_id == _C.c.organization_id)
            .where(_D.c.verified_domain.in_(self.domains.candidates(domain)), _C.c.enabled.is_(True))
            .order_by(_C.c.enforce.desc(), _C.c.created_at, _C.c.id)
            .limit(1),
            execution_options=self._options,
        ).first()
        required = self._require_sso_setting(session, row.organization_id if row else _NO_ORGANIZATION)
        if row is None:
            return RealmDiscovery("none")
        return RealmDiscovery(
            "required" if row.enforce or required else "available",
            connection_id=row.id,
            provider=row.provider,
            provider_connection_id=row.provider_connection_id,
        )

    def sso_required(self, session: Session | Connection, organization_id: str, email: str) -> bool:
        """Whether ``email`` must sign in to the organization through SSO: its ``require_sso`` setting is
        on, or the email is in a verified domain of it and an enabled connection of it enforces SSO."""
        check_identifier(organization_id, "organization_id")
        domain = email_domain(normalize_email(email))
        if self._require_sso_setting(session, organization_id):
            return True
        enforcing = session.execute(
            sa.select(_C.c.id).where(
                _C.c.organization_id == organization_id, _C.c.enabled.is_(True), _C.c.enforce.is_(True)
            ),
            execution_options=self._options,
        ).first()
        return enforcing is not None and self.domains.verified_in(session, organization_id, domain)

    def check_sso_login(
        self,
        session: Session,
        connection_id: str,
        *,
        email: str,
        email_verified: bool,
        user_id: str,
        claims: Mapping[str, object] | None = None,
    ) -> SsoLogin:
        """Decide an SSO login the identity provider authenticated, and create the membership if JIT.

        Accepted only through an enabled connection, for a verified email whose domain is a verified domain
        of the connection's organization (compared IDNA-normalized, case-insensitively; a subdomain only when
        the domain service covers subdomains). A member keeps the role they have: a login never lowers or
        raises it. A non-member becomes a member with the connection's ``default_role`` when JIT is on (as
        the connection's identity-provider actor, audited), and is refused otherwise.

        Args:
            session: The caller's session.
            connection_id: tenantkit's id of the connection the login came through.
            email: The email the provider asserted.
            email_verified: Whether the provider vouches for it (the OIDC ``email_verified`` claim).
            user_id: The host's user id for this identity.
            claims: The provider's other claims; not stored, and not part of the decision.

        Raises:
            SsoConnectionNotFoundError: No such connection.
            SsoLoginRefusedError: Refused; ``reason`` says why. Nothing was changed.
            InvalidInputError: A malformed email or user id.
        """
        del claims  # The decision rests on the email and its verification alone.
        check_identifier(connection_id, "connection_id")
        check_identifier(user_id, "user_id")
        connection = _connection(self._row(session, None, connection_id))
        organization_id = connection.organization_id
        if not connection.enabled:
            raise SsoLoginRefusedError("connection_disabled", "the connection is disabled")
        if email_verified is not True:
            raise SsoLoginRefusedError("email_unverified", "the identity provider did not verify the email")
        domain = email_domain(normalize_email(email))
        if not self.domains.verified_in(session, organization_id, domain):
            raise SsoLoginRefusedError(
                "domain_not_verified", f"{domain!r} is not a verified domain of the connection's organization"
            )
        created = False
        if not self._is_member(session, organization_id, user_id):
            if not connection.jit:
                raise SsoLoginRefusedError("not_a_member", "not a member, and the connection has no JIT")
            created = self._join(session, connection, user_id)
        member = self.membership.get(session, organization_id, user_id, actor=HOST)
        actor = Actor.user(user_id, authenticated_by=Authentication.sso(connection.id))
        return SsoLogin(connection=connection, member=member, created=created, actor=actor)

    def _is_member(self, session: Session, organization_id: str, user_id: str) -> bool:
        # get_role answers None for a suspended member too; a suspended member is still a member.
        role, _custom_role, _suspended = self.membership._standing(session, organization_id, user_id)
        return role is not None

    def _join(self, session: Session, connection: SsoConnection, user_id: str) -> bool:
        try:
            self.membership._admit(
                session,
                connection.organization_id,
                user_id,
                connection.default_role,
                Actor.identity_provider(connection.id),
            )
        except AlreadyMemberError:
            return False  # a concurrent login or add made them a member first; their role stands
        return True

    # -- enforcement -------------------------------------------------------------------------------------

    def check_actor(
        self, session: Session | Connection, organization_id: str, actor: Actor, action: str
    ) -> None:
        """Refuse a user actor that signed in otherwise than through an enabled SSO connection of the
        organization, where its ``require_sso`` setting is on. The one place that setting is enforced.

        Raises:
            SsoRequiredError: The organization requires SSO and the actor did not sign in through it.
        """
        authentication = actor.authenticated_by
        if authentication is None:
            return
        if authentication.method is AuthMethod.SSO and authentication.connection_id is not None:
            found = session.execute(
                sa.select(_C.c.id).where(
                    _C.c.id == authentication.connection_id,
                    _C.c.organization_id == organization_id,
                    _C.c.enabled.is_(True),
                ),
                execution_options=self._options,
            ).first()
            if found is not None:
                return
        if self._require_sso_setting(session, organization_id):
            raise SsoRequiredError(action, organization_id, str(authentication))
