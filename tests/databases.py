"""Throwaway databases for the test suite, one per test session and dialect.

Each pytest process creates its own database on the PostgreSQL and MariaDB servers (and its own SQLite
file), so several test runs on one machine never see each other's rows. Server URLs come from the
environment; when a server cannot be reached the tests that need it skip with the reason, except under
``CI=true``, where a missing server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

POSTGRES_URL = os.environ.get(
    "TENANTKIT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("TENANTKIT_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")

IN_CI = os.environ.get("CI", "").lower() == "true"

ALL_DIALECTS = ("sqlite", "postgresql", "mariadb")
# TENANTKIT_TEST_DIALECTS=sqlite runs the suite on SQLite alone (CI's extra Python versions do this);
# tests that need another dialect are deselected, not skipped.
SELECTED_DIALECTS = tuple(
    name.strip()
    for name in os.environ.get("TENANTKIT_TEST_DIALECTS", ",".join(ALL_DIALECTS)).split(",")
    if name.strip()
)
DIALECTS = ALL_DIALECTS
SERVER_DIALECTS = ("postgresql", "mariadb")
DIALECT_FIXTURES = {"postgres_engine": "postgresql", "mariadb_engine": "mariadb"}


def unavailable(reason: str) -> None:
    """Skip with ``reason`` on a developer machine; fail under CI, where every server must be up."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class ThrowawayDatabase:
    """A database that exists for one test session: its sync URL and, where there is one, its async URL."""

    dialect: str
    url: URL
    async_url: URL | None


def _server_url(dialect: str) -> URL:
    return make_url(POSTGRES_URL if dialect == "postgresql" else MARIADB_URL)


@contextmanager
def throwaway_database(dialect: str, tmp_dir: Path) -> Iterator[ThrowawayDatabase]:
    """Create a fresh, empty database of ``dialect`` and drop it afterwards."""
    if dialect == "sqlite":
        path = tmp_dir / f"tenantkit-{uuid.uuid4().hex[:8]}.sqlite3"
        yield ThrowawayDatabase(
            "sqlite",
            make_url(f"sqlite:///{path}"),
            make_url(f"sqlite+aiosqlite:///{path}"),
        )
        return

    server = _server_url(dialect)
    name = f"tenantkit_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        admin.dispose()
        unavailable(f"{dialect} server at {server.render_as_string()} is unreachable: {exc.orig}")
    url = server.set(database=name)
    async_url = url.set(drivername="postgresql+psycopg_async") if dialect == "postgresql" else None
    try:
        yield ThrowawayDatabase(dialect, url, async_url)
    finally:
        with admin.connect() as connection:
            force = " WITH (FORCE)" if dialect == "postgresql" else ""
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


def delete_all_rows(engine: sa.Engine) -> None:
    """Empty tenantkit's tables (keeping the schema) so the next test starts clean."""
    from tenantkit.tables import metadata

    with engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
