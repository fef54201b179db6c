"""The shared database layer (``tenantkit._db``): the fast path's gate, conflicts, locks, rowcount."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from tenantkit import HOST, Role
from tenantkit._db import (
    CURSOR_KEY,
    begin_write,
    concurrency_reason,
    is_observed,
    rowcount,
    typed_concurrency_errors,
)
from tenantkit._pagination import Keyset
from tenantkit.errors import ConcurrentUpdateError, InvalidInputError
from tenantkit.invitations._service import InvitationService
from tenantkit.members._service import _ROLE_OF, MembershipService
from tenantkit.tables import team_members
from tenantkit.testing import FrozenClock


@pytest.fixture
def fresh(engine: sa.Engine) -> Iterator[Callable[[], sa.Engine]]:
    """New engines on the test's database: SQLAlchemy never clears an event flag once a listener set it."""
    made: list[sa.Engine] = []

    def make() -> sa.Engine:
        made.append(sa.create_engine(engine.url))
        return made[-1]

    yield make
    for each in made:
        each.dispose()


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None


class TestTheFastPathGate:
    """The fast path reads SQLAlchemy's private ``_has_events`` flags; these tests pin what it relies on."""

    def test_the_private_flags_exist_on_every_dialect(self, fresh: Callable[[], sa.Engine]) -> None:
        """Connection, engine and dialect each carry a boolean ``_has_events``, as ``is_observed`` reads."""
        with fresh().connect() as connection:
            for holder in (connection, connection.engine, connection.dialect):
                flag = getattr(holder, "_has_events", None)
                assert isinstance(flag, bool), (
                    f"{type(holder).__name__}._has_events is gone: tenantkit._db.is_observed must follow"
                )

    def test_a_plain_engine_is_not_observed(self, fresh: Callable[[], sa.Engine]) -> None:
        """Nothing listening: the hot reads may go straight to the driver."""
        with fresh().connect() as connection:
            assert not is_observed(connection)

    @pytest.mark.parametrize(
        "event_name", ["before_cursor_execute", "after_cursor_execute", "before_execute"]
    )
    def test_an_engine_listener_is_seen(self, fresh: Callable[[], sa.Engine], event_name: str) -> None:
        """A listener on the engine, added before or after the connection opened, turns the fast path off."""
        engine = fresh()
        with engine.connect() as before:
            event.listen(engine, event_name, _ignore)
            with engine.connect() as after:
                assert is_observed(before)
                assert is_observed(after)

    def test_a_connection_listener_is_seen(self, fresh: Callable[[], sa.Engine]) -> None:
        """A listener on one connection turns the fast path off for that connection only."""
        engine = fresh()
        with engine.connect() as watched, engine.connect() as other:
            event.listen(watched, "before_cursor_execute", _ignore)
            assert is_observed(watched)
            assert not is_observed(other)

    def test_a_dialect_listener_is_seen(self, fresh: Callable[[], sa.Engine]) -> None:
        """A ``do_execute`` listener (a dialect event, as some instrumentations use) turns it off."""
        engine = fresh()
        event.listen(engine, "do_execute", _ignore)
        with engine.connect() as connection:
            assert is_observed(connection)

    def test_unobserved_reads_go_to_the_driver(
        self, fresh: Callable[[], sa.Engine], clock: FrozenClock
    ) -> None:
        """With nothing listening, the role lookup runs on the kept driver cursor, not through SQLAlchemy."""
        engine = fresh()
        members = MembershipService(clock=clock)
        with Session(engine) as session:
            members.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            session.commit()
        with engine.connect() as connection:
            assert members.get_role(connection, "org_1", "owner") is Role.OWNER
            assert CURSOR_KEY in connection.connection.info

    def test_observed_reads_reach_the_listener(
        self, fresh: Callable[[], sa.Engine], clock: FrozenClock
    ) -> None:
        """With a listener, the role lookup goes through SQLAlchemy, so that the listener sees it."""
        engine = fresh()
        members = MembershipService(clock=clock)
        with Session(engine) as session:
            members.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            session.commit()
        seen: list[Any] = []
        event.listen(engine, "before_execute", lambda conn, statement, *rest: seen.append(statement))
        with engine.connect() as connection:
            assert members.get_role(connection, "org_1", "owner") is Role.OWNER
            assert members.get_role(connection, "org_1", "nobody") is None
        assert seen.count(_ROLE_OF) == 2


class _PgError(Exception):
    def __init__(self, attribute: str, code: str) -> None:
        super().__init__(f"error {code}")
        setattr(self, attribute, code)


def _dbapi_error(original: BaseException) -> sa.exc.DBAPIError:
    return sa.exc.OperationalError("UPDATE team_members ...", {}, original)


def _raised_while_handling(first: BaseException, then: BaseException) -> BaseException:
    try:
        try:
            raise first
        except BaseException:
            raise then  # noqa: B904  (the implicit __context__ is what is under test)
    except BaseException as error:
        return error


CONFLICTS = {
    "psycopg sqlstate deadlock": (_dbapi_error(_PgError("sqlstate", "40P01")), "SQLSTATE 40P01"),
    "psycopg2 pgcode serialization failure": (_dbapi_error(_PgError("pgcode", "40001")), "SQLSTATE 40001"),
    "lock not available": (_dbapi_error(_PgError("sqlstate", "55P03")), "SQLSTATE 55P03"),
    "MySQL lock wait timeout": (
        _dbapi_error(Exception(1205, "Lock wait timeout exceeded")),
        "MySQL error 1205",
    ),
    "MySQL deadlock": (_dbapi_error(Exception(1213, "Deadlock found")), "MySQL error 1213"),
    "MySQL savepoint lost to a deadlock": (
        _dbapi_error(Exception(1305, "SAVEPOINT sa_savepoint_1 does not exist")),
        "MySQL error 1305",
    ),
    "SQLite locked": (
        _dbapi_error(sqlite3.OperationalError("database is locked")),
        "SQLite database is locked",
    ),
    "a deadlock under a later error": (
        _raised_while_handling(
            _dbapi_error(Exception(1213, "Deadlock found")), sa.exc.InvalidRequestError("savepoint gone")
        ),
        "MySQL error 1213",
    ),
}

NOT_CONFLICTS = {
    "unique violation": _dbapi_error(_PgError("sqlstate", "23505")),
    "MySQL duplicate key": _dbapi_error(Exception(1062, "Duplicate entry")),
    "SQLite constraint": _dbapi_error(sqlite3.IntegrityError("UNIQUE constraint failed")),
    "another driver saying locked": _dbapi_error(Exception("Table 'x' was locked with a READ lock")),
    "not a database error": ValueError("no"),
}


class TestConcurrencyClassification:
    @pytest.mark.parametrize(("error", "reason"), CONFLICTS.values(), ids=CONFLICTS.keys())
    def test_conflicts_are_recognised_on_every_driver(self, error: BaseException, reason: str) -> None:
        """Deadlocks, lock timeouts and serialization failures of every dialect get one reason each."""
        assert concurrency_reason(error) == reason

    @pytest.mark.parametrize("error", NOT_CONFLICTS.values(), ids=NOT_CONFLICTS.keys())
    def test_other_errors_are_not_conflicts(self, error: BaseException) -> None:
        """Constraint violations and unrelated errors are left as they are."""
        assert concurrency_reason(error) is None

    def test_a_conflict_becomes_concurrent_update_error(self) -> None:
        """Inside ``typed_concurrency_errors`` a conflict is raised as ConcurrentUpdateError, chained."""
        deadlock = _dbapi_error(Exception(1213, "Deadlock found"))
        with pytest.raises(ConcurrentUpdateError) as raised, typed_concurrency_errors("org_1"):
            raise deadlock
        assert raised.value.__cause__ is deadlock

    def test_other_database_errors_pass_through(self) -> None:
        """Inside ``typed_concurrency_errors`` any other database error is raised unchanged."""
        duplicate = _dbapi_error(Exception(1062, "Duplicate entry"))
        with pytest.raises(sa.exc.OperationalError) as raised, typed_concurrency_errors("org_1"):
            raise duplicate
        assert raised.value is duplicate


class TestSqliteWriteLock:
    def test_begin_write_takes_the_write_lock(self, sqlite_engine: sa.Engine) -> None:
        """After ``begin_write`` no other connection can write until the transaction ends."""
        impatient = sa.create_engine(sqlite_engine.url, connect_args={"timeout": 0.05})
        try:
            with Session(sqlite_engine) as session:
                begin_write(session, team_members, {})
                with impatient.begin() as other, pytest.raises(sa.exc.OperationalError, match="locked"):
                    other.execute(team_members.delete())
                session.rollback()
            with impatient.begin() as other:
                other.execute(team_members.delete())
        finally:
            impatient.dispose()

    def test_begin_write_does_nothing_elsewhere(self, engine: sa.Engine) -> None:
        """PostgreSQL and MariaDB have row locks: no statement is sent there."""
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *rest: sent.append(sql))
        with Session(engine) as session:
            session.connection()
            sent.clear()
            begin_write(session, team_members, {})
        assert bool(sent) == (engine.dialect.name == "sqlite")

    def test_a_locked_database_is_a_concurrent_update_for_invitations(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """An invitation created while another writer holds SQLite's lock fails as ConcurrentUpdateError."""
        members = MembershipService(clock=clock)
        invitations = InvitationService(membership=members, secret_keys=["s" * 32], clock=clock)
        with Session(sqlite_engine) as session:
            members.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            session.commit()
        impatient = sa.create_engine(sqlite_engine.url, connect_args={"timeout": 0.05})
        try:
            with sqlite_engine.connect() as holder:
                holder.exec_driver_sql("BEGIN IMMEDIATE")
                with Session(impatient) as session, pytest.raises(ConcurrentUpdateError):
                    invitations.create_email_invitation(session, "org_1", "a@example.com", actor="owner")
                holder.rollback()
        finally:
            impatient.dispose()


class TestRowcountAndSeek:
    def test_rowcount_counts_the_rows_a_write_matched(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """``rowcount`` of an UPDATE is the number of rows it matched."""
        members = MembershipService(clock=clock)
        with Session(engine) as session:
            for user in ("a", "b"):
                members.add(session, "org_1", user, Role.MEMBER, actor=HOST)
            result = session.execute(
                team_members.update()
                .where(team_members.c.organization_id == "org_1")
                .values(updated_at=clock())
            )
            assert rowcount(result) == 2

    def test_seek_checks_the_limit_before_the_cursor(self) -> None:
        """A page request refuses a bad limit and a bad cursor before any database work, limit first."""
        keyset = Keyset("members", team_members.c.user_id)
        with pytest.raises(InvalidInputError) as raised:
            keyset.seek(limit=0, cursor="not a cursor")
        assert raised.value.field == "limit"
        with pytest.raises(InvalidInputError) as raised:
            keyset.seek(limit=10, cursor="not a cursor")
        assert raised.value.field == "cursor"
        first = keyset.seek(limit=10, cursor=None)
        assert (first.limit, first.after) == (10, None)
