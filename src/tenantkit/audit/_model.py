"""What an audit row holds: the models the service returns, and how an event becomes a row.

A row is the event's versioned payload (:meth:`tenantkit.events.Event.to_payload`, an allow-list: never a
key, token, accept URL or digest), the targets it names, and the request context in force when it was
recorded. Targets are found by field name (``user_id`` is a member, ``key_id`` an API key, ...), so an event
type a later feature adds is targeted without a table here; one whose fields follow no convention declares
``audit_targets()`` itself.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from tenantkit._context import RequestContext
from tenantkit._events import Event

__all__ = [
    "PERSONAL_COLUMNS",
    "PERSONAL_DATA_KEYS",
    "TARGET_FIELDS",
    "AuditActor",
    "AuditEvent",
    "AuditTarget",
    "event_from_row",
    "json_record",
    "targets_of",
    "time_ordered_id",
    "timestamp_text",
]

PERSONAL_COLUMNS: tuple[str, ...] = ("ip_address", "user_agent")
"""The request-context columns that are personal data (redacted on request)."""

PERSONAL_DATA_KEYS: tuple[str, ...] = ("email",)
"""The keys of ``data`` that are personal data: an invited address."""

TARGET_FIELDS: Mapping[str, str] = {
    "user_id": "member",
    "from_user_id": "member",
    "to_user_id": "member",
    "key_id": "api_key",
    "old_key_id": "api_key",
    "new_key_id": "api_key",
    "invitation_id": "invitation",
    "department_id": "department",
    "subject_user_id": "user",
    "role_key": "role",
    "endpoint_id": "webhook_endpoint",
    "message_id": "webhook_message",
}
"""Payload field name to the type of target it names, in the order the fields come."""


class AuditActor(BaseModel):
    """Who acted, as event payloads name it: its kind (``user``, ``host``, ``api_key``...) and id."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    kind: str
    id: str | None


class AuditTarget(BaseModel):
    """Something a change touched: its ``type`` (``member``, ``api_key``, ``invitation``, ``user``) and id."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    type: str
    id: str


class AuditEvent(BaseModel):
    """One row of the audit log.

    Attributes:
        id: The row's id.
        organization_id: The organization the change belongs to.
        occurred_at: When it happened (the service's clock).
        type: The event's stable dotted name (``member.role_changed``).
        version: The version of the payload ``data`` follows.
        actor: Who acted, as payloads carry it: ``{"kind": "user", "id": "alice"}``.
        targets: What the change touched.
        data: The change itself: the event's allow-listed payload (old and new role, scopes, expiry...).
        context: The request context in force (IP address, user agent, request id).
        sequence: The row's place in its organization's hash chain; ``None`` when not chained.
        redacted_at: When its personal fields were redacted, if they were.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    occurred_at: datetime
    type: str
    version: int
    actor: AuditActor
    targets: list[AuditTarget]
    data: dict[str, Any]
    context: RequestContext
    sequence: int | None = None
    redacted_at: datetime | None = None


class _Monotonic:
    """The millisecond and counter of the last id this process made, so ids never go backwards."""

    lock = threading.Lock()
    millisecond = 0
    counter = 0


def time_ordered_id() -> str:
    """A new row id: a UUID version 7 (RFC 9562), whose text sorts in the order this process made them.

    48 bits of Unix milliseconds, a 12-bit counter within the millisecond, then 62 random bits. Rows that
    share a timestamp (a frozen test clock, two events of one call) therefore list in the order they were
    written, where a random UUID would shuffle them.
    """
    with _Monotonic.lock:
        now = time.time_ns() // 1_000_000
        if now > _Monotonic.millisecond:
            _Monotonic.millisecond, _Monotonic.counter = now, 0
        elif _Monotonic.counter < 0xFFF:
            _Monotonic.counter += 1
        else:  # 4096 ids in one millisecond: borrow the next one
            _Monotonic.millisecond, _Monotonic.counter = _Monotonic.millisecond + 1, 0
        millisecond, counter = _Monotonic.millisecond, _Monotonic.counter
    value = millisecond << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def targets_of(event: Event) -> list[dict[str, str]]:
    """The targets of ``event``: its own ``audit_targets()``, else one per id field it carries."""
    declared = getattr(event, "audit_targets", None)
    if callable(declared):
        return [{"type": kind, "id": identifier} for kind, identifier in declared()]
    targets = []
    for field in event.payload_fields:
        kind = TARGET_FIELDS.get(field)
        value = getattr(event, field)
        if kind is not None and isinstance(value, str):
            targets.append({"type": kind, "id": value})
    return targets


def timestamp_text(value: datetime) -> str:
    """A timestamp as every JSON form of a row spells it: ISO 8601 in UTC with a ``Z`` (as pydantic does)."""
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def json_record(row: Any) -> dict[str, Any]:
    """A row as JSON-ready data, equal to ``event_from_row(row).model_dump(mode="json")``, built directly.

    The export writes a million of these; skipping the model keeps it fast.
    """
    return {
        "id": row.id,
        "organization_id": row.organization_id,
        "occurred_at": timestamp_text(row.occurred_at),
        "type": row.event_type,
        "version": row.event_version,
        "actor": {"kind": row.actor_kind, "id": row.actor_id},
        "targets": [{"type": target["type"], "id": target["id"]} for target in row.targets],
        "data": row.data,
        "context": {"ip_address": row.ip_address, "user_agent": row.user_agent, "request_id": row.request_id},
        "sequence": row.chain_seq,
        "redacted_at": None if row.redacted_at is None else timestamp_text(row.redacted_at),
    }


def event_from_row(row: Any) -> AuditEvent:
    """The :class:`AuditEvent` a row of ``audit_events`` holds."""
    return AuditEvent.model_validate(
        {
            "id": row.id,
            "organization_id": row.organization_id,
            "occurred_at": row.occurred_at,
            "type": row.event_type,
            "version": row.event_version,
            "actor": {"kind": row.actor_kind, "id": row.actor_id},
            "targets": row.targets,
            "data": row.data,
            "context": {
                "ip_address": row.ip_address,
                "user_agent": row.user_agent,
                "request_id": row.request_id,
            },
            "sequence": row.chain_seq,
            "redacted_at": row.redacted_at,
        }
    )
