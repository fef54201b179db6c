"""Checks shared by every service: bad input becomes :class:`InvalidInputError` before any database work."""

from __future__ import annotations

import re
from datetime import timedelta

from tenantkit._errors import InvalidInputError, InvalidSettingError

MAX_IDENTIFIER_LENGTH = 255
"""Organization and user ids are opaque strings from the identity provider, at most this long.

The limit keeps every indexed column within MySQL/MariaDB's index key size.
"""


def check_identifier(value: object, field: str) -> str:
    """Return ``value`` if it is a usable opaque id: a non-empty string of printable characters.

    Ids are stored exactly as given; surrounding whitespace or control characters are refused rather than
    stripped, because ``"org_1"`` and ``"org_1 "`` silently becoming one tenant is worse than an error.
    """
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidInputError(field, "must not be empty")
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise InvalidInputError(field, f"must be at most {MAX_IDENTIFIER_LENGTH} characters")
    if value != value.strip() or not value.isprintable():
        raise InvalidInputError(field, "must not contain surrounding whitespace or control characters")
    return value


def check_name(value: object, field: str, *, max_length: int = 200) -> str:
    """Return a human-facing name (of a key, say): non-empty after stripping, bounded, printable."""
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    stripped = value.strip()
    if not stripped:
        raise InvalidInputError(field, "must not be empty")
    if len(stripped) > max_length:
        raise InvalidInputError(field, f"must be at most {max_length} characters")
    if not stripped.isprintable():
        raise InvalidInputError(field, "must not contain control characters")
    return stripped


_DURATION = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta | None:
    """Read a duration as the CLI and the environment spell it (``90s``, ``15m``, ``12h``, ``30d``).

    Returns ``None`` for text in any other form, so each caller words its own refusal.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


# PostgreSQL's unquoted identifiers: letters, digits and underscores, at most 63 bytes.
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SCHEMA_RULE = "must be 1 to 63 letters, digits or underscores, not starting with a digit"


def check_schema_name(schema: str | None) -> str | None:
    """``schema`` when it is a plain PostgreSQL identifier (or ``None``); it is quoted into SQL later.

    Raises:
        InvalidSettingError: It is not (the error names the ``schema`` argument).
    """
    if schema is not None and (not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema)):
        raise InvalidSettingError("schema", _SCHEMA_RULE)
    return schema


_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")
DEFAULT_CHANNEL = "tenantkit_invalidation"
"""The invalidation bus's channel (a PostgreSQL ``NOTIFY`` channel or a Redis pub/sub channel)."""


def check_channel(channel: object) -> str:
    """``channel`` if it is a lower-case identifier (for ``NOTIFY`` and Redis alike), else ValueError."""
    if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
        raise ValueError(
            "must be a lower-case identifier of at most 63 characters, such as tenantkit_invalidation"
        )
    return channel
