"""Roles, permissions and the owner invariant, pinned where mutation testing found gaps (issue 18 §6).

Each test names the behaviour it pins; ``make mutation`` shows which injected bug it catches.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    Action,
    InvalidInputError,
    MembershipService,
    PermissionDeniedError,
    Permissions,
    Role,
)
from tenantkit.errors import LastOwnerError, MemberNotFoundError
from tenantkit.events import EventDispatcher
from tenantkit.testing import EventRecorder, FrozenClock

ORG = "org_1"


class TestRoleAndActionText:
    def test_str_of_a_role_and_an_action_is_its_value(self) -> None:
        """str() and f-strings show a role's name and an action's wire name, never 'Role.OWNER'."""
        assert [str(role) for role in Role] == ["OWNER", "ADMIN", "MEMBER"]
        assert str(Action.CHANGE_ROLES) == "members:change_role"
        assert f"{Action.TRANSFER_OWNERSHIP}" == "organization:transfer_ownership"
        assert {str(action) for action in Action} == {action.value for action in Action}

    def test_ranks_are_the_documented_numbers(self) -> None:
        """OWNER, ADMIN and MEMBER rank 30, 20 and 10."""
        assert (Role.OWNER.rank, Role.ADMIN.rank, Role.MEMBER.rank) == (30, 20, 10)

    def test_a_role_grants_its_own_rank_and_below(self) -> None:
        """can_grant is True for roles of equal or lower rank and False above, as exact bools."""
        assert Permissions().can_grant(Role.ADMIN, Role.ADMIN) is True
        assert Permissions().can_grant(Role.ADMIN, Role.MEMBER) is True
        assert Permissions().can_grant(Role.ADMIN, Role.OWNER) is False
        assert Permissions().can_grant(Role.MEMBER, Role.MEMBER) is True

    @pytest.mark.parametrize("value", [" owner ", "Admin", "member\n"])
    def test_parse_trims_and_ignores_case(self, value: str) -> None:
        """Role names are parsed case-insensitively and without surrounding whitespace."""
        assert Role.parse(value).value == value.strip().upper()

    @pytest.mark.parametrize("value", [None, 3, b"OWNER", "OWNERS", ""])
    def test_parse_refuses_anything_else_naming_the_known_roles(self, value: object) -> None:
        """Non-strings and unknown names are invalid input whose message lists the roles."""
        with pytest.raises(InvalidInputError, match="OWNER, ADMIN, MEMBER"):
            Role.parse(value)  # type: ignore[arg-type]


class TestPermissionAnswers:
    def test_can_answers_exactly_true_or_false(self) -> None:
        """Permissions.can and MembershipService.can return the bools True and False."""
        permissions = Permissions()
        service = MembershipService(permissions=permissions)
        for check in (permissions.can, service.can):
            assert check(Role.MEMBER, Action.READ_MEMBERS) is True
            assert check(Role.MEMBER, Action.MANAGE_API_KEYS) is False
            assert check(None, Action.READ_MEMBERS) is False
            assert check(Role.OWNER, "members:read") is True

    def test_the_default_table_role_by_role(self) -> None:
        """MEMBER reads; ADMIN also manages members, keys, invitations, departments, webhooks, domains and SSO
        and reads the audit log, settings and webhooks; OWNER also deletes, transfers and manages settings and
        roles."""
        table = Permissions().as_table()
        member = ["api_keys:read", "departments:read", "members:read"]
        admin = sorted(
            [
                *member,
                "members:invite",
                "members:change_role",
                "members:remove",
                "api_keys:manage",
                "invitations:read",
                "invitations:manage",
                "audit:read",
                "settings:read",
                "departments:manage",
                "webhooks:manage",
                "webhooks:read",
                "domains:manage",
                "sso:manage",
            ]
        )
        owner = sorted(
            [
                *admin,
                "organization:delete",
                "organization:transfer_ownership",
                "roles:manage",
                "settings:manage",
            ]
        )
        assert table == {"OWNER": owner, "ADMIN": admin, "MEMBER": member}

    def test_require_raises_with_the_action_and_role(self) -> None:
        """require() passes silently when allowed and otherwise names the action and the role."""
        service = MembershipService()
        service.require(Role.ADMIN, Action.INVITE_MEMBERS)
        with pytest.raises(PermissionDeniedError) as denied:
            service.require(Role.MEMBER, "members:invite")
        assert (denied.value.action, denied.value.role) == ("members:invite", Role.MEMBER)

    @pytest.mark.parametrize(
        ("action", "message"),
        [
            (Action.CHANGE_ROLES, "ADMIN may not change the role of an OWNER"),
            (Action.REMOVE_MEMBERS, "ADMIN may not remove an OWNER"),
            ("reports:export", "ADMIN may not reports:export an OWNER"),
        ],
    )
    def test_require_manage_words_the_refusal_by_its_action(self, action: Action | str, message: str) -> None:
        """require_manage() passes a member it may manage and refuses another with the action in words."""
        policy = Permissions()
        policy.require_manage(Role.ADMIN, Role.MEMBER, Action.REMOVE_MEMBERS)
        with pytest.raises(PermissionDeniedError) as denied:
            policy.require_manage(Role.ADMIN, Role.OWNER, action)
        assert str(denied.value) == message
        assert (denied.value.action, denied.value.role) == (str(action), Role.ADMIN)

    def test_with_actions_grants_the_minimum_role_and_above_only(self) -> None:
        """A custom action for ADMIN is granted to ADMIN and OWNER, not MEMBER."""
        permissions = Permissions().with_actions("reports:export", Role.ADMIN)
        assert [permissions.can(role, "reports:export") for role in Role] == [True, True, False]
        assert "reports:export" in permissions.actions(Role.OWNER)
        assert "reports:export" in repr(permissions)

    def test_a_custom_table_leaves_missing_roles_without_actions(self) -> None:
        """A table naming only some roles gives the others nothing."""
        permissions = Permissions({Role.OWNER: ["x:y"]})
        assert permissions.actions(Role.OWNER) == frozenset({"x:y"})
        assert permissions.actions(Role.MEMBER) == frozenset()

    @pytest.mark.parametrize("action", ["", "   ", 5, None])
    def test_an_empty_or_non_string_action_is_invalid_input(self, action: object) -> None:
        """Asking about an empty or non-string action is invalid input, for any role."""
        with pytest.raises(InvalidInputError):
            Permissions().can(Role.OWNER, action)  # type: ignore[arg-type]


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def service(clock: FrozenClock, recorder: EventRecorder) -> MembershipService:
    events = EventDispatcher()
    events.subscribe(recorder)
    return MembershipService(clock=clock, events=events)


def _members(engine: sa.Engine, service: MembershipService, **roles: Role) -> None:
    with Session(engine) as session:
        for user_id, role in roles.items():
            service.add(session, ORG, user_id, role, actor=HOST)
        session.commit()


def _roles(engine: sa.Engine, service: MembershipService) -> dict[str, Role]:
    with Session(engine) as session:
        page = service.list_members(session, ORG, actor=HOST)
    return {member.user_id: member.role for member in page.items}


class TestOwnerInvariant:
    def test_with_two_owners_one_may_step_down_and_then_the_other_may_not(
        self, engine: sa.Engine, service: MembershipService, clock: FrozenClock
    ) -> None:
        """The second-to-last OWNER may be demoted (the result is the changed row); the last one may not."""
        _members(engine, service, alice=Role.OWNER, bob=Role.OWNER)
        clock.advance(seconds=5)
        with Session(engine) as session:
            changed = service.change_role(session, ORG, "bob", Role.ADMIN, actor="alice")
            session.commit()
        assert (changed.role, changed.updated_at) == (Role.ADMIN, clock())
        with Session(engine) as session:
            assert service.get(session, ORG, "bob", actor=HOST) == changed
        with Session(engine) as session, pytest.raises(LastOwnerError) as refused:
            service.change_role(session, ORG, "alice", Role.MEMBER, actor=HOST)
        assert (refused.value.organization_id, refused.value.user_id) == (ORG, "alice")
        assert _roles(engine, service) == {"alice": Role.OWNER, "bob": Role.ADMIN}

    def test_the_last_owner_may_not_be_removed_or_leave_but_a_second_to_last_may(
        self, engine: sa.Engine, service: MembershipService
    ) -> None:
        """An OWNER may leave or be removed while another OWNER remains; the last one may do neither."""
        _members(engine, service, alice=Role.OWNER, bob=Role.OWNER, carol=Role.OWNER)
        with Session(engine) as session:
            left = service.leave(session, ORG, actor="carol")
            removed = service.remove(session, ORG, "bob", actor="alice")
            session.commit()
        assert (left.user_id, left.role, removed.user_id) == ("carol", Role.OWNER, "bob")
        with Session(engine) as session:
            with pytest.raises(LastOwnerError):
                service.leave(session, ORG, actor="alice")
            with pytest.raises(LastOwnerError):
                service.remove(session, ORG, "alice", actor=HOST)
        assert _roles(engine, service) == {"alice": Role.OWNER}

    def test_non_owners_leave_freely_even_beside_a_single_owner(
        self, engine: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """A MEMBER leaving an organization with one OWNER is fine, and its event says it left."""
        _members(engine, service, alice=Role.OWNER, bob=Role.MEMBER)
        recorder.clear()
        with Session(engine) as session:
            service.leave(session, ORG, actor="bob")
            session.commit()
        (event,) = recorder.events
        assert (getattr(event, "user_id", None), getattr(event, "left", None)) == ("bob", True)
        assert _roles(engine, service) == {"alice": Role.OWNER}

    def test_a_stranger_cannot_leave(self, engine: sa.Engine, service: MembershipService) -> None:
        """Leaving an organization one is not a member of is MemberNotFoundError; the host cannot leave."""
        _members(engine, service, alice=Role.OWNER)
        with Session(engine) as session:
            with pytest.raises(MemberNotFoundError):
                service.leave(session, ORG, actor="zoe")
            with pytest.raises(InvalidInputError):
                service.leave(session, ORG, actor=HOST)

    def test_setting_the_role_a_member_has_changes_nothing(
        self, engine: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """Re-setting the last OWNER to OWNER is allowed, records no event and returns the member as it is."""
        _members(engine, service, alice=Role.OWNER)
        recorder.clear()
        with Session(engine) as session:
            same = service.change_role(session, ORG, "alice", "owner", actor=HOST)
            session.commit()
        assert same.role is Role.OWNER
        assert recorder.events == []

    def test_transfer_keeps_an_owner_and_demotes_as_asked(
        self, engine: sa.Engine, service: MembershipService
    ) -> None:
        """Transferring makes the receiver OWNER and the giver demote_to; demote_to OWNER keeps both."""
        _members(engine, service, alice=Role.OWNER, bob=Role.MEMBER, carol=Role.ADMIN)
        with Session(engine) as session:
            new_owner = service.transfer_ownership(session, ORG, "bob", actor="alice", demote_to=Role.MEMBER)
            session.commit()
        assert new_owner.role is Role.OWNER
        assert _roles(engine, service) == {"alice": Role.MEMBER, "bob": Role.OWNER, "carol": Role.ADMIN}
        with Session(engine) as session:
            again = service.transfer_ownership(
                session, ORG, "carol", actor=HOST, from_user_id="bob", demote_to="OWNER"
            )
            session.commit()
        assert again.role is Role.OWNER
        assert _roles(engine, service) == {"alice": Role.MEMBER, "bob": Role.OWNER, "carol": Role.OWNER}

    def test_transfer_to_an_owner_returns_it_unchanged(
        self, engine: sa.Engine, service: MembershipService, clock: FrozenClock
    ) -> None:
        """Transferring to someone already OWNER leaves their row as it was and demotes the giver."""
        _members(engine, service, alice=Role.OWNER, bob=Role.OWNER)
        clock.advance(seconds=5)
        with Session(engine) as session:
            before = service.get(session, ORG, "bob", actor=HOST)
            result = service.transfer_ownership(session, ORG, "bob", actor="alice")
            session.commit()
        assert result == before
        assert _roles(engine, service) == {"alice": Role.ADMIN, "bob": Role.OWNER}

    @pytest.mark.parametrize(
        ("actor", "to_user", "from_user", "error"),
        [
            (HOST, "bob", None, InvalidInputError),
            ("alice", "bob", "carol", InvalidInputError),
            ("alice", "alice", None, InvalidInputError),
            (HOST, "bob", "bob", InvalidInputError),
            ("carol", "bob", None, PermissionDeniedError),
            (HOST, "bob", "carol", PermissionDeniedError),
            (HOST, "bob", "zoe", MemberNotFoundError),
            ("alice", "zoe", None, MemberNotFoundError),
        ],
    )
    def test_transfer_refusals_change_nothing(
        self,
        engine: sa.Engine,
        service: MembershipService,
        actor: str,
        to_user: str,
        from_user: str | None,
        error: type[Exception],
    ) -> None:
        """A transfer without a giver, by a non-owner, to oneself or to a stranger is refused untouched."""
        _members(engine, service, alice=Role.OWNER, bob=Role.MEMBER, carol=Role.ADMIN)
        with Session(engine) as session, pytest.raises(error):
            service.transfer_ownership(session, ORG, to_user, actor=actor, from_user_id=from_user)
        assert _roles(engine, service) == {"alice": Role.OWNER, "bob": Role.MEMBER, "carol": Role.ADMIN}
