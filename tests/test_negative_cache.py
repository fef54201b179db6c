"""The negative cache: a well-formed key that matched no row is answered from memory for a short while.

Anyone can make checksum-valid keys, so without it each made-up key costs a lookup. It must never hide a key
issued after its entry: an issue forgets every entry at once in its process and again at commit (through a
bus, in the others), and a lookup that began before an issue cannot put its stale "unknown" in afterwards.
Only "no row matched" is kept, and only from a lookup that began its own transaction. The database tests
take the ``engine`` fixture: SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, ApiKeyVerification, CacheKey, MembershipService
from tenantkit.api_keys import PendingVerification, RefusalCache
from tenantkit.events import EventDispatcher
from tenantkit.testing import FrozenClock

ORG = "org_1"
OTHER_ORG = "org_2"
TTL = timedelta(seconds=5)


def negative_service(
    clock: FrozenClock, events: EventDispatcher | None = None, **options: Any
) -> ApiKeyService:
    """A service with the negative cache on (and read-only verification: no write to tell apart)."""
    membership = MembershipService(clock=clock, events=events or EventDispatcher())
    options.setdefault("negative_cache_ttl", TTL)
    return ApiKeyService(membership=membership, clock=clock, track_last_used=False, **options)


def refusals(service: ApiKeyService) -> RefusalCache:
    cache = service._refusals
    assert cache is not None
    return cache


@contextmanager
def lookups(engine: sa.Engine) -> Iterator[list[str]]:
    """Every SELECT on api_keys SQLAlchemy sends (the listener also turns the raw fast path off)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "api_keys" in statement:
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def verify(engine: sa.Engine, service: ApiKeyService, key: str, **kwargs: Any) -> ApiKeyVerification:
    """Verify on a connection of its own (so the lookup begins its own transaction)."""
    with engine.connect() as connection:
        return service.verify(connection, key, **kwargs)


def issue(engine: sa.Engine, service: ApiKeyService, org: str = ORG, **kwargs: Any) -> tuple[str, str]:
    with Session(engine) as session:
        issued = service.issue(session, org, "ci", actor=HOST, **kwargs)
        session.commit()
    return issued.id, issued.reveal()


def from_memory(service: ApiKeyService, key: str) -> str | None:
    """The reason memory alone gives for ``key``, or ``None`` when the database must be asked."""
    answer = service.begin_verification(key)
    if isinstance(answer, PendingVerification):
        return None
    return answer.reason or "valid"


class TestAnsweredFromMemory:
    def test_a_made_up_key_is_looked_up_once_per_time_to_live(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """The first verification looks the key up; the others within the TTL do not; at the TTL, again."""
        service = negative_service(clock)
        made_up = service.format.generate()
        with lookups(engine) as seen:
            assert [verify(engine, service, made_up).reason for _ in range(4)] == ["unknown"] * 4
            assert len(seen) == 1
            assert from_memory(service, made_up) == "unknown"
            clock.advance(TTL - timedelta(microseconds=1))
            assert verify(engine, service, made_up).reason == "unknown"
            assert len(seen) == 1
            clock.advance(microseconds=1)  # exactly the TTL: no longer trusted
            assert from_memory(service, made_up) is None
            assert verify(engine, service, made_up).reason == "unknown"
            assert len(seen) == 2

    def test_off_by_default(self, sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
        """Without negative_cache_ttl every made-up key is looked up every time."""
        service = ApiKeyService(membership=MembershipService(clock=clock), clock=clock)
        made_up = service.format.generate()
        with lookups(sqlite_engine) as seen:
            verify(sqlite_engine, service, made_up)
            verify(sqlite_engine, service, made_up)
        assert len(seen) == 2

    def test_the_cache_is_bounded(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Beyond negative_cache_size entries the oldest is forgotten (and looked up again)."""
        service = negative_service(clock, negative_cache_size=2)
        first, second, third = (service.format.generate() for _ in range(3))
        for made_up in (first, second, third):
            verify(engine, service, made_up)
        assert len(refusals(service)) == 2
        assert [from_memory(service, key) for key in (first, second, third)] == [None, "unknown", "unknown"]


class TestNeverHidesAnIssuedKey:
    def test_an_issue_forgets_every_entry_at_once(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Issuing a key in this process empties the negative cache before the issue even commits."""
        service = negative_service(clock)
        made_up = service.format.generate()
        verify(engine, service, made_up)
        assert from_memory(service, made_up) == "unknown"
        with Session(engine) as session:
            service.issue(session, ORG, "new", actor=HOST)
            assert len(refusals(service)) == 0
            assert from_memory(service, made_up) is None
            session.rollback()

    def test_a_refusal_cached_before_commit_is_forgotten_at_commit(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """A key looked up while its issue was uncommitted (no row seen) verifies once the issue commits."""
        service = negative_service(clock)
        with Session(engine) as session:
            issued = service.issue(session, ORG, "new", actor=HOST)
            assert verify(engine, service, issued.reveal()).reason == "unknown"  # not visible yet
            assert from_memory(service, issued.reveal()) == "unknown"
            session.commit()
        assert from_memory(service, issued.reveal()) is None
        assert verify(engine, service, issued.reveal()).valid

    def test_another_process_forgets_through_the_bus_at_commit(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """The issue's commit announces CacheKey.new_api_key (an id, never a digest) and the bus clears the
        other process's entry; without a bus the TTL is the bound there."""
        here, there, alone = EventDispatcher(), EventDispatcher(), EventDispatcher()
        bus = LoopbackBus(here, there)
        here.invalidator = there.invalidator = bus
        writer = negative_service(clock, here)
        reader = negative_service(clock, there)
        unconnected = negative_service(clock, alone)
        with Session(engine) as session:
            issued = writer.issue(session, ORG, "new", actor=HOST)
            key = issued.reveal()
            for service in (reader, unconnected):
                assert verify(engine, service, key).reason == "unknown"
            assert bus.announced == []  # the issue's own clear stays in its process until commit
            assert from_memory(reader, key) == "unknown"
            session.commit()
        assert bus.announced == [[CacheKey.new_api_key(ORG, issued.id)]]
        assert verify(engine, reader, key).valid
        assert from_memory(unconnected, key) == "unknown"  # no bus: trusted until its TTL
        clock.advance(TTL)
        assert verify(engine, unconnected, key).valid

    def test_a_lookup_racing_an_issue_cannot_cache_its_stale_refusal(
        self, engine: sa.Engine, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A lookup that saw no row, with the issue committing before its cache write, caches nothing."""
        service = negative_service(clock)
        cache = refusals(service)
        put = cache.put
        kept: list[bool] = []
        with Session(engine) as session:
            issued = service.issue(session, ORG, "new", actor=HOST)

            def commit_then_put(digest: str, now: datetime, *, ticket: int) -> bool:
                session.commit()  # the issue lands between this lookup and its cache write
                kept.append(put(digest, now, ticket=ticket))
                return kept[-1]

            monkeypatch.setattr(cache, "put", commit_then_put)
            assert verify(engine, service, issued.reveal()).reason == "unknown"
        assert kept == [False]
        assert len(cache) == 0
        assert verify(engine, service, issued.reveal()).valid

    def test_an_issue_between_lookup_and_cache_write_keeps_the_refusal_out(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Through the service's own seam: a key issued after the lookup, before the write, wins."""
        service = negative_service(clock)
        made_up = service.format.generate()

        def issue_a_key() -> None:  # any issue empties the cache
            issue(engine, service)

        service._before_cache_write = issue_a_key
        assert verify(engine, service, made_up).reason == "unknown"
        service._before_cache_write = None
        assert len(refusals(service)) == 0
        with lookups(engine) as seen:
            assert verify(engine, service, made_up).reason == "unknown"
        assert len(seen) == 1  # looked up again: nothing stale was kept

    def test_a_ticket_from_before_a_clear_is_refused(self, clock: FrozenClock) -> None:
        """RefusalCache.put with a ticket taken before an issue's clear keeps nothing."""
        cache = RefusalCache(10, TTL)
        old = cache.ticket()
        cache.invalidate([CacheKey.new_api_key(ORG, "k1")])
        assert cache.put("digest", clock(), ticket=old) is False
        assert not cache.refuses("digest", clock())
        assert cache.put("digest", clock(), ticket=cache.ticket()) is True
        assert cache.refuses("digest", clock())


class TestOnlyNoSuchKey:
    @pytest.mark.parametrize("case", ["other organization", "revoked", "expired"])
    def test_a_refused_existing_key_is_never_cached(
        self, engine: sa.Engine, clock: FrozenClock, case: str
    ) -> None:
        """An existing key refused (another organization's, revoked, expired) is looked up each time."""
        service = negative_service(clock)
        key_id, key = issue(engine, service, expires=timedelta(hours=1))
        arguments: dict[str, Any] = {}
        if case == "other organization":
            arguments["organization_id"] = OTHER_ORG
            expected = "unknown"
        elif case == "revoked":
            with Session(engine) as session:
                service.revoke(session, ORG, key_id, actor=HOST)
                session.commit()
            expected = "revoked"
        else:
            clock.advance(hours=1)
            expected = "expired"
        with lookups(engine) as seen:
            assert [verify(engine, service, key, **arguments).reason for _ in range(2)] == [expected] * 2
        assert len(seen) == 2
        assert len(refusals(service)) == 0
        if case == "other organization":
            assert verify(engine, service, key).valid

    def test_a_lookup_in_a_transaction_already_open_is_not_cached(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Its snapshot may predate an issue the cache was told of: its refusal is answered, not kept."""
        service = negative_service(clock)
        made_up = service.format.generate()
        with lookups(engine) as seen, Session(engine) as session:
            session.execute(sa.text("SELECT 1"))
            assert session.in_transaction()
            assert service.verify(session, made_up).reason == "unknown"
            assert service.verify(session, made_up).reason == "unknown"
        assert len(seen) == 2
        assert len(refusals(service)) == 0

    def test_a_malformed_key_takes_no_entry(self, clock: FrozenClock) -> None:
        """A malformed key is refused by the format check alone; the negative cache stays empty."""
        service = negative_service(clock)
        assert from_memory(service, "tk_live_not-a-key") == "malformed"
        assert len(refusals(service)) == 0


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


# --- RefusalCache against a model ------------------------------------------------------------------------

DIGESTS = st.sampled_from(["d1", "d2", "d3", "d4", "d5"])
MAX_SIZE = 3


@dataclass
class Model:
    """What RefusalCache should do: digests in insertion order with their expiry, and a generation."""

    entries: dict[str, datetime] = field(default_factory=dict)
    generation: int = 0


class RefusalCacheMachine(RuleBasedStateMachine):
    """put / refuses / clear / invalidate / time passing, compared with the model after every step."""

    tickets = Bundle("tickets")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FrozenClock()
        self.cache = RefusalCache(MAX_SIZE, TTL)
        self.model = Model()

    @rule(target=tickets)
    def take_ticket(self) -> tuple[int, int]:
        return self.cache.ticket(), self.model.generation

    @rule(digest=DIGESTS, ticket=tickets)
    def put(self, digest: str, ticket: tuple[int, int]) -> None:
        real, modelled = ticket
        now = self.clock()
        kept = self.cache.put(digest, now, ticket=real)
        expected = modelled == self.model.generation
        if expected:
            entries = self.model.entries
            entries.pop(digest, None)
            while len(entries) >= MAX_SIZE:
                del entries[next(iter(entries))]
            entries[digest] = now + TTL
        assert kept is expected

    @rule(digest=DIGESTS)
    def refuses(self, digest: str) -> None:
        now = self.clock()
        until = self.model.entries.get(digest)
        assert self.cache.refuses(digest, now) is (until is not None and now < until)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.model = Model(generation=self.model.generation + 1)

    @rule(kind=st.sampled_from(["new_api_key", "api_key", "member"]))
    def invalidate(self, kind: str) -> None:
        self.cache.invalidate([CacheKey(kind, ORG, "k1")])
        if kind == "new_api_key":
            self.model = Model(generation=self.model.generation + 1)

    @rule(milliseconds=st.integers(min_value=0, max_value=int(TTL.total_seconds() * 1000)))
    def advance(self, milliseconds: int) -> None:
        self.clock.advance(milliseconds=milliseconds)

    @invariant()
    def bounded_and_same_size(self) -> None:
        assert len(self.cache) == len(self.model.entries) <= MAX_SIZE


TestRefusalCacheModel = RefusalCacheMachine.TestCase
TestRefusalCacheModel.settings = settings(max_examples=60, stateful_step_count=30)
