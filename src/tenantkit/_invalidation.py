"""One seam through which every in-process cache is evicted.

A cache of tenantkit (the API-key verification cache now; negative entries and permissions later) registers
with the :class:`LocalInvalidator` of its event dispatcher and is evicted only through it, by
:class:`CacheKey`. The dispatcher announces the keys a committed change made stale to its ``invalidator``,
which is that local one by default; a cross-process bus is an :class:`Invalidator` too: it publishes the keys
it is given, and calls the local invalidator with the keys other processes announce (or ``clear()`` when it
may have missed some). So it plugs in once for every cache.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Collection
from typing import NamedTuple, Protocol, runtime_checkable

API_KEY = "api_key"
"""The :attr:`CacheKey.kind` of what is cached about an API key."""
NEW_API_KEY = "new_api_key"
"""The :attr:`CacheKey.kind` announcing that an API key now exists: caches of refusals forget theirs."""

MEMBER = "member"
"""The :attr:`CacheKey.kind` of what is cached about a membership."""
ROLE = "role"
"""The :attr:`CacheKey.kind` of what is cached about an organization's custom role (its permissions)."""


class CacheKey(NamedTuple):
    """What a cached entry is about, by id: never a digest, key or token (keys may travel between processes).

    Attributes:
        kind: What is cached about it, such as ``"api_key"`` or ``"member"``.
        organization_id: The organization it belongs to.
        id: The key's id, the member's user id…
    """

    kind: str
    organization_id: str
    id: str

    @classmethod
    def api_key(cls, organization_id: str, key_id: str) -> CacheKey:
        """Everything cached about the API key ``key_id`` (its verification)."""
        return cls(API_KEY, organization_id, key_id)

    @classmethod
    def new_api_key(cls, organization_id: str, key_id: str) -> CacheKey:
        """The API key ``key_id`` was just issued: a cached "no such key" may now be wrong."""
        return cls(NEW_API_KEY, organization_id, key_id)

    @classmethod
    def member(cls, organization_id: str, user_id: str) -> CacheKey:
        """Everything cached about the user's membership in the organization (their role, permissions)."""
        return cls(MEMBER, organization_id, user_id)

    @classmethod
    def role(cls, organization_id: str, key: str) -> CacheKey:
        """Everything cached about the organization's custom role ``key`` (and the members holding it)."""
        return cls(ROLE, organization_id, key)


@runtime_checkable
class Invalidator(Protocol):
    """Something that evicts cached entries: a cache itself, every cache of the process, or a bus."""

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        """Forget whatever is cached about ``keys``; keys of a kind it does not cache are ignored."""

    def clear(self) -> None:
        """Forget everything (for a bus: in every process)."""


class LocalInvalidator:
    """The in-process default: hands every invalidation to each registered cache of this process.

    Caches are held weakly, so a cache whose owner (a service built per request or per test) is collected
    leaves no entry behind.
    """

    def __init__(self) -> None:
        self._caches: weakref.WeakSet[Invalidator] = weakref.WeakSet()
        self._lock = threading.Lock()

    def register(self, cache: Invalidator) -> Callable[[], None]:
        """Evict ``cache`` along with every other registered cache from now on.

        Returns:
            A function that unregisters it (it also goes when it is collected).
        """
        with self._lock:
            self._caches.add(cache)

        def unregister() -> None:
            with self._lock:
                self._caches.discard(cache)

        return unregister

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        """Evict ``keys`` from every registered cache."""
        if keys:
            for cache in self._registered():
                cache.invalidate(keys)

    def clear(self) -> None:
        """Clear every registered cache."""
        for cache in self._registered():
            cache.clear()

    def __len__(self) -> int:
        """How many caches are registered (and alive)."""
        return len(self._registered())

    def _registered(self) -> list[Invalidator]:
        with self._lock:
            return list(self._caches)
