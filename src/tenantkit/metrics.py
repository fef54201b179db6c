"""Counters a host can export: API-key verifications by outcome and by what answered them.

Hand the kit a :class:`VerificationMetrics` (anything with ``verification(outcome, source)``)::

    from tenantkit.metrics import CountingMetrics

    metrics = CountingMetrics()
    kit = TenantKit(metrics=metrics)
    ...
    metrics.total(source="cache")      # verifications answered from memory

Forward the calls to prometheus-client or OpenTelemetry instead: ``docs/performance.md`` shows both. The
invalidation bus (:mod:`tenantkit.bus`) reports to the same object when it has ``bus_event(event, backend)``.
"""

from tenantkit._metrics import (
    BUS_EVENTS,
    DELIVERY_OUTCOMES,
    OUTCOMES,
    SOURCES,
    BusEvent,
    BusMetrics,
    CountingMetrics,
    DeliveryOutcome,
    Outcome,
    Source,
    VerificationMetrics,
    WebhookMetrics,
)

__all__ = [
    "BUS_EVENTS",
    "DELIVERY_OUTCOMES",
    "OUTCOMES",
    "SOURCES",
    "BusEvent",
    "BusMetrics",
    "CountingMetrics",
    "DeliveryOutcome",
    "Outcome",
    "Source",
    "VerificationMetrics",
    "WebhookMetrics",
]
