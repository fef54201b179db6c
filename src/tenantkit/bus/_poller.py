"""The portable bus: a change log in the database, polled by every process (SQLite, PostgreSQL, MariaDB).

Each change writes one ``cache_invalidations`` row per cache key it made stale, **in the change's own
transaction** (a record-time subscriber of the dispatcher, like the audit log): a rolled-back change leaves no
row, a committed one always has its rows, and a process that dies right after committing has already told
everyone. Every process reads the rows after the highest id it has seen, every ``interval``.

An id is handed out when the row is inserted, not when its transaction commits, so ids can become visible
out of order: transaction A takes id 7, B takes id 8 and commits first, and a poller sees 8 while 7 is still
invisible. Reading "above the highest id seen" alone would skip 7 for ever once A commits — the trap of
polling ``updated_at`` too. So the poller remembers each id it skipped (a *hole*) and asks for the holes
again with every poll, until the row appears (a late commit: applied then) or ``max_commit_delay`` passes.
A hole that never fills is usually a rolled-back insert (PostgreSQL sequences and InnoDB counters do not
give ids back); since it could also be a transaction still open, the poller then clears its process's
caches, as for any message it may have missed. SQLite has no holes: its writers take turns, and the
``AUTOINCREMENT`` id is never reused.

The log is pruned of rows older than ``retention`` by the pollers themselves; a poller that could not read
for longer than half of it (the process was suspended, the database away) clears its caches and starts again
from the newest row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tenantkit._clock import Clock, system_clock
from tenantkit._events import Event, EventDispatcher
from tenantkit._invalidation import CacheKey
from tenantkit._tables import cache_invalidations
from tenantkit.bus._base import Delivery, InvalidationBus

logger = logging.getLogger("tenantkit.bus")

CLEAR_ALL = "*"
"""The ``kind`` of a change-log row that asks every process to clear its caches."""

_MAX_HOLES = 10_000
_PRUNE_EVERY = 60.0
_SYNC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "sqlite": "sqlite",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

_INSERT = cache_invalidations.insert()
_NEWEST = sa.select(sa.func.max(cache_invalidations.c.id))
_COLUMNS = (
    cache_invalidations.c.id,
    cache_invalidations.c.kind,
    cache_invalidations.c.organization_id,
    cache_invalidations.c.subject_id,
)


def sync_url(url: str | sa.URL) -> sa.URL:
    """``url`` with a synchronous driver (the poller runs in a thread): ``+psycopg_async`` -> ``+psycopg``."""
    parsed = sa.engine.make_url(url)
    if parsed.get_driver_name() in ("psycopg_async", "asyncpg", "aiosqlite", "aiomysql", "asyncmy"):
        backend = parsed.get_backend_name()
        return parsed.set(drivername=_SYNC_DRIVERS.get(backend, backend))
    return parsed


class PollingBus(InvalidationBus):
    """Invalidations through a change log that every process polls; no infrastructure beyond the database.

    ::

        bus = PollingBus(kit.events, engine, interval=0.5)
        bus.start()

    Needs revision 0008 (``tenantkit db upgrade``). Changes made through ``events`` write their rows in
    their own transaction from the moment the bus is built, started or not; processes that should hear of
    them :meth:`start` it.

    Args:
        events: The dispatcher whose caches it keeps fresh (``kit.events``).
        database: A synchronous ``Engine``, or a URL (an async driver's is turned into its sync twin).
        interval: Seconds between two polls: the bound on the lag while the database answers.
        max_commit_delay: How long, in seconds, an id skipped by a transaction that had not committed yet is
            waited for; past it the poller clears its caches (see the module's text).
        retention: Seconds a change-log row is kept; pollers prune older ones.
        schema: The PostgreSQL schema of tenantkit's tables (``DatabaseSettings.schema_name``).
        batch: Rows read per poll at most (more wait for the next poll, which follows at once).
        clock: Where the times of :meth:`health` and of the rows come from.
        metrics: Told of each bus event when it has ``bus_event(event, backend)``.
        reconnect_max_delay: The longest wait between two attempts after a failed poll, in seconds.
        probe_timeout: How long :meth:`start` waits for its first read, in seconds.

    Raises:
        ValueError: An interval, delay or retention is not positive.
    """

    backend = "poll"

    def __init__(
        self,
        events: EventDispatcher,
        database: sa.Engine | str | sa.URL,
        *,
        interval: float = 1.0,
        max_commit_delay: float = 30.0,
        retention: float = 3600.0,
        schema: str | None = None,
        batch: int = 1000,
        clock: Clock = system_clock,
        metrics: object | None = None,
        reconnect_max_delay: float = 5.0,
        probe_timeout: float = 5.0,
    ) -> None:
        if min(interval, max_commit_delay, retention) <= 0 or batch < 1:
            raise ValueError("interval, max_commit_delay, retention and batch must be positive")
        if isinstance(database, sa.Engine):
            self.engine: sa.Engine = database
            self._owns_engine = False
        else:
            self.engine = sa.create_engine(sync_url(database), pool_size=2, pool_pre_ping=True)
            self._owns_engine = True
        self.interval = interval
        self.max_commit_delay = max_commit_delay
        self.retention = retention
        self.batch = batch
        self._options: dict[str, Any] = {"schema_translate_map": {None: schema}} if schema else {}
        self._cursor: int | None = None
        # Skipped id -> the monotonic time after which it is given up.
        self._holes: dict[int, float] = {}
        self._last_read: float | None = None
        self._last_prune = 0.0
        super().__init__(
            events,
            clock=clock,
            metrics=metrics,
            reconnect_max_delay=reconnect_max_delay,
            probe_timeout=probe_timeout,
        )
        self._unsubscribe = events.on_record(self._record)

    def __repr__(self) -> str:
        return f"PollingBus(interval={self.interval!r}, database={self.engine.url!r})"

    def stop(self, timeout: float = 5.0) -> None:
        """End the poller (see :meth:`InvalidationBus.stop`) and, when the bus made its engine, close its
        connections: a stopped bus holds none (the engine reconnects if the bus starts again)."""
        super().stop(timeout)
        if self._owns_engine:
            self.engine.dispose()

    def close(self) -> None:
        """:meth:`stop`, and stop writing change-log rows."""
        self.stop()
        self._unsubscribe()

    # -- writing: in the change's transaction -----------------------------------------------------------

    def _record(self, session: Any, event: Event) -> None:
        keys = event.cache_keys()
        if not keys:
            return
        now = self.clock()
        rows = [
            {
                "kind": key.kind,
                "organization_id": key.organization_id,
                "subject_id": key.id,
                "created_at": now,
            }
            for key in keys
        ]
        session.connection().execute(_INSERT, rows, execution_options=self._options)
        self._count("published", "published")

    def invalidate(self, keys: Any) -> None:
        """Evict ``keys`` in this process (the other processes read the rows the change wrote)."""
        keys = tuple(keys)
        if keys:
            self.caches.invalidate(keys)

    def _connect_publisher(self) -> object:
        return self.engine

    def _deliver(self, handle: Any, payload: str) -> None:
        # The only message sent outside a change's transaction: clear(), as a row of its own.
        row = {"kind": CLEAR_ALL, "organization_id": CLEAR_ALL, "subject_id": CLEAR_ALL}
        with handle.connect() as connection:
            connection = connection.execution_options(**self._options)
            connection.execute(_INSERT, {**row, "created_at": self.clock()})
            connection.commit()

    def _close_publisher(self, handle: Any) -> None:
        """Nothing to close: the engine's pool keeps the connection."""

    # -- reading: the poll loop -----------------------------------------------------------------------

    def _connect_listener(self) -> object:
        with self.engine.connect() as connection:
            newest = connection.execution_options(**self._options).execute(_NEWEST).scalar()
        now = time.monotonic()
        if self._cursor is None:
            self._cursor = int(newest or 0)
        elif self._last_read is not None and now - self._last_read > self.retention / 2:
            # Rows we never read may have been pruned meanwhile: start afresh from the newest.
            self._cursor, self._holes = int(newest or 0), {}
            self._clear_local("stalled")
        self._last_read = now
        return self.engine

    def _close_listener(self, handle: Any) -> None:
        """Nothing to close: each poll borrows a connection from the engine's pool."""

    def _subscribed(self) -> None:
        # A poller that reads again has missed nothing (the log kept it), unlike a message bus: only the
        # first read, at start-up, clears what was cached before.
        first = not self._has_connected
        self._has_connected = True
        self._set_connected(True)
        if first:
            self._clear_local("started")
        else:
            self._count("reconnects")
        self._connected_event.set()

    def _probe(self) -> None:
        """Nothing to probe: the first read at start-up proved the table is there."""

    def _receive(self, handle: Any, timeout: float) -> Iterable[str]:
        if not self._stopping.wait(self.interval):
            while self._poll() >= self.batch and not self._stopping.is_set():
                pass  # a full batch: more rows are waiting, read them at once
            self._prune()
        return ()

    def _interrupt(self) -> None:
        """The poll loop waits on the stop event, which :meth:`stop` sets."""

    def _poll(self) -> int:
        """Read the rows above the cursor and in the holes; apply them; return how many were read."""
        assert self._cursor is not None  # noqa: S101  set by _connect_listener before any poll
        table = cache_invalidations
        holes = sorted(self._holes)
        condition = table.c.id > self._cursor
        if holes:
            condition = sa.or_(condition, table.c.id.in_(holes))
        query = sa.select(*_COLUMNS).where(condition).order_by(table.c.id).limit(self.batch)
        with self.engine.connect() as connection:
            rows = connection.execution_options(**self._options).execute(query).all()
        now = time.monotonic()
        self._last_read = now
        self._apply_rows(rows, now)
        expired = [hole for hole, deadline in self._holes.items() if deadline <= now]
        if expired:
            for hole in expired:
                del self._holes[hole]
            self._count("gaps", "gap")
            self._clear_local("gap")
        return len(rows)

    def _apply_rows(self, rows: Iterable[Any], now: float) -> None:
        assert self._cursor is not None  # noqa: S101  set by _connect_listener before any poll
        keys: list[CacheKey] = []
        cleared = False
        read = 0
        for id_, kind, organization_id, subject_id in rows:
            read += 1
            if id_ <= self._cursor:
                if self._holes.pop(id_, None) is None:
                    continue  # already applied
            else:
                self._skip(range(self._cursor + 1, id_), now)
                self._cursor = id_
            if kind == CLEAR_ALL:
                cleared = True
            else:
                keys.append(CacheKey(kind, organization_id, subject_id))
        if read:
            with self._lock:
                self._last_message_at = self.clock()
                self._counts["received"] += read
            self._emit("received")
        if cleared:
            self._clear_local("requested")
        elif keys:
            self.caches.invalidate(keys)
            self._notify(Delivery(tuple(keys), False, "message"))

    def _skip(self, ids: range, now: float) -> None:
        if len(self._holes) + len(ids) > _MAX_HOLES:
            # Too many to wait for one by one: give them all up at once.
            self._holes.clear()
            self._count("gaps", "gap")
            self._clear_local("gap")
            return
        deadline = now + self.max_commit_delay
        for hole in ids:
            self._holes[hole] = deadline

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < max(_PRUNE_EVERY, self.interval):
            return
        self._last_prune = now
        cutoff = self.clock() - timedelta(seconds=self.retention)
        table = cache_invalidations
        # Never the newest row: on MariaDB and PostgreSQL ids are never reused anyway, and SQLite's
        # AUTOINCREMENT remembers the highest, but a log left with a row is simplest to reason about.
        statement = table.delete().where(table.c.created_at < cutoff, table.c.id < (self._cursor or 0))
        try:
            with self.engine.connect() as connection:
                if connection.dialect.name in ("mysql", "mariadb"):
                    # No gap locks that would hold up the inserts of concurrent changes.
                    connection = connection.execution_options(isolation_level="READ COMMITTED")
                connection.execution_options(**self._options).execute(statement)
                connection.commit()
        except sa.exc.DBAPIError:
            logger.debug("tenantkit bus (poll): pruning the change log failed", exc_info=True)
