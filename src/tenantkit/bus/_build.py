"""The bus :class:`~tenantkit.BusSettings` describe, built on a kit's dispatcher (``TenantKit(bus=...)``)."""

from __future__ import annotations

from tenantkit._clock import Clock
from tenantkit._errors import ConfigurationError
from tenantkit._events import EventDispatcher
from tenantkit._settings import TenantKitSettings
from tenantkit.bus._base import InvalidationBus


def bus_from_settings(
    settings: TenantKitSettings, events: EventDispatcher, *, clock: Clock, metrics: object | None
) -> InvalidationBus | None:
    """The bus ``settings.bus`` chooses, plugged into ``events`` but not started; ``None`` when off.

    Raises:
        ConfigurationError: The bus has no URL (``redis`` needs its own; the others default to the
            database's).
    """
    chosen = settings.bus
    if chosen.backend is None:
        return None
    secret = chosen.url if chosen.backend == "redis" else chosen.url or settings.database.url
    if secret is None:
        where = "" if chosen.backend == "redis" else " (or DatabaseSettings(url=...), TENANTKIT_DATABASE_URL)"
        raise ConfigurationError(
            f"the {chosen.backend} bus needs a URL: BusSettings(url=...) or TENANTKIT_BUS_URL{where}"
        )
    url = secret.get_secret_value()
    common = {
        "clock": clock,
        "metrics": metrics,
        "reconnect_max_delay": chosen.reconnect_max_delay.total_seconds(),
        "probe_timeout": chosen.probe_timeout.total_seconds(),
    }
    try:
        if chosen.backend == "postgres":
            from tenantkit.bus._postgres import PostgresNotifyBus

            return PostgresNotifyBus(events, url, channel=chosen.channel, **common)  # type: ignore[arg-type]
        if chosen.backend == "redis":
            from tenantkit.bus._redis import RedisBus

            return RedisBus(events, url, channel=chosen.channel, **common)  # type: ignore[arg-type]
        from tenantkit.bus._poller import PollingBus

        return PollingBus(
            events,
            url,
            interval=chosen.poll_interval.total_seconds(),
            max_commit_delay=chosen.max_commit_delay.total_seconds(),
            retention=chosen.retention.total_seconds(),
            schema=settings.database.schema_name,
            **common,  # type: ignore[arg-type]
        )
    except ValueError as error:
        raise ConfigurationError(f"the {chosen.backend} bus: {error}") from None
