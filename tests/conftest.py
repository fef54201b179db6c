"""Fixtures shared by the whole suite.

The central ones are ``engine`` (parametrized over SQLite, PostgreSQL and MariaDB: a test that takes it runs
on all three) and ``async_engine`` (aiosqlite and psycopg's async driver). Both point at a database
migrated to tenantkit's newest revision and emptied after each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import tenantkit
from tenantkit.testing import FrozenClock
from tests.databases import (
    DIALECT_FIXTURES,
    DIALECTS,
    IN_CI,
    SELECTED_DIALECTS,
    SERVER_DIALECTS,
    ThrowawayDatabase,
    delete_all_rows,
    throwaway_database,
)

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    derandomize=True,
    print_blob=True,
)
settings.load_profile("ci" if IN_CI else "default")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests that need a dialect left out by ``TENANTKIT_TEST_DIALECTS``."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        needed = {
            DIALECT_FIXTURES[name] for name in getattr(item, "fixturenames", ()) if name in DIALECT_FIXTURES
        }
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            needed |= {value for value in callspec.params.values() if value in DIALECTS}
        (keep if needed <= set(SELECTED_DIALECTS) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("databases")


class MigratedDatabases:
    """Each dialect's throwaway database, created and migrated to head on first use in the session."""

    def __init__(self, stack: ExitStack, tmp_dir: Path) -> None:
        self._stack = stack
        self._tmp_dir = tmp_dir
        self._databases: dict[str, ThrowawayDatabase] = {}

    def get(self, dialect: str) -> ThrowawayDatabase:
        if dialect not in self._databases:
            database = self._stack.enter_context(throwaway_database(dialect, self._tmp_dir))
            tenantkit.upgrade(database.url)
            self._databases[dialect] = database
        return self._databases[dialect]


@pytest.fixture(scope="session")
def migrated_databases(session_tmp: Path) -> Iterator[MigratedDatabases]:
    with ExitStack() as stack:
        yield MigratedDatabases(stack, session_tmp)


def _engine_for(dialect: str, databases: MigratedDatabases) -> Iterator[sa.Engine]:
    engine = sa.create_engine(databases.get(dialect).url)
    try:
        yield engine
    finally:
        delete_all_rows(engine)
        engine.dispose()


@pytest.fixture(params=DIALECTS)
def engine(request: pytest.FixtureRequest, migrated_databases: MigratedDatabases) -> Iterator[sa.Engine]:
    """An engine on a migrated database, once per dialect (SQLite, PostgreSQL, MariaDB)."""
    yield from _engine_for(request.param, migrated_databases)


@pytest.fixture
def sqlite_engine(migrated_databases: MigratedDatabases) -> Iterator[sa.Engine]:
    """An engine on a migrated SQLite file, for tests whose subject is not the dialect."""
    yield from _engine_for("sqlite", migrated_databases)


@pytest.fixture(params=SERVER_DIALECTS)
def server_engine(
    request: pytest.FixtureRequest, migrated_databases: MigratedDatabases
) -> Iterator[sa.Engine]:
    """An engine on a migrated PostgreSQL or MariaDB database, for real concurrency tests."""
    yield from _engine_for(request.param, migrated_databases)


@pytest.fixture
def mariadb_engine(migrated_databases: MigratedDatabases) -> Iterator[sa.Engine]:
    """An engine on a migrated MariaDB database."""
    yield from _engine_for("mariadb", migrated_databases)


@pytest.fixture
def postgres_engine(migrated_databases: MigratedDatabases) -> Iterator[sa.Engine]:
    """An engine on a migrated PostgreSQL database."""
    yield from _engine_for("postgresql", migrated_databases)


@pytest.fixture(params=("sqlite", "postgresql"))
async def async_engine(
    request: pytest.FixtureRequest, migrated_databases: MigratedDatabases
) -> AsyncIterator[AsyncEngine]:
    """An async engine (aiosqlite or psycopg async) on a migrated database."""
    database = migrated_databases.get(request.param)
    assert database.async_url is not None
    engine = create_async_engine(database.async_url)
    try:
        yield engine
    finally:
        await engine.dispose()
        sync_engine = sa.create_engine(database.url)
        delete_all_rows(sync_engine)
        sync_engine.dispose()


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, session_tmp: Path) -> Iterator[ThrowawayDatabase]:
    """An empty, unmigrated database of the dialect named by indirect parametrization (default SQLite)."""
    dialect = getattr(request, "param", "sqlite")
    with throwaway_database(dialect, session_tmp) as database:
        yield database


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen at 2030-01-01T00:00:00Z."""
    return FrozenClock(datetime(2030, 1, 1, tzinfo=timezone.utc))


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the loop FastAPI, aiosqlite and psycopg use)."""
    return "asyncio"
