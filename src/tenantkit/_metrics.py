"""Counters a host can export: API-key verifications by outcome and by what answered them, bus events and
webhook deliveries.

tenantkit depends on no metrics library. A host hands the kit an object with one method,
``verification(outcome, source)``, and forwards each call to prometheus-client, OpenTelemetry or its own
counters (``docs/performance.md`` shows both). Unused, it costs one ``is None`` test per verification.
An object that also has ``bus_event(event, backend)`` (:class:`BusMetrics`) hears what the cross-process
invalidation bus does; the bus looks that method up once, when it is built, so an object without it costs
nothing. :class:`CountingMetrics` is the built-in one: thread-safe counters to read or scrape.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Literal, Protocol, runtime_checkable

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

Outcome = Literal[
    "valid",
    "malformed",
    "unknown",
    "expired",
    "revoked",
    "subject_inactive",
    "address_not_allowed",
    "certificate_mismatch",
    "rate_limited",
    "usage_exceeded",
]
"""How a verification ended: ``valid``, or the reason it refused the key."""

Source = Literal["format", "cache", "negative_cache", "database"]
"""What answered it: the format check alone, the cache of verified keys, the cache of unknown keys, or a
database lookup."""

DeliveryOutcome = Literal["succeeded", "retrying", "failed", "lost"]
"""How a webhook delivery attempt ended: delivered, rescheduled, failed for good, or its lease ran out."""

DELIVERY_OUTCOMES: tuple[DeliveryOutcome, ...] = ("succeeded", "retrying", "failed", "lost")

OUTCOMES: tuple[Outcome, ...] = (
    "valid",
    "malformed",
    "unknown",
    "expired",
    "revoked",
    "subject_inactive",
    "address_not_allowed",
    "certificate_mismatch",
    "rate_limited",
    "usage_exceeded",
)
SOURCES: tuple[Source, ...] = ("format", "cache", "negative_cache", "database")

BusEvent = Literal["published", "publish_failed", "received", "connected", "disconnected", "cleared", "gap"]
"""What the invalidation bus did: sent a message, gave one up, received one from another process, (re)gained
or lost its connection, cleared this process's caches because it may have missed messages, or found that a
message was missed (a ``gap``, followed by a ``cleared``)."""

BUS_EVENTS: tuple[BusEvent, ...] = (
    "published",
    "publish_failed",
    "received",
    "connected",
    "disconnected",
    "cleared",
    "gap",
)


@runtime_checkable
class VerificationMetrics(Protocol):
    """Receives one call per API-key verification. It must be quick and must not raise."""

    def verification(self, outcome: Outcome, source: Source) -> None:
        """Count a verification that ended with ``outcome``, answered by ``source``."""


@runtime_checkable
class BusMetrics(Protocol):
    """Receives one call per thing the invalidation bus does (:mod:`tenantkit.bus`). Quick, never raising.

    Optional beside :class:`VerificationMetrics`: the kit's ``metrics`` object is asked for ``bus_event``
    once, when the bus is built, and an object without it is simply not told.
    """

    def bus_event(self, event: BusEvent, backend: str) -> None:
        """Count one ``event`` of the bus whose backend is ``backend`` (``postgres``, ``redis``, ``poll``)."""


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
    """Counts verifications (by outcome and source), bus events and webhook deliveries in memory; safe to
    share between threads.

    Read :meth:`snapshot`, :meth:`bus_snapshot` and :meth:`deliveries` and :attr:`outbox` (for instance from
    a ``/metrics`` endpoint, or a prometheus-client collector).
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[Outcome, Source]] = Counter()
        self._bus: Counter[tuple[BusEvent, str]] = Counter()
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

    def bus_event(self, event: BusEvent, backend: str) -> None:
        """Count one bus event."""
        with self._lock:
            self._bus[event, backend] += 1

    def bus_snapshot(self) -> dict[tuple[BusEvent, str], int]:
        """Every non-zero bus count so far, by ``(event, backend)``."""
        with self._lock:
            return dict(self._bus)

    def bus_total(self, event: BusEvent) -> int:
        """How many ``event`` the bus reported, whatever its backend."""
        return sum(count for (counted, _backend), count in self.bus_snapshot().items() if counted == event)

    def __repr__(self) -> str:
        return f"CountingMetrics({self.snapshot()!r}, bus={self.bus_snapshot()!r})"
