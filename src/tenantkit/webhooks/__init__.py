"""Webhooks: signed (Standard Webhooks v1), retried, delivered at least once from a transactional outbox.

Turn them on with a key that encrypts signing secrets at rest, and run a worker::

    kit = TenantKit(webhooks=WebhookSettings(secret_keys=[os.environ["TENANTKIT_WEBHOOK_SECRET_KEYS"]]))
    with kit.transaction(engine) as session:
        created = kit.webhooks.create_endpoint(
            session, "org_1", "https://hooks.example.com/tenantkit", ["member.added"], actor=HOST
        )
        created.reveal()                      # the whsec_ secret, shown this once

    deliver_due(engine, limit=100, service=kit.webhooks)   # or: tenantkit webhooks work

Sending needs the ``tenantkit[webhooks]`` extra (httpx, cryptography); importing this module does not.
"""

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
    DeliveryStatus,
    DisabledReason,
    OutboxHealth,
    WebhookDelivery,
    WebhookEndpoint,
)
from tenantkit.webhooks._outbox import TEST_EVENT_TYPE
from tenantkit.webhooks._service import WebhookService
from tenantkit.webhooks._signing import generate_secret, sign
from tenantkit.webhooks._targets import AddressPolicy, Resolver, Target, resolve_target, system_resolver
from tenantkit.webhooks._worker import RETRY_SCHEDULE, deliver_due, run_worker

__all__ = [
    "RETRY_SCHEDULE",
    "TEST_EVENT_TYPE",
    "AddressPolicy",
    "CreatedWebhookEndpoint",
    "DeliveryReport",
    "DeliveryStatus",
    "DisabledReason",
    "OutboxHealth",
    "Resolver",
    "Target",
    "WebhookDeliveriesRecovered",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEndpointCreated",
    "WebhookEndpointDeleted",
    "WebhookEndpointDisabled",
    "WebhookEndpointEnabled",
    "WebhookEndpointUpdated",
    "WebhookMessageResent",
    "WebhookSecretRotated",
    "WebhookService",
    "WebhookTestSent",
    "deliver_due",
    "generate_secret",
    "resolve_target",
    "run_worker",
    "sign",
    "system_resolver",
]
