"""An in-process cache of verified API keys: bounded (least recently used goes first), with a time to live.

Entries are keyed by the key's digest, never by its plaintext. The cache only spares the database lookup:
expiry is checked by the service on every hit. It is evicted only through the invalidation seam
(:mod:`tenantkit._invalidation`): it registers with its event dispatcher's local invalidator, which hands it
the :class:`CacheKey` of every key revoked, rotated or deleted in this process (at once, and again at
commit), and of every key a cross-process bus, when one is plugged in, hears of. Without a bus, other
processes learn of a revocation when their entry's time to live runs out.

An eviction must also win against a lookup already under way: a verification that read the key's row just
before a revocation committed would otherwise put its stale "valid" into the cache just after the eviction,
where it would stay for the whole time to live. So a writer takes a :meth:`KeyCache.ticket` before it reads
what it will cache, and :meth:`KeyCache.put` refuses the value if the key was evicted (or the cache cleared)
since that ticket: every eviction advances a generation and leaves a tombstone, the key's id with that
generation. Tombstones are bounded like the entries; forgetting the oldest raises the floor below which every
ticket is refused, so a forgotten eviction can never let a stale value in — at worst it costs a lookup.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from tenantkit._invalidation import API_KEY, MEMBER, NEW_API_KEY, CacheKey

V = TypeVar("V")


@dataclass(slots=True)
class CacheEntry(Generic[V]):
    """A cached value, the key id it belongs to, and when it stops being trusted.

    ``guard`` holds the opt-in checks of a limited key (``None``: none, the fast path); ``member`` the
    ``(organization, user)`` whose membership changes evict the entry, for a key standing for a user.
    """

    value: V
    key_id: str
    fresh_until: datetime
    last_used_at: datetime | None
    guard: Any = None
    member: tuple[str, str] | None = None


class KeyCache(Generic[V]):
    """A thread-safe LRU cache with a time to live, evictable by key id, that no eviction can lose a race to.

    Args:
        max_size: Entries kept at most; the least recently used is dropped first. As many tombstones of
            evicted keys are kept, the oldest forgotten first.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[str, CacheEntry[V]] = OrderedDict()
        self._digests_by_id: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        # Advanced by every eviction and clear; a ticket is its value when a writer's read began.
        self._generation = 0
        # Key id -> the generation of its latest eviction, oldest first.
        self._tombstones: OrderedDict[str, int] = OrderedDict()
        # Tickets below this are refused: the cache was cleared, or a tombstone they may predate is gone.
        self._floor = 0
        # For keys standing for a user: (organization, user) -> key ids cached, and membership tombstones.
        self._ids_by_member: dict[tuple[str, str], set[str]] = {}
        self._member_tombstones: OrderedDict[tuple[str, str], int] = OrderedDict()

    def ticket(self) -> int:
        """Take this before reading the value to :meth:`put`: it dates the read against evictions.

        Read without the lock on purpose: an eviction advances the generation under the lock, so a read
        racing it sees the old value at worst, and an older ticket only makes :meth:`put` stricter.
        """
        return self._generation

    def earliest_ticket(self) -> int:
        """A ticket for a read that may reflect any earlier state (a transaction's snapshot taken before).

        :meth:`put` accepts it only for a key this cache remembers no eviction of, and no clear since.
        """
        return self._floor

    def get(self, digest: str, now: datetime) -> CacheEntry[V] | None:
        """The live entry for ``digest``, or ``None`` (a stale one is dropped).

        A hit takes no lock: the dictionary lookup and the move to the recent end are single operations
        under the GIL. An eviction racing the hit either comes first (a miss) or after (the hit answered as
        of just before it, as a lookup under the lock would have), and a move of an entry evicted meanwhile
        is simply skipped.
        """
        entries = self._entries
        entry = entries.get(digest)
        if entry is None:
            return None
        if entry.fresh_until <= now:
            with self._lock:
                if entries.get(digest) is entry:
                    self._drop(digest)
            return None
        try:  # noqa: SIM105  contextlib.suppress costs a context manager on every hit
            entries.move_to_end(digest)
        except KeyError:
            pass
        return entry

    def put(self, digest: str, entry: CacheEntry[V], *, ticket: int) -> bool:
        """Keep ``entry`` under ``digest``, unless its key was evicted or the cache cleared since ``ticket``.

        The least recently used entries beyond the bound are dropped.

        Args:
            digest: The cache key.
            entry: The value, read after ``ticket`` was taken.
            ticket: What :meth:`ticket` (or :meth:`earliest_ticket`) returned before the value was read.

        Returns:
            Whether the entry was kept; a refused one is simply not cached (the next lookup reads afresh).
        """
        with self._lock:
            if ticket < self._floor or self._tombstones.get(entry.key_id, ticket) > ticket:
                return False
            if entry.member is not None:
                if self._member_tombstones.get(entry.member, ticket) > ticket:
                    return False
                self._ids_by_member.setdefault(entry.member, set()).add(entry.key_id)
            if digest in self._entries:
                self._drop(digest)
            self._entries[digest] = entry
            self._digests_by_id.setdefault(entry.key_id, set()).add(digest)
            while len(self._entries) > self.max_size:
                self._drop(next(iter(self._entries)))
            return True

    def evict(self, key_id: str) -> None:
        """Forget every entry of the key ``key_id``, and refuse it from any read that began before now."""
        with self._lock:
            self._generation += 1
            tombstones = self._tombstones
            tombstones[key_id] = self._generation
            tombstones.move_to_end(key_id)
            if len(tombstones) > self.max_size:
                _, self._floor = tombstones.popitem(last=False)
            for digest in list(self._digests_by_id.get(key_id, ())):
                self._drop(digest)

    def evict_member(self, organization_id: str, user_id: str) -> None:
        """Forget every key standing for this user of this organization, and refuse older reads of them."""
        member = (organization_id, user_id)
        with self._lock:
            self._generation += 1
            tombstones = self._member_tombstones
            tombstones[member] = self._generation
            tombstones.move_to_end(member)
            if len(tombstones) > self.max_size:
                _, self._floor = tombstones.popitem(last=False)
            key_ids = self._ids_by_member.pop(member, set())
        for key_id in key_ids:
            self.evict(key_id)

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        """:meth:`evict` each API key among ``keys`` (this cache's part of the invalidation seam), and every
        key standing for a member among them."""
        for key in keys:
            if key.kind == API_KEY:
                self.evict(key.id)
            elif key.kind == MEMBER:
                self.evict_member(key.organization_id, key.id)

    def clear(self) -> None:
        """Forget everything, and refuse whatever any read that began before now would put."""
        with self._lock:
            self._generation += 1
            self._floor = self._generation
            self._tombstones.clear()
            self._entries.clear()
            self._digests_by_id.clear()
            self._ids_by_member.clear()
            self._member_tombstones.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, digest: str) -> None:
        entry = self._entries.pop(digest)
        if entry.member is not None:
            ids = self._ids_by_member.get(entry.member)
            if ids is not None:
                ids.discard(entry.key_id)
                if not ids:
                    del self._ids_by_member[entry.member]
        digests = self._digests_by_id.get(entry.key_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._digests_by_id[entry.key_id]


class RefusalCache:
    """Digests of well-formed keys that matched no row, each remembered for a short time to live.

    The checksum of a key is public, so anyone can make well-formed keys by the million; without this cache
    each one costs a database lookup. An entry is never trusted past its time to live, and the whole cache
    is forgotten whenever a key is issued (the invalidation seam's :data:`NEW_API_KEY`), in this process at
    once and, with a cross-process bus, in the others; without one, another process may answer ``unknown``
    for a just-issued key for up to the time to live, and only if that very key was presented to it before
    it existed. A lookup that began before a key was issued cannot put its stale "unknown" in afterwards:
    :meth:`put` takes a ticket, as :class:`KeyCache` does.

    Args:
        max_size: Entries kept at most; the oldest goes first.
        ttl: How long an entry is trusted.
    """

    def __init__(self, max_size: int, ttl: timedelta) -> None:
        self.max_size = max_size
        self.ttl = ttl
        self._entries: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def ticket(self) -> int:
        """Take this before the lookup whose refusal may be :meth:`put` (read without the lock, as
        :meth:`KeyCache.ticket`)."""
        return self._generation

    def refuses(self, digest: str, now: datetime) -> bool:
        """Whether ``digest`` matched no row less than the time to live ago.

        Read without the lock: a dictionary lookup is atomic, and an entry gone stale is simply ignored
        (the next :meth:`put` of a full cache makes room).
        """
        until = self._entries.get(digest)
        return until is not None and now < until

    def put(self, digest: str, now: datetime, *, ticket: int) -> bool:
        """Remember that ``digest`` matched no row at ``now``, unless a key was issued since ``ticket``."""
        with self._lock:
            if ticket != self._generation:
                return False
            entries = self._entries
            entries.pop(digest, None)
            while len(entries) >= self.max_size:
                del entries[next(iter(entries))]
            entries[digest] = now + self.ttl
            return True

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        """Forget everything once any of ``keys`` says a key was issued (its digest is never sent)."""
        if any(key.kind == NEW_API_KEY for key in keys):
            self.clear()

    def clear(self) -> None:
        """Forget every entry, and refuse what any lookup that began before now would put."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
