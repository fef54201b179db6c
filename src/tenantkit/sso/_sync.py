"""Provider membership sync: an identity provider's organization-membership events, applied through the
membership service as the connection's identity-provider actor.

Clerk (``organizationMembership.created|updated|deleted``, delivered by Svix) and WorkOS
(``organization_membership.created|updated|deleted``) tell the host when a membership changes at the
provider. :class:`MembershipSync` turns one such event into at most one membership change:

* idempotent on the provider's event id, and in order per member: a redelivered event, or one older than the
  last applied for that member, changes nothing (``sso_member_sync`` keeps the last id and time);
* the role is the declared mapping's (``org:admin`` → ``ADMIN``, a custom Clerk role → a custom role's key),
  never ``OWNER``; who decides roles after creation is the connection's ``role_authority``: ``tenantkit``
  (the provider's role is applied only when the membership is created) or ``provider`` (its changes are
  applied, never to an OWNER: an OWNER stays an OWNER);
* the last-owner rule holds against a provider's deletion: refused, and the refusal reported in the result.

Every change is made by the membership service with ``Actor.identity_provider(connection_id)``, so its
events and audit rows name the connection. Verify the delivery's signature before (Standard Webhooks; see
the "Domains and SSO" page and ``examples/clerk_sync.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from tenantkit._actor import HOST, Actor
from tenantkit._db import begin_write, typed_concurrency_errors
from tenantkit._errors import (
    AlreadyMemberError,
    ConcurrentUpdateError,
    ConfigurationError,
    InvalidInputError,
    LastOwnerError,
    TenantKitError,
    UnknownRoleError,
)
from tenantkit._tables import sso_connections, sso_member_sync
from tenantkit._validation import check_identifier
from tenantkit.members._service import Member
from tenantkit.roles._policy import Role
from tenantkit.sso._service import SsoConnection, SsoService, _connection

__all__ = ["MembershipSync", "ProviderMembershipEvent", "SyncOutcome", "SyncResult"]

_S = sso_member_sync
SyncAction = Literal["created", "updated", "deleted"]
SyncOutcome = Literal["created", "role_changed", "removed", "unchanged", "duplicate", "stale", "refused"]

_CLERK_TYPES: Mapping[str, SyncAction] = {
    "organizationMembership.created": "created",
    "organizationMembership.updated": "updated",
    "organizationMembership.deleted": "deleted",
}
_WORKOS_TYPES: Mapping[str, SyncAction] = {
    "organization_membership.created": "created",
    "organization_membership.updated": "updated",
    "organization_membership.deleted": "deleted",
}


def _path(payload: Mapping[str, Any], *keys: str) -> Any:
    value: Any = payload
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            raise InvalidInputError(".".join(keys), "is missing from the provider's event")
        value = value[key]
    return value


def _milliseconds(value: object, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, "must be milliseconds since the epoch")
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


class ProviderMembershipEvent(BaseModel):
    """One organization-membership event of an identity provider, in provider-neutral form.

    Attributes:
        event_id: The provider's id of the event (Svix's ``svix-id`` for Clerk, the event's ``id`` for
            WorkOS): the same on every redelivery.
        action: ``created``, ``updated`` or ``deleted``.
        occurred_at: When the membership changed at the provider (orders one member's events).
        user_id: The user, as the host knows them (the provider's user id, unless the host maps it).
        provider_organization_id: The provider's organization id, checked against the sync's.
        provider_role: The provider's role (``org:admin``); ``None`` for a deletion that names none.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=255)
    action: SyncAction
    occurred_at: datetime
    user_id: str = Field(min_length=1, max_length=255)
    provider_organization_id: str | None = None
    provider_role: str | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone")
        return value.astimezone(timezone.utc)

    @classmethod
    def from_clerk(cls, payload: Mapping[str, Any], *, event_id: str) -> ProviderMembershipEvent:
        """The event of a Clerk ``organizationMembership.*`` webhook (its verified JSON body).

        Args:
            payload: The body, parsed.
            event_id: The delivery's ``svix-id`` header (Clerk's bodies carry no event id).

        Raises:
            InvalidInputError: Not an organization-membership event, or a field is missing.
        """
        kind = str(payload.get("type"))
        if kind not in _CLERK_TYPES:
            raise InvalidInputError("type", f"{kind!r} is not an organizationMembership event")
        data = _path(payload, "data")
        stamp = data.get("updated_at", payload.get("timestamp")) if isinstance(data, Mapping) else None
        return cls(
            event_id=check_identifier(event_id, "event_id"),
            action=_CLERK_TYPES[kind],
            occurred_at=_milliseconds(stamp, "data.updated_at"),
            user_id=_path(payload, "data", "public_user_data", "user_id"),
            provider_organization_id=_path(payload, "data", "organization", "id"),
            provider_role=data.get("role"),
        )

    @classmethod
    def from_workos(cls, payload: Mapping[str, Any]) -> ProviderMembershipEvent:
        """The event of a WorkOS ``organization_membership.*`` event (webhook or events API).

        Raises:
            InvalidInputError: Not an organization-membership event, or a field is missing.
        """
        kind = str(payload.get("event"))
        if kind not in _WORKOS_TYPES:
            raise InvalidInputError("event", f"{kind!r} is not an organization_membership event")
        role = _path(payload, "data").get("role")
        stamp = _path(payload, "data", "updated_at")
        try:
            occurred = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInputError("data.updated_at", "is not an ISO 8601 time") from None
        return cls(
            event_id=_path(payload, "id"),
            action=_WORKOS_TYPES[kind],
            occurred_at=occurred,
            user_id=_path(payload, "data", "user_id"),
            provider_organization_id=_path(payload, "data", "organization_id"),
            provider_role=role.get("slug") if isinstance(role, Mapping) else role,
        )


@dataclass(frozen=True)
class SyncResult:
    """What one provider event did.

    Attributes:
        event_id: The provider's event id.
        user_id: The member it is about.
        outcome: ``created``, ``role_changed``, ``removed``; ``unchanged`` (nothing to do, see ``reason``);
            ``duplicate`` (this event was applied before), ``stale`` (an event at least as new was applied
            for this member); ``refused`` (tenantkit's rules refused it: ``refusal`` and ``reason`` say
            why, and nothing changed).
        member: The membership after the event (``None`` when there is none).
        reason: Why nothing changed: ``tenantkit_authoritative``, ``not_a_member``, ``same_role``,
            ``owner_kept``, ``last_owner``, ``unmapped_role``, ``unknown_role``.
        refusal: The error tenantkit refused the change with (``LastOwnerError``...), for ``refused``.
    """

    event_id: str
    user_id: str
    outcome: SyncOutcome
    member: Member | None = None
    reason: str | None = None
    refusal: TenantKitError | None = None


class _Refused(Exception):
    def __init__(self, reason: str, error: TenantKitError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class MembershipSync:
    """Apply one SSO connection's provider membership events, with a declared role mapping.

    Build it with :meth:`SsoService.membership_sync <tenantkit.sso.SsoService.membership_sync>`.

    Args:
        sso: The SSO service (connections, the membership service).
        connection_id: tenantkit's id of the connection whose provider sends the events; its organization is
            where memberships change, and its ``role_authority`` who decides roles after creation.
        roles: The provider's roles and the roles they stand for: a rank (``ADMIN``, ``MEMBER``) or a custom
            role's key. ``OWNER`` is refused: ownership is decided in tenantkit.
        provider_organization_id: The provider's organization the connection stands for; an event of
            another organization is refused before anything is read. ``None`` trusts the host's routing.

    Raises:
        ConfigurationError: An empty mapping, or a provider role mapped to ``OWNER``.
    """

    def __init__(
        self,
        sso: SsoService,
        connection_id: str,
        *,
        roles: Mapping[str, Role | str],
        provider_organization_id: str | None = None,
    ) -> None:
        if not roles:
            raise ConfigurationError("roles: map at least one provider role (org:member -> MEMBER)")
        mapped: dict[str, str] = {}
        for provider_role, role in roles.items():
            value = role.value if isinstance(role, Role) else str(role).strip()
            if value.upper() == Role.OWNER.value:
                raise ConfigurationError(
                    f"roles: {provider_role!r} maps to OWNER; a provider never makes owners, tenantkit does"
                )
            mapped[provider_role] = (
                value.upper() if value.upper() in (Role.ADMIN.value, Role.MEMBER.value) else value
            )
        self.sso: SsoService = sso
        self.connection_id: str = check_identifier(connection_id, "connection_id")
        self.roles: Mapping[str, str] = mapped
        self.provider_organization_id: str | None = provider_organization_id

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.sso.membership.execution_options

    def apply(self, session: Session, event: ProviderMembershipEvent) -> SyncResult:
        """Apply ``event`` in the caller's transaction (commit it, then answer the provider 2xx).

        Raises:
            SsoConnectionNotFoundError: The connection does not exist.
            InvalidInputError: The event is of another provider organization, or a malformed user id.
            ConcurrentUpdateError: Another delivery for the same member is being applied; retry (the
                provider redelivers).
        """
        if self.provider_organization_id is not None and (
            event.provider_organization_id != self.provider_organization_id
        ):
            raise InvalidInputError(
                "provider_organization_id",
                f"the event is for {event.provider_organization_id!r}, not this connection's organization",
            )
        user_id = check_identifier(event.user_id, "user_id")
        connection = _connection(self.sso._row(session, None, self.connection_id))
        organization_id = connection.organization_id
        with typed_concurrency_errors(organization_id):
            # SQLite: take the write lock before reading the state (a no-op write; the table needs an id).
            begin_write(session.connection(), sso_connections, self._options)
            state = session.execute(
                sa.select(_S.c.last_event_id, _S.c.last_event_at)
                .where(_S.c.connection_id == connection.id, _S.c.user_id == user_id)
                .with_for_update(),
                execution_options=self._options,
            ).first()
            if state is not None:
                if state.last_event_id == event.event_id:
                    return self._result(session, event, organization_id, "duplicate")
                if (event.occurred_at, event.event_id) <= (state.last_event_at, state.last_event_id):
                    return self._result(session, event, organization_id, "stale")
            try:
                with session.begin_nested():
                    outcome, reason = self._change(session, connection, event, user_id)
            except _Refused as refused:
                outcome, reason, error = "refused", refused.reason, refused.error
            else:
                error = None
            self._remember(session, connection, user_id, event, state is not None)
        return self._result(session, event, organization_id, outcome, reason, error)

    def _result(
        self,
        session: Session,
        event: ProviderMembershipEvent,
        organization_id: str,
        outcome: SyncOutcome,
        reason: str | None = None,
        error: TenantKitError | None = None,
    ) -> SyncResult:
        membership = self.sso.membership
        member = None
        if membership._standing(session, organization_id, event.user_id)[0] is not None:
            member = membership.get(session, organization_id, event.user_id, actor=HOST)
        return SyncResult(event.event_id, event.user_id, outcome, member, reason, error)

    def _remember(
        self,
        session: Session,
        connection: SsoConnection,
        user_id: str,
        event: ProviderMembershipEvent,
        known: bool,
    ) -> None:
        values = {
            "last_event_id": event.event_id,
            "last_event_at": event.occurred_at,
            "updated_at": self.sso.clock(),
        }
        if known:
            session.execute(
                sa.update(_S)
                .where(_S.c.connection_id == connection.id, _S.c.user_id == user_id)
                .values(**values),
                execution_options=self._options,
            )
            return
        try:
            with session.begin_nested():
                session.execute(
                    sa.insert(_S).values(
                        connection_id=connection.id,
                        user_id=user_id,
                        organization_id=connection.organization_id,
                        **values,
                    ),
                    execution_options=self._options,
                )
        except sa.exc.IntegrityError:
            # Another delivery for this member got there first: its transaction decides; this one retries.
            raise ConcurrentUpdateError(
                connection.organization_id, "a concurrent sync of this member"
            ) from None

    def _mapped(self, event: ProviderMembershipEvent) -> str:
        role = self.roles.get(event.provider_role or "")
        if role is None:
            raise _Refused("unmapped_role")
        return role

    def _change(
        self, session: Session, connection: SsoConnection, event: ProviderMembershipEvent, user_id: str
    ) -> tuple[SyncOutcome, str | None]:
        membership = self.sso.membership
        current, _custom, _suspended = membership._standing(session, connection.organization_id, user_id)
        if event.action == "deleted":
            return self._remove(session, connection, user_id, current)
        if current is None:
            if event.action == "updated" and connection.role_authority != "provider":
                return "unchanged", "not_a_member"  # removed in tenantkit, which decides: not brought back
            return self._create(session, connection, event, user_id)
        if connection.role_authority != "provider":
            return "unchanged", "tenantkit_authoritative"
        return self._update(session, connection, event, user_id, current)

    def _remove(
        self, session: Session, connection: SsoConnection, user_id: str, current: Role | None
    ) -> tuple[SyncOutcome, str | None]:
        if current is None:
            return "unchanged", "not_a_member"
        acting = Actor.identity_provider(connection.id)
        try:
            self.sso.membership._remove(session, connection.organization_id, user_id, acting, authorize=False)
        except LastOwnerError as error:
            raise _Refused("last_owner", error) from None
        return "removed", None

    def _create(
        self, session: Session, connection: SsoConnection, event: ProviderMembershipEvent, user_id: str
    ) -> tuple[SyncOutcome, str | None]:
        membership = self.sso.membership
        organization_id = connection.organization_id
        try:
            rank, custom = membership.resolve_role(
                session, organization_id, self._mapped(event), lock="share"
            )
        except UnknownRoleError as error:
            raise _Refused("unknown_role", error) from None
        try:
            membership._admit(
                session,
                organization_id,
                user_id,
                rank,
                Actor.identity_provider(connection.id),
                custom_role=None if custom is None else custom.key,
            )
        except AlreadyMemberError:
            return "unchanged", "same_role"  # a concurrent add made them a member first; their role stands
        return "created", None

    def _update(
        self,
        session: Session,
        connection: SsoConnection,
        event: ProviderMembershipEvent,
        user_id: str,
        current: Role,
    ) -> tuple[SyncOutcome, str | None]:
        membership = self.sso.membership
        wanted = self._mapped(event)
        if current is Role.OWNER:
            raise _Refused("owner_kept")  # ownership is tenantkit's: a provider never demotes an OWNER
        before = membership.get(session, connection.organization_id, user_id, actor=HOST)
        acting = Actor.identity_provider(connection.id)
        try:
            after = membership._change_role(
                session, connection.organization_id, user_id, wanted, acting, authorize=False
            )
        except UnknownRoleError as error:
            raise _Refused("unknown_role", error) from None
        if (after.role, after.custom_role) == (before.role, before.custom_role):
            return "unchanged", "same_role"
        return "role_changed", None
