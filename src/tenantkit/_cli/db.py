"""``tenantkit db``: migrate tenantkit's tables.

tenantkit's objects go into the PostgreSQL schema ``TENANTKIT_DATABASE_SCHEMA`` names, when set.

Exit codes follow :mod:`tenantkit._cli`: 0 done, 1 ``check`` found the schema out of date, 2 bad usage,
3 the database is unreachable or its URL malformed, 4 refused (a schema conflict, the migration lock not
granted in time).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import click
from click.decorators import FC

from tenantkit import _migrations
from tenantkit._cli._common import (
    EXIT_NO,
    emit,
    engine_for,
    handle_errors,
    json_option,
    load_settings,
    main,
    url_option,
)
from tenantkit._errors import TableLogicWarning


def lock_timeout_option(function: click.decorators.FC) -> click.decorators.FC:
    """``--lock-timeout``: how long to wait for another instance's migration."""
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=_migrations.DEFAULT_LOCK_TIMEOUT,
        show_default=True,
        help="Seconds to wait for another instance's migration to finish.",
    )(function)


def _revision(positional: str | None, option: str | None, default: str) -> str:
    """The revision to reach: given as Alembic spells it (``downgrade base``) or as ``--revision``."""
    if positional is not None and option is not None and positional != option:
        raise click.UsageError(f"got revision {positional!r} and --revision {option!r}; give one of them")
    return positional or option or default


def revision_argument(default: str, help_text: str) -> Callable[[FC], FC]:
    """The target revision: an optional ``REVISION`` argument, as Alembic takes it, or ``--revision``."""

    def decorate(function: FC) -> FC:
        function = click.argument("revision", required=False, metavar="[REVISION]")(function)
        return click.option(
            "--revision",
            "revision_option",
            default=None,
            metavar="REVISION",
            help=f"{help_text} Same as the REVISION argument. [default: {default}]",
        )(function)

    return decorate


def _describe(result: _migrations.MigrationResult) -> str:
    parts = []
    if result.adopted:
        parts.append("adopted the existing tables (stamped at revision 0001)")
    if result.applied:
        parts.append(f"applied {', '.join(result.applied)}")
    if not parts:
        parts.append("nothing to do")
    return f"{'; '.join(parts)}; tenantkit tables at revision {result.to_revision or 'base'}"


@main.group()
def db() -> None:
    """Create, upgrade and inspect tenantkit's tables."""


# Alembic spells relative revisions as "-1"; without this, click would take them for unknown options.
_RELATIVE_REVISIONS = {"ignore_unknown_options": True}


@db.command(context_settings=_RELATIVE_REVISIONS)
@revision_argument("head", "Revision to reach.")
@url_option
@click.option(
    "--adopt/--no-adopt",
    default=True,
    show_default=True,
    help="Adopt tables created from the origin schema by another tool.",
)
@lock_timeout_option
@json_option
@handle_errors
def upgrade(
    revision: str | None,
    revision_option: str | None,
    url: str | None,
    adopt: bool,
    lock_timeout: float,
    as_json: bool,
) -> None:
    """Migrate tenantkit's tables up to REVISION (default: head), holding the migration lock.

    Several instances may run this at once: one migrates, the others wait and find nothing left to do.
    """
    target = _revision(revision, revision_option, "head")
    settings = load_settings()
    with engine_for(url, settings=settings) as engine:
        result = _migrations.upgrade(
            engine, target, adopt=adopt, lock_timeout=lock_timeout, schema=settings.database.schema_name
        )
    emit(result, as_json, lambda: click.echo(_describe(result)))


@db.command(context_settings=_RELATIVE_REVISIONS)
@revision_argument("base", "Revision to reach; base drops all.")
@url_option
@lock_timeout_option
@json_option
@handle_errors
def downgrade(
    revision: str | None, revision_option: str | None, url: str | None, lock_timeout: float, as_json: bool
) -> None:
    """Migrate tenantkit's tables down to REVISION (default: base); base removes them and the role type.

    As with Alembic: tenantkit db downgrade base, tenantkit db downgrade -1.
    """
    target = _revision(revision, revision_option, "base")
    settings = load_settings()
    with engine_for(url, settings=settings) as engine:
        result = _migrations.downgrade(
            engine, target, lock_timeout=lock_timeout, schema=settings.database.schema_name
        )
    emit(result, as_json, lambda: click.echo(_describe(result).replace("applied", "undid")))


@db.command()
@url_option
@lock_timeout_option
@click.option(
    "--allow-table-logic",
    is_flag=True,
    help="Adopt tables that carry triggers, rules or row-level-security policies, with a warning.",
)
@json_option
@handle_errors
def adopt(url: str | None, lock_timeout: float, allow_table_logic: bool, as_json: bool) -> None:
    """Stamp tables that another tool created with revision 0001's SQL (0001_closed_shaman) at 0001.

    The tables are compared with revision 0001 first; on any difference the command lists each one, exits
    with 4 and changes nothing. Triggers, rules and row-level-security policies on the tables are refused
    the same way (they can undo tenantkit's writes) unless --allow-table-logic is given, which prints a
    warning naming each one. tenantkit db upgrade adopts by itself; this runs the step alone.
    """
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TableLogicWarning)
        result = _migrations.adopt(
            engine,
            lock_timeout=lock_timeout,
            allow_table_logic=allow_table_logic,
            schema=settings.database.schema_name,
        )
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    if result.adopted:
        message = "adopted the existing tables; tenantkit tables at revision 0001"
    elif result.from_revision is not None:
        message = f"already managed by tenantkit, at revision {result.from_revision}"
    else:
        message = "no tenantkit tables to adopt; run `tenantkit db upgrade` to create them"
    emit(result, as_json, lambda: click.echo(message))


@db.command()
@url_option
@json_option
@handle_errors
def current(url: str | None, as_json: bool) -> None:
    """Print the revision tenantkit's tables are at ("none" if never migrated)."""
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine:
        revision = _migrations.current_revision(engine, schema=settings.database.schema_name)
    head = _migrations.head_revision()
    emit({"current": revision, "head": head}, as_json, lambda: click.echo(revision or "none"))


@db.command()
@url_option
@json_option
@handle_errors
def check(url: str | None, as_json: bool) -> None:
    """Exit 0 if tenantkit's tables are up to date, 1 if they need an upgrade.

    For deployment scripts and health checks: nothing is changed, and no lock is taken.

    \b
    Exit codes:
      0  up to date
      1  out of date (run tenantkit db upgrade)
      2  bad usage
      3  the database is unreachable or its URL is malformed
      4  refused: any other tenantkit error
    """
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine:
        revision = _migrations.current_revision(engine, schema=settings.database.schema_name)
    head = _migrations.head_revision()
    up_to_date = revision == head
    emit(
        {"current": revision, "head": head, "up_to_date": up_to_date},
        as_json,
        lambda: click.echo(
            f"up to date at {head}" if up_to_date else f"out of date: at {revision or 'none'}, head is {head}"
        ),
    )
    if not up_to_date:
        raise SystemExit(EXIT_NO)


@db.command()
@click.option(
    "--dialect",
    type=click.Choice(list(_migrations.OFFLINE_DIALECTS)),
    default="postgresql",
    show_default=True,
)
@click.option("--from", "from_revision", default=None, help="Revision the database is at (default: empty).")
@click.option("--to", "to_revision", default="head", show_default=True, help="Revision to reach.")
@handle_errors
def sql(dialect: str, from_revision: str | None, to_revision: str) -> None:
    """Print the upgrade SQL for DBAs who apply migrations by hand (no lock is taken)."""
    schema = load_settings().database.schema_name
    click.echo(_migrations.offline_sql(dialect, from_revision, to_revision, schema=schema), nl=False)
