"""Every cache is evicted through one seam: committed changes announce their cache keys to one invalidator."""

from __future__ import annotations

import gc
from collections.abc import Collection
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, ApiKeyService, CacheKey, Invalidator, LocalInvalidator, MembershipService, Role
from tenantkit.events import EventDispatcher
from tenantkit.testing import FrozenClock

ORG = "org_1"


class RecordingCache:
    """A stand-in cache that writes down what it is told to forget."""

    def __init__(self) -> None:
        self.invalidated: list[CacheKey] = []
        self.clears = 0

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        self.invalidated.extend(keys)

    def clear(self) -> None:
        self.clears += 1


class LoopbackBus:
    """A cross-process bus in miniature: what one process announces, every process's caches evict."""

    def __init__(self, *processes: EventDispatcher) -> None:
        self.processes = processes
        self.announced: list[list[CacheKey]] = []

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        self.announced.append(list(keys))
        for process in self.processes:
            process.caches.invalidate(keys)

    def clear(self) -> None:
        for process in self.processes:
            process.caches.clear()


class TestLocalInvalidator:
    def test_broadcasts_to_every_registered_cache(self) -> None:
        """Invalidations and clears reach every registered cache until it is unregistered."""
        local = LocalInvalidator()
        first, second = RecordingCache(), RecordingCache()
        local.register(first)
        unregister = local.register(second)
        key = CacheKey.api_key(ORG, "k1")
        local.invalidate([key])
        unregister()
        local.invalidate([CacheKey.member(ORG, "u1")])
        local.clear()
        assert first.invalidated == [key, CacheKey("member", ORG, "u1")]
        assert (first.clears, second.invalidated, second.clears) == (1, [key], 0)
        assert isinstance(local, Invalidator)
        assert len(local) == 1

    def test_holds_caches_weakly(self) -> None:
        """A cache nobody else holds leaves the invalidator when it is collected."""
        local = LocalInvalidator()
        local.register(RecordingCache())
        gc.collect()
        assert len(local) == 0


def issue_and_cache(engine: sa.Engine, service: ApiKeyService) -> tuple[str, str]:
    """Issue a key and verify it once, so that ``service``'s cache holds it."""
    with tenantkit.transaction(engine) as session:
        issued = service.issue(session, ORG, "ci", actor=HOST)
    with Session(engine) as session:
        assert service.verify(session, issued.reveal()).valid
        session.commit()
    assert service.verify_cached(issued.reveal()) is not None
    return issued.id, issued.reveal()


class TestAnnouncedAtCommit:
    @pytest.fixture
    def events(self) -> EventDispatcher:
        return EventDispatcher()

    @pytest.fixture
    def membership(self, clock: FrozenClock, events: EventDispatcher) -> MembershipService:
        return MembershipService(clock=clock, events=events)

    def test_committed_changes_announce_their_keys_before_listeners_run(
        self, sqlite_engine: sa.Engine, events: EventDispatcher, membership: MembershipService
    ) -> None:
        """One announcement per commit names each changed key and member, before any listener hears."""
        order: list[str] = []
        announced: list[list[CacheKey]] = []

        class Announcements(RecordingCache):
            def invalidate(self, keys: Collection[CacheKey]) -> None:
                order.append("invalidate")
                announced.append(list(keys))

        events.invalidator = Announcements()
        events.subscribe(lambda event: order.append(event.event_type))
        keys = ApiKeyService(membership=membership)
        with tenantkit.transaction(sqlite_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            membership.add(session, ORG, "mia", Role.MEMBER, actor="alice")
            membership.change_role(session, ORG, "mia", Role.ADMIN, actor="alice")
            issued = keys.issue(session, ORG, "ci", actor="mia")
            rotated = keys.rotate(session, ORG, issued.id, actor="mia")
            keys.revoke(session, ORG, rotated.id, actor="mia")
            keys.delete(session, ORG, issued.id, actor="mia")
            assert announced == []
        assert announced == [
            [
                CacheKey.member(ORG, "alice"),
                CacheKey.member(ORG, "mia"),
                CacheKey.new_api_key(ORG, issued.id),  # issued: a refusal cache forgets "no such key"
                CacheKey.api_key(ORG, issued.id),  # rotated out (and deleted)
                CacheKey.new_api_key(ORG, rotated.id),  # issued by the rotation
                CacheKey.api_key(ORG, rotated.id),  # revoked
            ]
        ]
        assert order[0] == "invalidate"
        assert order[1:] == [
            "member.added",
            "member.added",
            "member.role_changed",
            "api_key.issued",
            "api_key.rotated",
            "api_key.revoked",
            "api_key.deleted",
        ]

    def test_rolled_back_changes_announce_nothing(
        self, sqlite_engine: sa.Engine, events: EventDispatcher, membership: MembershipService
    ) -> None:
        """A change that rolls back is never announced to the invalidator."""
        bus = RecordingCache()
        events.invalidator = bus
        with Session(sqlite_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            session.rollback()
        assert bus.invalidated == []

    def test_a_failing_invalidator_is_logged_and_listeners_still_hear(
        self,
        sqlite_engine: sa.Engine,
        events: EventDispatcher,
        membership: MembershipService,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The change is committed whatever the invalidator does; its failure is logged."""

        class Down(RecordingCache):
            def invalidate(self, keys: Collection[CacheKey]) -> None:
                raise ConnectionError("bus down")

        heard: list[str] = []
        events.invalidator = Down()
        events.subscribe(lambda event: heard.append(event.event_type))
        with tenantkit.transaction(sqlite_engine) as session:
            membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        assert heard == ["member.added"]
        assert "bus down" in caplog.text


def test_a_bus_plugged_in_once_evicts_every_process(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """A revocation committed in one process evicts the key cached in another, through the bus alone."""
    here, there = EventDispatcher(), EventDispatcher()
    bus = LoopbackBus(here, there)
    here.invalidator = there.invalidator = bus
    writer = ApiKeyService(membership=MembershipService(clock=clock, events=here), clock=clock)
    reader = ApiKeyService(
        membership=MembershipService(clock=clock, events=there), clock=clock, cache_ttl=timedelta(hours=1)
    )
    key_id, key = issue_and_cache(sqlite_engine, reader)
    with tenantkit.transaction(sqlite_engine) as session:
        writer.revoke(session, ORG, key_id, actor=HOST)
        assert reader.verify_cached(key) is not None  # not announced before commit
    # The issue's commit announced the new key first (refusal caches forget), then the revocation's.
    assert bus.announced == [[CacheKey.new_api_key(ORG, key_id)], [CacheKey.api_key(ORG, key_id)]]
    assert reader.verify_cached(key) is None
    with Session(sqlite_engine) as session:
        assert reader.verify(session, key).reason == "revoked"


def test_a_bus_that_missed_messages_clears_every_cache(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """``clear()`` on the seam (a bus's answer to a gap) empties every registered key cache."""
    events = EventDispatcher()
    membership = MembershipService(clock=clock, events=events)
    services = [
        ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(hours=1)) for _ in range(2)
    ]
    cached = [issue_and_cache(sqlite_engine, service)[1] for service in services]
    events.caches.clear()
    assert [service.verify_cached(key) for service, key in zip(services, cached, strict=True)] == [None, None]
