"""What the webhook service returns: endpoints (never their secret), deliveries, the outbox's health."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "CreatedWebhookEndpoint",
    "DeliveryReport",
    "DeliveryStatus",
    "DisabledReason",
    "OutboxHealth",
    "WebhookDelivery",
    "WebhookEndpoint",
]

DeliveryStatus = Literal["pending", "succeeded", "failed"]
"""``pending`` (due, leased, or waiting for its next attempt), ``succeeded``, or ``failed`` for good."""

DisabledReason = Literal["manual", "failing", "gone"]
"""Why an endpoint is off: by hand, 5 days of continuous failure, or an HTTP 410 from the receiver."""


class WebhookEndpoint(BaseModel):
    """An organization's webhook endpoint. Its signing secret is never part of it.

    Attributes:
        id: The endpoint's id.
        organization_id: The organization whose events it receives.
        url: Where deliveries are sent.
        description: The host's or tenant's note about it.
        event_types: The dotted event types it receives (``member.added``, ...).
        enabled: Whether deliveries are made to it.
        disabled_reason: Why it is disabled (``None`` while enabled).
        failing_since: When its current run of failed attempts began (``None`` while it succeeds).
        previous_secret_expires_at: Until when the secret replaced by the last rotation still signs.
        created_by: The user who created it (``None`` for the host).
        created_at: When it was created.
        updated_at: When it was last changed.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    url: str
    description: str
    event_types: tuple[str, ...]
    enabled: bool
    disabled_reason: DisabledReason | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class CreatedWebhookEndpoint(BaseModel):
    """An endpoint just created (or whose secret was just rotated) and, this once, its signing secret.

    The secret (``whsec_…``) is what the receiver verifies signatures with; it cannot be read again.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    endpoint: WebhookEndpoint
    secret: SecretStr = Field(description="The whsec_ signing secret, shown this once.")

    def reveal(self) -> str:
        """The plaintext signing secret, to hand to the receiver."""
        return self.secret.get_secret_value()


class WebhookDelivery(BaseModel):
    """One message to one endpoint: its state and its last attempt (never the response body).

    Attributes:
        id: The delivery's id.
        organization_id: The organization.
        message_id: The message, which is the ``webhook-id`` header of every attempt.
        endpoint_id: The endpoint.
        event_type: The message's event type.
        status: ``pending``, ``succeeded`` or ``failed``.
        attempts: Attempts made (or started) so far.
        next_attempt_at: When it is (next) due; ``None`` once it succeeded or failed.
        last_attempt_at: When the last attempt started.
        last_status_code: The HTTP status of the last attempt (``None``: no response).
        last_duration_ms: How long the last attempt took.
        last_error: Why the last attempt failed, truncated (``None`` on success).
        delivered_at: When it succeeded.
        created_at: When it was written to the outbox.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    message_id: str
    endpoint_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_duration_ms: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class OutboxHealth(BaseModel):
    """The outbox at a glance, for health checks and metrics.

    Attributes:
        depth: Deliveries still pending (due, leased or waiting for a retry).
        due: Pending deliveries due now (not leased by a worker).
        oldest_due_age_seconds: How long the oldest due delivery has waited past its due time (``None``
            when nothing is due). A growing value means the workers do not keep up, or none runs.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    depth: int
    due: int
    oldest_due_age_seconds: float | None


class DeliveryReport(BaseModel):
    """What one :func:`~tenantkit.webhooks.deliver_due` round did.

    Attributes:
        claimed: Deliveries this worker claimed (leased).
        succeeded: Delivered (a 2xx answer).
        retrying: Failed this time and rescheduled.
        failed: Failed for good (retries used up, endpoint disabled or gone).
        lost: Whose lease ran out before the answer was recorded (another worker may have sent them).
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    claimed: int = 0
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0

    def __add__(self, other: Any) -> DeliveryReport:
        if not isinstance(other, DeliveryReport):
            return NotImplemented
        return DeliveryReport(
            **{name: getattr(self, name) + getattr(other, name) for name in DeliveryReport.model_fields}
        )
