"""``tenantkit keys``: issue, list, revoke and rotate an organization's API keys from the command line.

Commands act as the host unless ``--as USER`` names the member on whose behalf they act. ``issue`` and
``rotate`` print the new key once; it cannot be shown again.

The key settings of the deployment (prefix, hasher, peppers) come from the same ``TENANTKIT_API_KEY_*``
variables (or ``.env``) that :meth:`tenantkit.TenantKit.from_env` reads, so that keys made here verify in the
application; ``tenantkit --help`` lists them.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import click
from sqlalchemy.orm import Session

from tenantkit._actor import HOST, Actor
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
from tenantkit.api_keys._service import ApiKey, ApiKeyService, IssuedApiKey


def service_from_environment() -> ApiKeyService:
    """The :class:`ApiKeyService` the application configured by the same environment has.

    Raises:
        InvalidSettingError: A variable is malformed.
    """
    return kit_for(load_settings()).api_keys


def _duration(context: click.Context, parameter: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    duration = parse_duration(value)
    if duration is None or duration <= timedelta(0):
        raise click.BadParameter("use a positive whole number and a unit: 90s, 15m, 12h or 30d")
    return duration


def _actor(user_id: str | None) -> Actor:
    return HOST if user_id is None else Actor.user(user_id)


def _state(key: ApiKey) -> str:
    return "revoked" if key.revoked else ("rotated" if key.replaced_at else "active")


KEY_COLUMNS: list[Column[ApiKey]] = [
    ("ID", lambda key: key.id),
    ("START", lambda key: f"{key.start}…" if key.start else "-"),
    ("NAME", lambda key: key.name),
    ("STATE", _state),
    ("EXPIRES", lambda key: format_timestamp(key.expires_at)),
    ("LAST USED", lambda key: format_timestamp(key.last_used_at)),
    ("SCOPES", lambda key: ",".join(key.scopes) or "-"),
]


def _print_issued(issued: IssuedApiKey, as_json: bool, verb: str) -> None:
    if as_json:
        emit({"key": issued.reveal(), "api_key": issued.api_key}, True, lambda: None)
        return
    click.echo(
        f"{verb} API key {issued.id} ({issued.api_key.name}) for {issued.api_key.organization_id}", err=True
    )
    click.echo("Store it now: it is shown this once and cannot be recovered.", err=True)
    click.echo(issued.reveal())


@main.group()
def keys() -> None:
    """Issue, list, revoke, rotate and verify organizations' API keys."""


@keys.command("issue")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, help="A scope the key carries (repeatable).")
@click.option("--expires-in", callback=_duration, default=None, help="Lifetime: 90s, 15m, 12h, 30d.")
@click.option(
    "--expires",
    "expires_at",
    type=TIMESTAMP,
    default=None,
    help="Expiry as an ISO 8601 time, such as 2030-01-01T12:00:00Z (UTC when no zone is given).",
)
@handle_errors
def issue(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    name: str,
    scopes: tuple[str, ...],
    expires_in: timedelta | None,
    expires_at: datetime | None,
) -> None:
    """Issue a key named NAME for ORGANIZATION and print it (once)."""
    if expires_in is not None and expires_at is not None:
        raise click.UsageError("give --expires-in or --expires, not both")
    expires: datetime | timedelta | None = expires_in if expires_at is None else expires_at
    service = service_from_environment()
    with engine_for(url) as engine, transaction(engine) as session:
        issued = service.issue(
            session, organization, name, actor=_actor(acting_user), expires=expires, scopes=scopes
        )
    _print_issued(issued, as_json, "issued")


@keys.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option("--active-only", is_flag=True, help="Leave revoked keys out.")
@page_options
@handle_errors
def list_(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    active_only: bool,
    limit: int,
    cursor: str | None,
) -> None:
    """List ORGANIZATION's keys, newest first (metadata only: never a key or digest)."""
    service = service_from_environment()
    with engine_for(url, read_only=True) as engine, transaction(engine) as session:
        page = service.list_keys(
            session,
            organization,
            actor=_actor(acting_user),
            limit=limit,
            cursor=cursor,
            include_revoked=not active_only,
        )
    emit(page, as_json, lambda: echo_page(page, KEY_COLUMNS))


@keys.command("revoke")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("key_id")
@handle_errors
def revoke(url: str | None, as_json: bool, acting_user: str | None, organization: str, key_id: str) -> None:
    """Revoke KEY_ID of ORGANIZATION: it stops verifying at once."""
    service = service_from_environment()
    with engine_for(url) as engine, transaction(engine) as session:
        key = service.revoke(session, organization, key_id, actor=_actor(acting_user))
    emit(key, as_json, lambda: click.echo(f"revoked {key.id} ({key.name})"))


@keys.command("rotate")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("key_id")
@click.option(
    "--grace", callback=_duration, default=None, help="How long the old key keeps working (default 24h)."
)
@click.option("--now", "immediately", is_flag=True, help="End the old key at once (no grace).")
@handle_errors
def rotate(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    key_id: str,
    grace: timedelta | None,
    immediately: bool,
) -> None:
    """Replace KEY_ID by a new key and print the new key (once)."""
    if immediately:
        if grace is not None:
            raise click.UsageError("give --grace or --now, not both")
        grace = timedelta(0)
    service = service_from_environment()
    with engine_for(url) as engine, transaction(engine) as session:
        issued = service.rotate(session, organization, key_id, actor=_actor(acting_user), grace=grace)
    _print_issued(issued, as_json, "rotated in")


@keys.command("verify")
@url_option
@json_option
@click.option("--organization", default=None, help="Accept only this organization's keys.")
@click.option("--scope", "scopes", multiple=True, help="A scope the key must carry (repeatable).")
@handle_errors
def verify(url: str | None, as_json: bool, organization: str | None, scopes: tuple[str, ...]) -> None:
    """Say whether an API key is valid, and whose it is, as the application would.

    The key is read from standard input, or asked for without echo at a terminal, never from the command
    line (where shell history and the process list would keep it). It is never printed. Exit code 0: valid
    (and carries every --scope); 1: not valid, with the reason.

    Checking a key does not count as using it: its last-used time is left as it was.
    """
    key = _read_key()
    service = service_from_environment()
    with engine_for(url, read_only=True) as engine, Session(engine) as session:
        verdict = service.verify(session, key, organization_id=organization)
        # An operator's check is not a use: undo the last-used write a valid verification makes, before
        # reading the metadata that would show it.
        session.rollback()
        metadata = (
            service.get(session, verdict.organization_id, verdict.key_id, actor=HOST)
            if (verdict.valid and verdict.organization_id and verdict.key_id)
            else None
        )
    missing = sorted(set(scopes) - set(verdict.scopes)) if verdict.valid else []
    valid = verdict.valid and not missing
    reason = verdict.reason or ("missing_scope" if missing else None)
    data = {"valid": valid, "reason": reason, "missing_scopes": missing, "api_key": metadata}

    def human() -> None:
        if metadata is None:
            click.echo(f"invalid: {reason}")
            return
        click.echo("valid" if valid else f"invalid: lacks scope(s) {', '.join(missing)}")
        echo_table(
            ["ORGANIZATION", *[header for header, _ in KEY_COLUMNS]],
            [[metadata.organization_id, *[cell(metadata) for _, cell in KEY_COLUMNS]]],
        )

    emit(data, as_json, human)
    if not valid:
        raise SystemExit(EXIT_NO)


def _read_key() -> str:
    # At a terminal, ask without echo; otherwise the first line of the input (a pipe, a file).
    typed = click.prompt("API key", hide_input=True, err=True) if sys.stdin.isatty() else sys.stdin.readline()
    key = str(typed).strip()
    if not key:
        raise InvalidInputError("key", "give the key on standard input (or at the prompt)")
    return key
