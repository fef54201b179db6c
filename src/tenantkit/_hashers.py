"""How an API key is stored: a digest tagged with its algorithm, so the algorithm can change later.

* ``sha256$<hex>`` — SHA-256 of the key (the default).
* ``hmac-sha256$<version>$<hex>`` — HMAC-SHA256 of the key under the server pepper ``version``.
* ``argon2id$<lookup id>$argon2id$v=19$…`` — an argon2id hash (opt-in), prefixed by the key's non-secret
  lookup id: a salted hash cannot be looked up, so the row is found by the id and the hash verified after.

A key has 256 random bits, so a fast digest cannot be brute-forced: there is nothing to guess. A pepper
adds that a stolen database alone does not even let an attacker check a candidate key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tenantkit._errors import ConfigurationError

SHA256 = "sha256"
HMAC_SHA256 = "hmac-sha256"
ARGON2ID = "argon2id"
HASHERS = (SHA256, HMAC_SHA256, ARGON2ID)

_VERSION_PATTERN = re.compile(r"[A-Za-z0-9]{1,16}")
_MIN_PEPPER_BYTES = 16


def sha256_digest(key: str) -> str:
    """``sha256$<hex>`` of ``key``."""
    return "sha256$" + hashlib.sha256(key.encode()).hexdigest()


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


def choose_hasher(hasher: str | None, peppers: tuple[Pepper, ...]) -> str:
    """The hasher new keys use: ``hasher`` when given, else HMAC-SHA256 with peppers and SHA-256 without.

    Raises:
        ConfigurationError: ``hasher`` is unknown, or is HMAC-SHA256 without a pepper.
    """
    if hasher is None:
        return HMAC_SHA256 if peppers else SHA256
    if hasher not in HASHERS:
        raise ConfigurationError(f"hasher must be one of {', '.join(HASHERS)}, not {hasher!r}")
    if hasher == HMAC_SHA256 and not peppers:
        raise ConfigurationError("hasher 'hmac-sha256' needs at least one pepper")
    return hasher


def digest_candidates(key: str, peppers: tuple[Pepper, ...]) -> tuple[str, ...]:
    """Every stored form a digest-kind ``key`` may have, the preferred (current) one first.

    With peppers: the current pepper's digest, the older peppers' and the plain SHA-256 one (a key issued
    before a pepper was configured). Without: the SHA-256 one alone.
    """
    if not peppers:
        return (sha256_digest(key),)
    return (*(pepper.digest(key) for pepper in peppers), sha256_digest(key))


def argon2_stored(hasher: PasswordHasher, lookup_id: str, key: str) -> str:
    """``argon2id$<lookup id>`` followed by the encoded argon2id hash of ``key``."""
    return f"argon2id${lookup_id}{hasher.hash(key)}"


def argon2_lookup_bounds(lookup_id: str) -> tuple[str, str]:
    """The range of ``hashed_key`` values that start with ``argon2id$<lookup id>$`` (``%`` follows ``$``)."""
    return f"argon2id${lookup_id}$", f"argon2id${lookup_id}%"


def argon2_owns(stored: object, lookup_id: str) -> bool:
    """Whether ``stored`` is an argon2id hash filed under exactly ``lookup_id``: cheap, no hash computed."""
    head = f"argon2id${lookup_id}"
    # Exact, case-sensitive check: a case-insensitive collation may return a row whose id differs in case
    # (or in accents: compare_digest takes ASCII text only).
    return isinstance(stored, str) and stored.isascii() and hmac.compare_digest(stored[: len(head)], head)


def argon2_matches(hasher: PasswordHasher, stored: str, lookup_id: str, key: str) -> bool:
    """Whether ``stored`` belongs to ``lookup_id`` and its argon2id hash verifies ``key``."""
    if not argon2_owns(stored, lookup_id):
        return False
    try:
        return hasher.verify(stored[len(f"argon2id${lookup_id}") :], key)
    except (VerificationError, InvalidHashError):
        return False
