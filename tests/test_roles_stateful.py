"""Random sequences of role definitions, edits, deletions, assignments, invitations and API keys by random
actors never let anyone end up with a permission that the acting member could not already grant.

The property, checked after every step a member takes (the host, which may grant anything, only sets the
stage): every permission any member holds afterwards, and every scope of a key issued in the step, that it
did not hold before, was held by the acting member before the step; nobody's rank rises above the actor's;
only an OWNER makes an OWNER; the organization keeps an OWNER; and a refused step changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    Action,
    CustomRole,
    PermissionRegistry,
    Permissions,
    Role,
    TenantKit,
    TenantKitError,
)
from tenantkit.invitations import InvitationSettings
from tenantkit.tables import api_keys, metadata, team_members

ORG = "org_1"
USERS = ("u0", "u1", "u2", "u3", "u4")
HOST_PERMISSIONS = ("p:a", "p:b", "p:c")
REGISTRY = PermissionRegistry(HOST_PERMISSIONS)
# p:a is ADMIN's and OWNER's, p:b OWNER's only, p:c nobody's rank: only the host hands it out at first.
DEPLOYED = CustomRole(
    key="deployed", name="Deployed", rank=Role.MEMBER, permissions=frozenset({"p:c", "members:invite"})
)
POLICY = (
    Permissions(registry=REGISTRY, roles=[DEPLOYED])
    .with_actions("p:a", Role.ADMIN)
    .with_actions("p:b", Role.OWNER)
    .with_actions(Action.MANAGE_ROLES, Role.ADMIN)
)
ROLE_KEYS = ("r1", "r2", "r3")
GRANTABLE = (*HOST_PERMISSIONS, "members:invite", "members:change_role", "roles:manage", "api_keys:manage")

users = st.sampled_from(USERS)
ranks = st.sampled_from([Role.OWNER, Role.ADMIN, Role.MEMBER])
custom_ranks = st.sampled_from([Role.ADMIN, Role.MEMBER])
role_keys = st.sampled_from(ROLE_KEYS)
assignable = st.sampled_from([Role.OWNER, Role.ADMIN, Role.MEMBER, "deployed", *ROLE_KEYS])
permission_sets = st.frozensets(st.sampled_from(GRANTABLE), max_size=4)

Holdings = dict[str, tuple[Role, frozenset[str]]]


class RolesMachine(RuleBasedStateMachine):
    engine: sa.Engine

    def __init__(self) -> None:
        super().__init__()
        self.kit = TenantKit(
            permissions=POLICY,
            invitations=InvitationSettings(secret_keys=["k" * 32]),
            permission_cache_ttl=None,
        )
        with self.engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())

    # -- what everybody holds --------------------------------------------------------------------------

    def holdings(self) -> Holdings:
        """Every member's rank and effective permissions, read from the database."""
        with self.kit.transaction(self.engine) as session:
            users = session.execute(
                sa.select(team_members.c.user_id).where(team_members.c.organization_id == ORG)
            ).scalars()
            result: Holdings = {}
            for user in users:
                held = self.kit.members.effective_permissions(session, ORG, user)
                assert held is not None
                result[user] = (held.rank, held.permissions)
            return result

    def key_scopes(self) -> dict[str, frozenset[str]]:
        with self.engine.connect() as connection:
            return {
                key_id: frozenset(scopes or ())
                for key_id, scopes in connection.execute(sa.select(api_keys.c.id, api_keys.c.scopes))
            }

    def roles(self) -> dict[str, Any]:
        with self.kit.transaction(self.engine) as session:
            return {role.key: role for role in self.kit.roles.list_roles(session, ORG, actor=HOST)}

    def step(self, actor: str, call: Callable[[Session], object]) -> None:
        """Run ``call`` as member ``actor`` and check the property against the state before it."""
        before, keys_before, roles_before = self.holdings(), self.key_scopes(), self.roles()
        try:
            with self.kit.transaction(self.engine) as session:
                call(session)
        except TenantKitError as error:
            event(f"refused: {type(error).__name__}")
            assert self.holdings() == before, "a refused step changed memberships"
            assert self.key_scopes() == keys_before, "a refused step changed keys"
            assert self.roles() == roles_before, "a refused step changed roles"
            return
        event("done")
        after = self.holdings()
        actor_rank, actor_held = before.get(actor, (None, frozenset()))
        for user, (rank, held) in after.items():
            old_rank, old_held = before.get(user, (None, frozenset()))
            gained = held - old_held
            assert gained <= actor_held, f"{actor} gave {user} {sorted(gained - actor_held)} it did not hold"
            if old_rank is None or rank.rank > old_rank.rank:
                assert actor_rank is not None, f"{actor}, no member, raised {user} to {rank}"
                assert rank.rank <= actor_rank.rank, f"{actor} raised {user} to {rank}"
            if rank is Role.OWNER and old_rank is not Role.OWNER:
                assert actor_rank is Role.OWNER, f"{actor} made {user} an OWNER"
        for key_id, scopes in self.key_scopes().items():
            if key_id not in keys_before:
                assert scopes <= actor_held, f"{actor} minted a key scoped {sorted(scopes - actor_held)}"

    # -- the stage, set by the host --------------------------------------------------------------------

    @initialize(owner=users, others=st.lists(st.tuples(users, assignable), max_size=4))
    def found(self, owner: str, others: list[tuple[str, Role | str]]) -> None:
        """The host founds the organization with an OWNER, a host-made role holding p:c, and a few members."""
        with self.kit.transaction(self.engine) as session:
            self.kit.members.add(session, ORG, owner, Role.OWNER, actor=HOST)
            self.kit.roles.create(
                session, ORG, "r1", name="R1", rank=Role.MEMBER, permissions=["p:c", "p:a"], actor=HOST
            )
        for user, role in others:
            try:
                with self.kit.transaction(self.engine) as session:
                    self.kit.members.add(session, ORG, user, role, actor=HOST)
            except TenantKitError:
                pass

    # -- members act -----------------------------------------------------------------------------------

    def _member(self, data: st.DataObject) -> str:
        members = sorted(self.holdings())
        return data.draw(st.sampled_from(members) if members else users, label="actor")

    @rule(user=users, role=assignable, data=st.data())
    def add(self, user: str, role: Role | str, data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(actor, lambda s: self.kit.members.add(s, ORG, user, role, actor=actor))

    @rule(user=users, role=assignable, data=st.data())
    def change_role(self, user: str, role: Role | str, data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(actor, lambda s: self.kit.members.change_role(s, ORG, user, role, actor=actor))

    @rule(user=users, data=st.data())
    def remove(self, user: str, data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(actor, lambda s: self.kit.members.remove(s, ORG, user, actor=actor))

    @rule(to=users, demote_to=assignable, data=st.data())
    def transfer(self, to: str, demote_to: Role | str, data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(
            actor, lambda s: self.kit.members.transfer_ownership(s, ORG, to, actor=actor, demote_to=demote_to)
        )

    @rule(user=users, role=assignable, data=st.data())
    def invite_and_accept(self, user: str, role: Role | str, data: st.DataObject) -> None:
        """The inviter's grant reaches the invitee when it accepts (judged as the inviter's step)."""
        actor = self._member(data)
        address = f"{user}@example.com"

        def both(session: Session) -> None:
            created = self.kit.invitations.create_email_invitation(session, ORG, address, role, actor=actor)
            self.kit.invitations.accept(
                session, created.token.get_secret_value(), user_id=user, email=address, email_verified=True
            )

        self.step(actor, both)

    @rule(key=role_keys, rank=custom_ranks, permissions=permission_sets, data=st.data())
    def create_role(self, key: str, rank: Role, permissions: frozenset[str], data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(
            actor,
            lambda s: self.kit.roles.create(
                s, ORG, key, name=key.upper(), rank=rank, permissions=permissions, actor=actor
            ),
        )

    @rule(key=role_keys, permissions=permission_sets, data=st.data())
    def edit_role(self, key: str, permissions: frozenset[str], data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(actor, lambda s: self.kit.roles.update(s, ORG, key, permissions=permissions, actor=actor))

    @rule(key=role_keys, reassign_to=st.one_of(st.none(), assignable), data=st.data())
    def delete_role(self, key: str, reassign_to: Role | str | None, data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(actor, lambda s: self.kit.roles.delete(s, ORG, key, actor=actor, reassign_to=reassign_to))

    @rule(scopes=permission_sets, data=st.data())
    def issue_key(self, scopes: frozenset[str], data: st.DataObject) -> None:
        actor = self._member(data)
        self.step(actor, lambda s: self.kit.api_keys.issue(s, ORG, "k", actor=actor, scopes=sorted(scopes)))

    # -- what always holds -----------------------------------------------------------------------------

    @invariant()
    def the_organization_keeps_an_owner(self) -> None:
        holdings = self.holdings()
        if holdings:
            assert any(rank is Role.OWNER for rank, _ in holdings.values())

    @invariant()
    def no_membership_holds_a_role_that_does_not_exist(self) -> None:
        known = set(self.roles())
        with self.engine.connect() as connection:
            held = set(
                connection.execute(
                    sa.select(team_members.c.custom_role).where(team_members.c.custom_role.is_not(None))
                ).scalars()
            )
        assert held <= known

    @invariant()
    def custom_roles_sit_inside_their_members_rank(self) -> None:
        roles = self.roles()
        with self.engine.connect() as connection:
            for rank, key in connection.execute(
                sa.select(team_members.c.role, team_members.c.custom_role).where(
                    team_members.c.custom_role.is_not(None)
                )
            ):
                assert Role(getattr(rank, "value", rank)) is roles[key].rank


def test_no_actor_ends_up_granting_what_it_does_not_hold(sqlite_engine: sa.Engine) -> None:
    """Random role definitions, edits, deletions, assignments, invitations and keys keep the escalation
    rule, the rank rules and the owner invariant, and a refused step changes nothing."""
    RolesMachine.engine = sqlite_engine
    run_state_machine_as_test(
        RolesMachine, settings=settings(max_examples=60, stateful_step_count=25, deadline=None)
    )
