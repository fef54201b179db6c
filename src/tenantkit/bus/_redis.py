"""The Redis bus: pub/sub on one channel (redis-py; the ``tenantkit[redis]`` extra).

Redis hands a published message to every client subscribed at that moment, and to no one else: a client
that was disconnected, or that Redis dropped for reading too slowly, misses it. So the bus clears its
process's caches whenever its subscription is (re)confirmed, including when redis-py reconnects by itself,
and numbers its messages so that the others notice one that never arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tenantkit._clock import Clock, system_clock
from tenantkit._events import EventDispatcher
from tenantkit._validation import DEFAULT_CHANNEL, check_channel
from tenantkit.bus._base import InvalidationBus

_DRAIN = 1000


class RedisBus(InvalidationBus):
    """Invalidations over Redis pub/sub.

    ::

        bus = RedisBus(kit.events, "redis://cache:6379/0")
        bus.start()

    Args:
        events: The dispatcher whose caches it keeps fresh (``kit.events``).
        url: The Redis server, as redis-py's ``Redis.from_url`` takes it (``redis://``, ``rediss://``,
            ``unix://``).
        channel: The channel every process of the deployment shares.
        clock: Where the times of :meth:`health` come from.
        metrics: Told of each bus event when it has ``bus_event(event, backend)``.
        reconnect_max_delay: The longest wait between two connection attempts, in seconds.
        probe_timeout: How long :meth:`start` waits to connect and to hear its own probe, in seconds.
        connect_timeout: Seconds a connection attempt may take.

    Raises:
        ModuleNotFoundError: redis-py is not installed (the ``tenantkit[redis]`` extra).
        ValueError: ``channel`` is not an identifier.
    """

    backend = "redis"

    def __init__(
        self,
        events: EventDispatcher,
        url: str,
        *,
        channel: str = DEFAULT_CHANNEL,
        clock: Clock = system_clock,
        metrics: object | None = None,
        reconnect_max_delay: float = 5.0,
        probe_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        try:
            import redis  # noqa: F401  fails here, with the extra's name, rather than in the thread
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                "the Redis bus needs redis-py: pip install 'tenantkit[redis]'", name=error.name
            ) from None
        self._url = url
        self.channel: str = check_channel(channel)
        self._connect_timeout = connect_timeout
        super().__init__(
            events,
            clock=clock,
            metrics=metrics,
            reconnect_max_delay=reconnect_max_delay,
            probe_timeout=probe_timeout,
        )

    def __repr__(self) -> str:
        return f"RedisBus(channel={self.channel!r})"

    def _client(self) -> Any:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # No silent retries: a lost connection surfaces here, where the bus reconnects and clears.
        return redis.Redis.from_url(
            self._url,
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=self._connect_timeout,
            socket_keepalive=True,
            health_check_interval=15,
        )

    def _connect_listener(self) -> object:
        client = self._client()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            # Subscribed once Redis confirms it; what was published before then is not ours to hear.
            while True:
                message = pubsub.get_message(timeout=self.probe_timeout)
                if message is None:
                    raise ConnectionError("Redis did not confirm the subscription")
                if message["type"] == "subscribe":
                    break
        except BaseException:
            pubsub.close()
            client.close()
            raise
        return (client, pubsub)

    def _receive(self, handle: Any, timeout: float) -> Iterable[str]:
        _client, pubsub = handle
        payloads: list[str] = []
        message = pubsub.get_message(timeout=timeout)
        while message is not None and len(payloads) < _DRAIN:
            if message["type"] == "message":
                data = message["data"]
                payloads.append(data.decode() if isinstance(data, bytes) else str(data))
            elif message["type"] == "subscribe":
                # redis-py subscribed again on a new connection: messages in between were lost.
                self._subscribed()
            message = pubsub.get_message(timeout=0)
        return payloads

    def _close_listener(self, handle: Any) -> None:
        client, pubsub = handle
        try:
            pubsub.close()
        finally:
            client.close()

    def _connect_publisher(self) -> object:
        return self._client()

    def _deliver(self, handle: Any, payload: str) -> None:
        handle.publish(self.channel, payload)

    def _close_publisher(self, handle: Any) -> None:
        handle.close()
