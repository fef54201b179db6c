"""The policy (``Permissions``) alone decides who may grant and manage which role; the services ask it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from hypothesis import given
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    Action,
    InvitationService,
    MembershipService,
    PermissionDeniedError,
    Permissions,
    Role,
)
from tenantkit.errors import InviterNoLongerAllowedError, RoleEscalationError
from tenantkit.testing import FrozenClock
from tests.strategies import roles

ORG = "org_1"
KEY = "an-invitation-signing-key-of-some-length"


class MembersOnly(Permissions):
    """A host's stricter policy: nobody grants, or manages holders of, any role but MEMBER."""

    def can_grant(self, role: Role, granted: Role) -> bool:
        return granted is Role.MEMBER


class TestRules:
    @given(role=roles, target=roles)
    def test_a_role_manages_exactly_the_roles_it_may_grant(self, role: Role, target: Role) -> None:
        """Changing or removing a member is allowed exactly where granting that member's role would be."""
        policy = Permissions()
        assert policy.can_manage(role, target) == policy.can_grant(role, target)

    @given(role=roles, granted=roles)
    def test_require_grant_raises_exactly_when_can_grant_is_false(self, role: Role, granted: Role) -> None:
        """``require_grant`` refuses with the role names exactly the grants ``can_grant`` refuses."""
        policy = Permissions()
        if policy.can_grant(role, granted):
            policy.require_grant(role, granted)
            return
        with pytest.raises(RoleEscalationError) as caught:
            policy.require_grant(role, granted)
        assert (caught.value.actor_role, caught.value.requested_role) == (role.value, granted.value)

    def test_require_manage_names_the_action_and_both_roles(self) -> None:
        """An ADMIN refused an OWNER is told what it may not do, to whom."""
        with pytest.raises(PermissionDeniedError) as caught:
            Permissions().require_manage(Role.ADMIN, Role.OWNER, Action.REMOVE_MEMBERS)
        assert caught.value.to_dict() == {
            "code": "permission_denied",
            "message": "ADMIN may not remove an OWNER",
            "action": "members:remove",
            "role": "ADMIN",
        }


@pytest.fixture
def session(engine: sa.Engine, clock: FrozenClock) -> Iterator[Session]:
    """A session on each dialect, with an organization: alice OWNER, adam ADMIN (under the default policy)."""
    membership = MembershipService(clock=clock)
    with Session(engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        membership.add(session, ORG, "adam", Role.ADMIN, actor=HOST)
        session.commit()
        yield session


@pytest.fixture
def strict(clock: FrozenClock) -> MembershipService:
    return MembershipService(clock=clock, permissions=MembersOnly())


class TestServicesAskThePolicy:
    def test_adding_asks_can_grant(self, session: Session, strict: MembershipService) -> None:
        """Under a policy that grants only MEMBER, even an OWNER cannot add an ADMIN."""
        with pytest.raises(RoleEscalationError):
            strict.add(session, ORG, "bob", Role.ADMIN, actor="alice")
        assert strict.add(session, ORG, "bob", Role.MEMBER, actor="alice").role is Role.MEMBER

    def test_managing_asks_can_manage(self, session: Session, strict: MembershipService) -> None:
        """Under that policy an OWNER may not remove an ADMIN, and the refusal says so."""
        with pytest.raises(PermissionDeniedError, match="OWNER may not remove an ADMIN"):
            strict.remove(session, ORG, "adam", actor="alice")

    def test_inviting_asks_can_grant(self, session: Session, strict: MembershipService) -> None:
        """Creating an invitation is judged by the same grant rule."""
        service = InvitationService(membership=strict, secret_keys=[KEY])
        with pytest.raises(RoleEscalationError):
            service.create_email_invitation(session, ORG, "bob@example.com", Role.ADMIN, actor="alice")

    def test_accepting_asks_the_same_policy(
        self, session: Session, strict: MembershipService, clock: FrozenClock
    ) -> None:
        """Acceptance re-checks the inviter with the policy in force, refusing with its own error."""
        lenient = InvitationService(membership=MembershipService(clock=clock), secret_keys=[KEY], clock=clock)
        created = lenient.create_email_invitation(session, ORG, "bob@example.com", Role.ADMIN, actor="alice")
        session.commit()
        service = InvitationService(membership=strict, secret_keys=[KEY], clock=clock)
        with pytest.raises(InviterNoLongerAllowedError, match="may no longer grant ADMIN") as caught:
            service.accept(
                session,
                created.token.get_secret_value(),
                user_id="bob",
                email="bob@example.com",
                email_verified=True,
            )
        assert caught.value.role == "ADMIN"
