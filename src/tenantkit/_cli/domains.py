"""``tenantkit domains``: the email domains organizations claim, and their DNS TXT verification.

``add`` prints the TXT record to publish once (its value carries the verification token, which is never
stored). ``verify`` looks the record up, through the system's nameservers or those ``--nameserver`` names.
Commands act as the host unless ``--as USER`` names the member on whose behalf they act.
"""

from __future__ import annotations

import click

from tenantkit._cli._common import (
    emit,
    engine_for,
    handle_errors,
    json_option,
    load_settings,
    main,
    url_option,
)
from tenantkit._cli._formats import Column, echo_table, format_timestamp
from tenantkit._cli.members import _actor, as_option
from tenantkit._kit import TenantKit
from tenantkit._session import transaction
from tenantkit._settings import TenantKitSettings
from tenantkit.domains._dns import DnsPythonResolver
from tenantkit.domains._service import DomainService, OrganizationDomain

DOMAIN_COLUMNS: list[Column[OrganizationDomain]] = [
    ("DOMAIN", lambda domain: domain.domain),
    ("STATUS", lambda domain: domain.status),
    ("STRATEGY", lambda domain: domain.strategy),
    ("VERIFIED", lambda domain: format_timestamp(domain.verified_at)),
    ("LAST CHECKED", lambda domain: format_timestamp(domain.last_checked_at)),
]


def _domains(settings: TenantKitSettings, nameservers: tuple[str, ...] = (), port: int = 53) -> DomainService:
    resolver = DnsPythonResolver(list(nameservers), port=port) if nameservers else None
    return TenantKit.from_settings(settings, dns_resolver=resolver).domains


@main.group()
def domains() -> None:
    """Claim, verify (DNS TXT), list and remove organizations' email domains."""


@domains.command("add")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("domain")
@click.option(
    "--manual", is_flag=True, help="Claim it for the host to confirm (domains confirm), without DNS."
)
@handle_errors
def add(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, domain: str, manual: bool
) -> None:
    """Claim DOMAIN for ORGANIZATION; prints the TXT record to publish, this once."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        added = _domains(settings).add(
            session,
            organization,
            domain,
            actor=_actor(acting_user),
            strategy="manual" if manual else "dns_txt",
        )
    value = None if added.record_value is None else added.record_value.get_secret_value()
    if as_json:
        emit(
            {"domain": added.domain, "record_name": added.record_name, "record_value": value},
            True,
            lambda: None,
        )
        return
    click.echo(f"claimed {added.domain.domain} for {organization} (pending)", err=True)
    if value is None:
        click.echo("the host confirms it: tenantkit domains confirm", err=True)
        return
    click.echo(
        "Publish this TXT record, then run `tenantkit domains verify`; it is shown this once.", err=True
    )
    click.echo(f"{added.record_name}. TXT {value}")


@domains.command("verify")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("domain")
@click.option(
    "--nameserver",
    "nameservers",
    multiple=True,
    metavar="IP",
    help="Ask this nameserver (repeatable; default: the system's).",
)
@click.option("--dns-port", type=click.IntRange(1, 65535), default=53, show_default=True)
@handle_errors
def verify(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    domain: str,
    nameservers: tuple[str, ...],
    dns_port: int,
) -> None:
    """Look up DOMAIN's TXT record and mark it verified for ORGANIZATION when it carries the token."""
    settings = load_settings()
    service = _domains(settings, nameservers, dns_port)
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        verified = service.verify(session, organization, domain, actor=_actor(acting_user))
    emit(verified, as_json, lambda: click.echo(f"verified {verified.domain} for {organization}"))


@domains.command("confirm")
@url_option
@json_option
@click.argument("organization")
@click.argument("domain")
@handle_errors
def confirm(url: str | None, as_json: bool, organization: str, domain: str) -> None:
    """Mark DOMAIN verified for ORGANIZATION on the host's word (a domain added with --manual)."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        confirmed = _domains(settings).confirm(session, organization, domain, actor=_actor(None))
    emit(confirmed, as_json, lambda: click.echo(f"confirmed {confirmed.domain} for {organization}"))


@domains.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@handle_errors
def list_(url: str | None, as_json: bool, acting_user: str | None, organization: str) -> None:
    """List the domains ORGANIZATION claims and where each verification stands."""
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        found = _domains(settings).list_domains(session, organization, actor=_actor(acting_user))
    emit(
        found,
        as_json,
        lambda: echo_table(
            [header for header, _ in DOMAIN_COLUMNS],
            [[cell(item) for _, cell in DOMAIN_COLUMNS] for item in found],
        ),
    )


@domains.command("remove")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("domain")
@handle_errors
def remove(url: str | None, as_json: bool, acting_user: str | None, organization: str, domain: str) -> None:
    """Give up DOMAIN of ORGANIZATION; SSO logins and auto-joins of its addresses are refused from now on."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        removed = _domains(settings).remove(session, organization, domain, actor=_actor(acting_user))
    emit(removed, as_json, lambda: click.echo(f"removed {removed.domain} from {organization}"))
