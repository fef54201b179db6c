"""How an API key is stored: a digest tagged with its algorithm, so the algorithm can change later.

* ``sha256$<hex>`` — SHA-256 of the key (the default).
* ``hmac-sha256$<version>$<hex>`` — HMAC-SHA256 of the key under the server pepper ``version``.
* ``argon2id$<lookup id>$argon2id$v=19$…`` — an argon2id hash (opt-in), prefixed by the key's non-secret
  lookup id: a salted hash cannot be looked up, so the row is found by the id and the hash verified after.

Each format is written and read by one hasher object (:class:`Sha256Hasher`, :class:`HmacSha256Hasher`,
:class:`Argon2idHasher`) with ``store(key)`` and ``matches(stored, key)``, and tried in preference order the
way itsdangerous tries its signers: the first that matches wins, and a key matched by a fallback is moved to
the current hasher. :func:`choose_hasher` builds them from the settings' names.

A key has 256 random bits, so a fast digest cannot be brute-forced: there is nothing to guess. A pepper
adds that a stolen database alone does not even let an attacker check a candidate key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tenantkit._errors import ConfigurationError
from tenantkit.api_keys._format import KeyKind, lookup_id_of

_VERSION_PATTERN = re.compile(r"[A-Za-z0-9]{1,16}")
_MIN_PEPPER_BYTES = 16


def same_digest(stored: object, candidate: str) -> bool:
    """Constant-time equality of a stored digest and a computed one (ASCII, as every digest is)."""
    return isinstance(stored, str) and stored.isascii() and hmac.compare_digest(stored, candidate)


@dataclass(frozen=True, slots=True)
class Pepper:
    """One server secret mixed into digests, named by a version."""

    version: str
    secret: bytes

    def __repr__(self) -> str:
        return f"Pepper(version={self.version!r}, secret=<hidden>)"

    def digest(self, key: str) -> str:
        """``hmac-sha256$<version>$<hex>`` of ``key`` under this pepper."""
        mac = hmac.new(self.secret, key.encode(), hashlib.sha256).hexdigest()
        return f"hmac-sha256${self.version}${mac}"


class KeyHasher(ABC):
    """One way of storing a key: what is written in ``hashed_key``, and how a presented key is checked."""

    __slots__ = ()

    name: ClassVar[str]
    """The name settings choose it by (``hasher="sha256"``)."""
    kind: ClassVar[KeyKind]
    """The shape of the keys it stores (a salted hash needs keys that carry a lookup id)."""

    @abstractmethod
    def store(self, key: str) -> str:
        """The ``hashed_key`` value of ``key``."""

    @abstractmethod
    def matches(self, stored: object, key: str) -> bool:
        """Whether ``stored`` (a ``hashed_key`` value) was stored by this hasher for ``key``."""


class DigestHasher(KeyHasher):
    """A hasher whose stored form is a digest of the key alone: its lookup is ``hashed_key = store(key)``."""

    __slots__ = ()

    kind: ClassVar[KeyKind] = KeyKind.DIGEST

    def matches(self, stored: object, key: str) -> bool:
        """Whether ``stored`` is this hasher's digest of ``key`` (compared in constant time)."""
        return same_digest(stored, self.store(key))


class Sha256Hasher(DigestHasher):
    """``sha256$<hex>``: SHA-256 of the key, the default without a pepper."""

    __slots__ = ()

    name: ClassVar[str] = "sha256"

    def __repr__(self) -> str:
        return "Sha256Hasher()"

    @staticmethod
    def store(key: str) -> str:
        """``sha256$<hex>`` of ``key``."""
        return "sha256$" + hashlib.sha256(key.encode()).hexdigest()


# The function itself, not a function calling it: it runs on every verification (store, and the cache key).
sha256_digest = Sha256Hasher.store


class HmacSha256Hasher(DigestHasher):
    """``hmac-sha256$<version>$<hex>``: HMAC-SHA256 of the key under one pepper."""

    __slots__ = ("pepper",)

    name: ClassVar[str] = "hmac-sha256"

    def __init__(self, pepper: Pepper) -> None:
        self.pepper: Pepper = pepper

    def __repr__(self) -> str:
        return f"HmacSha256Hasher(version={self.pepper.version!r})"

    def store(self, key: str) -> str:
        """``hmac-sha256$<version>$<hex>`` of ``key``."""
        return self.pepper.digest(key)


class Argon2idHasher(KeyHasher):
    """``argon2id$<lookup id>$argon2id$v=19$…``: a salted argon2id hash, filed under the key's lookup id.

    A salted hash cannot be looked up, so its lookup is the range of ``hashed_key`` values filed under the
    key's non-secret lookup id (:meth:`bounds`), and the hash is verified after.
    """

    __slots__ = ("password_hasher",)

    name: ClassVar[str] = "argon2id"
    kind: ClassVar[KeyKind] = KeyKind.ARGON2

    def __init__(self, password_hasher: PasswordHasher) -> None:
        self.password_hasher: PasswordHasher = password_hasher

    def __repr__(self) -> str:
        return "Argon2idHasher()"

    def store(self, key: str) -> str:
        """``argon2id$<lookup id>`` followed by the encoded argon2id hash of ``key``."""
        return f"argon2id${lookup_id_of(key)}{self.password_hasher.hash(key)}"

    @staticmethod
    def bounds(key: str) -> tuple[str, str]:
        """The ``hashed_key`` range of values starting ``argon2id$<lookup id>$`` (``%`` follows ``$``)."""
        lookup_id = lookup_id_of(key)
        return f"argon2id${lookup_id}$", f"argon2id${lookup_id}%"

    @staticmethod
    def owns(stored: object, key: str) -> bool:
        """Whether ``stored`` is an argon2id hash filed under ``key``'s lookup id (no hash computed)."""
        head = f"argon2id${lookup_id_of(key)}"
        # Exact, case-sensitive check: a case-insensitive collation may return a row whose id differs in case
        # (or in accents: compare_digest takes ASCII text only).
        return isinstance(stored, str) and stored.isascii() and hmac.compare_digest(stored[: len(head)], head)

    def matches(self, stored: object, key: str) -> bool:
        """Whether ``stored`` belongs to ``key``'s lookup id and its argon2id hash verifies ``key``."""
        if not isinstance(stored, str) or not self.owns(stored, key):
            return False
        try:
            return self.password_hasher.verify(stored[len(f"argon2id${lookup_id_of(key)}") :], key)
        except (VerificationError, InvalidHashError):
            return False


HASHERS = (Sha256Hasher.name, HmacSha256Hasher.name, Argon2idHasher.name)
"""The names settings may choose a hasher by."""


@dataclass(frozen=True, slots=True)
class Hashers:
    """A service's hashers: the one new keys get, and for each key kind the ones tried, preferred first.

    Attributes:
        name: The hasher's name as configured or defaulted (``sha256``, ``hmac-sha256``, ``argon2id``).
        current: The hasher new keys are stored with.
        digests: The hashers of digest-kind keys, in preference order: the current pepper's, the older
            peppers', then plain SHA-256. The first is where a key matched by a fallback is moved.
        argon2: The hasher of keys that carry a lookup id (whatever hasher new keys get).
    """

    name: str
    current: KeyHasher
    digests: tuple[DigestHasher, ...]
    argon2: Argon2idHasher


def build_peppers(peppers: Mapping[str, bytes | str] | None, current: str | None) -> tuple[Pepper, ...]:
    """The configured peppers, the current one first; empty when none are configured.

    Raises:
        ConfigurationError: A version name or secret is unusable, or ``current`` names no pepper.
    """
    if not peppers:
        if current is not None:
            raise ConfigurationError("current_pepper was given but no peppers are configured")
        return ()
    built: dict[str, Pepper] = {}
    for version, secret in peppers.items():
        if not isinstance(version, str) or not _VERSION_PATTERN.fullmatch(version):
            raise ConfigurationError(
                f"pepper version {version!r} must be 1 to 16 ASCII letters or digits (like 'v2')"
            )
        raw = secret.encode() if isinstance(secret, str) else secret
        if not isinstance(raw, bytes) or len(raw) < _MIN_PEPPER_BYTES:
            raise ConfigurationError(f"pepper {version!r} must be at least {_MIN_PEPPER_BYTES} bytes")
        built[version] = Pepper(version, raw)
    if current is None:
        if len(built) > 1:
            raise ConfigurationError("several peppers are configured: name the current one (current_pepper)")
        current = next(iter(built))
    if current not in built:
        raise ConfigurationError(f"current_pepper {current!r} is not one of the configured peppers")
    return (built[current], *(pepper for version, pepper in built.items() if version != current))


def choose_hasher(
    hasher: str | None, peppers: tuple[Pepper, ...], argon2: PasswordHasher | None = None
) -> Hashers:
    """The service's hashers: ``hasher`` when given, else HMAC-SHA256 with peppers and SHA-256 without.

    Digest-kind keys are tried under every pepper, current first, then as plain SHA-256 (a key issued before
    a pepper was configured); without peppers, as SHA-256 alone. New digest keys get the first of those:
    with peppers, the current pepper even under ``hasher="sha256"``, since a plain SHA-256 key would be
    moved there on its first verification anyway.

    Args:
        hasher: ``"sha256"``, ``"hmac-sha256"``, ``"argon2id"`` or ``None``.
        peppers: The configured peppers, the current one first (:func:`build_peppers`).
        argon2: The argon2-cffi ``PasswordHasher`` for argon2id keys (its defaults if omitted).

    Raises:
        ConfigurationError: ``hasher`` is unknown, or is HMAC-SHA256 without a pepper.
    """
    if hasher is not None and hasher not in HASHERS:
        raise ConfigurationError(f"hasher must be one of {', '.join(HASHERS)}, not {hasher!r}")
    if hasher == HmacSha256Hasher.name and not peppers:
        raise ConfigurationError("hasher 'hmac-sha256' needs at least one pepper")
    digests = (*(HmacSha256Hasher(pepper) for pepper in peppers), Sha256Hasher())
    argon2id = Argon2idHasher(argon2 or PasswordHasher())
    if hasher is None:
        hasher = digests[0].name
    current: KeyHasher = argon2id if hasher == Argon2idHasher.name else digests[0]
    return Hashers(hasher, current, digests, argon2id)
