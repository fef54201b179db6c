"""``tenantkit members``: look at and change organization membership from the command line.

Commands act as the host (``HOST``) unless ``--as USER`` names the user on whose behalf they act; that user's
role then bounds what they may do, exactly as in the library.
"""

from __future__ import annotations

import click

from tenantkit._actor import HOST, Actor
from tenantkit._cli._common import (
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
from tenantkit._cli._formats import ROLE, Column, echo_page
from tenantkit._cli.roles import ROLE_OR_KEY, load_policy, policy_option
from tenantkit._kit import TenantKit
from tenantkit._session import transaction
from tenantkit._settings import TenantKitSettings
from tenantkit._validation import parse_duration
from tenantkit.members._service import Member, MembershipService
from tenantkit.roles._policy import Role


def _members(settings: TenantKitSettings, policy: str | None = None) -> MembershipService:
    if policy is None:
        return kit_for(settings).members
    return TenantKit.from_settings(settings, permissions=load_policy(policy)).members


def _actor(user_id: str | None) -> Actor:
    return HOST if user_id is None else Actor.user(user_id)


def as_option(function: click.decorators.FC) -> click.decorators.FC:
    """``--as USER``: act as that member instead of as the host."""
    return click.option(
        "--as", "acting_user", metavar="USER", default=None, help="Act as this user (default: the host)."
    )(function)


MEMBER_COLUMNS: list[Column[Member]] = [
    ("ORGANIZATION", lambda member: member.organization_id),
    ("USER", lambda member: member.user_id),
    # A custom role shows inside its rank: MEMBER/physician.
    ("ROLE", lambda member: member.role.value + (f"/{member.custom_role}" if member.custom_role else "")),
]


@main.group()
def members() -> None:
    """List and change the members of organizations."""


@members.command("add")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("user")
@click.option(
    "--role",
    type=ROLE_OR_KEY,
    default=None,
    help="A rank or a custom role's key (default: the organization's default role, MEMBER unless its "
    "settings choose another).",
)
@policy_option
@handle_errors
def add(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    user: str,
    role: str | None,
    policy: str | None,
) -> None:
    """Make USER a member of ORGANIZATION with a rank or a custom role."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        member = _members(settings, policy).add(session, organization, user, role, actor=_actor(acting_user))
    emit(member, as_json, lambda: click.echo(f"added {user} to {organization} as {member.role.value}"))


@members.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option("--role", type=ROLE, default=None, help="Only members with this role.")
@page_options
@handle_errors
def list_(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    role: str | None,
    limit: int,
    cursor: str | None,
) -> None:
    """List the members of ORGANIZATION, one page at a time, ordered by user id."""
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        page = _members(settings).list_members(
            session, organization, actor=_actor(acting_user), limit=limit, cursor=cursor, role=role
        )
    emit(page, as_json, lambda: echo_page(page, MEMBER_COLUMNS))


@members.command("orgs")
@url_option
@json_option
@as_option
@click.argument("user")
@page_options
@handle_errors
def orgs(
    url: str | None, as_json: bool, acting_user: str | None, user: str, limit: int, cursor: str | None
) -> None:
    """List the organizations USER belongs to, with their role in each."""
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        page = _members(settings).list_organizations(
            session, user, actor=_actor(acting_user), limit=limit, cursor=cursor
        )
    emit(page, as_json, lambda: echo_page(page, MEMBER_COLUMNS))


@members.command("set-role")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("user")
@click.argument("role", type=ROLE_OR_KEY)
@policy_option
@handle_errors
def set_role(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    user: str,
    role: str,
    policy: str | None,
) -> None:
    """Give USER the role ROLE (a rank or a custom role's key) in ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        member = _members(settings, policy).change_role(
            session, organization, user, role, actor=_actor(acting_user)
        )
    emit(member, as_json, lambda: click.echo(f"{user} is now {member.role.value} in {organization}"))


@members.command("remove")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("user")
@handle_errors
def remove(url: str | None, as_json: bool, acting_user: str | None, organization: str, user: str) -> None:
    """Remove USER from ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        member = _members(settings).remove(session, organization, user, actor=_actor(acting_user))
    emit(member, as_json, lambda: click.echo(f"removed {user} ({member.role.value}) from {organization}"))


@members.command("transfer")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("to_user")
@click.option("--from", "from_user", default=None, help="The OWNER handing over (required as the host).")
@click.option("--demote-to", type=ROLE, default=Role.ADMIN.value, show_default=True)
@handle_errors
def transfer(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    to_user: str,
    from_user: str | None,
    demote_to: str,
) -> None:
    """Make TO_USER an OWNER of ORGANIZATION and step the current owner down."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        member = _members(settings).transfer_ownership(
            session,
            organization,
            to_user,
            actor=_actor(acting_user),
            from_user_id=from_user,
            demote_to=demote_to,
        )
    emit(member, as_json, lambda: click.echo(f"{to_user} is now OWNER of {organization}"))


@members.command("suspend")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("user")
@click.option("--reason", default=None, help="Why (shown in the audit log), e.g. 'licence expired'.")
@handle_errors
def suspend(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, user: str, reason: str | None
) -> None:
    """Suspend USER in ORGANIZATION: the membership stays, its permissions are denied until resumed."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        member = _members(settings).suspend(
            session, organization, user, actor=_actor(acting_user), reason=reason
        )
    emit(member, as_json, lambda: click.echo(f"suspended {user} in {organization}"))


@members.command("resume")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("user")
@handle_errors
def resume(url: str | None, as_json: bool, acting_user: str | None, organization: str, user: str) -> None:
    """Lift the suspension of USER in ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        member = _members(settings).resume(session, organization, user, actor=_actor(acting_user))
    emit(member, as_json, lambda: click.echo(f"resumed {user} in {organization}"))


LAPSING_COLUMNS: list[Column[Member]] = [
    ("USER", lambda member: member.user_id),
    ("ROLE", lambda member: member.role.value),
    ("EXPIRES", lambda member: "" if member.attributes is None else str(member.attributes.expires_at)),
    ("SUSPENDED", lambda member: "yes" if member.suspended else ""),
]


@members.command("lapsing")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option(
    "--within", default="0d", show_default=True, help="Lapsing within this long from now (30d, 12h, ...)."
)
@click.option("--include-suspended", is_flag=True, help="List members already suspended as well.")
@page_options
@handle_errors
def lapsing(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    within: str,
    include_suspended: bool,
    limit: int,
    cursor: str | None,
) -> None:
    """List members of ORGANIZATION whose verified credentials lapse within --within (lapsed ones too)."""
    span = parse_duration(within)
    if span is None:
        raise click.BadParameter("a duration such as 30d, 12h, 15m or 90s", param_hint="--within")
    settings = load_settings()
    service = _members(settings)
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        page = service.list_lapsing(
            session,
            organization,
            service.clock() + span,
            actor=_actor(acting_user),
            include_suspended=include_suspended,
            limit=limit,
            cursor=cursor,
        )
    emit(page, as_json, lambda: echo_page(page, LAPSING_COLUMNS))
