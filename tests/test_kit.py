"""``TenantKit``: the three services configured once, sharing clock, permissions and events."""

from __future__ import annotations

from datetime import timedelta

import argon2
import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import (
    HOST,
    ApiKeySettings,
    AuditSettings,
    DatabaseSettings,
    HttpSettings,
    InvitationSettings,
    OrganizationDefaults,
    Permissions,
    Role,
    TenantKit,
    TenantKitSettings,
)
from tenantkit.errors import ConfigurationError
from tenantkit.events import ApiKeyIssued, InvitationAccepted, MemberAdded
from tenantkit.testing import EventRecorder, FrozenClock

SECRET = "a-test-signing-key-0123456789"
INVITATIONS = InvitationSettings(secret_keys=[SECRET])


class TestConstruction:
    def test_services_share_clock_permissions_and_events(self, clock: FrozenClock) -> None:
        """Every service reads the kit's clock, checks its permission table and records on its bus."""
        permissions = Permissions().with_actions("reports:export", Role.ADMIN)
        kit = TenantKit(invitations=INVITATIONS, clock=clock, permissions=permissions)
        assert kit.clock is clock
        assert kit.permissions is permissions
        assert kit.api_keys.membership is kit.members
        assert kit.invitations.membership is kit.members
        assert kit.api_keys.events is kit.events is kit.invitations.events is kit.members.events
        assert kit.api_keys.clock is clock
        assert kit.invitations.clock is clock

    def test_invitations_need_signing_keys(self) -> None:
        """Without signing keys the kit still serves members and keys, and says what invitations need."""
        for kit in (TenantKit(), TenantKit(invitations=InvitationSettings(secret_keys=[]))):
            assert kit.api_keys.membership is kit.members
            with pytest.raises(ConfigurationError, match=r"InvitationSettings\(secret_keys="):
                _ = kit.invitations

    def test_options_reach_the_services(self) -> None:
        """Each settings object configures the service of its feature, every option included."""
        kit = TenantKit(
            api_keys=ApiKeySettings(
                prefix="tk_test_",
                hasher="argon2id",
                argon2_profile="CHEAPEST",
                cache_ttl=timedelta(seconds=5),
                cache_size=7,
                track_last_used=False,
                rotation_grace=timedelta(minutes=3),
            ),
            invitations=InvitationSettings(
                secret_keys=[SECRET],
                default_ttl=timedelta(days=2),
                accept_url_template="https://app.example/invite?t={token}",
            ),
            database=DatabaseSettings(schema_name="tenants"),
        )
        assert kit.api_keys.format.prefix == "tk_test_"
        assert kit.api_keys.hasher == "argon2id"
        assert kit.api_keys.cache_ttl == timedelta(seconds=5)
        assert not kit.api_keys.track_last_used
        assert kit.api_keys.rotation_grace == timedelta(minutes=3)
        assert kit.invitations.default_ttl == timedelta(days=2)
        assert kit.invitations.accept_url_template == "https://app.example/invite?t={token}"
        assert kit.members.schema == "tenants"

    def test_the_kit_keeps_the_settings_it_was_built_from(self) -> None:
        """kit.settings holds every section, the defaults of those left out included."""
        api_keys = ApiKeySettings(prefix="tk_test_")
        kit = TenantKit(api_keys=api_keys)
        assert kit.settings == TenantKitSettings(api_keys=api_keys)
        assert not kit.settings.invitations.enabled

    def test_from_settings_passes_every_section(self) -> None:
        """TenantKit.from_settings(s) builds the kit TenantKit(api_keys=s.api_keys, ...) would."""
        settings = TenantKitSettings(
            api_keys=ApiKeySettings(prefix="tk_test_"),
            invitations=INVITATIONS,
            database=DatabaseSettings(schema_name="tenants"),
            audit=AuditSettings(chain=True, retention="365d"),
            http=HttpSettings(trusted_proxies=["10.0.0.0/8"]),
            organizations=OrganizationDefaults(api_key_max_lifetime="90d"),
        )
        kit = TenantKit.from_settings(settings)
        assert kit.settings == settings
        assert kit.audit.chain
        assert kit.organizations.deployment_policy.api_key_max_lifetime == timedelta(days=90)
        assert set(TenantKitSettings.model_fields) == {
            "api_keys",
            "invitations",
            "database",
            "audit",
            "http",
            "organizations",
            "bus",
            "webhooks",
        }

    def test_custom_argon2_parameters_reach_the_hasher(self, sqlite_engine: sa.Engine) -> None:
        """argon2_profile also takes argon2-cffi Parameters of the host's own; issued keys are hashed so."""
        parameters = argon2.Parameters(
            type=argon2.Type.ID,
            version=19,
            salt_len=16,
            hash_len=16,
            time_cost=2,
            memory_cost=16,
            parallelism=1,
        )
        kit = TenantKit(api_keys=ApiKeySettings(hasher="argon2id", argon2_profile=parameters))
        with kit.transaction(sqlite_engine) as session:
            kit.members.add(session, "org", "alice", Role.OWNER, actor=HOST)
            kit.api_keys.issue(session, "org", "ci", actor="alice")
        with sqlite_engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT hashed_key FROM api_keys").scalar_one()
        assert argon2.extract_parameters(stored[stored.index("$argon2id$") :]) == parameters

    def test_bad_options_are_configuration_errors(self) -> None:
        """An inconsistent option fails when its settings object is built, not later in a request."""
        with pytest.raises(ConfigurationError):
            InvitationSettings(secret_keys=[SECRET], accept_url_template="https://no-token")
        with pytest.raises(ConfigurationError):
            ApiKeySettings(hasher="hmac-sha256")

    def test_repr_shows_no_secret(self) -> None:
        """The kit's repr names its settings but never a signing key or pepper."""
        kit = TenantKit(
            api_keys=ApiKeySettings(peppers={"v1": "a-pepper-of-16-bytes-or-more"}), invitations=INVITATIONS
        )
        assert SECRET not in repr(kit)
        assert "a-pepper" not in repr(kit)
        assert SECRET not in repr(kit.settings)


class TestOneBus:
    def test_one_subscription_hears_every_service(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """A listener subscribed on the kit hears membership, key and invitation events, after commit."""
        kit = TenantKit(invitations=INVITATIONS, clock=clock)
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
