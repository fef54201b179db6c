"""API keys: issued to an organization once, verified on every request, listed, revoked and rotated.

Verification is the hottest path of the library. It refuses malformed keys (wrong prefix, length, alphabet
or checksum) with no database work at all, then finds the key's row with one indexed query on
``hashed_key``, run as a precompiled statement on the caller's own database connection.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar, Literal, Protocol

import sqlalchemy as sa
from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict, PrivateAttr
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, as_actor
from tenantkit._clock import Clock, as_utc, system_clock
from tenantkit._db import Plan, Processor, RawQuery, fetch_page, rowcount
from tenantkit._errors import (
    ApiKeyNotFoundError,
    ConfigurationError,
    InvalidApiKeyError,
    InvalidInputError,
    MissingScopeError,
    RateLimitedError,
    TenantKitError,
    UsageExceededError,
)
from tenantkit._events import (
    ApiKeyCreditsChanged,
    ApiKeyDeleted,
    ApiKeyIssued,
    ApiKeyRevoked,
    ApiKeyRotated,
    EventDispatcher,
)
from tenantkit._invalidation import CacheKey
from tenantkit._metrics import Source, VerificationMetrics
from tenantkit._missing_schema import translate_missing_schema
from tenantkit._pagination import DEFAULT_PAGE_SIZE, Keyset, Page
from tenantkit._tables import api_keys, new_id
from tenantkit._validation import check_identifier, check_name
from tenantkit._writes import NOT_NULL, confirm_written
from tenantkit.api_keys._cache import CacheEntry, KeyCache, RefusalCache
from tenantkit.api_keys._format import DEFAULT_PREFIX, KeyFormat, KeyKind
from tenantkit.api_keys._hashers import (
    Argon2idHasher,
    DigestHasher,
    Pepper,
    build_peppers,
    choose_hasher,
    same_digest,
    sha256_digest,
)
from tenantkit.api_keys._last_used import LastUsedBuffer
from tenantkit.api_keys._limits import (
    ORGANIZATION,
    ApiKeyClient,
    ApiKeyLimits,
    ApiKeySubject,
    Guard,
    RateLimiter,
    RateLimitState,
    SubjectType,
    constraints_for,
    guard_for,
    limit_columns,
    limits_from_row,
    spend_credits,
)
from tenantkit.members._service import MembershipService
from tenantkit.organizations._document import PolicySource
from tenantkit.roles._policy import Action, Role

logger = logging.getLogger("tenantkit.api_keys")

InvalidReason = Literal[
    "malformed",
    "unknown",
    "expired",
    "revoked",
    # Revision 0010's opt-in checks (see tenantkit.api_keys._limits).
    "subject_inactive",
    "address_not_allowed",
    "certificate_mismatch",
    "rate_limited",
    "usage_exceeded",
]

MAX_SCOPES = 64
_SCOPE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/*-]{0,99}")


class ApiKey(BaseModel):
    """An API key's metadata, as listings show it. It never holds the key or its digest.

    Attributes:
        start: The key's non-secret beginning (``tk_live_AbC1``); ``None`` for keys stored before revision
            0002.
        scopes: The scopes the key carries, sorted.
        created_by: The issuing user, or ``None`` when the host issued it.
        rotated_from: The key this one replaced by rotation, if any.
        replaced_at: When this key was rotated out (it stays valid until ``expires_at``).
        subject: Whom the key stands for: its organization (the default), a user or a device.
        limits: The key's credits (what remains now), refill, rate limits and bindings; ``None`` if it
            has none.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    name: str
    start: str | None
    scopes: tuple[str, ...]
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    rotated_from: str | None
    replaced_at: datetime | None
    subject: ApiKeySubject = ORGANIZATION
    limits: ApiKeyLimits | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked."""
        return self.revoked_at is not None

    def is_active(self, now: datetime) -> bool:
        """Whether the key verifies at ``now``: neither revoked nor expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class IssuedApiKey(BaseModel):
    """A key just issued (or rotated in): its metadata, and its plaintext held once, in memory only.

    ``repr``, ``str``, ``model_dump`` and JSON show the metadata and the non-secret ``start`` only. Call
    :meth:`reveal` to get the key, hand it to its owner, and drop it: tenantkit cannot show it again.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    api_key: ApiKey
    _plaintext: str = PrivateAttr(default="")

    @property
    def id(self) -> str:
        """The key's id."""
        return self.api_key.id

    @property
    def start(self) -> str:
        """The non-secret beginning of the key."""
        return self.api_key.start or ""

    def reveal(self) -> str:
        """The plaintext key. Show it to its owner once; never log or store it."""
        return self._plaintext

    def __str__(self) -> str:
        return f"{self.start}…"

    def __repr__(self) -> str:
        return f"IssuedApiKey(id={self.id!r}, start='{self.start}…')"


class ApiKeyVerification(BaseModel):
    """The answer of :meth:`ApiKeyService.verify`.

    A valid key carries its ``organization_id``, ``key_id``, ``name``, ``scopes`` and ``expires_at``; an
    invalid one only its ``reason``: ``malformed`` (refused without database work), ``unknown``, ``expired``
    or ``revoked``.

    Keys with the opt-in limits of the usage-limits and bound-keys pages add their subject
    (``subject_type``, ``subject_id``), the credits left after this verification (``credits_remaining``),
    and refuse with ``subject_inactive``, ``address_not_allowed``, ``certificate_mismatch``,
    ``rate_limited`` (with ``retry_after`` and ``rate_limits``) or ``usage_exceeded`` (with
    ``credits_remaining`` and, for a refilled key, ``retry_after``): those refusals carry the key's
    ``key_id`` and ``organization_id`` too.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    valid: bool
    reason: InvalidReason | None = None
    organization_id: str | None = None
    key_id: str | None = None
    name: str | None = None
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    subject_type: SubjectType = "organization"
    subject_id: str | None = None
    credits_remaining: int | None = None
    retry_after: int | None = None
    rate_limits: tuple[RateLimitState, ...] = ()

    def has_scopes(self, *required: str) -> bool:
        """Whether the key is valid and carries every scope in ``required``."""
        return check_scopes(self, required)


def _invalid(reason: InvalidReason) -> ApiKeyVerification:
    return ApiKeyVerification(valid=False, reason=reason)


_MALFORMED = _invalid("malformed")
_UNKNOWN = _invalid("unknown")
_EXPIRED = _invalid("expired")
_REVOKED = _invalid("revoked")
# "unknown" because no row matched the key at all (equal to _UNKNOWN, told apart by identity): the one
# refusal the negative cache may keep, where "unknown" for another organization's key may not.
_NO_SUCH_KEY = _invalid("unknown")
_SUBJECT_INACTIVE = _invalid("subject_inactive")


def check_scopes(verified: ApiKeyVerification, required: Iterable[str]) -> bool:
    """Whether ``verified`` is a valid key carrying every scope in ``required``.

    Args:
        verified: A result of :meth:`ApiKeyService.verify`.
        required: The scopes an operation needs (none means any valid key will do).

    Returns:
        ``True`` when the key is valid and holds all of them.
    """
    return verified.valid and set(required).issubset(verified.scopes)


def require_scopes(verified: ApiKeyVerification, required: Iterable[str]) -> None:
    """Raise unless ``verified`` is a valid key carrying every scope in ``required``.

    Raises:
        InvalidApiKeyError: The key did not verify (with its reason).
        RateLimitedError: The key is over a rate limit (reason ``rate_limited``).
        UsageExceededError: The key has too few credits left (reason ``usage_exceeded``).
        MissingScopeError: The key is valid but lacks some of the scopes (they are listed).
    """
    if not verified.valid:
        raise refusal_error(verified)
    missing = set(required).difference(verified.scopes)
    if missing:
        raise MissingScopeError(sorted(missing))


def refusal_error(verified: ApiKeyVerification) -> TenantKitError:
    """The error an adapter answers a refused verification with (``usage_exceeded`` and ``rate_limited``
    are 429s with their data; every other reason is an :class:`InvalidApiKeyError`)."""
    if verified.reason == "rate_limited":
        return RateLimitedError(
            verified.retry_after or 1, [state.model_dump() for state in verified.rate_limits]
        )
    if verified.reason == "usage_exceeded":
        return UsageExceededError(verified.credits_remaining or 0, verified.retry_after)
    return InvalidApiKeyError(verified.reason or "unknown")


def check_scope_list(scopes: object) -> tuple[str, ...]:
    """Return ``scopes`` deduplicated and sorted, or raise :class:`InvalidInputError`.

    A scope is 1 to 100 characters: letters, digits and ``_ . : / * -``, not starting with punctuation
    (``reports:read``, ``billing.write``, ``files/*``).
    """
    if isinstance(scopes, str | bytes) or not isinstance(scopes, Iterable):
        raise InvalidInputError("scopes", "must be a list of scope strings, not a single string")
    checked: set[str] = set()
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE_PATTERN.fullmatch(scope):
            raise InvalidInputError(
                "scopes",
                f"{scope!r} is not a scope: use 1 to 100 letters, digits and _ . : / * - "
                "(like 'reports:read')",
            )
        checked.add(scope)
    if len(checked) > MAX_SCOPES:
        raise InvalidInputError("scopes", f"at most {MAX_SCOPES} scopes per key")
    return tuple(sorted(checked))


# --- prebuilt statements ------------------------------------------------------------------------------

_VERIFY_FIELDS = (
    "id",
    "organization_id",
    "name",
    "scopes",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "hashed_key",
    "constraints",
)
"""The columns a verification reads, in the order its rows hold them: ``constraints`` is all it reads of
the opt-in limits (``NULL``: none; see :func:`~tenantkit.api_keys._limits.constraints_for`)."""
_VERIFY_COLUMNS = tuple(api_keys.c[field] for field in _VERIFY_FIELDS)
_ORGANIZATION_ID = _VERIFY_FIELDS.index("organization_id")
_REVOKED_AT = _VERIFY_FIELDS.index("revoked_at")
_SCOPES = _VERIFY_FIELDS.index("scopes")
_EXPIRES_AT = _VERIFY_FIELDS.index("expires_at")
_LAST_USED_AT = _VERIFY_FIELDS.index("last_used_at")
_HASHED_KEY = _VERIFY_FIELDS.index("hashed_key")
_CONSTRAINTS = _VERIFY_FIELDS.index("constraints")


@lru_cache(maxsize=8)
def _lookup_by_digest(candidates: int) -> sa.Select[Any]:
    """The verify lookup for ``candidates`` possible digests (one without peppers)."""
    if candidates == 1:
        condition = api_keys.c.hashed_key == sa.bindparam("d0")
    else:
        condition = api_keys.c.hashed_key.in_([sa.bindparam(f"d{n}") for n in range(candidates)])
    return sa.select(*_VERIFY_COLUMNS).where(condition)


_LOOKUP_BY_ARGON2_ID = (
    sa.select(*_VERIFY_COLUMNS)
    # No LIMIT: only rows of this lookup id (95 random bits) fall in the range.
    .where(api_keys.c.hashed_key >= sa.bindparam("low"), api_keys.c.hashed_key < sa.bindparam("high"))
)

_TOUCH = (
    api_keys.update()
    .where(
        api_keys.c.id == sa.bindparam("key_id"),
        sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < sa.bindparam("threshold")),
    )
    .values(last_used_at=sa.bindparam("now"))
)

_REHASH = (
    api_keys.update()
    .where(api_keys.c.id == sa.bindparam("key_id"), api_keys.c.hashed_key == sa.bindparam("old_digest"))
    .values(hashed_key=sa.bindparam("new_digest"))
)

_METADATA_COLUMNS = tuple(column for column in api_keys.c if column.name != "hashed_key")

_GET = sa.select(*_METADATA_COLUMNS).where(
    api_keys.c.organization_id == sa.bindparam("organization_id"), api_keys.c.id == sa.bindparam("key_id")
)


def _scopes_reader(fallback: Processor | None) -> Processor:
    """Turn the stored ``scopes`` into a tuple, remembering the few distinct values a deployment has."""
    memo: dict[Any, tuple[str, ...]] = {}

    def process(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, list):
            return tuple(value)
        scopes = memo.get(value)
        if scopes is None:
            loaded = value if fallback is None else fallback(value)
            scopes = tuple(loaded or ())
            if len(memo) >= 1024:
                memo.clear()
            memo[value] = scopes
        return scopes

    return process


# The verify lookups read ``scopes`` with the reader above; the fast path itself lives in tenantkit._db.
_READERS = {"scopes": _scopes_reader}

_RAW_BY_DIGEST: dict[int, RawQuery] = {}
_RAW_BY_ARGON2_ID = RawQuery(_LOOKUP_BY_ARGON2_ID, ("low", "high"), readers=_READERS)


def _raw_lookup(candidates: int) -> RawQuery:
    query = _RAW_BY_DIGEST.get(candidates)
    if query is None:
        query = _RAW_BY_DIGEST[candidates] = RawQuery(
            _lookup_by_digest(candidates), tuple(f"d{n}" for n in range(candidates)), readers=_READERS
        )
    return query


class _Candidates(Protocol):
    """How keys of one kind are looked up and matched: its hashers, tried in preference order."""

    query: RawQuery
    cache_key: Callable[[str], str]
    """What the cache files a key under (never the key itself)."""

    def lookup(self, key: str, cache_key: str) -> tuple[str, ...]:
        """The values of :attr:`query` that find ``key``'s row (``cache_key`` spares computing it twice)."""

    def match(
        self,
        rows: Sequence[Any],
        lookup: tuple[str, ...],
        key: str,
        plan: Plan,
        now: datetime,
        organization_id: str | None,
    ) -> tuple[Any, int] | None:
        """The row ``key`` matches and which hasher matched it (0: the current one), or ``None``.

        A position above 0 means a fallback matched: ``lookup[0]`` is then the current hasher's stored form.
        """


class _DigestCandidates:
    """Digest-kind keys: each hasher's stored form, found with one lookup; the most preferred match wins."""

    __slots__ = ("_stores", "cache_key", "query")

    def __init__(self, hashers: tuple[DigestHasher, ...]) -> None:
        self._stores = tuple(hasher.store for hasher in hashers)
        self.query = _raw_lookup(len(hashers))
        # The current hasher's stored form files the key: its very store function, one call on the hot path.
        self.cache_key: Callable[[str], str] = self._stores[0]

    def lookup(self, key: str, cache_key: str) -> tuple[str, ...]:
        """Every stored form ``key`` may have, the current hasher's (``cache_key``) first."""
        if len(self._stores) == 1:
            return (cache_key,)
        return (cache_key, *[store(key) for store in self._stores[1:]])

    def match(
        self,
        rows: Sequence[Any],
        lookup: tuple[str, ...],
        key: str,
        plan: Plan,
        now: datetime,
        organization_id: str | None,
    ) -> tuple[Any, int] | None:
        """The row whose ``hashed_key`` is the most preferred of the stored forms in ``lookup``."""
        if len(lookup) == 1:  # one hasher (no pepper): the common case, without the position bookkeeping
            for row in rows:
                if same_digest(row[_HASHED_KEY], lookup[0]):
                    return row, 0
            return None
        best: tuple[Any, int] | None = None
        for row in rows:
            stored = row[_HASHED_KEY]
            for position, candidate in enumerate(lookup):
                # Prefer the current hasher's row should a key exist under several stored forms.
                if same_digest(stored, candidate):
                    if best is None or position < best[1]:
                        best = (row, position)
                    break
        return best


class _Argon2Candidates:
    """Keys with a lookup id: the rows filed under that id, the first whose argon2id hash verifies wins."""

    __slots__ = ("_hasher", "cache_key", "query")

    def __init__(self, hasher: Argon2idHasher) -> None:
        self._hasher = hasher
        self.query = _RAW_BY_ARGON2_ID
        # SHA-256 of the key: its stored hash is salted, so it cannot file the key.
        self.cache_key: Callable[[str], str] = sha256_digest

    def lookup(self, key: str, cache_key: str) -> tuple[str, ...]:
        """The range of ``hashed_key`` values filed under ``key``'s lookup id."""
        return self._hasher.bounds(key)

    def match(
        self,
        rows: Sequence[Any],
        lookup: tuple[str, ...],
        key: str,
        plan: Plan,
        now: datetime,
        organization_id: str | None,
    ) -> tuple[Any, int] | None:
        """The row filed under ``key``'s lookup id that is refused as it stands, or whose hash verifies."""
        for row in rows:
            stored = row[_HASHED_KEY]
            if not self._hasher.owns(stored, key):
                continue
            # The lookup id is not secret: a row that would be refused whatever the secret (revoked, expired,
            # another organization's) is refused as it stands, without paying for the hash.
            expires_at = row[_EXPIRES_AT]
            if expires_at is not None:
                expires_at = plan.processors[_EXPIRES_AT](expires_at)
            refusal = _decide(row[_ORGANIZATION_ID], row[_REVOKED_AT], expires_at, now, organization_id)
            if refusal is not None or self._hasher.matches(stored, key):
                return row, 0
        return None


# Keys are listed newest first; the id breaks ties between keys made in the same microsecond.
_KEYS_ORDER = Keyset("api_keys", api_keys.c.created_at, api_keys.c.id, descending=True)


def _row_to_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        start=row.start,
        scopes=tuple(row.scopes or ()),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        rotated_from=row.rotated_from,
        replaced_at=row.replaced_at,
        subject=(
            ORGANIZATION
            if row.subject_type is None
            else ApiKeySubject.model_construct(type=row.subject_type, id=row.subject_id)
        ),
        limits=limits_from_row(row),
    )


@translate_missing_schema(
    done_inline=("verify", "verify_and_report", "authenticate", "authenticate_and_report")
)
class ApiKeyService:
    """Issue, list, revoke, rotate and verify an organization's API keys.

    Managing keys needs :attr:`Action.MANAGE_API_KEYS` (ADMIN and OWNER); listing and reading their
    metadata needs :attr:`Action.READ_API_KEYS`, which MEMBER holds too: a member can see which keys exist
    and when they were last used (never a secret or digest), as in most SaaS dashboards. Verifying needs no
    actor: the key is the credential.

    Args:
        membership: The membership service that checks permissions.
        clock: Where the current time comes from.
        events: The dispatcher that delivers events after commit (the membership service's by default).
        prefix: The key prefix of this deployment, such as ``tk_live_`` or ``tk_test_``.
        hasher: ``"sha256"``, ``"hmac-sha256"`` or ``"argon2id"``; by default ``"hmac-sha256"`` when
            peppers are configured, else ``"sha256"``. It applies to keys issued from now on; keys stored
            any other way keep verifying.
        peppers: Server secrets for HMAC-SHA256, version name to secret (at least 16 bytes). Keys stored
            under an old version, or with plain SHA-256, verify and are moved to ``current_pepper``.
        current_pepper: The version new digests use (needed when several peppers are configured).
        argon2_hasher: The argon2-cffi ``PasswordHasher`` for ``hasher="argon2id"`` (its defaults if omitted).
        last_used_interval: ``last_used_at`` is written at most once per key per interval.
        track_last_used: ``False`` makes verification read-only (no ``last_used_at`` writes at all).
        last_used_writes: ``"inline"`` writes ``last_used_at`` in the verifying transaction;
            ``"deferred"`` records the use in memory for :meth:`flush_last_used` to write later, so that
            no verification waits for a write and a cache hit needs no connection.
        last_used_buffer_size: Keys whose deferred use may wait at most; beyond, a use is written inline.
        rotation_grace: How long a rotated-out key keeps working, at most (never past its own expiry).
        cache_ttl: Turns on the in-process cache of verified keys, trusting an entry this long. A revocation
            in another process takes up to this long to be seen here. ``None`` (default) turns it off.
        cache_size: Entries the cache keeps at most.
        negative_cache_ttl: Turns on the cache of well-formed keys that matched no key, trusting an entry
            this long; it is emptied whenever a key is issued (see :class:`RefusalCache`). ``None``
            (default) turns it off.
        negative_cache_size: Entries the negative cache keeps at most.
        metrics: Told of every verification's outcome and source (see :mod:`tenantkit.metrics`).
        rate_limiter: Where keys issued with rate limits are counted (:class:`RateLimiter`: memory or
            Redis); an in-memory one is made on first need when omitted.
    """

    _before_cache_write: Callable[[], None] | None = None
    """A test seam: called by :meth:`verify` between its lookup and its cache write, when set."""

    def __init__(
        self,
        *,
        membership: MembershipService,
        clock: Clock = system_clock,
        events: EventDispatcher | None = None,
        prefix: str = DEFAULT_PREFIX,
        hasher: str | None = None,
        peppers: Mapping[str, bytes | str] | None = None,
        current_pepper: str | None = None,
        argon2_hasher: PasswordHasher | None = None,
        last_used_interval: timedelta = timedelta(seconds=60),
        track_last_used: bool = True,
        rotation_grace: timedelta = timedelta(hours=24),
        last_used_writes: Literal["inline", "deferred"] = "inline",
        last_used_buffer_size: int = 10_000,
        cache_ttl: timedelta | None = None,
        cache_size: int = 10_000,
        negative_cache_ttl: timedelta | None = None,
        negative_cache_size: int = 10_000,
        metrics: VerificationMetrics | None = None,
        policies: PolicySource | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.membership = membership
        self.policies = policies
        self.rate_limiter: RateLimiter | None = rate_limiter
        self.clock = clock
        self.events: EventDispatcher = events or membership.events
        try:
            self.format: KeyFormat = KeyFormat(prefix)
        except InvalidInputError as error:
            raise ConfigurationError(f"prefix {prefix!r}: {error.reason}") from None
        self._peppers: tuple[Pepper, ...] = build_peppers(peppers, current_pepper)
        self._hashers = choose_hasher(hasher, self._peppers, argon2_hasher)
        self.hasher: str = self._hashers.name
        candidates: dict[KeyKind, _Candidates] = {
            KeyKind.DIGEST: _DigestCandidates(self._hashers.digests),
            KeyKind.ARGON2: _Argon2Candidates(self._hashers.argon2),
        }
        # Indexed by the kind KeyFormat.check answers; None for a malformed key.
        self._candidates = tuple(candidates.get(kind) for kind in KeyKind)
        if not isinstance(last_used_interval, timedelta) or last_used_interval < timedelta(0):
            raise ConfigurationError("last_used_interval must be a timedelta of zero or more")
        if not isinstance(rotation_grace, timedelta) or rotation_grace < timedelta(0):
            raise ConfigurationError("rotation_grace must be a timedelta of zero or more")
        self.last_used_interval = last_used_interval
        self.track_last_used = track_last_used
        if last_used_writes not in ("inline", "deferred"):
            raise ConfigurationError('last_used_writes must be "inline" or "deferred"')
        if last_used_buffer_size < 1:
            raise ConfigurationError("last_used_buffer_size must be at least 1")
        self.last_used_writes = last_used_writes
        self._last_used: LastUsedBuffer | None = None
        if last_used_writes == "deferred" and track_last_used:
            self._last_used = LastUsedBuffer(last_used_buffer_size, last_used_interval)
        self.metrics = metrics
        self.rotation_grace = rotation_grace
        self.cache_ttl = cache_ttl
        self._cache: KeyCache[ApiKeyVerification] | None = None
        if _cache_wanted("cache", cache_ttl, cache_size):
            self._cache = KeyCache(cache_size)
            # Evicted only through the dispatcher's invalidation seam: at once by this process's changes, at
            # commit by every committed one (a verification racing an uncommitted revocation could otherwise
            # put the old state back), and by a cross-process bus if one is plugged in. The seam holds the
            # cache weakly, so services built per request (or per test) do not pile up on it.
            self.events.caches.register(self._cache)
        self._refusals: RefusalCache | None = None
        if negative_cache_ttl is not None and _cache_wanted(
            "negative_cache", negative_cache_ttl, negative_cache_size
        ):
            self._refusals = RefusalCache(negative_cache_size, negative_cache_ttl)
            self.events.caches.register(self._refusals)
        # Whether anything in memory may answer before the database is asked.
        self._remembers = self._cache is not None or self._refusals is not None
        # Valid results already built, by their content: a result is frozen and fully determined by the row's
        # id, organization, name, scopes and expiry, so an equal one can be handed out again instead of
        # being validated anew on every verification.
        self._results: dict[str, ApiKeyVerification] = {}

    def __repr__(self) -> str:
        return (
            f"ApiKeyService(prefix={self.format.prefix!r}, hasher={self.hasher!r}, "
            f"peppers={[pepper.version for pepper in self._peppers]!r}, cache_ttl={self.cache_ttl!r})"
        )

    # --- managing ---------------------------------------------------------------------------------------

    def issue(
        self,
        session: Session,
        organization_id: str,
        name: str,
        *,
        actor: Actor | str,
        expires: datetime | timedelta | None = None,
        scopes: Iterable[str] = (),
        subject: ApiKeySubject | Mapping[str, Any] | None = None,
        limits: ApiKeyLimits | Mapping[str, Any] | None = None,
    ) -> IssuedApiKey:
        """Issue a new key for the organization.

        Args:
            session: The caller's session; the key is flushed, not committed.
            organization_id: The organization the key belongs to.
            name: A human-readable name (1 to 200 characters).
            actor: Who issues it (needs ``api_keys:manage``), or :data:`tenantkit.HOST`.
            expires: When the key stops working: an aware datetime, or a duration from now. ``None`` never
                (refused where the organization's settings say keys must expire).
            scopes: Scope strings the key carries, such as ``reports:read``. Once the host declares a
                permission registry, scopes are permissions: each must be declared, and a member issuing the
                key must hold it (a key's scopes are a grant, bounded by the escalation rule).
            subject: Whom the key stands for (:class:`ApiKeySubject`): the organization by default, a user
                (who must be a member), or a device.
            limits: Opt-in usage credits, rate limits and bindings (:class:`ApiKeyLimits`).

        Returns:
            The key's metadata and its plaintext, which :meth:`IssuedApiKey.reveal` returns this once.

        Raises:
            InvalidInputError: A malformed argument, an expiry not in the future, or a user subject who is
                not a member of the organization.
            PolicyLimitError: No expiry where keys must expire, or one beyond the longest lifetime allowed.
            UnknownPermissionError: A registry is declared and a scope is not in it.
            PermissionDeniedError: The actor may not manage the organization's keys.
            PermissionEscalationError: A scope is a permission the issuing member does not hold.
        """
        check_identifier(organization_id, "organization_id")
        clean_name = check_name(name, "name")
        checked_scopes = check_scope_list(scopes)
        bound = ApiKeySubject.parse(subject)
        checked_limits = ApiKeyLimits.parse(limits)
        acting = as_actor(actor)
        now = self.clock()
        expires_at = self._expiry(expires, now)
        self._authorize_grant(session, organization_id, acting, checked_scopes)
        self._check_lifetime(session, organization_id, expires_at, now)
        self._check_subject(session, organization_id, bound)
        issued = self._insert(
            session,
            organization_id,
            clean_name,
            checked_scopes,
            expires_at,
            acting,
            now,
            subject=bound,
            limits=checked_limits,
        )
        self.events.record(
            session,
            ApiKeyIssued(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                key_id=issued.id,
                name=clean_name,
                start=issued.start,
                scopes=checked_scopes,
            ),
        )
        logger.info("issued API key %s (%s…) in organization %r", issued.id, issued.start, organization_id)
        return issued

    def _authorize_grant(
        self,
        session: Session,
        organization_id: str,
        acting: Actor,
        scopes: tuple[str, ...],
        *,
        checked: bool = False,
    ) -> None:
        """``api_keys:manage``, and with a registry the escalation rule over the key's scopes."""
        policy = self.membership.permissions
        if not policy.registry_declared:
            if not checked:
                self.membership.authorize(session, organization_id, acting, Action.MANAGE_API_KEYS)
            return
        names = policy.registry.check_all(scopes, "scopes")
        if checked and acting.user_id is None:
            return
        held = self.membership.grant_authority(session, organization_id, acting, Action.MANAGE_API_KEYS)
        policy.require_may_grant(held, permissions=names, what="an API key with these scopes")

    def list_keys(
        self,
        session: Session,
        organization_id: str,
        *,
        actor: Actor | str,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        include_revoked: bool = True,
        subject: ApiKeySubject | Mapping[str, Any] | None = None,
    ) -> Page[ApiKey]:
        """One page of the organization's keys, newest first, without any secret or digest.

        Args:
            session: The caller's session.
            organization_id: The organization whose keys to list.
            actor: Who asks (needs ``api_keys:read``; MEMBER has it), or :data:`tenantkit.HOST`.
            limit: Keys per page, 1 to 500.
            cursor: ``next_cursor`` of the previous page.
            include_revoked: Whether revoked keys are listed too.
            subject: Only the keys standing for this subject (``ApiKeySubject()`` for the organization's
                own); every key when omitted.

        Returns:
            A page of :class:`ApiKey`; its ``next_cursor`` is ``None`` on the last page.

        Raises:
            InvalidInputError: A malformed argument or cursor.
            PermissionDeniedError: The actor may not read the organization's keys.
        """
        check_identifier(organization_id, "organization_id")
        seek = _KEYS_ORDER.seek(limit=limit, cursor=cursor)
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.READ_API_KEYS)
        query = sa.select(*_METADATA_COLUMNS).where(api_keys.c.organization_id == organization_id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        if subject is not None:
            query = query.where(*_subject_condition(ApiKeySubject.parse(subject)))
        return fetch_page(
            session, query, seek, _row_to_key, execution_options=self.membership.execution_options
        )

    def get(self, session: Session, organization_id: str, key_id: str, *, actor: Actor | str) -> ApiKey:
        """One key's metadata.

        Raises:
            ApiKeyNotFoundError: No such key in this organization (a key of another one is not revealed).
            PermissionDeniedError: The actor may not read the organization's keys.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(key_id, "key_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.READ_API_KEYS)
        return self._load(session, organization_id, key_id)

    def revoke(self, session: Session, organization_id: str, key_id: str, *, actor: Actor | str) -> ApiKey:
        """Revoke a key: from this instant on it verifies as ``revoked``. Revoking it again changes nothing.

        Returns:
            The key's metadata after revocation.

        Raises:
            ApiKeyNotFoundError: No such key in this organization.
            PermissionDeniedError: The actor may not manage the organization's keys.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(key_id, "key_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_API_KEYS)
        now = self.clock()
        result = session.execute(
            api_keys.update()
            .where(
                api_keys.c.organization_id == organization_id,
                api_keys.c.id == key_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=now, updated_at=now),
            execution_options=self.membership.execution_options,
        )
        self._evict(organization_id, key_id)
        changed = rowcount(result) == 1
        # Already revoked (rowcount 0) is fine; a revocation the database did not keep is not.
        row = confirm_written(
            session,
            api_keys,
            {"organization_id": organization_id, "id": key_id},
            {"revoked_at": NOT_NULL},
            missing=None if changed else ApiKeyNotFoundError(organization_id, key_id),
            execution_options=self.membership.execution_options,
        )
        key = _row_to_key(row)
        if changed:
            self.events.record(
                session,
                ApiKeyRevoked(organization_id=organization_id, actor=acting, occurred_at=now, key_id=key_id),
            )
            logger.info("revoked API key %s in organization %r", key_id, organization_id)
        return key

    def delete(self, session: Session, organization_id: str, key_id: str, *, actor: Actor | str) -> None:
        """Delete a key and its row; it verifies as ``unknown`` from now on.

        Raises:
            ApiKeyNotFoundError: No such key in this organization.
            PermissionDeniedError: The actor may not manage the organization's keys.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(key_id, "key_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_API_KEYS)
        result = session.execute(
            api_keys.delete().where(api_keys.c.organization_id == organization_id, api_keys.c.id == key_id),
            execution_options=self.membership.execution_options,
        )
        confirm_written(
            session,
            api_keys,
            {"organization_id": organization_id, "id": key_id},
            None,
            execution_options=self.membership.execution_options,
        )
        if rowcount(result) != 1:
            raise ApiKeyNotFoundError(organization_id, key_id)
        self._evict(organization_id, key_id)
        self.events.record(
            session,
            ApiKeyDeleted(
                organization_id=organization_id,
                actor=acting,
                occurred_at=self.clock(),
                key_id=key_id,
            ),
        )
        logger.info("deleted API key %s in organization %r", key_id, organization_id)

    def rotate(
        self,
        session: Session,
        organization_id: str,
        key_id: str,
        *,
        actor: Actor | str,
        grace: timedelta | None = None,
        expires: datetime | timedelta | None = None,
    ) -> IssuedApiKey:
        """Replace a key by a new one with the same name and scopes.

        The old key keeps working until the earlier of its own expiry and ``now + grace``: rotation never
        extends it. The new key keeps the old one's expiry unless ``expires`` is given.

        Args:
            session: The caller's session.
            organization_id: The key's organization.
            key_id: The key to replace.
            actor: Who rotates it (needs ``api_keys:manage``), or :data:`tenantkit.HOST`.
            grace: How long the old key stays valid (the service's ``rotation_grace`` by default; zero ends
                it now).
            expires: The new key's expiry: an aware datetime or a duration from now.

        Returns:
            The new key with its plaintext.

        Raises:
            ApiKeyNotFoundError: No such key in this organization.
            InvalidInputError: The key is revoked, expired or already rotated, or an argument is malformed.
            PolicyLimitError: The new key would not expire (or expire too late) under the organization's
                settings; give ``expires``.
            PermissionDeniedError: The actor may not manage the organization's keys.
            PermissionEscalationError: With a registry, the key carries a scope the rotating member does not
                hold (rotating re-issues its scopes).
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(key_id, "key_id")
        acting = as_actor(actor)
        if grace is None:
            grace = self.rotation_grace
        if not isinstance(grace, timedelta) or grace < timedelta(0):
            raise InvalidInputError("grace", "must be a timedelta of zero or more")
        now = self.clock()
        new_expiry = self._expiry(expires, now) if expires is not None else None
        self._authorize_grant(session, organization_id, acting, ())
        old = self._load(session, organization_id, key_id)
        self._authorize_grant(session, organization_id, acting, old.scopes, checked=True)
        if old.revoked_at is not None:
            raise InvalidInputError("key_id", "the key is revoked; issue a new one instead")
        if old.replaced_at is not None:
            raise InvalidInputError("key_id", "the key was already rotated; rotate its replacement")
        if old.expires_at is not None and old.expires_at <= now:
            raise InvalidInputError("key_id", "the key has expired; issue a new one instead")
        self._check_lifetime(session, organization_id, new_expiry or old.expires_at, now)
        valid_until = now + grace
        if old.expires_at is not None and old.expires_at < valid_until:
            valid_until = old.expires_at
        result = session.execute(
            api_keys.update()
            .where(
                api_keys.c.organization_id == organization_id,
                api_keys.c.id == key_id,
                api_keys.c.revoked_at.is_(None),
                api_keys.c.replaced_at.is_(None),
            )
            .values(expires_at=valid_until, replaced_at=now, updated_at=now),
            execution_options=self.membership.execution_options,
        )
        if rowcount(result) != 1:
            # A concurrent rotation or revocation won the race.
            raise InvalidInputError("key_id", "the key was rotated or revoked meanwhile")
        confirm_written(
            session,
            api_keys,
            {"organization_id": organization_id, "id": key_id},
            {"replaced_at": now, "expires_at": valid_until, "revoked_at": None},
            execution_options=self.membership.execution_options,
        )
        self._evict(organization_id, key_id)
        issued = self._insert(
            session,
            organization_id,
            old.name,
            old.scopes,
            new_expiry if new_expiry is not None else old.expires_at,
            acting,
            now,
            rotated_from=key_id,
            subject=old.subject,
            limits=old.limits,
        )
        self.events.record(
            session,
            ApiKeyRotated(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                old_key_id=key_id,
                new_key_id=issued.id,
                old_key_valid_until=valid_until,
            ),
        )
        logger.info(
            "rotated API key %s into %s (%s…) in organization %r",
            key_id,
            issued.id,
            issued.start,
            organization_id,
        )
        return issued

    def revoke_subject(
        self,
        session: Session,
        organization_id: str,
        subject: ApiKeySubject | Mapping[str, Any],
        *,
        actor: Actor | str,
    ) -> tuple[str, ...]:
        """Revoke every active key standing for ``subject`` (a user leaving, a device lost or retired).

        Each key is revoked as :meth:`revoke` revokes it, with its own ``api_key.revoked`` event.

        Returns:
            The ids of the keys this call revoked (already revoked ones are left out).

        Raises:
            InvalidInputError: A malformed argument.
            PermissionDeniedError: The actor may not manage the organization's keys.
        """
        check_identifier(organization_id, "organization_id")
        bound = ApiKeySubject.parse(subject)
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_API_KEYS)
        key_ids = (
            session.execute(
                sa.select(api_keys.c.id)
                .where(
                    api_keys.c.organization_id == organization_id,
                    api_keys.c.revoked_at.is_(None),
                    *_subject_condition(bound),
                )
                .order_by(api_keys.c.id),
                execution_options=self.membership.execution_options,
            )
            .scalars()
            .all()
        )
        for key_id in key_ids:
            self.revoke(session, organization_id, key_id, actor=acting)
        return tuple(key_ids)

    def set_credits(
        self, session: Session, organization_id: str, key_id: str, credits: int, *, actor: Actor | str
    ) -> ApiKey:
        """Set the usage credits a key has left to ``credits`` (a key without credits gets a limit).

        One ``UPDATE`` of the row (the balance, and the ``constraints`` that tell verifications the key has
        credits), in the caller's transaction: a verification spending meanwhile waits for it, and the
        admin's value is what the database holds at commit (no counter elsewhere can undo it).

        Raises:
            ApiKeyNotFoundError: No such key in this organization.
            InvalidInputError: ``credits`` is not a whole number of zero or more.
            PermissionDeniedError: The actor may not manage the organization's keys.
        """
        amount = _credit_amount(credits, "credits", minimum=0)
        return self._change_credits(session, organization_id, key_id, "set", amount, actor)

    def add_credits(
        self, session: Session, organization_id: str, key_id: str, credits: int, *, actor: Actor | str
    ) -> ApiKey:
        """Add ``credits`` (negative: take away, never below zero) to what a key with credits has left.

        Atomic in the database (``credits_remaining = credits_remaining + :n``): no read-modify-write, so
        verifications spending at the same time lose nothing. A refund for a failed request is this call.

        Raises:
            ApiKeyNotFoundError: No such key in this organization.
            InvalidInputError: ``credits`` is not a whole number, or the key has no credit limit (use
                :meth:`set_credits`).
            PermissionDeniedError: The actor may not manage the organization's keys.
        """
        amount = _credit_amount(credits, "credits", minimum=-(2**62))
        return self._change_credits(session, organization_id, key_id, "add", amount, actor)

    def _change_credits(
        self,
        session: Session,
        organization_id: str,
        key_id: str,
        operation: Literal["set", "add"],
        amount: int,
        actor: Actor | str,
    ) -> ApiKey:
        check_identifier(organization_id, "organization_id")
        check_identifier(key_id, "key_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_API_KEYS)
        now = self.clock()
        where = (api_keys.c.organization_id == organization_id, api_keys.c.id == key_id)
        values: dict[str, Any] = {"updated_at": now}
        if operation == "set":
            # A key without credits gets a limit: its constraints say so, for the verifications to spend.
            old = self._load(session, organization_id, key_id)  # raises ApiKeyNotFoundError
            limits = (old.limits or ApiKeyLimits()).model_copy(update={"credits": amount})
            values["constraints"] = constraints_for(old.subject, limits)
            value: Any = amount
        else:
            value = sa.case(
                (api_keys.c.credits_remaining + amount < 0, 0),
                else_=api_keys.c.credits_remaining + amount,
            )
            where = (*where, api_keys.c.credits_remaining.is_not(None))  # type: ignore[assignment]  # one more term
        result = session.execute(
            api_keys.update().where(*where).values(credits_remaining=value, **values),
            execution_options=self.membership.execution_options,
        )
        if rowcount(result) != 1:
            key = self._load(session, organization_id, key_id)  # raises ApiKeyNotFoundError
            raise InvalidInputError("key_id", f"key {key.id} has no credit limit; use set_credits")
        self._evict(organization_id, key_id)
        key = self._load(session, organization_id, key_id)
        remaining = key.limits.credits if key.limits is not None and key.limits.credits is not None else 0
        self.events.record(
            session,
            ApiKeyCreditsChanged(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                key_id=key_id,
                operation=operation,
                amount=amount,
                remaining=remaining,
            ),
        )
        logger.info(
            "%s %d credits of API key %s in organization %r", operation, amount, key_id, organization_id
        )
        return key

    # --- verifying --------------------------------------------------------------------------------------

    def verify(
        self,
        session: Session | Connection,
        key: object,
        *,
        organization_id: str | None = None,
        client: ApiKeyClient | None = None,
        cost: int = 1,
    ) -> ApiKeyVerification:
        """Check a presented key and say whose it is, or why it is refused.

        Malformed input (wrong prefix, length, alphabet or checksum, or not a string at all) is refused
        without database work. Otherwise one indexed query finds the key's row. On success, and at most once
        per ``last_used_interval``, ``last_used_at`` is written in the caller's transaction (commit it as
        usual; on a read-only transaction, build the service with ``track_last_used=False``).
        :meth:`verify_and_report` also says whether it wrote.

        Args:
            session: The caller's Session or Connection.
            key: The presented key, as received (anything: it is never raised on).
            organization_id: When given, a key of any other organization is answered ``unknown``.
            client: The client presenting the key (its address, its certificate's thumbprint), for keys
                bound to a network or a certificate; a bound key verified without it is refused.
            cost: The credits this verification spends, for keys with usage credits (1 by default; 0 checks
                that some are left without spending).

        Returns:
            A valid result with the key's organization, id, name and scopes, or an invalid one with its
            reason: ``malformed``, ``unknown``, ``expired`` or ``revoked`` (and, for keys with opt-in limits,
            those of the usage-limits and bound-keys pages).

        Raises:
            RateLimiterUnavailableError: The rate limiter's Redis is down and it was built to refuse then.
        """
        return self._verify(session, key, organization_id, client, cost)[0]

    def verify_and_report(
        self,
        session: Session | Connection,
        key: object,
        *,
        organization_id: str | None = None,
        client: ApiKeyClient | None = None,
        cost: int = 1,
    ) -> tuple[ApiKeyVerification, bool]:
        """Like :meth:`verify`, and whether it wrote in the caller's transaction, so that a commit is due.

        It writes ``last_used_at`` (at most once per ``last_used_interval``) and moves a key stored under an
        old pepper or plain SHA-256 to the current pepper; a cache hit with no write due touches no table.

        Returns:
            The verification result, and ``True`` when the session holds a write of this verification.
        """
        return self._verify(session, key, organization_id, client, cost)

    def _verify(
        self,
        session: Session | Connection,
        key: object,
        organization_id: str | None,
        client: ApiKeyClient | None = None,
        cost: int = 1,
    ) -> tuple[ApiKeyVerification, bool]:
        """The pipeline: memory (format, caches) first, then the database for what memory cannot answer."""
        answer = self._begin(key, organization_id, client, cost)
        if type(answer) is tuple:
            return self._complete(session, answer, organization_id, client, cost)
        assert isinstance(answer, ApiKeyVerification)  # noqa: S101  narrowing: _begin answers one or the other
        return answer, False

    def begin_verification(
        self,
        key: object,
        *,
        organization_id: str | None = None,
        client: ApiKeyClient | None = None,
        cost: int = 1,
    ) -> ApiKeyVerification | PendingVerification:
        """Answer from memory when it can, else say what the database must be asked: no I/O at all.

        A malformed key is refused, a key in the cache (or the negative cache) is answered as :meth:`verify`
        would answer it — expiry and organization checked now. Anything else comes back as a
        :class:`PendingVerification` that holds the format check and digest already made; complete it on
        a connection, opened only now::

            answer = service.begin_verification(presented)
            if isinstance(answer, PendingVerification):
                with engine.connect() as connection:
                    answer = answer.complete(connection)

        Adapters answer most requests this way without a session, a connection or a thread-pool hop.

        Args:
            key: The presented key, as received (anything: it is never raised on).
            organization_id: When given, a key of any other organization is answered ``unknown``.
            client: The client presenting the key, for keys bound to a network or certificate.
            cost: The credits it spends, for keys with usage credits (which always need the database).
        """
        answer = self._begin(key, organization_id, client, cost)
        if type(answer) is tuple:
            return PendingVerification(self, answer, organization_id, client, cost)
        assert isinstance(answer, ApiKeyVerification)  # noqa: S101  narrowing: _begin answers one or the other
        return answer

    def verify_cached(self, key: object, *, organization_id: str | None = None) -> ApiKeyVerification | None:
        """Answer from memory alone, or return ``None`` when the database must be asked.

        :meth:`begin_verification` without what it would hand over for the database: a malformed key is
        refused, a cached one answered, everything else (cache off, key not cached, an inline
        ``last_used_at`` write due) is ``None``: call :meth:`verify`.

        Args:
            key: The presented key, as received.
            organization_id: When given, a key of any other organization is answered ``unknown``.
        """
        answer = self._begin(key, organization_id)
        return None if type(answer) is tuple else answer  # type: ignore[return-value]

    def _begin(
        self, key: object, organization_id: str | None, client: ApiKeyClient | None = None, cost: int = 1
    ) -> ApiKeyVerification | _Due:
        """The answer memory gives (format, caches), or what the database must be asked (a :data:`_Due`)."""
        candidates = self._candidates[self.format.check(key)]
        if candidates is None:
            return self._counted(_MALFORMED, "format")
        assert isinstance(key, str)  # noqa: S101  narrowing: check() gives a kind other than MALFORMED to strings only
        now = self.clock()
        cache_key = candidates.cache_key(key)
        touch: CacheEntry[ApiKeyVerification] | None = None
        if self._remembers:
            cache = self._cache
            entry = cache.get(cache_key, now) if cache is not None else None
            if entry is not None:
                result = _decide_cached(entry.value, now, organization_id)
                if entry.guard is not None and result.valid:  # a key with opt-in limits: their own step
                    return self._begin_guarded(entry, candidates, key, cache_key, now, client, cost)
                if not (result.valid and self._touch_due(entry.last_used_at, now)):
                    return result if self.metrics is None else self._counted(result, "cache")
                if self._last_used is not None and self._last_used.record(entry.key_id, now):
                    entry.last_used_at = now
                    return self._counted(result, "cache")
                touch = entry  # an inline write is due: the database is needed, not a lookup
            elif self._refusals is not None and self._refusals.refuses(cache_key, now):
                return self._counted(_UNKNOWN, "negative_cache")
        # A plain tuple: verify() completes it at once, so the hot path builds no object for it.
        return (candidates, key, cache_key, now, touch)

    def _complete(
        self,
        session: Session | Connection,
        due: _Due,
        organization_id: str | None,
        client: ApiKeyClient | None = None,
        cost: int = 1,
        owned: bool = False,
    ) -> tuple[ApiKeyVerification, bool]:
        """The database part of a verification :meth:`_begin` could not answer, and the cache writes.

        ``client`` and ``cost`` matter to keys with opt-in limits only; ``owned``: see :meth:`_spend`.
        """
        candidates, key, cache_key, now, touch = due
        if touch is not None:  # cached and valid: an inline last_used_at write due, or credits to spend
            if touch.guard is not None:
                return self._complete_guarded(session, touch, now, cost, owned)
            connection = session.connection() if isinstance(session, Session) else session
            self._touch(connection, touch.key_id, now)
            touch.last_used_at = now
            return self._counted(touch.value, "cache"), True
        cache, refusals = self._cache, self._refusals
        ticket = refusal_ticket = 0
        # Only a cache asks: whether this lookup reads a snapshot of its own (taken after the tickets).
        fresh = self._remembers and not session.in_transaction()
        if cache is not None:
            # Taken before the lookup, so that a revocation committed while this verification runs keeps
            # its result out of the cache. A transaction already under way may read a snapshot older than
            # any ticket (REPEATABLE READ, SQLite's read transactions): its result may only be cached for a
            # key this cache knows no eviction of.
            ticket = cache.ticket() if fresh else cache.earliest_ticket()
        if refusals is not None:
            refusal_ticket = refusals.ticket()
        result, wrote, last_used_at, limited = self._verify_stored(
            session, candidates, key, cache_key, now, organization_id, client, cost, owned
        )
        if limited is not None:  # a key with opt-in limits
            return self._answer_limited(cache, cache_key, result, limited, last_used_at, now, ticket), wrote
        if result.key_id is not None:  # a valid result
            if cache is not None:
                self._remember(cache, cache_key, result, result.key_id, last_used_at, now, ticket)
        elif result is _NO_SUCH_KEY and refusals is not None and fresh:
            # Only from a snapshot taken after the ticket: an older one may predate a key's issue.
            if self._before_cache_write is not None:
                self._before_cache_write()
            refusals.put(cache_key, now, ticket=refusal_ticket)
        return self._counted(result, "database"), wrote

    def _answer_limited(
        self,
        cache: KeyCache[ApiKeyVerification] | None,
        cache_key: str,
        result: ApiKeyVerification,
        limited: tuple[Guard, ApiKeyVerification],
        last_used_at: datetime | None,
        now: datetime,
        ticket: int,
    ) -> ApiKeyVerification:
        """A limited key read from its row: its result cached with its guard, whose answer is given."""
        guard, answer = limited
        if cache is not None and result.key_id is not None:
            self._remember(cache, cache_key, result, result.key_id, last_used_at, now, ticket, guard)
        return self._counted(answer, "database")

    def _counted(self, result: ApiKeyVerification, source: Source) -> ApiKeyVerification:
        metrics = self.metrics
        if metrics is not None:
            metrics.verification(result.reason or "valid", source)
        return result

    def _verify_stored(  # noqa: C901  one pipeline: fetch, match, decide, the opt-in step, rehash, touch
        self,
        session: Session | Connection,
        candidates: _Candidates,
        key: str,
        cache_key: str,
        now: datetime,
        organization_id: str | None,
        client: ApiKeyClient | None = None,
        cost: int = 1,
        owned: bool = False,
    ) -> tuple[ApiKeyVerification, bool, datetime | None, tuple[Guard, ApiKeyVerification] | None]:
        """Fetch, match, decide, then the side effects of a verified key: rehash and ``last_used_at``.

        Returns:
            The result (:data:`_NO_SUCH_KEY` when no row matched), whether it wrote, the key's
            ``last_used_at`` after this verification (a deferred write counts as done), and for a key with
            opt-in limits its :class:`Guard` and the answer: the result itself, or what the guard's checks
            made of it (a refusal, or the credits left); ``None`` for every other key.
        """
        connection = session.connection() if isinstance(session, Session) else session
        lookup = candidates.lookup(key, cache_key)
        plan = candidates.query.plan(connection.dialect, self.membership.schema_translate_map(connection))
        rows = candidates.query.fetch(connection, plan, lookup, self.membership.execution_options)
        found = candidates.match(rows, lookup, key, plan, now, organization_id)
        if found is None:
            return _NO_SUCH_KEY, False, None, None
        row, position = found
        # _VERIFY_FIELDS
        key_id, org, name, scopes, expires_at, revoked_at, last_used_at, stored, constraints = row
        processors = plan.processors
        if expires_at is not None:
            expires_at = processors[_EXPIRES_AT](expires_at)
        refusal = _decide(org, revoked_at, expires_at, now, organization_id)
        if refusal is not None:
            return refusal, False, None, None
        limited = None
        if constraints is None:
            result = self._valid_result(key_id, org, name, processors[_SCOPES](scopes), expires_at)
            wrote = False
        else:  # the opt-in step (revision 0010): subject, bindings, rate limits, credits
            guard = guard_for(constraints, processors[_CONSTRAINTS])
            fields = (key_id, org, name, processors[_SCOPES](scopes), expires_at)
            result, answer, wrote = self._stored_guarded(connection, guard, fields, client, cost, now, owned)
            limited = (guard, answer)
            if not answer.valid:
                return result, wrote, None, limited
        if position > 0:  # a fallback hasher matched: move the key to the current one
            self._rehash(connection, key_id, stored, lookup[0])
            wrote = True
        if self.track_last_used:
            # Only compared, never returned: an aware datetime (psycopg's, in the server's zone) compares
            # correctly as it is; text (SQLite) and naive values (MySQL) are converted.
            if last_used_at is not None and (
                type(last_used_at) is not datetime or last_used_at.tzinfo is None
            ):
                last_used_at = processors[_LAST_USED_AT](last_used_at)
            if self._touch_due(last_used_at, now):
                buffer = self._last_used
                if buffer is None or not buffer.record(key_id, now):
                    self._touch(connection, key_id, now)
                    wrote = True
                last_used_at = now
        return result, wrote, last_used_at, limited

    def flush_last_used(self, session: Session | Connection) -> int:
        """Write the deferred ``last_used_at`` uses on ``session``'s connection, in its transaction.

        The caller commits. With ``last_used_writes="inline"`` there is never anything to write. Many keys
        go in one conditional ``UPDATE`` (still at most one write per key per ``last_used_interval``,
        whatever other processes wrote). On failure the uses stay pending for the next flush.

        Returns:
            How many keys' ``last_used_at`` it wrote.
        """
        if self._last_used is None:
            return 0
        connection = session.connection() if isinstance(session, Session) else session
        return self._last_used.flush(connection, self.membership.execution_options)

    @property
    def pending_last_used(self) -> int:
        """How many keys have a deferred ``last_used_at`` write waiting for :meth:`flush_last_used`."""
        return 0 if self._last_used is None else len(self._last_used)

    def authenticate(
        self,
        session: Session | Connection,
        key: object,
        *,
        organization_id: str | None = None,
        scopes: Iterable[str] = (),
        client: ApiKeyClient | None = None,
        cost: int = 1,
    ) -> ApiKeyVerification:
        """Like :meth:`verify`, but raise instead of answering "invalid".

        Args:
            session: The caller's Session or Connection.
            key: The presented key.
            organization_id: When given, a key of any other organization is refused as ``unknown``.
            scopes: Scopes the key must carry.

        Returns:
            The valid verification result.

        Raises:
            InvalidApiKeyError: The key does not verify; ``reason`` says why.
            RateLimitedError: The key is over a rate limit (HTTP 429).
            UsageExceededError: The key has too few credits left (HTTP 429).
            MissingScopeError: The key is valid but lacks some of ``scopes``.
        """
        verified = self._verify(session, key, organization_id, client, cost)[0]
        require_scopes(verified, scopes)
        return verified

    def authenticate_and_report(
        self,
        session: Session | Connection,
        key: object,
        *,
        organization_id: str | None = None,
        scopes: Iterable[str] = (),
        client: ApiKeyClient | None = None,
        cost: int = 1,
    ) -> tuple[ApiKeyVerification, bool]:
        """Like :meth:`authenticate`, and whether it wrote in the caller's transaction: when to commit.

        Web adapters call this to commit exactly when the verification wrote (see :meth:`verify_and_report`).

        Raises:
            InvalidApiKeyError: The key does not verify; ``reason`` says why.
            MissingScopeError: The key is valid but lacks some of ``scopes``.
        """
        verified, wrote = self._verify(session, key, organization_id, client, cost)
        require_scopes(verified, scopes)
        return verified, wrote

    def clear_cache(self) -> None:
        """Empty the in-process cache (no effect when it is off)."""
        if self._cache is not None:
            self._cache.clear()
        if self._refusals is not None:
            self._refusals.clear()

    # --- internals --------------------------------------------------------------------------------------

    def _touch_due(self, last_used_at: datetime | None, now: datetime) -> bool:
        """Whether a key last used at ``last_used_at`` gets ``last_used_at`` written at ``now``."""
        return self.track_last_used and (last_used_at is None or last_used_at < now - self.last_used_interval)

    def _remember(
        self,
        cache: KeyCache[ApiKeyVerification],
        cache_key: str,
        result: ApiKeyVerification,
        key_id: str,
        last_used_at: datetime | None,
        now: datetime,
        ticket: int,
        guard: Guard | None = None,
    ) -> None:
        if self.cache_ttl is None:
            return
        if self._before_cache_write is not None:
            self._before_cache_write()
        entry = CacheEntry(result, key_id, now + self.cache_ttl, last_used_at, guard)
        if guard is not None and guard.member is not None and result.organization_id is not None:
            entry.member = (result.organization_id, guard.member)
        cache.put(cache_key, entry, ticket=ticket)

    # --- the opt-in step of limited keys (see tenantkit.api_keys._limits) -------------------------------

    def _begin_guarded(
        self,
        entry: CacheEntry[ApiKeyVerification],
        candidates: _Candidates,
        key: str,
        cache_key: str,
        now: datetime,
        client: ApiKeyClient | None,
        cost: int,
    ) -> ApiKeyVerification | _Due:
        """A cached key with opt-in limits: bindings and rate limits in memory; credits need the database."""
        result = entry.value
        answer = self._admit(entry.guard, result, client)
        if answer is not result:
            return self._counted(answer, "cache")
        if entry.guard.credits:  # never answered from the cache without spending
            return (candidates, key, cache_key, now, entry)
        if self._touch_due(entry.last_used_at, now):
            if self._last_used is None or not self._last_used.record(entry.key_id, now):
                return (candidates, key, cache_key, now, entry)
            entry.last_used_at = now
        return self._counted(result, "cache")

    def _complete_guarded(
        self,
        session: Session | Connection,
        entry: CacheEntry[ApiKeyVerification],
        now: datetime,
        cost: int,
        owned: bool,
    ) -> tuple[ApiKeyVerification, bool]:
        """The database part of a cached limited key: spend its credits, then a ``last_used_at`` write due."""
        connection = session.connection() if isinstance(session, Session) else session
        answer, wrote = entry.value, False
        if entry.guard.credits:
            answer, wrote = self._spend(connection, answer, cost, now, owned)
            if not answer.valid:
                return self._counted(answer, "cache"), wrote
        if self._touch_due(entry.last_used_at, now):
            if self._last_used is None or not self._last_used.record(entry.key_id, now):
                self._touch(connection, entry.key_id, now)
                wrote = True
            entry.last_used_at = now
        return self._counted(answer, "cache"), wrote

    def _stored_guarded(
        self,
        connection: Connection,
        guard: Guard,
        fields: tuple[str, str, str, tuple[str, ...], datetime | None],
        client: ApiKeyClient | None,
        cost: int,
        now: datetime,
        owned: bool,
    ) -> tuple[ApiKeyVerification, ApiKeyVerification, bool]:
        """A limited key read from its row: the result to cache, the answer, and whether it wrote inline.

        The user of a user's key must still be a member (else :data:`_SUBJECT_INACTIVE`, cached never), and
        keeps only the scopes that user may still use; then bindings, rate limits and credits — spent before
        any write of the caller's transaction, which SQLite would make the spending connection wait for.
        """
        key_id, org, name, scopes, expires_at = fields
        if guard.member is not None:
            narrowed = self._narrow_to_member(connection, org, guard.member, scopes)
            if narrowed is None:
                return _SUBJECT_INACTIVE, _SUBJECT_INACTIVE, False
            scopes = narrowed
        result = self._valid_result(key_id, org, name, scopes, expires_at, guard.subject)
        answer = self._admit(guard, result, client)
        if answer is not result or not guard.credits:
            return result, answer, False
        answer, wrote = self._spend(connection, result, cost, now, owned)
        return result, answer, wrote

    def _admit(
        self, guard: Guard, result: ApiKeyVerification, client: ApiKeyClient | None
    ) -> ApiKeyVerification:
        """``result`` itself if ``client`` may use the key now (bindings, rate limits), else the refusal."""
        reason = guard.refusal(client)
        if reason is not None:
            return self._refused(result, reason)  # type: ignore[arg-type]  # the guard's reasons are InvalidReason
        if guard.rate_limits:
            limiter = self.rate_limiter or self._default_rate_limiter()
            states = limiter.hit(result.key_id or "", guard.rate_limits)
            if states is not None:
                return self._refused(result, "rate_limited", retry_after=states[-1].reset, rate_limits=states)
        return result

    def _spend(
        self, connection: Connection, result: ApiKeyVerification, cost: int, now: datetime, owned: bool
    ) -> tuple[ApiKeyVerification, bool]:
        """Spend ``cost`` credits of the key of ``result`` (own transaction), and say what remains.

        ``owned``: ``connection`` is this verification's alone and is committed right after it (the
        adapters' ``database=``), so the spending runs on it rather than on a second connection.
        """
        if not isinstance(cost, int) or isinstance(cost, bool) or cost < 0:
            raise InvalidInputError("cost", "must be a whole number of credits, zero or more")
        translate = self.membership.schema_translate_map(connection)
        options = (
            self.membership.execution_options if translate is None else {"schema_translate_map": translate}
        )
        spent, wrote = spend_credits(connection, result.key_id or "", cost, now, options, inline=owned)
        if not spent.accepted:
            refused = self._refused(
                result, "usage_exceeded", credits_remaining=spent.remaining, retry_after=spent.retry_after
            )
            return refused, wrote
        return result.model_copy(update={"credits_remaining": spent.remaining}), wrote

    @staticmethod
    def _refused(result: ApiKeyVerification, reason: InvalidReason, **data: Any) -> ApiKeyVerification:
        return ApiKeyVerification(
            valid=False,
            reason=reason,
            organization_id=result.organization_id,
            key_id=result.key_id,
            subject_type=result.subject_type,
            subject_id=result.subject_id,
            **data,
        )

    def _default_rate_limiter(self) -> RateLimiter:
        with _LIMITER_LOCK:
            if self.rate_limiter is None:
                self.rate_limiter = RateLimiter()
            return self.rate_limiter

    def _narrow_to_member(
        self, connection: Connection, organization_id: str, user_id: str, scopes: tuple[str, ...]
    ) -> tuple[str, ...] | None:
        """The scopes a key standing for ``user_id`` keeps, or ``None`` when the user is no member.

        A scope that names a permission of the permission table (``api_keys:manage``, a host's
        ``reports:export``) stays only while the user's role holds it; any other scope is the key's own.
        """
        # get_role is None for a suspended member too: its keys stop with it.
        role = self.membership.get_role(connection, organization_id, user_id)
        if role is None:
            return None
        permissions = self.membership.permissions
        known = _permission_names(permissions)
        if permissions.registry_declared:
            known |= permissions.registry.names
        if not known.intersection(scopes):
            return scopes
        # What the user holds now, its custom role's permissions included (kept for permission_cache_ttl).
        effective = self.membership.effective_permissions(connection, organization_id, user_id)
        held = effective.permissions if effective is not None else permissions.actions(role)
        return tuple(scope for scope in scopes if scope not in known or scope in held)

    def _check_subject(self, session: Session, organization_id: str, subject: ApiKeySubject) -> None:
        if (
            subject.type == "user"
            and subject.id is not None
            and self.membership.get_role(session, organization_id, subject.id) is None
        ):
            raise InvalidInputError(
                "subject", f"{subject.id!r} is not a member of organization {organization_id!r}"
            )

    def _rehash(self, connection: Connection, key_id: str, old: str, new: str) -> None:
        # Conditional on the old stored form, so that concurrent verifiers move the key once.
        connection.execute(
            _REHASH,
            {"key_id": key_id, "old_digest": old, "new_digest": new},
            execution_options=self.membership.execution_options,
        )

    def _touch(self, connection: Connection, key_id: str, now: datetime) -> None:
        # Conditional, so that concurrent verifiers (other processes too) write at most once per interval;
        # updated_at is left alone: being used is not a change of the key.
        connection.execute(
            _TOUCH,
            {"key_id": key_id, "threshold": now - self.last_used_interval, "now": now},
            execution_options=self.membership.execution_options,
        )

    def _check_lifetime(
        self, session: Session, organization_id: str, expires_at: datetime | None, now: datetime
    ) -> None:
        """Refuse a key the organization's settings do not allow (no expiry, or one too far off)."""
        if self.policies is not None:
            self.policies.policy(session, organization_id).check_key_expiry(expires_at, now)

    def _expiry(self, expires: datetime | timedelta | None, now: datetime) -> datetime | None:
        if expires is None:
            return None
        if isinstance(expires, timedelta):
            if expires <= timedelta(0):
                raise InvalidInputError("expires", "a duration must be positive")
            return now + expires
        when = as_utc(expires, "expires")
        if when <= now:
            raise InvalidInputError("expires", "must be in the future")
        return when

    def _insert(
        self,
        session: Session,
        organization_id: str,
        name: str,
        scopes: tuple[str, ...],
        expires_at: datetime | None,
        actor: Actor,
        now: datetime,
        *,
        rotated_from: str | None = None,
        subject: ApiKeySubject = ORGANIZATION,
        limits: ApiKeyLimits | None = None,
    ) -> IssuedApiKey:
        current = self._hashers.current
        plaintext = self.format.generate(with_lookup_id=current.kind is KeyKind.ARGON2)
        stored = current.store(plaintext)
        key = ApiKey(
            id=new_id(),
            organization_id=organization_id,
            name=name,
            start=self.format.start(plaintext),
            scopes=scopes,
            created_by=actor.user_id,
            created_at=now,
            updated_at=now,
            expires_at=expires_at,
            last_used_at=None,
            revoked_at=None,
            rotated_from=rotated_from,
            replaced_at=None,
            subject=subject,
            limits=limits,
        )
        values = key.model_dump(exclude={"subject", "limits"})
        values["scopes"] = list(scopes)
        values.update(limit_columns(subject, limits, now))
        session.execute(
            api_keys.insert().values(hashed_key=stored, **values),
            execution_options=self.membership.execution_options,
        )
        # At once in this process: a cached "no such key" may name this very key (the commit announces it
        # again, and beyond the process).
        self.events.caches.invalidate((CacheKey.new_api_key(organization_id, key.id),))
        issued = IssuedApiKey(api_key=key)
        issued._plaintext = plaintext
        return issued

    def _load(self, session: Session, organization_id: str, key_id: str) -> ApiKey:
        row = session.execute(
            _GET,
            {"organization_id": organization_id, "key_id": key_id},
            execution_options=self.membership.execution_options,
        ).first()
        if row is None:
            raise ApiKeyNotFoundError(organization_id, key_id)
        return _row_to_key(row)

    def _evict(self, organization_id: str, key_id: str) -> None:
        # At once, in every cache of the process; the commit announces it again (and beyond the process).
        self.events.caches.invalidate((CacheKey.api_key(organization_id, key_id),))

    def _valid_result(
        self,
        key_id: str,
        org: str,
        name: str,
        scopes: tuple[str, ...],
        expires_at: datetime | None,
        subject: ApiKeySubject = ORGANIZATION,
    ) -> ApiKeyVerification:
        # Filed by key id, the one field hashed; the rest compared (a renamed or re-scoped key is rebuilt),
        # but the subject: a key's subject never changes.
        results = self._results
        result = results.get(key_id)
        if (
            result is None
            or result.name != name
            or result.organization_id != org
            or result.scopes != scopes
            or result.expires_at != expires_at
        ):
            result = ApiKeyVerification(
                valid=True,
                organization_id=org,
                key_id=key_id,
                name=name,
                scopes=scopes,
                expires_at=expires_at,
                subject_type=subject.type,
                subject_id=subject.id,
            )
            if len(results) >= _MAX_RESULTS:
                results.clear()
            results[key_id] = result
        return result


def _cache_wanted(name: str, ttl: timedelta | None, size: int) -> bool:
    """Whether the cache ``name`` (``cache``, ``negative_cache``) is on; its options are checked if so."""
    if ttl is None:
        return False
    if not isinstance(ttl, timedelta) or ttl <= timedelta(0):
        raise ConfigurationError(f"{name}_ttl must be a positive timedelta, or None to turn it off")
    if size < 1:
        raise ConfigurationError(f"{name}_size must be at least 1")
    return True


_MAX_RESULTS = 4096
"""Prebuilt valid results a service keeps at most (one per key in use; emptied when full)."""

_LIMITER_LOCK = threading.Lock()


def _subject_condition(subject: ApiKeySubject) -> tuple[sa.ColumnElement[bool], ...]:
    """The ``WHERE`` terms of "keys standing for ``subject``" (the organization's own: no subject stored)."""
    if subject.type == "organization":
        return (api_keys.c.subject_type.is_(None),)
    return (api_keys.c.subject_type == subject.type, api_keys.c.subject_id == subject.id)


def _credit_amount(value: object, field: str, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < 2**62:
        raise InvalidInputError(
            field, "must be a whole number of credits" + (", zero or more" if minimum == 0 else "")
        )
    return value


@lru_cache(maxsize=64)
def _permission_names(permissions: Any) -> frozenset[str]:
    """Every action some role holds in ``permissions``: the scopes a user's key keeps only while allowed."""
    return frozenset().union(*(permissions.actions(role) for role in Role))


def _decide(
    org: str, revoked_at: object, expires_at: datetime | None, now: datetime, organization_id: str | None
) -> ApiKeyVerification | None:
    """The refusal at ``now`` of a key of ``org`` with this revocation and expiry, or ``None`` if it verifies.

    The one decision of every verification, fresh from the database or from the cache, and I/O-free. Any
    presented secret gets this answer: a key of another organization is ``unknown`` (never revealing that it
    exists), then a revoked key ``revoked``, then an expired one ``expired``.
    """
    if organization_id is not None and org != organization_id:
        return _UNKNOWN
    if revoked_at is not None:
        return _REVOKED
    if expires_at is not None and now >= expires_at:
        return _EXPIRED
    return None


def _decide_cached(
    cached: ApiKeyVerification, now: datetime, organization_id: str | None
) -> ApiKeyVerification:
    """The answer at ``now`` for a key whose valid result was cached (revoked keys are evicted)."""
    refusal = _decide(cached.organization_id or "", None, cached.expires_at, now, organization_id)
    return cached if refusal is None else refusal


_Due = tuple[_Candidates, str, str, datetime, "CacheEntry[ApiKeyVerification] | None"]
"""What a verification memory could not answer needs: its candidates, the key, its cache key (the digest
already made), the time of verification, and a cached entry due only an inline ``last_used_at`` write (or,
for a key with credits, their spending). The client and the cost travel beside it: only limited keys
read them."""


class PendingVerification:
    """A verification memory could not answer: :meth:`complete` it on a connection.

    Made by :meth:`ApiKeyService.begin_verification`; it carries the format check and digest already made,
    so the database part computes neither again. Complete it once, soon: its time of verification is the
    moment it was begun.
    """

    __slots__ = ("_client", "_cost", "_due", "organization_id", "service")

    service: ApiKeyService
    organization_id: str | None
    """Only keys of this organization are accepted, when set."""
    _due: _Due  # holds the presented key: kept out of the public attributes and the repr
    _client: ApiKeyClient | None
    _cost: int

    def __init__(
        self,
        service: ApiKeyService,
        due: _Due,
        organization_id: str | None,
        client: ApiKeyClient | None = None,
        cost: int = 1,
    ) -> None:
        self.service = service
        self._due = due
        self.organization_id = organization_id
        self._client = client
        self._cost = cost

    def complete(self, session: Session | Connection) -> ApiKeyVerification:
        """The verification, looked up on ``session`` (or its connection); commit if it wrote, as usual."""
        return self.service._complete(session, self._due, self.organization_id, self._client, self._cost)[0]

    def complete_and_report(self, session: Session | Connection) -> tuple[ApiKeyVerification, bool]:
        """Like :meth:`complete`, and whether it wrote in the caller's transaction (a commit is due)."""
        return self.service._complete(session, self._due, self.organization_id, self._client, self._cost)

    def complete_on_own_connection(self, connection: Connection) -> tuple[ApiKeyVerification, bool]:
        """Like :meth:`complete_and_report` on a connection that is this verification's alone, which the
        caller commits at once if it wrote (what the adapters' ``database=`` does).

        Usage credits are then spent on it, rather than on a second connection of the engine.
        """
        return self.service._complete(
            connection, self._due, self.organization_id, self._client, self._cost, owned=True
        )

    def __repr__(self) -> str:
        # Never the key, nor its digest.
        return f"PendingVerification(organization_id={self.organization_id!r})"
