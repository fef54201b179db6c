"""The outbox writer: a record-time subscriber that turns each event into a message and its deliveries.

It runs inside the change's transaction (:meth:`EventDispatcher.on_record`), through the change's own
session, so a message exists exactly when the change committed: a rollback (or a rolled-back savepoint)
takes the rows with it. It depends on nothing but the event and the endpoints table, so webhooks work with
the audit log off. The body is built from the event's allow-listed payload (:meth:`Event.to_payload`): no
key, token, accept URL or digest can reach it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit._events import Event, EventPayload
from tenantkit._tables import webhook_deliveries, webhook_endpoints, webhook_messages

__all__ = ["TEST_EVENT_TYPE", "OutboxWriter", "message_body", "new_message_id", "queue_message"]

TEST_EVENT_TYPE = "webhook.test"
"""The type of the message :meth:`~tenantkit.webhooks.WebhookService.send_test` sends to one endpoint."""

_SUBSCRIBED = sa.select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
    webhook_endpoints.c.organization_id == sa.bindparam("b_organization_id"),
    webhook_endpoints.c.enabled.is_(True),
)
_INSERT_MESSAGE = webhook_messages.insert()
_INSERT_DELIVERY = webhook_deliveries.insert()


def new_message_id() -> str:
    """A new message id, the ``webhook-id`` of every attempt of the message: ``msg_`` and a UUID."""
    return "msg_" + uuid.uuid4().hex


def message_body(payload: EventPayload | Mapping[str, Any]) -> str:
    """The JSON body of a message: the Standard Webhooks ``type``/``timestamp``/``data`` and our envelope."""
    document = {
        "type": payload["type"],
        "timestamp": payload["occurred_at"],
        "version": payload["version"],
        "organization_id": payload["organization_id"],
        "actor": payload["actor"],
        "data": payload["data"],
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def queue_message(
    session: Session | sa.Connection,
    *,
    organization_id: str,
    event_type: str,
    body: str,
    endpoint_ids: list[str],
    now: datetime,
    execution_options: Mapping[str, Any],
    message_id: str | None = None,
) -> str:
    """Write one message and a due delivery per endpoint in the caller's transaction; return its id."""
    message_id = message_id or new_message_id()
    connection = session.connection() if isinstance(session, Session) else session
    connection.execute(
        _INSERT_MESSAGE,
        {
            "id": message_id,
            "organization_id": organization_id,
            "event_type": event_type,
            "body": body,
            "created_at": now,
        },
        execution_options=execution_options,
    )
    connection.execute(
        _INSERT_DELIVERY,
        [
            {
                "id": str(uuid.uuid4()),
                "organization_id": organization_id,
                "message_id": message_id,
                "endpoint_id": endpoint_id,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in endpoint_ids
        ],
        execution_options=execution_options,
    )
    return message_id


class OutboxWriter:
    """Writes the outbox rows of each recorded event, for the organization's enabled, subscribed endpoints.

    Args:
        execution_options: The services' execution options (the schema of tenantkit's tables).
    """

    def __init__(self, execution_options: Mapping[str, Any]) -> None:
        self._options = execution_options

    def __call__(self, session: Session, event: Event) -> None:
        """Queue ``event`` for every enabled endpoint of its organization that wants its type."""
        if event.event_type == "webhook_endpoint.test_sent":
            return  # the test message goes to its one endpoint, written by send_test itself
        connection = session.connection()
        rows = connection.execute(
            _SUBSCRIBED, {"b_organization_id": event.organization_id}, execution_options=self._options
        ).all()
        wanted = [row.id for row in rows if event.event_type in (row.event_types or ())]
        if not wanted:
            return
        queue_message(
            connection,
            organization_id=event.organization_id,
            event_type=event.event_type,
            body=message_body(event.to_payload()),
            endpoint_ids=sorted(wanted),
            now=event.occurred_at,
            execution_options=self._options,
        )
