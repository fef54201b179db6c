"""What webhooks cost: worker throughput on PostgreSQL, and what the outbox adds to a change.

On a throwaway PostgreSQL database it measures, in one run:

* **throughput**: 2,000 due deliveries drained by one ``tenantkit webhooks work`` process, then by four,
  against a local receiver (a threaded HTTP server on 127.0.0.1 answering 200 at once): deliveries per
  second from the workers' start until the last one is recorded as delivered (each delivery is one claim
  share, one HTTP POST on a fresh connection, and one recording transaction);
* **outbox cost**: ``members.change_role`` (its own committed transaction, as a request would) in an
  organization with no endpoint and in one with one endpoint subscribed to ``member.role_changed``, batches
  of the two alternating; the median of the paired ratios (with / without). The audit log is off in both,
  so the ratio is the outbox's alone.

Each case checks its result (every delivery succeeded, every change queued its message). Run::

    .venv/bin/python benchmarks/bench_webhooks.py --postgres postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, AuditSettings, Role, TenantKit, WebhookSettings
from tenantkit.tables import metadata, webhook_deliveries, webhook_messages

# The worker tests seed the outbox and start workers the same way: one copy, in tests/, which this checkout
# holds beside benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.webhook_outbox import seed_due_deliveries, worker_environment

KEY = "bench-webhook-key-000001"
DELIVERIES = 2000


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def empty(engine: sa.Engine) -> None:
    """Every tenantkit table emptied, so that each case starts from its own rows alone."""
    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())


def throughput(engine: sa.Engine, url: str, workers: int) -> float:
    empty(engine)
    seed_due_deliveries(engine, url, DELIVERIES, key=KEY)
    environment = worker_environment(engine, KEY)
    command = [sys.executable, "-m", "tenantkit", "webhooks", "work", "--batch", "50", "--idle", "0.05"]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        while True:
            with engine.connect() as connection:
                left = connection.execute(
                    sa.select(sa.func.count()).where(webhook_deliveries.c.status != "succeeded")
                ).scalar_one()
            if left == 0:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
    return DELIVERIES / elapsed


def outbox_cost(
    engine: sa.Engine, url: str, batches: int = 15, per_batch: int = 20
) -> tuple[float, float, float]:
    kit = TenantKit(
        webhooks=WebhookSettings(secret_keys=[KEY], allow_http=True, allow_networks=["127.0.0.1/32"]),
        audit=AuditSettings(enabled=False),
    )
    empty(engine)
    with kit.transaction(engine) as session:
        for org in ("plain", "hooked"):
            kit.members.add(session, org, "owner", Role.OWNER, actor=HOST)
            kit.members.add(session, org, "bob", Role.MEMBER, actor=HOST)
        kit.webhooks.create_endpoint(session, "hooked", url, ["member.role_changed"], actor=HOST)

    def batch(org: str) -> float:
        started = time.perf_counter()
        for index in range(per_batch):
            with kit.transaction(engine) as session:
                kit.members.change_role(
                    session, org, "bob", Role.ADMIN if index % 2 == 0 else Role.MEMBER, actor=HOST
                )
        return (time.perf_counter() - started) / per_batch * 1e6

    plain, hooked, ratios = [], [], []
    batch("plain"), batch("hooked")  # warm up
    for _ in range(batches):
        without, with_ = batch("plain"), batch("hooked")
        plain.append(without)
        hooked.append(with_)
        ratios.append(with_ / without)
    with engine.connect() as connection:
        queued = connection.execute(sa.select(sa.func.count()).select_from(webhook_messages)).scalar_one()
    assert queued == (batches + 1) * per_batch, queued
    return statistics.median(plain), statistics.median(hooked), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    arguments = parser.parse_args()
    server = sa.engine.make_url(arguments.postgres)
    name = f"tenantkit_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    receiver.daemon_threads = True
    Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    engine = sa.create_engine(server.set(database=name))
    try:
        tenantkit.upgrade(engine)
        print(f"PostgreSQL, {DELIVERIES} deliveries to a local receiver ({os.cpu_count()} cores)")
        for workers in (1, 4):
            rate = throughput(engine, url, workers)
            print(f"  {workers} worker{'s' if workers > 1 else ''}: {rate:7.0f} deliveries/s")
        plain, hooked, ratio = outbox_cost(engine, url)
        print("members.change_role, committed, audit off (median µs per change)")
        print(f"  no endpoint:               {plain:8.0f}")
        print(f"  one subscribed endpoint:   {hooked:8.0f}")
        print(f"  ratio (median of pairs):   {ratio:8.2f}")
    finally:
        engine.dispose()
        receiver.shutdown()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()
