"""Verified domains strengthen invitations: links held to the organization's verified domains, and auto-join.

Both are organization settings, off by default: ``link_invitations_verified_domains_only`` (tighten-only:
links may allow only verified domains, and are accepted only while the accepting address's domain is still
verified) and ``auto_join`` (the organization's opt-in: a user with a verified email of a verified domain
may join with the default role, or be offered to, through ``kit.domains.joinable``).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tenantkit import HOST, InvitationSettings, Role, TenantKit
from tenantkit.errors import AutoJoinRefusedError, DomainNotAllowedError, PolicyLimitError
from tenantkit.testing import FrozenClock

ORG, OTHER = "org_1", "org_2"


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    """A kit with invitations on, on the frozen clock."""
    return TenantKit(
        invitations=InvitationSettings(secret_keys=["auto-join-invitation-secret-0001"]), clock=clock
    )


def seed(kit: TenantKit, engine: sa.Engine, **settings: object) -> None:
    """org_1 (alice OWNER) holds example.com verified and claims pending.example.com; org_2 (olga OWNER)
    holds other.com verified. ``settings`` go into org_1's settings document."""
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, OTHER, "olga", Role.OWNER, actor=HOST)
        for organization, domain in ((ORG, "example.com"), (OTHER, "other.com")):
            kit.domains.add(session, organization, domain, actor=HOST, strategy="manual")
            kit.domains.confirm(session, organization, domain, actor=HOST)
        kit.domains.add(session, ORG, "pending.example.com", actor=HOST)
        if settings:
            kit.organizations.update_settings(session, ORG, settings, expected_version=0, actor=HOST)


class TestAutoJoin:
    def test_off_by_default(self, kit: TenantKit, engine: sa.Engine) -> None:
        """An organization that chose nothing lets no one join by domain, and is offered to no one."""
        seed(kit, engine)
        with kit.transaction(engine) as session:
            with pytest.raises(AutoJoinRefusedError) as refused:
                kit.domains.auto_join(
                    session, ORG, user_id="dave", email="dave@example.com", email_verified=True
                )
            assert refused.value.reason == "auto_join_off"
            assert kit.domains.joinable(session, email="dave@example.com", email_verified=True) == []
            assert kit.members.get_role(session, ORG, "dave") is None

    def test_a_verified_email_of_a_verified_domain_joins_with_the_default_role(
        self, kit: TenantKit, engine: sa.Engine
    ) -> None:
        """With ``auto_join`` on, dave@EXAMPLE.com (verified) joins as MEMBER, audited as dave himself;
        joining again changes nothing, and a role given since stands."""
        seed(kit, engine, auto_join=True)
        with kit.transaction(engine) as session:
            assert kit.domains.joinable(session, email="dave@EXAMPLE.com", email_verified=True) == [ORG]
            joined = kit.domains.auto_join(
                session, ORG, user_id="dave", email="dave@EXAMPLE.com", email_verified=True
            )
        assert (joined.created, joined.member.role) == (True, Role.MEMBER)
        with kit.transaction(engine) as session:
            kit.members.change_role(session, ORG, "dave", Role.ADMIN, actor="alice")
            again = kit.domains.auto_join(
                session, ORG, user_id="dave", email="dave@example.com", email_verified=True
            )
            (added,) = kit.audit.list_events(session, ORG, actor=HOST, event_types=["member.added"]).items[:1]
        assert (again.created, again.member.role) == (False, Role.ADMIN)
        assert added.data["user_id"] == "dave"
        assert (added.actor.kind, added.actor.id) == ("user", "dave")

    @pytest.mark.parametrize(
        ("email", "verified", "reason"),
        [
            pytest.param("dave@example.com", False, "email_unverified", id="unverified-email"),
            pytest.param("dave@pending.example.com", True, "domain_not_verified", id="pending-domain"),
            pytest.param("dave@eu.example.com", True, "domain_not_verified", id="subdomain"),
            pytest.param("dave@other.com", True, "domain_not_verified", id="other-organizations-domain"),
            pytest.param("dave@example.com.evil.io", True, "domain_not_verified", id="lookalike"),
        ],
    )
    def test_only_verified_emails_of_its_verified_domains_join(
        self, kit: TenantKit, sqlite_engine: sa.Engine, email: str, verified: bool, reason: str
    ) -> None:
        """Every other email is refused with its reason, no membership written, and offered nothing."""
        seed(kit, sqlite_engine, auto_join=True)
        with kit.transaction(sqlite_engine) as session:
            with pytest.raises(AutoJoinRefusedError) as refused:
                kit.domains.auto_join(session, ORG, user_id="dave", email=email, email_verified=verified)
            assert refused.value.reason == reason
            assert ORG not in kit.domains.joinable(session, email=email, email_verified=verified)
            assert kit.members.get_role(session, ORG, "dave") is None

    def test_a_removed_domain_no_longer_lets_anyone_join(
        self, kit: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """Auto-join asks whether the domain is verified now, not when the setting was turned on."""
        seed(kit, sqlite_engine, auto_join=True)
        with kit.transaction(sqlite_engine) as session:
            kit.domains.remove(session, ORG, "example.com", actor="alice")
        with kit.transaction(sqlite_engine) as session, pytest.raises(AutoJoinRefusedError):
            kit.domains.auto_join(session, ORG, user_id="dave", email="dave@example.com", email_verified=True)


class TestLinksHeldToVerifiedDomains:
    def test_without_the_setting_any_domain_may_be_allowed(
        self, kit: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """By default a link may allow a domain the organization never verified (as before)."""
        seed(kit, sqlite_engine)
        with kit.transaction(sqlite_engine) as session:
            created = kit.invitations.create_link_invitation(session, ORG, ["unclaimed.io"], actor="alice")
        assert created.invitation.allowed_domains == ("unclaimed.io",)

    def test_with_it_only_verified_domains_may_be_allowed(self, kit: TenantKit, engine: sa.Engine) -> None:
        """An unverified, pending, wildcard or other organization's domain is refused, naming the setting."""
        seed(kit, engine, link_invitations_verified_domains_only=True)
        for domains in (["unclaimed.io"], ["pending.example.com"], ["*.example.com"], ["other.com"]):
            with kit.transaction(engine) as session, pytest.raises(PolicyLimitError) as refused:
                kit.invitations.create_link_invitation(session, ORG, ["example.com", *domains], actor="alice")
            assert refused.value.setting == "link_invitations_verified_domains_only"
        with kit.transaction(engine) as session:
            created = kit.invitations.create_link_invitation(session, ORG, ["Example.COM"], actor="alice")
            accepted = kit.invitations.accept(
                session,
                created.token.get_secret_value(),
                user_id="dave",
                email="dave@example.com",
                email_verified=True,
            )
        assert (accepted.role, accepted.already_member) == (Role.MEMBER, False)

    def test_a_link_stops_admitting_a_domain_that_lost_its_verification(
        self, kit: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """Accepting checks the domain again: removed since the link was made, the address is refused."""
        seed(kit, sqlite_engine, link_invitations_verified_domains_only=True)
        with kit.transaction(sqlite_engine) as session:
            token = kit.invitations.create_link_invitation(session, ORG, ["example.com"], actor="alice").token
            kit.domains.remove(session, ORG, "example.com", actor="alice")
        with kit.transaction(sqlite_engine) as session, pytest.raises(DomainNotAllowedError):
            kit.invitations.accept(
                session,
                token.get_secret_value(),
                user_id="dave",
                email="dave@example.com",
                email_verified=True,
            )

    def test_both_settings_reach_the_policy(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Both are in org_1's policy, as it chose them; org_2, which chose nothing, has both off."""
        seed(kit, sqlite_engine, link_invitations_verified_domains_only=True, auto_join=True)
        with kit.transaction(sqlite_engine) as session:
            policy = kit.organizations.policy(session, ORG)
            assert (policy.link_verified_domains_only, policy.auto_join) == (True, True)
            other = kit.organizations.policy(session, OTHER)
            assert (other.link_verified_domains_only, other.auto_join) == (False, False)
