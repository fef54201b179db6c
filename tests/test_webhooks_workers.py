"""Real worker processes on PostgreSQL and MariaDB: killed with SIGKILL, and four draining 2,000 deliveries.

These start ``tenantkit webhooks work`` processes against a real receiver thread; they use the server
dialects only, so the SQLite-only runs on the other Pythons deselect them, and the default Python's run
has them once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tenantkit.tables import webhook_deliveries, webhook_messages
from tests.webhook_outbox import seed_due_deliveries, worker_environment
from tests.webhook_servers import Receiver, Reply

pytestmark = pytest.mark.concurrency

KEY = "webhook-encryption-key-0001"
LEASE = 3.0


def worker(engine: sa.Engine, batch: int) -> subprocess.Popen[bytes]:
    environment = {
        **worker_environment(engine, KEY),
        "TENANTKIT_WEBHOOK_TIMEOUT": "1",
        "TENANTKIT_WEBHOOK_LEASE": str(int(LEASE)),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tenantkit", "webhooks", "work", "--batch", str(batch), "--idle", "0.1"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def pending(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(webhook_deliveries.c.status != "succeeded")
            ).scalar_one()
        )


def wait_until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_worker_killed_while_holding_leases_loses_nothing(server_engine: sa.Engine) -> None:
    """SIGKILL mid-batch: every message still arrives; only those in flight at the kill arrive twice, and
    never before the dead worker's lease ran out."""
    with Receiver(default=Reply(200, delay=0.15)) as receiver:
        seed_due_deliveries(server_engine, receiver.url(), 40, key=KEY)
        first = worker(server_engine, batch=10)
        wait_until(lambda: len(receiver.received) >= 5, 30)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        # In flight at the kill: reached the receiver (or was reaching it) with no success recorded.
        with server_engine.connect() as connection:
            recorded = set(
                connection.execute(
                    sa.select(webhook_deliveries.c.message_id).where(
                        webhook_deliveries.c.status == "succeeded"
                    )
                ).scalars()
            )
        in_flight = set(receiver.started) - recorded
        second = worker(server_engine, batch=10)
        try:
            wait_until(lambda: pending(server_engine) == 0, 60)
        finally:
            second.terminate()
            second.wait()

    arrivals = Counter(receiver.ids())
    with server_engine.connect() as connection:
        every = set(connection.execute(sa.select(webhook_messages.c.id)).scalars())
    assert set(arrivals) == every
    twice = {message for message, times in arrivals.items() if times > 1}
    assert twice <= in_flight
    # The dead worker claimed its batch at most 10 deliveries x 0.15 s before the first of them arrived; its
    # lease lasted LEASE from the claim, so a second arrival comes at least this long after the first.
    earliest_again = LEASE - 10 * 0.15 - 0.1
    for message in twice:
        first_seen, again = [request.at for request in receiver.received if request.webhook_id == message][:2]
        assert again - first_seen >= earliest_again
        assert again >= killed_at


def test_four_workers_drain_two_thousand_deliveries_each_once(server_engine: sa.Engine) -> None:
    """Four worker processes share 2,000 due deliveries with SKIP LOCKED: each is delivered exactly once."""
    with Receiver() as receiver:
        seed_due_deliveries(server_engine, receiver.url(), 2000, key=KEY)
        workers = [worker(server_engine, batch=50) for _ in range(4)]
        try:
            wait_until(lambda: pending(server_engine) == 0, 120)
        finally:
            for process in workers:
                process.terminate()
            for process in workers:
                process.wait()
    arrivals = Counter(receiver.ids())
    assert len(arrivals) == 2000
    assert max(arrivals.values()) == 1
