"""Counters a host can export: API-key verifications by outcome and by what answered them.

Hand the kit a :class:`VerificationMetrics` (anything with ``verification(outcome, source)``)::

    from tenantkit.metrics import CountingMetrics

    metrics = CountingMetrics()
    kit = TenantKit(metrics=metrics)
    ...
    metrics.total(source="cache")      # verifications answered from memory

Forward the calls to prometheus-client or OpenTelemetry instead: ``docs/performance.md`` shows both.
"""

from tenantkit._metrics import (
    DELIVERY_OUTCOMES,
    OUTCOMES,
    SOURCES,
    CountingMetrics,
    DeliveryOutcome,
    Outcome,
    Source,
    VerificationMetrics,
    WebhookMetrics,
)

__all__ = [
    "DELIVERY_OUTCOMES",
    "OUTCOMES",
    "SOURCES",
    "CountingMetrics",
    "DeliveryOutcome",
    "Outcome",
    "Source",
    "VerificationMetrics",
    "WebhookMetrics",
]
