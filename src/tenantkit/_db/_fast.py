"""The driver fast path: a Core select compiled once per dialect and schema, run on the DBAPI cursor.

The hot reads (key verification, the role lookup) spend more time in SQLAlchemy's per-call statement,
parameter and result machinery than in the indexed lookup itself, on SQLite above all. A :class:`RawQuery`
skips that machinery when nothing is watching: the SQL compiled for the connection's dialect and schema
goes straight to the driver, on the very connection (and so the very transaction) the caller holds.

Two things decide whether it may. Whether something observes or rewrites the engine's statements
(OpenTelemetry, Sentry, query loggers, tests that count queries) is only known through SQLAlchemy's private
``_has_events`` flags: :func:`is_observed` is the one place that reads them, and
``tests/test_db_fast_path.py`` fails if they disappear or stop meaning that. The schema placement
(``schema_translate_map``, the service's or the host's) does not switch the fast path off: the plan renders
the schema names into its SQL, as ``Connection.execute`` would.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from tenantkit._tables import UTCDateTime

__all__ = ["CURSOR_KEY", "Plan", "Processor", "RawQuery", "is_observed", "schema_of"]

Processor = Callable[[Any], Any]
"""Turns one raw driver value of a column into its Python value."""

SchemaMap = Mapping[str | None, str | None]

CURSOR_KEY = "tenantkit.fast_path.cursor"
"""Where the fast path keeps its cursor: in the pool's record of the driver connection (``info``)."""


def is_observed(connection: Connection) -> bool:
    """Whether anything listens to the statements of ``connection``: then they must go through SQLAlchemy.

    Connection and engine events (``before_cursor_execute`` and the like) and dialect events
    (``do_execute``) each set a ``_has_events`` flag; SQLAlchemy itself checks the same flags before it
    dispatches them. They are private, so they are read here only.
    """
    return connection._has_events or connection.engine._has_events or connection.dialect._has_events


def schema_of(execution_options: Mapping[str, Any]) -> str | None:
    """The schema a service's execution options place tenantkit's tables in (``None``: the default)."""
    schema: str | None = (execution_options.get("schema_translate_map") or {}).get(None)
    return schema


def _raise_if_out_of_date(
    connection: Connection, error: sa.exc.StatementError, execution_options: Mapping[str, Any]
) -> None:
    # Imported when a lookup failed, not before: this layer sits below the migrations that module reads.
    from tenantkit._missing_schema import raise_if_out_of_date

    raise_if_out_of_date(connection, error, schema=schema_of(execution_options))


def _sqlite_datetime(fallback: Processor | None) -> Processor:
    """Read SQLite's stored timestamps with the C ``fromisoformat`` (SQLAlchemy's parser is a regex).

    The texts a hot read meets repeat (an expiry never changes, ``last_used_at`` once per interval), so
    the few recent ones are remembered: a dictionary lookup instead of a parse on every verification.
    """
    memo: dict[str, datetime] = {}

    def process(value: Any) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        parsed = memo.get(value)
        if parsed is not None:
            return parsed
        try:
            parsed = datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
        except (TypeError, ValueError):
            # Written by another tool in some other format: let SQLAlchemy's parser have a go.
            return value if fallback is None else fallback(value)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[value] = parsed
        return parsed

    return process


_MEMO_SIZE = 4096
"""Distinct stored timestamps a processor remembers at most (emptied when full)."""


def _identity(value: Any) -> Any:
    return value


_PYFORMAT_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class Plan:
    """A statement compiled for one dialect and schema: its SQL, how to pass its parameters, its processors.

    The processors are idempotent (a value already converted passes through unchanged), because rows that
    went through SQLAlchemy, when instrumentation is listening, arrive converted.

    Args:
        statement: The select.
        names: Its bound parameters' names, in the order :meth:`arguments` receives their values.
        dialect: The dialect to compile for.
        schema_translate_map: The schema names to render into the SQL (``None``: the tables' own).
        readers: Per column name, a wrapper around SQLAlchemy's processor of that column (which may be
            ``None``), for the columns a caller reads in its own way.
    """

    __slots__ = ("_positional", "as_given", "names", "permutation", "processors", "sql")

    sql: str
    """The statement's SQL in the driver's paramstyle."""
    names: tuple[str, ...]
    """Its bound parameters' names, in the order :meth:`arguments` receives their values."""
    permutation: tuple[int, ...] | None
    """The order a positional paramstyle takes the values in; ``None``: as given."""
    processors: tuple[Processor, ...]
    """Per selected column, what turns a raw driver value into its Python value."""
    as_given: bool
    """Whether the driver takes the values as given (positional, in ``names`` order): no conversion."""
    _positional: bool

    def __init__(
        self,
        statement: sa.Select[Any],
        names: tuple[str, ...],
        dialect: Dialect,
        schema_translate_map: SchemaMap | None = None,
        readers: Mapping[str, Callable[[Processor | None], Processor]] | None = None,
    ) -> None:
        # The schema names are rendered into the SQL, as Connection.execute would render them.
        compiled = statement.compile(
            dialect=dialect,
            schema_translate_map=schema_translate_map,
            render_schema_translate=schema_translate_map is not None,
        )
        self.sql = compiled.string
        self.names = names
        self._positional = compiled.positional
        named_order: list[str] = []
        if not compiled.positional and dialect.paramstyle == "pyformat":
            # psycopg takes "%s" with a tuple (as the floor gives it) with less work than "%(name)s" with a
            # mapping it must reorder. The statements hold no literal text a placeholder could hide in.
            def to_positional(match: re.Match[str]) -> str:
                named_order.append(match.group(1))
                return "%s"

            self.sql = _PYFORMAT_PLACEHOLDER.sub(to_positional, compiled.string)
            self._positional = True
        # Positional paramstyles take the values in the order the SQL names them; None means "as given".
        self.permutation: tuple[int, ...] | None = None
        if self._positional:
            order = tuple(names.index(name) for name in named_order or compiled.positiontup or ())
            if order != tuple(range(len(names))):
                self.permutation = order
        processors: list[Processor] = []
        for column in statement.selected_columns:
            process: Processor | None = column.type.dialect_impl(dialect).result_processor(dialect, None)
            reader = (readers or {}).get(column.name)
            if reader is not None:
                process = reader(process)
            elif dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
                process = _sqlite_datetime(process)
            processors.append(process or _identity)
        self.processors = tuple(processors)
        self.as_given = self._positional and self.permutation is None

    def arguments(self, values: tuple[Any, ...]) -> Any:
        """``values`` (in ``names`` order) as the driver's paramstyle wants them."""
        if not self._positional:
            return dict(zip(self.names, values, strict=True))
        if self.permutation is None:
            return values
        return tuple(values[index] for index in self.permutation)


class RawQuery:
    """A Core select compiled once per dialect and schema and run on the DBAPI connection under the caller's.

    Driver errors are re-raised as :class:`sqlalchemy.exc.DBAPIError`, as SQLAlchemy would raise them (a
    never-migrated database as :class:`~tenantkit.SchemaOutOfDateError`). Rows come back as the driver
    returns them; the plan's processors turn a column into Python values, so the hot path converts only
    the columns it needs.

    Args:
        statement: The select.
        names: Its bound parameters' names, in the order :meth:`fetch` receives their values.
        readers: See :class:`Plan`.
    """

    def __init__(
        self,
        statement: sa.Select[Any],
        names: tuple[str, ...],
        *,
        readers: Mapping[str, Callable[[Processor | None], Processor]] | None = None,
    ) -> None:
        self._statement = statement
        self._names = names
        self._readers = readers
        self._plans: weakref.WeakKeyDictionary[Dialect, dict[Any, Plan]] = weakref.WeakKeyDictionary()
        self._last: tuple[Dialect, object, Plan] | None = None

    def plan(self, dialect: Dialect, schema_translate_map: SchemaMap | None) -> Plan:
        """The plan for ``dialect``, with tenantkit's tables in the schemas ``schema_translate_map`` names."""
        last = self._last
        if last is not None and last[0] is dialect and last[1] is schema_translate_map:
            return last[2]
        plans = self._plans.get(dialect)
        if plans is None:
            plans = self._plans[dialect] = {}
        key = None if schema_translate_map is None else tuple(schema_translate_map.items())
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = Plan(
                self._statement, self._names, dialect, schema_translate_map, self._readers
            )
        self._last = (dialect, schema_translate_map, plan)
        return plan

    def fetch(
        self,
        connection: Connection,
        plan: Plan,
        values: tuple[Any, ...],
        execution_options: Mapping[str, Any],
    ) -> Sequence[Any]:
        """The rows for ``values``: raw driver values on the fast path, else already converted ones.

        ``execution_options`` are those of the service (its schema); ``plan`` was made for the same schema.
        """
        if not connection.in_transaction():
            # What Connection.execute would do: the driver opens a transaction for this read (psycopg and
            # PyMySQL do), so SQLAlchemy must know of it for the caller's commit, rollback or close to end it.
            connection.begin()
        if is_observed(connection):
            try:
                return connection.execute(
                    self._statement,
                    dict(zip(self._names, values, strict=True)),
                    execution_options=execution_options,
                ).all()
            except sa.exc.DBAPIError as error:
                _raise_if_out_of_date(connection, error, execution_options)
                raise
        arguments = values if plan.as_given else plan.arguments(values)
        pooled = connection.connection
        # One reusable cursor per driver connection, kept in the pool's record of that connection (which
        # SQLAlchemy empties when the connection is invalidated or recycled): creating a psycopg cursor costs
        # about as much as a lookup on a warm server. A pooled connection serves one checkout at a time, and
        # every fetch reads all its rows, so the cursor is free again when the next one starts.
        cursor = pooled.info.get(CURSOR_KEY)
        if cursor is None:
            dbapi_connection = pooled.dbapi_connection
            assert dbapi_connection is not None  # noqa: S101  narrowing: a checked-out connection has one
            cursor = pooled.info[CURSOR_KEY] = dbapi_connection.cursor()
        dialect = connection.dialect
        try:
            cursor.execute(plan.sql, arguments)
            rows: Sequence[Any] = cursor.fetchall()
        except dialect.loaded_dbapi.Error as error:
            pooled.info.pop(CURSOR_KEY, None)
            wrapped = sa.exc.DBAPIError.instance(
                plan.sql, arguments, error, dialect.loaded_dbapi.Error, dialect=dialect
            )
            # Only here, once the driver has failed: a never-migrated database says so, at no cost to the
            # lookups that succeed.
            _raise_if_out_of_date(connection, wrapped, execution_options)
            raise wrapped from error
        return rows
