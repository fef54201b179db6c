"""``last_used_at`` written behind the request: a bounded buffer of uses, flushed in one statement per batch.

With ``last_used_writes="deferred"`` a verification that finds a key's ``last_used_at`` due for a write
records the use here instead of writing it in the caller's transaction, so the request that verifies never
waits for a write (and a cache hit needs no connection at all). :meth:`LastUsedBuffer.flush` writes every
recorded use in one conditional ``UPDATE`` per :data:`FLUSH_BATCH` keys: the same condition as the inline
write, so that every process together still writes a key at most once per interval.

Someone must flush: the adapters do it every few seconds and at shutdown when given an engine
(``database=``); a host of its own calls :meth:`ApiKeyService.flush_last_used
<tenantkit.ApiKeyService.flush_last_used>` from its scheduler, or runs a :class:`LastUsedWriter`. A use
recorded and never flushed (the process killed) is lost, which costs a ``last_used_at`` up to one flush period
old, never a wrong one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tenantkit._tables import UTCDateTime, api_keys

__all__ = ["FLUSH_BATCH", "LastUsedBuffer", "LastUsedWriter", "flush_on_engine"]

logger = logging.getLogger("tenantkit")

FLUSH_BATCH = 500
"""Keys written by one ``UPDATE`` at most (its parameters stay well under every driver's limit)."""


def _flush_statement(uses: Mapping[str, datetime], interval: timedelta) -> sa.Update:
    """One conditional UPDATE: each key gets its use time, unless written within ``interval`` of it."""

    def stamped(value: datetime) -> Any:
        return sa.literal(value, UTCDateTime())

    key_id = api_keys.c.id
    used_at = sa.case({key: stamped(when) for key, when in uses.items()}, value=key_id)
    threshold = sa.case({key: stamped(when - interval) for key, when in uses.items()}, value=key_id)
    return (
        api_keys.update()
        .where(
            key_id.in_(list(uses)),
            sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < threshold),
        )
        .values(last_used_at=used_at)
    )


class LastUsedBuffer:
    """The uses of keys not yet written: key id to the first use due for a write. Thread-safe.

    Args:
        max_size: Keys it holds at most; when full, :meth:`record` says so and the verification writes
            inline instead (or, answering from memory, asks for a connection).
        interval: ``last_used_at`` is written at most once per key per interval.
    """

    def __init__(self, max_size: int, interval: timedelta) -> None:
        self.max_size = max_size
        self.interval = interval
        self._pending: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def record(self, key_id: str, now: datetime) -> bool:
        """Note a use of ``key_id`` at ``now`` due for a write; ``False`` when the buffer is full.

        A key already pending keeps its first use: that is the value due, and later uses are within the
        interval of it.
        """
        with self._lock:
            pending = self._pending
            if key_id in pending:
                return True
            if len(pending) >= self.max_size:
                return False
            pending[key_id] = now
            return True

    def flush(self, connection: Connection, execution_options: Mapping[str, Any]) -> int:
        """Write every pending use on ``connection``, in the caller's transaction; the caller commits.

        Returns:
            How many keys were written (a key another process wrote within the interval is not).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: The write failed; the uses are pending again, for the next flush.
        """
        with self._lock:
            taken, self._pending = self._pending, {}
        if not taken:
            return 0
        written = 0
        items = list(taken.items())
        try:
            for start in range(0, len(items), FLUSH_BATCH):
                batch = dict(items[start : start + FLUSH_BATCH])
                result = connection.execute(
                    _flush_statement(batch, self.interval), execution_options=execution_options
                )
                written += max(result.rowcount, 0)
        except BaseException:
            self._restore(taken)
            raise
        return written

    def __len__(self) -> int:
        return len(self._pending)

    def _restore(self, taken: Mapping[str, datetime]) -> None:
        # Every taken use goes back, even past max_size (at most twice it, if the buffer filled meanwhile):
        # dropping one would lose a write; the next flush brings it down again.
        with self._lock:
            pending = self._pending
            for key_id, when in taken.items():
                # A use recorded since the flush took these is later: the taken one is the first use due.
                since = pending.get(key_id)
                if since is None or when < since:
                    pending[key_id] = when


def flush_on_engine(flush: Callable[[Connection], int], engine: Engine) -> int:
    """Write pending uses with ``flush`` (``ApiKeyService.flush_last_used``) in a transaction of its own."""
    with engine.begin() as connection:
        return flush(connection)


class LastUsedWriter:
    """A thread that writes a service's deferred ``last_used_at`` uses every ``every``, and at :meth:`stop`.

    For hosts without an adapter that does it (the FastAPI and Flask adapters run one when given
    ``database=``)::

        writer = LastUsedWriter(kit.api_keys.flush_last_used, engine)
        writer.start()
        ...
        writer.stop()   # writes what is pending, then ends the thread

    Args:
        flush: What writes the pending uses on a connection (``ApiKeyService.flush_last_used``).
        engine: The engine whose connections it writes on (a transaction of its own each time).
        every: The period between flushes: the most a recorded use waits.
    """

    def __init__(
        self,
        flush: Callable[[Connection], int],
        engine: Engine,
        *,
        every: timedelta = timedelta(seconds=5),
    ) -> None:
        if every <= timedelta(0):
            raise ValueError("every must be a positive timedelta")
        self._flush = flush
        self._engine = engine
        self._every = every.total_seconds()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def flush(self) -> int:
        """Write what is pending now, in a transaction of its own; how many keys were written."""
        return flush_on_engine(self._flush, self._engine)

    def start(self) -> None:
        """Start the flushing thread (a daemon: :meth:`stop` it for the last write)."""
        if self._thread is not None:
            raise RuntimeError("this LastUsedWriter was already started")
        self._thread = threading.Thread(target=self._run, name="tenantkit-last-used", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then write whatever is still pending."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def stop_at_exit(self) -> None:
        """:meth:`stop`, logging a failed last write instead of raising (for ``atexit``)."""
        try:
            self.stop()
        except Exception:
            logger.exception("tenantkit: the last write of last_used_at failed at exit")

    def __enter__(self) -> LastUsedWriter:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                self.flush()
            except Exception:
                # The uses stay pending; the next period tries again. Never a reason to end the thread.
                logger.exception("tenantkit: writing last_used_at failed; retrying in %.1f s", self._every)
