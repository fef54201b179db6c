"""A database tenantkit never migrated (or one left behind): SchemaOutOfDateError, not a driver error.

Nothing is checked up front: the services' queries run as they always do, and only when the driver answers
"no such table" (or column) is the version table read, to confirm that tenantkit's schema is behind before
the error is replaced. A missing table of a database at head (dropped by hand, say) keeps its driver error.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._errors import SchemaOutOfDateError
from tenantkit._migrations import current_revision, head_revision

C = TypeVar("C", bound=type)

# PostgreSQL: undefined_table, undefined_column, undefined_object (the role type), and invalid_schema_name
# (the schema a kit was given, DatabaseSettings(schema_name=...), that no migration created yet).
_PG_UNDEFINED = frozenset({"42P01", "42703", "42704", "3F000"})
# MySQL/MariaDB: ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR.
_MYSQL_UNDEFINED = frozenset({1146, 1054})
_SQLITE_UNDEFINED = ("no such table", "no such column", "has no column named")


def _names_missing_schema(error: sa.exc.DBAPIError) -> bool:
    original = error.orig
    args = getattr(original, "args", ())
    if args and isinstance(args[0], int):  # MySQL drivers: (errno, message); they carry a sqlstate too
        return args[0] in _MYSQL_UNDEFINED
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if sqlstate is not None:
        return sqlstate in _PG_UNDEFINED
    text = str(original).lower()
    return any(phrase in text for phrase in _SQLITE_UNDEFINED)


def _revision(bind: Session | Connection, schema: str | None) -> str | None:
    connection: Connection | None = None
    if isinstance(bind, Connection):
        connection = bind
    else:
        try:
            connection = bind.connection()
        except sa.exc.InvalidRequestError:  # a flush failed: the session wants a rollback first
            connection = None
    if connection is None or connection.dialect.name == "postgresql":
        # PostgreSQL aborted the transaction with the failed statement: ask on a connection of its own.
        engine = connection.engine if connection is not None else _engine_of(bind)
        with engine.connect() as fresh:
            return current_revision(fresh, schema=schema)
    return current_revision(connection, schema=schema)


def _engine_of(bind: Session | Connection) -> sa.Engine:
    if isinstance(bind, Connection):
        return bind.engine
    target = bind.get_bind()
    return target if isinstance(target, sa.Engine) else target.engine


def out_of_date_error(
    bind: Session | Connection, error: sa.exc.DBAPIError, *, schema: str | None = None
) -> SchemaOutOfDateError | None:
    """The :class:`SchemaOutOfDateError` that ``error`` really is, or ``None`` if it is something else.

    Only a "no such table/column" error is looked at further, and replaced only when tenantkit's version
    table (in the service's PostgreSQL ``schema``) confirms the database is not at the newest revision.
    """
    if not _names_missing_schema(error):
        return None
    try:
        current = _revision(bind, schema)
    except sa.exc.SQLAlchemyError:
        return None  # the database cannot tell; the original error says more than a guess would
    head = head_revision()
    return None if current == head else SchemaOutOfDateError(current, head)


def raise_if_out_of_date(
    bind: Session | Connection, error: sa.exc.StatementError, *, schema: str | None = None
) -> None:
    """Raise :class:`SchemaOutOfDateError` from ``error`` if that is what it is; return otherwise."""
    if not isinstance(error, sa.exc.DBAPIError):
        return
    translated = out_of_date_error(bind, error, schema=schema)
    if translated is not None:
        raise translated from error


def translate_missing_schema(*, done_inline: tuple[str, ...] = ()) -> Callable[[C], C]:
    """Class decorator: the public methods taking ``session`` first raise :class:`SchemaOutOfDateError`.

    Args:
        done_inline: Methods that translate by themselves (the per-request ones, which must not pay for a
            wrapper) or only reach the database through one that does; they are left as they are.
    """

    def decorate(cls: C) -> C:
        for name, member in list(vars(cls).items()):
            if name.startswith("_") or name in done_inline or not inspect.isfunction(member):
                continue
            if list(inspect.signature(member).parameters)[1:2] == ["session"]:
                setattr(cls, name, _translating(member))
        return cls

    return decorate


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def translated(self: object, session: Session | Connection, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, session, *args, **kwargs)
        except sa.exc.DBAPIError as error:
            # Every service has the membership service's schema (the membership service is its own).
            schema = getattr(getattr(self, "membership", self), "schema", None)
            raise_if_out_of_date(session, error, schema=schema)
            raise

    return translated
