"""Events: what changed, seen inside the host's transaction and delivered to listeners once it commits.

Services record events on the SQLAlchemy ``Session`` they work in. Two kinds of subscriber hear of them:

* **At record time** (:meth:`EventDispatcher.on_record`), inside the transaction, with the session: an audit
  row or an outbox row written there commits or rolls back with the change itself.
* **After commit** (:meth:`EventDispatcher.subscribe`): the events wait on the session until the outermost
  transaction commits; a rollback (of the whole transaction, or of a savepoint the events were recorded in)
  discards them. So a listener never hears of a change that did not happen.

At commit the dispatcher also announces the cache keys the committed events made stale to its
``invalidator`` (see :mod:`tenantkit._invalidation`), before any listener runs.

Every event type has a stable dotted name (``member.added``) and one versioned payload built from an
allow-list of its fields (:meth:`Event.to_payload`): the one form every consumer (audit log, webhooks,
logs) stores or sends, never holding a key, token, digest or accept URL.
"""

from __future__ import annotations

import logging
import re
import threading
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from tenantkit._actor import Actor, ActorPayload
from tenantkit._invalidation import CacheKey, Invalidator, LocalInvalidator

logger = logging.getLogger("tenantkit.events")

_EVENT_TYPE_PATTERN = re.compile(r"[a-z][a-z_]*(\.[a-z][a-z_]*)+")
_ENVELOPE_FIELDS = frozenset({"organization_id", "actor", "occurred_at"})
_SECRET_TYPES = (SecretStr, SecretBytes)
_EVENT_TYPES: dict[str, type[Event]] = {}
EVENT_TYPES: Mapping[str, type[Event]] = types.MappingProxyType(_EVENT_TYPES)
"""Every event class by its dotted name (``"member.added"``), for filters that name event types."""


class EventPayload(TypedDict):
    """An event as every consumer stores or sends it: JSON-ready, versioned per event type, no secrets.

    ``data`` holds exactly the event type's ``payload_fields``; timestamps are ISO 8601 strings in UTC.
    """

    type: str
    version: int
    organization_id: str
    occurred_at: str
    actor: ActorPayload
    data: dict[str, Any]


class Event(BaseModel):
    """Base of every event: the organization, who acted and when, and the type's own fields.

    A subclass declares its stable dotted name (``event_type``), its payload ``version`` (raised when the
    payload changes incompatibly), and sorts each of its fields into ``payload_fields`` (the allow-list its
    payload is built from) or ``withheld_fields`` (never in a payload: secrets such as an accept URL). A
    field left unsorted, a secret field allowed, or a name taken twice is refused when the class is defined.

    Attributes:
        organization_id: The organization the change belongs to.
        actor: Who performed the change (:data:`~tenantkit.HOST` when the host acted).
        occurred_at: When it happened, from the service's clock.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    payload_fields: ClassVar[tuple[str, ...]] = ()
    withheld_fields: ClassVar[frozenset[str]] = frozenset()

    organization_id: str
    actor: Actor
    occurred_at: datetime

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _register(cls)

    def to_payload(self) -> EventPayload:
        """The event's versioned payload, built from its ``payload_fields`` only."""
        dumped = self.model_dump(mode="json", include={"occurred_at", *self.payload_fields})
        occurred_at = dumped.pop("occurred_at")
        return {
            "type": self.event_type,
            "version": self.version,
            "organization_id": self.organization_id,
            "occurred_at": occurred_at,
            "actor": self.actor.to_payload(),
            "data": dumped,
        }

    def cache_keys(self) -> tuple[CacheKey, ...]:
        """What this change made stale in caches; announced to the dispatcher's invalidator at commit."""
        return ()


def _register(cls: type[Event]) -> None:
    name = cls.__dict__.get("event_type")
    if not isinstance(name, str) or not _EVENT_TYPE_PATTERN.fullmatch(name):
        raise TypeError(f"{cls.__name__}.event_type must be a dotted lower-case name such as 'member.added'")
    if name in _EVENT_TYPES:
        raise TypeError(f"event type {name!r} of {cls.__name__} is already {_EVENT_TYPES[name].__name__}'s")
    own = set(cls.model_fields) - _ENVELOPE_FIELDS
    allowed, withheld = set(cls.payload_fields), set(cls.withheld_fields)
    if allowed & withheld or allowed | withheld != own:
        raise TypeError(
            f"{cls.__name__} must sort each of its fields {sorted(own)} into payload_fields or "
            "withheld_fields"
        )
    secret = sorted(field for field in allowed if _holds_secret(cls.model_fields[field].annotation))
    if secret:
        raise TypeError(f"{cls.__name__} allows the secret fields {secret} in its payload; withhold them")
    _EVENT_TYPES[name] = cls


def _holds_secret(annotation: object) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, _SECRET_TYPES):
        return True
    return any(_holds_secret(argument) for argument in typing.get_args(annotation))


class MemberAdded(Event):
    """A user became a member of an organization."""

    event_type: ClassVar[str] = "member.added"
    payload_fields: ClassVar[tuple[str, ...]] = ("user_id", "role", "custom_role")

    user_id: str
    role: str
    custom_role: str | None = None

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.member(self.organization_id, self.user_id),)


class MemberRoleChanged(Event):
    """A member's role changed."""

    event_type: ClassVar[str] = "member.role_changed"
    payload_fields: ClassVar[tuple[str, ...]] = (
        "user_id",
        "old_role",
        "new_role",
        "old_custom_role",
        "new_custom_role",
    )

    user_id: str
    old_role: str
    new_role: str
    old_custom_role: str | None = None
    new_custom_role: str | None = None

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.member(self.organization_id, self.user_id),)


class MemberRemoved(Event):
    """A member left or was removed. ``left`` is true when the member removed themself."""

    event_type: ClassVar[str] = "member.removed"
    payload_fields: ClassVar[tuple[str, ...]] = ("user_id", "role", "left")

    user_id: str
    role: str
    left: bool

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.member(self.organization_id, self.user_id),)


class OwnershipTransferred(Event):
    """Ownership passed from one member to another."""

    event_type: ClassVar[str] = "member.ownership_transferred"
    payload_fields: ClassVar[tuple[str, ...]] = (
        "from_user_id",
        "to_user_id",
        "from_user_new_role",
        "from_user_new_custom_role",
    )

    from_user_id: str
    to_user_id: str
    from_user_new_role: str
    from_user_new_custom_role: str | None = None

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (
            CacheKey.member(self.organization_id, self.from_user_id),
            CacheKey.member(self.organization_id, self.to_user_id),
        )


class MemberSuspended(Event):
    """A member was suspended: the row stays, its permissions are denied until it is resumed."""

    event_type: ClassVar[str] = "member.suspended"
    payload_fields: ClassVar[tuple[str, ...]] = ("user_id", "role", "reason")

    user_id: str
    role: str
    reason: str | None

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.member(self.organization_id, self.user_id),)


class MemberResumed(Event):
    """A suspended member was resumed and holds its role's permissions again."""

    event_type: ClassVar[str] = "member.resumed"
    payload_fields: ClassVar[tuple[str, ...]] = ("user_id", "role")

    user_id: str
    role: str

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.member(self.organization_id, self.user_id),)


class MemberAttributesRecorded(Event):
    """What a policy verified about a member was stored (at acceptance, or on re-verification).

    The payload names what verified it and when it lapses, and the attribute *names*: their values (a
    licence number, an NPI) stay on the membership and out of the audit log and webhooks.
    """

    event_type: ClassVar[str] = "member.attributes_recorded"
    payload_fields: ClassVar[tuple[str, ...]] = ("user_id", "verified_by", "expires_at", "attribute_names")

    user_id: str
    verified_by: str
    expires_at: datetime | None
    attribute_names: tuple[str, ...]


class DepartmentCreated(Event):
    """A department was created in an organization."""

    event_type: ClassVar[str] = "department.created"
    payload_fields: ClassVar[tuple[str, ...]] = ("department_id", "name")

    department_id: str
    name: str


class DepartmentUpdated(Event):
    """A department's name or description changed; ``changed`` names the fields."""

    event_type: ClassVar[str] = "department.updated"
    payload_fields: ClassVar[tuple[str, ...]] = ("department_id", "name", "changed")

    department_id: str
    name: str
    changed: tuple[str, ...]


class DepartmentDeleted(Event):
    """A department was deleted, with its memberships (``members`` counts them); the members stay."""

    event_type: ClassVar[str] = "department.deleted"
    payload_fields: ClassVar[tuple[str, ...]] = ("department_id", "name", "members")

    department_id: str
    name: str
    members: int


class DepartmentMemberAdded(Event):
    """A member of the organization joined one of its departments."""

    event_type: ClassVar[str] = "department.member_added"
    payload_fields: ClassVar[tuple[str, ...]] = ("department_id", "user_id")

    department_id: str
    user_id: str


class DepartmentMemberRemoved(Event):
    """A member left a department (the organization membership stays)."""

    event_type: ClassVar[str] = "department.member_removed"
    payload_fields: ClassVar[tuple[str, ...]] = ("department_id", "user_id")

    department_id: str
    user_id: str


class RoleCreated(Event):
    """An organization defined a custom role."""

    event_type: ClassVar[str] = "role.created"
    payload_fields: ClassVar[tuple[str, ...]] = ("role_key", "name", "rank", "permissions")

    role_key: str
    name: str
    rank: str
    permissions: tuple[str, ...]

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.role(self.organization_id, self.role_key),)


class RoleUpdated(Event):
    """A custom role's name, description or permissions changed; ``added`` and ``removed`` are the
    permissions that changed, ``changed`` the names of the fields that did."""

    event_type: ClassVar[str] = "role.updated"
    payload_fields: ClassVar[tuple[str, ...]] = ("role_key", "changed", "added", "removed")

    role_key: str
    changed: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.role(self.organization_id, self.role_key),)


class RoleDeleted(Event):
    """A custom role was deleted; ``reassigned_to`` is the role its holders were moved to (``None``: it had
    none), ``members`` how many were moved."""

    event_type: ClassVar[str] = "role.deleted"
    payload_fields: ClassVar[tuple[str, ...]] = ("role_key", "reassigned_to", "members")

    role_key: str
    reassigned_to: str | None
    members: int

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.role(self.organization_id, self.role_key),)


class ApiKeyIssued(Event):
    """An API key was issued. ``start`` is the non-secret beginning of the key."""

    event_type: ClassVar[str] = "api_key.issued"
    payload_fields: ClassVar[tuple[str, ...]] = ("key_id", "name", "start", "scopes")

    key_id: str
    name: str
    start: str
    scopes: tuple[str, ...]

    def cache_keys(self) -> tuple[CacheKey, ...]:
        # A cache of refusals may hold "no such key" for what is now this key.
        return (CacheKey.new_api_key(self.organization_id, self.key_id),)


class ApiKeyRevoked(Event):
    """An API key was revoked; it no longer verifies."""

    event_type: ClassVar[str] = "api_key.revoked"
    payload_fields: ClassVar[tuple[str, ...]] = ("key_id",)

    key_id: str

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.api_key(self.organization_id, self.key_id),)


class ApiKeyDeleted(Event):
    """An API key was deleted."""

    event_type: ClassVar[str] = "api_key.deleted"
    payload_fields: ClassVar[tuple[str, ...]] = ("key_id",)

    key_id: str

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.api_key(self.organization_id, self.key_id),)


class ApiKeyRotated(Event):
    """A key was replaced by a new one; the old one stays valid until ``old_key_valid_until``."""

    event_type: ClassVar[str] = "api_key.rotated"
    payload_fields: ClassVar[tuple[str, ...]] = ("old_key_id", "new_key_id", "old_key_valid_until")

    old_key_id: str
    new_key_id: str
    old_key_valid_until: datetime | None

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (
            CacheKey.api_key(self.organization_id, self.old_key_id),
            CacheKey.new_api_key(self.organization_id, self.new_key_id),
        )


class ApiKeyCreditsChanged(Event):
    """An admin set or added to a key's usage credits; ``remaining`` is what it has after the change."""

    event_type: ClassVar[str] = "api_key.credits_changed"
    payload_fields: ClassVar[tuple[str, ...]] = ("key_id", "operation", "amount", "remaining")

    key_id: str
    operation: str
    """``"set"`` or ``"add"``."""
    amount: int
    remaining: int

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.api_key(self.organization_id, self.key_id),)


_INVITATION_PAYLOAD = ("invitation_id", "email", "allowed_domains", "role", "custom_role", "expires_at")


class InvitationCreated(Event):
    """An invitation was created. ``accept_url`` holds the token: deliver it, never log it.

    The payload leaves ``accept_url`` out.
    """

    event_type: ClassVar[str] = "invitation.created"
    payload_fields: ClassVar[tuple[str, ...]] = _INVITATION_PAYLOAD
    withheld_fields: ClassVar[frozenset[str]] = frozenset({"accept_url"})

    invitation_id: str
    email: str | None
    allowed_domains: tuple[str, ...]
    role: str
    expires_at: datetime
    custom_role: str | None = None
    accept_url: SecretStr | None


class InvitationResent(Event):
    """An invitation got a new token (the old one is dead). ``accept_url`` holds the new token."""

    event_type: ClassVar[str] = "invitation.resent"
    payload_fields: ClassVar[tuple[str, ...]] = _INVITATION_PAYLOAD
    withheld_fields: ClassVar[frozenset[str]] = frozenset({"accept_url"})

    invitation_id: str
    email: str | None
    allowed_domains: tuple[str, ...]
    role: str
    expires_at: datetime
    custom_role: str | None = None
    accept_url: SecretStr | None


class InvitationAccepted(Event):
    """A user accepted an invitation and became a member (its ``MemberAdded`` is recorded beside it)."""

    event_type: ClassVar[str] = "invitation.accepted"
    payload_fields: ClassVar[tuple[str, ...]] = ("invitation_id", "user_id", "role")

    invitation_id: str
    user_id: str
    role: str


class InvitationRevoked(Event):
    """An invitation was revoked; its token no longer works."""

    event_type: ClassVar[str] = "invitation.revoked"
    payload_fields: ClassVar[tuple[str, ...]] = ("invitation_id",)

    invitation_id: str


class InvitationMarkedSent(Event):
    """The host recorded whether it emailed an invitation (``sent``); recorded only when that changes."""

    event_type: ClassVar[str] = "invitation.marked_sent"
    payload_fields: ClassVar[tuple[str, ...]] = ("invitation_id", "sent")

    invitation_id: str
    sent: bool


class PersonalDataRedacted(Event):
    """Personal fields of the audit log were redacted on request (the rows stay).

    ``subject`` says whose data went: ``"user"`` (the IP addresses and user agents of the rows
    ``subject_user_id`` acted in) or ``"email"`` (an invited address; the address itself is not repeated
    here). ``fields`` names what was cleared and ``rows`` counts the rows changed in this organization.
    """

    event_type: ClassVar[str] = "audit.personal_data_redacted"
    payload_fields: ClassVar[tuple[str, ...]] = ("subject", "subject_user_id", "fields", "rows")

    subject: str
    subject_user_id: str | None
    fields: tuple[str, ...]
    rows: int


class OrganizationSettingsChanged(Event):
    """An organization's settings document changed; ``settings_version`` is its new version.

    ``changed_keys`` names the keys whose value changed (set, changed or reset to the default). The values
    themselves are never recorded: a host's settings may hold secrets (a webhook signing key, a token), and
    tenantkit cannot tell which; the settings are read back, with their version, for the values.
    """

    event_type: ClassVar[str] = "organization.settings_changed"
    payload_fields: ClassVar[tuple[str, ...]] = ("settings_version", "changed_keys")

    settings_version: int
    changed_keys: tuple[str, ...]

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("organization", self.organization_id)]


class OrganizationDataDeleted(Event):
    """An organization's data was deleted: ``rows`` counts what went, table by table.

    ``audit`` is ``"kept"`` or ``"purged"``: with ``"purged"`` this event's own row is the one row of the
    organization's audit log left. The members' user ids and the keys' ids (``user_ids``, ``key_ids``) are
    carried for the caches to forget them and left out of the payload.
    """

    event_type: ClassVar[str] = "organization.data_deleted"
    payload_fields: ClassVar[tuple[str, ...]] = ("rows", "audit")
    withheld_fields: ClassVar[frozenset[str]] = frozenset({"user_ids", "key_ids"})

    rows: dict[str, int]
    audit: str
    user_ids: tuple[str, ...] = ()
    key_ids: tuple[str, ...] = ()

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("organization", self.organization_id)]

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (
            *(CacheKey.member(self.organization_id, user_id) for user_id in self.user_ids),
            *(CacheKey.api_key(self.organization_id, key_id) for key_id in self.key_ids),
        )


class UserDataErased(Event):
    """A user's data was erased from this organization's rows on request; ``rows`` counts them by table.

    Recorded once per organization the user's data was in, acted by the host. The audit log keeps the
    user's id (see the organization settings page: the chain's hashes cover it), and loses the user's IP
    addresses and user agents (a ``PersonalDataRedacted`` row says so).
    """

    event_type: ClassVar[str] = "organization.user_data_erased"
    payload_fields: ClassVar[tuple[str, ...]] = ("subject_user_id", "rows")

    subject_user_id: str
    rows: dict[str, int]

    def cache_keys(self) -> tuple[CacheKey, ...]:
        return (CacheKey.member(self.organization_id, self.subject_user_id),)


class DomainAdded(Event):
    """An organization claimed a domain (pending until verified); the token is never in the payload."""

    event_type: ClassVar[str] = "domain.added"
    payload_fields: ClassVar[tuple[str, ...]] = ("domain_id", "domain", "strategy")

    domain_id: str
    domain: str
    strategy: str

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("domain", self.domain_id)]


class DomainVerified(Event):
    """A domain was verified for the organization (by its DNS TXT record, or confirmed by the host)."""

    event_type: ClassVar[str] = "domain.verified"
    payload_fields: ClassVar[tuple[str, ...]] = ("domain_id", "domain", "strategy")

    domain_id: str
    domain: str
    strategy: str

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("domain", self.domain_id)]


class DomainFailed(Event):
    """A domain became ``failed``: its pending window passed (``expired``), or a re-check found its record
    gone or changed (``no_record``, ``token_mismatch``, ``nxdomain``) and downgraded a verified domain."""

    event_type: ClassVar[str] = "domain.failed"
    payload_fields: ClassVar[tuple[str, ...]] = ("domain_id", "domain", "reason", "was_verified")

    domain_id: str
    domain: str
    reason: str
    was_verified: bool

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("domain", self.domain_id)]


class DomainRemoved(Event):
    """An organization gave up a domain."""

    event_type: ClassVar[str] = "domain.removed"
    payload_fields: ClassVar[tuple[str, ...]] = ("domain_id", "domain")

    domain_id: str
    domain: str

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("domain", self.domain_id)]


class SsoConnectionCreated(Event):
    """An SSO connection was registered for the organization."""

    event_type: ClassVar[str] = "sso.connection_created"
    payload_fields: ClassVar[tuple[str, ...]] = (
        "connection_id",
        "provider",
        "protocol",
        "enabled",
        "enforce",
        "jit",
        "default_role",
        "role_authority",
    )

    connection_id: str
    provider: str
    protocol: str
    enabled: bool
    enforce: bool
    jit: bool
    default_role: str
    role_authority: str

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("sso_connection", self.connection_id)]


class SsoConnectionUpdated(Event):
    """An SSO connection's policy changed; ``changes`` holds each changed field's new value."""

    event_type: ClassVar[str] = "sso.connection_updated"
    payload_fields: ClassVar[tuple[str, ...]] = ("connection_id", "changes")

    connection_id: str
    changes: dict[str, str | bool]

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("sso_connection", self.connection_id)]


class SsoConnectionDeleted(Event):
    """An SSO connection was deleted; logins through it are refused from now on."""

    event_type: ClassVar[str] = "sso.connection_deleted"
    payload_fields: ClassVar[tuple[str, ...]] = ("connection_id",)

    connection_id: str

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("sso_connection", self.connection_id)]


E = TypeVar("E", bound=Event)
Listener = Callable[[Any], None]
_Entry = tuple[tuple[type[Event], ...], Callable[..., None]]

_PENDING_KEY = "tenantkit.pending_events"
_HOOKED_KEY = "tenantkit.events_hooked"


class EventDispatcher:
    """Hands recorded events to subscribers inside the transaction, and to listeners once it commits.

    Record-time subscribers (:meth:`on_record`) run at once, in the recording thread and transaction; one
    that raises aborts the change (the service call raises it, and the caller rolls back). Listeners
    (:meth:`subscribe`) run synchronously in the committing thread after commit, in subscription order; a
    listener that raises is logged and skipped: the change is already committed, and the other listeners
    still hear of it. Either kind may be absent.

    Attributes:
        caches: Every in-process cache evicted through this dispatcher registers here.
        invalidator: Where the cache keys a committed change made stale are announced, before the
            listeners run: ``caches`` by default; a cross-process bus wrapping ``caches`` replaces it.
    """

    def __init__(self) -> None:
        self._listeners: list[_Entry] = []
        self._recorders: list[_Entry] = []
        self._lock = threading.Lock()
        self.caches: LocalInvalidator = LocalInvalidator()
        self.invalidator: Invalidator = self.caches

    def subscribe(self, listener: Callable[[E], None], *event_types: type[E]) -> Callable[[], None]:
        """Call ``listener`` with every committed event of ``event_types`` (all events if none given).

        Returns:
            A function that unsubscribes the listener.
        """
        return self._add(self._listeners, listener, event_types)

    def on_record(
        self, subscriber: Callable[[Session, E], None], *event_types: type[E]
    ) -> Callable[[], None]:
        """Call ``subscriber(session, event)`` as each event of ``event_types`` (all if none) is recorded.

        It runs inside the transaction (or savepoint) the change runs in, so whatever it writes through
        ``session`` (an audit row, an outbox row) commits or rolls back with the change. An exception it
        raises propagates out of the service call, which then has not completed: roll back.

        Returns:
            A function that unsubscribes it.
        """
        return self._add(self._recorders, subscriber, event_types)

    def record(self, session: Session, event: Event) -> None:
        """Hand ``event`` to the record-time subscribers now, and keep it on ``session`` for after commit.

        It is delivered to listeners when the transaction commits, and dropped on rollback.
        """
        for subscriber in self._matching(self._recorders, event):
            subscriber(session, event)
        if not session.info.get(_HOOKED_KEY):
            self._hook(session)
        transaction = session.get_nested_transaction() or session.get_transaction()
        pending: list[tuple[Event, SessionTransaction | None, EventDispatcher]] = session.info.setdefault(
            _PENDING_KEY, []
        )
        pending.append((event, transaction, self))

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to every matching listener now."""
        for listener in self._matching(self._listeners, event):
            try:
                listener(event)
            except Exception:
                logger.exception("tenantkit event listener %r failed on %s", listener, event.event_type)

    def _announce(self, events: list[Event]) -> None:
        """Tell the invalidator what the committed ``events`` made stale (a failure is logged, not raised)."""
        keys = list(dict.fromkeys(key for event in events for key in event.cache_keys()))
        if not keys:
            return
        try:
            self.invalidator.invalidate(keys)
        except Exception:
            logger.exception("tenantkit invalidator %r failed on %d cache keys", self.invalidator, len(keys))

    def _add(
        self, entries: list[_Entry], callback: Callable[..., None], event_types: tuple[type[Event], ...]
    ) -> Callable[[], None]:
        entry: _Entry = (event_types or (Event,), callback)
        with self._lock:
            entries.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in entries:
                    entries.remove(entry)

        return unsubscribe

    def _matching(self, entries: list[_Entry], event: Event) -> list[Callable[..., None]]:
        with self._lock:
            return [callback for event_types, callback in entries if isinstance(event, event_types)]

    @staticmethod
    def _hook(session: Session) -> None:
        session.info[_HOOKED_KEY] = True
        sa_event.listen(session, "after_commit", _deliver_pending)
        sa_event.listen(session, "after_soft_rollback", _discard_rolled_back)


def _deliver_pending(session: Session) -> None:
    # SQLAlchemy also fires after_commit when a savepoint is released; only the outermost commit counts.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING_KEY, [])
    # Caches first, so that a listener looking a key up already sees it gone.
    by_dispatcher: dict[EventDispatcher, list[Event]] = {}
    for event, _transaction, dispatcher in pending:
        by_dispatcher.setdefault(dispatcher, []).append(event)
    for dispatcher, events in by_dispatcher.items():
        dispatcher._announce(events)
    for event, _transaction, dispatcher in pending:
        dispatcher.deliver(event)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _discard_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING_KEY)
    if not pending:
        return
    session.info[_PENDING_KEY] = [
        entry for entry in pending if entry[1] is not None and not _within(entry[1], previous_transaction)
    ]
