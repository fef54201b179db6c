"""``TenantKit``: the three services configured once, sharing clock, permissions and events."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, ApiKeyService, InvitationService, MembershipService, Permissions, Role, TenantKit
from tenantkit.errors import ConfigurationError
from tenantkit.events import ApiKeyIssued, EventDispatcher, InvitationAccepted, MemberAdded
from tenantkit.testing import EventRecorder, FrozenClock

SECRET = "a-test-signing-key-0123456789"


class TestConstruction:
    def test_services_share_clock_permissions_and_events(self, clock: FrozenClock) -> None:
        """Every service reads the kit's clock, checks its permission table and records on its bus."""
        permissions = Permissions().with_actions("reports:export", Role.ADMIN)
        kit = TenantKit(invitation_secret_keys=[SECRET], clock=clock, permissions=permissions)
        assert kit.clock is clock
        assert kit.permissions is permissions
        assert kit.api_keys.membership is kit.members
        assert kit.invitations.membership is kit.members
        assert kit.api_keys.events is kit.events is kit.invitations.events is kit.members.events
        assert kit.api_keys.clock is clock
        assert kit.invitations.clock is clock

    def test_invitations_need_signing_keys(self) -> None:
        """Without signing keys the kit still serves members and keys, and says what invitations need."""
        kit = TenantKit()
        assert kit.api_keys.membership is kit.members
        with pytest.raises(ConfigurationError, match="invitation_secret_keys"):
            _ = kit.invitations

    def test_options_reach_the_services(self) -> None:
        """Options given to the kit configure the services it builds."""
        kit = TenantKit(
            invitation_secret_keys=[SECRET],
            api_key_prefix="tk_test_",
            api_key_cache_ttl=timedelta(seconds=5),
            api_key_rotation_grace=timedelta(minutes=3),
            invitation_default_ttl=timedelta(days=2),
            invitation_accept_url_template="https://app.example/invite?t={token}",
        )
        assert kit.api_keys.format.prefix == "tk_test_"
        assert kit.api_keys.cache_ttl == timedelta(seconds=5)
        assert kit.api_keys.rotation_grace == timedelta(minutes=3)
        assert kit.invitations.default_ttl == timedelta(days=2)
        assert kit.invitations.accept_url_template == "https://app.example/invite?t={token}"

    def test_bad_options_are_configuration_errors(self) -> None:
        """An inconsistent option fails at construction with ConfigurationError, not later in a request."""
        with pytest.raises(ConfigurationError):
            TenantKit(invitation_secret_keys=[])
        with pytest.raises(ConfigurationError):
            TenantKit(invitation_secret_keys=[SECRET], invitation_accept_url_template="https://no-token")

    def test_from_services_requires_one_membership_and_one_bus(self) -> None:
        """Hand-built services are accepted only if they share the membership service and its dispatcher."""
        members = MembershipService()
        keys = ApiKeyService(membership=members)
        invitations = InvitationService(membership=members, secret_keys=[SECRET])
        kit = TenantKit.from_services(members, keys, invitations)
        assert kit.invitations is invitations
        stranger = MembershipService()
        with pytest.raises(ConfigurationError, match="membership"):
            TenantKit.from_services(members, ApiKeyService(membership=stranger))
        with pytest.raises(ConfigurationError, match="dispatcher"):
            TenantKit.from_services(members, ApiKeyService(membership=members, events=EventDispatcher()))

    def test_repr_shows_no_secret(self) -> None:
        """The kit's repr names its settings but never a signing key or pepper."""
        kit = TenantKit(
            invitation_secret_keys=[SECRET], api_key_peppers={"v1": "a-pepper-of-16-bytes-or-more"}
        )
        assert SECRET not in repr(kit)
        assert "a-pepper" not in repr(kit)


class TestOneBus:
    def test_one_subscription_hears_every_service(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """A listener subscribed on the kit hears membership, key and invitation events, after commit."""
        kit = TenantKit(invitation_secret_keys=[SECRET], clock=clock)
        recorder = EventRecorder()
        unsubscribe = kit.subscribe(recorder)
        with kit.transaction(engine) as session:
            kit.members.add(session, "org", "alice", Role.OWNER, actor=HOST)
            kit.api_keys.issue(session, "org", "ci", actor="alice")
            created = kit.invitations.create_email_invitation(
                session, "org", "bob@example.com", actor="alice"
            )
            assert recorder.events == []
        with kit.transaction(engine) as session:
            kit.invitations.accept(
                session,
                created.token.get_secret_value(),
                user_id="bob",
                email="bob@example.com",
                email_verified=True,
            )
        kinds = [type(event) for event in recorder.events]
        assert kinds.count(MemberAdded) == 2
        assert ApiKeyIssued in kinds
        assert InvitationAccepted in kinds
        unsubscribe()
        with kit.transaction(engine) as session:
            kit.members.add(session, "org", "carol", actor="alice")
        assert len(recorder.events) == len(kinds)

    def test_transaction_rolls_back_on_error(self, sqlite_engine: sa.Engine) -> None:
        """``kit.transaction`` commits on success and leaves nothing behind when the block raises."""
        kit = TenantKit()

        def add_then_fail() -> None:
            with kit.transaction(sqlite_engine) as session:
                kit.members.add(session, "org", "alice", Role.OWNER, actor=HOST)
                kit.members.leave(session, "org", actor="alice")

        with pytest.raises(tenantkit.errors.LastOwnerError):
            add_then_fail()
        with kit.transaction(sqlite_engine) as session:
            assert kit.members.get_role(session, "org", "alice") is None
