"""The text of an API key: a deployment prefix, a random secret in base62 and a CRC32 checksum.

::

    tk_live_ 4qYk…(43 characters: 256 random bits)… 1Xb9Zq
    prefix   secret                                  checksum (CRC32 of the secret, 6 base62 characters)

A key made for the argon2id hasher carries, between prefix and secret, a 16-character lookup id (about 95
random bits, not secret): argon2 hashes are salted, so the database row is found by that id, never by a
digest of the secret. The two shapes differ in length, so a key says which kind it is.

The checksum lets a typo, a truncated paste or random text be refused before any database work, and lets
secret scanners recognise a leaked key with few false positives. It is not a security measure: anyone can
compute it.
"""

from __future__ import annotations

import re
import secrets
import zlib
from dataclasses import dataclass
from enum import IntEnum

from tenantkit._errors import InvalidInputError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE = len(ALPHABET)

SECRET_BYTES = 32
"""Random bytes in every key's secret: 256 bits."""

SECRET_LENGTH = 43
"""Base62 characters that hold :data:`SECRET_BYTES` (62**43 > 2**256)."""

CHECKSUM_LENGTH = 6
"""Base62 characters that hold a CRC32 (62**6 > 2**32)."""

LOOKUP_ID_LENGTH = 16
"""Base62 characters of the lookup id that argon2id keys carry."""

START_LENGTH = 4
"""Characters of the secret shown, after the prefix, in a key's display ``start``."""

DEFAULT_PREFIX = "tk_live_"


class KeyKind(IntEnum):
    """What :meth:`KeyFormat.check` found a presented key to be; each kind has its own hashers."""

    MALFORMED = 0
    """Not a key of this deployment (prefix, length, alphabet or checksum): refused without database work."""
    DIGEST = 1
    """A key stored as a digest of itself (SHA-256 or HMAC-SHA256), so found by that digest."""
    ARGON2 = 2
    """A key carrying an argon2id lookup id: found by the id, then verified against its salted hash."""


# Bound once: check() runs on every verification, and a module constant is cheaper than an enum attribute.
_MALFORMED, _DIGEST, _ARGON2 = KeyKind.MALFORMED, KeyKind.DIGEST, KeyKind.ARGON2

# The lookup id sits right before the secret and checksum, whatever the prefix's length.
_LOOKUP_ID_END = SECRET_LENGTH + CHECKSUM_LENGTH
_LOOKUP_ID_START = _LOOKUP_ID_END + LOOKUP_ID_LENGTH

_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{0,15}_(?:[a-z0-9]{1,16}_)?")


def base62(number: int, width: int) -> str:
    """``number`` in base62, left-padded with ``0`` to exactly ``width`` characters."""
    digits = ["0"] * width
    for position in range(width - 1, -1, -1):
        number, digit = divmod(number, _BASE)
        digits[position] = ALPHABET[digit]
    if number:
        raise ValueError("number does not fit in the width")
    return "".join(digits)


# Every two-digit base62 string, so a CRC32 (< 62**6) is encoded with two divisions and three lookups: the
# checksum runs on every verification, before anything else.
_PAIRS = tuple(high + low for high in ALPHABET for low in ALPHABET)
_PAIR_BASE = _BASE * _BASE
_PAIR_BASE_SQUARED = _PAIR_BASE * _PAIR_BASE


def checksum(body: str) -> str:
    """The 6-character base62 CRC32 of ``body`` (ASCII)."""
    return _checksum_of(body.encode("ascii"))


def _checksum_of(body: bytes) -> str:
    high, rest = divmod(zlib.crc32(body), _PAIR_BASE_SQUARED)
    middle, low = divmod(rest, _PAIR_BASE)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def check_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is a usable key prefix such as ``tk_live_`` or ``acme_test_``.

    Lowercase letters and digits in one or two ``_``-terminated parts keep the prefix apart from the base62
    body (which has no ``_``) and make keys greppable by secret scanners.
    """
    if not isinstance(prefix, str) or not _PREFIX_PATTERN.fullmatch(prefix):
        raise InvalidInputError(
            "prefix",
            "must be lowercase letters and digits ending in '_', in one or two parts (like 'tk_live_')",
        )
    return prefix


def lookup_id_of(key: str) -> str:
    """The lookup id of a key of the :attr:`KeyKind.ARGON2` kind (any prefix)."""
    return key[-_LOOKUP_ID_START:-_LOOKUP_ID_END]


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """A key that passed the format and checksum checks.

    Attributes:
        lookup_id: The argon2id lookup id, or ``None`` for a digest-stored key.
        start: The non-secret display start: the prefix and the first characters after it.
    """

    lookup_id: str | None
    start: str


class KeyFormat:
    """Makes and checks keys of one deployment prefix.

    Args:
        prefix: The deployment prefix, e.g. ``tk_live_`` or ``tk_test_``.
    """

    __slots__ = ("_argon2_length", "_digest_length", "_prefix_length", "prefix")

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix: str = check_prefix(prefix)
        self._prefix_length = len(prefix)
        self._digest_length = self._prefix_length + SECRET_LENGTH + CHECKSUM_LENGTH
        self._argon2_length = self._digest_length + LOOKUP_ID_LENGTH

    def generate(self, *, with_lookup_id: bool = False) -> str:
        """A new key: 256 bits from :mod:`secrets`, plus a lookup id when ``with_lookup_id``."""
        secret = base62(int.from_bytes(secrets.token_bytes(SECRET_BYTES), "big"), SECRET_LENGTH)
        if with_lookup_id:
            lookup_id = base62(secrets.randbits(95), LOOKUP_ID_LENGTH)
            body = lookup_id + secret
        else:
            body = secret
        return self.prefix + body + checksum(body)

    def start(self, key: str) -> str:
        """The non-secret beginning of ``key`` shown in listings, logs and events (``tk_live_AbC1``)."""
        return key[: self._prefix_length + START_LENGTH]

    def check(self, key: object) -> KeyKind:
        """Check ``key``'s shape and checksum without any database work.

        Any text, bytes or other object is accepted and answered, never raised on.

        Returns:
            :attr:`KeyKind.MALFORMED`, :attr:`KeyKind.DIGEST` for a digest-stored key, or
            :attr:`KeyKind.ARGON2` for a key that carries an argon2id lookup id.
        """
        if not isinstance(key, str):
            return _MALFORMED
        length = len(key)
        if length == self._digest_length:
            kind = _DIGEST
        elif length == self._argon2_length:
            kind = _ARGON2
        else:
            return _MALFORMED
        if not key.startswith(self.prefix):
            return _MALFORMED
        # Encoded once: a non-ASCII key fails here, and bytes.isalnum() is ASCII-only (str.isalnum() would
        # accept non-ASCII letters and digits). It runs on every verification, cache hits included.
        try:
            raw = key.encode("ascii")
        except UnicodeEncodeError:
            return _MALFORMED
        body = raw[self._prefix_length : -CHECKSUM_LENGTH]
        if not body.isalnum() or not key.endswith(_checksum_of(body)):
            return _MALFORMED
        return kind

    def parse(self, key: object) -> ParsedKey | None:
        """Check ``key``'s shape and checksum without any database work; ``None`` when it is malformed.

        Any text, bytes or other object is accepted and answered, never raised on.
        """
        kind = self.check(key)
        if kind is KeyKind.MALFORMED:
            return None
        assert isinstance(key, str)  # noqa: S101  narrowing: check() gives a kind other than MALFORMED to strings only
        lookup_id = lookup_id_of(key) if kind is KeyKind.ARGON2 else None
        return ParsedKey(lookup_id, key[: self._prefix_length + START_LENGTH])
