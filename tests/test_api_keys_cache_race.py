"""Evictions win against verifications under way, and argon2id refuses dead lookup ids without hashing.

Issue 18 §1: a verification that read a key's row just before its revocation (rotation, deletion) committed
must not put its stale "valid" into the cache after the eviction ran. The tests hold a verification between
its lookup and its cache write through the service's test seam (not an engine event, which would switch off
the fast path users run; each test checks that path was taken), commit the change in another session, let
the verification finish, and ask the cache and the database. Issue 18 §3: with the argon2id hasher, a key
reusing a revoked or expired key's lookup id is refused before any hash is computed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, MembershipService
from tenantkit._db import CURSOR_KEY
from tenantkit.api_keys._cache import CacheEntry, KeyCache
from tenantkit.api_keys._format import ALPHABET, LOOKUP_ID_LENGTH, SECRET_LENGTH, checksum
from tenantkit.events import EventDispatcher
from tenantkit.tables import api_keys
from tenantkit.testing import FrozenClock

ORG = "org_1"
OTHER_ORG = "org_2"

Change = Literal["revoke", "rotate", "delete"]
CHANGES: tuple[tuple[Change, str], ...] = (
    ("revoke", "revoked"),
    ("rotate", "expired"),
    ("delete", "unknown"),
)
"""Each change that evicts a key, and how the key verifies once it is committed."""


@pytest.fixture
def events() -> EventDispatcher:
    return EventDispatcher()


@pytest.fixture
def membership(clock: FrozenClock, events: EventDispatcher) -> MembershipService:
    return MembershipService(clock=clock, events=events)


@pytest.fixture
def cached(membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
    return ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(minutes=10))


def issue_used_key(engine: sa.Engine, service: ApiKeyService) -> tuple[str, str]:
    """Issue a key and verify it once without the cache, so that its ``last_used_at`` is current.

    A verification that held the key row's lock (its ``last_used_at`` write) would block the revocation
    the tests commit while it is held; with the clock frozen, none is due after this first use.
    """
    with Session(engine) as session:
        issued = service.issue(session, ORG, "ci", actor=HOST)
        session.commit()
    uncached = ApiKeyService(membership=service.membership, clock=service.clock)
    with Session(engine) as session:
        assert uncached.verify(session, issued.reveal()).valid
        session.commit()
    return issued.id, issued.reveal()


def apply_change(engine: sa.Engine, service: ApiKeyService, change: Change, key_id: str) -> None:
    """Revoke, rotate (with no grace) or delete the key in a session of its own, and commit."""
    with Session(engine) as session:
        if change == "revoke":
            service.revoke(session, ORG, key_id, actor=HOST)
        elif change == "rotate":
            service.rotate(session, ORG, key_id, actor=HOST, grace=timedelta(0))
        else:
            service.delete(session, ORG, key_id, actor=HOST)
        session.commit()


def holding(service: ApiKeyService, while_held: Callable[[], None]) -> list[int]:
    """Make ``service``'s next cache write wait for ``while_held``; the list counts the holds."""
    held: list[int] = []

    def hold() -> None:
        held.append(1)
        service._before_cache_write = None
        while_held()

    service._before_cache_write = hold
    return held


def forget_cursor(connection: sa.Connection) -> None:
    """Drop the raw cursor the fast path keeps on this driver connection, so its return proves the path."""
    cursor = connection.connection.info.pop(CURSOR_KEY, None)
    if cursor is not None:
        cursor.close()


def took_fast_path(connection: sa.Connection) -> bool:
    """Whether a statement went straight to the driver (the fast path keeps its cursor on the connection)."""
    return CURSOR_KEY in connection.connection.info


def verify_fresh(engine: sa.Engine, service: ApiKeyService, key: str) -> str | None:
    """The key's verification reason from the database (``None`` when valid), in a new session."""
    with Session(engine) as session:
        result = service.verify(session, key)
        session.commit()
    return result.reason


class TestEvictionDuringVerification:
    @pytest.mark.parametrize(("change", "reason"), CHANGES)
    def test_change_committed_between_lookup_and_cache_write(
        self, engine: sa.Engine, cached: ApiKeyService, change: Change, reason: str
    ) -> None:
        """A change committed while a verification is held after its lookup keeps that result uncached."""
        key_id, key = issue_used_key(engine, cached)
        held = holding(cached, lambda: apply_change(engine, cached, change, key_id))
        assert not engine._has_events
        with engine.connect() as connection:
            forget_cursor(connection)
            racing = cached.verify(connection, key)
            assert took_fast_path(connection)
            connection.commit()
        assert held == [1]
        assert racing.valid  # it read the row before the change: the race really happened
        assert cached.verify_cached(key) is None
        assert verify_fresh(engine, cached, key) == reason
        assert cached.verify_cached(key) is None

    def test_verification_held_in_another_thread(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """A request thread held after its lookup while the revoking thread commits leaves nothing cached."""
        key_id, key = issue_used_key(engine, cached)
        looked_up, release = threading.Event(), threading.Event()
        results: list[bool] = []

        def wait_for_release() -> None:
            looked_up.set()
            assert release.wait(timeout=30)

        holding(cached, wait_for_release)

        def request() -> None:
            with engine.connect() as connection:
                results.append(cached.verify(connection, key).valid)
                connection.commit()

        thread = threading.Thread(target=request)
        thread.start()
        try:
            assert looked_up.wait(timeout=30)
            apply_change(engine, cached, "revoke", key_id)
        finally:
            release.set()
            thread.join(timeout=30)
        assert results == [True]
        assert cached.verify_cached(key) is None
        assert verify_fresh(engine, cached, key) == "revoked"

    @pytest.mark.parametrize(("change", "reason"), CHANGES)
    def test_change_through_another_service_of_the_process(
        self,
        engine: sa.Engine,
        cached: ApiKeyService,
        membership: MembershipService,
        clock: FrozenClock,
        change: Change,
        reason: str,
    ) -> None:
        """A change made by another service on the same event dispatcher is heard after commit, and wins."""
        key_id, key = issue_used_key(engine, cached)
        admin = ApiKeyService(membership=membership, clock=clock)
        holding(cached, lambda: apply_change(engine, admin, change, key_id))
        with Session(engine) as session:
            assert cached.verify(session, key).valid
            session.commit()
        assert cached.verify_cached(key) is None
        assert verify_fresh(engine, cached, key) == reason

    def test_clear_between_lookup_and_cache_write(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """Clearing the cache while a verification is held also keeps that result out."""
        _, key = issue_used_key(engine, cached)
        holding(cached, cached.clear_cache)
        assert verify_fresh(engine, cached, key) is None
        assert cached.verify_cached(key) is None
        assert verify_fresh(engine, cached, key) is None
        assert cached.verify_cached(key) is not None

    def test_unchanged_key_is_cached(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """Without any eviction meanwhile, a held verification's result is cached as before."""
        _, key = issue_used_key(engine, cached)
        held = holding(cached, lambda: None)
        assert verify_fresh(engine, cached, key) is None
        assert held == [1]
        known = cached.verify_cached(key)
        assert known is not None
        assert known.valid

    def test_other_keys_unaffected(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """Revoking one key while another key's verification is held leaves the other one cacheable."""
        revoked_id, _ = issue_used_key(engine, cached)
        _, kept_key = issue_used_key(engine, cached)
        holding(cached, lambda: apply_change(engine, cached, "revoke", revoked_id))
        assert verify_fresh(engine, cached, kept_key) is None
        assert cached.verify_cached(kept_key) is not None

    def test_rotated_out_key_cached_again_afterwards(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """An evicted key still valid (rotated out, in its grace period) is cached again by a later lookup."""
        key_id, key = issue_used_key(engine, cached)
        with Session(engine) as session:
            cached.rotate(session, ORG, key_id, actor=HOST, grace=timedelta(hours=1))
            session.commit()
        assert verify_fresh(engine, cached, key) is None
        known = cached.verify_cached(key)
        assert known is not None
        assert known.expires_at is not None

    @pytest.mark.parametrize(("change", "reason"), CHANGES)
    def test_transaction_older_than_the_change(
        self, engine: sa.Engine, cached: ApiKeyService, change: Change, reason: str
    ) -> None:
        """A verification in a transaction that read before the change committed does not cache the key.

        Under REPEATABLE READ (MariaDB's default) such a transaction still sees the key as it was, so its
        lookup may answer valid although it starts after the eviction.
        """
        key_id, key = issue_used_key(engine, cached)
        with Session(engine) as reader:
            reader.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar_one()
            apply_change(engine, cached, change, key_id)
            cached.verify(reader, key)
            reader.commit()
        assert cached.verify_cached(key) is None
        assert verify_fresh(engine, cached, key) == reason


class TestAsyncEvictionDuringVerification:
    @pytest.mark.anyio
    @pytest.mark.parametrize(("change", "reason"), CHANGES)
    async def test_change_committed_between_lookup_and_cache_write(
        self,
        async_engine: AsyncEngine,
        membership: MembershipService,
        clock: FrozenClock,
        change: Change,
        reason: str,
    ) -> None:
        """Verifying through run_sync (aiosqlite, psycopg async), a change committed meanwhile still wins."""
        cached = ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(minutes=10))
        sync_driver = {"sqlite+aiosqlite": "sqlite", "postgresql+psycopg_async": "postgresql+psycopg"}
        engine = sa.create_engine(async_engine.url.set(drivername=sync_driver[async_engine.url.drivername]))
        try:
            key_id, key = issue_used_key(engine, cached)
            held = holding(cached, lambda: apply_change(engine, cached, change, key_id))
            async with async_engine.connect() as connection:
                await connection.run_sync(forget_cursor)
                racing = await connection.run_sync(cached.verify, key)
                assert await connection.run_sync(took_fast_path)
                await connection.commit()
            assert held == [1]
            assert racing.valid
            assert cached.verify_cached(key) is None
            assert verify_fresh(engine, cached, key) == reason
        finally:
            engine.dispose()


# --- the cache on its own -----------------------------------------------------------------------------


def entry(key_id: str) -> CacheEntry[str]:
    """A cache entry of the key ``key_id`` that stays fresh for the whole test."""
    return CacheEntry(f"value of {key_id}", key_id, datetime(2100, 1, 1, tzinfo=timezone.utc), None)


class TestKeyCacheTickets:
    def test_eviction_after_ticket_refuses_put(self) -> None:
        """A value read before its key's eviction is refused; one read after it is kept."""
        cache: KeyCache[str] = KeyCache(10)
        before = cache.ticket()
        cache.evict("k1")
        assert not cache.put("d1", entry("k1"), ticket=before)
        assert cache.put("d1", entry("k1"), ticket=cache.ticket())
        assert len(cache) == 1

    def test_clear_after_ticket_refuses_put(self) -> None:
        """A value read before a clear is refused, whatever its key."""
        cache: KeyCache[str] = KeyCache(10)
        before = cache.ticket()
        cache.clear()
        assert not cache.put("d1", entry("k1"), ticket=before)
        assert cache.put("d1", entry("k1"), ticket=cache.ticket())

    def test_earliest_ticket(self) -> None:
        """The earliest ticket admits keys never evicted, and refuses keys it remembers an eviction of."""
        cache: KeyCache[str] = KeyCache(10)
        cache.evict("k1")
        assert not cache.put("d1", entry("k1"), ticket=cache.earliest_ticket())
        assert cache.put("d2", entry("k2"), ticket=cache.earliest_ticket())

    def test_forgotten_tombstone_raises_the_floor(self) -> None:
        """Once the oldest eviction is forgotten, every ticket that may predate it is refused."""
        cache: KeyCache[str] = KeyCache(2)
        before = cache.ticket()
        for key_id in ("k1", "k2", "k3"):  # three tombstones in a cache of two: k1's is forgotten
            cache.evict(key_id)
        assert not cache.put("d1", entry("k1"), ticket=before)
        assert not cache.put("d9", entry("k9"), ticket=before)
        assert not cache.put("d2", entry("k2"), ticket=cache.earliest_ticket())
        assert cache.put("d1", entry("k1"), ticket=cache.earliest_ticket())
        assert cache.put("d2", entry("k2"), ticket=cache.ticket())


class CacheTicketMachine(RuleBasedStateMachine):
    """Tickets, evictions, clears and puts in any order, in a cache too small to remember every eviction."""

    KEYS = ("k1", "k2", "k3")

    def __init__(self) -> None:
        super().__init__()
        self.cache: KeyCache[str] = KeyCache(len(self.KEYS) - 1)
        self.tickets: list[tuple[int, set[str]]] = []  # each ticket, and the keys evicted since it

    @rule()
    def take_ticket(self) -> None:
        self.tickets.append((self.cache.ticket(), set()))

    @rule(key_id=st.sampled_from(KEYS))
    def evict(self, key_id: str) -> None:
        self.cache.evict(key_id)
        for _, evicted in self.tickets:
            evicted.add(key_id)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        for _, evicted in self.tickets:
            evicted.update(self.KEYS)

    @precondition(lambda self: bool(self.tickets))
    @rule(data=st.data(), key_id=st.sampled_from(KEYS))
    def put(self, data: st.DataObject, key_id: str) -> None:
        """A value whose key was evicted since its ticket is refused; with no eviction at all, it is kept."""
        ticket, evicted = data.draw(st.sampled_from(self.tickets))
        kept = self.cache.put(f"digest of {key_id}", entry(key_id), ticket=ticket)
        if key_id in evicted:
            assert not kept
        if not evicted:
            assert kept

    @invariant()
    def bounded(self) -> None:
        assert len(self.cache) <= self.cache.max_size
        assert len(self.cache._tombstones) <= self.cache.max_size


def test_cache_ticket_state_machine() -> None:
    """Whatever the order of tickets, evictions, clears and puts, no value read before its eviction stays."""
    run_state_machine_as_test(
        CacheTicketMachine, settings=settings(max_examples=200, stateful_step_count=30, deadline=None)
    )


# --- argon2id: dead lookup ids cost no hash ---------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """argon2-cffi's hasher at its cheapest, counting the verifications it runs."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verifications += 1
        return super().verify(hash, password)


@pytest.fixture
def spy() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def argon(membership: MembershipService, clock: FrozenClock, spy: CountingHasher) -> ApiKeyService:
    return ApiKeyService(membership=membership, clock=clock, hasher="argon2id", argon2_hasher=spy)


def minted(service: ApiKeyService, key: str, secret: str) -> str:
    """A well-formed key carrying ``key``'s lookup id and ``secret``: anyone who saw ``key`` can make one."""
    prefix = service.format.prefix
    body = key[len(prefix) : len(prefix) + LOOKUP_ID_LENGTH] + secret
    return prefix + body + checksum(body)


def issue_argon2(engine: sa.Engine, service: ApiKeyService, **kwargs: Any) -> tuple[str, str]:
    with Session(engine) as session:
        issued = service.issue(session, ORG, "argon", actor=HOST, **kwargs)
        session.commit()
    return issued.id, issued.reveal()


secrets_ = st.text(alphabet=ALPHABET, min_size=SECRET_LENGTH, max_size=SECRET_LENGTH)


class TestArgon2DeadLookupIds:
    def test_revoked_lookup_id_runs_no_hash(
        self, engine: sa.Engine, argon: ApiKeyService, spy: CountingHasher
    ) -> None:
        """A revoked key, and any key minted with its lookup id, is refused as revoked without a hash."""
        key_id, key = issue_argon2(engine, argon)
        with Session(engine) as session:
            argon.revoke(session, ORG, key_id, actor=HOST)
            session.commit()
        spy.verifications = 0

        @settings(max_examples=5)
        @given(secret=secrets_)
        def check(secret: str) -> None:
            forged = minted(argon, key, secret)
            assert argon.format.check(forged)
            assert verify_fresh(engine, argon, forged) == "revoked"

        check()
        assert verify_fresh(engine, argon, key) == "revoked"
        assert spy.verifications == 0

    def test_expired_lookup_id_runs_no_hash(
        self, engine: sa.Engine, argon: ApiKeyService, spy: CountingHasher, clock: FrozenClock
    ) -> None:
        """An expired key, and a key minted with its lookup id, is refused as expired without a hash."""
        _, key = issue_argon2(engine, argon, expires=timedelta(seconds=10))
        clock.advance(seconds=10)
        spy.verifications = 0
        assert verify_fresh(engine, argon, minted(argon, key, "B" * SECRET_LENGTH)) == "expired"
        assert verify_fresh(engine, argon, key) == "expired"
        assert spy.verifications == 0

    def test_other_organization_runs_no_hash(
        self, engine: sa.Engine, argon: ApiKeyService, spy: CountingHasher
    ) -> None:
        """Verifying for another organization answers ``unknown`` without a hash, as it did with one."""
        _, key = issue_argon2(engine, argon)
        spy.verifications = 0
        with Session(engine) as session:
            assert argon.verify(session, key, organization_id=OTHER_ORG).reason == "unknown"
        assert spy.verifications == 0

    def test_live_lookup_id_still_costs_one_hash(
        self, engine: sa.Engine, argon: ApiKeyService, spy: CountingHasher
    ) -> None:
        """An active key's lookup id with a wrong secret is ``unknown`` after one hash; the key verifies."""
        key_id, key = issue_argon2(engine, argon)
        spy.verifications = 0
        assert verify_fresh(engine, argon, minted(argon, key, "C" * SECRET_LENGTH)) == "unknown"
        assert spy.verifications == 1
        with Session(engine) as session:
            assert argon.verify(session, key).key_id == key_id
        assert spy.verifications == 2
