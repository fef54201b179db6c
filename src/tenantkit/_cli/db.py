"""``tenantkit db``: migrate tenantkit's tables."""

from __future__ import annotations

import click

from tenantkit import _migrations
from tenantkit._cli._common import EXIT_NO, emit, engine_for, handle_errors, json_option, main, url_option


@main.group()
def db() -> None:
    """Create, upgrade and inspect tenantkit's tables."""


@db.command()
@url_option
@click.option("--revision", default="head", show_default=True, help="Revision to reach.")
@handle_errors
def upgrade(url: str, revision: str) -> None:
    """Migrate tenantkit's tables up to REVISION."""
    with engine_for(url) as engine:
        _migrations.upgrade(engine, revision)
        click.echo(f"tenantkit tables at revision {_migrations.current_revision(engine)}")


@db.command()
@url_option
@click.option("--revision", default="base", show_default=True, help="Revision to reach; base drops all.")
@handle_errors
def downgrade(url: str, revision: str) -> None:
    """Migrate tenantkit's tables down to REVISION."""
    with engine_for(url) as engine:
        _migrations.downgrade(engine, revision)
        click.echo(f"tenantkit tables at revision {_migrations.current_revision(engine) or 'base'}")


@db.command()
@url_option
@json_option
@handle_errors
def current(url: str, as_json: bool) -> None:
    """Print the revision tenantkit's tables are at."""
    with engine_for(url) as engine:
        revision = _migrations.current_revision(engine)
    head = _migrations.head_revision()
    emit({"current": revision, "head": head}, as_json, lambda: click.echo(revision or "none"))


@db.command()
@url_option
@json_option
@handle_errors
def check(url: str, as_json: bool) -> None:
    """Exit 0 if tenantkit's tables are up to date, 1 if they need an upgrade."""
    with engine_for(url) as engine:
        revision = _migrations.current_revision(engine)
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
    type=click.Choice(["postgresql", "mysql", "mariadb", "sqlite"]),
    default="postgresql",
    show_default=True,
)
@click.option("--from", "from_revision", default=None, help="Revision the database is at (default: empty).")
@click.option("--to", "to_revision", default="head", show_default=True, help="Revision to reach.")
@handle_errors
def sql(dialect: str, from_revision: str | None, to_revision: str) -> None:
    """Print the upgrade SQL for DBAs who apply migrations by hand."""
    click.echo(_migrations.offline_sql(dialect, from_revision, to_revision), nl=False)
