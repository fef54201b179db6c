"""Where an uncached SQLite verification spends its time beyond the raw driver floor, step by step.

Each step below is the previous one plus one more part of what ``ApiKeyService.verify`` does, on the same
SQLite table of 1,000 keys and the same connection (the process pins itself to one CPU):

* ``floor``: the raw driver's prepared lookup plus the SHA-256 digest (``bench_api_keys.py``'s floor);
* ``+ format check``: ``KeyFormat.check`` (prefix, length, alphabet, CRC32 checksum) first;
* ``+ clock``: the time of the verification (expiry and ``last_used_at`` are decided against it);
* ``+ memory step``: the whole in-memory half (``_begin``: format, digest, clock, caches off);
* ``+ fetch wrapper``: the lookup through ``RawQuery.fetch`` (transaction bookkeeping, the statement
  listeners check, the pooled cursor) instead of the bare cursor;
* ``+ plan, match``: the per-dialect plan (and schema map) and the constant-time digest comparison;
* ``+ decision``: the rest of the database half (``_verify_stored``: expiry, revocation, the prebuilt
  result, the ``last_used_at`` comparison);
* ``verify``: the public call.

Steps alternate in rounds; a time is the median of its rounds. The differences are what each part costs;
the last line is the ratio ``verify`` / ``floor`` that issue 11's goal (≤ 1.5x) is about. This reads
private internals of the service on purpose (it measures them): it follows them when they change. Run::

    .venv/bin/python benchmarks/bench_verify_breakdown.py
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api_keys import SAMPLE, build_sqlite, issue_sample

from tenantkit import ApiKeyService, MembershipService


def steps(engine: sa.Engine, keys: list[str]) -> dict[str, Callable[[], None]]:  # noqa: C901  one closure a step
    """One runner per step, each ``SAMPLE`` verifications of the sample keys."""
    service = ApiKeyService(membership=MembershipService())
    connection = engine.connect()
    for key in keys:  # the first use of each key writes last_used_at once; keep that out of the timing
        assert service.verify(connection, key).valid
    connection.commit()
    service.verify(connection, keys[0])  # a read transaction open, as in every step below
    key_format, clock = service.format, service.clock
    candidates = service._candidates[key_format.check(keys[0])]
    assert candidates is not None
    query = candidates.query
    plan = query.plan(connection.dialect, None)
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None
    cursor = dbapi_connection.cursor()
    sql, store = plan.sql, candidates.cache_key

    def floor() -> None:
        for key in keys:
            cursor.execute(sql, ("sha256$" + hashlib.sha256(key.encode()).hexdigest(),))
            cursor.fetchall()

    def format_check() -> None:
        for key in keys:
            key_format.check(key)
            cursor.execute(sql, (store(key),))
            cursor.fetchall()

    def with_clock() -> None:
        for key in keys:
            key_format.check(key)
            clock()
            cursor.execute(sql, (store(key),))
            cursor.fetchall()

    def memory_step() -> None:
        for key in keys:
            due = service._begin(key, None)
            assert type(due) is tuple
            cursor.execute(sql, (due[2],))
            cursor.fetchall()

    def fetch_wrapper() -> None:
        for key in keys:
            due = service._begin(key, None)
            assert type(due) is tuple
            query.fetch(connection, plan, (due[2],), {})

    def plan_match() -> None:
        for key in keys:
            due = service._begin(key, None)
            assert type(due) is tuple
            found, key, cache_key, now, *_ = due
            chosen = found.query.plan(connection.dialect, service.membership.schema_translate_map(connection))
            rows = found.query.fetch(connection, chosen, (cache_key,), {})
            found.match(rows, (cache_key,), key, chosen, now, None)

    def decision() -> None:
        for key in keys:
            due = service._begin(key, None)
            assert type(due) is tuple
            service._verify_stored(connection, due[0], due[1], due[2], due[3], None)

    def verify() -> None:
        for key in keys:
            service.verify(connection, key)

    return {
        "floor": floor,
        "+ format check": format_check,
        "+ clock": with_clock,
        "+ memory step": memory_step,
        "+ fetch wrapper": fetch_wrapper,
        "+ plan, match": plan_match,
        "+ decision": decision,
        "verify": verify,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin to")
    arguments = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {arguments.cpu})
    keys = issue_sample("", SAMPLE)
    with tempfile.TemporaryDirectory(prefix="tenantkit-bench-") as directory:
        engine = sa.create_engine(build_sqlite(Path(directory) / "keys.sqlite3", SAMPLE, keys))
        runners = steps(engine, keys)
        for run in runners.values():
            run()
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(arguments.rounds):
            for name, run in runners.items():
                start = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - start) / len(keys) * 1e6)
        engine.dispose()
    print(f"SQLite, {SAMPLE:,} keys, pinned to CPU {arguments.cpu}; medians of {arguments.rounds} rounds")
    previous = None
    for name, values in times.items():
        median = statistics.median(values)
        step = "" if previous is None else f"{median - previous:+6.2f} µs"
        print(f"  {name:<18}{median:6.2f} µs  {step}")
        previous = median
    floor, verify = statistics.median(times["floor"]), statistics.median(times["verify"])
    print(f"verify / floor: {verify / floor:.2f}x (issue 11's goal: ≤ 1.50x; floor {floor:.2f} µs)")


if __name__ == "__main__":
    main()
