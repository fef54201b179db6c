"""A revocation reaches every process: real OS processes, real servers, each bus backend.

Each application is a separate ``spawn`` process (:mod:`tests.bus_worker`) with an hour-long verification
cache, so within a test only the bus can make it forget a key. The tests assert cause and effect, not time:
a process answers "valid" from its cache, another revokes the key, the first waits until its bus has
delivered the revocation, and from then on it refuses. A bus whose connection is cut clears its caches
when it is back. The lag itself is measured by ``benchmarks/bench_bus.py``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.bus_worker import Worker
from tests.databases import unavailable

pytestmark = [pytest.mark.concurrency, pytest.mark.processes]

REDIS_URL = "redis://127.0.0.1:6379/0"


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _channel() -> str:
    """A channel of this test alone, so that test runs sharing one server never hear each other."""
    return f"tenantkit_test_{uuid.uuid4().hex[:12]}"


def _require_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {url} is unreachable: {error}")


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Started workers, stopped (or killed) after the test whatever happens."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def _start(workers: list[Worker], database_url: str, bus: dict[str, Any], count: int) -> list[Worker]:
    for _ in range(count):
        workers.append(Worker(database_url, bus))
    return workers


def _revocation_reaches_the_other_process(first: Worker, second: Worker) -> None:
    key_id, key = first.ask("issue")
    # Both processes cache the key as valid: from here on only a message can change their answer.
    assert first.ask("verify", key) == ("database", "valid")
    assert second.ask("verify", key) == ("database", "valid")
    assert second.ask("verify", key) == ("cache", "valid")

    assert first.ask("revoke", key_id) == "revoked"
    assert second.ask("wait_key", key_id) is True

    # Delivered: the cache no longer answers, and the database says why.
    assert second.ask("verify", key) == ("database", "revoked")
    health = second.ask("health")
    assert health["healthy"] is True
    assert health["received"] >= 1
    assert health["gaps"] == 0


class TestRevocationReachesEveryProcess:
    def test_postgres_notify(self, postgres_engine: sa.Engine, workers: list[Worker]) -> None:
        """With LISTEN/NOTIFY, a key revoked in one process is refused by the other once notified."""
        url = _url(postgres_engine)
        first, second = _start(workers, url, {"backend": "postgres", "url": url, "channel": _channel()}, 2)
        _revocation_reaches_the_other_process(first, second)

    def test_redis_pubsub(self, postgres_engine: sa.Engine, workers: list[Worker]) -> None:
        """With Redis pub/sub (the shared server, a channel of this test's own), the same."""
        _require_redis(REDIS_URL)
        bus = {"backend": "redis", "url": REDIS_URL, "channel": _channel()}
        first, second = _start(workers, _url(postgres_engine), bus, 2)
        _revocation_reaches_the_other_process(first, second)

    def test_poller(self, engine: sa.Engine, workers: list[Worker]) -> None:
        """With the change-log poller, on SQLite, PostgreSQL and MariaDB alike, the same."""
        url = _url(engine)
        first, second = _start(workers, url, {"backend": "poll", "url": url, "poll_interval": 0.1}, 2)
        _revocation_reaches_the_other_process(first, second)


class TestLostConnectionsClearTheCache:
    def test_terminated_listen_connection(self, postgres_engine: sa.Engine, workers: list[Worker]) -> None:
        """``pg_terminate_backend`` on the LISTEN connection: the bus reconnects and clears every cache."""
        url = _url(postgres_engine)
        (worker,) = _start(workers, url, {"backend": "postgres", "url": url, "channel": _channel()}, 1)
        _key_id, key = worker.ask("issue")
        worker.ask("verify", key)
        assert worker.ask("verify", key) == ("cache", "valid")
        clears = len(worker.ask("clears"))

        with postgres_engine.connect() as connection:
            killed = connection.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'tenantkit-bus' AND query LIKE 'LISTEN%%'"
            ).all()
        assert killed == [(True,)]

        assert worker.ask("wait_clear", "reconnected", clears) is True
        assert worker.ask("verify", key) == ("database", "valid")
        health = worker.ask("health")
        assert (health["healthy"], health["reconnects"]) == (True, 1)

    def test_redis_restart(self, postgres_engine: sa.Engine, workers: list[Worker]) -> None:
        """A private ``redis-server`` killed and started again: the bus resubscribes and clears its caches."""
        with _private_redis() as server:
            bus = {"backend": "redis", "url": server.url, "channel": _channel()}
            (worker,) = _start(workers, _url(postgres_engine), bus, 1)
            _key_id, key = worker.ask("issue")
            worker.ask("verify", key)
            assert worker.ask("verify", key) == ("cache", "valid")
            clears = len(worker.ask("clears"))

            server.restart()

            assert worker.ask("wait_clear", "reconnected", clears) is True
            assert worker.ask("verify", key) == ("database", "valid")
            assert worker.ask("health")["reconnects"] >= 1


class _PrivateRedis:
    """A ``redis-server`` of this test alone, on a free loopback port, never persisting anything."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


class _running:
    def __init__(self, server: _PrivateRedis) -> None:
        self.server = server

    def __enter__(self) -> _PrivateRedis:
        self.server.start()
        return self.server

    def __exit__(self, *exc: object) -> None:
        self.server.kill()


def _private_redis() -> _running:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
    assert binary is not None
    return _running(_PrivateRedis(binary))
