"""``tenantkit settings`` and ``tenantkit orgs``: an organization's settings, and the end of its data.

``settings show`` and ``settings set`` read and write the settings document with the same version check as
the library (``--version`` is the version shown); the host's settings model comes from
``TENANTKIT_ORGANIZATION_SETTINGS_MODEL``. ``orgs delete`` and ``orgs erase-user`` delete data for good and
ask for confirmation unless given ``--yes``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from tenantkit._cli._common import (
    emit,
    engine_for,
    handle_errors,
    json_option,
    kit_for,
    load_settings,
    main,
    url_option,
)
from tenantkit._cli.members import _actor, as_option
from tenantkit._session import transaction
from tenantkit.organizations._service import SettingsSnapshot


def _value(text: str) -> Any:
    # JSON when it parses (true, 3, ["a.example"], null), the text itself otherwise ("3d", "Europe/Paris").
    try:
        return json.loads(text)
    except ValueError:
        return text


def _assignments(pairs: tuple[str, ...]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        changes[key.strip()] = _value(text)
    return changes


def _echo_snapshot(snapshot: SettingsSnapshot) -> None:
    click.echo(f"organization {snapshot.organization_id}, version {snapshot.version}")
    explicit = set(snapshot.explicit_keys)
    for key, value in snapshot.document.model_dump(mode="json").items():
        marker = "*" if key in explicit else " "
        click.echo(f"{marker} {key} = {json.dumps(value)}")


@main.group()
def settings() -> None:
    """Read and change an organization's settings (the keys marked * are set by the organization)."""


@settings.command("show")
@url_option
@json_option
@as_option
@click.argument("organization")
@handle_errors
def show(url: str | None, as_json: bool, acting_user: str | None, organization: str) -> None:
    """Print the settings of ORGANIZATION and their version."""
    loaded = load_settings()
    with engine_for(url, read_only=True, settings=loaded) as engine, transaction(engine) as session:
        snapshot = kit_for(loaded).organizations.get_settings(
            session, organization, actor=_actor(acting_user)
        )
    emit(snapshot, as_json, lambda: _echo_snapshot(snapshot))


@settings.command("set")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("assignments", metavar="KEY=VALUE...", nargs=-1)
@click.option(
    "--version", "expected_version", type=int, required=True, help="The version settings show printed."
)
@click.option(
    "--unset", "unset", multiple=True, metavar="KEY", help="Return KEY to its default (repeatable)."
)
@handle_errors
def set_(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    assignments: tuple[str, ...],
    expected_version: int,
    unset: tuple[str, ...],
) -> None:
    """Set KEY=VALUE settings of ORGANIZATION (VALUE as JSON, or as text) if still at --version."""
    changes = _assignments(assignments)
    loaded = load_settings()
    with engine_for(url, settings=loaded) as engine, transaction(engine) as session:
        snapshot = kit_for(loaded).organizations.update_settings(
            session,
            organization,
            changes,
            expected_version=expected_version,
            actor=_actor(acting_user),
            unset=unset,
        )
    emit(snapshot, as_json, lambda: _echo_snapshot(snapshot))


@main.group()
def orgs() -> None:
    """Delete an organization's data, or erase one user's data everywhere."""


@orgs.command("delete")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option(
    "--purge-audit", is_flag=True, help="Delete the organization's audit log too (kept by default)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def delete(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, purge_audit: bool, yes: bool
) -> None:
    """Delete every row tenantkit holds for ORGANIZATION, in one transaction."""
    if not yes:
        click.confirm(f"delete all of {organization}'s data? This cannot be undone", abort=True, err=True)
    loaded = load_settings()
    with engine_for(url, settings=loaded) as engine, transaction(engine) as session:
        result = kit_for(loaded).organizations.delete_organization(
            session, organization, actor=_actor(acting_user), audit="purge" if purge_audit else "keep"
        )
    data = {"organization_id": organization, "rows": result.rows, "audit": result.audit}
    emit(
        data,
        as_json,
        lambda: click.echo(f"deleted {result.total} rows of {organization} (audit log {result.audit})"),
    )


@orgs.command("erase-user")
@url_option
@json_option
@click.argument("user")
@click.option("--email", "emails", multiple=True, metavar="ADDRESS", help="The user's address (repeatable).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def erase_user(url: str | None, as_json: bool, user: str, emails: tuple[str, ...], yes: bool) -> None:
    """Erase USER's data from every organization (refused while USER is a last OWNER)."""
    if not yes:
        click.confirm(f"erase {user}'s data everywhere? This cannot be undone", abort=True, err=True)
    loaded = load_settings()
    with engine_for(url, settings=loaded) as engine, transaction(engine) as session:
        result = kit_for(loaded).organizations.erase_user(session, user, emails=emails)
    data = {"user_id": user, "rows": result.rows, "organizations": list(result.organizations)}
    emit(
        data,
        as_json,
        lambda: click.echo(
            f"erased {user}: {sum(result.rows.values())} rows in {len(result.organizations)} organization(s)"
        ),
    )
