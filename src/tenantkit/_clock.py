"""Time: every datetime tenantkit handles is timezone-aware UTC, read from an injectable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from tenantkit._errors import InvalidInputError

Clock = Callable[[], datetime]
"""A zero-argument callable returning the current time as an aware UTC datetime."""


def system_clock() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime, field: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; naive datetimes are refused rather than guessed."""
    if not isinstance(value, datetime):
        raise InvalidInputError(field, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(field, "must be timezone-aware (naive datetimes are ambiguous)")
    return value.astimezone(timezone.utc)
