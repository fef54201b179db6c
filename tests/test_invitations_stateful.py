"""A state machine of invitations, acceptances, revocations and membership changes, checked against a model.

Invariants after every step: memberships equal the model's; the organization keeps an OWNER; every link's
use count equals the acceptances it admitted; nobody got a role that their inviter could not grant; and no
acceptance changed an existing member's role.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.orm import Session

from tenantkit import HOST, InvitationService, MembershipService, PermissionDeniedError, Permissions, Role
from tenantkit.errors import (
    DomainNotAllowedError,
    EmailMismatchError,
    InvitationExhaustedError,
    InvitationNotPendingError,
    InviterNoLongerAllowedError,
    LastOwnerError,
    RoleEscalationError,
)
from tenantkit.tables import invitations, team_members
from tenantkit.testing import FrozenClock
from tests.databases import delete_all_rows
from tests.strategies import roles

ORG = "org_1"
USERS = ("owner", "u1", "u2", "u3", "u4")
KEY = "an-invitation-signing-key-of-some-length"
POLICY = Permissions()
users = st.sampled_from(USERS)
inviters = st.sampled_from((None, *USERS))


def address(user: str, domain: str = "corp.example") -> str:
    return f"{user}@{domain}"


@dataclass
class ModelInvitation:
    id: str
    token: str
    role: Role
    inviter: str | None
    email_user: str | None
    max_uses: int | None
    status: str = "pending"
    uses: int = 0
    used_by: set[str] = field(default_factory=set)


# The rules live in a class built per engine; its methods count toward this function for mccabe.
def make_machine(engine: sa.Engine) -> type[RuleBasedStateMachine]:  # noqa: C901
    class InvitationMachine(RuleBasedStateMachine):
        invited = Bundle("invited")

        def __init__(self) -> None:
            super().__init__()
            delete_all_rows(engine)
            self.clock = FrozenClock()
            self.membership = MembershipService(clock=self.clock)
            self.service = InvitationService(membership=self.membership, secret_keys=[KEY], clock=self.clock)
            self.session = Session(engine)
            self.membership.add(self.session, ORG, "owner", Role.OWNER, actor=HOST)
            self.membership.add(self.session, ORG, "u1", Role.ADMIN, actor=HOST)
            self.session.commit()
            self.members: dict[str, Role] = {"owner": Role.OWNER, "u1": Role.ADMIN}
            self.invitations: list[ModelInvitation] = []

        def teardown(self) -> None:
            self.session.close()

        def expect_create_error(self, inviter: str | None, role: Role) -> type[Exception] | None:
            if inviter is None:
                return None
            held = self.members.get(inviter)
            if held is None or held is Role.MEMBER:
                return PermissionDeniedError
            return None if POLICY.can_grant(held, role) else RoleEscalationError

        @rule(target=invited, inviter=inviters, user=users, role=roles)
        def invite_by_email(
            self, inviter: str | None, user: str, role: Role
        ) -> ModelInvitation | MultipleResults[ModelInvitation]:
            expected = self.expect_create_error(inviter, role)
            actor = HOST if inviter is None else inviter
            if expected is not None:
                with pytest.raises(expected):
                    self.service.create_email_invitation(
                        self.session, ORG, address(user).upper(), role, actor=actor
                    )
                self.session.rollback()
                return multiple()
            created = self.service.create_email_invitation(
                self.session, ORG, address(user).upper(), role, actor=actor
            )
            self.session.commit()
            for old in self.invitations:
                if old.email_user == user and old.status == "pending":
                    old.status = "replaced"
            model = ModelInvitation(
                created.invitation.id, created.token.get_secret_value(), role, inviter, user, 1
            )
            self.invitations.append(model)
            return model

        @rule(target=invited, inviter=inviters, role=roles, max_uses=st.one_of(st.none(), st.integers(1, 3)))
        def invite_by_link(
            self, inviter: str | None, role: Role, max_uses: int | None
        ) -> ModelInvitation | MultipleResults[ModelInvitation]:
            expected = self.expect_create_error(inviter, role)
            actor = HOST if inviter is None else inviter
            if expected is not None:
                with pytest.raises(expected):
                    self.service.create_link_invitation(
                        self.session, ORG, ["Corp.Example"], role, actor=actor
                    )
                self.session.rollback()
                return multiple()
            created = self.service.create_link_invitation(
                self.session, ORG, ["Corp.Example"], role, actor=actor, max_uses=max_uses
            )
            self.session.commit()
            model = ModelInvitation(
                created.invitation.id, created.token.get_secret_value(), role, inviter, None, max_uses
            )
            self.invitations.append(model)
            return model

        def expected_acceptance(  # noqa: PLR0911  the model's answer: one return per refusal reason
            self, invitation: ModelInvitation, user: str, domain: str
        ) -> type[Exception] | str:
            if invitation.status in ("replaced", "revoked", "accepted"):
                return InvitationNotPendingError
            if invitation.status == "exhausted":
                return InvitationExhaustedError
            if invitation.email_user is not None and (
                invitation.email_user != user or domain != "corp.example"
            ):
                return EmailMismatchError
            if invitation.email_user is None and domain != "corp.example":
                return DomainNotAllowedError
            if invitation.inviter is not None:
                held = self.members.get(invitation.inviter)
                if held is None or held is Role.MEMBER or not POLICY.can_grant(held, invitation.role):
                    return InviterNoLongerAllowedError
            if user in self.members:
                return "already"
            if user in invitation.used_by:
                return InvitationNotPendingError
            return "joined"

        @rule(
            invitation=invited,
            user=users,
            addressee=st.booleans(),
            domain=st.sampled_from(["corp.example", "corp.example", "corp.example", "evilcorp.example"]),
        )
        def accept(self, invitation: ModelInvitation, user: str, addressee: bool, domain: str) -> None:
            if addressee and invitation.email_user is not None:
                user = invitation.email_user
            expected = self.expected_acceptance(invitation, user, domain)
            before = dict(self.members)
            if isinstance(expected, type):
                with pytest.raises(expected):
                    self.service.accept(
                        self.session,
                        invitation.token,
                        user_id=user,
                        email=address(user, domain),
                        email_verified=True,
                    )
                self.session.rollback()
                return
            result = self.service.accept(
                self.session, invitation.token, user_id=user, email=address(user, domain), email_verified=True
            )
            self.session.commit()
            if expected == "already":
                assert result.already_member
                assert result.role is before[user]
                return
            assert not result.already_member
            assert result.role is invitation.role
            self.members[user] = invitation.role
            invitation.uses += 1
            invitation.used_by.add(user)
            if invitation.email_user is not None:
                invitation.status = "accepted"
            elif invitation.max_uses is not None and invitation.uses >= invitation.max_uses:
                invitation.status = "exhausted"

        @rule(invitation=invited)
        def revoke(self, invitation: ModelInvitation) -> None:
            if invitation.status != "pending":
                with pytest.raises(InvitationNotPendingError):
                    self.service.revoke(self.session, ORG, invitation.id, actor=HOST)
                self.session.rollback()
                return
            self.service.revoke(self.session, ORG, invitation.id, actor=HOST)
            self.session.commit()
            invitation.status = "revoked"

        @rule(user=users, role=roles)
        def change_role(self, user: str, role: Role) -> None:
            if user not in self.members:
                return
            owners = [u for u, r in self.members.items() if r is Role.OWNER]
            if owners == [user] and role is not Role.OWNER:
                with pytest.raises(LastOwnerError):
                    self.membership.change_role(self.session, ORG, user, role, actor=HOST)
                self.session.rollback()
                return
            self.membership.change_role(self.session, ORG, user, role, actor=HOST)
            self.session.commit()
            self.members[user] = role

        @rule(user=users)
        def remove(self, user: str) -> None:
            if user not in self.members:
                return
            owners = [u for u, r in self.members.items() if r is Role.OWNER]
            if owners == [user]:
                with pytest.raises(LastOwnerError):
                    self.membership.remove(self.session, ORG, user, actor=HOST)
                self.session.rollback()
                return
            self.membership.remove(self.session, ORG, user, actor=HOST)
            self.session.commit()
            del self.members[user]

        @rule(invitation=invited, role=st.sampled_from([Role.MEMBER, None]))
        def demote_or_remove_inviter(self, invitation: ModelInvitation, role: Role | None) -> None:
            # Aimed at the acceptance re-check: an inviter who lost their standing after inviting.
            if invitation.inviter is None or invitation.inviter not in self.members:
                return
            if role is None:
                self.remove(invitation.inviter)
            else:
                self.change_role(invitation.inviter, role)

        @invariant()
        def memberships_match_the_model(self) -> None:
            rows = self.session.execute(
                sa.select(team_members.c.user_id, team_members.c.role).where(
                    team_members.c.organization_id == ORG
                )
            ).all()
            self.session.rollback()
            assert {user: Role(role) for user, role in rows} == self.members

        @invariant()
        def an_owner_remains(self) -> None:
            assert Role.OWNER in self.members.values()

        @invariant()
        def use_counts_match(self) -> None:
            counts = dict(self.session.execute(sa.select(invitations.c.id, invitations.c.use_count)).all())
            self.session.rollback()
            for invitation in self.invitations:
                assert counts[invitation.id] == invitation.uses
                if invitation.max_uses is not None:
                    assert invitation.uses <= invitation.max_uses

    return InvitationMachine


def test_invitations_state_machine(sqlite_engine: sa.Engine) -> None:
    """Random sequences of invitations, acceptances, revocations and role changes keep every invariant."""
    run_state_machine_as_test(
        make_machine(sqlite_engine),
        settings=settings(max_examples=150, stateful_step_count=40, deadline=None),
    )


def test_invitations_state_machine_on_postgresql(postgres_engine: sa.Engine) -> None:
    """A shorter run of the same machine on PostgreSQL."""
    run_state_machine_as_test(
        make_machine(postgres_engine),
        settings=settings(max_examples=8, stateful_step_count=20, deadline=None),
    )
