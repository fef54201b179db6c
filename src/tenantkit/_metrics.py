"""Counters a host can export: API-key verifications by outcome and by what answered them.

tenantkit depends on no metrics library. A host hands the kit an object with one method,
``verification(outcome, source)``, and forwards each call to prometheus-client, OpenTelemetry or its own
counters (``docs/performance.md`` shows both). Unused, it costs one ``is None`` test per verification.
:class:`CountingMetrics` is the built-in one: thread-safe counters to read or scrape.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Literal, Protocol, runtime_checkable

__all__ = ["OUTCOMES", "SOURCES", "CountingMetrics", "Outcome", "Source", "VerificationMetrics"]

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


@runtime_checkable
class VerificationMetrics(Protocol):
    """Receives one call per API-key verification. It must be quick and must not raise."""

    def verification(self, outcome: Outcome, source: Source) -> None:
        """Count a verification that ended with ``outcome``, answered by ``source``."""


class CountingMetrics:
    """Counts verifications in memory, by outcome and source; safe to share between threads.

    Read :meth:`snapshot` (for instance from a ``/metrics`` endpoint, or a prometheus-client collector).
    """

    def __init__(self) -> None:
        self._counts: Counter[tuple[Outcome, Source]] = Counter()
        self._lock = threading.Lock()

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
