"""Run tenantkit's embedded Alembic migrations against a host's database.

Each function takes a database as an :class:`~sqlalchemy.engine.Engine`, a
:class:`~sqlalchemy.engine.Connection` or a URL, or as an :class:`~sqlalchemy.ext.asyncio.AsyncEngine` or
:class:`~sqlalchemy.ext.asyncio.AsyncConnection` (then it returns an awaitable). Given an engine or URL,
tenantkit opens its own connection, takes the migration lock, runs the migration in one transaction, commits,
releases the lock and closes the connection. Given a connection, tenantkit leaves its transaction state as
it found it: with no transaction open, it begins one on that connection, migrates and commits, as with an
engine; with a transaction open, the work happens in that transaction and **the caller commits** (on
PostgreSQL the lock is then a transaction-level advisory lock, held until that commit).

Upgrades and downgrades are serialized by a database lock so that several app instances starting at once
migrate exactly once: the instance that gets the lock first migrates, the others wait, then re-read the
version table and find nothing left to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import sqlite3
import sys
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, TypeVar, overload

import sqlalchemy as sa
from alembic import command
from alembic import context as alembic_context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Connection, Engine

from tenantkit._database_url import create_engine_from_url
from tenantkit._db import sqlite_busy, sqlstate
from tenantkit._errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidInputError,
    MigrationLockTimeoutError,
    SchemaConflictError,
    SchemaOutOfDateError,
    TableLogicError,
    TableLogicWarning,
)
from tenantkit._tables import VERSION_TABLE
from tenantkit._validation import check_schema_name

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from typing_extensions import TypeIs

Database = Engine | Connection | str | URL
"""What the migration functions accept: an engine, a connection, or a database URL."""

AsyncDatabase: TypeAlias = "AsyncEngine | AsyncConnection"
"""What the migration functions also accept, returning an awaitable: an async engine or connection."""

T = TypeVar("T")

_SCRIPT_LOCATION = "tenantkit:migrations"

ORIGIN_REVISION = "0001"
"""The revision that reproduces the ``0001_closed_shaman`` schema; an adopted database is stamped at it."""

LOCK_NAME = "tenantkit_migrations"
"""Prefix of the MySQL/MariaDB ``GET_LOCK`` name that serializes migrations (see :func:`mysql_lock_name`)."""

LOCK_KEY = int.from_bytes(hashlib.sha256(b"tenantkit").digest()[:8], "big", signed=True)
"""The PostgreSQL advisory lock key that serializes migrations: a fixed 64-bit number derived from
``"tenantkit"``, so every tenantkit version and every process agrees on it."""

DEFAULT_LOCK_TIMEOUT = 300.0
"""Seconds an upgrade waits for another instance's migration before giving up."""

OFFLINE_DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite")
"""The dialects :func:`offline_sql` writes SQL for."""

_PG_LOCK_NOT_AVAILABLE = "55P03"
_RELATIVE = re.compile(r"[+-][0-9]+")


class MigrationResult(BaseModel):
    """What an upgrade, downgrade or adoption did.

    Attributes:
        from_revision: The revision before, as read after the lock was taken (``None``: no tenantkit schema).
        to_revision: The revision after (``None``: downgraded to base).
        applied: Revisions applied (upgrade) or undone (downgrade), in the order they ran; empty when the
            database was already where it was asked to be.
        adopted: Whether tables created by another tool were recognized and stamped at revision ``0001``.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    from_revision: str | None
    to_revision: str | None
    applied: tuple[str, ...] = ()
    adopted: bool = False

    @property
    def changed(self) -> bool:
        """Whether this call changed the database at all."""
        return bool(self.applied) or self.adopted


def alembic_config() -> Config:
    """An Alembic ``Config`` for tenantkit's own script directory and version table."""
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    config.set_main_option("version_table", VERSION_TABLE)
    return config


def head_revision() -> str:
    """The newest revision tenantkit ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("tenantkit's migrations directory holds no revision: the installation is damaged")
    return head


def _unavailable(engine: Engine, exc: sa.exc.DBAPIError) -> DatabaseUnavailableError:
    url = engine.url.render_as_string(hide_password=True)
    # Drivers put hints on extra lines; the CLI promises one line per error.
    reason = " ".join(str(exc.orig).split())
    return DatabaseUnavailableError(f"cannot connect to {url}: {reason}", url=url)


@contextlib.contextmanager
def _engine(database: Engine | str | URL) -> Iterator[Engine]:
    if isinstance(database, Engine):
        yield database
        return
    if not isinstance(database, str | URL):
        raise InvalidInputError(
            "database",
            "must be an Engine, a Connection, an AsyncEngine, an AsyncConnection or a database URL, "
            f"not {type(database).__name__}",
        )
    engine = create_engine_from_url(database)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.contextmanager
def _open(engine: Engine) -> Iterator[Connection]:
    try:
        connection = engine.connect()
    except sa.exc.OperationalError as exc:
        raise _unavailable(engine, exc) from exc
    with connection:
        yield connection


@contextlib.contextmanager
def connect(database: Database) -> Iterator[Connection]:
    """Yield a connection in a transaction: the caller's open one, or a new one that commits on success."""
    if isinstance(database, Connection):
        if database.in_transaction():
            yield database
        else:
            with database.begin():
                yield database
        return
    with _engine(database) as engine, _open(engine) as connection, connection.begin():
        yield connection


def is_async_database(database: object) -> TypeIs[AsyncEngine | AsyncConnection]:
    # Nothing async can exist before SQLAlchemy's asyncio extension was imported (a blocked import leaves
    # None in sys.modules); not importing it here keeps sync hosts free of greenlet.
    extension = sys.modules.get("sqlalchemy.ext.asyncio")
    if extension is None:
        return False
    return isinstance(database, extension.AsyncEngine | extension.AsyncConnection)


async def _run_async(database: AsyncEngine | AsyncConnection, function: Callable[[Connection], T]) -> T:
    """Run a migration function on the sync connection beneath ``database``, through ``run_sync``.

    An async engine lends a connection of its own, on which tenantkit commits its own transaction as for an
    engine; an async connection is used as it is, its transaction state deciding as for a sync connection.
    """
    from sqlalchemy.ext.asyncio import AsyncConnection

    if isinstance(database, AsyncConnection):
        return await database.run_sync(function)
    async with database.connect() as connection:
        return await connection.run_sync(function)


# ---------------------------------------------------------------------------------------------------------
# The migration lock


def _lock_timeout_error(dialect: str, timeout: float | None) -> MigrationLockTimeoutError:
    return MigrationLockTimeoutError(timeout, dialect)


def _is_pg_lock_timeout(exc: sa.exc.DBAPIError) -> bool:
    return sqlstate(exc.orig) == _PG_LOCK_NOT_AVAILABLE


def _pg_timeout_setting(timeout: float | None) -> str:
    # PostgreSQL's lock_timeout of 0 means "wait forever"; a timeout is rounded up to a whole millisecond.
    return "0" if timeout is None else f"{max(1, int(timeout * 1000))}ms"


def _mysql_timeout(timeout: float | None) -> float:
    # GET_LOCK has no portable "forever" across MySQL and MariaDB versions; a year is forever enough.
    return 365 * 24 * 3600.0 if timeout is None else timeout


def _pg_lock(connection: Connection, function: str, timeout: float | None) -> None:
    """Take a PostgreSQL advisory lock in the current transaction, bounded by ``lock_timeout``."""
    previous = connection.execute(sa.text("SELECT current_setting('lock_timeout')")).scalar_one()
    connection.execute(
        sa.text("SELECT set_config('lock_timeout', :value, true)"), {"value": _pg_timeout_setting(timeout)}
    )
    try:
        connection.execute(sa.text(f"SELECT {function}(:key)"), {"key": LOCK_KEY})
    except sa.exc.OperationalError as exc:
        if _is_pg_lock_timeout(exc):
            raise _lock_timeout_error("postgresql", timeout) from exc
        raise
    # The migration's own statements run under the caller's lock_timeout, not ours.
    connection.execute(sa.text("SELECT set_config('lock_timeout', :value, true)"), {"value": previous})


def mysql_lock_name(database_name: str | None) -> str:
    """The ``GET_LOCK`` name for one MySQL/MariaDB database.

    ``GET_LOCK`` names are server-wide, unlike PostgreSQL's per-database advisory locks; a digest of the
    database name keeps apps in different databases of one server from waiting on each other, within
    MySQL's 64-character limit on lock names.
    """
    digest = hashlib.sha256((database_name or "").encode()).hexdigest()[:32]
    return f"{LOCK_NAME}:{digest}"


def _mysql_lock_name_of(connection: Connection) -> str:
    return mysql_lock_name(connection.execute(sa.text("SELECT DATABASE()")).scalar())


def _mysql_get_lock(connection: Connection, timeout: float | None) -> None:
    got = connection.execute(
        sa.text("SELECT GET_LOCK(:name, :timeout)"),
        {"name": _mysql_lock_name_of(connection), "timeout": _mysql_timeout(timeout)},
    ).scalar()
    if got != 1:
        # 0 is a timeout; NULL an error such as the thread being killed. Neither gives us the lock.
        raise _lock_timeout_error(connection.dialect.name, timeout)


def _mysql_release_lock(connection: Connection) -> None:
    connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _mysql_lock_name_of(connection)})


@contextlib.contextmanager
def _sqlite_immediate(connection: Connection, timeout: float | None) -> Iterator[Connection]:
    """Run the block in a ``BEGIN IMMEDIATE`` transaction on SQLite.

    SQLite needs no advisory lock: it serializes writers itself with a database-wide lock. What it needs is
    to take that lock *before* reading the version table, or two processes could both read "nothing
    migrated" and the second would fail creating tables that exist. ``BEGIN IMMEDIATE`` takes the write lock
    up front (waiting up to ``timeout``), which also makes the whole migration one atomic transaction,
    where pysqlite's default would run DDL outside any transaction.
    """
    driver = connection.connection.driver_connection
    if not isinstance(driver, sqlite3.Connection):
        with connection.begin():
            yield connection
        return
    saved_isolation = driver.isolation_level
    saved_busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.rollback()
    driver.isolation_level = None  # we issue BEGIN ourselves; pysqlite's commit()/rollback() still end it
    try:
        busy_ms = 2**31 - 1 if timeout is None else max(1, int(timeout * 1000))
        driver.execute(f"PRAGMA busy_timeout = {busy_ms}")
        with connection.begin():
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            except sa.exc.OperationalError as exc:
                if sqlite_busy(exc.orig):
                    raise _lock_timeout_error("sqlite", timeout) from exc
                raise
            driver.execute(f"PRAGMA busy_timeout = {int(saved_busy or 0)}")
            yield connection
    finally:
        driver.isolation_level = saved_isolation
        driver.execute(f"PRAGMA busy_timeout = {int(saved_busy or 0)}")


@contextlib.contextmanager
def _locked(database: Database, timeout: float | None) -> Iterator[Connection]:
    """Yield a connection in a transaction, holding tenantkit's migration lock for the whole of it."""
    if timeout is not None and timeout <= 0:
        raise InvalidInputError(
            "lock_timeout", "must be a positive number of seconds, or None to wait forever"
        )
    if isinstance(database, Connection):
        if database.in_transaction():
            with _locked_in_callers_transaction(database, timeout):
                yield database
        else:
            # No transaction open: tenantkit's own on the caller's connection, committed as for an engine,
            # so that the caller (a host's Alembic env.py, say) finds the connection as it left it.
            with _locked_in_own_transaction(database, timeout):
                yield database
        return
    with (
        _engine(database) as engine,
        _open(engine) as connection,
        _locked_in_own_transaction(connection, timeout),
    ):
        yield connection


@contextlib.contextmanager
def _locked_in_own_transaction(connection: Connection, timeout: float | None) -> Iterator[None]:
    """Hold the migration lock around a transaction of tenantkit's own on ``connection``, then commit it."""
    dialect = connection.dialect.name
    if dialect == "sqlite":
        with _sqlite_immediate(connection, timeout):
            yield
        return
    if dialect not in ("postgresql", "mysql", "mariadb"):
        with connection.begin():
            yield
        return
    # A session-level lock, taken and committed before the migration's transaction begins: that
    # transaction's snapshot (REPEATABLE READ hosts, InnoDB read views) then starts after the lock was
    # granted, so it sees everything the previous holder committed.
    with connection.begin():
        if dialect == "postgresql":
            _pg_lock(connection, "pg_advisory_lock", timeout)
        else:
            _mysql_get_lock(connection, timeout)
    try:
        with connection.begin():
            yield
    finally:
        try:
            with connection.begin():
                if dialect == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                else:
                    _mysql_release_lock(connection)
        except sa.exc.DBAPIError:
            # A connection that cannot release its lock must never go back to the pool holding it;
            # closing it releases a session lock on both servers.
            connection.invalidate()


@contextlib.contextmanager
def _locked_in_callers_transaction(connection: Connection, timeout: float | None) -> Iterator[None]:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # Held until the caller commits or rolls back: nobody sees a half-applied migration.
        _pg_lock(connection, "pg_advisory_xact_lock", timeout)
        yield
    elif dialect in ("mysql", "mariadb"):
        # GET_LOCK is per session, not per transaction. MySQL commits each DDL statement implicitly anyway,
        # so the lock covers the migration itself; the caller should commit right after (documented).
        _mysql_get_lock(connection, timeout)
        try:
            yield
        finally:
            _mysql_release_lock(connection)
    else:
        # SQLite: the caller's transaction is the caller's; SQLite serializes writers on its own.
        yield


# ---------------------------------------------------------------------------------------------------------
# The schema that holds tenantkit's objects (PostgreSQL)


_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]


def _quoted_schema(schema: str, dialect: str) -> str:
    """``schema`` checked and quoted for SQL.

    Raises:
        InvalidSettingError: ``schema`` is not a plain identifier.
        ConfigurationError: ``dialect`` is not PostgreSQL.
    """
    check_schema_name(schema)
    if dialect != "postgresql":
        raise ConfigurationError(
            f"schema {schema!r}: placing tenantkit's tables in a schema is supported on PostgreSQL only"
        )
    return str(_POSTGRESQL.identifier_preparer.quote_schema(schema))


@contextlib.contextmanager
def _in_schema(connection: Connection, schema: str | None, *, create: bool = False) -> Iterator[None]:
    """Run the block with tenantkit's objects placed in ``schema`` (``None``: the connection's default).

    On PostgreSQL the transaction's ``search_path`` is ``schema`` alone while the block runs, so that every
    statement of the migrations (Alembic's operations, which do not honour ``schema_translate_map``, the
    ``role`` type, adoption's reflection) finds and creates tenantkit's objects there and never sees the
    host's tables of the same names in ``public``. The previous ``search_path`` is put back afterwards;
    after an error the caller's rollback undoes the ``SET LOCAL`` anyway.

    Raises:
        InvalidSettingError: ``schema`` is not a plain identifier.
        ConfigurationError: ``schema`` was given on a database other than PostgreSQL.
    """
    if schema is None:
        yield
        return
    quoted = _quoted_schema(schema, connection.dialect.name)
    if create:
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
    previous = connection.execute(sa.text("SELECT current_setting('search_path')")).scalar_one()
    connection.execute(sa.text("SELECT set_config('search_path', :value, true)"), {"value": quoted})
    yield
    connection.execute(sa.text("SELECT set_config('search_path', :value, true)"), {"value": previous})


# ---------------------------------------------------------------------------------------------------------
# Reading the revision


def _current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


@overload
def current_revision(database: Database, *, schema: str | None = None) -> str | None: ...
@overload
def current_revision(
    database: AsyncDatabase, *, schema: str | None = None
) -> Coroutine[Any, Any, str | None]: ...
def current_revision(
    database: Database | AsyncDatabase, *, schema: str | None = None
) -> str | Awaitable[str | None] | None:
    """The revision tenantkit's tables are at.

    Args:
        database: An engine, a connection or a URL; or an async engine or connection (then await the call).
        schema: The PostgreSQL schema holding tenantkit's tables (the connection's default when omitted).

    Returns:
        The revision id, or ``None`` if tenantkit never migrated (or adopted) this database.

    Raises:
        DatabaseUnavailableError: The URL is malformed or the server cannot be reached.
    """
    if is_async_database(database):
        return _run_async(database, lambda sync: current_revision(sync, schema=schema))
    with connect(database) as connection, _in_schema(connection, schema):
        return _current(connection)


@overload
def is_up_to_date(database: Database, *, schema: str | None = None) -> bool: ...
@overload
def is_up_to_date(database: AsyncDatabase, *, schema: str | None = None) -> Coroutine[Any, Any, bool]: ...
def is_up_to_date(database: Database | AsyncDatabase, *, schema: str | None = None) -> bool | Awaitable[bool]:
    """Whether tenantkit's tables (in ``schema``, on PostgreSQL) are at :func:`head_revision`.

    An async database: await the call.

    Raises:
        DatabaseUnavailableError: The URL is malformed or the server cannot be reached.
    """
    if is_async_database(database):
        return _run_async(database, lambda sync: is_up_to_date(sync, schema=schema))
    return current_revision(database, schema=schema) == head_revision()


@overload
def require_up_to_date(database: Database, *, schema: str | None = None) -> None: ...
@overload
def require_up_to_date(
    database: AsyncDatabase, *, schema: str | None = None
) -> Coroutine[Any, Any, None]: ...
def require_up_to_date(
    database: Database | AsyncDatabase, *, schema: str | None = None
) -> Awaitable[None] | None:
    """Raise unless tenantkit's tables are at the newest revision; call it at start-up.

    Given an async engine or connection, returns an awaitable that raises.

    Raises:
        SchemaOutOfDateError: The database is behind (or was never migrated).
        DatabaseUnavailableError: The URL is malformed or the server cannot be reached.
    """
    if is_async_database(database):
        return _run_async(database, lambda sync: require_up_to_date(sync, schema=schema))
    current = current_revision(database, schema=schema)
    head = head_revision()
    if current != head:
        raise SchemaOutOfDateError(current, head)
    return None


# ---------------------------------------------------------------------------------------------------------
# Running Alembic


@contextlib.contextmanager
def _keep_host_alembic_context() -> Iterator[None]:
    # Alembic's ``context`` module proxy is global. A host that calls tenantkit.upgrade() from inside its own
    # env.py would find its proxy removed when our EnvironmentContext exits; put the host's back.
    host = getattr(alembic_context, "_proxy", None)
    try:
        yield
    finally:
        if host is not None:
            host._install_proxy()


def is_alembic_upgrade() -> bool:
    """Whether the host's Alembic command now running its ``env.py`` is an online ``upgrade``.

    A host that runs tenantkit's migrations from its own ``env.py`` asks this first, so that only
    ``alembic upgrade`` migrates tenantkit's tables: ``alembic revision --autogenerate``, ``check``,
    ``current``, ``stamp``, ``downgrade`` and ``--sql`` also run ``env.py`` and must change nothing of
    tenantkit's. Call it after ``context.configure(...)``. It works for the ``alembic`` command line and for
    ``alembic.command.upgrade()`` called from code alike.

    Raises:
        ConfigurationError: Called outside an Alembic ``env.py``, or before ``context.configure(...)``.
    """
    try:
        migration_context = alembic_context.get_context()
    except Exception as exc:  # alembic raises NameError without an environment, Exception unconfigured
        raise ConfigurationError(
            "is_alembic_upgrade() reads the running Alembic command: call it in env.py, after "
            "context.configure(...)"
        ) from exc
    if migration_context.as_sql:
        return False
    # alembic.command.upgrade hands the environment a step function of its own, named after the command;
    # every other command hands its own one (downgrade, stamp, retrieve_migrations for autogenerate, ...).
    steps = migration_context.opts.get("fn")
    made_by = (getattr(steps, "__module__", None), getattr(steps, "__name__", None))
    return made_by == (command.__name__, "upgrade")


def _run(connection: Connection, action: str, revision: str) -> tuple[str, ...]:
    config = alembic_config()
    config.attributes["connection"] = connection
    applied: list[str] = []

    def record(*, step: MigrationInfo, **_: Any) -> None:
        if not step.is_stamp and step.up_revision_id is not None:
            applied.append(step.up_revision_id)

    config.attributes["on_version_apply"] = record
    try:
        with _keep_host_alembic_context():
            if action == "upgrade":
                command.upgrade(config, revision)
            elif action == "downgrade":
                command.downgrade(config, revision)
            else:
                command.stamp(config, revision)
    except CommandError as exc:
        # Alembic's CommandError means the request cannot be planned (a relative revision past the ends,
        # a downgrade target above the current revision); no migration step has run.
        raise InvalidInputError("revision", str(exc)) from exc
    return tuple(applied)


def _check_revision(revision: str) -> None:
    if _RELATIVE.fullmatch(revision):
        return  # "+1" / "-2": resolved against the current revision once the lock is held
    script = ScriptDirectory.from_config(alembic_config())
    try:
        script.get_revisions(revision)
    except Exception as exc:  # alembic raises several unrelated types for an unknown or ambiguous id
        raise InvalidInputError("revision", f"{revision!r} is not a tenantkit revision ({exc})") from exc


def _require_known(current: str | None) -> None:
    """Refuse a database stamped by a tenantkit newer than this one, before Alembic fails on it."""
    if current is None:
        return
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(current)
    except Exception as exc:  # alembic raises several unrelated types for an unknown id
        raise SchemaConflictError(
            [
                f"the database is at revision {current}, which this tenantkit version does not ship "
                f"(its newest is {head_revision()}); it was migrated by a newer tenantkit"
            ]
        ) from exc


@overload
def upgrade(
    database: Database,
    revision: str = "head",
    *,
    adopt: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    schema: str | None = None,
) -> MigrationResult: ...
@overload
def upgrade(
    database: AsyncDatabase,
    revision: str = "head",
    *,
    adopt: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    schema: str | None = None,
) -> Coroutine[Any, Any, MigrationResult]: ...
def upgrade(
    database: Database | AsyncDatabase,
    revision: str = "head",
    *,
    adopt: bool = True,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    schema: str | None = None,
) -> MigrationResult | Awaitable[MigrationResult]:
    """Migrate tenantkit's tables up to ``revision`` (the newest by default), under the migration lock.

    Safe to call from every instance at start-up: one migrates, the others wait for it and do nothing.
    A database whose tables another tool already created with the SQL of revision ``0001`` (the Drizzle
    migration ``0001_closed_shaman``) is adopted first (see :func:`adopt`).

    Args:
        database: An engine, a connection (with a transaction open, the caller commits) or a URL; or an
            async engine or connection (then await the call).
        revision: The revision to reach.
        adopt: Recognize and adopt tables created by another tool; with ``False`` such a database is
            refused with :class:`SchemaConflictError` instead.
        lock_timeout: Seconds to wait for another instance's migration; ``None`` waits forever.
        schema: On PostgreSQL, the schema that holds tenantkit's tables, ``role`` type and version table,
            created if missing (the connection's default, ``public``, when omitted). Give the services the
            same (``TenantKit(database=DatabaseSettings(schema_name=...))``).

    Returns:
        What was done: the revisions applied, and whether the database was adopted.

    Raises:
        SchemaConflictError: Tables named like tenantkit's exist but differ, or the database was migrated
            by a newer tenantkit; nothing was changed.
        ConfigurationError: ``schema`` was given on a database other than PostgreSQL.
        MigrationLockTimeoutError: Another migration held the lock for longer than ``lock_timeout``.
        DatabaseUnavailableError: The URL is malformed or the server cannot be reached.
        InvalidInputError: ``revision`` is not one of tenantkit's, or ``lock_timeout`` is not positive.
    """
    if is_async_database(database):
        return _run_async(
            database,
            lambda sync: upgrade(sync, revision, adopt=adopt, lock_timeout=lock_timeout, schema=schema),
        )
    _check_revision(revision)
    with _locked(database, lock_timeout) as connection, _in_schema(connection, schema, create=True):
        adopted = _adopt(connection) if adopt else _refuse_existing(connection)
        before = _current(connection)
        _require_known(before)
        # Re-read under the lock: an instance that waited for another one's migration finds it done.
        if before is not None and (
            before == revision or (revision in ("head", "heads") and before == head_revision())
        ):
            return MigrationResult(from_revision=before, to_revision=before, adopted=adopted)
        applied = _run(connection, "upgrade", revision)
        return MigrationResult(
            from_revision=before, to_revision=_current(connection), applied=applied, adopted=adopted
        )


@overload
def downgrade(
    database: Database,
    revision: str = "base",
    *,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    schema: str | None = None,
) -> MigrationResult: ...
@overload
def downgrade(
    database: AsyncDatabase,
    revision: str = "base",
    *,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    schema: str | None = None,
) -> Coroutine[Any, Any, MigrationResult]: ...
def downgrade(
    database: Database | AsyncDatabase,
    revision: str = "base",
    *,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    schema: str | None = None,
) -> MigrationResult | Awaitable[MigrationResult]:
    """Migrate tenantkit's tables down to ``revision``, under the migration lock.

    ``"base"`` undoes every revision: it removes exactly what the rollback procedure of the Drizzle
    migration ``0001_closed_shaman`` removes (the nine indexes, the three tables and, on PostgreSQL, the
    ``role`` type). Alembic's empty ``tenantkit_alembic_version`` table stays. A host's own tables are
    never touched.

    Args:
        database: An engine, a connection (with a transaction open, the caller commits) or a URL; or an
            async engine or connection (then await the call).
        revision: The revision to reach; ``"base"`` removes tenantkit's tables.
        lock_timeout: Seconds to wait for another instance's migration; ``None`` waits forever.
        schema: On PostgreSQL, the schema that holds tenantkit's tables (it is left in place).

    Returns:
        What was done: the revisions undone, newest first.

    Raises:
        SchemaConflictError: The database was migrated by a newer tenantkit; nothing was changed.
        MigrationLockTimeoutError: Another migration held the lock for longer than ``lock_timeout``.
        DatabaseUnavailableError: The URL is malformed or the server cannot be reached.
        InvalidInputError: ``revision`` is not one of tenantkit's, or ``lock_timeout`` is not positive.
    """
    if is_async_database(database):
        return _run_async(
            database, lambda sync: downgrade(sync, revision, lock_timeout=lock_timeout, schema=schema)
        )
    if revision != "base":
        _check_revision(revision)
    with _locked(database, lock_timeout) as connection, _in_schema(connection, schema):
        before = _current(connection)
        _require_known(before)
        if before == revision or (before is None and revision == "base"):
            return MigrationResult(from_revision=before, to_revision=before)
        applied = _run(connection, "downgrade", revision)
        return MigrationResult(from_revision=before, to_revision=_current(connection), applied=applied)


@overload
def adopt(
    database: Database,
    *,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    allow_table_logic: bool = False,
    schema: str | None = None,
) -> MigrationResult: ...
@overload
def adopt(
    database: AsyncDatabase,
    *,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    allow_table_logic: bool = False,
    schema: str | None = None,
) -> Coroutine[Any, Any, MigrationResult]: ...
def adopt(
    database: Database | AsyncDatabase,
    *,
    lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    allow_table_logic: bool = False,
    schema: str | None = None,
) -> MigrationResult | Awaitable[MigrationResult]:
    """Adopt the tables another tool created with revision ``0001``'s SQL, without running later revisions.

    That SQL is the Drizzle migration ``0001_closed_shaman``, of the earlier implementation of these
    features: tenantkit's messages call its schema the *origin schema*.

    The tables are checked column by column and index by index against revision ``0001``. If they match,
    PostgreSQL ``timestamp without time zone`` columns become ``timestamptz`` (their values read as UTC),
    MySQL/MariaDB ``TIMESTAMP``/``DATETIME`` columns become ``DATETIME(6)`` (read as UTC), ``json`` becomes
    ``jsonb`` on PostgreSQL, and the database is stamped at ``0001``. No row is lost. :func:`upgrade` does
    this by itself; call ``adopt`` to do it as a separate, reviewed step.

    Tables carrying triggers, rules or (PostgreSQL) row-level-security policies are refused: such logic can
    rewrite tenantkit's writes, for example undo a key's revocation. :func:`upgrade` refuses them too; a
    host that vouches for its triggers adopts with ``allow_table_logic=True`` first.

    Args:
        database: An engine, a connection (with a transaction open, the caller commits) or a URL; or an
            async engine or connection (then await the call).
        lock_timeout: Seconds to wait for another instance's migration; ``None`` waits forever.
        allow_table_logic: Adopt tables that carry triggers, rules or policies anyway, with a
            :class:`TableLogicWarning` listing each one.
        schema: On PostgreSQL, the schema that holds the tables to adopt.

    Returns:
        ``adopted=True`` if the database was stamped; ``adopted=False`` if tenantkit already manages it or
        it holds none of tenantkit's tables (then :func:`upgrade` creates them).

    Raises:
        SchemaConflictError: The tables differ from revision ``0001``'s; the message names every difference
            and nothing was changed.
        TableLogicError: The tables carry triggers, rules or row-level-security policies (each one is
            listed) and ``allow_table_logic`` is off; nothing was changed.
        MigrationLockTimeoutError: Another migration held the lock for longer than ``lock_timeout``.
        DatabaseUnavailableError: The URL is malformed or the server cannot be reached.
    """
    if is_async_database(database):
        return _run_async(
            database,
            lambda sync: adopt(
                sync, lock_timeout=lock_timeout, allow_table_logic=allow_table_logic, schema=schema
            ),
        )
    with _locked(database, lock_timeout) as connection, _in_schema(connection, schema):
        before = _current(connection)
        adopted = _adopt(connection, allow_table_logic=allow_table_logic)
        return MigrationResult(from_revision=before, to_revision=_current(connection), adopted=adopted)


def offline_sql(
    dialect: str, from_revision: str | None = None, to_revision: str = "head", *, schema: str | None = None
) -> str:
    """The SQL that upgrades a ``dialect`` database between two revisions, for DBAs who apply it by hand.

    The script includes the statements that maintain ``tenantkit_alembic_version``. It takes no migration
    lock: whoever applies it serializes it.

    Args:
        dialect: ``"postgresql"``, ``"mysql"``, ``"mariadb"`` or ``"sqlite"``.
        from_revision: The revision the database is at; ``None`` for an empty database.
        to_revision: The revision to reach.
        schema: PostgreSQL only: the schema for tenantkit's objects; the script creates it if missing and
            sets ``search_path`` to it first.

    Returns:
        The SQL script, statements separated by ``;`` and a newline.

    Raises:
        InvalidInputError: An unknown dialect or revision.
        ConfigurationError: ``schema`` was given for a dialect other than PostgreSQL.
    """
    if dialect not in OFFLINE_DIALECTS:
        raise InvalidInputError("dialect", f"must be one of {', '.join(OFFLINE_DIALECTS)}, not {dialect!r}")
    for revision in (from_revision, to_revision):
        if revision is not None:
            _check_revision(revision)
    quoted = None if schema is None else _quoted_schema(schema, dialect)
    if dialect == "sqlite":
        return _recorded_sqlite_script(from_revision, to_revision)
    config = alembic_config()
    buffer = io.StringIO()
    config.output_buffer = buffer
    config.attributes["dialect_name"] = dialect
    span = f"{from_revision}:{to_revision}" if from_revision else to_revision
    if quoted is not None:
        buffer.write(f"CREATE SCHEMA IF NOT EXISTS {quoted};\n\nSET search_path TO {quoted};\n\n")
    with _keep_host_alembic_context():
        command.upgrade(config, span, sql=True)
    return buffer.getvalue()


def _sqlite_literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _recorded_sqlite_script(from_revision: str | None, to_revision: str) -> str:
    """The SQLite script, recorded from a real upgrade of a scratch in-memory database.

    SQLite cannot ALTER most things; Alembic's batch mode copies the table instead, and plans that copy by
    reflecting the live table, which its ``--sql`` mode cannot do. Recording the statements an online
    upgrade runs gives, by construction, exactly the online schema. Reads (``SELECT``, ``PRAGMA``) are left
    out; bound values are written as SQL literals.
    """
    statements: list[str] = []

    def record(
        conn: Connection, cursor: object, statement: str, parameters: Any, context: object, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "PRAGMA")):
            return
        for row in parameters if many else [parameters]:
            pieces = statement.split("?")
            values = list(row or ())
            if len(pieces) - 1 != len(values):
                raise RuntimeError(f"cannot render statement with {len(values)} values: {statement}")
            rendered = (_sqlite_literal(v) + piece for v, piece in zip(values, pieces[1:], strict=True))
            text = pieces[0] + "".join(rendered)
            statements.append(text.strip())

    engine = sa.create_engine("sqlite://")
    try:
        with engine.connect() as connection:
            # In a transaction of ours, so that only the migration's statements are recorded (not the
            # BEGIN IMMEDIATE tenantkit issues when it opens a transaction itself).
            if from_revision is not None:
                with connection.begin():
                    upgrade(connection, from_revision, adopt=False)
            sa.event.listen(connection, "before_cursor_execute", record)
            with connection.begin():
                upgrade(connection, to_revision, adopt=False)
    finally:
        engine.dispose()
    body = "".join(f"{statement};\n\n" for statement in statements)
    return f"-- tenantkit migrations for SQLite, recorded from an online upgrade\nBEGIN;\n\n{body}COMMIT;\n"


# ---------------------------------------------------------------------------------------------------------
# Adoption of the origin schema


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # "text", "timestamp", "boolean", "json" or "role"
    nullable: bool
    now_default: bool = False
    exact: bool = True  # text compared byte for byte (ids, digests, addresses); False for free text


def _origin_table(*columns: _Column) -> tuple[_Column, ...]:
    stamps = (
        _Column("created_at", "timestamp", False, True),
        _Column("updated_at", "timestamp", False, True),
    )
    return (*columns, *stamps)


# The origin document's schema as data: what revision 0001 creates, and what an adopted database must hold.
_ORIGIN_TABLES: dict[str, tuple[_Column, ...]] = {
    "team_members": _origin_table(
        _Column("id", "text", False),
        _Column("organization_id", "text", False),
        _Column("user_id", "text", False),
        _Column("role", "role", False),
    ),
    "api_keys": _origin_table(
        _Column("id", "text", False),
        _Column("name", "text", False, exact=False),
        _Column("organization_id", "text", False),
        _Column("hashed_key", "text", False),
        _Column("expires_at", "timestamp", True),
        _Column("last_used_at", "timestamp", True),
    ),
    "invitations": _origin_table(
        _Column("id", "text", False),
        _Column("organization_id", "text", False),
        _Column("email", "text", True),
        _Column("role", "role", False),
        _Column("token", "text", False),
        _Column("expires", "timestamp", False),
        _Column("invited_by", "text", False),
        _Column("sent_via_email", "boolean", False),
        _Column("allowed_domains", "json", True),
    ),
}

_ORIGIN_INDEXES: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "unique_team_user_idx": ("team_members", ("organization_id", "user_id"), True),
    "team_members_user_id_idx": ("team_members", ("user_id",), False),
    "team_members_organization_id_idx": ("team_members", ("organization_id",), False),
    "api_keys_hashed_key_idx": ("api_keys", ("hashed_key",), True),
    "api_keys_organization_id_idx": ("api_keys", ("organization_id",), False),
    "invitations_token_idx": ("invitations", ("token",), True),
    "unique_team_email_idx": ("invitations", ("organization_id", "email"), True),
    "invitations_email_idx": ("invitations", ("email",), False),
    "invitations_organization_id_idx": ("invitations", ("organization_id",), False),
}

_ROLES = ("OWNER", "ADMIN", "MEMBER")


def _kind(type_: sa.types.TypeEngine[Any]) -> str:  # noqa: PLR0911  a table: one return per type family
    """The family a reflected column type belongs to, in the vocabulary of ``_Column.kind``."""
    if isinstance(type_, sa.Enum):
        return "enum"
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.Boolean):
        return "boolean"
    if isinstance(type_, sa.DateTime):
        return "timestamp"
    if isinstance(type_, sa.String):
        return "text"
    if isinstance(type_, sa.Integer) and getattr(type_, "display_width", None) == 1:
        return "boolean"  # MySQL/MariaDB spell BOOLEAN as TINYINT(1)
    return "other"


# A decision table (column kind x dialect), one return per cell.
def _type_conflict(dialect: str, column: _Column, type_: sa.types.TypeEngine[Any]) -> str | None:  # noqa: PLR0911
    kind = _kind(type_)
    if column.kind == "role":
        if kind == "enum":
            values = tuple(getattr(type_, "enums", ()))
            if set(values) != set(_ROLES):
                return f"has enum values {', '.join(values)}, expected {', '.join(_ROLES)}"
            return None
        if dialect == "postgresql":
            return f"is {type_}, expected the role enum"
        return None if kind == "text" else f"is {type_}, expected text holding a role"
    if column.kind == "json":
        if kind == "json" or (dialect != "postgresql" and kind == "text"):
            return None
        return f"is {type_}, expected json"
    if kind != column.kind:
        return f"is {type_}, expected {column.kind}"
    return None


# One flat check per difference adoption refuses: tables, columns, types, nullability, keys, indexes, roles.
def _origin_conflicts(connection: Connection, present: list[str]) -> list[str]:  # noqa: C901, PLR0912
    """Every difference between the tables present and the origin schema; empty when they match."""
    inspector = sa.inspect(connection)
    dialect = connection.dialect.name
    conflicts: list[str] = []
    for table in _ORIGIN_TABLES:
        if table not in present:
            conflicts.append(f"table {table} is missing (the others of the origin schema exist)")
    for table in present:
        expected = {column.name: column for column in _ORIGIN_TABLES[table]}
        actual = {column["name"]: column for column in inspector.get_columns(table)}
        for name, column in expected.items():
            if name not in actual:
                conflicts.append(f"{table}.{name} is missing")
                continue
            problem = _type_conflict(dialect, column, actual[name]["type"])
            if problem:
                conflicts.append(f"{table}.{name} {problem}")
            if bool(actual[name]["nullable"]) != column.nullable:
                wanted = "nullable" if column.nullable else "NOT NULL"
                conflicts.append(f"{table}.{name} should be {wanted}")
        for name in actual:
            if name not in expected:
                conflicts.append(f"{table}.{name} is not a column of tenantkit's {table}")
        primary_key = inspector.get_pk_constraint(table).get("constrained_columns") or []
        if "id" in actual and list(primary_key) != ["id"]:
            conflicts.append(f"{table}: primary key is ({', '.join(primary_key)}), expected (id)")
        indexes = {
            index["name"]: (tuple(str(c) for c in index["column_names"]), bool(index["unique"]))
            for index in inspector.get_indexes(table)
        }
        for constraint in inspector.get_unique_constraints(table):
            indexes.setdefault(constraint["name"], (tuple(constraint["column_names"]), True))
        for name, (index_table, columns, unique) in _ORIGIN_INDEXES.items():
            if index_table != table:
                continue
            if name not in indexes:
                conflicts.append(f"index {name} on {table} is missing")
            elif indexes[name] != (columns, unique):
                found_columns, found_unique = indexes[name]
                found = f"{'unique ' if found_unique else ''}({', '.join(found_columns)})"
                wanted = f"{'unique ' if unique else ''}({', '.join(columns)})"
                conflicts.append(f"index {name} on {table} is {found}, expected {wanted}")
    if dialect == "postgresql":
        values = _pg_role_values(connection)
        if values is not None and set(values) != set(_ROLES):
            conflicts.append(f"type role has values {', '.join(values)}, expected {', '.join(_ROLES)}")
    return conflicts


def _pg_role_values(connection: Connection) -> tuple[str, ...] | None:
    rows = connection.execute(
        sa.text(
            "SELECT e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
            "WHERE t.typname = 'role' AND t.typnamespace = to_regnamespace(current_schema())::oid "
            "ORDER BY e.enumsortorder"
        )
    ).scalars()
    values = tuple(rows)
    return values or None


def _refuse_existing(connection: Connection) -> bool:
    """With adoption off, refuse a database that already holds tables named like tenantkit's."""
    if _current(connection) is not None:
        return False
    inspector = sa.inspect(connection)
    present = [table for table in _ORIGIN_TABLES if inspector.has_table(table)]
    if present:
        raise SchemaConflictError([f"table {table} already exists and adoption is off" for table in present])
    return False


_PG_TABLE_LOGIC = sa.text(
    # Everything PostgreSQL runs on a table's rows besides the statement itself: user triggers (internal
    # ones implement foreign keys), rewrite rules, row-level-security policies, and RLS switched on.
    "SELECT 'trigger ' || t.tgname FROM pg_trigger t WHERE t.tgrelid = :table AND NOT t.tgisinternal "
    "UNION ALL SELECT 'rule ' || r.rulename FROM pg_rewrite r WHERE r.ev_class = :table "
    "UNION ALL SELECT 'row-level-security policy ' || p.polname FROM pg_policy p WHERE p.polrelid = :table "
    "UNION ALL SELECT 'row-level security enabled' FROM pg_class c WHERE c.oid = :table "
    "AND (c.relrowsecurity OR c.relforcerowsecurity) "
    "ORDER BY 1"
)


def _table_logic(connection: Connection, tables: list[str]) -> list[str]:
    """Every trigger, rule and row-level-security policy on ``tables``, one line each, in a stable order."""
    dialect = connection.dialect.name
    found: list[str] = []
    for table in tables:
        if dialect == "postgresql":
            oid = connection.execute(
                sa.text(
                    "SELECT to_regclass(quote_ident(current_schema()) || '.' || quote_ident(:name))::oid"
                ),
                {"name": table},
            ).scalar()
            names = connection.execute(_PG_TABLE_LOGIC, {"table": oid}).scalars()
        elif dialect in ("mysql", "mariadb"):
            names = connection.execute(
                sa.text(
                    "SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS "
                    "WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = :name "
                    "ORDER BY TRIGGER_NAME"
                ),
                {"name": table},
            ).scalars()
        elif dialect == "sqlite":
            names = connection.execute(
                sa.text(
                    "SELECT 'trigger ' || name FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name = :name ORDER BY name"
                ),
                {"name": table},
            ).scalars()
        else:
            continue
        found.extend(f"{name} on {table}" for name in names)
    return found


def _adopt(connection: Connection, *, allow_table_logic: bool = False) -> bool:
    """Stamp an origin schema created by another tool at 0001; refuse, changing nothing, if it differs."""
    if _current(connection) is not None:
        return False
    inspector = sa.inspect(connection)
    present = [table for table in _ORIGIN_TABLES if inspector.has_table(table)]
    if not present:
        if connection.dialect.name == "postgresql" and _pg_role_values(connection) is not None:
            # Revision 0001 creates the type; one left behind by someone else is theirs, not ours to reuse.
            values = ", ".join(_pg_role_values(connection) or ())
            raise SchemaConflictError(
                [f"type role already exists (values {values}) without tenantkit's tables"]
            )
        return False
    conflicts = _origin_conflicts(connection, present)
    if conflicts:
        raise SchemaConflictError(conflicts)
    logic = _table_logic(connection, present)
    if logic and not allow_table_logic:
        raise TableLogicError(logic)
    if logic:
        warnings.warn(
            "adopting tables that carry logic which can rewrite tenantkit's writes: " + "; ".join(logic),
            TableLogicWarning,
            stacklevel=3,
        )
    _normalize_adopted(connection)
    _run(connection, "stamp", ORIGIN_REVISION)
    return True


def _normalize_adopted(connection: Connection) -> None:
    """Bring column types of the same family to exactly revision 0001's, keeping every value."""
    dialect = connection.dialect.name
    inspector = sa.inspect(connection)
    preparer = connection.dialect.identifier_preparer
    for table, columns in _ORIGIN_TABLES.items():
        actual = {column["name"]: column["type"] for column in inspector.get_columns(table)}
        quoted_table = preparer.quote(table)
        for column in columns:
            type_ = actual[column.name]
            name = preparer.quote(column.name)
            if dialect == "postgresql":
                if column.kind == "timestamp" and not getattr(type_, "timezone", False):
                    # Drizzle's `timestamp` is `timestamp without time zone`; its values were written as UTC
                    # (Node's Date serializes in UTC), so read them as UTC and store the instant.
                    connection.exec_driver_sql(
                        f"ALTER TABLE {quoted_table} ALTER COLUMN {name} TYPE timestamptz "
                        f"USING {name} AT TIME ZONE 'UTC'"
                    )
                elif column.kind == "json" and not isinstance(type_, sa.dialects.postgresql.JSONB):
                    connection.exec_driver_sql(
                        f"ALTER TABLE {quoted_table} ALTER COLUMN {name} TYPE jsonb USING {name}::jsonb"
                    )
            elif dialect in ("mysql", "mariadb") and column.kind == "text" and column.exact:
                if getattr(type_, "collation", None) == "utf8mb4_bin":
                    continue
                # Ids, digests and addresses are exact: a case-insensitive collation would merge tenants
                # that differ only in case. A binary collation only ever separates values, so no unique
                # index can start to collide.
                null = "NULL" if column.nullable else "NOT NULL"
                connection.exec_driver_sql(
                    f"ALTER TABLE {quoted_table} MODIFY {name} VARCHAR(255) "
                    f"CHARACTER SET utf8mb4 COLLATE utf8mb4_bin {null}"
                )
            elif dialect in ("mysql", "mariadb") and column.kind == "timestamp":
                if type(type_).__name__ == "DATETIME" and getattr(type_, "fsp", None) == 6:
                    continue
                # TIMESTAMP values convert through the session time zone; make that UTC so the instant
                # is kept, and DATETIME(6) keeps microseconds like revision 0001's columns.
                connection.exec_driver_sql("SET @tenantkit_saved_time_zone = @@session.time_zone")
                connection.exec_driver_sql("SET time_zone = '+00:00'")
                try:
                    null = "NULL" if column.nullable else "NOT NULL"
                    default = " DEFAULT CURRENT_TIMESTAMP(6)" if column.now_default else ""
                    connection.exec_driver_sql(
                        f"ALTER TABLE {quoted_table} MODIFY {name} DATETIME(6) {null}{default}"
                    )
                finally:
                    connection.exec_driver_sql("SET time_zone = @tenantkit_saved_time_zone")
