"""The worker: claim due deliveries under a lease, send each, record what happened, retry on a schedule.

A round (:func:`deliver_due`) has three steps, each its own short transaction:

1. **Claim.** Select up to ``limit`` pending deliveries whose ``next_attempt_at`` has come, locking them with
   ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB (so concurrent workers, on any number of machines,
   take disjoint sets without waiting on each other), or under SQLite's single write lock. Each claimed row
   gets a fresh ``lease_token``, one more attempt, and ``next_attempt_at`` moved to the end of the lease:
   no other worker sees it as due until then.
2. **Send** (outside any transaction): see :class:`~tenantkit.webhooks._sender.Sender`.
3. **Record**, conditional on the row still carrying this worker's lease token: success, a retry at the
   next step of the schedule (or the receiver's ``Retry-After``), or a final failure; the endpoint's run of
   failures is tracked and it is disabled after ``disable_after`` of continuous failure, or at once on 410.

A worker killed between 1 and 3 loses nothing: the lease runs out and the delivery is due again, so it is
sent at least once; only the attempts in flight at the kill can arrive twice, with the same ``webhook-id``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit._actor import HOST
from tenantkit._db import begin_write, rowcount
from tenantkit._pagination import check_limit
from tenantkit._tables import webhook_deliveries, webhook_endpoints, webhook_messages
from tenantkit.webhooks._events import WebhookEndpointDisabled
from tenantkit.webhooks._models import DeliveryReport
from tenantkit.webhooks._sender import Attempt, Sender

if TYPE_CHECKING:
    from tenantkit.webhooks._service import WebhookService

__all__ = ["RETRY_SCHEDULE", "deliver_batch", "deliver_due", "next_delay", "run_worker"]

logger = logging.getLogger("tenantkit.webhooks")

RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""The wait after each failed attempt (Svix's schedule): the first attempt is at once, the eighth the last."""

MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
_JITTER = 0.2
_MAX_RETRY_AFTER = RETRY_SCHEDULE[-1]
_random = secrets.SystemRandom()


def next_delay(attempts: int, retry_after: timedelta | None = None) -> timedelta | None:
    """The wait before the next attempt after ``attempts`` failed ones, with jitter; ``None``: give up.

    A receiver's ``Retry-After`` (429, 5xx) replaces the schedule's step, bounded to 1 s .. 10 h.
    """
    if attempts >= MAX_ATTEMPTS:
        return None
    if retry_after is not None:
        return min(max(retry_after, timedelta(seconds=1)), _MAX_RETRY_AFTER)
    step = RETRY_SCHEDULE[attempts - 1]
    return step * _random.uniform(1 - _JITTER, 1 + _JITTER)


@dataclass(frozen=True)
class _Claimed:
    id: str
    organization_id: str
    message_id: str
    endpoint_id: str
    attempts: int
    body: str
    url: str
    enabled: bool
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


_CLAIMED = (
    sa.select(
        webhook_deliveries.c.id,
        webhook_deliveries.c.organization_id,
        webhook_deliveries.c.message_id,
        webhook_deliveries.c.endpoint_id,
        webhook_deliveries.c.attempts,
        webhook_messages.c.body,
        webhook_endpoints.c.url,
        webhook_endpoints.c.enabled,
        webhook_endpoints.c.secret,
        webhook_endpoints.c.previous_secret,
        webhook_endpoints.c.previous_secret_expires_at,
    )
    .join(webhook_messages, webhook_messages.c.id == webhook_deliveries.c.message_id)
    .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
)


def _claim(service: WebhookService, engine: sa.Engine, limit: int, token: str) -> list[_Claimed]:
    options = service.membership.execution_options
    now = service.clock()
    with engine.begin() as connection:
        due = (
            sa.select(webhook_deliveries.c.id)
            .where(webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_at <= now)
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(limit)
        )
        if connection.dialect.name == "sqlite":
            begin_write(connection, webhook_deliveries, options)  # one writer at a time claims
        else:
            due = due.with_for_update(skip_locked=True)
        ids = list(connection.execute(due, execution_options=options).scalars())
        if not ids:
            return []
        connection.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.id.in_(ids))
            .values(
                next_attempt_at=now + service.settings.lease,
                lease_token=token,
                attempts=webhook_deliveries.c.attempts + 1,
                last_attempt_at=now,
            ),
            execution_options=options,
        )
        rows = connection.execute(
            _CLAIMED.where(webhook_deliveries.c.id.in_(ids)).order_by(webhook_deliveries.c.created_at),
            execution_options=options,
        ).all()
    return [_Claimed(**row._mapping) for row in rows]


def _secrets(service: WebhookService, claimed: _Claimed, now: datetime) -> list[str]:
    current = [service.decrypt(claimed.secret)]
    expires = claimed.previous_secret_expires_at
    if claimed.previous_secret is not None and expires is not None and expires > now:
        current.append(service.decrypt(claimed.previous_secret))
    return current


def _record(
    service: WebhookService, engine: sa.Engine, claimed: _Claimed, attempt: Attempt, token: str
) -> str:
    options = service.membership.execution_options
    now = service.clock()
    mine = sa.and_(webhook_deliveries.c.id == claimed.id, webhook_deliveries.c.lease_token == token)
    last = {
        "last_status_code": attempt.status_code,
        "last_duration_ms": attempt.duration_ms,
        "last_error": attempt.error,
        "lease_token": None,
    }
    endpoint = sa.and_(
        webhook_endpoints.c.organization_id == claimed.organization_id,
        webhook_endpoints.c.id == claimed.endpoint_id,
    )
    disable_reason: str | None = None
    with Session(engine) as session, session.begin():
        if attempt.succeeded:
            outcome = "succeeded"
            values: dict[str, Any] = {"status": "succeeded", "delivered_at": now, "next_attempt_at": None}
        else:
            delay = (
                None
                if attempt.gone or not claimed.enabled
                else next_delay(claimed.attempts, attempt.retry_after)
            )
            outcome = "failed" if delay is None else "retrying"
            values = (
                {"status": "failed", "next_attempt_at": None}
                if delay is None
                else {"next_attempt_at": now + delay}
            )
        changed = rowcount(
            session.execute(
                webhook_deliveries.update().where(mine).values(**values, **last), execution_options=options
            )
        )
        if not changed:
            return "lost"
        if attempt.succeeded:
            session.execute(
                webhook_endpoints.update()
                .where(endpoint, webhook_endpoints.c.failing_since.is_not(None))
                .values(failing_since=None),
                execution_options=options,
            )
        elif claimed.enabled:
            session.execute(
                webhook_endpoints.update()
                .where(endpoint, webhook_endpoints.c.failing_since.is_(None))
                .values(failing_since=now),
                execution_options=options,
            )
            if attempt.gone:
                disable_reason = "gone"
            else:
                since = session.execute(
                    sa.select(webhook_endpoints.c.failing_since).where(endpoint), execution_options=options
                ).scalar_one_or_none()
                if since is not None and now - since >= service.settings.disable_after:
                    disable_reason = "failing"
            if disable_reason is not None:
                disabled = rowcount(
                    session.execute(
                        webhook_endpoints.update()
                        .where(endpoint, webhook_endpoints.c.enabled.is_(True))
                        .values(enabled=False, disabled_reason=disable_reason, updated_at=now),
                        execution_options=options,
                    )
                )
                session.execute(
                    webhook_deliveries.update()
                    .where(webhook_deliveries.c.id == claimed.id)
                    .values(status="failed", next_attempt_at=None),
                    execution_options=options,
                )
                outcome = "failed"
                if disabled:
                    service.events.record(
                        session,
                        WebhookEndpointDisabled(
                            organization_id=claimed.organization_id,
                            actor=HOST,
                            occurred_at=now,
                            endpoint_id=claimed.endpoint_id,
                            reason=disable_reason,
                        ),
                    )
    return outcome


_DISABLED = Attempt(None, 0, "the endpoint is disabled")


def deliver_batch(service: WebhookService, engine: sa.Engine, *, limit: int = 100) -> DeliveryReport:
    """One round of :func:`deliver_due` with ``service``'s settings, sender and clock."""
    check_limit(limit)
    token = str(uuid.uuid4())
    claimed = _claim(service, engine, limit, token)
    counts = {"succeeded": 0, "retrying": 0, "failed": 0, "lost": 0}
    if claimed:
        sender = Sender(
            service.policy, timeout=service.settings.timeout, resolver=service.resolver, verify=service.verify
        )
        with sender.client() as client:
            for delivery in claimed:
                now = service.clock()
                if delivery.enabled:
                    attempt = sender.send(
                        client,
                        url=delivery.url,
                        message_id=delivery.message_id,
                        body=delivery.body,
                        secrets=_secrets(service, delivery, now),
                        now=now,
                    )
                else:
                    attempt = _DISABLED
                outcome = _record(service, engine, delivery, attempt, token)
                counts[outcome] += 1
                if service.metrics is not None:
                    service.metrics.webhook_delivery(outcome)  # type: ignore[arg-type]
    if service.metrics is not None:
        with engine.connect() as connection:
            health = service.health(connection)
        service.metrics.webhook_outbox(health.depth, health.oldest_due_age_seconds)
    return DeliveryReport(claimed=len(claimed), **counts)


def deliver_due(
    engine: sa.Engine, *, limit: int = 100, service: WebhookService | None = None
) -> DeliveryReport:
    """Send up to ``limit`` due webhook deliveries once, and return what happened.

    Call it from your own scheduler or job queue (or run ``tenantkit webhooks work``); any number of
    processes may call it at once on PostgreSQL or MariaDB: each claims its own deliveries.

    Args:
        engine: The database holding the outbox.
        limit: At most this many deliveries this round (1 to 500).
        service: The webhook service whose settings, clock and resolver to use; by default the one a kit
            configured from the environment builds (``TenantKit.from_env().webhooks``).

    Raises:
        ConfigurationError: Webhooks are not configured (no encryption key), or the extra is missing.
    """
    if service is None:
        from tenantkit._kit import TenantKit

        service = TenantKit.from_env().webhooks
    return service.deliver_due(engine, limit=limit)


def run_worker(
    service: WebhookService,
    engine: sa.Engine,
    *,
    batch: int = 100,
    idle: timedelta = timedelta(seconds=1),
    stop: threading.Event | None = None,
    once: bool = False,
) -> DeliveryReport:
    """Deliver until ``stop`` is set (or, with ``once``, until nothing is due); return the totals.

    Between rounds that found nothing due it waits ``idle``. An error of one round (the database away) is
    logged and the loop goes on after ``idle``.
    """
    stop = stop or threading.Event()
    total = DeliveryReport()
    while not stop.is_set():
        try:
            report = service.deliver_due(engine, limit=batch)
        except sa.exc.DBAPIError:
            logger.exception("tenantkit webhook worker round failed; retrying")
            stop.wait(idle.total_seconds())
            continue
        total = total + report
        if report.claimed == 0:
            if once:
                break
            stop.wait(idle.total_seconds())
    return total
