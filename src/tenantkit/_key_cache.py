"""An in-process cache of verified API keys: bounded (least recently used goes first), with a time to live.

Entries are keyed by the key's digest, never by its plaintext. The cache only spares the database lookup:
expiry is checked by the service on every hit, and revoking, rotating or deleting a key in this process
evicts it at once. Other processes learn of a revocation when their entry's time to live runs out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(slots=True)
class CacheEntry(Generic[V]):
    """A cached value, the key id it belongs to, and when it stops being trusted."""

    value: V
    key_id: str
    fresh_until: datetime
    last_used_at: datetime | None


class KeyCache(Generic[V]):
    """A thread-safe LRU cache with a time to live, evictable by key id.

    Args:
        max_size: Entries kept at most; the least recently used is dropped first.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[str, CacheEntry[V]] = OrderedDict()
        self._digests_by_id: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str, now: datetime) -> CacheEntry[V] | None:
        """The live entry for ``digest``, or ``None`` (a stale one is dropped)."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry.fresh_until <= now:
                self._drop(digest)
                return None
            self._entries.move_to_end(digest)
            return entry

    def put(self, digest: str, entry: CacheEntry[V]) -> None:
        """Keep ``entry`` under ``digest``, dropping the least recently used entries beyond the bound."""
        with self._lock:
            if digest in self._entries:
                self._drop(digest)
            self._entries[digest] = entry
            self._digests_by_id.setdefault(entry.key_id, set()).add(digest)
            while len(self._entries) > self.max_size:
                self._drop(next(iter(self._entries)))

    def evict(self, key_id: str) -> None:
        """Forget every entry of the key ``key_id``."""
        with self._lock:
            for digest in list(self._digests_by_id.get(key_id, ())):
                self._drop(digest)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._digests_by_id.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, digest: str) -> None:
        entry = self._entries.pop(digest)
        digests = self._digests_by_id.get(entry.key_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._digests_by_id[entry.key_id]
