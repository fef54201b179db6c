"""What the audit log costs: changes with it off and on, verification untouched, a million-row export.

For SQLite (a temporary file) and, with ``--postgres``, a throwaway PostgreSQL database, it times, in the
same run and on the same database:

* ``members.change_role`` and ``api_keys.revoke``, each its own transaction committed as a request would,
  with the audit log off, on (one ``INSERT`` more per change), and on with the hash chain (the chain head's
  lock and update besides). Each variant works in an organization of its own; batches of the three
  alternate, so load on the machine falls on all alike. A time is the median over the batches (µs per
  change), a ratio the median of the paired ratios (variant batch / the "off" batch beside it);
* ``api_keys.verify`` with the audit log off and on: verification writes no audit row, so the ratio stays
  at 1 (its difference is noise);
* the export of generated rows as JSON Lines (to ``/dev/null``) by a child process, 100,000 rows and then
  1,000,000, with the child's peak RSS: constant memory means the two peaks are close.

Each timed case checks its result (the rows the audit log wrote, the keys revoked), so a broken path is
never measured as fast. Run::

    .venv/bin/python benchmarks/bench_audit.py
    .venv/bin/python benchmarks/bench_audit.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, ApiKeySettings, AuditSettings, Role, TenantKit
from tenantkit.audit._model import time_ordered_id
from tenantkit.tables import audit_events

VARIANTS = {"off": AuditSettings(enabled=False), "on": AuditSettings(), "chain": AuditSettings(chain=True)}


def count_rows(engine: sa.Engine, organization_id: str) -> int:
    with engine.connect() as connection:
        query = sa.select(sa.func.count()).where(audit_events.c.organization_id == organization_id)
        return int(connection.execute(query).scalar_one())


class Case:
    """One variant's organization, kit and ammunition (keys to revoke)."""

    def __init__(self, engine: sa.Engine, name: str, keys_needed: int) -> None:
        self.engine = engine
        self.name = name
        self.organization_id = f"org_{name}"
        # Verification read-only: two sessions verifying side by side never wait for a last-used write.
        self.kit = TenantKit(audit=VARIANTS[name], api_keys=ApiKeySettings(track_last_used=False))
        self.role = Role.MEMBER
        with self.kit.transaction(engine) as session:
            self.kit.members.add(session, self.organization_id, "owner", Role.OWNER, actor=HOST)
            self.kit.members.add(session, self.organization_id, "member", actor="owner")
            issued = [
                self.kit.api_keys.issue(session, self.organization_id, f"key {index}", actor="owner")
                for index in range(keys_needed + 1)
            ]
        self.key_ids = [key.id for key in issued[1:]]
        self.verify_key = issued[0].reveal()

    def change_role(self) -> None:
        self.role = Role.ADMIN if self.role is Role.MEMBER else Role.MEMBER
        with Session(self.engine) as session:
            self.kit.members.change_role(session, self.organization_id, "member", self.role, actor="owner")
            session.commit()

    def revoke(self) -> None:
        with Session(self.engine) as session:
            self.kit.api_keys.revoke(session, self.organization_id, self.key_ids.pop(), actor="owner")
            session.commit()


def batch_time(call: Callable[[], None], size: int) -> float:
    """Mean µs per call over ``size`` calls."""
    start = time.perf_counter_ns()
    for _ in range(size):
        call()
    return (time.perf_counter_ns() - start) / size / 1000


def compare(label: str, calls: dict[str, Callable[[], None]], rounds: int, size: int) -> None:
    """Alternate batches of each variant; print medians and the median paired ratio against ``off``."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        batch_time(call, 3)  # warm up: statement caches, connection pool
    for round_ in range(rounds):
        order = list(calls) if round_ % 2 == 0 else list(reversed(calls))
        for name in order:
            samples[name].append(batch_time(calls[name], size))
    off = samples["off"]
    parts = [f"off {statistics.median(off):8.1f} µs"]
    for name, values in samples.items():
        if name == "off":
            continue
        ratio = statistics.median(value / base for value, base in zip(values, off, strict=True))
        parts.append(f"{name} {statistics.median(values):8.1f} µs ({ratio:4.2f}x)")
    print(f"  {label:<22} " + "   ".join(parts))


def bench_changes(label: str, url: str, args: argparse.Namespace) -> None:
    tenantkit.upgrade(url)
    engine = sa.create_engine(url)
    keys_needed = (args.rounds * args.batch) + 3
    cases = {name: Case(engine, name, keys_needed) for name in VARIANTS}
    print(
        f"{label}: µs per change, each its own committed transaction ({args.rounds} batches of {args.batch})"
    )
    before = {name: count_rows(engine, case.organization_id) for name, case in cases.items()}
    compare(
        "members.change_role",
        {name: case.change_role for name, case in cases.items()},
        args.rounds,
        args.batch,
    )
    compare("api_keys.revoke", {name: case.revoke for name, case in cases.items()}, args.rounds, args.batch)
    done = 2 * (args.rounds * args.batch + 3)
    for name, case in cases.items():
        written = count_rows(engine, case.organization_id) - before[name]
        assert written == (0 if name == "off" else done), (name, written)
    with Session(engine) as session:
        assert cases["chain"].kit.audit.verify(session).ok

    sessions = {name: Session(engine) for name in ("off", "on")}

    def verifier(name: str) -> Callable[[], None]:
        case, session = cases[name], sessions[name]

        def verify() -> None:
            assert case.kit.api_keys.verify(session, case.verify_key).valid

        return verify

    compare("api_keys.verify", {name: verifier(name) for name in sessions}, args.rounds, args.batch * 10)
    for session in sessions.values():
        session.close()
    engine.dispose()


# -- export ---------------------------------------------------------------------------------------------

_SQLITE_INSERT = (
    "INSERT INTO audit_events (id, organization_id, occurred_at, event_type, event_version, actor_kind, "
    "actor_id, targets, data) VALUES (?, ?, ?, 'member.role_changed', 1, 'user', ?, ?, ?)"
)


def generated(count: int) -> Iterator[tuple[str, str, datetime, str, str, str]]:
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    for index in range(count):
        user = f"user_{index % 5000:05d}"
        yield (
            time_ordered_id(),
            f"org_{index % 100:03d}",
            start + timedelta(milliseconds=index),
            f"admin_{index % 7}",
            json.dumps([{"type": "member", "id": user}]),
            json.dumps({"user_id": user, "old_role": "MEMBER", "new_role": "ADMIN"}),
        )


def fill_sqlite(path: Path, count: int) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM audit_events")
        rows = (
            (id_, org, at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"), actor, targets, data)
            for id_, org, at, actor, targets, data in generated(count)
        )
        connection.executemany(_SQLITE_INSERT, rows)


def fill_postgres(url: str, count: int) -> None:
    import psycopg

    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    columns = (
        "id, organization_id, occurred_at, event_type, event_version, actor_kind, actor_id, targets, data"
    )
    with psycopg.connect(conninfo) as raw, raw.cursor() as cursor:
        cursor.execute("DELETE FROM audit_events")
        with cursor.copy(f"COPY audit_events ({columns}) FROM STDIN") as copy:
            for id_, org, at, actor, targets, data in generated(count):
                copy.write_row((id_, org, at, "member.role_changed", 1, "user", actor, targets, data))


def export_child(url: str) -> None:
    """In a fresh process: export every row to /dev/null; print rows, seconds and this process's peak RSS."""
    engine = sa.create_engine(url)
    kit = TenantKit()
    start = time.perf_counter()
    with Session(engine) as session, open(os.devnull, "w", encoding="utf-8") as out:
        rows = kit.audit.export(session, out, export_format="jsonl")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_kib": peak}))


def bench_export(label: str, url: str, fill: Callable[[int], None], sizes: list[int]) -> None:
    print(f"{label}: export as JSON Lines to /dev/null, in a child process")
    for size in sizes:
        fill(size)
        finished = subprocess.run(
            [sys.executable, __file__, "--export-child", url], capture_output=True, text=True, check=True
        )
        result = json.loads(finished.stdout)
        assert result["rows"] == size, result
        print(
            f"  {size:>9,} rows  {result['seconds']:6.1f} s  {size / result['seconds']:9,.0f} rows/s  "
            f"peak RSS {result['peak_rss_kib'] / 1024:6.1f} MiB"
        )


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"tenantkit_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--postgres", default=None, help="A PostgreSQL URL with the right to create databases."
    )
    parser.add_argument("--rounds", type=int, default=15, help="Timed batches per variant.")
    parser.add_argument("--batch", type=int, default=40, help="Changes per timed batch.")
    parser.add_argument(
        "--export-sizes", default="100000,1000000", help="Comma-separated row counts to export ('' for none)."
    )
    parser.add_argument("--export-postgres", action="store_true", help="Export from PostgreSQL too.")
    parser.add_argument("--no-changes", action="store_true", help="Time the export alone.")
    parser.add_argument("--export-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child is not None:
        export_child(args.export_child)
        return
    sizes = [int(size) for size in args.export_sizes.split(",") if size]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.sqlite3"
        url = f"sqlite:///{path}"
        if not args.no_changes:
            bench_changes("SQLite", url, args)
        else:
            tenantkit.upgrade(url)
        if sizes:
            bench_export("SQLite", url, lambda count: fill_sqlite(path, count), sizes)
    if args.postgres:
        with postgres_database(args.postgres) as pg_url:
            if not args.no_changes:
                bench_changes("PostgreSQL", pg_url, args)
            else:
                tenantkit.upgrade(pg_url)
            if sizes and args.export_postgres:
                bench_export("PostgreSQL", pg_url, lambda count: fill_postgres(pg_url, count), sizes)


if __name__ == "__main__":
    main()
