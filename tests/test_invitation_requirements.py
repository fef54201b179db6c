"""Invitations with requirements: the host's accept policy decides under the row lock, on every dialect.

A denial raises a typed error and changes nothing (the invitation stays pending, no membership exists);
an approval stores what was verified on the new membership, which lists show.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, InvalidInputError, InvitationSettings, InvitationStatus, Role, TenantKit
from tenantkit.credentials import LicencePolicy
from tenantkit.errors import AcceptanceDeniedError, ConfigurationError
from tenantkit.invitations import AcceptContext, Approval, Denial
from tenantkit.tables import team_members
from tenantkit.testing import FrozenClock

ORG = "general-hospital"
KEY = "an-invitation-signing-key-of-some-length"
NPI = "1234567893"
PHYSICIAN = {"credential_types": ["MD", "DO"], "npi_required": True, "licence_states": ["CA", "NY"]}


def claims(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    """Claims a host presents for a Californian MD whose licence runs another year."""
    base: dict[str, Any] = {
        "credential_type": "MD",
        "npi": NPI,
        "licence_state": "CA",
        "licence_number": "A123456",
        "licence_expires_at": (clock() + timedelta(days=365)).isoformat(),
        "verified_by": "nppes",
    }
    base.update(overrides)
    return base


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return TenantKit(
        invitations=InvitationSettings(secret_keys=[KEY]), clock=clock, accept_policy=LicencePolicy()
    )


@pytest.fixture
def session(engine: sa.Engine, kit: TenantKit) -> Iterator[Session]:
    """A session on each dialect with an organization whose OWNER is alice."""
    with Session(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        session.commit()
        yield session


def invite(kit: TenantKit, session: Session, requirements: Any = PHYSICIAN) -> str:
    created = kit.invitations.create_email_invitation(
        session, ORG, "dr.lee@example.org", actor="alice", requirements=requirements
    )
    session.commit()
    return created.token.get_secret_value()


def accept(kit: TenantKit, session: Session, token: str, presented: Any) -> Any:
    return kit.invitations.accept(
        session, token, user_id="lee", email="dr.lee@example.org", email_verified=True, claims=presented
    )


class TestCreation:
    def test_requirements_are_validated_normalized_and_shown(self, kit: TenantKit, session: Session) -> None:
        """The policy normalizes the requirements; the invitation, its listing and its preview show them."""
        token = invite(kit, session, {"credential_types": ["md"], "licence_states": ["ca"]})
        preview = kit.invitations.preview(session, token)
        assert preview.requirements is not None
        assert preview.requirements["credential_types"] == ["MD"]
        assert preview.requirements["licence_states"] == ["CA"]
        [listed] = kit.invitations.list_pending(session, ORG, actor="alice").items
        assert listed.requirements == preview.requirements

    @pytest.mark.parametrize(
        "requirements",
        [{"credential_typo": ["MD"]}, {"licence_states": ["California"]}, {}, ["MD"], {"x": float("nan")}],
    )
    def test_malformed_requirements_are_refused_before_anything_is_written(
        self, kit: TenantKit, session: Session, requirements: Any
    ) -> None:
        """Unknown keys, malformed values, an empty object or a non-object are ``InvalidInputError``."""
        with pytest.raises(InvalidInputError):
            invite(kit, session, requirements)
        session.rollback()
        assert kit.invitations.list_pending(session, ORG, actor="alice").items == []

    def test_requirements_without_a_policy_are_a_configuration_error(
        self, clock: FrozenClock, session: Session
    ) -> None:
        """Requirements nobody would check would admit anyone: refused when no policy is configured."""
        bare = TenantKit(invitations=InvitationSettings(secret_keys=[KEY]), clock=clock)
        with pytest.raises(ConfigurationError):
            invite(bare, session)


class TestAcceptance:
    def test_approval_stores_the_verified_attributes_on_the_membership(
        self, kit: TenantKit, session: Session, clock: FrozenClock
    ) -> None:
        """What the policy verified, by what and until when, is on the member, also in listings."""
        token = invite(kit, session)
        accepted = accept(kit, session, token, claims(clock))
        session.commit()
        assert accepted.role is Role.MEMBER
        assert not accepted.already_member
        member = kit.members.get(session, ORG, "lee", actor="alice")
        assert member.attributes is not None
        assert member.attributes.values == {
            "credential_type": "MD",
            "npi": NPI,
            "licence_state": "CA",
            "licence_number": "A123456",
        }
        assert member.attributes.verified_by == "nppes"
        assert member.attributes.verified_at == clock()
        assert member.attributes.expires_at == clock() + timedelta(days=365)
        listed = {m.user_id: m for m in kit.members.list_members(session, ORG, actor="alice").items}
        assert listed["lee"].attributes == member.attributes
        assert listed["alice"].attributes is None

    def test_the_attributes_are_audited_by_name_never_by_value(
        self, kit: TenantKit, session: Session, clock: FrozenClock
    ) -> None:
        """The audit row names the attributes and the verifier; the NPI and licence number stay out."""
        accept(kit, session, invite(kit, session), claims(clock))
        session.commit()
        [row] = kit.audit.list_events(
            session, ORG, actor=HOST, event_types=["member.attributes_recorded"]
        ).items
        assert row.data["attribute_names"] == ["credential_type", "licence_number", "licence_state", "npi"]
        assert row.data["verified_by"] == "nppes"
        assert NPI not in str(row.data)
        assert "A123456" not in str(row.data)

    @pytest.mark.parametrize(
        ("overrides", "requirement"),
        [
            ({"credential_type": "RN"}, "credential_type"),
            ({"npi": None}, "npi"),
            ({"npi": "1234567890"}, "npi"),
            ({"licence_state": "TX"}, "licence_state"),
            ({"licence_number": None}, "licence"),
            ({"licence_expires_at": "2029-12-31T00:00:00+00:00"}, "licence_expires_at"),
            ({"licence_expires_at": "2031-01-01T00:00:00"}, "licence_expires_at"),
        ],
    )
    def test_a_denial_is_typed_and_changes_nothing(
        self,
        kit: TenantKit,
        session: Session,
        clock: FrozenClock,
        overrides: dict[str, Any],
        requirement: str,
    ) -> None:
        """Each unmet requirement is an ``AcceptanceDeniedError`` naming it; the invitation stays pending and
        no membership exists, so the same invitee may try again with what is missing."""
        token = invite(kit, session)
        with pytest.raises(AcceptanceDeniedError) as denied:
            accept(kit, session, token, claims(clock, **overrides))
        assert denied.value.requirement == requirement
        assert denied.value.to_dict()["code"] == "acceptance_denied"
        session.rollback()
        [pending] = kit.invitations.list_pending(session, ORG, actor="alice").items
        assert pending.status is InvitationStatus.PENDING
        assert pending.use_count == 0
        assert kit.members.get_role(session, ORG, "lee") is None
        count = session.execute(sa.select(sa.func.count()).select_from(team_members)).scalar_one()
        assert count == 1
        assert accept(kit, session, token, claims(clock)).already_member is False

    def test_no_claims_is_a_denial(self, kit: TenantKit, session: Session) -> None:
        """An invitee for whom the host presents nothing is denied, not admitted."""
        with pytest.raises(AcceptanceDeniedError):
            accept(kit, session, invite(kit, session), None)

    def test_an_invitation_without_requirements_never_asks_the_policy(
        self, clock: FrozenClock, session: Session
    ) -> None:
        """Plain invitations work as before: no claims needed, no attributes stored."""
        calls: list[AcceptContext] = []

        class Recording(LicencePolicy):
            def decide(self, context: AcceptContext) -> Approval | Denial:
                calls.append(context)
                return super().decide(context)

        kit = TenantKit(
            invitations=InvitationSettings(secret_keys=[KEY]), clock=clock, accept_policy=Recording()
        )
        token = kit.invitations.create_email_invitation(session, ORG, "x@example.org", actor="alice")
        kit.invitations.accept(
            session, token.token.get_secret_value(), user_id="x", email="x@example.org", email_verified=True
        )
        assert calls == []
        assert kit.members.get(session, ORG, "x", actor="alice").attributes is None

    def test_the_policy_sees_the_invitation_and_the_claims_under_the_kit_clock(
        self, clock: FrozenClock, session: Session
    ) -> None:
        """The context names the organization, invitation, role, requirements, user, claims and time."""
        seen: list[AcceptContext] = []

        class Spy:
            def validate(self, requirements: Any) -> Any:
                return requirements

            def decide(self, context: AcceptContext) -> Approval | Denial:
                seen.append(context)
                return Approval(verified_by="spy", attributes={"badge": 7})

        kit = TenantKit(invitations=InvitationSettings(secret_keys=[KEY]), clock=clock, accept_policy=Spy())
        created = kit.invitations.create_email_invitation(
            session, ORG, "x@example.org", Role.ADMIN, actor="alice", requirements={"badge": True}
        )
        kit.invitations.accept(
            session,
            created.token.get_secret_value(),
            user_id="x",
            email="X@Example.org",
            email_verified=True,
            claims={"badge": 7},
        )
        [context] = seen
        assert (context.organization_id, context.invitation_id, context.role) == (
            ORG,
            created.invitation.id,
            Role.ADMIN,
        )
        assert (context.user_id, context.email, context.now) == ("x", "x@example.org", clock())
        assert context.requirements == {"badge": True}
        assert context.claims == {"badge": 7}
        assert kit.members.get(session, ORG, "x", actor="alice").attributes.values == {"badge": 7}  # type: ignore[union-attr]

    def test_a_policy_returning_something_else_fails_closed(
        self, clock: FrozenClock, session: Session
    ) -> None:
        """Anything but an Approval or a Denial is a configuration error and admits nobody."""

        class Broken:
            def validate(self, requirements: Any) -> Any:
                return requirements

            def decide(self, context: AcceptContext) -> Any:
                return True

        kit = TenantKit(
            invitations=InvitationSettings(secret_keys=[KEY]), clock=clock, accept_policy=Broken()
        )
        created = kit.invitations.create_email_invitation(
            session, ORG, "x@example.org", actor="alice", requirements={"any": 1}
        )
        with pytest.raises(ConfigurationError):
            kit.invitations.accept(
                session,
                created.token.get_secret_value(),
                user_id="x",
                email="x@example.org",
                email_verified=True,
            )
        assert kit.members.get_role(session, ORG, "x") is None

    def test_attributes_an_approval_cannot_store_are_refused(
        self, clock: FrozenClock, session: Session
    ) -> None:
        """Nested values in an approval are ``InvalidInputError``: attributes are flat scalars."""

        class Nested:
            def validate(self, requirements: Any) -> Any:
                return requirements

            def decide(self, context: AcceptContext) -> Approval | Denial:
                return Approval(verified_by="x", attributes={"nested": {"a": 1}})  # type: ignore[dict-item]

        kit = TenantKit(
            invitations=InvitationSettings(secret_keys=[KEY]), clock=clock, accept_policy=Nested()
        )
        created = kit.invitations.create_email_invitation(
            session, ORG, "x@example.org", actor="alice", requirements={"any": 1}
        )
        with pytest.raises(InvalidInputError):
            kit.invitations.accept(
                session,
                created.token.get_secret_value(),
                user_id="x",
                email="x@example.org",
                email_verified=True,
            )

    def test_malformed_claims_are_refused(self, kit: TenantKit, session: Session) -> None:
        """Claims that are not a JSON object are ``InvalidInputError`` before any database work."""
        token = invite(kit, session)
        with pytest.raises(InvalidInputError):
            accept(kit, session, token, ["MD"])
        with pytest.raises(InvalidInputError):
            accept(kit, session, token, {"x": datetime(2030, 1, 1, tzinfo=timezone.utc)})
