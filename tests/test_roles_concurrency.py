"""Deleting a custom role while another request assigns it, on PostgreSQL and MariaDB with real concurrent
sessions (threads with their own connections, started together by a barrier): either the assignment fails
or the deletion does, and no membership or pending invitation is ever left holding a role that is gone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, Role, TenantKit, TenantKitError
from tenantkit.invitations import InvitationSettings
from tenantkit.tables import custom_roles, invitations, organization_settings, team_members
from tests.test_membership_concurrency import race

ORG = "org_race"
REPEATS = 6


@pytest.fixture
def kit() -> TenantKit:
    return TenantKit(invitations=InvitationSettings(secret_keys=["r" * 32]))


def seed(engine: sa.Engine, kit: TenantKit, *, default_temp: bool = False) -> None:
    """ORG with OWNER ``o1``, ADMIN ``a1``, MEMBER ``m1`` and an unheld role ``temp`` (MEMBER rank); with
    ``default_temp``, ``temp`` is the organization's default role."""
    with kit.transaction(engine) as session:
        for table in (team_members, custom_roles, invitations, organization_settings):
            session.execute(table.delete().where(table.c.organization_id == ORG))
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "o1", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "a1", Role.ADMIN, actor="o1")
        kit.members.add(session, ORG, "m1", actor="o1")
        kit.roles.create(
            session, ORG, "temp", name="Temp", rank=Role.MEMBER, permissions=["members:invite"], actor="o1"
        )
        if default_temp:
            kit.organizations.update_settings(
                session, ORG, {"default_role": "temp"}, expected_version=0, actor="o1"
            )


def dangling(engine: sa.Engine) -> list[tuple[str, str]]:
    """Memberships and invitations of ORG naming a custom role that has no row."""
    existing = sa.select(custom_roles.c.key).where(custom_roles.c.organization_id == ORG)
    with engine.connect() as connection:
        members = connection.execute(
            sa.select(team_members.c.user_id, team_members.c.custom_role).where(
                team_members.c.organization_id == ORG,
                team_members.c.custom_role.is_not(None),
                team_members.c.custom_role.not_in(existing),
            )
        ).all()
        offers = connection.execute(
            sa.select(invitations.c.id, invitations.c.custom_role).where(
                invitations.c.organization_id == ORG,
                invitations.c.custom_role.is_not(None),
                invitations.c.custom_role.not_in(existing),
            )
        ).all()
    return [(row[0], row[1]) for row in [*members, *offers]]


def role_exists(engine: sa.Engine) -> bool:
    with engine.connect() as connection:
        return (
            connection.execute(
                sa.select(custom_roles.c.key).where(custom_roles.c.organization_id == ORG)
            ).first()
            is not None
        )


def outcome(result: object) -> str:
    """``ok``, or the refusal's class name; anything but a typed refusal fails the test."""
    if isinstance(result, Exception):
        assert isinstance(result, TenantKitError), repr(result)
        return type(result).__name__
    return "ok"


class TestDeleteWhileAssigning:
    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_delete_races_a_role_change(self, server_engine: sa.Engine, kit: TenantKit, repeat: int) -> None:
        """Deleting ``temp`` while an ADMIN gives it to a member: exactly one of them wins."""
        seed(server_engine, kit)
        deleting, assigning = race(
            server_engine,
            [
                lambda s: kit.roles.delete(s, ORG, "temp", actor="o1"),
                lambda s: kit.members.change_role(s, ORG, "m1", "temp", actor="a1"),
            ],
        )
        outcomes = (outcome(deleting), outcome(assigning))
        assert outcomes in {
            ("ok", "UnknownRoleError"),
            ("RoleInUseError", "ok"),
            ("ConcurrentUpdateError", "ok"),
            ("ok", "ConcurrentUpdateError"),
        }, outcomes
        assert dangling(server_engine) == []
        assert role_exists(server_engine) == (outcomes[0] != "ok")

    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_delete_races_adding_a_member(
        self, server_engine: sa.Engine, kit: TenantKit, repeat: int
    ) -> None:
        """Deleting ``temp`` while the OWNER adds a member with it: never a member with a dangling role."""
        seed(server_engine, kit)
        deleting, adding = race(
            server_engine,
            [
                lambda s: kit.roles.delete(s, ORG, "temp", actor="o1"),
                lambda s: kit.members.add(s, ORG, "new", "temp", actor="o1"),
            ],
        )
        outcomes = (outcome(deleting), outcome(adding))
        assert outcomes in {
            ("ok", "UnknownRoleError"),
            ("RoleInUseError", "ok"),
            ("ConcurrentUpdateError", "ok"),
            ("ok", "ConcurrentUpdateError"),
        }, outcomes
        assert role_exists(server_engine) == (outcomes[0] != "ok")
        assert dangling(server_engine) == []

    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_delete_races_an_acceptance(self, server_engine: sa.Engine, kit: TenantKit, repeat: int) -> None:
        """Deleting ``temp`` with ``reassign_to=MEMBER`` while an invitation to it is accepted: the invitee
        ends up with ``temp`` refused-then-reassigned or with plain MEMBER, never with a vanished role."""
        seed(server_engine, kit)
        with kit.transaction(server_engine) as session:
            created = kit.invitations.create_email_invitation(
                session, ORG, "new@example.com", "temp", actor="o1"
            )
        token = created.token.get_secret_value()
        deleting, accepting = race(
            server_engine,
            [
                lambda s: kit.roles.delete(s, ORG, "temp", actor="o1", reassign_to=Role.MEMBER),
                lambda s: kit.invitations.accept(
                    s, token, user_id="new", email="new@example.com", email_verified=True
                ),
            ],
        )
        for result in (deleting, accepting):
            outcome(result)
        assert dangling(server_engine) == []
        if not isinstance(deleting, Exception):
            assert not role_exists(server_engine)
        with server_engine.connect() as connection:
            joined = connection.execute(
                sa.select(team_members.c.custom_role).where(
                    team_members.c.organization_id == ORG, team_members.c.user_id == "new"
                )
            ).all()
        if not isinstance(accepting, Exception):
            assert len(joined) == 1


def invite(kit: TenantKit, how: str) -> Callable[[Session], object]:
    """An ADMIN's invitation offering ``temp``: by email, as a link, or by naming no role where ``temp`` is
    the organization's default role."""
    if how == "email":
        return lambda s: kit.invitations.create_email_invitation(
            s, ORG, "new@example.com", "temp", actor="a1"
        )
    if how == "link":
        return lambda s: kit.invitations.create_link_invitation(s, ORG, ["example.com"], "temp", actor="a1")
    return lambda s: kit.invitations.create_email_invitation(s, ORG, "new@example.com", actor="a1")


def offers(engine: sa.Engine) -> list[tuple[str, str | None]]:
    """The rank and custom role of ORG's invitations."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(invitations.c.role, invitations.c.custom_role).where(
                invitations.c.organization_id == ORG
            )
        ).all()
    return [(str(getattr(row[0], "value", row[0])), row[1]) for row in rows]


class TestDeleteWhileInviting:
    """Deleting ``temp`` while an invitation offering it is created (the deadlock the roles work suspected on
    MariaDB): the invitation's creation share-locks the role's row before it writes, the deletion locks it
    for update first, so they take turns. Either the invitation fails or the deletion does, or the database
    picks a deadlock victim, which tenantkit raises as ``ConcurrentUpdateError`` (retry the unit of work);
    never an invitation, or later a member, with a dangling role."""

    @pytest.mark.parametrize("how", ["email", "link", "default"])
    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_delete_races_creating_an_invitation(
        self, server_engine: sa.Engine, kit: TenantKit, how: str, repeat: int
    ) -> None:
        """Without ``reassign_to``: a deletion after the invitation is refused (``role_in_use``), an
        invitation after the deletion finds no role (``unknown_role``)."""
        seed(server_engine, kit, default_temp=how == "default")
        deleting, inviting = race(
            server_engine, [lambda s: kit.roles.delete(s, ORG, "temp", actor="o1"), invite(kit, how)]
        )
        outcomes = (outcome(deleting), outcome(inviting))
        assert outcomes in {
            ("ok", "UnknownRoleError"),
            ("RoleInUseError", "ok"),
            ("ConcurrentUpdateError", "ok"),
            ("ok", "ConcurrentUpdateError"),
        }, outcomes
        assert dangling(server_engine) == []
        assert role_exists(server_engine) == (outcomes[0] != "ok")
        assert offers(server_engine) == ([("MEMBER", "temp")] if outcomes[1] == "ok" else [])

    @pytest.mark.parametrize("how", ["email", "default"])
    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_delete_with_reassignment_races_creating_an_invitation(
        self, server_engine: sa.Engine, kit: TenantKit, how: str, repeat: int
    ) -> None:
        """With ``reassign_to=MEMBER`` both may succeed: an invitation created first is moved to MEMBER by
        the deletion; one created after it is refused. The invitation that exists offers a role that does."""
        seed(server_engine, kit, default_temp=how == "default")
        deleting, inviting = race(
            server_engine,
            [
                lambda s: kit.roles.delete(s, ORG, "temp", actor="o1", reassign_to=Role.MEMBER),
                invite(kit, how),
            ],
        )
        outcomes = (outcome(deleting), outcome(inviting))
        assert outcomes in {
            ("ok", "ok"),
            ("ok", "UnknownRoleError"),
            ("ConcurrentUpdateError", "ok"),
            ("ok", "ConcurrentUpdateError"),
        }, outcomes
        assert dangling(server_engine) == []
        expected = {("ok", "ok"): [("MEMBER", None)], ("ConcurrentUpdateError", "ok"): [("MEMBER", "temp")]}
        assert offers(server_engine) == expected.get(outcomes, [])

    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_an_invitation_that_won_the_race_is_accepted_into_an_existing_role(
        self, server_engine: sa.Engine, kit: TenantKit, repeat: int
    ) -> None:
        """After the race, whichever way it went, accepting the invitation (if one exists) makes a member
        whose custom role exists, or none."""
        seed(server_engine, kit)
        _, inviting = race(
            server_engine,
            [
                lambda s: kit.roles.delete(s, ORG, "temp", actor="o1", reassign_to=Role.MEMBER),
                invite(kit, "email"),
            ],
        )
        if isinstance(inviting, Exception):
            outcome(inviting)
            return
        token = inviting.token.get_secret_value()  # type: ignore[attr-defined]
        with kit.transaction(server_engine) as session:
            kit.invitations.accept(
                session, token, user_id="new", email="new@example.com", email_verified=True
            )
        assert dangling(server_engine) == []
