"""Verified domains: DNS TXT verification against a real DNS server on 127.0.0.1, one organization per
verified domain (raced on PostgreSQL and MariaDB), public domains refused, pending expiry, re-check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, Role
from tenantkit.domains import DnsPythonResolver, DomainService
from tenantkit.errors import (
    ConcurrentUpdateError,
    DnsLookupError,
    DomainExistsError,
    DomainTakenError,
    DomainVerificationExpiredError,
    DomainVerificationFailedError,
    PermissionDeniedError,
    PublicEmailDomainError,
)
from tenantkit.events import DomainFailed
from tenantkit.members import MembershipService
from tenantkit.tables import organization_domains
from tenantkit.testing import FrozenClock
from tests.dns_txt_server import SilentDnsServer, TxtDnsServer

ORG, OTHER = "org_1", "org_2"


@pytest.fixture
def dns() -> Iterator[TxtDnsServer]:
    """A real DNS server on 127.0.0.1 that the test tells what to answer."""
    with TxtDnsServer() as server:
        yield server


@pytest.fixture
def membership(clock: FrozenClock) -> MembershipService:
    """A membership service on the frozen clock."""
    return MembershipService(clock=clock)


@pytest.fixture
def domains(membership: MembershipService, dns: TxtDnsServer) -> DomainService:
    """A domain service whose resolver asks the loopback DNS server."""
    return DomainService(membership=membership, resolver=DnsPythonResolver(["127.0.0.1"], port=dns.port))


def owners(engine: sa.Engine, membership: MembershipService) -> None:
    with tenantkit.transaction(engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        membership.add(session, OTHER, "olga", Role.OWNER, actor=HOST)


def claim(engine: sa.Engine, domains: DomainService, org: str, domain: str, actor: str) -> str:
    """Claim ``domain`` and return the TXT value to publish."""
    with tenantkit.transaction(engine) as session:
        added = domains.add(session, org, domain, actor=actor)
    assert added.record_value is not None
    return added.record_value.get_secret_value()


def test_the_right_token_verifies_and_the_token_is_stored_only_as_a_digest(
    engine: sa.Engine, membership: MembershipService, domains: DomainService, dns: TxtDnsServer
) -> None:
    """The record named at add time with the value shown once verifies the domain; only a digest is kept."""
    owners(engine, membership)
    value = claim(engine, domains, ORG, "Example.COM.", "alice")
    token = value.removeprefix("tenantkit-domain-verification=")
    dns.txt("_tenantkit-verification.example.com", "v=spf1 -all", value)
    with tenantkit.transaction(engine) as session:
        verified = domains.verify(session, ORG, "example.com", actor="alice")
    assert (verified.domain, verified.status, verified.verified_at) == (
        "example.com",
        "verified",
        clock_now(),
    )
    with engine.connect() as connection:
        stored = connection.execute(sa.select(organization_domains)).one()
    assert token not in repr(tuple(stored))
    assert stored.verified_domain == "example.com"
    assert "tenantkit-domain-verification" not in repr(verified)


def clock_now() -> object:
    from datetime import datetime, timezone

    return datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("publish", "reason"),
    [
        pytest.param(
            {"_tenantkit-verification.example.com": ["tenantkit-domain-verification=nope"]},
            "token_mismatch",
            id="wrong-token",
        ),
        pytest.param({"_tenantkit-verification.example.com": ["v=spf1 -all"]}, "no_record", id="no-record"),
        pytest.param({"example.com": ["{value}"]}, "no_record", id="record-on-another-name"),
        pytest.param(
            {"_tenantkit-verification.example.com": ["{other}"]},
            "token_mismatch",
            id="other-organizations-token",
        ),
    ],
)
def test_a_record_that_does_not_prove_the_claim_fails_and_changes_nothing(
    sqlite_engine: sa.Engine,
    membership: MembershipService,
    domains: DomainService,
    dns: TxtDnsServer,
    publish: dict[str, list[str]],
    reason: str,
) -> None:
    """A wrong token, no record, the record on another name, or another organization's token (its claim of
    the same domain) is a typed refusal with its reason; the domain stays pending."""
    owners(sqlite_engine, membership)
    value = claim(sqlite_engine, domains, ORG, "example.com", "alice")
    other = claim(sqlite_engine, domains, OTHER, "example.com", "olga")
    for name, values in publish.items():
        dns.txt(name, *(v.format(value=value, other=other) for v in values))
    with (
        tenantkit.transaction(sqlite_engine) as session,
        pytest.raises(DomainVerificationFailedError) as raised,
    ):
        domains.verify(session, ORG, "example.com", actor="alice")
    assert raised.value.reason == reason
    with tenantkit.transaction(sqlite_engine) as session:
        assert domains.get(session, ORG, "example.com", actor="alice").status == "pending"


def test_nxdomain_and_a_timeout_are_typed_errors(
    sqlite_engine: sa.Engine, membership: MembershipService, domains: DomainService, dns: TxtDnsServer
) -> None:
    """NXDOMAIN is a failed verification (``nxdomain``); a server that never answers is a DnsLookupError."""
    owners(sqlite_engine, membership)
    claim(sqlite_engine, domains, ORG, "example.com", "alice")
    dns.mark_nxdomain("_tenantkit-verification.example.com")
    with (
        tenantkit.transaction(sqlite_engine) as session,
        pytest.raises(DomainVerificationFailedError) as raised,
    ):
        domains.verify(session, ORG, "example.com", actor="alice")
    assert raised.value.reason == "nxdomain"
    with SilentDnsServer() as silent:
        slow = DomainService(
            membership=membership, resolver=DnsPythonResolver(["127.0.0.1"], port=silent.port, timeout=0.3)
        )
        with tenantkit.transaction(sqlite_engine) as session, pytest.raises(DnsLookupError) as lookup:
            slow.verify(session, ORG, "example.com", actor="alice")
    assert lookup.value.reason == "timeout"
    assert lookup.value.to_dict()["code"] == "dns_lookup_failed"


def test_public_mailbox_domains_and_members_are_refused(
    sqlite_engine: sa.Engine, membership: MembershipService, domains: DomainService
) -> None:
    """gmail.com cannot be claimed; a MEMBER may not manage domains; a domain is claimed once per org."""
    owners(sqlite_engine, membership)
    with tenantkit.transaction(sqlite_engine) as session:
        membership.add(session, ORG, "mia", actor="alice")
        with pytest.raises(PublicEmailDomainError):
            domains.add(session, ORG, "GMail.com", actor="alice")
        with pytest.raises(PermissionDeniedError):
            domains.add(session, ORG, "example.com", actor="mia")
        domains.add(session, ORG, "example.com", actor="alice")
        with pytest.raises(DomainExistsError):
            domains.add(session, ORG, "EXAMPLE.com", actor="alice")


def test_a_domain_verified_elsewhere_is_taken(
    engine: sa.Engine, membership: MembershipService, domains: DomainService, dns: TxtDnsServer
) -> None:
    """Once org_1 verified example.com, org_2 may neither claim nor verify it."""
    owners(engine, membership)
    value = claim(engine, domains, ORG, "example.com", "alice")
    other = claim(engine, domains, OTHER, "example.com", "olga")
    dns.txt("_tenantkit-verification.example.com", value, other)
    with tenantkit.transaction(engine) as session:
        domains.verify(session, ORG, "example.com", actor="alice")
    with tenantkit.transaction(engine) as session, pytest.raises(DomainTakenError):
        domains.verify(session, OTHER, "example.com", actor="olga")
    with tenantkit.transaction(engine) as session:
        domains.remove(session, OTHER, "example.com", actor="olga")
        with pytest.raises(DomainTakenError):
            domains.add(session, OTHER, "example.com", actor="olga")


@pytest.mark.concurrency
def test_two_organizations_racing_to_verify_leave_exactly_one_verified(
    server_engine: sa.Engine, membership: MembershipService, domains: DomainService, dns: TxtDnsServer
) -> None:
    """Both records are published; both verify at once; one wins, the other gets a typed conflict."""
    owners(server_engine, membership)
    values = [
        claim(server_engine, domains, org, "race.example", who)
        for org, who in ((ORG, "alice"), (OTHER, "olga"))
    ]
    dns.txt("_tenantkit-verification.race.example", *values)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def verify(org: str, who: str) -> None:
        try:
            with tenantkit.transaction(server_engine) as session:
                domains.get(session, org, "race.example", actor=who)
                barrier.wait(timeout=10)
                domains.verify(session, org, "race.example", actor=who)
            outcomes[org] = "verified"
        except (DomainTakenError, ConcurrentUpdateError) as error:
            outcomes[org] = type(error).__name__

    threads = [threading.Thread(target=verify, args=args) for args in ((ORG, "alice"), (OTHER, "olga"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(map(str, outcomes.values())).count("verified") == 1, outcomes
    with server_engine.connect() as connection:
        verified = (
            connection.execute(
                sa.select(organization_domains.c.organization_id).where(
                    organization_domains.c.status == "verified"
                )
            )
            .scalars()
            .all()
        )
    assert len(verified) == 1


def test_pending_domains_expire_and_a_recheck_downgrades_a_vanished_record(
    engine: sa.Engine,
    clock: FrozenClock,
    membership: MembershipService,
    domains: DomainService,
    dns: TxtDnsServer,
) -> None:
    """Past 30 days a pending domain cannot be verified and expire_pending fails it (audited as the system);
    a verified domain whose record disappeared is downgraded by a re-check, recorded as DomainFailed."""
    failed: list[DomainFailed] = []
    membership.events.subscribe(failed.append, DomainFailed)
    owners(engine, membership)
    stale = claim(engine, domains, ORG, "stale.example", "alice")
    value = claim(engine, domains, ORG, "example.com", "alice")
    dns.txt("_tenantkit-verification.example.com", value)
    dns.txt("_tenantkit-verification.stale.example", stale)
    with tenantkit.transaction(engine) as session:
        domains.verify(session, ORG, "example.com", actor="alice")
    clock.advance(timedelta(days=30))
    with tenantkit.transaction(engine) as session, pytest.raises(DomainVerificationExpiredError):
        domains.verify(session, ORG, "stale.example", actor="alice")
    with tenantkit.transaction(engine) as session:
        assert domains.expire_pending(session) == 1
        assert domains.recheck(session, ORG, "example.com").outcome == "verified"
    dns.txt("_tenantkit-verification.example.com")
    with tenantkit.transaction(engine) as session:
        result = domains.recheck(session, ORG, "example.com")
    assert (result.outcome, result.domain.status) == ("downgraded", "failed")
    assert [(event.domain, event.reason, event.was_verified, str(event.actor)) for event in failed] == [
        ("stale.example", "expired", False, "system:domains.expiry"),
        ("example.com", "no_record", True, "system:domains.recheck"),
    ]
    with engine.connect() as connection:
        held = connection.execute(sa.select(organization_domains.c.verified_domain)).scalars().all()
    assert held == [None, None]
