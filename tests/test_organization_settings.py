"""Organization settings: a host-typed document per organization, versioned, permission-checked, audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tenantkit import (
    HOST,
    InvitationSettings,
    OrganizationDefaults,
    PermissionDeniedError,
    Role,
    SettingsDocument,
    TenantKit,
)
from tenantkit.errors import InvalidInputError, PolicyLimitError, SettingsVersionConflictError
from tenantkit.events import OrganizationSettingsChanged
from tenantkit.tables import organization_settings
from tenantkit.testing import FrozenClock

ORG = "org_1"
SECRET = "an-invitation-signing-key-of-some-length"


class ClinicSettings(SettingsDocument):
    """A host's settings model: tenantkit's fields and the product's own."""

    appointment_reminders: bool = True
    timezone: str = "UTC"
    webhook_secret: str | None = None
    notes: str = ""


def make_kit(clock: FrozenClock, **defaults: object) -> TenantKit:
    return TenantKit(
        organizations=OrganizationDefaults(document=ClinicSettings, **defaults),  # type: ignore[arg-type]
        invitations=InvitationSettings(secret_keys=[SECRET]),
        clock=clock,
    )


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return make_kit(clock)


@pytest.fixture
def seeded(engine: sa.Engine, kit: TenantKit) -> sa.Engine:
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "olivia", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "adam", Role.ADMIN, actor=HOST)
        kit.members.add(session, ORG, "mia", Role.MEMBER, actor=HOST)
    return engine


class TestReadingAndWriting:
    def test_nothing_stored_reads_the_defaults_at_version_zero(
        self, seeded: sa.Engine, kit: TenantKit
    ) -> None:
        """An organization that stored nothing has the model's defaults, at version 0, written by nobody."""
        with kit.transaction(seeded) as session:
            snapshot = kit.organizations.get_settings(session, ORG, actor="olivia")

        assert snapshot.version == 0
        assert isinstance(snapshot.document, ClinicSettings)
        assert snapshot.document.appointment_reminders is True
        assert snapshot.explicit_keys == ()
        assert snapshot.updated_at is None
        assert snapshot.updated_by is None

    def test_a_write_bumps_the_version_and_keeps_the_other_keys(
        self, seeded: sa.Engine, kit: TenantKit
    ) -> None:
        """Each write names the version it read, and changes only the keys it gives."""
        with kit.transaction(seeded) as session:
            first = kit.organizations.update_settings(
                session, ORG, {"timezone": "Europe/Paris"}, expected_version=0, actor="olivia"
            )
            second = kit.organizations.update_settings(
                session, ORG, {"appointment_reminders": False}, expected_version=1, actor="olivia"
            )

        assert (first.version, second.version) == (1, 2)
        assert isinstance(second.document, ClinicSettings)
        assert second.document.timezone == "Europe/Paris"
        assert second.document.appointment_reminders is False
        assert second.explicit_keys == ("appointment_reminders", "timezone")
        assert second.updated_by == "olivia"

    def test_unset_returns_a_key_to_its_default(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """``unset`` removes a key from the stored document, so the model's default applies again."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"timezone": "Asia/Tokyo"}, expected_version=0, actor=HOST
            )
            after = kit.organizations.update_settings(
                session, ORG, {}, expected_version=1, actor=HOST, unset=["timezone"]
            )

        assert isinstance(after.document, ClinicSettings)
        assert after.document.timezone == "UTC"
        assert after.explicit_keys == ()
        assert after.version == 2

    def test_a_write_that_changes_nothing_writes_nothing(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """Setting what is already set keeps the version and records no event."""
        heard: list[OrganizationSettingsChanged] = []
        kit.subscribe(heard.append, OrganizationSettingsChanged)
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"timezone": "UTC+1"}, expected_version=0, actor=HOST
            )
            same = kit.organizations.update_settings(
                session, ORG, {"timezone": "UTC+1"}, expected_version=1, actor=HOST
            )

        assert same.version == 1
        assert len(heard) == 1

    def test_a_stale_version_is_a_typed_conflict_and_changes_nothing(
        self, seeded: sa.Engine, kit: TenantKit
    ) -> None:
        """Writing against a version that is no longer current raises and leaves the stored document alone."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(session, ORG, {"timezone": "A"}, expected_version=0, actor=HOST)
        with pytest.raises(SettingsVersionConflictError) as raised, kit.transaction(seeded) as session:
            kit.organizations.update_settings(session, ORG, {"timezone": "B"}, expected_version=0, actor=HOST)

        assert (raised.value.expected_version, raised.value.current_version) == (0, 1)
        assert raised.value.to_dict()["code"] == "settings_version_conflict"
        with kit.transaction(seeded) as session:
            current = kit.organizations.get_settings(session, ORG, actor=HOST)
        assert isinstance(current.document, ClinicSettings)
        assert current.document.timezone == "A"

    def test_the_document_is_stored_as_json_of_the_explicit_keys(
        self, seeded: sa.Engine, kit: TenantKit
    ) -> None:
        """The row holds only what the organization set, durations in ISO 8601."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"invitation_max_ttl": "3d", "timezone": "X"}, expected_version=0, actor=HOST
            )
        with seeded.connect() as connection:
            row = connection.execute(sa.select(organization_settings)).one()

        assert row.document == {"invitation_max_ttl": "P3D", "timezone": "X"}
        assert row.version == 1


class TestValidation:
    def test_unknown_keys_are_refused(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """A key the host's model does not declare is bad input naming the key (typos are caught)."""
        with pytest.raises(InvalidInputError) as raised, kit.transaction(seeded) as session:
            kit.organizations.update_settings(session, ORG, {"timezon": "X"}, expected_version=0, actor=HOST)

        assert raised.value.field == "timezon"

    def test_values_are_validated_by_the_host_model(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """A value of the wrong type is refused with the key as its field."""
        with pytest.raises(InvalidInputError) as raised, kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"appointment_reminders": "sometimes"}, expected_version=0, actor=HOST
            )

        assert raised.value.field == "appointment_reminders"

    def test_the_serialized_size_is_capped(self, seeded: sa.Engine, clock: FrozenClock) -> None:
        """A document larger than ``max_document_bytes`` as JSON is refused before any write."""
        kit = make_kit(clock, max_document_bytes=1024)
        with pytest.raises(InvalidInputError) as raised, kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"notes": "x" * 2000}, expected_version=0, actor=HOST
            )

        assert raised.value.field == "settings"
        with seeded.connect() as connection:
            assert (
                connection.execute(sa.select(sa.func.count()).select_from(organization_settings)).scalar()
                == 0
            )

    def test_a_looser_value_than_the_ceiling_is_refused(self, seeded: sa.Engine, clock: FrozenClock) -> None:
        """An organization may not choose a longer API-key lifetime than the deployment's maximum."""
        kit = make_kit(clock, api_key_max_lifetime="30d")
        with pytest.raises(PolicyLimitError) as raised, kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"api_key_max_lifetime": "90d"}, expected_version=0, actor=HOST
            )

        assert raised.value.field == "api_key_max_lifetime"
        assert raised.value.to_dict()["code"] == "policy_limit"

    def test_a_negative_version_is_bad_input(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """``expected_version`` is a whole number, 0 or more."""
        with pytest.raises(InvalidInputError), kit.transaction(seeded) as session:
            kit.organizations.update_settings(session, ORG, {}, expected_version=-1, actor=HOST)


class TestPermissions:
    @pytest.mark.parametrize(("user", "allowed"), [("olivia", True), ("adam", True), ("mia", False)])
    def test_reading_needs_settings_read(
        self, seeded: sa.Engine, kit: TenantKit, user: str, allowed: bool
    ) -> None:
        """OWNER and ADMIN hold ``settings:read``; MEMBER does not."""
        with kit.transaction(seeded) as session:
            if allowed:
                kit.organizations.get_settings(session, ORG, actor=user)
            else:
                with pytest.raises(PermissionDeniedError):
                    kit.organizations.get_settings(session, ORG, actor=user)

    @pytest.mark.parametrize(
        ("user", "allowed"), [("olivia", True), ("adam", False), ("mia", False), ("eve", False)]
    )
    def test_writing_needs_settings_manage(
        self, seeded: sa.Engine, kit: TenantKit, user: str, allowed: bool
    ) -> None:
        """Only OWNER holds ``settings:manage`` by default; a non-member holds nothing."""
        with kit.transaction(seeded) as session:
            if allowed:
                kit.organizations.update_settings(
                    session, ORG, {"timezone": "X"}, expected_version=0, actor=user
                )
            else:
                with pytest.raises(PermissionDeniedError):
                    kit.organizations.update_settings(
                        session, ORG, {"timezone": "X"}, expected_version=0, actor=user
                    )


class TestAudit:
    def test_the_audit_row_names_the_changed_keys_never_the_values(
        self, seeded: sa.Engine, kit: TenantKit
    ) -> None:
        """``organization.settings_changed`` carries the new version and the keys; a secret stays out."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session,
                ORG,
                {"webhook_secret": "whsec_topsecret", "timezone": "X"},
                expected_version=0,
                actor="olivia",
            )
            page = kit.audit.list_events(
                session, ORG, actor=HOST, event_types=["organization.settings_changed"]
            )

        [event] = page.items
        assert event.data == {"settings_version": 1, "changed_keys": ["timezone", "webhook_secret"]}
        assert "whsec_topsecret" not in repr(event.model_dump())
        assert event.actor.id == "olivia"


class TestHonouredSettings:
    def test_the_default_role_and_invitation_lifetime_apply(
        self, seeded: sa.Engine, kit: TenantKit, clock: FrozenClock
    ) -> None:
        """An invitation naming no role or lifetime takes the organization's choices."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"invitation_default_ttl": "2d"}, expected_version=0, actor=HOST
            )
            created = kit.invitations.create_email_invitation(session, ORG, "new@example.com", actor="adam")

        assert created.invitation.role is Role.MEMBER
        assert created.invitation.expires_at == clock() + timedelta(days=2)

    def test_an_invitation_beyond_the_organization_maximum_is_refused(
        self, seeded: sa.Engine, kit: TenantKit
    ) -> None:
        """The organization's shorter maximum is a limit an inviter cannot pass."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"invitation_max_ttl": "1d"}, expected_version=0, actor=HOST
            )
            with pytest.raises(PolicyLimitError) as raised:
                kit.invitations.create_email_invitation(
                    session, ORG, "new@example.com", actor="adam", expires_in=timedelta(days=2)
                )

        assert raised.value.setting == "invitation_max_ttl"

    def test_link_domains_limit_link_invitations(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """A link may allow only the organization's link domains (or their subdomains under a wildcard)."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session,
                ORG,
                {"link_invitation_domains": ["*.clinic.example"]},
                expected_version=0,
                actor=HOST,
            )
            kit.invitations.create_link_invitation(session, ORG, ["north.clinic.example"], actor="adam")
            with pytest.raises(PolicyLimitError) as raised:
                kit.invitations.create_link_invitation(session, ORG, ["elsewhere.example"], actor="adam")

        assert raised.value.field == "allowed_domains"

    def test_keys_must_expire_within_the_lifetime(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """With a maximum lifetime, a key without expiry or beyond it is refused; one within it is issued."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"api_key_max_lifetime": "30d"}, expected_version=0, actor=HOST
            )
            kit.api_keys.issue(session, ORG, "ci", actor="adam", expires=timedelta(days=30))
            with pytest.raises(PolicyLimitError):
                kit.api_keys.issue(session, ORG, "forever", actor="adam")
            with pytest.raises(PolicyLimitError):
                kit.api_keys.issue(session, ORG, "long", actor="adam", expires=timedelta(days=31))

    def test_rotation_obeys_the_lifetime_too(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """A key issued before expiry was required cannot be rotated into another key that never expires."""
        with kit.transaction(seeded) as session:
            old = kit.api_keys.issue(session, ORG, "old", actor=HOST)
            kit.organizations.update_settings(
                session, ORG, {"api_keys_must_expire": True}, expected_version=0, actor=HOST
            )
            with pytest.raises(PolicyLimitError):
                kit.api_keys.rotate(session, ORG, old.api_key.id, actor=HOST)
            rotated = kit.api_keys.rotate(session, ORG, old.api_key.id, actor=HOST, expires=timedelta(days=5))

        assert rotated.api_key.expires_at is not None

    def test_a_deployment_ceiling_lowered_later_still_wins(
        self, seeded: sa.Engine, clock: FrozenClock
    ) -> None:
        """A document stored under a looser deployment is clamped by today's ceiling at the point of use."""
        loose = make_kit(clock)
        with loose.transaction(seeded) as session:
            loose.organizations.update_settings(
                session, ORG, {"api_key_max_lifetime": "365d"}, expected_version=0, actor=HOST
            )
        strict = make_kit(clock, api_key_max_lifetime="7d")
        with strict.transaction(seeded) as session:
            policy = strict.organizations.policy(session, ORG)
            with pytest.raises(PolicyLimitError):
                strict.api_keys.issue(session, ORG, "k", actor=HOST, expires=timedelta(days=8))

        assert policy.api_key_max_lifetime == timedelta(days=7)

    def test_require_sso_is_stored_and_in_the_policy(self, seeded: sa.Engine, kit: TenantKit) -> None:
        """``require_sso`` is defined now (enforced by the SSO feature later): it reaches the policy."""
        with kit.transaction(seeded) as session:
            kit.organizations.update_settings(
                session, ORG, {"require_sso": True}, expected_version=0, actor=HOST
            )
            assert kit.organizations.policy(session, ORG).require_sso is True


class TestTheDefaultRole:
    """``default_role`` gives new members their role wherever none is named: invitations and ``members.add``;
    it may be a rank or a custom role's key, and assigning it passes the escalation rule like any role."""

    @staticmethod
    def clinic_kit(clock: FrozenClock, ceiling: str = "MEMBER") -> TenantKit:
        from tenantkit import CustomRole, Permissions

        roles = [
            CustomRole(key="nurse", name="Nurse", rank=Role.MEMBER, permissions=frozenset({"records:read"})),
            CustomRole(
                key="physician",
                name="Physician",
                rank=Role.MEMBER,
                permissions=frozenset({"records:read", "orders:sign"}),
            ),
            CustomRole(key="supervisor", name="Supervisor", rank=Role.ADMIN),
        ]
        permissions = Permissions(registry={"records:read": "", "orders:sign": ""}, roles=roles).with_actions(
            "records:read", Role.ADMIN
        )
        return TenantKit(
            permissions=permissions,
            organizations=OrganizationDefaults(default_role=ceiling),  # type: ignore[arg-type]
            invitations=InvitationSettings(secret_keys=[SECRET]),
            clock=clock,
        )

    @staticmethod
    def seed(engine: sa.Engine, kit: TenantKit) -> None:
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "olivia", Role.OWNER, actor=HOST)
            kit.members.add(session, ORG, "adam", Role.ADMIN, actor=HOST)

    def test_adding_without_a_role_takes_the_organizations_default(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """With a deployment default of ADMIN, ``members.add`` naming no role makes an ADMIN; once the
        organization chooses MEMBER, a MEMBER (the same answer an invitation gets)."""
        kit = self.clinic_kit(clock, ceiling="ADMIN")
        self.seed(engine, kit)
        with kit.transaction(engine) as session:
            assert kit.members.add(session, ORG, "ann", actor="olivia").role is Role.ADMIN
            kit.organizations.update_settings(
                session, ORG, {"default_role": "member"}, expected_version=0, actor="olivia"
            )
            assert kit.members.add(session, ORG, "bob", actor="olivia").role is Role.MEMBER
            invited = kit.invitations.create_email_invitation(session, ORG, "c@example.com", actor="adam")
        assert invited.invitation.role is Role.MEMBER

    def test_a_custom_role_as_the_default(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Chosen as the default, ``nurse`` is what an invitation offers and ``members.add`` gives."""
        kit = self.clinic_kit(clock)
        self.seed(engine, kit)
        with kit.transaction(engine) as session:
            kit.organizations.update_settings(
                session, ORG, {"default_role": "nurse"}, expected_version=0, actor="olivia"
            )
            added = kit.members.add(session, ORG, "nina", actor="adam")
            invited = kit.invitations.create_email_invitation(session, ORG, "n2@example.com", actor="adam")
            policy = kit.organizations.policy(session, ORG)
        assert (added.role, added.custom_role) == (Role.MEMBER, "nurse")
        assert (invited.invitation.role, invited.invitation.custom_role) == (Role.MEMBER, "nurse")
        assert (policy.default_role, policy.default_custom_role) == (Role.MEMBER, "nurse")

    def test_choosing_a_default_is_a_grant(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """The OWNER, who cannot sign orders, may not make ``physician`` the default; the host may, and then
        an ADMIN adding someone without naming a role is refused by the escalation rule, writing nothing."""
        from tenantkit.errors import PermissionEscalationError

        kit = self.clinic_kit(clock)
        self.seed(engine, kit)
        with pytest.raises(PermissionEscalationError) as refused, kit.transaction(engine) as session:
            kit.organizations.update_settings(
                session, ORG, {"default_role": "physician"}, expected_version=0, actor="olivia"
            )
        assert list(refused.value.missing) == ["orders:sign"]
        with kit.transaction(engine) as session:
            kit.organizations.update_settings(
                session, ORG, {"default_role": "physician"}, expected_version=0, actor=HOST
            )
        with pytest.raises(PermissionEscalationError), kit.transaction(engine) as session:
            kit.members.add(session, ORG, "paul", actor="adam")
        with kit.transaction(engine) as session:
            assert kit.members.get_role(session, ORG, "paul") is None
            assert kit.members.add(session, ORG, "paul", actor=HOST).custom_role == "physician"

    def test_an_unknown_or_too_high_default_is_refused_when_written(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """A key naming no role is ``unknown_role``; an ADMIN-rank role above a MEMBER ceiling is a policy
        limit; neither is stored."""
        from tenantkit.errors import UnknownRoleError

        kit = self.clinic_kit(clock)
        self.seed(engine, kit)
        with pytest.raises(UnknownRoleError), kit.transaction(engine) as session:
            kit.organizations.update_settings(
                session, ORG, {"default_role": "surgeon"}, expected_version=0, actor="olivia"
            )
        with pytest.raises(PolicyLimitError) as limited, kit.transaction(engine) as session:
            kit.organizations.update_settings(
                session, ORG, {"default_role": "supervisor"}, expected_version=0, actor="olivia"
            )
        assert limited.value.setting == "default_role"
        with kit.transaction(engine) as session:
            assert kit.organizations.get_settings(session, ORG, actor="olivia").version == 0

    def test_a_deleted_default_role_is_reported_where_it_would_be_given(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """An organization role chosen as the default and deleted afterwards: adding without a role names
        the setting in an ``unknown_role`` error instead of giving something else; naming a role works."""
        from tenantkit.errors import UnknownRoleError

        kit = self.clinic_kit(clock)
        self.seed(engine, kit)
        with kit.transaction(engine) as session:
            kit.roles.create(
                session,
                ORG,
                "ward_clerk",
                name="Ward clerk",
                rank=Role.MEMBER,
                permissions=[],
                actor="olivia",
            )
            kit.organizations.update_settings(
                session, ORG, {"default_role": "ward_clerk"}, expected_version=0, actor="olivia"
            )
            assert kit.members.add(session, ORG, "wes", actor="adam").custom_role == "ward_clerk"
            kit.members.change_role(session, ORG, "wes", Role.MEMBER, actor="adam")
            kit.roles.delete(session, ORG, "ward_clerk", actor="olivia")
        with (
            pytest.raises(UnknownRoleError, match="default_role setting"),
            kit.transaction(engine) as session,
        ):
            kit.members.add(session, ORG, "xena", actor="adam")
        with kit.transaction(engine) as session:
            assert kit.members.add(session, ORG, "xena", Role.MEMBER, actor="adam").role is Role.MEMBER
