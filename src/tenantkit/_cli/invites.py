"""``tenantkit invites``: create, list and revoke invitations from the command line.

Commands act as the host (``HOST``) unless ``--as USER`` names the user on whose behalf they act. Tokens are
signed with the keys in ``TENANTKIT_INVITATION_SECRET`` (comma-separated, oldest first, for rotation): the
same keys the application uses, or the tokens printed here will not verify there.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import click
from pydantic import SecretStr

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
from tenantkit._cli._formats import ROLE, Column, echo_page, echo_table, format_timestamp
from tenantkit._errors import ConfigurationError, InvalidInputError
from tenantkit._session import transaction
from tenantkit._settings import InvitationSettings, TenantKitSettings
from tenantkit.invitations._service import Invitation, InvitationService
from tenantkit.roles._policy import Role

SECRET_ENVIRONMENT_VARIABLE = "TENANTKIT_INVITATION_SECRET"  # noqa: S105 (a variable name, not a secret)
ACCEPT_URL_ENVIRONMENT_VARIABLE = "TENANTKIT_INVITATION_ACCEPT_URL"

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _actor(user_id: str | None) -> Actor:
    return HOST if user_id is None else Actor.user(user_id)


def _service(
    settings: TenantKitSettings,
    *,
    keys_required: bool,
    accept_url: str | None = None,
    allow_public: bool = False,
) -> InvitationService:
    """The invitation service as the application configured by ``settings`` has it, with the options given."""
    invitation = settings.invitations
    if not invitation.enabled:
        if keys_required:
            raise ConfigurationError(
                f"{SECRET_ENVIRONMENT_VARIABLE} is not set: give it the application's invitation "
                "signing keys (comma-separated, oldest first)"
            )
        # Listing and revoking issue no token, so any key will do when none is configured.
        invitation = invitation.model_copy(update={"secret_keys": (SecretStr(secrets.token_urlsafe(32)),)})
    overrides: dict[str, object] = {}
    if accept_url is not None:
        overrides["accept_url_template"] = accept_url
    if allow_public:
        overrides["allow_public_email_domains"] = True
    if overrides:
        invitation = InvitationSettings(**{**dict(invitation), **overrides})
    return kit_for(settings.model_copy(update={"invitations": invitation})).invitations


def _duration(value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = _DURATION.match(value)
    if match is None:
        raise InvalidInputError("--expires-in", f"{value!r} is not a duration like 30m, 12h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _uses(invitation: Invitation) -> str:
    return "-" if invitation.max_uses is None else f"{invitation.use_count}/{invitation.max_uses}"


INVITATION_COLUMNS: list[Column[Invitation]] = [
    ("ID", lambda invitation: invitation.id),
    ("KIND", lambda invitation: invitation.kind),
    ("FOR", lambda invitation: invitation.email or ",".join(invitation.allowed_domains)),
    ("ROLE", lambda invitation: invitation.role.value),
    ("EXPIRES", lambda invitation: format_timestamp(invitation.expires_at)),
    ("USES", _uses),
]


def as_option(function: click.decorators.FC) -> click.decorators.FC:
    """``--as USER``: act as that member instead of as the host."""
    return click.option(
        "--as", "acting_user", metavar="USER", default=None, help="Act as this user (default: the host)."
    )(function)


@main.group()
def invites() -> None:
    """Create, list and revoke invitations (by email or by domain-restricted link)."""


@invites.command("create")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.option("--email", default=None, help="Invite this address (an email invitation).")
@click.option("--domain", "domains", multiple=True, help="Allowed domain of a link invitation; repeatable.")
@click.option("--role", type=ROLE, default=Role.MEMBER.value, show_default=True)
@click.option("--max-uses", type=click.IntRange(min=1), default=None, help="Link only: how many may accept.")
@click.option("--expires-in", default=None, help="Validity such as 30m, 12h or 7d (default: 7d).")
@click.option(
    "--accept-url",
    default=None,
    help=(
        "Accept page template with {token}, e.g. https://app.example.com/invite?token={token} "
        f"[default: {ACCEPT_URL_ENVIRONMENT_VARIABLE}]."
    ),
)
@click.option("--allow-public-domain", is_flag=True, help="Allow gmail.com and other public providers.")
@handle_errors
def create(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    email: str | None,
    domains: tuple[str, ...],
    role: str,
    max_uses: int | None,
    expires_in: str | None,
    accept_url: str | None,
    allow_public_domain: bool,
) -> None:
    """Invite someone to ORGANIZATION by --email, or create a link for --domain. Prints the token once."""
    if (email is None) == (not domains):
        raise InvalidInputError("--email/--domain", "give either --email or at least one --domain")
    if email is not None and max_uses is not None:
        raise InvalidInputError("--max-uses", "applies to link invitations (--domain) only")
    lifetime = _duration(expires_in)
    settings = load_settings()
    service = _service(settings, keys_required=True, accept_url=accept_url, allow_public=allow_public_domain)
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        if email is not None:
            created = service.create_email_invitation(
                session, organization, email, role, actor=_actor(acting_user), expires_in=lifetime
            )
        else:
            created = service.create_link_invitation(
                session,
                organization,
                list(domains),
                role,
                actor=_actor(acting_user),
                max_uses=max_uses,
                expires_in=lifetime,
            )
    token = created.token.get_secret_value()
    link = created.accept_url.get_secret_value() if created.accept_url is not None else None
    data = {"invitation": created.invitation, "token": token, "accept_url": link}

    def human() -> None:
        echo_table(
            [header for header, _ in INVITATION_COLUMNS],
            [[cell(created.invitation) for _, cell in INVITATION_COLUMNS]],
        )
        click.echo(f"token: {token}")
        if link is not None:
            click.echo(f"accept URL: {link}")
        click.echo("The token is shown only now; deliver it to the invitee.", err=True)

    emit(data, as_json, human)


@invites.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@page_options
@handle_errors
def list_(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, limit: int, cursor: str | None
) -> None:
    """List the pending invitations of ORGANIZATION, oldest first (never their tokens)."""
    settings = load_settings()
    service = _service(settings, keys_required=False)
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        page = service.list_pending(
            session, organization, actor=_actor(acting_user), limit=limit, cursor=cursor
        )
    emit(page, as_json, lambda: echo_page(page, INVITATION_COLUMNS))


@invites.command("revoke")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("invitation_id")
@handle_errors
def revoke(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, invitation_id: str
) -> None:
    """Revoke invitation INVITATION_ID of ORGANIZATION; its token stops working."""
    settings = load_settings()
    service = _service(settings, keys_required=False)
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        invitation = service.revoke(session, organization, invitation_id, actor=_actor(acting_user))
    emit(invitation, as_json, lambda: click.echo(f"revoked {invitation.id}"))
