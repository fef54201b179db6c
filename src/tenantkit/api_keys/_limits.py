"""What a verification checks beyond a key's row: its subject, bindings, rate limits and usage credits.

Every part is opt-in and per key. The verification reads one column for all of them: ``constraints``,
JSON with everything the :class:`Guard` needs (the subject, whether credits apply, the rate limits and
bindings), written by :func:`limit_columns` alone, at issue, rotation and ``set_credits``. A key with none
of them has ``constraints`` ``NULL`` and no :class:`Guard`, and its verification runs as before: one
``is None`` test on the row, one on a cache hit. The columns ``subject_type``/``subject_id`` (listing and
revoking by subject) and ``credits_remaining`` and the refill columns (read and written by the spending
``UPDATE`` alone) are not read by a verification.

* **Subject**: whom the key stands for (:class:`ApiKeySubject`): its organization (the default), a user, or a
  device (a serial or UDI). A user's key is narrowed at every database verification to what that user may
  still do (see :func:`narrow_to_user`), and evicted from the cache when the user's membership changes.
* **Bindings**: allowed networks (CIDRs) matched against the client address the adapter read (with the
  trusted-proxy setting, never a raw ``X-Forwarded-For``), and the SHA-256 thumbprint of a client
  certificate (RFC 8705's idea) compared in constant time with the one a TLS-terminating proxy forwards.
* **Rate limits**: through the ``limits`` library (:class:`RateLimiter`), in memory or on Redis, keyed by
  the key's id.
* **Credits**: remaining uses in ``credits_remaining``, spent by one conditional ``UPDATE`` in a short
  transaction of its own (:func:`spend_credits`), lazily refilled per day or month.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from sqlalchemy.engine import Connection
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from tenantkit._context import parse_ip_address
from tenantkit._errors import ConfigurationError, InvalidInputError, RateLimiterUnavailableError
from tenantkit._tables import UTCDateTime, api_keys
from tenantkit._validation import check_identifier

if TYPE_CHECKING:
    from limits import RateLimitItem

logger = logging.getLogger("tenantkit.api_keys")

SubjectType = Literal["organization", "user", "device"]
RefillPeriod = Literal["day", "month"]
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _checked(model: type[BaseModel], values: Mapping[str, Any]) -> Any:
    """``model(**values)``, with pydantic's first complaint as an :class:`InvalidInputError`."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or model.__name__
        raise InvalidInputError(field, str(first["msg"]).removeprefix("Value error, ")) from None


class ApiKeySubject(BaseModel):
    """Whom a key stands for: its organization (``id`` is ``None``), a user, or a device.

    ::

        ApiKeySubject.user("alice")
        ApiKeySubject.device("SN-4711")   # a serial number or a UDI

    A user's key works only while the user is a member of the key's organization, and carries only the
    scopes the user may still use (see the bound-keys page of the documentation).
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid")

    type: SubjectType = "organization"
    id: str | None = None

    @model_validator(mode="after")
    def _check_id(self) -> ApiKeySubject:
        if self.type == "organization":
            if self.id is not None:
                raise ValueError("an organization subject takes no id (the key's organization is it)")
        else:
            if self.id is None:
                raise ValueError(f"a {self.type} subject needs an id")
            check_identifier(self.id, "subject.id")
        return self

    @classmethod
    def user(cls, user_id: str) -> ApiKeySubject:
        """The user ``user_id`` (a member of the key's organization)."""
        return _checked(cls, {"type": "user", "id": user_id})  # type: ignore[no-any-return]

    @classmethod
    def device(cls, device_id: str) -> ApiKeySubject:
        """The device ``device_id``: a serial number, a UDI, any opaque id of up to 255 characters."""
        return _checked(cls, {"type": "device", "id": device_id})  # type: ignore[no-any-return]

    @classmethod
    def parse(cls, value: ApiKeySubject | Mapping[str, Any] | None) -> ApiKeySubject:
        """``value`` as a subject (``None``: the organization)."""
        if value is None:
            return ORGANIZATION
        if isinstance(value, ApiKeySubject):
            return value
        return _checked(cls, value)  # type: ignore[no-any-return]


ORGANIZATION = ApiKeySubject()
"""The subject of a key that stands for its organization as a whole (every key before revision 0010)."""


def normalize_thumbprint(value: str) -> bytes | None:
    """The 32 bytes a SHA-256 thumbprint spells: hex (colons allowed) or base64url (RFC 8705's
    ``x5t#S256``), or ``None`` if it spells none."""
    text = value.strip()
    hexed = text.replace(":", "")
    if len(hexed) == 64:
        try:
            return bytes.fromhex(hexed)
        except ValueError:
            pass
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def _parse_rate_limit(text: str) -> RateLimitItem:
    try:
        import limits
    except ModuleNotFoundError:  # pragma: no cover - the extra is part of the dev install
        raise ConfigurationError(
            'rate limits need the limits library: pip install "tenantkit[limits]"'
        ) from None
    try:
        return limits.parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a rate limit such as '100/minute' or '1000 per hour'") from None


class ApiKeyLimits(BaseModel):
    """A key's opt-in limits and bindings, given to :meth:`~tenantkit.api_keys.ApiKeyService.issue`.

    Attributes:
        credits: Uses the key has (``None``: unlimited). Each verification spends its ``cost`` (1 by
            default); at fewer than the cost the key answers ``usage_exceeded``.
        refill_amount: What ``credits`` is reset to once per ``refill_period``, at the first verification
            of the period (lazily; nothing runs in the background).
        refill_period: ``"day"`` or ``"month"``, UTC calendar periods.
        rate_limits: Limits such as ``"100/minute"`` or ``"5000 per day"``, all enforced at once.
        allowed_cidrs: Networks the client's address must be in (``"10.0.0.0/8"``, ``"2001:db8::/32"``).
        certificate_sha256: The SHA-256 thumbprint of the client certificate the key is bound to, in hex or
            base64url.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid")

    credits: int | None = None
    refill_amount: int | None = None
    refill_period: RefillPeriod | None = None
    rate_limits: tuple[str, ...] = ()
    allowed_cidrs: tuple[str, ...] = ()
    certificate_sha256: str | None = None

    if TYPE_CHECKING:
        # The signature callers see: any sequence of strings, stored as tuples.
        def __init__(
            self,
            *,
            credits: int | None = ...,
            refill_amount: int | None = ...,
            refill_period: RefillPeriod | None = ...,
            rate_limits: Sequence[str] = ...,
            allowed_cidrs: Sequence[str] = ...,
            certificate_sha256: str | None = ...,
        ) -> None: ...

    @field_validator("credits")
    @classmethod
    def _check_credits(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value < 2**62:
            raise ValueError("must be zero or more")
        return value

    @field_validator("refill_amount")
    @classmethod
    def _check_refill(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value < 2**62:
            raise ValueError("must be positive")
        return value

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _check_rate_limits(cls, value: object) -> tuple[str, ...]:
        entries = _strings(value, "rate limit")
        if len(entries) > 8:
            raise ValueError("at most 8 rate limits per key")
        return tuple(str(_parse_rate_limit(entry)) for entry in entries)

    @field_validator("allowed_cidrs", mode="before")
    @classmethod
    def _check_cidrs(cls, value: object) -> tuple[str, ...]:
        entries = _strings(value, "network")
        if len(entries) > 64:
            raise ValueError("at most 64 networks per key")
        networks = []
        for entry in entries:
            try:
                networks.append(str(ipaddress.ip_network(entry.strip(), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or a network such as 10.0.0.0/8") from None
        return tuple(networks)

    @field_validator("certificate_sha256")
    @classmethod
    def _check_thumbprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        raw = normalize_thumbprint(value)
        if raw is None:
            raise ValueError("must be a SHA-256 thumbprint: 64 hex digits or 43 base64url characters")
        return raw.hex()

    @model_validator(mode="after")
    def _check_refill_pair(self) -> ApiKeyLimits:
        if (self.refill_amount is None) != (self.refill_period is None):
            raise ValueError("give refill_amount and refill_period together")
        if self.refill_amount is not None and self.credits is None:
            # A refilled key starts full.
            object.__setattr__(self, "credits", self.refill_amount)
        return self

    @classmethod
    def parse(cls, value: ApiKeyLimits | Mapping[str, Any] | None) -> ApiKeyLimits | None:
        """``value`` as limits, checked (``None`` stays ``None``)."""
        if value is None or isinstance(value, ApiKeyLimits):
            return value
        return _checked(cls, value)  # type: ignore[no-any-return]


def _strings(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"must be a list of {what}s, not a single string")
    entries = list(value)
    if not all(isinstance(entry, str) for entry in entries):
        raise ValueError(f"each {what} must be a string")
    return entries


def constraints_for(subject: ApiKeySubject, limits: ApiKeyLimits | None) -> dict[str, Any] | None:
    """The JSON of the ``constraints`` column for a key with ``subject`` and ``limits``: what its
    :class:`Guard` is built from, or ``None`` for a key without any opt-in limit (no guard at all).

    Stored with the columns it summarizes, by :func:`limit_columns` (issue, rotation) and by ``set_credits``
    (which gives a key credits), and by nothing else: a key's subject and bindings never change.
    """
    stored: dict[str, Any] = {}
    if subject.type != "organization":
        stored["subject_type"] = subject.type
        stored["subject_id"] = subject.id
    if limits is not None:
        if limits.credits is not None:
            stored["credits"] = True  # how many is the row's credits_remaining, read by the spending UPDATE
        if limits.rate_limits:
            stored["rate_limits"] = list(limits.rate_limits)
        if limits.allowed_cidrs:
            stored["allowed_cidrs"] = list(limits.allowed_cidrs)
        if limits.certificate_sha256 is not None:
            stored["certificate_sha256"] = limits.certificate_sha256
    return stored or None


def limit_columns(subject: ApiKeySubject, limits: ApiKeyLimits | None, now: datetime) -> dict[str, Any]:
    """The ``api_keys`` values of revision 0010 for a key issued (or rotated) with ``subject`` and
    ``limits``, ``constraints`` (:func:`constraints_for`) among them."""
    columns: dict[str, Any] = {
        "subject_type": None if subject.type == "organization" else subject.type,
        "subject_id": subject.id,
        "constraints": constraints_for(subject, limits),
    }
    if limits is not None:
        columns["credits_remaining"] = limits.credits
        columns["refill_amount"] = limits.refill_amount
        columns["refill_period"] = limits.refill_period
        columns["credits_refilled_at"] = now if limits.refill_amount is not None else None
    return columns


def limits_from_row(row: Any) -> ApiKeyLimits | None:
    """The :class:`ApiKeyLimits` a metadata row holds, or ``None`` for a key without any."""
    constraints = row.constraints or {}
    rate_limits = tuple(constraints.get("rate_limits", ()))
    allowed_cidrs = tuple(constraints.get("allowed_cidrs", ()))
    thumbprint = constraints.get("certificate_sha256")
    if (
        row.credits_remaining is None
        and row.refill_amount is None
        and not rate_limits
        and not allowed_cidrs
        and thumbprint is None
    ):
        return None
    return ApiKeyLimits.model_construct(
        credits=row.credits_remaining,
        refill_amount=row.refill_amount,
        refill_period=row.refill_period,
        rate_limits=rate_limits,
        allowed_cidrs=allowed_cidrs,
        certificate_sha256=thumbprint,
    )


# --- the client presenting a key ----------------------------------------------------------------------


class ApiKeyClient(Protocol):
    """What a verification may ask about the client presenting a key (only keys bound to one ask).

    The web adapters pass one that reads the request lazily; a host verifying by hand passes a
    :class:`ClientInfo`.
    """

    @property
    def address(self) -> str | None:
        """The client's IP address, as the trusted-proxy setting establishes it."""

    @property
    def certificate_thumbprint(self) -> str | None:
        """The SHA-256 thumbprint of the client's certificate, as the TLS-terminating proxy forwarded it."""


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A client's address and certificate thumbprint, for :meth:`ApiKeyService.verify`'s ``client=``."""

    address: str | None = None
    certificate_thumbprint: str | None = None


# --- the guard: what a limited key's verification checks ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Guard:
    """The checks a key's verification runs beyond its row, built once per distinct stored value.

    Attributes:
        subject: The key's subject.
        networks: Allowed networks (empty: any address).
        thumbprint: The bound certificate's SHA-256 (``None``: any or no certificate).
        rate_limits: The key's rate limits.
        credits: Whether the key has usage credits (every verification spends in the database).
    """

    subject: ApiKeySubject
    networks: tuple[_Network, ...]
    thumbprint: bytes | None
    rate_limits: tuple[RateLimitItem, ...]
    credits: bool

    @property
    def member(self) -> str | None:
        """The user id whose membership changes evict this key from the cache, if it stands for a user."""
        return self.subject.id if self.subject.type == "user" else None

    def refusal(self, client: ApiKeyClient | None) -> str | None:
        """The reason ``client`` may not use the key (``address_not_allowed``, ``certificate_mismatch``)."""
        if self.networks:
            text = client.address if client is not None else None
            address = parse_ip_address(text) if text else None
            if address is None or not any(
                address.version == network.version and address in network for network in self.networks
            ):
                return "address_not_allowed"
        if self.thumbprint is not None:
            presented = client.certificate_thumbprint if client is not None else None
            raw = normalize_thumbprint(presented) if presented else None
            # Constant time: a refusal must not tell how much of the thumbprint matched.
            if raw is None or not hmac.compare_digest(raw, self.thumbprint):
                return "certificate_mismatch"
        return None


_GUARDS: dict[Any, Guard] = {}
_MAX_GUARDS = 4096


def guard_for(stored: Any, decode: Callable[[Any], Any]) -> Guard:
    """The :class:`Guard` of a key whose ``constraints`` column holds ``stored`` (not ``NULL``).

    ``stored`` is what the driver returned: text (SQLite, MariaDB), turned into a mapping by ``decode``, or
    the mapping itself (psycopg). Guards are remembered by the stored text, or by the mapping's content.
    """
    text = stored if isinstance(stored, str) else None
    if text is not None:
        guard = _GUARDS.get(text)
        if guard is not None:
            return guard
    # JSON null (a None written without none_as_null, by another tool): a guard that checks nothing.
    values: Mapping[str, Any] = (stored if isinstance(stored, Mapping) else decode(stored)) or {}
    memo_key = (
        values.get("subject_type"),
        values.get("subject_id"),
        bool(values.get("credits")),
        tuple(values.get("rate_limits", ())),
        tuple(values.get("allowed_cidrs", ())),
        values.get("certificate_sha256"),
    )
    guard = _GUARDS.get(memo_key)
    if guard is None:
        subject_type, subject_id, credits, rate_limits, networks, thumbprint = memo_key
        guard = Guard(
            subject=(
                ORGANIZATION
                if subject_type is None
                else ApiKeySubject.model_construct(type=subject_type, id=subject_id)
            ),
            networks=tuple(ipaddress.ip_network(network, strict=False) for network in networks),
            thumbprint=bytes.fromhex(thumbprint) if thumbprint else None,
            rate_limits=tuple(_parse_rate_limit(limit) for limit in rate_limits),
            credits=credits,
        )
        _keep_guard(memo_key, guard)
    if text is not None:
        _keep_guard(text, guard)
    return guard


def _keep_guard(memo_key: Any, guard: Guard) -> None:
    if len(_GUARDS) >= _MAX_GUARDS:
        _GUARDS.clear()
    _GUARDS[memo_key] = guard


# --- rate limits -------------------------------------------------------------------------------------


class RateLimitState(BaseModel):
    """One rate limit of a key as a verification left it: what the ``RateLimit`` headers say.

    Attributes:
        policy: The limit, as written (``"100 per 1 minute"``): the policy's name in the headers.
        limit: Requests allowed per window.
        window: The window, in seconds.
        remaining: Requests left in the current window.
        reset: Seconds until the window lets requests through again.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    policy: str
    limit: int
    window: int
    remaining: int
    reset: int


_STRATEGIES = {
    "sliding-window-counter": "SlidingWindowCounterRateLimiter",
    "fixed-window": "FixedWindowRateLimiter",
    "moving-window": "MovingWindowRateLimiter",
}


class RateLimiter:
    """Per-key rate limits on the ``limits`` library's storage: ``memory://`` or ``redis://…``.

    Counters are keyed ``<key_prefix>/api_key/<key id>/…``: the key id, never the key or its digest.
    ``memory://`` counts in this process; one Redis counts for every process that uses it.

    Args:
        storage: A ``limits`` storage URI: ``"memory://"`` (the default) or ``"redis://host:6379/0"``
            (``tenantkit[redis]``), ``"rediss://…"`` with TLS.
        strategy: ``"sliding-window-counter"`` (the default: smooth, two counters per limit),
            ``"fixed-window"`` (cheapest, bursts at window edges) or ``"moving-window"`` (exact, costliest).
        on_unavailable: When the storage does not answer (Redis down): ``"allow"`` (the default: the
            request goes through unlimited, a warning is logged) or ``"refuse"``
            (:class:`~tenantkit.errors.RateLimiterUnavailableError`, HTTP 503).
        key_prefix: Prefixes every counter in Redis, so that several deployments share one server.
        timeout: Seconds a Redis command may take before the storage counts as unavailable.

    Raises:
        ConfigurationError: An unknown strategy, mode or storage URI, or the ``limits`` library is missing.
    """

    def __init__(
        self,
        storage: str = "memory://",
        *,
        strategy: str = "sliding-window-counter",
        on_unavailable: Literal["allow", "refuse"] = "allow",
        key_prefix: str = "tenantkit",
        timeout: float = 0.5,
    ) -> None:
        try:
            import limits.strategies
            from limits.storage import storage_from_string
        except ModuleNotFoundError:  # pragma: no cover - the extra is part of the dev install
            raise ConfigurationError(
                'rate limits need the limits library: pip install "tenantkit[limits]"'
            ) from None
        if strategy not in _STRATEGIES:
            raise ConfigurationError(f"strategy must be one of {', '.join(_STRATEGIES)}")
        if on_unavailable not in ("allow", "refuse"):
            raise ConfigurationError('on_unavailable must be "allow" or "refuse"')
        options: dict[str, Any] = {}
        if storage.split(":", 1)[0] in ("redis", "rediss", "redis+unix"):
            options = {
                "key_prefix": key_prefix,
                "wrap_exceptions": True,
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
            }
        try:
            self._storage = storage_from_string(storage, **options)
        except Exception as error:  # limits raises ConfigurationError or the driver's own import error
            raise ConfigurationError(f"rate limit storage {storage.split('://')[0]!r}: {error}") from None
        self._limiter = getattr(limits.strategies, _STRATEGIES[strategy])(self._storage)
        self._prefix = key_prefix
        self.strategy = strategy
        self.on_unavailable = on_unavailable
        self.unavailable_count: int = 0
        """How many checks found the storage unavailable (and were let through or refused)."""

    def __repr__(self) -> str:
        return f"RateLimiter(strategy={self.strategy!r}, on_unavailable={self.on_unavailable!r})"

    def hit(self, key_id: str, items: Sequence[RateLimitItem]) -> tuple[RateLimitState, ...] | None:
        """Count one request of ``key_id`` against each of ``items``, in order, stopping at a refusal.

        Returns:
            ``None`` when every limit lets it through; else the state of the limits checked, the refusing
            one last.

        Raises:
            RateLimiterUnavailableError: The storage did not answer and ``on_unavailable`` is ``"refuse"``.
        """
        checked: list[RateLimitItem] = []
        try:
            for item in items:
                checked.append(item)
                if not self._limiter.hit(item, self._prefix, "api_key", key_id):
                    return tuple(self._state(each, key_id) for each in checked)
        except Exception as error:
            self.unavailable_count += 1
            if self.on_unavailable == "refuse":
                raise RateLimiterUnavailableError() from error
            logger.warning("tenantkit rate limiter unavailable (%s); letting the request through", error)
        return None

    def _state(self, item: RateLimitItem, key_id: str) -> RateLimitState:
        stats = self._limiter.get_window_stats(item, self._prefix, "api_key", key_id)
        window = int(item.get_expiry())
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimitState(
            policy=str(item),
            limit=item.amount,
            window=window,
            remaining=max(0, int(stats.remaining)),
            reset=min(reset, window),
        )

    def reset(self) -> None:
        """Forget every counter of the storage (tests; on Redis, every key under ``key_prefix``)."""
        self._storage.reset()


# --- credits -----------------------------------------------------------------------------------------


def period_start(period: str, now: datetime) -> datetime:
    """The start (UTC) of the ``day`` or ``month`` that ``now`` falls in."""
    utc = now.astimezone(timezone.utc)
    if period == "month":
        return utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


def next_refill(period: str | None, now: datetime) -> int | None:
    """Whole seconds from ``now`` to the next refill of a key refilled per ``period`` (``None``: never)."""
    if period is None:
        return None
    start = period_start(period, now)
    if period == "month":
        days = calendar.monthrange(start.year, start.month)[1]
        following = start + timedelta(days=days)
    else:
        following = start + timedelta(days=1)
    return max(1, math.ceil((following - now).total_seconds()))


_c = api_keys.c
# Whether the key's refill is due: it has one, and was last refilled before its period's current start.
_REFILL_DUE = sa.and_(
    _c.refill_amount.is_not(None),
    sa.or_(
        _c.credits_refilled_at.is_(None),
        sa.and_(
            _c.refill_period == "day", _c.credits_refilled_at < sa.bindparam("day_start", type_=UTCDateTime())
        ),
        sa.and_(
            _c.refill_period == "month",
            _c.credits_refilled_at < sa.bindparam("month_start", type_=UTCDateTime()),
        ),
    ),
)
_AVAILABLE = sa.case((_REFILL_DUE, _c.refill_amount), else_=_c.credits_remaining)

# One conditional statement: refill if due, and spend if enough is left. Neither assignment reads the
# other's column, so MySQL's left-to-right SET evaluation gives the same result as the standard's.
SPEND = (
    api_keys.update()
    .where(
        _c.id == sa.bindparam("key_id"),
        _c.credits_remaining.is_not(None),
        sa.bindparam("cost", type_=sa.BigInteger()) <= _AVAILABLE,
    )
    .values(
        credits_remaining=_AVAILABLE - sa.bindparam("cost", type_=sa.BigInteger()),
        credits_refilled_at=sa.case(
            (_REFILL_DUE, sa.bindparam("now", type_=UTCDateTime())), else_=_c.credits_refilled_at
        ),
    )
)
SPEND_RETURNING = SPEND.returning(_c.credits_remaining)
_READ_BACK = sa.select(_c.credits_remaining, _c.refill_period, _AVAILABLE).where(
    _c.id == sa.bindparam("key_id")
)


@dataclass(frozen=True, slots=True)
class Spent:
    """What spending credits answered: whether it was accepted, what remains, when the next refill is."""

    accepted: bool
    remaining: int
    retry_after: int | None


def _shares_one_connection(connection: Connection) -> bool:
    """Whether the engine has one connection for all (SQLite in memory): no transaction of its own then."""
    return isinstance(connection.engine.pool, StaticPool | SingletonThreadPool)


def spend_credits(
    connection: Connection,
    key_id: str,
    cost: int,
    now: datetime,
    execution_options: Mapping[str, Any],
    *,
    inline: bool = False,
) -> tuple[Spent, bool]:
    """Spend ``cost`` credits of ``key_id`` in a short transaction of its own, committed at once.

    The caller's transaction is not used, so a row lock lives for this one statement, never for the rest of
    the request. On PostgreSQL and SQLite the ``UPDATE`` returns what remains; MariaDB has no
    ``UPDATE … RETURNING``, so it is read back in the same transaction, under the row lock the update took.
    An in-memory SQLite database (one connection for the whole engine) spends on the caller's connection,
    in its transaction, and so does ``inline``: a connection that is the verification's alone, committed
    right after it (the adapters' own), which spares a second connection.

    Returns:
        What was spent, and whether it wrote on the *caller's* connection (only in that last case).
    """
    if inline or _shares_one_connection(connection):
        return _spend_on(connection, key_id, cost, now, execution_options), True
    with connection.engine.connect() as own:
        spent = _spend_on(own, key_id, cost, now, execution_options)
        own.commit()
    return spent, False


def _spend_on(
    connection: Connection, key_id: str, cost: int, now: datetime, execution_options: Mapping[str, Any]
) -> Spent:
    parameters = {
        "key_id": key_id,
        "cost": cost,
        "now": now,
        "day_start": period_start("day", now),
        "month_start": period_start("month", now),
    }
    if connection.dialect.update_returning:
        remaining = connection.execute(
            SPEND_RETURNING, parameters, execution_options=execution_options
        ).scalar_one_or_none()
        if remaining is not None:
            return Spent(True, int(remaining), None)
    else:
        result = connection.execute(SPEND, parameters, execution_options=execution_options)
        if result.rowcount == 1:
            row = connection.execute(_READ_BACK, parameters, execution_options=execution_options).first()
            return Spent(True, int(row[0]) if row is not None and row[0] is not None else 0, None)
    # Refused: what is available now (a due refill counted), and when the next refill comes.
    row = connection.execute(_READ_BACK, parameters, execution_options=execution_options).first()
    if row is None:
        return Spent(False, 0, None)  # deleted meanwhile
    if row[0] is None:
        return Spent(True, 0, None)  # made unlimited meanwhile
    return Spent(False, int(row[2]), next_refill(row[1], now))


__all__ = [
    "ApiKeyClient",
    "ApiKeyLimits",
    "ApiKeySubject",
    "ClientInfo",
    "Guard",
    "RateLimitState",
    "RateLimiter",
    "Spent",
    "constraints_for",
    "guard_for",
    "limit_columns",
    "limits_from_row",
    "next_refill",
    "period_start",
    "spend_credits",
]
