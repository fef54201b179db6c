"""The PostgreSQL bus: ``LISTEN``/``NOTIFY`` on a dedicated autocommit connection (psycopg 3).

PostgreSQL delivers a notification to every session listening on the channel when the notifying statement
commits, in order, over the connection the listener already holds: no extra infrastructure, about a
millisecond of lag. Listening needs a session of its own for the whole life of the process, which is why a
**transaction-mode PgBouncer** (or any pooler that hands a server connection out per transaction) breaks
it: the ``LISTEN`` is made on one server connection and the notifications arrive on whichever the pooler
gives out next, or on none. Point the bus at PostgreSQL directly, or at a session-mode pool; the probe
:meth:`~tenantkit.bus.InvalidationBus.start` sends itself finds the problem at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tenantkit._clock import Clock, system_clock
from tenantkit._events import EventDispatcher
from tenantkit._validation import DEFAULT_CHANNEL, check_channel
from tenantkit.bus._base import InvalidationBus

if TYPE_CHECKING:
    import psycopg


def libpq_url(url: str | sa.URL) -> str:
    """A libpq connection URL from a SQLAlchemy URL (``postgresql+psycopg://...``) or a libpq one."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError("the PostgreSQL bus needs a postgresql:// URL")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresNotifyBus(InvalidationBus):
    """Invalidations over PostgreSQL ``LISTEN``/``NOTIFY``.

    ::

        bus = PostgresNotifyBus(kit.events, "postgresql://app@db/app")
        bus.start()       # at start-up, in each process (FastAPI's tk.lifespan does it)
        ...
        bus.stop()

    One connection listens (reconnecting with backoff, and clearing this process's caches each time it
    does); another sends, after the change's commit, from a background thread. Both are autocommit and
    tagged ``application_name=tenantkit-bus`` so that they are easy to find in ``pg_stat_activity``.

    Args:
        events: The dispatcher whose caches it keeps fresh (``kit.events``).
        url: The database, as a SQLAlchemy or libpq URL. Not through a transaction-mode PgBouncer.
        channel: The ``NOTIFY`` channel every process of the deployment shares.
        clock: Where the times of :meth:`health` come from.
        metrics: Told of each bus event when it has ``bus_event(event, backend)``.
        reconnect_max_delay: The longest wait between two connection attempts, in seconds.
        probe_timeout: How long :meth:`start` waits to connect and to hear its own probe, in seconds.
        connect_timeout: Seconds a connection attempt may take.

    Raises:
        ModuleNotFoundError: psycopg is not installed (the ``tenantkit[postgres]`` extra).
        ValueError: ``url`` is not a PostgreSQL URL or ``channel`` not an identifier.
    """

    backend = "postgres"

    def __init__(
        self,
        events: EventDispatcher,
        url: str | sa.URL,
        *,
        channel: str = DEFAULT_CHANNEL,
        clock: Clock = system_clock,
        metrics: object | None = None,
        reconnect_max_delay: float = 5.0,
        probe_timeout: float = 5.0,
        connect_timeout: int = 5,
    ) -> None:
        import psycopg  # noqa: F401  fails here, with the extra's name, rather than in the thread

        self._conninfo = libpq_url(url)
        self.channel: str = check_channel(channel)
        self._connect_timeout = connect_timeout
        self._listening: psycopg.Connection[Any] | None = None
        super().__init__(
            events,
            clock=clock,
            metrics=metrics,
            reconnect_max_delay=reconnect_max_delay,
            probe_timeout=probe_timeout,
        )

    def __repr__(self) -> str:
        return f"PostgresNotifyBus(channel={self.channel!r})"

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(
            self._conninfo,
            autocommit=True,
            application_name="tenantkit-bus",
            connect_timeout=self._connect_timeout,
            # A peer that vanished without closing the socket is noticed within about half a minute.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )

    def _connect_listener(self) -> object:
        from psycopg import sql

        connection = self._connect()
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        except BaseException:
            connection.close()
            raise
        self._listening = connection
        return connection

    def _receive(self, handle: Any, timeout: float) -> Iterable[str]:
        connection: psycopg.Connection[Any] = handle
        # A generator: each notification is handled as it arrives, not when the timeout ends.
        return (
            notify.payload
            for notify in connection.notifies(timeout=timeout)
            if notify.channel == self.channel
        )

    def _close_listener(self, handle: Any) -> None:
        self._listening = None
        handle.close()

    def _connect_publisher(self) -> object:
        return self._connect()

    def _deliver(self, handle: Any, payload: str) -> None:
        handle.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))

    def _close_publisher(self, handle: Any) -> None:
        handle.close()

    def _probe_failure(self) -> str:
        return (
            f"the PostgreSQL bus listens on {self.channel!r} but never heard the NOTIFY it sent itself: is a "
            "transaction-mode PgBouncer (or another per-transaction pooler) between the application and "
            "PostgreSQL? LISTEN needs a session of its own: point the bus at PostgreSQL directly or at a "
            "session-mode pool"
        )
