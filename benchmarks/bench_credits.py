"""What usage credits cost: a credit-limited key's verification (one conditional UPDATE, committed) beside
the uncached read of a plain key and the cache hit of a plain key, on SQLite and PostgreSQL.

Both keys are verified as the adapters' ``database=`` does (``begin_verification``, then a connection of
the engine's own, committed when it wrote); the credit key is cached, so its time is the spend alone.
Run::

    .venv/bin/python benchmarks/bench_credits.py [--rounds 2000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, ApiKeyService, MembershipService
from tenantkit._http import complete_on_engine
from tenantkit.api_keys import ApiKeyLimits, PendingVerification


def verify_on(service: ApiKeyService, engine: sa.Engine, key: str) -> tenantkit.ApiKeyVerification:
    answer = service.begin_verification(key)
    if isinstance(answer, PendingVerification):
        answer = complete_on_engine(answer, engine)
    return answer


def median_us(action: Callable[[], object], rounds: int) -> float:
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            action()
        batches.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(batches)


def run(url: str, label: str, rounds: int) -> None:
    engine = sa.create_engine(url)
    tenantkit.upgrade(engine)
    membership = MembershipService()
    cached = ApiKeyService(membership=membership, cache_ttl=timedelta(minutes=5), track_last_used=False)
    uncached = ApiKeyService(membership=membership, track_last_used=False)
    with tenantkit.transaction(engine) as session:
        plain = cached.issue(session, "org_bench", "plain", actor=HOST).reveal()
        credit = cached.issue(
            session, "org_bench", "metered", actor=HOST, limits=ApiKeyLimits(credits=10**12)
        ).reveal()
    assert verify_on(uncached, engine, plain).valid
    assert verify_on(cached, engine, credit).credits_remaining is not None
    read = median_us(lambda: verify_on(uncached, engine, plain), rounds)
    hit = median_us(lambda: verify_on(cached, engine, plain), rounds)
    spend = median_us(lambda: verify_on(cached, engine, credit), rounds)
    print(
        f"{label:12} uncached read {read:8.1f} µs   cache hit {hit:6.2f} µs   "
        f"credit key (one UPDATE, committed) {spend:8.1f} µs = {spend / read:4.2f}x the uncached read"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        run(f"sqlite:///{Path(directory) / 'bench.sqlite3'}", "SQLite file", arguments.rounds)
    if not arguments.no_postgres:
        server = sa.make_url(arguments.postgres_url)
        name = f"tenantkit_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            run(
                server.set(database=name).render_as_string(hide_password=False),
                "PostgreSQL",
                arguments.rounds,
            )
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.dispose()


if __name__ == "__main__":
    main()
