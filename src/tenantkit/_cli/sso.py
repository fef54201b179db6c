"""``tenantkit sso``: organizations' SSO connections, as policy records (never certificates or metadata).

Commands act as the host unless ``--as USER`` names the member on whose behalf they act.
"""

from __future__ import annotations

from typing import get_args

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
from tenantkit._cli._formats import Column, echo_table
from tenantkit._cli.members import _actor, as_option
from tenantkit._session import transaction
from tenantkit._settings import TenantKitSettings
from tenantkit.sso._service import Provider, RoleAuthority, SsoConnection, SsoProtocol, SsoService

CONNECTION_COLUMNS: list[Column[SsoConnection]] = [
    ("ID", lambda connection: connection.id),
    ("NAME", lambda connection: connection.name),
    ("PROVIDER", lambda connection: f"{connection.provider}/{connection.protocol}"),
    ("PROVIDER ID", lambda connection: connection.provider_connection_id),
    ("ENABLED", lambda connection: "yes" if connection.enabled else "no"),
    ("ENFORCE", lambda connection: "yes" if connection.enforce else "no"),
    ("JIT", lambda connection: connection.default_role.value if connection.jit else "no"),
    ("ROLES", lambda connection: connection.role_authority),
]
_JIT_ROLES = click.Choice(["MEMBER", "ADMIN"], case_sensitive=False)
_AUTHORITIES = click.Choice(list(get_args(RoleAuthority)))


def _sso(settings: TenantKitSettings) -> SsoService:
    return kit_for(settings).sso


def _echo(connection: SsoConnection, verb: str) -> None:
    click.echo(f"{verb} SSO connection {connection.name} ({connection.id})")


@main.group()
def sso() -> None:
    """Create, list, change and delete organizations' SSO connections."""


@sso.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@handle_errors
def list_(url: str | None, as_json: bool, acting_user: str | None, organization: str) -> None:
    """List the SSO connections of ORGANIZATION, oldest first."""
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        found = _sso(settings).list_connections(session, organization, actor=_actor(acting_user))
    emit(
        found,
        as_json,
        lambda: echo_table(
            [header for header, _ in CONNECTION_COLUMNS],
            [[cell(item) for _, cell in CONNECTION_COLUMNS] for item in found],
        ),
    )


@sso.command("create")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("provider", type=click.Choice(list(get_args(Provider))))
@click.argument("protocol", type=click.Choice(list(get_args(SsoProtocol))))
@click.argument("provider_connection_id")
@click.option("--name", required=True, help="A label for people.")
@click.option("--disabled", is_flag=True, help="Create it disabled (logins refused until enabled).")
@click.option("--enforce", is_flag=True, help="Members in a verified domain must sign in through it.")
@click.option("--jit", is_flag=True, help="Create the membership on a first SSO login.")
@click.option(
    "--default-role", type=_JIT_ROLES, default="MEMBER", show_default=True, help="JIT members' rank."
)
@click.option("--role-authority", type=_AUTHORITIES, default="tenantkit", show_default=True)
@handle_errors
def create(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    provider: Provider,
    protocol: SsoProtocol,
    provider_connection_id: str,
    name: str,
    disabled: bool,
    enforce: bool,
    jit: bool,
    default_role: str,
    role_authority: RoleAuthority,
) -> None:
    """Register PROVIDER's connection PROVIDER_CONNECTION_ID (PROTOCOL) for ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        connection = _sso(settings).create_connection(
            session,
            organization,
            provider=provider,
            protocol=protocol,
            provider_connection_id=provider_connection_id,
            name=name,
            actor=_actor(acting_user),
            enabled=not disabled,
            enforce=enforce,
            jit=jit,
            default_role=default_role.upper(),
            role_authority=role_authority,
        )
    emit(connection, as_json, lambda: _echo(connection, "created"))


@sso.command("update")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("connection")
@click.option("--name", default=None, help="A new label.")
@click.option("--enabled/--disabled", default=None, help="Accept logins through it, or not.")
@click.option("--enforce/--no-enforce", default=None, help="Members in a verified domain must use it.")
@click.option("--jit/--no-jit", default=None, help="Create memberships on first SSO logins.")
@click.option("--default-role", type=_JIT_ROLES, default=None, help="JIT members' rank.")
@click.option("--role-authority", type=_AUTHORITIES, default=None, help="Who decides roles after creation.")
@handle_errors
def update(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    connection: str,
    name: str | None,
    enabled: bool | None,
    enforce: bool | None,
    jit: bool | None,
    default_role: str | None,
    role_authority: RoleAuthority | None,
) -> None:
    """Change CONNECTION (an id) of ORGANIZATION; options left out stay as they are."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        updated = _sso(settings).update_connection(
            session,
            organization,
            connection,
            actor=_actor(acting_user),
            name=name,
            enabled=enabled,
            enforce=enforce,
            jit=jit,
            default_role=None if default_role is None else default_role.upper(),
            role_authority=role_authority,
        )
    emit(updated, as_json, lambda: _echo(updated, "updated"))


@sso.command("delete")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("connection")
@handle_errors
def delete(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, connection: str
) -> None:
    """Delete CONNECTION (an id) of ORGANIZATION; logins through it are refused, memberships stay."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        deleted = _sso(settings).delete_connection(
            session, organization, connection, actor=_actor(acting_user)
        )
    emit(deleted, as_json, lambda: _echo(deleted, "deleted"))
