"""What differs between the databases tenantkit runs on, once: lock conflicts, SQLite's write lock, rowcount.

- A deadlock, a lock wait timeout or a serialization failure means "another transaction got in the way;
  the database rolled this one back": :func:`concurrency_reason` recognises it on every dialect and driver,
  and :func:`typed_concurrency_errors` reports it as :class:`~tenantkit.ConcurrentUpdateError`, whichever
  service noticed it.
- SQLite has no row locks: :func:`begin_write` takes its single write lock before a change reads what it
  decides on.
- :func:`rowcount` reads the rows a write matched without a ``type: ignore`` at every use.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._errors import ConcurrentUpdateError

__all__ = [
    "begin_write",
    "concurrency_reason",
    "mysql_error_number",
    "rowcount",
    "sqlite_busy",
    "sqlstate",
    "typed_concurrency_errors",
]

# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available (lock_timeout, NOWAIT).
_PG_CONFLICTS = frozenset({"40001", "40P01", "55P03"})
# MySQL/MariaDB: lock wait timeout, deadlock, and "savepoint does not exist", which follows when a deadlock
# rolled back the whole transaction and the savepoint with it.
_MYSQL_CONFLICTS = frozenset({1205, 1213, 1305})


def sqlstate(original: object) -> str | None:
    """The SQLSTATE a PostgreSQL driver error carries (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``)."""
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return code if isinstance(code, str) else None


def mysql_error_number(original: object) -> int | None:
    """The error number a MySQL/MariaDB driver error carries first in its ``args`` (PyMySQL, mysqlclient)."""
    args = getattr(original, "args", ())
    return args[0] if args and isinstance(args[0], int) and not isinstance(args[0], bool) else None


def sqlite_busy(original: object) -> bool:
    """Whether a driver error is SQLite's "database is locked" (or "busy"): its lock was not free in time.

    Only an error of the ``sqlite3`` module (pysqlite, aiosqlite) qualifies: another database's message
    that happens to say "locked" is not this.
    """
    if not isinstance(original, sqlite3.Error):
        return False
    text = str(original).lower()
    return "locked" in text or "busy" in text


def concurrency_reason(error: BaseException) -> str | None:
    """Why ``error`` is a conflict with a concurrent transaction, or ``None`` when it is not one.

    The chain of exceptions ``error`` was raised in (``__context__``) is searched too: releasing a savepoint
    after a deadlock fails with its own error, raised while handling the deadlock.
    """
    seen: BaseException | None = error
    while seen is not None:
        original = getattr(seen, "orig", None)
        if original is not None:
            code = sqlstate(original)
            if code in _PG_CONFLICTS:
                return f"SQLSTATE {code}"
            number = mysql_error_number(original)
            if number in _MYSQL_CONFLICTS:
                return f"MySQL error {number}"
            if sqlite_busy(original):
                return "SQLite database is locked"
        seen = seen.__context__
    return None


@contextmanager
def typed_concurrency_errors(organization_id: str) -> Iterator[None]:
    """Raise :class:`~tenantkit.ConcurrentUpdateError` for a conflict with a concurrent transaction.

    Any other database error passes through unchanged.
    """
    try:
        yield
    except sa.exc.DBAPIError as error:
        reason = concurrency_reason(error)
        if reason is None:
            raise
        raise ConcurrentUpdateError(organization_id, reason) from error


@lru_cache(maxsize=16)
def _no_op_update(table: sa.Table) -> sa.Update:
    # Matches no row (no row has an empty id) and changes nothing, but is a write all the same.
    return table.update().where(table.c.id == "").values(id=table.c.id)


def begin_write(session: Session | Connection, table: sa.Table, execution_options: Mapping[str, Any]) -> None:
    """On SQLite, take the database's write lock now, in the caller's transaction; elsewhere do nothing.

    SQLite ignores ``FOR UPDATE``. A write statement takes its one write lock at once, whether or not a row
    matches, and no other connection can commit until this transaction ends, so what is read next is
    current: writers are serialized the way row locks serialize them elsewhere. pysqlite also opens no
    transaction for a ``SELECT`` or a ``SAVEPOINT``; after this write, a savepoint belongs to the caller's
    transaction.

    Args:
        session: The caller's session or connection.
        table: One of tenantkit's tables (with an ``id`` column) in the schema the options place it in.
        execution_options: The service's execution options (its schema).
    """
    connection = session.connection() if isinstance(session, Session) else session
    if connection.dialect.name == "sqlite":
        # Through what the caller gave: a session flushes first, as it does before its other statements.
        session.execute(_no_op_update(table), execution_options=execution_options)


def rowcount(result: sa.Result[Any]) -> int:
    """The number of rows an ``UPDATE`` or ``DELETE`` matched."""
    if not isinstance(result, sa.CursorResult):
        raise TypeError(f"not the result of a write statement: {result!r}")
    return result.rowcount
