"""API key verification against the raw driver floor, on SQLite files of several sizes and on PostgreSQL.

One run prints, on one core (the process pins itself to one CPU):

* the floor: the same indexed lookup (``SELECT … FROM api_keys WHERE hashed_key = ?``) through the raw
  driver with a prepared statement, plus the SHA-256 digest of the key;
* ``verify`` without the cache, and its ratio to the floor;
* ``verify`` with the in-process cache, in verifications per second;
* on SQLite, each table size twice: with SQLite's default page cache (2 MiB) and with a page cache that holds
  the index (``PRAGMA cache_size``, 64 MiB by default), for floor and verify alike;
* on PostgreSQL, the lookup alone (autocommit: one round trip for floor and verify), and in a transaction of
  its own as a web request makes it (BEGIN, SELECT, COMMIT: three round trips for floor and verify alike);
  then verify as the FastAPI and Flask adapters call it, through a new Session per request, next to what
  such a Session costs on its own, with no statement at all;
* how verification cost grows from the smallest to the largest table;
* how many ``last_used_at`` writes a loop of 100,000 verifications of one key makes, with a clock that
  advances 1 ms per verification (100 simulated seconds: at most one write per 60-second interval);
* the cost of one argon2id verification (argon2-cffi defaults) next to one SHA-256 digest.

Floor and verify batches alternate; a time is the median over the batches, and a ratio the median of the
paired ratios (verify batch / the floor batch next to it), which holds steady while the machine's load
moves absolute times. Run::

    .venv/bin/python benchmarks/bench_api_keys.py                       # 1k, 100k, 1M keys + PostgreSQL
    .venv/bin/python benchmarks/bench_api_keys.py --sizes 1000,100000 --no-postgres
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, ApiKeyService, MembershipService
from tenantkit.api_keys._format import KeyFormat
from tenantkit.api_keys._hashers import sha256_digest

SAMPLE = 1000
"""Keys with a known plaintext in every table; verification cycles through them."""

FLOOR_SQL = (
    "SELECT id, organization_id, name, scopes, expires_at, revoked_at, last_used_at, hashed_key "
    "FROM api_keys WHERE hashed_key = {}"
)


class SteppingClock:
    """A clock that moves forward a fixed step at every reading."""

    def __init__(self, step: timedelta) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=timezone.utc)
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def per_op(run: Callable[[int], object], batch: int, repeats: int) -> float:
    """Median seconds per operation over ``repeats`` batches of ``batch`` operations."""
    return interleaved({"only": (run, batch)}, repeats)["only"]


def interleaved(runners: dict[str, tuple[Callable[[int], object], int]], repeats: int) -> dict[str, float]:
    """Median seconds per operation of each runner, their batches interleaved so load drifts hit all alike.

    For every runner but ``floor`` the result also holds ``<name>/floor``: the median of the paired ratios
    of its batches to the floor batch of the same round.
    """
    for run, batch in runners.values():
        run(min(batch, 1000))
    timings: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, (run, batch) in runners.items():
            start = time.perf_counter()
            run(batch)
            timings[name].append((time.perf_counter() - start) / batch)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    if "floor" in timings:
        for name, values in timings.items():
            if name != "floor":
                medians[f"{name}/floor"] = statistics.median(
                    value / floor for value, floor in zip(values, timings["floor"], strict=True)
                )
    return medians


def fill_rows(count: int, sample_keys: list[str]) -> list[tuple[Any, ...]]:
    """``count`` rows: the sample keys' digests, then random digests (keys whose plaintext nobody has)."""
    created = "2030-01-01 00:00:00.000000"
    rows = []
    for index in range(count):
        digest = (
            sha256_digest(sample_keys[index])
            if index < len(sample_keys)
            else "sha256$" + os.urandom(32).hex()
        )
        rows.append(
            (
                str(uuid.uuid4()),
                f"key {index}",
                f"org_{index % 997}",
                digest,
                created,
                created,
                "tk_live_xxxx",
                '["reports:read"]',
            )
        )
    return rows


INSERT_COLUMNS = "id, name, organization_id, hashed_key, created_at, updated_at, start, scopes"


def build_sqlite(path: Path, size: int, sample_keys: list[str]) -> str:
    """A migrated SQLite file holding ``size`` keys, built through the raw driver in one transaction."""
    url = f"sqlite:///{path}"
    tenantkit.upgrade(url)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA journal_mode=WAL")
    with raw:
        raw.executemany(
            f"INSERT INTO api_keys ({INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            fill_rows(size, sample_keys),
        )
    raw.execute("ANALYZE")
    raw.close()
    return url


def sqlite_floor(stack: ExitStack, path: Path, keys: list[str], cache_kib: int) -> Callable[[int], None]:
    """The floor: the raw driver's cached prepared statement, autocommit, plus the SHA-256 digest."""
    raw = sqlite3.connect(path, isolation_level=None)
    stack.callback(raw.close)
    if cache_kib:
        raw.execute(f"PRAGMA cache_size = -{cache_kib}")
    sql = FLOOR_SQL.format("?")

    def run(n: int) -> None:
        execute = raw.execute
        for i in range(n):
            key = keys[i % SAMPLE]
            execute(sql, ("sha256$" + hashlib.sha256(key.encode()).hexdigest(),)).fetchall()

    return run


def verify_runner(
    stack: ExitStack, engine: sa.Engine, keys: list[str], *, cached: bool, cache_kib: int = 0
) -> Callable[[int], None]:
    """``ApiKeyService.verify`` on one SQLAlchemy Connection, each lookup its own read as in a request."""
    service = ApiKeyService(
        membership=MembershipService(), cache_ttl=timedelta(minutes=10) if cached else None
    )
    connection = stack.enter_context(engine.connect())
    if cache_kib:
        connection.exec_driver_sql(f"PRAGMA cache_size = -{cache_kib}")
    for key in keys:  # the first use of each key writes last_used_at once; keep that out of the timing
        assert service.verify(connection, key).valid
    connection.commit()

    def run(n: int) -> None:
        verify = service.verify
        for i in range(n):
            verify(connection, keys[i % SAMPLE])

    return run


def cached_floor(keys: list[str]) -> Callable[[int], None]:
    """The floor of a cache hit: check the key's format, SHA-256 it, look the digest up in a dict."""
    key_format = KeyFormat()
    table = {"sha256$" + hashlib.sha256(key.encode()).hexdigest(): key for key in keys}

    def run(n: int) -> None:
        check, get, sha256 = key_format.check, table.get, hashlib.sha256
        for i in range(n):
            key = keys[i % SAMPLE]
            if check(key):
                get("sha256$" + sha256(key.encode()).hexdigest())

    return run


def cached_only_runner(stack: ExitStack, engine: sa.Engine, keys: list[str]) -> Callable[[int], None]:
    """``verify_cached`` on keys all in the cache: what a cache hit costs, with no connection at all."""
    service = ApiKeyService(membership=MembershipService(), cache_ttl=timedelta(minutes=10))
    connection = stack.enter_context(engine.connect())
    for key in keys:
        assert service.verify(connection, key).valid
    connection.commit()

    def run(n: int) -> None:
        verify_cached = service.verify_cached
        for i in range(n):
            verify_cached(keys[i % SAMPLE])

    return run


def count_writes(url: str, key: str, *, cached: bool, loops: int = 100_000) -> tuple[int, float]:
    """``last_used_at`` UPDATEs issued by ``loops`` verifications of one key, and the seconds simulated."""
    engine = sa.create_engine(url)
    clock = SteppingClock(timedelta(milliseconds=1))
    service = ApiKeyService(
        membership=MembershipService(), clock=clock, cache_ttl=timedelta(minutes=10) if cached else None
    )
    writes = 0

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal writes
        if statement.lstrip().upper().startswith("UPDATE API_KEYS SET LAST_USED_AT"):
            writes += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    start = clock.now
    try:
        with engine.connect() as connection:
            for _ in range(loops):
                service.verify(connection, key)
            connection.commit()
    finally:
        engine.dispose()
    return writes, (clock.now - start).total_seconds()


def issue_sample(url: str, count: int) -> list[str]:
    """Plaintexts of ``count`` keys in the same format the service issues."""
    key_format = KeyFormat()
    return [key_format.generate() for _ in range(count)]


def postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"tenantkit_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    return url, drop


def build_postgres(url: str, size: int, sample_keys: list[str]) -> None:
    import psycopg

    tenantkit.upgrade(url)
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as raw, raw.cursor() as cursor:
        rows = fill_rows(size, sample_keys)
        with cursor.copy(f"COPY api_keys ({INSERT_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
        raw.autocommit = True
        cursor.execute("ANALYZE api_keys")


def postgres_floor(stack: ExitStack, url: str, keys: list[str]) -> Callable[[int], None]:
    """The floor: psycopg with a server-side prepared statement, autocommit, plus the SHA-256 digest."""
    import psycopg

    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    raw = stack.enter_context(psycopg.connect(conninfo, autocommit=True))
    sql = FLOOR_SQL.format("%s")
    cursor = raw.cursor()

    def run(n: int) -> None:
        for i in range(n):
            key = keys[i % SAMPLE]
            cursor.execute(sql, ("sha256$" + hashlib.sha256(key.encode()).hexdigest(),), prepare=True)
            cursor.fetchall()

    return run


def postgres_request_floor(stack: ExitStack, url: str, keys: list[str]) -> Callable[[int], None]:
    """The floor of a request: psycopg in a transaction (its implicit BEGIN), the prepared lookup, COMMIT."""
    import psycopg

    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    raw = stack.enter_context(psycopg.connect(conninfo))
    sql = FLOOR_SQL.format("%s")
    cursor = raw.cursor()

    def run(n: int) -> None:
        for i in range(n):
            key = keys[i % SAMPLE]
            cursor.execute(sql, ("sha256$" + hashlib.sha256(key.encode()).hexdigest(),), prepare=True)
            cursor.fetchall()
            raw.commit()

    return run


def transaction_runner(stack: ExitStack, engine: sa.Engine, keys: list[str]) -> Callable[[int], None]:
    """``verify`` then COMMIT on one Connection: the floor's BEGIN, SELECT, COMMIT, with nothing else."""
    service = ApiKeyService(membership=MembershipService())
    connection = stack.enter_context(engine.connect())
    for key in keys:  # as in verify_runner: the first use of each key writes last_used_at
        assert service.verify(connection, key).valid
    connection.commit()

    def run(n: int) -> None:
        verify = service.verify
        for i in range(n):
            verify(connection, keys[i % SAMPLE])
            connection.commit()

    return run


def request_runner(engine: sa.Engine, keys: list[str], *, verify: bool) -> Callable[[int], None]:
    """Per request, as the adapters do: a new Session, ``verify`` (or nothing), commit, close.

    Without ``verify`` it measures what SQLAlchemy's Session and pool cost a request on their own: the Session
    is built, checks a connection out and returns it, but no statement and no round trip is made.
    """
    service = ApiKeyService(membership=MembershipService())
    with Session(engine) as session:
        for key in keys:  # as in verify_runner: the first use of each key writes last_used_at
            assert service.verify(session, key).valid
        session.commit()

    def run(n: int) -> None:
        for i in range(n):
            with Session(engine) as session:
                if verify:
                    service.verify(session, keys[i % SAMPLE])
                else:
                    session.connection()
                session.commit()

    return run


def argon2_cost(tmp: Path, repeats: int) -> tuple[float, float]:
    """Seconds per argon2id verification (uncached), and per bare SHA-256 digest of a key."""
    url = f"sqlite:///{tmp / 'argon2.sqlite3'}"
    tenantkit.upgrade(url)
    engine = sa.create_engine(url)
    argon = ApiKeyService(membership=MembershipService(), hasher="argon2id")
    with engine.connect() as connection:
        with Session(bind=connection) as session:
            key = argon.issue(session, "org", "argon2", actor=HOST).reveal()
            session.commit()
        assert argon.verify(connection, key).valid
        connection.commit()
        argon_time = per_op(lambda n: [argon.verify(connection, key) for _ in range(n)], 5, repeats)
    engine.dispose()
    digest_time = per_op(lambda n: [sha256_digest(key) for _ in range(n)], 100_000, repeats)
    return argon_time, digest_time


def micro(seconds: float) -> str:
    return f"{seconds * 1e6:8.2f} µs"


def main() -> None:  # noqa: PLR0915  one straight script: set up, time each case, print the table
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,100000,1000000", help="Comma-separated SQLite table sizes.")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TENANTKIT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="Server URL; a throwaway database is created there.",
    )
    parser.add_argument("--postgres-size", type=int, default=100_000, help="Keys in the PostgreSQL table.")
    parser.add_argument("--no-postgres", action="store_true", help="Skip PostgreSQL.")
    parser.add_argument("--batch", type=int, default=10_000, help="Verifications per timed batch.")
    parser.add_argument(
        "--repeats", type=int, default=9, help="Timed batches per figure (the median is shown)."
    )
    parser.add_argument("--cpu", type=int, default=0, help="The CPU to pin this process to.")
    parser.add_argument(
        "--sqlite-cache-mib",
        type=int,
        default=64,
        help="The larger SQLite page cache each size is also measured with, for floor and verify alike "
        "(0: SQLite's default, 2 MiB, only).",
    )
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    sizes = [int(size) for size in args.sizes.split(",") if size]
    cache_configs = [0] if args.sqlite_cache_mib <= 0 else [0, args.sqlite_cache_mib * 1024]
    print(
        f"tenantkit {tenantkit.__version__}, SQLAlchemy {sa.__version__}, SQLite {sqlite3.sqlite_version}, "
        f"pinned to CPU {args.cpu}; medians of {args.repeats} batches of {args.batch}\n"
    )
    sample_keys = issue_sample("", SAMPLE)
    uncached_costs: dict[tuple[int, int], float] = {}
    floor_costs: dict[tuple[int, int], float] = {}

    header = f"{'database':<22}{'floor':>12}{'verify':>12}{'ratio':>8}{'cached':>14}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="tenantkit-bench-") as directory:
        tmp = Path(directory)
        for size in sizes:
            path = tmp / f"keys-{size}.sqlite3"
            started = time.perf_counter()
            url = build_sqlite(path, size, sample_keys)
            built = time.perf_counter() - started
            for cache_kib in cache_configs:
                engine = sa.create_engine(url)
                with ExitStack() as stack:
                    medians = interleaved(
                        {
                            "floor": (sqlite_floor(stack, path, sample_keys, cache_kib), args.batch),
                            "uncached": (
                                verify_runner(stack, engine, sample_keys, cached=False, cache_kib=cache_kib),
                                args.batch,
                            ),
                            "cached": (
                                verify_runner(stack, engine, sample_keys, cached=True, cache_kib=cache_kib),
                                args.batch * 5,
                            ),
                        },
                        args.repeats,
                    )
                engine.dispose()
                floor, uncached, cached = medians["floor"], medians["uncached"], medians["cached"]
                uncached_costs[size, cache_kib], floor_costs[size, cache_kib] = uncached, floor
                label = f"SQLite {size:,} keys" if not cache_kib else f"  page cache {cache_kib // 1024} MiB"
                note = f"   (built in {built:.1f} s)" if not cache_kib else ""
                print(
                    f"{label:<22}{micro(floor):>12}{micro(uncached):>12}"
                    f"{medians['uncached/floor']:>7.2f}x{1 / cached:>11,.0f}/s{note}"
                )
        # A cache hit against its own floor, on the first SQLite file (a hit touches no database).
        engine = sa.create_engine(build_sqlite(tmp / "cached.sqlite3", sizes[0], sample_keys))
        with ExitStack() as stack:
            medians = interleaved(
                {
                    "floor": (cached_floor(sample_keys), args.batch * 5),
                    "cached": (cached_only_runner(stack, engine, sample_keys), args.batch * 5),
                },
                args.repeats,
            )
        engine.dispose()
        print(
            f"cache hit (verify_cached): {micro(medians['cached'])}, {medians['cached/floor']:.2f}x its "
            f"floor (format check + SHA-256 + dict lookup: {micro(medians['floor'])})"
        )
        if not args.no_postgres:
            pg_url, drop = postgres_database(args.postgres_url)
            try:
                build_postgres(pg_url, args.postgres_size, sample_keys)
                # Autocommit, like the floor: each lookup is its own statement-level transaction.
                engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
                with ExitStack() as stack:
                    medians = interleaved(
                        {
                            "floor": (postgres_floor(stack, pg_url, sample_keys), args.batch),
                            "uncached": (verify_runner(stack, engine, sample_keys, cached=False), args.batch),
                            "cached": (
                                verify_runner(stack, engine, sample_keys, cached=True),
                                args.batch * 5,
                            ),
                        },
                        args.repeats,
                    )
                engine.dispose()
                floor, uncached, cached = medians["floor"], medians["uncached"], medians["cached"]
                print(
                    f"{f'PostgreSQL {args.postgres_size:,}':<22}{micro(floor):>12}{micro(uncached):>12}"
                    f"{medians['uncached/floor']:>7.2f}x{1 / cached:>11,.0f}/s"
                )
                # As a web request does it: a transaction per request; and through a Session, as the adapters.
                engine = sa.create_engine(pg_url)
                request_batch = max(args.batch // 4, 1)
                with ExitStack() as stack:
                    medians = interleaved(
                        {
                            "floor": (postgres_request_floor(stack, pg_url, sample_keys), request_batch),
                            "verify": (transaction_runner(stack, engine, sample_keys), request_batch),
                            "request": (request_runner(engine, sample_keys, verify=True), request_batch),
                            "session": (request_runner(engine, sample_keys, verify=False), request_batch),
                        },
                        args.repeats,
                    )
                engine.dispose()
                print(
                    f"{'  in a transaction':<22}{micro(medians['floor']):>12}{micro(medians['verify']):>12}"
                    f"{medians['verify/floor']:>7.2f}x   (BEGIN, SELECT, COMMIT each)\n"
                    f"  through a new Session per request, as the adapters do: "
                    f"{micro(medians['request']).strip()} ({medians['request/floor']:.2f}x); "
                    f"such a Session alone, no statement: {micro(medians['session']).strip()}"
                )
            finally:
                drop()

        if len(sizes) > 1:
            smallest, largest = min(sizes), max(sizes)
            print()
            for cache_kib in cache_configs:
                cache = (
                    "SQLite's default page cache" if not cache_kib else f"{cache_kib // 1024} MiB page cache"
                )
                print(
                    f"cost at {largest:,} keys / cost at {smallest:,} keys, {cache}: verify "
                    f"{uncached_costs[largest, cache_kib] / uncached_costs[smallest, cache_kib]:.2f}x, floor "
                    f"{floor_costs[largest, cache_kib] / floor_costs[smallest, cache_kib]:.2f}x"
                )

        write_url = f"sqlite:///{tmp / 'writes.sqlite3'}"
        build_sqlite(tmp / "writes.sqlite3", SAMPLE, sample_keys)
        for index, cached in enumerate((False, True)):
            writes, simulated = count_writes(write_url, sample_keys[index], cached=cached)
            print(
                f"100,000 verifications of one key over {simulated:.0f} simulated seconds "
                f"({'cached' if cached else 'uncached'}): {writes} last_used_at write(s) "
                f"(at most {int(simulated // 60) + 1} allowed at one per 60 s)"
            )

        argon_time, digest_time = argon2_cost(tmp, 3)
        fast_time = uncached_costs[min(sizes), 0]
        print(
            f"\nargon2id verify (argon2-cffi defaults): {argon_time * 1e3:.1f} ms, "
            f"{argon_time / fast_time:,.0f}x an uncached SHA-256 verify ({micro(fast_time).strip()}); "
            f"a bare SHA-256 digest of a key: {micro(digest_time).strip()}"
        )


if __name__ == "__main__":
    main()
