"""The last OWNER survives concurrent requests: real sessions in threads, started together by a barrier."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, MembershipService, PermissionDeniedError, Role, transaction
from tenantkit.errors import AlreadyMemberError, ConcurrentUpdateError, LastOwnerError, MemberNotFoundError
from tenantkit.tables import team_members

ORG = "org_race"
REPEATS = 6

Call = Callable[[Session], object]


def race(engine: sa.Engine, calls: list[Call]) -> list[object]:
    """Run each call in its own thread and session; all start together; return each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(index: int, call: Call) -> None:
        try:
            with Session(engine) as session:
                # Open the transaction and take its snapshot before the race, as a request would.
                session.execute(sa.select(team_members.c.id).limit(1)).all()
                barrier.wait()
                results[index] = call(session)
                session.commit()
        except Exception as error:  # the outcome under test, checked by the caller
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def owners(engine: sa.Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(team_members.c.user_id).where(
                team_members.c.organization_id == ORG, team_members.c.role == Role.OWNER
            )
        ).all()
    return {row.user_id for row in rows}


def seed(engine: sa.Engine, service: MembershipService, members: dict[str, Role]) -> None:
    with transaction(engine) as session:
        session.execute(team_members.delete().where(team_members.c.organization_id == ORG))
        for user_id, role in members.items():
            service.add(session, ORG, user_id, role, actor=HOST)


REFUSALS = (LastOwnerError, PermissionDeniedError, ConcurrentUpdateError)


def check(results: list[object], engine: sa.Engine) -> None:
    """At least one OWNER remains, and every failure is a typed refusal, never a raw database error."""
    for result in results:
        assert not isinstance(result, Exception) or isinstance(result, REFUSALS), repr(result)
    assert any(not isinstance(result, Exception) for result in results), results
    assert owners(engine), "the organization lost its last OWNER"


@pytest.fixture
def service() -> MembershipService:
    return MembershipService()


class TestLastOwnerUnderConcurrency:
    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_two_owners_demote_each_other(
        self, server_engine: sa.Engine, service: MembershipService, repeat: int
    ) -> None:
        """Two OWNERs demoting each other at once: one wins, the other is refused, one OWNER remains."""
        seed(server_engine, service, {"o1": Role.OWNER, "o2": Role.OWNER})
        results = race(
            server_engine,
            [
                lambda s: service.change_role(s, ORG, "o2", Role.ADMIN, actor="o1"),
                lambda s: service.change_role(s, ORG, "o1", Role.ADMIN, actor="o2"),
            ],
        )
        check(results, server_engine)
        assert len(owners(server_engine)) == 1

    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_two_removals_of_the_last_two_owners(
        self, server_engine: sa.Engine, service: MembershipService, repeat: int
    ) -> None:
        """Removing both remaining OWNERs at once removes one; the other gets LastOwnerError."""
        seed(server_engine, service, {"o1": Role.OWNER, "o2": Role.OWNER, "m1": Role.MEMBER})
        results = race(
            server_engine,
            [
                lambda s: service.remove(s, ORG, "o1", actor=HOST),
                lambda s: service.remove(s, ORG, "o2", actor=HOST),
            ],
        )
        check(results, server_engine)
        assert sum(isinstance(result, LastOwnerError) for result in results) == 1

    @pytest.mark.parametrize("repeat", range(REPEATS))
    def test_owner_leaves_while_other_owner_is_demoted(
        self, server_engine: sa.Engine, service: MembershipService, repeat: int
    ) -> None:
        """An OWNER leaving while the host demotes the other OWNER leaves exactly one OWNER."""
        seed(server_engine, service, {"o1": Role.OWNER, "o2": Role.OWNER})
        results = race(
            server_engine,
            [
                lambda s: service.leave(s, ORG, actor="o1"),
                lambda s: service.change_role(s, ORG, "o2", Role.MEMBER, actor=HOST),
            ],
        )
        check(results, server_engine)
        assert len(owners(server_engine)) == 1

    @pytest.mark.parametrize("repeat", range(3))
    def test_same_user_added_twice(
        self, server_engine: sa.Engine, service: MembershipService, repeat: int
    ) -> None:
        """Two concurrent adds of one user: one membership, the other caller gets AlreadyMemberError."""
        seed(server_engine, service, {"o1": Role.OWNER})
        results = race(
            server_engine,
            [
                lambda s: service.add(s, ORG, "new", Role.ADMIN, actor="o1"),
                lambda s: service.add(s, ORG, "new", Role.MEMBER, actor=HOST),
            ],
        )
        errors = [result for result in results if isinstance(result, Exception)]
        assert len(errors) == 1, results
        assert isinstance(errors[0], AlreadyMemberError), results
        with transaction(server_engine) as session:
            page = service.list_members(session, ORG, actor=HOST)
        assert [member.user_id for member in page.items] == ["new", "o1"]

    def test_locked_rows_make_a_waiter_fail_typed(
        self, server_engine: sa.Engine, service: MembershipService
    ) -> None:
        """While one demotion holds the owner rows, another that may not wait gets ConcurrentUpdateError."""
        seed(server_engine, service, {"o1": Role.OWNER, "o2": Role.OWNER})
        with Session(server_engine) as first, Session(server_engine) as second:
            service.change_role(first, ORG, "o2", Role.ADMIN, actor="o1")
            if server_engine.dialect.name == "postgresql":
                second.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
            else:
                second.execute(sa.text("SET SESSION innodb_lock_wait_timeout = 1"))
            with pytest.raises(ConcurrentUpdateError) as caught:
                service.change_role(second, ORG, "o1", Role.ADMIN, actor="o2")
            assert caught.value.code == "concurrent_update"
            second.rollback()
            first.commit()
        assert owners(server_engine) == {"o1"}


class TestStricterIsolation:
    def test_repeatable_read_conflict_is_typed(
        self, postgres_engine: sa.Engine, service: MembershipService
    ) -> None:
        """Under REPEATABLE READ a change from a stale snapshot raises ConcurrentUpdateError."""
        seed(postgres_engine, service, {"o1": Role.OWNER, "o2": Role.OWNER})
        stale = postgres_engine.execution_options(isolation_level="REPEATABLE READ")
        with Session(stale) as session:
            session.execute(sa.select(team_members.c.id)).all()
            with transaction(postgres_engine) as other:
                service.change_role(other, ORG, "o2", Role.ADMIN, actor="o1")
            with pytest.raises(ConcurrentUpdateError):
                service.change_role(session, ORG, "o1", Role.ADMIN, actor="o2")
            session.rollback()
        assert owners(postgres_engine) == {"o1"}


class TestSQLiteSerializesWriters:
    @pytest.fixture
    def engine(self, sqlite_engine: sa.Engine) -> sa.Engine:
        return sqlite_engine

    @pytest.mark.parametrize("repeat", range(3))
    def test_two_owners_demote_each_other(
        self, engine: sa.Engine, service: MembershipService, repeat: int
    ) -> None:
        """On SQLite too, two OWNERs demoting each other at once leave one OWNER."""
        seed(engine, service, {"o1": Role.OWNER, "o2": Role.OWNER})
        results = race(
            engine,
            [
                lambda s: service.change_role(s, ORG, "o2", Role.ADMIN, actor="o1"),
                lambda s: service.change_role(s, ORG, "o1", Role.ADMIN, actor="o2"),
            ],
        )
        check(results, engine)
        assert len(owners(engine)) == 1

    def test_lock_step_takes_the_write_lock(self, engine: sa.Engine, service: MembershipService) -> None:
        """A pending demotion holds SQLite's write lock: a writer that may not wait is refused, typed."""
        seed(engine, service, {"o1": Role.OWNER, "o2": Role.OWNER})
        impatient = sa.create_engine(engine.url, connect_args={"timeout": 0})
        try:
            with Session(engine) as first, Session(impatient) as second:
                service.change_role(first, ORG, "o2", Role.ADMIN, actor="o1")
                with pytest.raises(ConcurrentUpdateError):
                    service.change_role(second, ORG, "o1", Role.ADMIN, actor="o2")
                second.rollback()
                first.commit()
        finally:
            impatient.dispose()
        assert owners(engine) == {"o1"}

    def test_lock_taken_even_when_no_owner_row_matches(
        self, engine: sa.Engine, service: MembershipService
    ) -> None:
        """The lock step holds the write lock although it matched no row (a refused call included)."""
        impatient = sa.create_engine(engine.url, connect_args={"timeout": 0})
        try:
            with Session(engine) as first, Session(impatient) as second:
                with pytest.raises(MemberNotFoundError):
                    service.leave(first, "empty_org", actor="ghost")
                with pytest.raises(ConcurrentUpdateError):
                    service.add(second, "elsewhere", "u1", Role.OWNER, actor=HOST)
                second.rollback()
                first.rollback()
            with transaction(engine) as session:
                service.add(session, "elsewhere", "u1", Role.OWNER, actor=HOST)
        finally:
            impatient.dispose()
