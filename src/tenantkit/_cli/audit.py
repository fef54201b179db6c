"""``tenantkit audit``: list, export, purge, verify and redact the audit log from the command line.

``list`` reads one organization's log as the host (or ``--as USER``, who needs ``audit:read``). ``export``,
``purge``, ``verify`` and ``redact`` are the operator's: they act as the host on every organization unless
``--organization`` names one. ``purge`` takes its default age from ``TENANTKIT_AUDIT_RETENTION``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import click
from sqlalchemy.orm import Session

from tenantkit._actor import HOST, Actor, ActorKind
from tenantkit._cli._common import (
    EXIT_NO,
    emit,
    engine_for,
    handle_errors,
    json_option,
    kit_for,
    load_settings,
    main,
    page_options,
    url_option,
)
from tenantkit._cli._formats import TIMESTAMP, Column, echo_page, echo_table, format_timestamp
from tenantkit._cli.members import as_option
from tenantkit._errors import InvalidInputError
from tenantkit._session import transaction
from tenantkit._validation import parse_duration
from tenantkit.audit._model import AuditEvent


def _actor(user_id: str | None) -> Actor:
    return HOST if user_id is None else Actor.user(user_id)


def _performed_by(value: str | None) -> Actor | None:
    """``--actor``: ``host``, ``KIND:ID`` (``user:alice``, ``api_key:…``), or a bare user id."""
    if value is None:
        return None
    if value == ActorKind.HOST.value:
        return HOST
    kind, separator, identifier = value.partition(":")
    try:
        if separator and kind in {member.value for member in ActorKind}:
            return Actor(ActorKind(kind), identifier)
        return Actor.user(value)
    except InvalidInputError as error:
        raise InvalidInputError("actor_filter", error.reason) from None


def _target(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    kind, separator, identifier = value.partition(":")
    if not separator or not kind or not identifier:
        raise click.BadParameter("use TYPE:ID, such as member:bob or api_key:<key id>", param_hint="--target")
    return kind, identifier


def _older_than(context: click.Context, parameter: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    duration = parse_duration(value)
    if duration is None or duration <= timedelta(0):
        raise click.BadParameter("use a positive whole number and a unit: 90s, 15m, 12h or 365d")
    return duration


def _summary(event: AuditEvent) -> str:
    return ", ".join(f"{key}={value}" for key, value in event.data.items() if value not in (None, [], ""))


EVENT_COLUMNS: list[Column[AuditEvent]] = [
    ("OCCURRED", lambda event: format_timestamp(event.occurred_at)),
    ("TYPE", lambda event: event.type),
    (
        "ACTOR",
        lambda event: event.actor.kind if event.actor.id is None else f"{event.actor.kind}:{event.actor.id}",
    ),
    ("TARGETS", lambda event: ",".join(f"{target.type}:{target.id}" for target in event.targets) or "-"),
    ("IP", lambda event: event.context.ip_address or "-"),
    ("CHANGE", lambda event: _summary(event) or "-"),
]


@main.group()
def audit() -> None:
    """Read, export, purge, verify and redact the audit log."""


@audit.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option(
    "--type", "event_types", multiple=True, help="Only this event type, e.g. member.added (repeatable)."
)
@click.option(
    "--actor", "actor_filter", default=None, help="Only what this actor did: USER, host or KIND:ID."
)
@click.option("--target", default=None, help="Only changes to TYPE:ID, such as member:bob.")
@click.option(
    "--since", type=TIMESTAMP, default=None, help="Only from this time on (ISO 8601; UTC without zone)."
)
@click.option("--until", type=TIMESTAMP, default=None, help="Only before this time.")
@page_options
@handle_errors
def list_(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    event_types: tuple[str, ...],
    actor_filter: str | None,
    target: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> None:
    """List ORGANIZATION's audit log, newest first."""
    service = kit_for(load_settings()).audit
    with engine_for(url, read_only=True) as engine, transaction(engine) as session:
        page = service.list_events(
            session,
            organization,
            actor=_actor(acting_user),
            performed_by=_performed_by(actor_filter),
            event_types=event_types or None,
            target=_target(target),
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
    emit(page, as_json, lambda: echo_page(page, EVENT_COLUMNS))


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8", newline="") as stream:
        yield stream


@audit.command("export")
@url_option
@json_option
@click.option(
    "--format", "export_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option("--organization", default=None, help="Only this organization (default: every one).")
@click.option(
    "--since", type=TIMESTAMP, default=None, help="Only from this time on (ISO 8601; UTC without zone)."
)
@click.option("--until", type=TIMESTAMP, default=None, help="Only before this time.")
@click.option(
    "--type", "event_types", multiple=True, help="Only this event type, e.g. member.added (repeatable)."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (default: stdout).",
)
@handle_errors
def export(
    url: str | None,
    as_json: bool,
    export_format: str,
    organization: str | None,
    since: datetime | None,
    until: datetime | None,
    event_types: tuple[str, ...],
    output: Path | None,
) -> None:
    """Write the audit log as JSON Lines or CSV, oldest first, in constant memory.

    A progress bar is drawn on stderr when it is a terminal. CSV cells that a spreadsheet would run as a
    formula (starting with =, +, -, @, a tab or a carriage return) get a leading quote, and a cell holding
    a line break is quoted. With --json, the closing count on stderr (and an error) is JSON; the rows go to
    stdout or --output either way.
    """
    service = kit_for(load_settings()).audit
    types = event_types or None
    with engine_for(url, read_only=True) as engine, Session(engine) as session:
        total = None
        if sys.stderr.isatty():
            total = service.count(
                session, organization_id=organization, since=since, until=until, event_types=types
            )
        with _output(output) as out, _progress(total) as progress:
            written = service.export(
                session,
                out,
                export_format="csv" if export_format == "csv" else "jsonl",
                organization_id=organization,
                since=since,
                until=until,
                event_types=types,
                progress=progress,
            )
    summary = json.dumps({"exported": written}) if as_json else f"exported {written} audit event(s)"
    click.echo(summary, err=True)


@contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A progress bar's ``update`` on stderr for ``total`` rows, or ``None`` (no terminal)."""
    if total is None:
        yield None
        return
    with click.progressbar(length=total, label="exporting", file=sys.stderr) as bar:
        yield bar.update


@audit.command("purge")
@url_option
@json_option
@click.option(
    "--older-than", callback=_older_than, default=None, help="Delete rows older than this: 90d, 365d."
)
@click.option("--organization", default=None, help="Only this organization (default: every one).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=1000, show_default=True)
@click.option("--dry-run", is_flag=True, help="Say how many rows would go; delete nothing.")
@handle_errors
def purge(
    url: str | None,
    as_json: bool,
    older_than: timedelta | None,
    organization: str | None,
    batch_size: int,
    dry_run: bool,
) -> None:
    """Delete old audit rows in short batches (retention); chains keep verifying from their new anchor."""
    settings = load_settings()
    age = older_than if older_than is not None else settings.audit.retention
    if age is None:
        raise InvalidInputError("older_than", "give --older-than (or set TENANTKIT_AUDIT_RETENTION)")
    service = kit_for(settings).audit
    with engine_for(url, read_only=dry_run, settings=settings) as engine:
        result = service.purge(
            engine, older_than=age, organization_id=organization, batch_size=batch_size, dry_run=dry_run
        )
    verb = "would delete" if dry_run else "deleted"
    emit(
        {"cutoff": result.cutoff, "rows": result.rows, "batches": result.batches, "dry_run": dry_run},
        as_json,
        lambda: click.echo(f"{verb} {result.rows} audit row(s) older than {format_timestamp(result.cutoff)}"),
    )


@audit.command("verify")
@url_option
@json_option
@click.option("--organization", default=None, help="Only this organization (default: every one).")
@handle_errors
def verify(url: str | None, as_json: bool, organization: str | None) -> None:
    """Check the audit hash chains; exit 1 and name the first broken link of each chain that breaks.

    Keep the heads it prints (--json) outside the database: a chain rewritten from some row on, head
    included, verifies again, but no longer ends at the head you kept.
    """
    service = kit_for(load_settings()).audit
    with engine_for(url, read_only=True) as engine, Session(engine) as session:
        report = service.verify(session, organization_id=organization)

    def human() -> None:
        click.echo(f"checked {report.rows} row(s) in {report.organizations} chain(s)")
        for link in report.broken:
            where = f" (event {link.event_id})" if link.event_id else ""
            click.echo(f"BROKEN {link.organization_id} at position {link.sequence}{where}: {link.reason}")
        if report.ok:
            echo_table(
                ["ORGANIZATION", "POSITION", "HEAD HASH"],
                [[head.organization_id, str(head.sequence), head.hash] for head in report.heads],
            )

    emit(report, as_json, human)
    if not report.ok:
        raise SystemExit(EXIT_NO)


@audit.command("redact")
@url_option
@json_option
@click.option(
    "--user", "user_id", default=None, help="Erase the IP addresses and user agents of this user's rows."
)
@click.option("--email", default=None, help="Erase this invited address from invitation rows.")
@click.option("--organization", default=None, help="Only in this organization (default: every one).")
@handle_errors
def redact(
    url: str | None, as_json: bool, user_id: str | None, email: str | None, organization: str | None
) -> None:
    """Erase a person's personal fields from the audit log; the rows stay, and the erasure is audited."""
    service = kit_for(load_settings()).audit
    with engine_for(url) as engine, transaction(engine) as session:
        result = service.redact(session, user_id=user_id, email=email, organization_id=organization)
    emit(
        {"rows": result.rows, "organizations": list(result.organizations)},
        as_json,
        lambda: click.echo(f"redacted {result.rows} row(s) in {len(result.organizations)} organization(s)"),
    )
