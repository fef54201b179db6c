"""Run tenantkit's embedded Alembic migrations against a host's database.

Each function takes a database as an :class:`~sqlalchemy.engine.Engine`, a
:class:`~sqlalchemy.engine.Connection` or a URL. Given a connection, the work happens in the caller's
transaction and the caller commits; given an engine or URL, tenantkit opens, commits and closes its own.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from tenantkit._errors import DatabaseUnavailableError, SchemaOutOfDateError
from tenantkit._tables import VERSION_TABLE

Database = Engine | Connection | str | URL
"""What the migration functions accept: an engine, a connection, or a database URL."""

_SCRIPT_LOCATION = "tenantkit:migrations"


def alembic_config() -> Config:
    """An Alembic ``Config`` for tenantkit's own script directory and version table."""
    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    config.set_main_option("version_table", VERSION_TABLE)
    return config


def head_revision() -> str:
    """The newest revision tenantkit ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def create_engine_from_url(url: str | URL) -> Engine:
    """Build an engine for ``url``, turning a malformed URL or missing driver into a clear error."""
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailableError(
            f"cannot use database URL {_safe_url(url)}: {exc}", url=_safe_url(url)
        ) from exc


def _safe_url(url: str | URL) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


@contextlib.contextmanager
def connect(database: Database) -> Iterator[Connection]:
    """Yield a connection in a transaction: the caller's own, or a new one that commits on success."""
    if isinstance(database, Connection):
        yield database
        return
    engine = database if isinstance(database, Engine) else create_engine_from_url(database)
    try:
        try:
            connection_cm = engine.begin()
            connection = connection_cm.__enter__()
        except sa.exc.OperationalError as exc:
            url = engine.url.render_as_string(hide_password=True)
            raise DatabaseUnavailableError(f"cannot connect to {url}: {exc.orig}", url=url) from exc
        try:
            yield connection
        except BaseException as exc:
            connection_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        else:
            connection_cm.__exit__(None, None, None)
    finally:
        if not isinstance(database, Engine):
            engine.dispose()


def current_revision(database: Database) -> str | None:
    """The revision tenantkit's tables are at, or ``None`` if tenantkit never migrated this database."""
    with connect(database) as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def is_up_to_date(database: Database) -> bool:
    """Whether tenantkit's tables are at :func:`head_revision`."""
    return current_revision(database) == head_revision()


def require_up_to_date(database: Database) -> None:
    """Raise :class:`SchemaOutOfDateError` unless tenantkit's tables are at the newest revision."""
    current = current_revision(database)
    head = head_revision()
    if current != head:
        raise SchemaOutOfDateError(current, head)


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    if action == "upgrade":
        command.upgrade(config, revision)
    else:
        command.downgrade(config, revision)


def upgrade(database: Database, revision: str = "head") -> None:
    """Migrate tenantkit's tables up to ``revision`` (the newest by default)."""
    with connect(database) as connection:
        _run(connection, "upgrade", revision)


def downgrade(database: Database, revision: str = "base") -> None:
    """Migrate tenantkit's tables down to ``revision``; ``"base"`` removes them all."""
    with connect(database) as connection:
        _run(connection, "downgrade", revision)


def offline_sql(dialect: str, from_revision: str | None = None, to_revision: str = "head") -> str:
    """The SQL that upgrades a ``dialect`` database between two revisions, for DBAs who apply it by hand.

    Args:
        dialect: ``"postgresql"``, ``"mysql"``, ``"mariadb"`` or ``"sqlite"``.
        from_revision: The revision the database is at; ``None`` for an empty database.
        to_revision: The revision to reach.
    """
    config = alembic_config()
    buffer = io.StringIO()
    config.output_buffer = buffer
    config.attributes["dialect_name"] = dialect
    span = f"{from_revision}:{to_revision}" if from_revision else to_revision
    command.upgrade(config, span, sql=True)
    return buffer.getvalue()
