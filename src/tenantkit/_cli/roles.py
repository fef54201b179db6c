"""``tenantkit roles``: list, create, edit and delete an organization's custom roles from the command line.

The permission registry and the deployment-wide roles live in the host's code, so the CLI finds them through
``--policy MODULE:ATTRIBUTE`` (or ``TENANTKIT_POLICY``): the import path of the host's
:class:`~tenantkit.Permissions` object. Without it the built-in permissions alone are known. Commands act as
the host unless ``--as USER`` names the user on whose behalf they act, whose roles then bound what they may
do, exactly as in the library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from tenantkit._actor import HOST, Actor
from tenantkit._cli._common import (
    emit,
    engine_for,
    handle_errors,
    json_option,
    load_settings,
    main,
    url_option,
)
from tenantkit._cli._formats import echo_table
from tenantkit._errors import InvalidInputError
from tenantkit._kit import TenantKit
from tenantkit._session import transaction
from tenantkit.roles._policy import CustomRole, Permissions, Role

F = Callable[..., object]


def load_policy(spec: str | None) -> Permissions | None:
    """The host's :class:`Permissions` named by ``module:attribute`` (``None`` when no spec is given).

    Raises:
        InvalidInputError: The spec is malformed, the module cannot be imported, or the attribute is no
            ``Permissions``.
    """
    if spec is None:
        return None
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError("policy", f"{spec!r} is not MODULE:ATTRIBUTE, such as myapp.auth:PERMISSIONS")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise InvalidInputError("policy", f"cannot load {spec!r}: {error}") from None
    if not isinstance(found, Permissions):
        raise InvalidInputError("policy", f"{spec!r} is a {type(found).__name__}, not tenantkit.Permissions")
    return found


def policy_option(function: F) -> F:
    """``--policy MODULE:ATTRIBUTE``: the host's permission registry and deployment-wide roles."""
    return click.option(
        "--policy",
        metavar="MODULE:ATTRIBUTE",
        envvar="TENANTKIT_POLICY",
        default=None,
        help="The host's tenantkit.Permissions (registry, deployment-wide roles); env TENANTKIT_POLICY.",
    )(function)


def kit_with_policy(policy: str | None) -> TenantKit:
    """The kit the settings describe, with the host's policy when one is named."""
    return TenantKit.from_settings(load_settings(), permissions=load_policy(policy))


def _actor(user_id: str | None) -> Actor:
    return HOST if user_id is None else Actor.user(user_id)


if TYPE_CHECKING:
    _ParamType = click.ParamType[str]
else:  # click 8.1's types are not generic at run time
    _ParamType = click.ParamType


class RoleOrKey(_ParamType):
    """A rank (any case, given upper-cased) or a custom role's key (given as it is)."""

    name = "role"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[OWNER|ADMIN|MEMBER|KEY]"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if text.upper() in {role.value for role in Role}:
            return text.upper()
        if not text:
            self.fail("give a rank or a custom role's key", param, ctx)
        return text


ROLE_OR_KEY = RoleOrKey()


def _as_option(function: F) -> F:
    return click.option(
        "--as", "acting_user", metavar="USER", default=None, help="Act as this user (default: the host)."
    )(function)


def _echo_roles(found: list[CustomRole]) -> None:
    echo_table(
        ["KEY", "RANK", "SCOPE", "NAME", "PERMISSIONS"],
        [
            [
                role.key,
                role.rank.value,
                "deployment" if role.deployment_wide else "organization",
                role.name,
                ",".join(sorted(role.permissions)) or "-",
            ]
            for role in found
        ],
    )


@main.group()
def roles() -> None:
    """List, create, edit and delete the custom roles of organizations."""


@roles.command("list")
@url_option
@json_option
@policy_option
@_as_option
@click.argument("organization")
@handle_errors
def list_(
    url: str | None, as_json: bool, policy: str | None, acting_user: str | None, organization: str
) -> None:
    """List the custom roles members of ORGANIZATION may hold (deployment-wide first)."""
    kit = kit_with_policy(policy)
    with engine_for(url, read_only=True, settings=kit.settings) as engine, transaction(engine) as session:
        found = kit.roles.list_roles(session, organization, actor=_actor(acting_user))
    emit(found, as_json, lambda: _echo_roles(found))


@roles.command("create")
@url_option
@json_option
@policy_option
@_as_option
@click.argument("organization")
@click.argument("key")
@click.option("--name", required=True, help="The role's display name.")
@click.option("--rank", type=click.Choice(["ADMIN", "MEMBER"], case_sensitive=False), required=True)
@click.option("--permission", "permissions", multiple=True, help="A permission it adds (repeatable).")
@click.option("--description", default="", help="A longer explanation.")
@handle_errors
def create(
    url: str | None,
    as_json: bool,
    policy: str | None,
    acting_user: str | None,
    organization: str,
    key: str,
    name: str,
    rank: str,
    permissions: tuple[str, ...],
    description: str,
) -> None:
    """Define the custom role KEY in ORGANIZATION."""
    kit = kit_with_policy(policy)
    with engine_for(url, settings=kit.settings) as engine, transaction(engine) as session:
        role = kit.roles.create(
            session,
            organization,
            key,
            name=name,
            rank=rank.upper(),
            permissions=permissions,
            description=description,
            actor=_actor(acting_user),
        )
    emit(role, as_json, lambda: click.echo(f"created role {role.key} ({role.rank.value}) in {organization}"))


@roles.command("edit")
@url_option
@json_option
@policy_option
@_as_option
@click.argument("organization")
@click.argument("key")
@click.option("--name", default=None, help="A new display name.")
@click.option("--description", default=None, help="A new description.")
@click.option("--permission", "permissions", multiple=True, help="The role's permissions now (repeatable).")
@click.option("--no-permissions", is_flag=True, help="Take every permission away (the rank's remain).")
@handle_errors
def edit(
    url: str | None,
    as_json: bool,
    policy: str | None,
    acting_user: str | None,
    organization: str,
    key: str,
    name: str | None,
    description: str | None,
    permissions: tuple[str, ...],
    no_permissions: bool,
) -> None:
    """Rename KEY or replace its permissions (its key and rank never change)."""
    if permissions and no_permissions:
        raise click.UsageError("give --permission or --no-permissions, not both")
    new_permissions = () if no_permissions else (permissions or None)
    kit = kit_with_policy(policy)
    with engine_for(url, settings=kit.settings) as engine, transaction(engine) as session:
        role = kit.roles.update(
            session,
            organization,
            key,
            actor=_actor(acting_user),
            name=name,
            description=description,
            permissions=new_permissions,
        )
    emit(role, as_json, lambda: click.echo(f"updated role {role.key} in {organization}"))


@roles.command("delete")
@url_option
@json_option
@policy_option
@_as_option
@click.argument("organization")
@click.argument("key")
@click.option(
    "--reassign-to", type=ROLE_OR_KEY, default=None, help="Move holders to this rank or role first."
)
@handle_errors
def delete(
    url: str | None,
    as_json: bool,
    policy: str | None,
    acting_user: str | None,
    organization: str,
    key: str,
    reassign_to: str | None,
) -> None:
    """Delete KEY from ORGANIZATION (refused while members hold it, unless --reassign-to moves them)."""
    kit = kit_with_policy(policy)
    with engine_for(url, settings=kit.settings) as engine, transaction(engine) as session:
        moved = kit.roles.delete(
            session, organization, key, actor=_actor(acting_user), reassign_to=reassign_to
        )
    emit(
        {"key": key, "reassigned_members": moved},
        as_json,
        lambda: click.echo(f"deleted role {key} from {organization} ({moved} member(s) reassigned)"),
    )
