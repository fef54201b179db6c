"""Helpers for testing code that uses tenantkit: a clock you control, and event capture.

Import it only from tests; it is part of the public API and follows the same compatibility rules.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from tenantkit._clock import as_utc
from tenantkit._events import Event

__all__ = ["EventRecorder", "FrozenClock"]


class FrozenClock:
    """A clock that stands still until told to move; pass it as ``clock=`` to travel in time.

    Example::

        clock = FrozenClock(datetime(2030, 1, 1, tzinfo=timezone.utc))
        kit = TenantKit(clock=clock)
        clock.advance(days=8)
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = as_utc(start, "start") if start is not None else datetime(2030, 1, 1, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``, and return the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware)."""
        with self._lock:
            self._now = as_utc(when, "when")

    def __repr__(self) -> str:
        return f"FrozenClock({self._now.isoformat()})"


class EventRecorder:
    """A listener that keeps every event it hears, for assertions.

    Example::

        recorder = EventRecorder()
        kit.events.subscribe(recorder)
        ...
        assert [type(e) for e in recorder.events] == [MemberAdded]
    """

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, event_type: type[Event]) -> list[Event]:
        """The recorded events of ``event_type``."""
        return [event for event in self.events if isinstance(event, event_type)]

    def clear(self) -> None:
        """Forget every recorded event."""
        self.events.clear()
