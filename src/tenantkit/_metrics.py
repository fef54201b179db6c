"""Counters a host can export: API-key verifications by outcome and by what answered them, and webhooks.

tenantkit depends on no metrics library. A host hands the kit an object with one method,
``verification(outcome, source)``, and forwards each call to prometheus-client, OpenTelemetry or its own
counters (``docs/performance.md`` shows both). Unused, it costs one ``is None`` test per verification.
:class:`CountingMetrics` is the built-in one: thread-safe counters to read or scrape.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Literal, Protocol, runtime_checkable

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

Outcome = Literal["valid", "malformed", "unknown", "expired", "revoked"]
"""How a verification ended: ``valid``, or the reason it refused the key."""

Source = Literal["format", "cache", "negative_cache", "database"]
"""What answered it: the format check alone, the cache of verified keys, the cache of unknown keys, or a
database lookup."""

DeliveryOutcome = Literal["succeeded", "retrying", "failed", "lost"]
"""How a webhook delivery attempt ended: delivered, rescheduled, failed for good, or its lease ran out."""

DELIVERY_OUTCOMES: tuple[DeliveryOutcome, ...] = ("succeeded", "retrying", "failed", "lost")

OUTCOMES: tuple[Outcome, ...] = ("valid", "malformed", "unknown", "expired", "revoked")
SOURCES: tuple[Source, ...] = ("format", "cache", "negative_cache", "database")


@runtime_checkable
class VerificationMetrics(Protocol):
    """Receives one call per API-key verification. It must be quick and must not raise."""

    def verification(self, outcome: Outcome, source: Source) -> None:
        """Count a verification that ended with ``outcome``, answered by ``source``."""


@runtime_checkable
class WebhookMetrics(Protocol):
    """Receives one call per webhook delivery attempt and one per worker round. Quick; must not raise.

    The kit hands its ``metrics`` to the webhook worker only when it has these methods, so a metrics object
    of API-key verifications alone keeps working, and an unused hook costs one ``is None`` test.
    """

    def webhook_delivery(self, outcome: DeliveryOutcome) -> None:
        """Count one delivery attempt that ended with ``outcome``."""

    def webhook_outbox(self, depth: int, oldest_due_age_seconds: float | None) -> None:
        """The outbox after a worker round: pending deliveries, and how late the oldest due one is."""


class CountingMetrics:
    """Counts verifications and webhook deliveries in memory; safe to share between threads.

    Read :meth:`snapshot` (for instance from a ``/metrics`` endpoint, or a prometheus-client collector),
    :meth:`deliveries` and :attr:`outbox`.
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[Outcome, Source]] = Counter()
        self._deliveries: Counter[DeliveryOutcome] = Counter()
        self.outbox: tuple[int, float | None] | None = None
        """The last ``(depth, oldest_due_age_seconds)`` a worker reported, ``None`` before any."""
        self._lock = threading.Lock()

    def webhook_delivery(self, outcome: DeliveryOutcome) -> None:
        """Count one webhook delivery attempt."""
        with self._lock:
            self._deliveries[outcome] += 1

    def webhook_outbox(self, depth: int, oldest_due_age_seconds: float | None) -> None:
        """Keep the outbox's latest depth and oldest due age."""
        self.outbox = (depth, oldest_due_age_seconds)

    def deliveries(self) -> dict[DeliveryOutcome, int]:
        """Every non-zero count of webhook delivery attempts, by outcome."""
        with self._lock:
            return dict(self._deliveries)

    def verification(self, outcome: Outcome, source: Source) -> None:
        """Count one verification."""
        with self._lock:
            self._counts[outcome, source] += 1

    def snapshot(self) -> dict[tuple[Outcome, Source], int]:
        """Every non-zero count so far, by ``(outcome, source)``."""
        with self._lock:
            return dict(self._counts)

    def total(self, *, outcome: Outcome | None = None, source: Source | None = None) -> int:
        """The sum of the counts matching ``outcome`` and ``source`` (either left out: any)."""
        return sum(
            count
            for (counted_outcome, counted_source), count in self.snapshot().items()
            if outcome in (None, counted_outcome) and source in (None, counted_source)
        )

    def __repr__(self) -> str:
        return f"CountingMetrics({self.snapshot()!r})"
