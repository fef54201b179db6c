"""An application process for the bus tests: a kit with its caches on and a bus, driven through a pipe.

:func:`serve` is the target of a ``spawn`` process (so nothing is inherited but its arguments): it builds a
:class:`~tenantkit.TenantKit` with an hour-long verification cache (only the bus can evict it within a test),
starts the bus and answers commands until told to stop. :class:`Worker` is the test's end of the pipe.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, ApiKeySettings, BusSettings, CacheKey, TenantKit
from tenantkit.bus import Delivery

ORG = "org_bus"
TIMEOUT = 30.0


class _Deliveries:
    """What this process's bus applied, for commands that wait on it."""

    def __init__(self) -> None:
        self.keys: set[CacheKey] = set()
        self.clears: list[str] = []
        self.changed = threading.Condition()

    def record(self, delivery: Delivery) -> None:
        with self.changed:
            self.keys.update(delivery.keys)
            if delivery.cleared:
                self.clears.append(delivery.reason)
            self.changed.notify_all()


def _verify(kit: TenantKit, engine: sa.Engine, key: str) -> tuple[str, str]:
    """``(source, outcome)``: ``cache`` when memory answered, else ``database``."""
    cached = kit.api_keys.verify_cached(key)
    if cached is not None:
        return "cache", cached.reason or "valid"
    with tenantkit.transaction(engine) as session:
        verified = kit.api_keys.verify(session, key)
    return "database", verified.reason or "valid"


def _answer(  # noqa: PLR0911  one answer per command
    kit: TenantKit, engine: sa.Engine, seen: _Deliveries, command: tuple[Any, ...]
) -> Any:
    name = command[0]
    if name == "issue":
        with tenantkit.transaction(engine) as session:
            issued = kit.api_keys.issue(session, ORG, "bus test", actor=HOST)
        return issued.id, issued.reveal()
    if name == "verify":
        return _verify(kit, engine, command[1])
    if name == "revoke":
        with tenantkit.transaction(engine) as session:
            kit.api_keys.revoke(session, ORG, command[1], actor=HOST)
        return "revoked"
    if name == "wait_key":
        wanted = CacheKey.api_key(ORG, command[1])
        with seen.changed:
            return seen.changed.wait_for(lambda: wanted in seen.keys, TIMEOUT)
    if name == "clears":
        with seen.changed:
            return list(seen.clears)
    if name == "wait_clear":
        reason, before = command[1], command[2]
        with seen.changed:
            return seen.changed.wait_for(lambda: seen.clears[before:].count(reason) > 0, TIMEOUT)
    if name == "health":
        assert kit.bus is not None
        return kit.bus.health().to_dict()
    raise ValueError(f"unknown command {name!r}")


def serve(connection: Any, database_url: str, bus: dict[str, Any]) -> None:
    """Run one application process until ``("stop",)``; every answer is ``("ok", value)`` or an error."""
    kit = TenantKit(
        api_keys=ApiKeySettings(prefix="tk_test_", cache_ttl=timedelta(hours=1), track_last_used=False),
        bus=BusSettings(**bus),
    )
    assert kit.bus is not None
    engine = sa.create_engine(database_url)
    seen = _Deliveries()
    kit.bus.on_delivery(seen.record)
    try:
        kit.bus.start()
        connection.send(("ok", kit.bus.health().to_dict()))
        while True:
            command = connection.recv()
            if command[0] == "stop":
                break
            try:
                connection.send(("ok", _answer(kit, engine, seen, command)))
            except Exception as error:  # the test asserts on it
                connection.send(("error", f"{type(error).__name__}: {error}"))
    except Exception as error:
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        kit.bus.stop()
        engine.dispose()
        connection.close()


class Worker:
    """An application process started with ``spawn``, and the commands the tests send it."""

    def __init__(self, database_url: str, bus: dict[str, Any]) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, database_url, bus), daemon=True)
        self.process.start()
        child.close()
        self.started: dict[str, Any] = self._reply()

    def _reply(self) -> Any:
        if not self._connection.poll(TIMEOUT + 30):
            raise AssertionError("the worker process did not answer")
        status, value = self._connection.recv()
        if status != "ok":
            raise AssertionError(f"the worker process failed: {value}")
        return value

    def ask(self, *command: Any) -> Any:
        self._connection.send(command)
        return self._reply()

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._connection.send(("stop",))
        self.process.join(15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
