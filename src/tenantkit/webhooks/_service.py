"""Webhook endpoints of an organization: create, list, update, enable, disable, delete, rotate, resend.

Every call takes the ``actor`` and checks ``webhooks:manage`` (changes) or ``webhooks:read`` (listings) in
the organization; the host (:data:`~tenantkit.HOST`) passes. Every change records an event (so the audit
log has it) in the caller's transaction, which the caller commits. URLs are checked at registration (and
again at every delivery): see :mod:`tenantkit.webhooks._targets`.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, as_actor
from tenantkit._clock import Clock, as_utc, system_clock
from tenantkit._db import fetch_page, rowcount
from tenantkit._errors import (
    ConfigurationError,
    InvalidInputError,
    WebhookEndpointNotFoundError,
    WebhookMessageNotFoundError,
)
from tenantkit._events import EVENT_TYPES, EventDispatcher
from tenantkit._metrics import WebhookMetrics
from tenantkit._pagination import DEFAULT_PAGE_SIZE, Keyset, Page
from tenantkit._settings import WebhookSettings
from tenantkit._tables import webhook_deliveries, webhook_endpoints, webhook_messages
from tenantkit._validation import check_identifier, check_name
from tenantkit.members._service import MembershipService
from tenantkit.roles._policy import Action
from tenantkit.webhooks._events import (
    WebhookDeliveriesRecovered,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointDisabled,
    WebhookEndpointEnabled,
    WebhookEndpointUpdated,
    WebhookMessageResent,
    WebhookSecretRotated,
    WebhookTestSent,
)
from tenantkit.webhooks._models import (
    CreatedWebhookEndpoint,
    DeliveryReport,
    OutboxHealth,
    WebhookDelivery,
    WebhookEndpoint,
)
from tenantkit.webhooks._outbox import TEST_EVENT_TYPE, OutboxWriter, queue_message
from tenantkit.webhooks._secrets import SecretBox
from tenantkit.webhooks._signing import generate_secret
from tenantkit.webhooks._targets import AddressPolicy, Resolver, check_url, resolve_target, system_resolver

__all__ = ["MAX_DESCRIPTION_LENGTH", "MAX_EVENT_TYPES", "WebhookService"]

MAX_DESCRIPTION_LENGTH = 500
MAX_EVENT_TYPES = 100

_ENDPOINTS = Keyset("webhook_endpoints", webhook_endpoints.c.created_at, webhook_endpoints.c.id)
_DELIVERIES = Keyset(
    "webhook_deliveries", webhook_deliveries.c.created_at, webhook_deliveries.c.id, descending=True
)
_ENDPOINT_COLUMNS = [
    column for column in webhook_endpoints.c if column.name not in ("secret", "previous_secret")
]
_DELIVERY_QUERY = sa.select(*webhook_deliveries.c, webhook_messages.c.event_type).join(
    webhook_messages, webhook_messages.c.id == webhook_deliveries.c.message_id
)


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        organization_id=row.organization_id,
        url=row.url,
        description=row.description,
        event_types=tuple(row.event_types),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        organization_id=row.organization_id,
        message_id=row.message_id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_duration_ms=row.last_duration_ms,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


def check_event_types(event_types: object) -> tuple[str, ...]:
    """The event types an endpoint subscribes to: known dotted names, at least one, no duplicates."""
    if isinstance(event_types, str) or not isinstance(event_types, Iterable):
        raise InvalidInputError("event_types", "must be a list of event types, not a single string")
    names: dict[str, None] = {}
    for event_type in event_types:
        name = event_type if isinstance(event_type, str) else getattr(event_type, "event_type", None)
        if not isinstance(name, str) or name not in EVENT_TYPES:
            known = ", ".join(sorted(EVENT_TYPES))
            raise InvalidInputError(
                "event_types", f"unknown event type {event_type!r}; expected one of {known}"
            )
        names.setdefault(name, None)
    if not names:
        raise InvalidInputError("event_types", "name at least one event type the endpoint wants")
    if len(names) > MAX_EVENT_TYPES:
        raise InvalidInputError("event_types", f"name at most {MAX_EVENT_TYPES} event types")
    return tuple(names)


def _description(value: object) -> str:
    if value is None or value == "":
        return ""
    return check_name(value, "description", max_length=MAX_DESCRIPTION_LENGTH)


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


class WebhookService:
    """An organization's webhook endpoints, the outbox they are fed from, and the worker that sends.

    A :class:`~tenantkit.TenantKit` builds one (``kit.webhooks``) when ``WebhookSettings(secret_keys=[...])``
    is given. Built, it subscribes its outbox writer to the dispatcher at record time: from then on every
    event an enabled endpoint of its organization wants is queued in the change's own transaction.

    Args:
        membership: The membership service whose permission table and schema it uses.
        settings: The webhook settings (keys, timeout, lease, what the sender may reach).
        clock: Where the current time comes from.
        events: The dispatcher to subscribe to (the membership service's by default).
        resolver: Resolves endpoint hosts, at registration and before each delivery (the system's by
            default; inject one to test, or to use a resolver of your own).
        verify: TLS verification of receivers: ``True`` (the system's CAs), a CA bundle path or an
            ``ssl.SSLContext``.
        metrics: Told of each delivery's outcome and of the outbox's depth after each worker round.

    Raises:
        ConfigurationError: The settings hold no encryption key, or ``cryptography`` is missing.
    """

    def __init__(
        self,
        *,
        membership: MembershipService,
        settings: WebhookSettings,
        clock: Clock = system_clock,
        events: EventDispatcher | None = None,
        resolver: Resolver = system_resolver,
        verify: bool | str | ssl.SSLContext = True,
        metrics: WebhookMetrics | None = None,
    ) -> None:
        if not settings.enabled:
            raise ConfigurationError(
                "webhooks need a key to encrypt signing secrets: WebhookSettings(secret_keys=[...]) or "
                "TENANTKIT_WEBHOOK_SECRET_KEYS"
            )
        self.membership = membership
        self.settings = settings
        self.clock = clock
        self.events: EventDispatcher = events or membership.events
        self.resolver = resolver
        self.verify = verify
        self.metrics = metrics
        self.policy: AddressPolicy = AddressPolicy.from_settings(settings)
        self._box = SecretBox([key.get_secret_value() for key in settings.secret_keys])
        self._unsubscribe: Callable[[], None] | None = self.events.on_record(OutboxWriter(self._options))

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.membership.execution_options

    def close(self) -> None:
        """Stop queueing messages (unsubscribe the outbox writer); management and delivery still work."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- endpoints -------------------------------------------------------------------------------------

    def create_endpoint(
        self,
        session: Session,
        organization_id: str,
        url: str,
        event_types: Iterable[str],
        *,
        actor: Actor | str,
        description: str | None = None,
    ) -> CreatedWebhookEndpoint:
        """Register an endpoint and return it with its signing secret, shown this once.

        Args:
            session: The caller's session; the caller commits.
            organization_id: The organization.
            url: Where to send (``https://``; checked, resolved and refused if it reaches a private address).
            event_types: The event types it wants (dotted names or event classes); at least one.
            actor: Who acts: needs ``webhooks:manage``, or :data:`tenantkit.HOST`.
            description: A note (at most 500 characters).

        Raises:
            InvalidInputError: A malformed id, description or event type list.
            UnsafeWebhookUrlError: The URL is refused.
            PermissionDeniedError: The actor may not manage webhooks here.
        """
        check_identifier(organization_id, "organization_id")
        types = check_event_types(event_types)
        note = _description(description)
        acting = as_actor(actor)
        checked = check_url(url, self.policy)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_WEBHOOKS)
        # Resolved only for an actor allowed to register: nobody else makes the host look names up.
        resolve_target(checked, self.policy, self.resolver)
        now = self.clock()
        secret = generate_secret()
        endpoint_id = str(uuid.uuid4())
        session.execute(
            webhook_endpoints.insert().values(
                id=endpoint_id,
                organization_id=organization_id,
                url=checked,
                description=note,
                event_types=list(types),
                enabled=True,
                secret=self._box.encrypt(secret),
                created_by=acting.user_id,
                created_at=now,
                updated_at=now,
            ),
            execution_options=self._options,
        )
        self.events.record(
            session,
            WebhookEndpointCreated(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                endpoint_id=endpoint_id,
                host=_host(checked),
                event_types=types,
            ),
        )
        endpoint = self._get(session, organization_id, endpoint_id)
        return CreatedWebhookEndpoint(endpoint=endpoint, secret=secret)  # type: ignore[arg-type]

    def _get(self, session: Session | Connection, organization_id: str, endpoint_id: str) -> WebhookEndpoint:
        row = session.execute(
            sa.select(*_ENDPOINT_COLUMNS).where(
                webhook_endpoints.c.organization_id == organization_id, webhook_endpoints.c.id == endpoint_id
            ),
            execution_options=self._options,
        ).first()
        if row is None:
            raise WebhookEndpointNotFoundError(organization_id, endpoint_id)
        return _endpoint(row)

    def get_endpoint(
        self, session: Session | Connection, organization_id: str, endpoint_id: str, *, actor: Actor | str
    ) -> WebhookEndpoint:
        """One endpoint (``webhooks:read``).

        Raises:
            WebhookEndpointNotFoundError: No such endpoint in the organization.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(endpoint_id, "endpoint_id")
        self.membership.authorize(session, organization_id, actor, Action.READ_WEBHOOKS)
        return self._get(session, organization_id, endpoint_id)

    def list_endpoints(
        self,
        session: Session | Connection,
        organization_id: str,
        *,
        actor: Actor | str,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[WebhookEndpoint]:
        """The organization's endpoints, oldest first, a page at a time (``webhooks:read``)."""
        check_identifier(organization_id, "organization_id")
        seek = _ENDPOINTS.seek(limit=limit, cursor=cursor)
        self.membership.authorize(session, organization_id, actor, Action.READ_WEBHOOKS)
        query = sa.select(*_ENDPOINT_COLUMNS).where(webhook_endpoints.c.organization_id == organization_id)
        return fetch_page(session, query, seek, _endpoint, execution_options=self._options)

    def _change(
        self, session: Session, organization_id: str, endpoint_id: str, actor: Actor | str
    ) -> tuple[Actor, datetime, WebhookEndpoint]:
        check_identifier(organization_id, "organization_id")
        check_identifier(endpoint_id, "endpoint_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_WEBHOOKS)
        current = self._get(session, organization_id, endpoint_id)
        return acting, self.clock(), current

    def _update(self, session: Session, endpoint: WebhookEndpoint, **values: Any) -> WebhookEndpoint:
        session.execute(
            webhook_endpoints.update()
            .where(
                webhook_endpoints.c.organization_id == endpoint.organization_id,
                webhook_endpoints.c.id == endpoint.id,
            )
            .values(**values),
            execution_options=self._options,
        )
        return self._get(session, endpoint.organization_id, endpoint.id)

    def update_endpoint(
        self,
        session: Session,
        organization_id: str,
        endpoint_id: str,
        *,
        actor: Actor | str,
        url: str | None = None,
        event_types: Iterable[str] | None = None,
        description: str | None = None,
    ) -> WebhookEndpoint:
        """Change an endpoint's URL, event types or description (``webhooks:manage``); ``None`` keeps one.

        Raises:
            UnsafeWebhookUrlError: The new URL is refused.
            WebhookEndpointNotFoundError: No such endpoint in the organization.
        """
        values: dict[str, Any] = {}
        if url is not None:
            values["url"] = check_url(url, self.policy)
        if event_types is not None:
            values["event_types"] = list(check_event_types(event_types))
        if description is not None:
            values["description"] = _description(description)
        acting, now, current = self._change(session, organization_id, endpoint_id, actor)
        if url is not None:
            resolve_target(values["url"], self.policy, self.resolver)
        if not values:
            return current
        updated = self._update(session, current, updated_at=now, **values)
        self.events.record(
            session,
            WebhookEndpointUpdated(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                endpoint_id=endpoint_id,
                host=_host(updated.url),
                event_types=updated.event_types,
                changed=tuple(sorted(values)),
            ),
        )
        return updated

    def enable_endpoint(
        self, session: Session, organization_id: str, endpoint_id: str, *, actor: Actor | str
    ) -> WebhookEndpoint:
        """Enable an endpoint again; its run of failures starts afresh (``webhooks:manage``)."""
        acting, now, current = self._change(session, organization_id, endpoint_id, actor)
        if current.enabled:
            return current
        updated = self._update(
            session, current, enabled=True, disabled_reason=None, failing_since=None, updated_at=now
        )
        self.events.record(
            session,
            WebhookEndpointEnabled(
                organization_id=organization_id, actor=acting, occurred_at=now, endpoint_id=endpoint_id
            ),
        )
        return updated

    def disable_endpoint(
        self, session: Session, organization_id: str, endpoint_id: str, *, actor: Actor | str
    ) -> WebhookEndpoint:
        """Disable an endpoint by hand: nothing is queued for it, its pending deliveries fail when due."""
        acting, now, current = self._change(session, organization_id, endpoint_id, actor)
        if not current.enabled:
            return current
        updated = self._update(session, current, enabled=False, disabled_reason="manual", updated_at=now)
        self.events.record(
            session,
            WebhookEndpointDisabled(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                endpoint_id=endpoint_id,
                reason="manual",
            ),
        )
        return updated

    def delete_endpoint(
        self, session: Session, organization_id: str, endpoint_id: str, *, actor: Actor | str
    ) -> WebhookEndpoint:
        """Delete an endpoint and its deliveries (``webhooks:manage``); returns what it was."""
        acting, now, current = self._change(session, organization_id, endpoint_id, actor)
        session.execute(
            webhook_deliveries.delete().where(
                webhook_deliveries.c.organization_id == organization_id,
                webhook_deliveries.c.endpoint_id == endpoint_id,
            ),
            execution_options=self._options,
        )
        session.execute(
            webhook_endpoints.delete().where(
                webhook_endpoints.c.organization_id == organization_id, webhook_endpoints.c.id == endpoint_id
            ),
            execution_options=self._options,
        )
        self.events.record(
            session,
            WebhookEndpointDeleted(
                organization_id=organization_id, actor=acting, occurred_at=now, endpoint_id=endpoint_id
            ),
        )
        return current

    def rotate_secret(
        self,
        session: Session,
        organization_id: str,
        endpoint_id: str,
        *,
        actor: Actor | str,
        grace: timedelta | None = None,
    ) -> CreatedWebhookEndpoint:
        """Give an endpoint a new signing secret, shown this once (``webhooks:manage``).

        During ``grace`` (the settings' ``rotation_grace``, 24 h, by default) each delivery carries two
        signatures, the new secret's and the previous one's, so the receiver can switch at its own pace.
        """
        if grace is not None and (not isinstance(grace, timedelta) or grace < timedelta(0)):
            raise InvalidInputError("grace", "must be a timedelta of zero or more")
        acting, now, current = self._change(session, organization_id, endpoint_id, actor)
        period = self.settings.rotation_grace if grace is None else grace
        stored = session.execute(
            sa.select(webhook_endpoints.c.secret).where(
                webhook_endpoints.c.organization_id == organization_id, webhook_endpoints.c.id == endpoint_id
            ),
            execution_options=self._options,
        ).scalar_one()
        secret = generate_secret()
        until = now + period if period > timedelta(0) else None
        updated = self._update(
            session,
            current,
            secret=self._box.encrypt(secret),
            previous_secret=self._box.rotate(stored) if until is not None else None,
            previous_secret_expires_at=until,
            updated_at=now,
        )
        self.events.record(
            session,
            WebhookSecretRotated(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                endpoint_id=endpoint_id,
                previous_valid_until=until,
            ),
        )
        return CreatedWebhookEndpoint(endpoint=updated, secret=secret)  # type: ignore[arg-type]

    # -- deliveries ------------------------------------------------------------------------------------

    def list_deliveries(
        self,
        session: Session | Connection,
        organization_id: str,
        *,
        actor: Actor | str,
        endpoint_id: str | None = None,
        message_id: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[WebhookDelivery]:
        """The deliveries of one endpoint or of one message, newest first (``webhooks:read``).

        Raises:
            InvalidInputError: Neither or both of ``endpoint_id`` and ``message_id``.
        """
        check_identifier(organization_id, "organization_id")
        if (endpoint_id is None) == (message_id is None):
            raise InvalidInputError("endpoint_id", "give either endpoint_id or message_id")
        seek = _DELIVERIES.seek(limit=limit, cursor=cursor)
        query = _DELIVERY_QUERY.where(webhook_deliveries.c.organization_id == organization_id)
        if endpoint_id is not None:
            query = query.where(
                webhook_deliveries.c.endpoint_id == check_identifier(endpoint_id, "endpoint_id")
            )
        else:
            query = query.where(webhook_deliveries.c.message_id == check_identifier(message_id, "message_id"))
        self.membership.authorize(session, organization_id, actor, Action.READ_WEBHOOKS)
        return fetch_page(session, query, seek, _delivery, execution_options=self._options)

    def resend(
        self, session: Session, organization_id: str, message_id: str, *, actor: Actor | str
    ) -> list[WebhookDelivery]:
        """Queue a message again for each enabled endpoint it went to, with the same ``webhook-id``.

        Raises:
            WebhookMessageNotFoundError: No such message in the organization.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(message_id, "message_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_WEBHOOKS)
        exists = session.execute(
            sa.select(webhook_messages.c.id).where(
                webhook_messages.c.organization_id == organization_id, webhook_messages.c.id == message_id
            ),
            execution_options=self._options,
        ).first()
        if exists is None:
            raise WebhookMessageNotFoundError(organization_id, message_id)
        endpoints = sorted(
            session.execute(
                sa.select(webhook_deliveries.c.endpoint_id)
                .distinct()
                .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                .where(
                    webhook_deliveries.c.organization_id == organization_id,
                    webhook_deliveries.c.message_id == message_id,
                    webhook_endpoints.c.enabled.is_(True),
                ),
                execution_options=self._options,
            ).scalars()
        )
        now = self.clock()
        ids = [str(uuid.uuid4()) for _ in endpoints]
        if endpoints:
            session.execute(
                webhook_deliveries.insert(),
                [
                    {
                        "id": delivery_id,
                        "organization_id": organization_id,
                        "message_id": message_id,
                        "endpoint_id": endpoint_id,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for delivery_id, endpoint_id in zip(ids, endpoints, strict=True)
                ],
                execution_options=self._options,
            )
        self.events.record(
            session,
            WebhookMessageResent(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                message_id=message_id,
                deliveries=len(ids),
            ),
        )
        rows = session.execute(
            _DELIVERY_QUERY.where(webhook_deliveries.c.id.in_(ids)), execution_options=self._options
        ).all()
        return [_delivery(row) for row in rows]

    def recover(
        self, session: Session, organization_id: str, endpoint_id: str, *, since: datetime, actor: Actor | str
    ) -> int:
        """Queue again every delivery of the endpoint that failed for good since ``since``; return how many.

        Raises:
            InvalidInputError: ``since`` is naive.
            WebhookEndpointNotFoundError: No such endpoint in the organization.
        """
        start = as_utc(since, "since")
        acting, now, current = self._change(session, organization_id, endpoint_id, actor)
        count = rowcount(
            session.execute(
                webhook_deliveries.update()
                .where(
                    webhook_deliveries.c.organization_id == organization_id,
                    webhook_deliveries.c.endpoint_id == endpoint_id,
                    webhook_deliveries.c.status == "failed",
                    webhook_deliveries.c.created_at >= start,
                )
                .values(status="pending", attempts=0, next_attempt_at=now, lease_token=None),
                execution_options=self._options,
            )
        )
        self.events.record(
            session,
            WebhookDeliveriesRecovered(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                endpoint_id=current.id,
                since=start,
                deliveries=count,
            ),
        )
        return count

    def send_test(
        self, session: Session, organization_id: str, endpoint_id: str, *, actor: Actor | str
    ) -> WebhookDelivery:
        """Queue a ``webhook.test`` message for this one endpoint (enabled or not: it is a test)."""
        acting, now, current = self._change(session, organization_id, endpoint_id, actor)
        body = json.dumps(
            {
                "type": TEST_EVENT_TYPE,
                "timestamp": now.isoformat(),
                "version": 1,
                "organization_id": organization_id,
                "actor": acting.to_payload(),
                "data": {"endpoint_id": current.id},
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        message_id = queue_message(
            session,
            organization_id=organization_id,
            event_type=TEST_EVENT_TYPE,
            body=body,
            endpoint_ids=[current.id],
            now=now,
            execution_options=self._options,
        )
        self.events.record(
            session,
            WebhookTestSent(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                endpoint_id=current.id,
                message_id=message_id,
            ),
        )
        row = session.execute(
            _DELIVERY_QUERY.where(webhook_deliveries.c.message_id == message_id),
            execution_options=self._options,
        ).one()
        return _delivery(row)

    # -- the worker's side -----------------------------------------------------------------------------

    def health(self, connection: Session | Connection) -> OutboxHealth:
        """The outbox's depth and the age of its oldest due delivery (for health checks; no actor)."""
        now = self.clock()
        pending = webhook_deliveries.c.status == "pending"
        depth = connection.execute(
            sa.select(sa.func.count()).select_from(webhook_deliveries).where(pending),
            execution_options=self._options,
        ).scalar_one()
        due, oldest = connection.execute(
            sa.select(sa.func.count(), sa.func.min(webhook_deliveries.c.next_attempt_at)).where(
                pending, webhook_deliveries.c.next_attempt_at <= now
            ),
            execution_options=self._options,
        ).one()
        age = None if oldest is None else max((now - oldest).total_seconds(), 0.0)
        return OutboxHealth(depth=int(depth), due=int(due), oldest_due_age_seconds=age)

    def deliver_due(self, engine: sa.Engine, *, limit: int = 100) -> DeliveryReport:
        """Claim up to ``limit`` due deliveries, send them, record the outcomes; see :func:`deliver_due`."""
        from tenantkit.webhooks._worker import deliver_batch

        return deliver_batch(self, engine, limit=limit)

    def decrypt(self, stored: str) -> str:
        """A stored signing secret in the clear (for the sender only; never log it)."""
        return self._box.decrypt(stored)

    def __repr__(self) -> str:
        return f"WebhookService(policy={self.policy!r})"
