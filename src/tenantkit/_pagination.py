"""Keyset pagination shared by every listing: stable order, opaque cursors, bounded pages."""

from __future__ import annotations

import base64
import binascii
import json
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from tenantkit._errors import InvalidInputError

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class Page(BaseModel, Generic[T]):
    """One page of a listing. Pass ``next_cursor`` back as ``cursor`` to get the next page; ``None`` ends."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None = None


def check_limit(limit: object) -> int:
    """Return ``limit`` if it is a page size between 1 and :data:`MAX_PAGE_SIZE`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError("limit", f"must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return limit


def encode_cursor(*values: str) -> str:
    """An opaque cursor holding the sort key of the last row of a page."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> tuple[str, ...]:
    """The sort key inside ``cursor``; a cursor that was not made by :func:`encode_cursor` is refused."""
    if not isinstance(cursor, str) or len(cursor) > 2048:
        raise InvalidInputError("cursor", "is not a cursor returned by a previous page")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity or not all(isinstance(v, str) for v in values):
        raise InvalidInputError("cursor", "is not a cursor returned by a previous page")
    return tuple(values)
