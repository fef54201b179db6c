"""The events of webhook management: every change to an endpoint is itself recorded (and audited)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from tenantkit._events import Event

__all__ = [
    "WebhookDeliveriesRecovered",
    "WebhookEndpointCreated",
    "WebhookEndpointDeleted",
    "WebhookEndpointDisabled",
    "WebhookEndpointEnabled",
    "WebhookEndpointUpdated",
    "WebhookMessageResent",
    "WebhookSecretRotated",
    "WebhookTestSent",
]


class _EndpointTargets:
    """An event about one endpoint; the audit log files it under ``("webhook_endpoint", endpoint_id)``."""

    endpoint_id: str

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("webhook_endpoint", self.endpoint_id)]


class WebhookEndpointCreated(_EndpointTargets, Event):
    """A webhook endpoint was created. ``host`` is its URL's host (the path may hold a receiver's token)."""

    event_type: ClassVar[str] = "webhook_endpoint.created"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id", "host", "event_types")

    endpoint_id: str
    host: str
    event_types: tuple[str, ...]


class WebhookEndpointUpdated(_EndpointTargets, Event):
    """A webhook endpoint's URL, description or event types changed (``changed`` names which)."""

    event_type: ClassVar[str] = "webhook_endpoint.updated"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id", "host", "event_types", "changed")

    endpoint_id: str
    host: str
    event_types: tuple[str, ...]
    changed: tuple[str, ...]


class WebhookEndpointEnabled(_EndpointTargets, Event):
    """A webhook endpoint was enabled again."""

    event_type: ClassVar[str] = "webhook_endpoint.enabled"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id",)

    endpoint_id: str


class WebhookEndpointDisabled(_EndpointTargets, Event):
    """A webhook endpoint was disabled: ``manual``, ``failing`` (5 days of failure) or ``gone`` (HTTP 410)."""

    event_type: ClassVar[str] = "webhook_endpoint.disabled"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id", "reason")

    endpoint_id: str
    reason: str


class WebhookEndpointDeleted(_EndpointTargets, Event):
    """A webhook endpoint was deleted, with its deliveries."""

    event_type: ClassVar[str] = "webhook_endpoint.deleted"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id",)

    endpoint_id: str


class WebhookSecretRotated(_EndpointTargets, Event):
    """An endpoint got a new signing secret; the previous one signs too until ``previous_valid_until``."""

    event_type: ClassVar[str] = "webhook_endpoint.secret_rotated"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id", "previous_valid_until")

    endpoint_id: str
    previous_valid_until: datetime | None


class WebhookMessageResent(Event):
    """A message was queued again for ``deliveries`` endpoints (the same ``webhook-id``)."""

    event_type: ClassVar[str] = "webhook_message.resent"
    payload_fields: ClassVar[tuple[str, ...]] = ("message_id", "deliveries")

    message_id: str
    deliveries: int

    def audit_targets(self) -> list[tuple[str, str]]:
        return [("webhook_message", self.message_id)]


class WebhookDeliveriesRecovered(_EndpointTargets, Event):
    """The endpoint's deliveries that failed since ``since`` were queued again (``deliveries`` of them)."""

    event_type: ClassVar[str] = "webhook_endpoint.recovered"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id", "since", "deliveries")

    endpoint_id: str
    since: datetime
    deliveries: int


class WebhookTestSent(_EndpointTargets, Event):
    """A test message (type ``webhook.test``) was queued for one endpoint only."""

    event_type: ClassVar[str] = "webhook_endpoint.test_sent"
    payload_fields: ClassVar[tuple[str, ...]] = ("endpoint_id", "message_id")

    endpoint_id: str
    message_id: str
