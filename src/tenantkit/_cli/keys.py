"""``tenantkit keys``: issue, list, revoke and rotate an organization's API keys from the command line.

Commands act as the host unless ``--as USER`` names the member on whose behalf they act. ``issue`` and
``rotate`` print the new key once; it cannot be shown again. ``issue`` takes a key's subject (a user, a
device) and its opt-in limits (credits, refill, rate limits, networks, a certificate thumbprint); ``credits
set|add`` change what a key has left and ``revoke-subject`` revokes every key of a user or device.

The key settings of the deployment (prefix, hasher, peppers) come from the same ``TENANTKIT_API_KEY_*``
variables (or ``.env``) that :meth:`tenantkit.TenantKit.from_env` reads, so that keys made here verify in the
application; ``tenantkit --help`` lists them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

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
from tenantkit.api_keys._limits import ApiKeyLimits, ApiKeySubject
from tenantkit.api_keys._service import ApiKey, ApiKeyService, IssuedApiKey

F = TypeVar("F", bound=Callable[..., Any])


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


def _subject_text(key: ApiKey) -> str:
    return "-" if key.subject.id is None else f"{key.subject.type}:{key.subject.id}"


def _credits_text(key: ApiKey) -> str:
    if key.limits is None or key.limits.credits is None:
        return "-"
    if key.limits.refill_amount is None:
        return str(key.limits.credits)
    return f"{key.limits.credits} (+{key.limits.refill_amount}/{key.limits.refill_period})"


def subject_options(function: F) -> F:
    """``--subject-user`` and ``--subject-device``: whom a key stands for (at most one of them)."""
    function = click.option(
        "--subject-device",
        default=None,
        metavar="DEVICE",
        help="The device the key stands for (serial, UDI).",
    )(function)
    return click.option(
        "--subject-user", default=None, metavar="USER", help="The member the key stands for."
    )(function)


def _subject(user: str | None, device: str | None) -> ApiKeySubject | None:
    if user is not None and device is not None:
        raise click.UsageError("give --subject-user or --subject-device, not both")
    if user is not None:
        return ApiKeySubject.user(user)
    if device is not None:
        return ApiKeySubject.device(device)
    return None


def _refill(context: click.Context, parameter: click.Parameter, value: str | None) -> tuple[int, str] | None:
    if value is None:
        return None
    amount, _, period = value.partition("/")
    if not amount.strip().isdigit() or period.strip() not in ("day", "month"):
        raise click.BadParameter("use AMOUNT/PERIOD with a period of day or month: 1000/month")
    return int(amount), period.strip()


def _limits(
    credits: int | None,
    refill: tuple[int, str] | None,
    rate_limits: tuple[str, ...],
    allowed_cidrs: tuple[str, ...],
    thumbprint: str | None,
) -> ApiKeyLimits | None:
    """The limits the options name (checked by :class:`ApiKeyLimits`), or ``None`` when they name none."""
    values: dict[str, Any] = {}
    if credits is not None:
        values["credits"] = credits
    if refill is not None:
        values["refill_amount"], values["refill_period"] = refill
    if rate_limits:
        values["rate_limits"] = list(rate_limits)
    if allowed_cidrs:
        values["allowed_cidrs"] = list(allowed_cidrs)
    if thumbprint is not None:
        values["certificate_sha256"] = thumbprint
    return ApiKeyLimits.parse(values) if values else None


KEY_COLUMNS: list[Column[ApiKey]] = [
    ("ID", lambda key: key.id),
    ("START", lambda key: f"{key.start}…" if key.start else "-"),
    ("NAME", lambda key: key.name),
    ("STATE", _state),
    ("EXPIRES", lambda key: format_timestamp(key.expires_at)),
    ("LAST USED", lambda key: format_timestamp(key.last_used_at)),
    ("SCOPES", lambda key: ",".join(key.scopes) or "-"),
    ("SUBJECT", _subject_text),
    ("CREDITS", _credits_text),
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
@subject_options
@click.option("--credits", type=int, default=None, help="Usage credits: uses the key has (each costs 1).")
@click.option(
    "--refill",
    callback=_refill,
    default=None,
    metavar="AMOUNT/PERIOD",
    help="Reset the credits to AMOUNT each day or month, UTC: 1000/month.",
)
@click.option(
    "--rate-limit",
    "rate_limits",
    multiple=True,
    help="A rate limit such as 100/minute or '5000 per day' (repeatable; all apply).",
)
@click.option(
    "--allow-cidr",
    "allowed_cidrs",
    multiple=True,
    help="A network the client must be in: 10.20.0.0/16, 2001:db8::/32 (repeatable).",
)
@click.option("--thumbprint", default=None, help="SHA-256 thumbprint of the client certificate (hex).")
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
    subject_user: str | None,
    subject_device: str | None,
    credits: int | None,
    refill: tuple[int, str] | None,
    rate_limits: tuple[str, ...],
    allowed_cidrs: tuple[str, ...],
    thumbprint: str | None,
) -> None:
    """Issue a key named NAME for ORGANIZATION and print it (once).

    The key stands for the organization, or for one member (--subject-user) or device (--subject-device);
    --credits, --refill, --rate-limit, --allow-cidr and --thumbprint limit and bind it (see the usage-limits
    and bound-keys pages of the documentation).
    """
    if expires_in is not None and expires_at is not None:
        raise click.UsageError("give --expires-in or --expires, not both")
    expires: datetime | timedelta | None = expires_in if expires_at is None else expires_at
    subject = _subject(subject_user, subject_device)
    limits = _limits(credits, refill, rate_limits, allowed_cidrs, thumbprint)
    service = service_from_environment()
    with engine_for(url) as engine, transaction(engine) as session:
        issued = service.issue(
            session,
            organization,
            name,
            actor=_actor(acting_user),
            expires=expires,
            scopes=scopes,
            subject=subject,
            limits=limits,
        )
    _print_issued(issued, as_json, "issued")


@keys.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option("--active-only", is_flag=True, help="Leave revoked keys out.")
@subject_options
@page_options
@handle_errors
def list_(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    active_only: bool,
    subject_user: str | None,
    subject_device: str | None,
    limit: int,
    cursor: str | None,
) -> None:
    """List ORGANIZATION's keys, newest first (metadata only: never a key or digest).

    --subject-user or --subject-device lists only the keys standing for that member or device.
    """
    subject = _subject(subject_user, subject_device)
    service = service_from_environment()
    with engine_for(url, read_only=True) as engine, transaction(engine) as session:
        page = service.list_keys(
            session,
            organization,
            actor=_actor(acting_user),
            limit=limit,
            cursor=cursor,
            include_revoked=not active_only,
            subject=subject,
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


@keys.command("revoke-subject")
@url_option
@json_option
@as_option
@click.argument("organization")
@subject_options
@handle_errors
def revoke_subject(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    subject_user: str | None,
    subject_device: str | None,
) -> None:
    """Revoke every active key of ORGANIZATION that stands for a member or a device (a user leaving, a
    device lost): give --subject-user or --subject-device."""
    subject = _subject(subject_user, subject_device)
    if subject is None:
        raise click.UsageError("give --subject-user or --subject-device")
    service = service_from_environment()
    with engine_for(url) as engine, transaction(engine) as session:
        revoked = service.revoke_subject(session, organization, subject, actor=_actor(acting_user))

    def human() -> None:
        click.echo(f"revoked {len(revoked)} key(s) of {subject.type} {subject.id}")
        for key_id in revoked:
            click.echo(key_id)

    emit({"revoked": list(revoked)}, as_json, human)


@keys.group("credits")
def credits_group() -> None:
    """Set or add to the usage credits an API key has left."""


@credits_group.command("set")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("key_id")
@click.option("--credits", type=int, required=True, help="What the key has left from now on (zero or more).")
@handle_errors
def credits_set(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, key_id: str, credits: int
) -> None:
    """Set the credits KEY_ID of ORGANIZATION has left (a key without credits gets a limit)."""
    service = service_from_environment()
    with engine_for(url) as engine, transaction(engine) as session:
        key = service.set_credits(session, organization, key_id, credits, actor=_actor(acting_user))
    emit(key, as_json, lambda: click.echo(f"{key.id} ({key.name}): {_credits_text(key)} credits left"))


@credits_group.command("add")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("key_id")
@click.option(
    "--credits",
    type=int,
    required=True,
    help="Credits to add; negative takes away (never below zero).",
)
@handle_errors
def credits_add(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, key_id: str, credits: int
) -> None:
    """Add credits to what KEY_ID of ORGANIZATION has left, atomically (a refund is this command)."""
    service = service_from_environment()
    with engine_for(url) as engine, transaction(engine) as session:
        key = service.add_credits(session, organization, key_id, credits, actor=_actor(acting_user))
    emit(key, as_json, lambda: click.echo(f"{key.id} ({key.name}): {_credits_text(key)} credits left"))


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
