"""What every invalidation bus shares: the message, the health, the threads, reconnection and clearing.

A bus is an :class:`~tenantkit.Invalidator` that replaces its dispatcher's ``invalidator``. At commit the
dispatcher hands it the cache keys the change made stale; the bus evicts them here at once and sends them to
the other processes, whose buses evict them there. The row stays the truth and the message only a hint, so a
bus that may have missed a message (at start-up, after a reconnection, when a sequence number skips) clears
every cache of its process instead of guessing.

Everything that waits (a socket, a poll) runs in the bus's own daemon threads, never in the caller's: the
caller's ``invalidate`` only evicts in memory and puts the message on a queue, so a commit on an event loop
(``AsyncSession.commit``) never blocks on the bus.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, NamedTuple

from tenantkit._clock import Clock, system_clock
from tenantkit._events import EventDispatcher
from tenantkit._invalidation import CacheKey, LocalInvalidator
from tenantkit._metrics import BusEvent

logger = logging.getLogger("tenantkit.bus")

MESSAGE_VERSION = 1
# NOTIFY refuses payloads of 8000 bytes or more; every backend splits at the same size.
MAX_PAYLOAD = 7000
# Origins whose sequence numbers are remembered at most (the processes of a deployment, and their restarts).
_MAX_ORIGINS = 10_000


class Delivery(NamedTuple):
    """What a bus applied in this process: keys another process announced, or a clear of every cache.

    Attributes:
        keys: The cache keys evicted (empty for a clear).
        cleared: Whether every cache of the process was cleared (start-up, reconnection, a gap, or another
            process's :meth:`InvalidationBus.clear`).
        reason: Why: ``"message"``, ``"started"``, ``"reconnected"``, ``"gap"``, ``"stalled"`` or
            ``"requested"`` (another process asked every process to clear).
    """

    keys: tuple[CacheKey, ...]
    cleared: bool
    reason: str


@dataclass(frozen=True)
class BusHealth:
    """A bus's state, for a health check or a metrics exporter.

    Attributes:
        backend: ``"postgres"``, ``"redis"`` or ``"poll"``.
        running: :meth:`InvalidationBus.start` was called and :meth:`~InvalidationBus.stop` not yet.
        connected: The bus is subscribed (or its last poll succeeded): other processes' changes reach it.
        connected_since: When it last (re)connected, ``None`` while it is not connected.
        last_message_at: When it last received a message (from any process, its own probe included).
        received: Messages received from other processes.
        published: Messages sent (or change-log rows written) by this process.
        publish_failures: Messages given up after every retry failed (the others then see a gap).
        clears: Times it cleared every cache of this process because it may have missed messages.
        gaps: Missed messages it detected (each followed by a clear).
        reconnects: Times it connected again after losing its connection.
        last_error: The last connection error, as its type and message (never a URL or password).
    """

    backend: str
    running: bool
    connected: bool
    connected_since: datetime | None
    last_message_at: datetime | None
    received: int
    published: int
    publish_failures: int
    clears: int
    gaps: int
    reconnects: int
    last_error: str | None

    @property
    def healthy(self) -> bool:
        """Running and connected: a revocation elsewhere reaches this process within the bus's latency."""
        return self.running and self.connected

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary, datetimes in ISO 8601, with ``healthy`` added."""
        values: dict[str, Any] = {
            "backend": self.backend,
            "healthy": self.healthy,
            "running": self.running,
            "connected": self.connected,
            "connected_since": _iso(self.connected_since),
            "last_message_at": _iso(self.last_message_at),
            "received": self.received,
            "published": self.published,
            "publish_failures": self.publish_failures,
            "clears": self.clears,
            "gaps": self.gaps,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }
        return values


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def describe_error(error: BaseException) -> str:
    """``Type: message`` of a connection error, cut short; drivers do not repeat passwords in these."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def encode_keys(origin: str, sequence: int, *, keys: Collection[CacheKey]) -> str:
    """The message naming ``keys``: kinds, organizations and ids only, never a digest or key."""
    return json.dumps(
        {"v": MESSAGE_VERSION, "o": origin, "s": sequence, "k": [list(key) for key in keys]},
        separators=(",", ":"),
    )


def encode_clear(origin: str, sequence: int) -> str:
    """The message asking every process to clear its caches."""
    return json.dumps({"v": MESSAGE_VERSION, "o": origin, "s": sequence, "c": 1}, separators=(",", ":"))


def encode_probe(origin: str, nonce: str) -> str:
    """The message a bus sends itself at start to prove that its subscription hears what is sent."""
    return json.dumps({"v": MESSAGE_VERSION, "o": origin, "p": nonce}, separators=(",", ":"))


def split_keys(keys: Collection[CacheKey], limit: int = MAX_PAYLOAD) -> Iterator[list[CacheKey]]:
    """``keys`` in batches whose message stays under ``limit`` bytes (one key per batch at worst)."""
    batch: list[CacheKey] = []
    size = 64
    for key in keys:
        cost = len(json.dumps(list(key)).encode()) + 1
        if batch and size + cost > limit:
            yield batch
            batch, size = [], 64
        batch.append(key)
        size += cost
    if batch:
        yield batch


class _Outgoing(NamedTuple):
    sequence: int
    payload: str


_STOP = _Outgoing(-1, "")


class InvalidationBus(ABC):
    """Base of the buses: an :class:`~tenantkit.Invalidator` that reaches every process.

    Built on an :class:`~tenantkit.events.EventDispatcher` (``kit.events``), it becomes that dispatcher's
    ``invalidator`` and applies what it hears to the dispatcher's ``caches``. :meth:`start` subscribes (and
    clears this process's caches, which may hold what changed before); :meth:`stop` unsubscribes. Changes
    committed before :meth:`start` are still sent (in the committing thread).

    Args:
        events: The dispatcher whose caches it keeps fresh (``kit.events``).
        clock: Where the times of :meth:`health` come from.
        metrics: Told of each :data:`~tenantkit.metrics.BusEvent` when it has ``bus_event(event, backend)``.
        reconnect_max_delay: The longest wait, in seconds, between two connection attempts (the first
            waits 0.1 s, each next one twice as long, with jitter).
        probe_timeout: How long, in seconds, :meth:`start` waits to connect and to hear its own probe.
    """

    backend: ClassVar[str] = "bus"
    publish_attempts: ClassVar[int] = 3

    def __init__(
        self,
        events: EventDispatcher,
        *,
        clock: Clock = system_clock,
        metrics: object | None = None,
        reconnect_max_delay: float = 5.0,
        probe_timeout: float = 5.0,
    ) -> None:
        if reconnect_max_delay <= 0 or probe_timeout <= 0:
            raise ValueError("reconnect_max_delay and probe_timeout must be positive")
        self.events = events
        self.caches: LocalInvalidator = events.caches
        self.clock = clock
        self.reconnect_max_delay = reconnect_max_delay
        self.probe_timeout = probe_timeout
        self.origin: str = uuid.uuid4().hex
        """This process's id on the channel: its own messages are recognised, and skipped."""
        # Looked up once: a metrics object without bus_event costs nothing from here on.
        self._metric: Callable[[BusEvent, str], None] | None = getattr(metrics, "bus_event", None)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._sequence = 0
        self._sequences: OrderedDict[str, int] = OrderedDict()
        self._watchers: list[Callable[[Delivery], None]] = []
        self._outbox: queue.SimpleQueue[_Outgoing] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connected_event = threading.Event()
        self._probes: dict[str, threading.Event] = {}
        self._running = False
        self._connected_since: datetime | None = None
        self._last_message_at: datetime | None = None
        self._counts = dict.fromkeys(
            ("received", "published", "publish_failures", "clears", "gaps", "reconnects"), 0
        )
        self._last_error: str | None = None
        self._has_connected = False
        events.invalidator = self
        # A forked child inherits a started bus without its threads: it is stopped there, to be started anew.
        forget = weakref.WeakMethod(self._forget_threads)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(forget))

    @property
    def running(self) -> bool:
        """Whether :meth:`start` was called and :meth:`stop` not yet (read without a lock)."""
        return self._running

    def _forget_threads(self) -> None:
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._running = False
        self._threads = []
        self._outbox = queue.SimpleQueue()
        self._connected_event = threading.Event()
        self._connected_since = None

    # -- the Invalidator protocol ------------------------------------------------------------------------

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        """Evict ``keys`` in this process now, and send them to every other process (behind the caller)."""
        keys = tuple(keys)
        if not keys:
            return
        self.caches.invalidate(keys)
        for batch in split_keys(keys):
            self._send(functools.partial(encode_keys, self.origin, keys=batch))

    def clear(self) -> None:
        """Clear every cache of this process now, and ask every other process to clear its own."""
        self.caches.clear()
        self._send(lambda sequence: encode_clear(self.origin, sequence))

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe in background threads; return once subscribed and heard (or ``probe_timeout`` passed).

        This process's caches are cleared once the subscription stands (what they hold may predate it).
        When the server cannot be reached, the bus keeps trying in the background (:meth:`health` says so)
        and this returns after ``probe_timeout``; calling it again while running does nothing.

        Raises:
            ConfigurationError: The bus subscribed but never heard its own probe (for NOTIFY, a
                transaction-mode PgBouncer between the application and PostgreSQL does this).
        """
        with self._lock:
            if self._running:
                return
            self._running = True
            self._stopping.clear()
            self._threads = [
                threading.Thread(
                    target=self._listen_forever, name=f"tenantkit-bus-{self.backend}", daemon=True
                ),
                threading.Thread(
                    target=self._publish_forever, name=f"tenantkit-bus-{self.backend}-send", daemon=True
                ),
            ]
        for thread in self._threads:
            thread.start()
        if not self._connected_event.wait(self.probe_timeout):
            logger.warning(
                "tenantkit bus (%s) could not connect within %.1f s; it keeps trying (%s)",
                self.backend,
                self.probe_timeout,
                self._last_error,
            )
            return
        self._probe()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is still queued, unsubscribe and end the threads (at most ``timeout`` seconds each)."""
        with self._lock:
            if not self._running:
                return
            self._running = False
            threads, self._threads = self._threads, []
        self._outbox.put(_STOP)
        self._stopping.set()
        self._interrupt()
        for thread in threads:
            thread.join(timeout)
        self._connected_event.clear()
        self._set_connected(False)

    def __enter__(self) -> InvalidationBus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- health and watching ----------------------------------------------------------------------------

    def health(self) -> BusHealth:
        """The bus's state now (cheap: no I/O)."""
        with self._lock:
            counts = dict(self._counts)
            return BusHealth(
                backend=self.backend,
                running=self._running,
                connected=self._connected_since is not None,
                connected_since=self._connected_since,
                last_message_at=self._last_message_at,
                last_error=self._last_error,
                **counts,
            )

    def on_delivery(self, watcher: Callable[[Delivery], None]) -> Callable[[], None]:
        """Call ``watcher`` in the bus's thread after each :class:`Delivery` is applied in this process.

        For tests and diagnostics (a watcher must be quick and must not raise; one that does is logged).

        Returns:
            A function that removes the watcher.
        """
        with self._lock:
            self._watchers.append(watcher)

        def remove() -> None:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)

        return remove

    # -- what subclasses provide --------------------------------------------------------------------------

    @abstractmethod
    def _connect_listener(self) -> object:
        """Open the subscription; return a handle for :meth:`_receive`."""

    @abstractmethod
    def _receive(self, handle: Any, timeout: float) -> Iterable[str]:
        """The payloads that arrived within ``timeout`` seconds (raises when the connection is lost)."""

    @abstractmethod
    def _close_listener(self, handle: Any) -> None:
        """Close what :meth:`_connect_listener` opened."""

    @abstractmethod
    def _connect_publisher(self) -> object:
        """Open the publishing connection; return a handle for :meth:`_deliver`."""

    @abstractmethod
    def _deliver(self, handle: Any, payload: str) -> None:
        """Send one payload on the publishing connection (raises when it fails)."""

    @abstractmethod
    def _close_publisher(self, handle: Any) -> None:
        """Close what :meth:`_connect_publisher` opened."""

    def _interrupt(self) -> None:  # noqa: B027  a default that does nothing, not a hook every bus must fill
        """Wake the listening thread up early at :meth:`stop` (the default waits for its timeout)."""

    # -- shared machinery ---------------------------------------------------------------------------------

    def _count(self, name: str, event: BusEvent | None = None) -> None:
        with self._lock:
            self._counts[name] += 1
        if event is not None:
            self._emit(event)

    def _emit(self, event: BusEvent) -> None:
        metric = self._metric
        if metric is not None:
            try:
                metric(event, self.backend)
            except Exception:
                logger.exception("tenantkit bus metrics hook failed on %s", event)

    def _send(self, build: Callable[[int], str]) -> None:
        # Numbered and queued under one lock, so that the queue holds the messages in sequence order (two
        # committing threads must not swap theirs: the receivers would see a gap).
        with self._lock:
            if self._running:
                self._sequence += 1
                self._outbox.put(_Outgoing(self._sequence, build(self._sequence)))
                return
        # Not started (a command-line tool, a script): sent in the caller's thread.
        with self._send_lock:
            with self._lock:
                self._sequence += 1
                sequence = self._sequence
            self._publish_now([_Outgoing(sequence, build(sequence))])

    def _publish_forever(self) -> None:
        handle: object | None = None
        try:
            while True:
                message = self._outbox.get()
                batch = [message]
                with contextlib.suppress(queue.Empty):
                    while len(batch) < 100:
                        batch.append(self._outbox.get_nowait())
                stop = _STOP in batch
                handle = self._publish_batch([item for item in batch if item is not _STOP], handle)
                if stop:
                    return
        finally:
            if handle is not None:
                self._close_quietly(self._close_publisher, handle)

    def _publish_now(self, messages: list[_Outgoing]) -> None:
        handle = self._publish_batch(messages, None)
        if handle is not None:
            self._close_quietly(self._close_publisher, handle)

    def _publish_batch(self, messages: list[_Outgoing], handle: object | None) -> object | None:
        for message in messages:
            for attempt in range(self.publish_attempts):
                try:
                    if handle is None:
                        handle = self._connect_publisher()
                    self._deliver(handle, message.payload)
                except Exception as error:
                    self._note_error(error)
                    if handle is not None:
                        self._close_quietly(self._close_publisher, handle)
                        handle = None
                    if attempt + 1 < self.publish_attempts:
                        time.sleep(min(0.05 * 2**attempt, self.reconnect_max_delay))
                    continue
                self._count("published", "published")
                break
            else:
                # Given up: its sequence number is skipped, so every other process sees a gap and clears.
                self._count("publish_failures", "publish_failed")
                logger.warning("tenantkit bus (%s) gave up a message: %s", self.backend, self._last_error)
        return handle

    def _listen_forever(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                handle = self._connect_listener()
            except Exception as error:
                self._note_error(error)
                self._stopping.wait(delay * (0.5 + random.random()))  # noqa: S311  jitter, nothing secret
                delay = min(delay * 2, self.reconnect_max_delay)
                continue
            delay = 0.1
            try:
                self._subscribed()
                while not self._stopping.is_set():
                    for payload in self._receive(handle, 0.5):
                        self._handle(payload)
            except Exception as error:
                if not self._stopping.is_set():
                    self._note_error(error)
            finally:
                self._set_connected(False)
                self._close_quietly(self._close_listener, handle)

    def _subscribed(self) -> None:
        """The subscription stands (again): whatever was cached may have missed messages, so clear it."""
        again = self._has_connected
        self._has_connected = True
        with self._lock:
            self._sequences.clear()
        self._set_connected(True)
        if again:
            self._count("reconnects")
        self._clear_local("reconnected" if again else "started")
        self._connected_event.set()

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            was = self._connected_since is not None
            self._connected_since = self.clock() if connected else None
        if connected != was:
            self._emit("connected" if connected else "disconnected")

    def _note_error(self, error: BaseException) -> None:
        description = describe_error(error)
        with self._lock:
            self._last_error = description
        logger.warning("tenantkit bus (%s): %s", self.backend, description)

    def _clear_local(self, reason: str) -> None:
        self.caches.clear()
        self._count("clears", "cleared")
        self._notify(Delivery((), True, reason))

    def _handle(self, payload: str) -> None:
        now = self.clock()
        with self._lock:
            self._last_message_at = now
        try:
            message = json.loads(payload)
            version, origin = message["v"], message["o"]
        except (ValueError, TypeError, KeyError):
            logger.warning("tenantkit bus (%s) ignored a message it cannot read", self.backend)
            return
        if version != MESSAGE_VERSION:
            # A newer tenantkit speaks on the channel: what it meant is unknown, so assume the worst.
            self._clear_local("gap")
        elif "p" in message:
            probe = self._probes.get(str(message["p"])) if origin == self.origin else None
            if probe is not None:
                probe.set()
        elif origin != self.origin:  # this process's own were applied when they were sent
            self._count("received", "received")
            self._apply(str(origin), message)

    def _apply(self, origin: str, message: dict[str, Any]) -> None:
        if self._skipped(origin, message.get("s")):
            self._count("gaps", "gap")
            self._clear_local("gap")
            return
        if message.get("c"):
            self._clear_local("requested")
            return
        try:
            keys = tuple(CacheKey(str(kind), str(org), str(id_)) for kind, org, id_ in message["k"])
        except (ValueError, TypeError, KeyError):
            self._clear_local("gap")
            return
        self.caches.invalidate(keys)
        self._notify(Delivery(keys, False, "message"))

    def _skipped(self, origin: str, sequence: object) -> bool:
        """Whether a message of ``origin`` came before this one and was never heard."""
        if not isinstance(sequence, int):
            return True
        with self._lock:
            last = self._sequences.pop(origin, None)
            self._sequences[origin] = sequence
            if len(self._sequences) > _MAX_ORIGINS:
                self._sequences.popitem(last=False)
        return last is not None and sequence != last + 1

    def _notify(self, delivery: Delivery) -> None:
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            try:
                watcher(delivery)
            except Exception:
                logger.exception("tenantkit bus watcher %r failed", watcher)

    def _probe(self) -> None:
        from tenantkit._errors import ConfigurationError

        nonce = uuid.uuid4().hex
        heard = threading.Event()
        self._probes[nonce] = heard
        try:
            self._publish_now([_Outgoing(0, encode_probe(self.origin, nonce))])
            if heard.wait(self.probe_timeout):
                return
        finally:
            self._probes.pop(nonce, None)
        self.stop()
        raise ConfigurationError(self._probe_failure())

    def _probe_failure(self) -> str:
        return f"the {self.backend} bus subscribed but never heard the message it sent itself"

    @staticmethod
    def _close_quietly(close: Callable[[Any], None], handle: object) -> None:
        try:
            close(handle)
        except Exception:
            logger.debug("tenantkit bus: closing a connection failed", exc_info=True)
