"""Random sequences of membership changes by random actors agree with a small model of the rules."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    Actor,
    InvalidInputError,
    MembershipService,
    PermissionDeniedError,
    Role,
    TenantKitError,
    transaction,
)
from tenantkit.errors import AlreadyMemberError, LastOwnerError, MemberNotFoundError, RoleEscalationError
from tenantkit.tables import team_members
from tests.strategies import roles

ORGS = ("org_a", "org_b")
USERS = ("u0", "u1", "u2", "u3")
RANK = {Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}

orgs = st.sampled_from(ORGS)
users = st.sampled_from(USERS)
# Actors are the host, users as plain ids and users as Actor objects; a small pool of users keeps most
# actors members of the organization, so that calls succeed often enough to build interesting states.
actors = st.one_of(st.just(HOST), users, users.map(Actor.user))


class Refused(Exception):
    """The model's verdict that the service must refuse with ``error``."""

    def __init__(self, error: type[TenantKitError]) -> None:
        self.error = error


class Model:
    """What should happen, written from the rules rather than from the service's code."""

    def __init__(self) -> None:
        self.members: dict[str, dict[str, Role]] = {org: {} for org in ORGS}

    def _actor_role(self, org: str, actor: Actor, may: Callable[[Role], bool]) -> Role | None:
        if actor.is_host:
            return None
        role = self.members[org].get(actor.user_id or "")
        if role is None or not may(role):
            raise Refused(PermissionDeniedError)
        return role

    def _owners(self, org: str) -> int:
        return sum(role is Role.OWNER for role in self.members[org].values())

    def add(self, org: str, user: str, role: Role, actor: Actor) -> None:
        mine = self._actor_role(org, actor, lambda r: r is not Role.MEMBER)
        if mine is not None and RANK[role] > RANK[mine]:
            raise Refused(RoleEscalationError)
        if user in self.members[org]:
            raise Refused(AlreadyMemberError)
        self.members[org][user] = role

    def change_role(self, org: str, user: str, role: Role, actor: Actor) -> None:
        mine = self._actor_role(org, actor, lambda r: r is not Role.MEMBER)
        current = self.members[org].get(user)
        if current is None:
            raise Refused(MemberNotFoundError)
        if mine is not None and RANK[current] > RANK[mine]:
            raise Refused(PermissionDeniedError)
        if mine is not None and RANK[role] > RANK[mine]:
            raise Refused(RoleEscalationError)
        if current is role:
            return
        if current is Role.OWNER and self._owners(org) == 1:
            raise Refused(LastOwnerError)
        self.members[org][user] = role

    def remove(self, org: str, user: str, actor: Actor) -> None:
        if actor.user_id == user:
            self.leave(org, actor)
            return
        mine = self._actor_role(org, actor, lambda r: r is not Role.MEMBER)
        current = self.members[org].get(user)
        if current is None:
            raise Refused(MemberNotFoundError)
        if mine is not None and RANK[current] > RANK[mine]:
            raise Refused(PermissionDeniedError)
        self._drop(org, user)

    def leave(self, org: str, actor: Actor) -> None:
        if actor.user_id is None:
            raise Refused(InvalidInputError)
        if actor.user_id not in self.members[org]:
            raise Refused(MemberNotFoundError)
        self._drop(org, actor.user_id)

    def _drop(self, org: str, user: str) -> None:
        if self.members[org][user] is Role.OWNER and self._owners(org) == 1:
            raise Refused(LastOwnerError)
        del self.members[org][user]

    def transfer(self, org: str, to: str, actor: Actor, giver_for_host: str, demote_to: Role) -> None:
        giver = giver_for_host if actor.user_id is None else actor.user_id
        if giver == to:
            raise Refused(InvalidInputError)
        self._actor_role(org, actor, lambda r: r is Role.OWNER)
        if giver not in self.members[org]:
            raise Refused(MemberNotFoundError)
        if self.members[org][giver] is not Role.OWNER:
            raise Refused(PermissionDeniedError)
        if to not in self.members[org]:
            raise Refused(MemberNotFoundError)
        self.members[org][to] = Role.OWNER
        self.members[org][giver] = demote_to


class MembershipMachine(RuleBasedStateMachine):
    engine: sa.Engine

    def __init__(self) -> None:
        super().__init__()
        self.service = MembershipService()
        self.model = Model()
        with transaction(self.engine) as session:
            session.execute(team_members.delete())

    def _both(self, service_call: Callable[..., object], model_call: Callable[[], None]) -> None:
        expected: type[TenantKitError] | None = None
        try:
            model_call()
        except Refused as refusal:
            expected = refusal.error
        outcome: type[TenantKitError] | None = None
        try:
            with transaction(self.engine) as session:
                service_call(session)
        except TenantKitError as error:
            outcome = type(error)
        event(f"{getattr(service_call, '__name__', 'call')}: {outcome.__name__ if outcome else 'ok'}")
        assert outcome is expected, f"service: {outcome}, model: {expected}"

    @initialize(
        founders=st.tuples(users, users),
        others=st.lists(st.tuples(orgs, users, roles), max_size=8),
    )
    def found(self, founders: tuple[str, str], others: list[tuple[str, str, Role]]) -> None:
        """Each organization starts with an OWNER (as the host's signup flow makes it) and a few members."""
        members = [(org, founder, Role.OWNER) for org, founder in zip(ORGS, founders, strict=True)]
        for org, user, role in [*members, *others]:
            self._both(
                functools.partial(self._add, org, user, role),
                functools.partial(self.model.add, org, user, role, HOST),
            )

    def _add(self, org: str, user: str, role: Role, session: Session) -> object:
        return self.service.add(session, org, user, role, actor=HOST)

    def _actor(self, data: st.DataObject, org: str) -> Actor | str:
        """Mostly a current member of ``org`` (so calls often succeed), sometimes anyone or the host."""
        members = sorted(self.model.members[org])
        return data.draw(st.one_of(st.sampled_from(members), actors) if members else actors, label="actor")

    @rule(org=orgs, user=users, role=roles, data=st.data())
    def add(self, org: str, user: str, role: Role, data: st.DataObject) -> None:
        actor = self._actor(data, org)
        acting = actor if isinstance(actor, Actor) else Actor.user(actor)
        self._both(
            lambda s: self.service.add(s, org, user, role, actor=actor),
            lambda: self.model.add(org, user, role, acting),
        )

    @rule(org=orgs, user=users, role=roles, data=st.data())
    def change_role(self, org: str, user: str, role: Role, data: st.DataObject) -> None:
        actor = self._actor(data, org)
        acting = actor if isinstance(actor, Actor) else Actor.user(actor)
        self._both(
            lambda s: self.service.change_role(s, org, user, role, actor=actor),
            lambda: self.model.change_role(org, user, role, acting),
        )

    @rule(org=orgs, user=users, data=st.data())
    def remove(self, org: str, user: str, data: st.DataObject) -> None:
        actor = self._actor(data, org)
        acting = actor if isinstance(actor, Actor) else Actor.user(actor)
        self._both(
            lambda s: self.service.remove(s, org, user, actor=actor),
            lambda: self.model.remove(org, user, acting),
        )

    @rule(org=orgs, data=st.data())
    def leave(self, org: str, data: st.DataObject) -> None:
        actor = self._actor(data, org)
        acting = actor if isinstance(actor, Actor) else Actor.user(actor)
        self._both(lambda s: self.service.leave(s, org, actor=actor), lambda: self.model.leave(org, acting))

    @rule(org=orgs, to=users, giver=users, demote_to=roles, data=st.data())
    def transfer(self, org: str, to: str, giver: str, demote_to: Role, data: st.DataObject) -> None:
        actor = self._actor(data, org)
        acting = actor if isinstance(actor, Actor) else Actor.user(actor)
        from_user = giver if acting.is_host else None
        self._both(
            lambda s: self.service.transfer_ownership(
                s, org, to, actor=actor, from_user_id=from_user, demote_to=demote_to
            ),
            lambda: self.model.transfer(org, to, acting, giver, demote_to),
        )

    @invariant()
    def database_matches_model(self) -> None:
        with transaction(self.engine) as session:
            for org in ORGS:
                page = self.service.list_members(session, org, actor=HOST)
                assert {m.user_id: m.role for m in page.items} == self.model.members[org]

    @invariant()
    def every_organization_keeps_an_owner(self) -> None:
        for org in ORGS:
            assert Role.OWNER in self.model.members[org].values()


def test_membership_state_machine(sqlite_engine: sa.Engine) -> None:
    """Random adds, role changes, removals, departures and transfers match the model and keep an OWNER."""
    MembershipMachine.engine = sqlite_engine
    run_state_machine_as_test(
        MembershipMachine, settings=settings(max_examples=100, stateful_step_count=30, deadline=None)
    )


def test_model_refuses_like_the_rules() -> None:
    """The model itself refuses a MEMBER managing an OWNER, so the comparison above is meaningful."""
    model = Model()
    model.add("org_a", "u0", Role.OWNER, HOST)
    model.add("org_a", "u1", Role.MEMBER, Actor.user("u0"))
    with pytest.raises(Refused) as refused:
        model.change_role("org_a", "u0", Role.ADMIN, Actor.user("u1"))
    assert refused.value.error is PermissionDeniedError
    with pytest.raises(Refused) as refused:
        model.leave("org_a", Actor.user("u0"))
    assert refused.value.error is LastOwnerError
