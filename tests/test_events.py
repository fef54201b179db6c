"""Events reach listeners only when the transaction that recorded them commits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from tenantkit import HOST, Role
from tenantkit.events import EventDispatcher, MemberAdded, MemberRemoved
from tenantkit.tables import team_members
from tenantkit.testing import EventRecorder

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


def _added(user_id: str) -> MemberAdded:
    return MemberAdded(organization_id="org", actor=HOST, occurred_at=NOW, user_id=user_id, role=Role.MEMBER)


@pytest.fixture
def dispatcher() -> EventDispatcher:
    return EventDispatcher()


@pytest.fixture
def recorder(dispatcher: EventDispatcher) -> EventRecorder:
    recorder = EventRecorder()
    dispatcher.subscribe(recorder)
    return recorder


class TestDelivery:
    def test_delivered_after_commit_not_before(
        self, engine: sa.Engine, dispatcher: EventDispatcher, recorder: EventRecorder
    ) -> None:
        """A recorded event is held until commit, then delivered once."""
        with Session(engine) as session:
            session.execute(sa.select(team_members.c.id).limit(1))
            dispatcher.record(session, _added("u1"))
            assert recorder.events == []
            session.commit()
            assert [event.user_id for event in recorder.of_type(MemberAdded)] == ["u1"]  # type: ignore[attr-defined]
            session.commit()
        assert len(recorder.events) == 1

    def test_rollback_discards(
        self, sqlite_engine: sa.Engine, dispatcher: EventDispatcher, recorder: EventRecorder
    ) -> None:
        """Events of a rolled-back transaction are never delivered, even after a later commit."""
        with Session(sqlite_engine) as session:
            session.execute(sa.select(1))
            dispatcher.record(session, _added("u1"))
            session.rollback()
            session.execute(sa.select(1))
            dispatcher.record(session, _added("u2"))
            session.commit()
        assert [event.user_id for event in recorder.events] == ["u2"]  # type: ignore[attr-defined]

    def test_savepoint_rollback_discards_only_its_events(
        self, sqlite_engine: sa.Engine, dispatcher: EventDispatcher, recorder: EventRecorder
    ) -> None:
        """Rolling back a savepoint drops the events recorded inside it and keeps the ones before it."""
        with Session(sqlite_engine) as session:
            session.execute(sa.select(1))
            dispatcher.record(session, _added("kept"))
            savepoint = session.begin_nested()
            dispatcher.record(session, _added("dropped"))
            savepoint.rollback()
            savepoint = session.begin_nested()
            dispatcher.record(session, _added("committed-savepoint"))
            savepoint.commit()
            session.commit()
        assert [event.user_id for event in recorder.events] == ["kept", "committed-savepoint"]  # type: ignore[attr-defined]

    def test_listener_filter_and_failure_isolation(
        self, sqlite_engine: sa.Engine, dispatcher: EventDispatcher, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A listener hears only the types it asked for; one that raises does not stop the others."""
        removed = EventRecorder()
        everything = EventRecorder()

        def broken(event: object) -> None:
            raise RuntimeError("listener bug")

        dispatcher.subscribe(broken)
        dispatcher.subscribe(removed, MemberRemoved)
        unsubscribe = dispatcher.subscribe(everything)
        with Session(sqlite_engine) as session:
            session.execute(sa.select(1))
            dispatcher.record(session, _added("u1"))
            session.commit()
        unsubscribe()
        with Session(sqlite_engine) as session:
            session.execute(sa.select(1))
            dispatcher.record(session, _added("u2"))
            session.commit()
        assert removed.events == []
        assert len(everything.events) == 1
        assert "listener bug" in caplog.text


@pytest.mark.anyio
async def test_async_session_commit_delivers(async_engine: AsyncEngine) -> None:
    """Through an AsyncSession, events recorded inside ``run_sync`` are delivered when it commits."""
    dispatcher = EventDispatcher()
    recorder = EventRecorder()
    dispatcher.subscribe(recorder)

    def work(sync: Session) -> None:
        sync.execute(sa.select(1))
        dispatcher.record(sync, _added("u1"))

    async with AsyncSession(async_engine) as session:
        await session.run_sync(work)
        assert recorder.events == []
        await session.commit()
    assert len(recorder.events) == 1
