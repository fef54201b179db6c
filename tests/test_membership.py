"""The membership contract: each test runs on SQLite, PostgreSQL and MariaDB (the ``engine`` fixture)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import (
    HOST,
    Action,
    Actor,
    InvalidInputError,
    Member,
    MembershipService,
    PermissionDeniedError,
    Role,
    transaction,
)
from tenantkit.errors import AlreadyMemberError, LastOwnerError, MemberNotFoundError, RoleEscalationError
from tenantkit.events import MemberAdded, MemberRemoved, OwnershipTransferred
from tenantkit.tables import team_members
from tenantkit.testing import EventRecorder, FrozenClock
from tests.strategies import bad_identifiers, bad_role_names

ORG = "org_1"
OTHER_ORG = "org_2"


@pytest.fixture
def recorder() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
def service(clock: FrozenClock, recorder: EventRecorder) -> MembershipService:
    service = MembershipService(clock=clock)
    service.events.subscribe(recorder)
    return service


@pytest.fixture
def org(engine: sa.Engine, service: MembershipService, recorder: EventRecorder) -> sa.Engine:
    """ORG with owner ``o1``, admin ``a1``, member ``m1``; OTHER_ORG with owner ``x1`` and member ``m1``."""
    with transaction(engine) as session:
        service.add(session, ORG, "o1", Role.OWNER, actor=HOST)
        service.add(session, ORG, "a1", Role.ADMIN, actor="o1")
        service.add(session, ORG, "m1", Role.MEMBER, actor="a1")
        service.add(session, OTHER_ORG, "x1", Role.OWNER, actor=HOST)
        service.add(session, OTHER_ORG, "m1", Role.MEMBER, actor=HOST)
    recorder.clear()
    return engine


def roles(engine: sa.Engine, organization_id: str = ORG) -> dict[str, Role]:
    """Every member's role in the organization, read straight from the table."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(team_members.c.user_id, team_members.c.role).where(
                team_members.c.organization_id == organization_id
            )
        ).all()
    return {row.user_id: Role(row.role) for row in rows}


BASE = {"o1": Role.OWNER, "a1": Role.ADMIN, "m1": Role.MEMBER}


class TestAdd:
    def test_host_creates_first_owner(
        self, engine: sa.Engine, service: MembershipService, clock: FrozenClock
    ) -> None:
        """The host adds the first OWNER of a new organization and gets the membership back."""
        with transaction(engine) as session:
            member = service.add(session, "new_org", "founder", "owner", actor=HOST)
        assert isinstance(member, Member)
        assert (member.organization_id, member.user_id, member.role) == ("new_org", "founder", Role.OWNER)
        assert member.created_at == member.updated_at == clock()
        assert roles(engine, "new_org") == {"founder": Role.OWNER}

    def test_default_role_is_member(self, org: sa.Engine, service: MembershipService) -> None:
        """Without a role, the new member is a MEMBER."""
        with transaction(org) as session:
            assert service.add(session, ORG, "new", actor="a1").role is Role.MEMBER

    def test_existing_member_is_refused_and_keeps_role(
        self, org: sa.Engine, service: MembershipService
    ) -> None:
        """Adding an existing member raises AlreadyMemberError carrying the role, which stays as it was."""
        with pytest.raises(AlreadyMemberError) as caught, transaction(org) as session:
            service.add(session, ORG, "m1", Role.ADMIN, actor="o1")
        assert caught.value.role == "MEMBER"
        assert roles(org) == BASE

    @pytest.mark.parametrize(
        ("actor", "role", "error"),
        [
            ("a1", Role.OWNER, RoleEscalationError),
            ("m1", Role.MEMBER, PermissionDeniedError),
            ("x1", Role.MEMBER, PermissionDeniedError),
        ],
    )
    def test_actor_bounds(
        self, org: sa.Engine, service: MembershipService, actor: str, role: Role, error: type[Exception]
    ) -> None:
        """An ADMIN cannot add an OWNER, a MEMBER adds nobody, and another organization's owner neither."""
        with pytest.raises(error), transaction(org) as session:
            service.add(session, ORG, "new", role, actor=actor)
        assert roles(org) == BASE

    def test_owner_adds_owner(self, org: sa.Engine, service: MembershipService) -> None:
        """Only an OWNER makes an OWNER."""
        with transaction(org) as session:
            service.add(session, ORG, "o2", Role.OWNER, actor=Actor.user("o1"))
        assert roles(org)["o2"] is Role.OWNER


class TestBadInput:
    @given(bad=bad_identifiers)
    @settings(max_examples=8)
    def test_bad_ids_change_nothing(self, org: sa.Engine, service: MembershipService, bad: Any) -> None:
        """A malformed id in any position of any method raises InvalidInputError and writes nothing."""
        calls: list[Callable[[Session], object]] = [
            lambda s: service.add(s, bad, "u", actor=HOST),
            lambda s: service.add(s, ORG, bad, actor=HOST),
            lambda s: service.add(s, ORG, "u", actor=bad),
            lambda s: service.change_role(s, ORG, bad, Role.ADMIN, actor="o1"),
            lambda s: service.remove(s, bad, "m1", actor="o1"),
            lambda s: service.leave(s, ORG, actor=bad),
            lambda s: service.transfer_ownership(s, ORG, bad, actor="o1"),
            lambda s: service.get(s, ORG, bad, actor=HOST),
            lambda s: service.get_role(s, bad, "o1"),
            lambda s: service.list_organizations(s, bad, actor=HOST),
        ]
        for call in calls:
            with pytest.raises(InvalidInputError), transaction(org) as session:
                call(session)
        assert roles(org) == BASE

    @given(name=bad_role_names)
    @settings(max_examples=8)
    def test_unknown_role(self, org: sa.Engine, service: MembershipService, name: str) -> None:
        """A role name that names no role is refused before any database work."""
        with pytest.raises(InvalidInputError), transaction(org) as session:
            service.change_role(session, ORG, "m1", name, actor="o1")
        with pytest.raises(InvalidInputError), transaction(org) as session:
            service.add(session, ORG, "new", name, actor="o1")
        assert roles(org) == BASE

    @pytest.mark.parametrize("limit", [0, -1, 501, True, "10"])
    def test_bad_limit(self, org: sa.Engine, service: MembershipService, limit: Any) -> None:
        """A page size outside 1..500 is refused."""
        with pytest.raises(InvalidInputError), transaction(org) as session:
            service.list_members(session, ORG, actor=HOST, limit=limit)

    def test_bad_cursor(self, org: sa.Engine, service: MembershipService) -> None:
        """A cursor that no page produced is refused."""
        with pytest.raises(InvalidInputError), transaction(org) as session:
            service.list_members(session, ORG, actor=HOST, cursor="not-a-cursor")


class TestRead:
    def test_get_and_get_role(self, org: sa.Engine, service: MembershipService) -> None:
        """``get`` returns the membership and ``get_role`` its role; non-members are absent."""
        with transaction(org) as session:
            assert service.get(session, ORG, "a1", actor=HOST).role is Role.ADMIN
            assert service.get_role(session, ORG, "o1") is Role.OWNER
            assert service.get_role(session, ORG, "nobody") is None
            with pytest.raises(MemberNotFoundError):
                service.get(session, ORG, "nobody", actor=HOST)

    def test_scoped_by_organization(self, org: sa.Engine, service: MembershipService) -> None:
        """A member of one organization is invisible through another, and its owner manages nothing here."""
        with transaction(org) as session:
            assert service.get_role(session, OTHER_ORG, "o1") is None
            assert service.get_role(session, OTHER_ORG, "m1") is Role.MEMBER
            with pytest.raises(MemberNotFoundError):
                service.get(session, OTHER_ORG, "a1", actor=HOST)
        with pytest.raises(MemberNotFoundError), transaction(org) as session:
            service.remove(session, OTHER_ORG, "a1", actor="x1")
        with pytest.raises(PermissionDeniedError), transaction(org) as session:
            service.remove(session, ORG, "m1", actor="x1")
        assert roles(org) == BASE
        assert roles(org, OTHER_ORG) == {"x1": Role.OWNER, "m1": Role.MEMBER}

    def test_ids_are_exact(self, org: sa.Engine, service: MembershipService) -> None:
        """Ids are opaque and exact: an organization or user id differing only in case is another one."""
        with transaction(org) as session:
            assert service.get_role(session, ORG.upper(), "o1") is None
            assert service.get_role(session, ORG, "O1") is None

    def test_get_role_through_a_connection(self, org: sa.Engine, service: MembershipService) -> None:
        """``get_role`` also works on a plain Connection, inside a transaction or not."""
        with org.connect() as connection:
            assert service.get_role(connection, ORG, "m1") is Role.MEMBER
            connection.commit()
            with connection.begin():
                assert service.get_role(connection, ORG, "a1") is Role.ADMIN
                assert service.get_role(connection, OTHER_ORG, "a1") is None

    def test_get_role_visible_to_instrumentation(self, org: sa.Engine, service: MembershipService) -> None:
        """With a statement listener on the engine, ``get_role`` goes through SQLAlchemy so it is seen."""
        seen: list[str] = []

        def listener(*args: Any) -> None:
            seen.append(args[2])

        sa.event.listen(org, "before_cursor_execute", listener)
        try:
            with transaction(org) as session:
                assert service.get_role(session, ORG, "a1") is Role.ADMIN
        finally:
            sa.event.remove(org, "before_cursor_execute", listener)
        assert any("team_members" in statement for statement in seen)

    def test_get_role_sees_own_uncommitted_writes(self, org: sa.Engine, service: MembershipService) -> None:
        """``get_role`` runs inside the session's transaction, so it sees that transaction's changes."""
        with Session(org) as session:
            service.change_role(session, ORG, "m1", Role.ADMIN, actor="o1")
            assert service.get_role(session, ORG, "m1") is Role.ADMIN
            session.rollback()
        assert roles(org) == BASE


class TestChangeRole:
    def test_owner_promotes_and_demotes(
        self, org: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """An OWNER may give any role; the change is recorded with its actor."""
        with transaction(org) as session:
            member = service.change_role(session, ORG, "m1", Role.OWNER, actor="o1")
            service.change_role(session, ORG, "a1", Role.MEMBER, actor="o1")
        assert member.role is Role.OWNER
        assert roles(org) == {"o1": Role.OWNER, "a1": Role.MEMBER, "m1": Role.OWNER}
        assert [(e.user_id, e.old_role, e.new_role, e.actor.user_id) for e in recorder.events] == [  # type: ignore[attr-defined]
            ("m1", Role.MEMBER, Role.OWNER, "o1"),
            ("a1", Role.ADMIN, Role.MEMBER, "o1"),
        ]

    @pytest.mark.parametrize(
        ("actor", "target", "role", "error"),
        [
            ("a1", "m1", Role.OWNER, RoleEscalationError),
            ("a1", "a1", Role.OWNER, RoleEscalationError),
            ("a1", "o1", Role.ADMIN, PermissionDeniedError),
            ("m1", "m1", Role.ADMIN, PermissionDeniedError),
            ("m1", "a1", Role.MEMBER, PermissionDeniedError),
            ("o1", "o1", Role.ADMIN, LastOwnerError),
            (HOST, "o1", Role.MEMBER, LastOwnerError),
            ("nobody", "m1", Role.ADMIN, PermissionDeniedError),
            ("o1", "nobody", Role.ADMIN, MemberNotFoundError),
        ],
    )
    def test_refusals(
        self,
        org: sa.Engine,
        service: MembershipService,
        recorder: EventRecorder,
        actor: Actor | str,
        target: str,
        role: Role,
        error: type[Exception],
    ) -> None:
        """Escalation, touching a higher role, a MEMBER managing, losing the last OWNER: all refused."""
        with pytest.raises(error), transaction(org) as session:
            service.change_role(session, ORG, target, role, actor=actor)
        assert roles(org) == BASE
        assert recorder.events == []

    def test_admin_manages_admins_and_members(self, org: sa.Engine, service: MembershipService) -> None:
        """An ADMIN may promote a MEMBER to ADMIN and demote itself."""
        with transaction(org) as session:
            service.change_role(session, ORG, "m1", Role.ADMIN, actor="a1")
            service.change_role(session, ORG, "a1", Role.MEMBER, actor="a1")
        assert roles(org) == {"o1": Role.OWNER, "a1": Role.MEMBER, "m1": Role.ADMIN}

    def test_owner_demotes_self_when_another_owner_remains(
        self, org: sa.Engine, service: MembershipService
    ) -> None:
        """An OWNER may step down once there is a second OWNER."""
        with transaction(org) as session:
            service.change_role(session, ORG, "a1", Role.OWNER, actor="o1")
            service.change_role(session, ORG, "o1", Role.MEMBER, actor="o1")
        assert roles(org) == {"o1": Role.MEMBER, "a1": Role.OWNER, "m1": Role.MEMBER}

    def test_same_role_is_a_no_op(
        self, org: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """Setting the role a member already has changes nothing and records no event."""
        with transaction(org) as session:
            assert service.change_role(session, ORG, "m1", "member", actor="a1").role is Role.MEMBER
        assert recorder.events == []


class TestRemoveAndLeave:
    def test_admin_removes_member(
        self, org: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """An ADMIN removes a MEMBER; a MemberRemoved event with ``left=False`` follows the commit."""
        with transaction(org) as session:
            removed = service.remove(session, ORG, "m1", actor="a1")
        assert removed.role is Role.MEMBER
        assert roles(org) == {"o1": Role.OWNER, "a1": Role.ADMIN}
        assert roles(org, OTHER_ORG)["m1"] is Role.MEMBER
        (event,) = recorder.events
        assert isinstance(event, MemberRemoved)
        assert (event.user_id, event.left, event.actor.user_id) == ("m1", False, "a1")

    @pytest.mark.parametrize(
        ("actor", "target", "error"),
        [
            ("a1", "o1", PermissionDeniedError),
            ("m1", "a1", PermissionDeniedError),
            (HOST, "o1", LastOwnerError),
            ("o1", "nobody", MemberNotFoundError),
        ],
    )
    def test_refusals(
        self,
        org: sa.Engine,
        service: MembershipService,
        actor: Actor | str,
        target: str,
        error: type[Exception],
    ) -> None:
        """An ADMIN cannot remove an OWNER, a MEMBER removes nobody, and the last OWNER stays."""
        with pytest.raises(error), transaction(org) as session:
            service.remove(session, ORG, target, actor=actor)
        assert roles(org) == BASE

    def test_any_non_owner_may_leave(
        self, org: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """A MEMBER leaves through ``leave`` and an ADMIN through ``remove`` on itself."""
        with transaction(org) as session:
            service.leave(session, ORG, actor="m1")
            service.remove(session, ORG, "a1", actor="a1")
        assert roles(org) == {"o1": Role.OWNER}
        assert [e.left for e in recorder.events] == [True, True]  # type: ignore[attr-defined]

    def test_last_owner_cannot_leave(self, org: sa.Engine, service: MembershipService) -> None:
        """The last OWNER's departure is refused; with a second OWNER it succeeds."""
        with pytest.raises(LastOwnerError), transaction(org) as session:
            service.leave(session, ORG, actor="o1")
        with transaction(org) as session:
            service.change_role(session, ORG, "a1", Role.OWNER, actor="o1")
            service.leave(session, ORG, actor="o1")
        assert roles(org) == {"a1": Role.OWNER, "m1": Role.MEMBER}

    def test_host_and_strangers_cannot_leave(self, org: sa.Engine, service: MembershipService) -> None:
        """The host is no member, and a non-member has nothing to leave."""
        with pytest.raises(InvalidInputError), transaction(org) as session:
            service.leave(session, ORG, actor=HOST)
        with pytest.raises(MemberNotFoundError), transaction(org) as session:
            service.leave(session, ORG, actor="x1")
        assert roles(org) == BASE


class TestTransferOwnership:
    def test_owner_hands_over(
        self, org: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """The new owner becomes OWNER, the old one ADMIN, and one OwnershipTransferred event follows."""
        with transaction(org) as session:
            member = service.transfer_ownership(session, ORG, "m1", actor="o1")
        assert member.role is Role.OWNER
        assert roles(org) == {"o1": Role.ADMIN, "a1": Role.ADMIN, "m1": Role.OWNER}
        (event,) = recorder.events
        assert isinstance(event, OwnershipTransferred)
        assert (event.from_user_id, event.to_user_id, event.from_user_new_role) == ("o1", "m1", Role.ADMIN)

    def test_chosen_role_and_host(self, org: sa.Engine, service: MembershipService) -> None:
        """The host names the giver; the giver may step down to any chosen role."""
        with transaction(org) as session:
            service.transfer_ownership(session, ORG, "a1", actor=HOST, from_user_id="o1", demote_to="member")
        assert roles(org) == {"o1": Role.MEMBER, "a1": Role.OWNER, "m1": Role.MEMBER}

    @pytest.mark.parametrize(
        ("actor", "to", "options", "error"),
        [
            ("a1", "m1", {}, PermissionDeniedError),
            (HOST, "m1", {}, InvalidInputError),
            (HOST, "m1", {"from_user_id": "a1"}, PermissionDeniedError),
            ("o1", "o1", {}, InvalidInputError),
            ("o1", "m1", {"from_user_id": "a1"}, InvalidInputError),
            ("o1", "nobody", {}, MemberNotFoundError),
            ("o1", "x1", {}, MemberNotFoundError),
            ("o1", "m1", {"demote_to": "boss"}, InvalidInputError),
        ],
    )
    def test_refusals(
        self,
        org: sa.Engine,
        service: MembershipService,
        actor: Actor | str,
        to: str,
        options: dict[str, str],
        error: type[Exception],
    ) -> None:
        """Only an OWNER hands over, to another existing member of the same organization."""
        with pytest.raises(error), transaction(org) as session:
            service.transfer_ownership(session, ORG, to, actor=actor, **options)
        assert roles(org) == BASE


class TestListing:
    def test_pages_in_stable_order(self, engine: sa.Engine, service: MembershipService) -> None:
        """Pages follow user id order, cover every member once, and survive an insert between pages."""
        with transaction(engine) as session:
            service.add(session, ORG, "u00", Role.OWNER, actor=HOST)
            for index in range(1, 7):
                service.add(session, ORG, f"u{index:02d}", actor=HOST)
            service.add(session, OTHER_ORG, "zz", actor=HOST)
        seen: list[str] = []
        cursor = None
        while True:
            with transaction(engine) as session:
                page = service.list_members(session, ORG, actor=HOST, limit=3, cursor=cursor)
                if cursor is None:
                    service.add(session, ORG, "u000", actor=HOST)
            seen.extend(member.user_id for member in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ["u00", "u01", "u02", "u03", "u04", "u05", "u06"]

    def test_role_filter(self, org: sa.Engine, service: MembershipService) -> None:
        """``role=`` keeps only members holding that role."""
        with transaction(org) as session:
            page = service.list_members(session, ORG, actor=HOST, role="admin")
        assert [member.user_id for member in page.items] == ["a1"]
        assert page.next_cursor is None

    def test_list_organizations(self, org: sa.Engine, service: MembershipService) -> None:
        """A user's memberships come one per organization, in organization order, paginated."""
        with transaction(org) as session:
            first = service.list_organizations(session, "m1", actor=HOST, limit=1)
            second = service.list_organizations(session, "m1", actor=HOST, limit=1, cursor=first.next_cursor)
            nothing = service.list_organizations(session, "nobody", actor=HOST)
        assert [(m.organization_id, m.role) for m in first.items + second.items] == [
            (ORG, Role.MEMBER),
            (OTHER_ORG, Role.MEMBER),
        ]
        assert second.next_cursor is None
        assert nothing.items == []


class TestEventsAndTransactions:
    def test_events_wait_for_commit(
        self, engine: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """Nothing is delivered before commit; every event arrives, in order, after it."""
        with Session(engine) as session:
            service.add(session, ORG, "o1", Role.OWNER, actor=HOST)
            service.add(session, ORG, "m1", actor="o1")
            assert recorder.events == []
            session.commit()
        added = recorder.of_type(MemberAdded)
        assert [(e.user_id, e.actor.user_id) for e in added] == [("o1", None), ("m1", "o1")]  # type: ignore[attr-defined]

    def test_rollback_emits_and_writes_nothing(
        self, org: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """A rolled-back unit of work leaves no row and no event, on every method."""
        with Session(org) as session:
            service.add(session, ORG, "new", actor="o1")
            service.change_role(session, ORG, "m1", Role.ADMIN, actor="o1")
            service.remove(session, ORG, "a1", actor="o1")
            service.transfer_ownership(session, ORG, "m1", actor="o1")
            service.leave(session, ORG, actor="o1")
            session.rollback()
        assert roles(org) == BASE
        assert recorder.events == []

    def test_failed_call_leaves_earlier_work_intact(
        self, org: sa.Engine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """A refused call inside a transaction does not poison it: earlier work still commits."""
        with transaction(org) as session:
            service.add(session, ORG, "new", actor="o1")
            with pytest.raises(AlreadyMemberError):
                service.add(session, ORG, "new", actor="o1")
            with pytest.raises(LastOwnerError):
                service.leave(session, ORG, actor="o1")
        assert roles(org)["new"] is Role.MEMBER
        assert len(recorder.events) == 1

    def test_standalone_transaction_rolls_back_on_error(
        self, org: sa.Engine, service: MembershipService
    ) -> None:
        """``tenantkit.transaction`` commits on success and rolls back when its block raises."""

        def failing_unit_of_work() -> None:
            with transaction(org) as session:
                service.add(session, ORG, "temp", actor=HOST)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing_unit_of_work()
        assert "temp" not in roles(org)


class TestPermissionsThroughService:
    def test_can_and_require(self) -> None:
        """The service answers from its permission table, including host-defined actions."""
        service = MembershipService(
            permissions=tenantkit.Permissions().with_actions("reports:export", Role.ADMIN)
        )
        assert service.can(Role.ADMIN, "reports:export")
        assert not service.can(Role.MEMBER, "reports:export")
        assert not service.can(None, Action.READ_MEMBERS)
        service.require(Role.OWNER, Action.TRANSFER_OWNERSHIP)
        with pytest.raises(PermissionDeniedError):
            service.require(Role.ADMIN, Action.TRANSFER_OWNERSHIP)

    def test_custom_table_bounds_mutations(self, org: sa.Engine, clock: FrozenClock) -> None:
        """A table that withholds ``members:remove`` from ADMIN makes ``remove`` refuse an ADMIN actor."""
        table = {
            role: [
                a
                for a in tenantkit.DEFAULT_PERMISSIONS[role]
                if not (role is Role.ADMIN and a == "members:remove")
            ]
            for role in Role
        }
        service = MembershipService(permissions=tenantkit.Permissions(table), clock=clock)
        with pytest.raises(PermissionDeniedError), transaction(org) as session:
            service.remove(session, ORG, "m1", actor="a1")
        assert roles(org) == BASE


@pytest.mark.anyio
class TestAsync:
    async def test_same_service_through_run_sync(
        self, async_engine: AsyncEngine, service: MembershipService, recorder: EventRecorder
    ) -> None:
        """Every method works through ``AsyncSession.run_sync`` and events wait for the async commit."""
        async with AsyncSession(async_engine) as session:
            await session.run_sync(service.add, ORG, "o1", Role.OWNER, actor=HOST)
            await session.run_sync(service.add, ORG, "m1", actor="o1")
            assert await session.run_sync(service.get_role, ORG, "m1") is Role.MEMBER
            await session.run_sync(service.change_role, ORG, "m1", Role.ADMIN, actor="o1")
            with pytest.raises(LastOwnerError):
                await session.run_sync(service.leave, ORG, actor="o1")
            assert recorder.events == []
            await session.commit()
        assert len(recorder.events) == 3
        async with AsyncSession(async_engine) as session:
            page = await session.run_sync(service.list_members, ORG, actor=HOST)
            moved = await session.run_sync(service.transfer_ownership, ORG, "m1", actor="o1")
            await session.rollback()
        assert [m.user_id for m in page.items] == ["m1", "o1"]
        assert moved.role is Role.OWNER
        async with AsyncSession(async_engine) as session:
            assert await session.run_sync(service.get_role, ORG, "m1") is Role.ADMIN
        assert len(recorder.events) == 3
