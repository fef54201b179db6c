"""Every domain and SSO change, once, for the tests that enumerate every event type."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tenantkit import Actor
from tenantkit.domains import DomainService, TxtAnswer
from tenantkit.members import MembershipService
from tenantkit.sso import SsoService

DOMAIN_AND_SSO_EVENTS = [
    "domain.added",
    "domain.verified",
    "domain.failed",
    "domain.removed",
    "sso.connection_created",
    "sso.connection_updated",
    "sso.connection_deleted",
]
"""The event types :func:`every_domain_and_sso_change` records, in order."""


class ScriptedResolver:
    """A TXT resolver answering from a dict (the DNS tests use a real server; these only need events)."""

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}

    def txt(self, name: str) -> TxtAnswer:
        return TxtAnswer(exists=True, values=tuple(self.values.get(name, ())))


def every_domain_and_sso_change(
    session: Session, membership: MembershipService, organization_id: str, actor: Actor | str
) -> str:
    """Claim, verify, re-check away (the system's downgrade), remove a domain; create, update, delete an SSO
    connection. Returns the TXT value shown once (a secret no payload may hold)."""
    resolver = ScriptedResolver()
    domains = DomainService(membership=membership, resolver=resolver)
    sso = SsoService(membership=membership, domains=domains)
    added = domains.add(session, organization_id, "example.org", actor=actor)
    assert added.record_name is not None
    assert added.record_value is not None
    resolver.values[added.record_name] = [added.record_value.get_secret_value()]
    domains.verify(session, organization_id, "example.org", actor=actor)
    resolver.values.clear()
    domains.recheck(session, organization_id, "example.org")
    domains.remove(session, organization_id, "example.org", actor=actor)
    connection = sso.create_connection(
        session,
        organization_id,
        provider="polis",
        protocol="saml",
        provider_connection_id="polis-1",
        name="Okta",
        actor=actor,
    )
    sso.update_connection(session, organization_id, connection.id, actor=actor, enabled=False)
    sso.delete_connection(session, organization_id, connection.id, actor=actor)
    return added.record_value.get_secret_value()
