"""Suspension and lapsing credentials: the row stays, every permission is denied, the change is audited.

Suspension needs what a removal needs (``members:remove`` and the rank rule); the last *active* OWNER can
neither be suspended nor (while another OWNER is suspended) removed, demoted or leave.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, InvalidInputError, PermissionDeniedError, Role, TenantKit
from tenantkit.errors import LastOwnerError, MemberSuspendedError
from tenantkit.members import make_attributes
from tenantkit.testing import FrozenClock

ORG = "general-hospital"


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return TenantKit(clock=clock)


@pytest.fixture
def session(engine: sa.Engine, kit: TenantKit, clock: FrozenClock) -> Iterator[Session]:
    """alice OWNER, adam ADMIN, and three nurses whose licences lapse in 10, 40 and 400 days."""
    with Session(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "adam", Role.ADMIN, actor=HOST)
        for user, days in (("nina", 10), ("ned", 40), ("nora", 400)):
            kit.members.add(session, ORG, user, actor=HOST)
            attributes = make_attributes(
                {"credential_type": "RN", "licence_state": "CA", "licence_number": user.upper()},
                verified_by="state-board:CA",
                verified_at=clock(),
                expires_at=clock() + timedelta(days=days),
            )
            kit.members.record_attributes(session, ORG, user, attributes, actor=HOST)
        session.commit()
        yield session


def audit_types(kit: TenantKit, session: Session) -> list[str]:
    return [event.type for event in reversed(kit.audit.list_events(session, ORG, actor=HOST).items)]


class TestLapsing:
    def test_members_lapsing_before_a_time_are_listed_soonest_first(
        self, kit: TenantKit, session: Session, clock: FrozenClock
    ) -> None:
        """Those whose stored expiry is before the cutoff, soonest first; those without attributes never."""
        page = kit.members.list_lapsing(session, ORG, clock() + timedelta(days=60), actor="adam")
        assert [member.user_id for member in page.items] == ["nina", "ned"]
        assert page.items[0].attributes is not None
        assert page.items[0].attributes.values["licence_number"] == "NINA"

    def test_pages_and_suspended_members(self, kit: TenantKit, session: Session, clock: FrozenClock) -> None:
        """The listing pages by cursor; suspended members drop out unless asked for."""
        cutoff = clock() + timedelta(days=1000)
        first = kit.members.list_lapsing(session, ORG, cutoff, actor=HOST, limit=2)
        assert [m.user_id for m in first.items] == ["nina", "ned"]
        rest = kit.members.list_lapsing(session, ORG, cutoff, actor=HOST, cursor=first.next_cursor)
        assert [m.user_id for m in rest.items] == ["nora"]
        kit.members.suspend(session, ORG, "nina", actor=HOST, reason="licence expired")
        assert [m.user_id for m in kit.members.list_lapsing(session, ORG, cutoff, actor=HOST).items] == [
            "ned",
            "nora",
        ]
        everyone = kit.members.list_lapsing(session, ORG, cutoff, actor=HOST, include_suspended=True)
        assert [m.user_id for m in everyone.items] == ["nina", "ned", "nora"]

    def test_a_naive_cutoff_is_refused(self, kit: TenantKit, session: Session) -> None:
        """The cutoff must be aware: a naive time would be guessed, so it is an ``InvalidInputError``."""
        with pytest.raises(InvalidInputError):
            kit.members.list_lapsing(session, ORG, sa.func.now(), actor=HOST)  # type: ignore[arg-type]

    def test_record_attributes_renews_and_is_bounded_by_the_manage_rule(
        self, kit: TenantKit, session: Session, clock: FrozenClock
    ) -> None:
        """A renewed licence replaces the stored one (and leaves the lapsing list); a MEMBER cannot record."""
        renewed = make_attributes(
            {"credential_type": "RN"},
            verified_by="manual:adam",
            verified_at=clock(),
            expires_at=clock() + timedelta(days=700),
        )
        kit.members.record_attributes(session, ORG, "nina", renewed, actor="adam")
        lapsing = kit.members.list_lapsing(session, ORG, clock() + timedelta(days=60), actor=HOST).items
        assert [m.user_id for m in lapsing] == ["ned"]
        assert kit.members.get(session, ORG, "nina", actor=HOST).attributes == renewed
        with pytest.raises(PermissionDeniedError):
            kit.members.record_attributes(session, ORG, "ned", renewed, actor="nora")


class TestSuspension:
    def test_a_suspended_member_keeps_its_row_and_loses_every_permission(
        self, kit: TenantKit, session: Session, clock: FrozenClock
    ) -> None:
        """The row, role and attributes stay; ``get_role`` answers ``None`` and every check is denied."""
        suspended = kit.members.suspend(session, ORG, "adam", actor="alice", reason="licence expired")
        session.commit()
        assert suspended.suspended
        assert suspended.suspension_reason == "licence expired"
        member = kit.members.get(session, ORG, "adam", actor="alice")
        assert member.role is Role.ADMIN
        assert member.suspended_at == clock()
        assert member.suspended_by == "alice"
        assert kit.members.get_role(session, ORG, "adam") is None
        with pytest.raises(MemberSuspendedError) as denied:
            kit.members.authorize(session, ORG, "adam", "members:read")
        assert denied.value.code == "member_suspended"
        assert isinstance(denied.value, PermissionDeniedError)
        with pytest.raises(MemberSuspendedError):
            kit.members.list_members(session, ORG, actor="adam")
        with pytest.raises(MemberSuspendedError):
            kit.members.remove(session, ORG, "nina", actor="adam")
        with pytest.raises(MemberSuspendedError):
            kit.api_keys.issue(session, ORG, "ci", actor="adam")

    def test_resume_restores_the_permissions_and_both_changes_are_audited(
        self, kit: TenantKit, session: Session
    ) -> None:
        """Suspend then resume: the member acts again; ``member.suspended`` and ``member.resumed`` are in the
        audit log, with the reason, and a repeated call changes nothing and records nothing."""
        kit.members.suspend(session, ORG, "nina", actor="adam", reason="licence expired")
        kit.members.suspend(session, ORG, "nina", actor="adam")
        session.commit()
        resumed = kit.members.resume(session, ORG, "nina", actor="adam")
        kit.members.resume(session, ORG, "nina", actor="adam")
        session.commit()
        assert not resumed.suspended
        assert kit.members.get_role(session, ORG, "nina") is Role.MEMBER
        kit.members.authorize(session, ORG, "nina", "members:read")
        types = audit_types(kit, session)
        assert types[-2:] == ["member.suspended", "member.resumed"]
        [suspension] = kit.audit.list_events(session, ORG, actor=HOST, event_types=["member.suspended"]).items
        assert suspension.data == {"user_id": "nina", "role": "MEMBER", "reason": "licence expired"}
        assert [target.id for target in suspension.targets] == ["nina"]

    def test_suspension_follows_the_rank_rule(self, kit: TenantKit, session: Session) -> None:
        """A MEMBER may not suspend; an ADMIN may not suspend the OWNER; nobody suspends itself."""
        with pytest.raises(PermissionDeniedError):
            kit.members.suspend(session, ORG, "ned", actor="nina")
        with pytest.raises(PermissionDeniedError):
            kit.members.suspend(session, ORG, "alice", actor="adam")
        with pytest.raises(InvalidInputError):
            kit.members.suspend(session, ORG, "adam", actor="adam")

    def test_the_last_active_owner_cannot_be_suspended(self, kit: TenantKit, session: Session) -> None:
        """Not even by the host: an organization always keeps an OWNER who can act."""
        with pytest.raises(LastOwnerError):
            kit.members.suspend(session, ORG, "alice", actor=HOST)

    def test_a_suspended_owner_does_not_count_for_the_owner_invariant(
        self, kit: TenantKit, session: Session
    ) -> None:
        """With two OWNERs, one suspended: the active one cannot leave, be demoted or be removed; the
        suspended one can be demoted or removed, and is never the target of a transfer."""
        kit.members.change_role(session, ORG, "adam", Role.OWNER, actor="alice")
        kit.members.suspend(session, ORG, "adam", actor="alice")
        with pytest.raises(LastOwnerError):
            kit.members.leave(session, ORG, actor="alice")
        with pytest.raises(LastOwnerError):
            kit.members.change_role(session, ORG, "alice", Role.ADMIN, actor=HOST)
        with pytest.raises(LastOwnerError):
            kit.members.remove(session, ORG, "alice", actor=HOST)
        with pytest.raises(InvalidInputError):
            kit.members.transfer_ownership(session, ORG, "adam", actor="alice")
        kit.members.change_role(session, ORG, "adam", Role.ADMIN, actor="alice")
        assert kit.members.get(session, ORG, "adam", actor=HOST).suspended

    def test_a_suspended_inviter_invitations_cannot_be_accepted(
        self, clock: FrozenClock, session: Session
    ) -> None:
        """An invitation from a since-suspended member is refused at acceptance, like a former member's."""
        from tenantkit import InvitationSettings
        from tenantkit.errors import InviterNoLongerAllowedError

        kit = TenantKit(invitations=InvitationSettings(secret_keys=["k" * 32]), clock=clock)
        created = kit.invitations.create_email_invitation(session, ORG, "x@example.org", actor="adam")
        kit.members.suspend(session, ORG, "adam", actor="alice")
        with pytest.raises(InviterNoLongerAllowedError):
            kit.invitations.accept(
                session,
                created.token.get_secret_value(),
                user_id="x",
                email="x@example.org",
                email_verified=True,
            )

    def test_a_suspended_member_accepting_an_invitation_stays_suspended(
        self, clock: FrozenClock, session: Session
    ) -> None:
        """Accepting never changes an existing member, suspended or not: it reports ``already_member``."""
        from tenantkit import InvitationSettings

        kit = TenantKit(invitations=InvitationSettings(secret_keys=["k" * 32]), clock=clock)
        created = kit.invitations.create_email_invitation(
            session, ORG, "nina@example.org", Role.ADMIN, actor="alice"
        )
        kit.members.suspend(session, ORG, "nina", actor="alice")
        accepted = kit.invitations.accept(
            session,
            created.token.get_secret_value(),
            user_id="nina",
            email="nina@example.org",
            email_verified=True,
        )
        assert accepted.already_member
        assert accepted.role is Role.MEMBER
        assert kit.members.get(session, ORG, "nina", actor=HOST).suspended

    def test_an_unknown_member_is_not_found(self, kit: TenantKit, session: Session) -> None:
        """Suspending or resuming a non-member is ``MemberNotFoundError``."""
        from tenantkit.errors import MemberNotFoundError

        with pytest.raises(MemberNotFoundError):
            kit.members.suspend(session, ORG, "nobody", actor=HOST)
        with pytest.raises(MemberNotFoundError):
            kit.members.resume(session, ORG, "nobody", actor=HOST)
