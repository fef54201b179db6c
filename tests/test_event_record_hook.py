"""Record-time subscribers write in the change's own transaction; after-commit listeners wait for commit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, MembershipService, Role
from tenantkit.events import Event, EventDispatcher, MemberAdded, MemberRemoved
from tenantkit.tables import team_members
from tenantkit.testing import EventRecorder, FrozenClock

ORG = "org_1"

outbox = sa.Table(
    "test_event_outbox",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)
"""A stand-in for an audit or outbox table, written by a record-time subscriber."""


def write_outbox_row(session: Session, event: Event) -> None:
    """A record-time subscriber: one row per event, through the change's own session."""
    payload = event.to_payload()
    session.execute(outbox.insert().values(event_type=payload["type"], payload=json.dumps(payload)))


def outbox_types(engine: sa.Engine) -> list[str]:
    """The event types of the outbox rows that committed, in order."""
    with engine.connect() as connection:
        return list(connection.scalars(sa.select(outbox.c.event_type).order_by(outbox.c.id)))


@pytest.fixture
def outbox_engine(engine: sa.Engine) -> Iterator[sa.Engine]:
    outbox.create(engine)
    try:
        yield engine
    finally:
        outbox.drop(engine)


@pytest.fixture
def events() -> EventDispatcher:
    return EventDispatcher()


@pytest.fixture
def membership(clock: FrozenClock, events: EventDispatcher) -> MembershipService:
    return MembershipService(clock=clock, events=events)


@pytest.fixture
def delivered(events: EventDispatcher) -> EventRecorder:
    recorder = EventRecorder()
    events.subscribe(recorder)
    return recorder


class TestRecordTimeWrites:
    def test_commit_keeps_the_row_and_only_then_delivers(
        self,
        outbox_engine: sa.Engine,
        events: EventDispatcher,
        membership: MembershipService,
        delivered: EventRecorder,
    ) -> None:
        """The subscriber runs as the change is recorded; its row commits with it, listeners hear after."""
        seen_inside: list[str] = []
        events.on_record(write_outbox_row)
        events.on_record(lambda _session, event: seen_inside.append(event.event_type))
        with Session(outbox_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            assert seen_inside == ["member.added"]
            assert delivered.events == []
            assert session.scalar(sa.select(sa.func.count()).select_from(outbox)) == 1
            session.commit()
        assert outbox_types(outbox_engine) == ["member.added"]
        assert [event.event_type for event in delivered.events] == ["member.added"]

    def test_rollback_removes_the_row(
        self,
        outbox_engine: sa.Engine,
        events: EventDispatcher,
        membership: MembershipService,
        delivered: EventRecorder,
    ) -> None:
        """A rolled-back change leaves neither its row nor a delivery."""
        events.on_record(write_outbox_row)
        with Session(outbox_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            session.rollback()
        assert outbox_types(outbox_engine) == []
        assert delivered.events == []

    def test_savepoint_rollback_removes_only_its_rows(
        self,
        outbox_engine: sa.Engine,
        events: EventDispatcher,
        membership: MembershipService,
        delivered: EventRecorder,
    ) -> None:
        """Rows written inside a rolled-back savepoint go with it; the rest of the transaction commits."""
        events.on_record(write_outbox_row)
        with Session(outbox_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            savepoint = session.begin_nested()
            membership.add(session, ORG, "bob", Role.MEMBER, actor="alice")
            savepoint.rollback()
            session.commit()
        assert outbox_types(outbox_engine) == ["member.added"]
        assert [event.user_id for event in delivered.of_type(MemberAdded)] == ["alice"]  # type: ignore[attr-defined]

    def test_a_failing_subscriber_aborts_the_change(
        self,
        outbox_engine: sa.Engine,
        events: EventDispatcher,
        membership: MembershipService,
        delivered: EventRecorder,
    ) -> None:
        """An exception at record time leaves the service call unfinished: nothing commits or is delivered."""

        def refuse(session: Session, event: Event) -> None:
            raise RuntimeError("outbox unavailable")

        events.on_record(write_outbox_row)
        events.on_record(refuse)
        with (
            pytest.raises(RuntimeError, match="outbox unavailable"),
            tenantkit.transaction(outbox_engine) as session,
        ):
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        assert outbox_types(outbox_engine) == []
        with Session(outbox_engine) as session:
            assert session.scalar(sa.select(sa.func.count()).select_from(team_members)) == 0
        assert delivered.events == []


class TestEitherKindAlone:
    def test_record_time_subscriber_without_listeners(
        self, outbox_engine: sa.Engine, events: EventDispatcher, membership: MembershipService
    ) -> None:
        """With no after-commit listener at all, the record-time subscriber still writes its rows."""
        events.on_record(write_outbox_row, MemberRemoved)
        with tenantkit.transaction(outbox_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            membership.add(session, ORG, "bob", Role.MEMBER, actor="alice")
            membership.remove(session, ORG, "bob", actor="alice")
        assert outbox_types(outbox_engine) == ["member.removed"]

    def test_listeners_without_record_time_subscribers(
        self,
        outbox_engine: sa.Engine,
        events: EventDispatcher,
        membership: MembershipService,
        delivered: EventRecorder,
    ) -> None:
        """An unsubscribed record-time subscriber writes nothing more; listeners carry on alone."""
        unsubscribe = events.on_record(write_outbox_row)
        unsubscribe()
        with tenantkit.transaction(outbox_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        assert outbox_types(outbox_engine) == []
        assert len(delivered.events) == 1


@pytest.mark.anyio
async def test_async_session_writes_in_its_transaction(async_engine: AsyncEngine) -> None:
    """Through an AsyncSession's ``run_sync``, the subscriber writes in the change's transaction."""
    events = EventDispatcher()
    membership = MembershipService(events=events)
    events.on_record(write_outbox_row)
    async with async_engine.begin() as connection:
        await connection.run_sync(outbox.create)
    try:
        async with AsyncSession(async_engine) as session:
            await session.run_sync(membership.add, ORG, "alice", Role.OWNER, actor=HOST)
            await session.rollback()
            await session.run_sync(membership.add, ORG, "bob", Role.OWNER, actor=HOST)
            await session.commit()
        async with async_engine.connect() as connection:
            rows = (await connection.execute(sa.select(outbox.c.payload))).scalars().all()
        assert [json.loads(row)["data"]["user_id"] for row in rows] == ["bob"]
    finally:
        async with async_engine.begin() as connection:
            await connection.run_sync(outbox.drop)
