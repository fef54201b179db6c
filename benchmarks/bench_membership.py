"""The per-request question "what is this user's role in this organization", next to the raw driver.

For each database it fills ``team_members`` with ``--orgs`` organizations of ``--members-per-org`` members,
then times, in the same run and on the same rows:

* the floor: the same indexed query through the raw driver (the ``sqlite3`` module; psycopg with a prepared
  statement), on one connection, inside one transaction;
* ``MembershipService.get_role`` on a SQLAlchemy ``Session`` held open the same way, as a request handler
  would.

It prints the median of each (µs per call) and the median of the paired ratios. Run::

    .venv/bin/python benchmarks/bench_membership.py
    .venv/bin/python benchmarks/bench_membership.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import MembershipService, Role
from tenantkit.tables import team_members

SQL = "SELECT role FROM team_members WHERE organization_id = {p} AND user_id = {p}"


def fill(engine: sa.Engine, orgs: int, per_org: int) -> list[tuple[str, str]]:
    """Insert the members and return the (organization, user) pairs to look up."""
    now = datetime.now(timezone.utc)
    rows = []
    roles = (Role.OWNER, Role.ADMIN, Role.MEMBER, Role.MEMBER)
    for o in range(orgs):
        for u in range(per_org):
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "organization_id": f"org_{o:04d}",
                    "user_id": f"user_{u:05d}",
                    "role": roles[u % len(roles)],
                    "created_at": now,
                    "updated_at": now,
                }
            )
    with engine.begin() as connection:
        connection.execute(team_members.delete())
        connection.execute(team_members.insert(), rows)
    return [(str(row["organization_id"]), str(row["user_id"])) for row in rows]


def measure(call: Callable[[str, str], object], keys: list[tuple[str, str]], rounds: int, per: int) -> float:
    """Median over ``rounds`` of the mean µs per call across ``per`` lookups."""
    samples = []
    for _ in range(rounds):
        batch = random.sample(keys, per)
        start = time.perf_counter_ns()
        for organization_id, user_id in batch:
            call(organization_id, user_id)
        samples.append((time.perf_counter_ns() - start) / per / 1000)
    return statistics.median(samples)


def run(label: str, engine: sa.Engine, raw: Callable[[str, str], object], args: argparse.Namespace) -> None:
    keys = fill(engine, args.orgs, args.members_per_org)
    service = MembershipService()
    # The path taken when something observes the engine's statements (here a schema_translate_map):
    # get_role then executes through SQLAlchemy Core so that instrumentation sees the query.
    observed = engine.execution_options(schema_translate_map={None: None})
    with Session(engine) as session, Session(observed) as core_session:
        assert service.get_role(session, *keys[0]) is Role.OWNER

        def through_service(organization_id: str, user_id: str) -> object:
            return service.get_role(session, organization_id, user_id)

        def through_core(organization_id: str, user_id: str) -> object:
            return service.get_role(core_session, organization_id, user_id)

        # Interleave the three so that drift on the machine affects all alike.
        raw_medians, service_medians, core_medians = [], [], []
        for call in (raw, through_service, through_core):
            measure(call, keys, 3, args.per_round)
        for _ in range(args.repeats):
            raw_medians.append(measure(raw, keys, args.rounds, args.per_round))
            service_medians.append(measure(through_service, keys, args.rounds, args.per_round))
            core_medians.append(measure(through_core, keys, args.rounds, args.per_round))
    floor = statistics.median(raw_medians)
    # Each repeat measures all back to back; the median of those paired ratios resists load that comes
    # and goes on the machine better than a ratio of two separately taken medians.
    ratio = statistics.median(s / r for s, r in zip(service_medians, raw_medians, strict=True))
    core_ratio = statistics.median(c / r for c, r in zip(core_medians, raw_medians, strict=True))
    print(
        f"{label:<11} raw driver {floor:7.2f} µs   MembershipService.get_role "
        f"{statistics.median(service_medians):7.2f} µs   ratio {ratio:4.2f}x   "
        f"(Core fallback {statistics.median(core_medians):7.2f} µs, {core_ratio:4.2f}x)"
    )


def bench_sqlite(args: argparse.Namespace) -> None:
    path = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    url = f"sqlite:///{path}"
    tenantkit.upgrade(url)
    engine = sa.create_engine(url)
    fill(engine, args.orgs, args.members_per_org)
    raw_connection = sqlite3.connect(path)
    sql = SQL.format(p="?")

    def raw(organization_id: str, user_id: str) -> object:
        row = raw_connection.execute(sql, (organization_id, user_id)).fetchone()
        return None if row is None else row[0]

    run("SQLite", engine, raw, args)
    raw_connection.close()
    engine.dispose()


def bench_postgres(args: argparse.Namespace) -> None:
    import psycopg

    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"tenantkit_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    url = sa.make_url(args.postgres).set(database=name)
    try:
        tenantkit.upgrade(url)
        engine = sa.create_engine(url)
        fill(engine, args.orgs, args.members_per_org)
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        raw_connection = psycopg.connect(conninfo)
        sql = SQL.format(p="%s")

        def raw(organization_id: str, user_id: str) -> object:
            row = raw_connection.execute(sql, (organization_id, user_id), prepare=True).fetchone()
            return None if row is None else row[0]

        run("PostgreSQL", engine, raw, args)
        raw_connection.close()
        engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--members-per-org", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per repeat")
    parser.add_argument("--per-round", type=int, default=500, help="lookups per round")
    parser.add_argument("--repeats", type=int, default=9, help="raw/service alternations")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    print(f"{args.orgs * args.members_per_org} members in {args.orgs} organizations; medians per lookup")
    bench_sqlite(args)
    if not args.skip_postgres:
        bench_postgres(args)


if __name__ == "__main__":
    main()
