"""Keyset pagination shared by every listing: stable order, opaque cursors, bounded pages.

Every listing declares its sort key once, as a :class:`Keyset`, and gets from it the ``ORDER BY``, the
``WHERE`` that resumes after a cursor, and the page with its ``next_cursor``. The cursor codec is the one in
this module, for every listing.

A cursor is untrusted input. It is the unpadded base64url of the JSON array ``[listing, *sort_key]``, and it
is accepted only if it is exactly what :meth:`Keyset.encode` writes for some valid sort key of that
listing: the decoder re-encodes what it read and compares. Ids must be text a row can hold (no NUL, no lone
surrogate) and timestamps aware UTC in the encoder's own spelling, so nothing a database driver would choke
on reaches a query. Anything else is :class:`~tenantkit._errors.InvalidInputError` (``cursor``).

Cursors are not signed. Signing would need a secret shared by every process and the CLI, and would break
every cursor in flight at each key rotation; in exchange it would only tell "this page was served" apart from
"some row could have this sort key". That difference protects nothing: a cursor only moves the start of a
listing the caller is already authorised to read, within one organization, and a hand-made cursor that
passes the check gives the same rows as the listing would from that position.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from tenantkit._errors import InvalidInputError

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_CURSOR_LENGTH", "MAX_PAGE_SIZE", "Keyset", "Page", "Seek", "check_limit"]

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_CURSOR_LENGTH = 2048
"""The longest cursor accepted; the adapters refuse longer query values before any decoding."""

_NOT_A_CURSOR = "is not a cursor returned by a previous page"


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


def _encode_timestamp(value: Any) -> str:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise TypeError(f"a timestamp sort key must be an aware datetime, got {value!r}")
    return value.astimezone(timezone.utc).isoformat()


def _decode_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    # The exact-spelling check in ``Keyset.decode`` refuses every other offset; naive values fail here.
    if value.utcoffset() is None:
        raise ValueError("naive timestamp")
    return value


def _encode_identifier(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"an id sort key must be a string, got {value!r}")
    return value


def _decode_identifier(text: str) -> str:
    # Any id a row can hold is a valid sort key (adopted tables may hold ids tenantkit would not accept as
    # input), so only what no database stores is refused: a NUL (PostgreSQL text cannot hold one) and a
    # lone surrogate (not UTF-8 at all, so every driver fails to send it).
    if "\x00" in text:
        raise ValueError("NUL in an id")
    text.encode("utf-8")
    return text


# How each kind of sort-key column goes into a cursor and comes out of one, by the column's Python type.
_Codec = tuple[Callable[[Any], str], Callable[[str], Any]]
_CODECS: dict[type, _Codec] = {
    datetime: (_encode_timestamp, _decode_timestamp),
    str: (_encode_identifier, _decode_identifier),
}


def _codec_for(column: sa.ColumnElement[Any]) -> _Codec:
    codec = _CODECS.get(column.type.python_type)
    if codec is None:
        raise TypeError(f"no cursor codec for {column} of type {column.type}")
    return codec


@dataclass(frozen=True, init=False, eq=False)
class Keyset:
    """The sort key of one listing: its columns (unique together), their direction, and its cursors.

    Args:
        listing: A short name written into each cursor, so that one listing's cursor is refused by another.
        columns: The sort columns, most significant first; the last must make the order total (an id).
        descending: Newest first (every column descending) instead of ascending.
    """

    listing: str
    columns: tuple[sa.ColumnElement[Any], ...]
    descending: bool
    _codecs: tuple[_Codec, ...] = field(repr=False)

    def __init__(self, listing: str, *columns: sa.ColumnElement[Any], descending: bool = False) -> None:
        object.__setattr__(self, "listing", listing)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "descending", descending)
        object.__setattr__(self, "_codecs", tuple(_codec_for(column) for column in columns))

    def order_by(self) -> list[sa.ColumnElement[Any]]:
        """The ``ORDER BY`` clauses of the listing."""
        return [column.desc() if self.descending else column.asc() for column in self.columns]

    def cursor_after(self, row: Any) -> str:
        """The cursor that resumes the listing after ``row`` (a result row holding every sort column)."""
        return self.encode([row._mapping[column] for column in self.columns])

    def encode(self, values: Sequence[Any]) -> str:
        """The cursor holding the sort key ``values`` (one per column)."""
        texts = [encode(value) for (encode, _), value in zip(self._codecs, values, strict=True)]
        raw = json.dumps([self.listing, *texts], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")

    def decode(self, cursor: object) -> tuple[Any, ...]:
        """The sort key inside ``cursor``.

        Raises:
            InvalidInputError: ``cursor`` is not exactly what :meth:`encode` writes for a valid sort key
                of this listing.
        """
        if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
            raise InvalidInputError("cursor", _NOT_A_CURSOR)
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            decoded = json.loads(raw.decode("utf-8"))
            if not isinstance(decoded, list) or len(decoded) != len(self.columns) + 1:
                raise ValueError("wrong shape")
            listing, *texts = decoded
            if listing != self.listing or not all(isinstance(text, str) for text in texts):
                raise ValueError("wrong listing or value types")
            values = tuple(decode(text) for (_, decode), text in zip(self._codecs, texts, strict=True))
            # Only the encoder's own spelling passes: another base64 alphabet or padding, other JSON
            # whitespace or escapes, another UTC offset or ISO form of the same instant are all refused.
            respelled = self.encode(values)
        except (binascii.Error, UnicodeError, ValueError, TypeError, OverflowError, RecursionError):
            raise InvalidInputError("cursor", _NOT_A_CURSOR) from None
        if respelled != cursor:
            raise InvalidInputError("cursor", _NOT_A_CURSOR)
        return values

    def after(self, cursor: str | None) -> sa.ColumnElement[bool] | None:
        """The ``WHERE`` clause selecting the rows after ``cursor`` (``None`` for the first page).

        Pure: call it before any database work, so that a bad cursor costs nothing.

        Raises:
            InvalidInputError: ``cursor`` is not one that :meth:`encode` writes for this listing.
        """
        if cursor is None:
            return None
        values = self.decode(cursor)
        # (a, b) > (x, y) spelled as a > x OR (a = x AND b > y): row values compare the same on every
        # dialect this way. The OR alone gives no database an index range to start from: PostgreSQL and
        # MySQL scan the sort index from its beginning and filter, so each page costs as much as every page
        # before it. The redundant a >= x in front bounds the scan, and page n costs what page 1 does.
        branches = []
        for position, column in enumerate(self.columns):
            beyond = column < values[position] if self.descending else column > values[position]
            equal = [earlier == values[index] for index, earlier in enumerate(self.columns[:position])]
            branches.append(sa.and_(*equal, beyond))
        if len(self.columns) == 1:
            return branches[0]
        leading = self.columns[0]
        bound = leading <= values[0] if self.descending else leading >= values[0]
        return sa.and_(bound, sa.or_(*branches))

    def seek(self, *, limit: object, cursor: str | None) -> Seek:
        """The checked request for one page: ``limit`` rows after ``cursor`` (``None``: the first page).

        Pure: call it before any database work, so that a bad limit or cursor costs nothing.

        Raises:
            InvalidInputError: ``limit`` is not a page size, or ``cursor`` not one of this listing's.
        """
        size = check_limit(limit)
        return Seek(keyset=self, limit=size, after=self.after(cursor))

    def page(self, rows: Sequence[Any], limit: int, item: Callable[[Any], T]) -> Page[T]:
        """The page made of the first ``limit`` of ``rows`` (fetched with ``LIMIT limit + 1``).

        A next page exists exactly when the query found more than ``limit`` rows.
        """
        items = [item(row) for row in rows[:limit]]
        next_cursor = self.cursor_after(rows[limit - 1]) if len(rows) > limit else None
        return Page[T](items=items, next_cursor=next_cursor)


@dataclass(frozen=True)
class Seek:
    """One page a listing was asked for, checked: its keyset, its size and where it resumes."""

    keyset: Keyset
    limit: int
    after: sa.ColumnElement[bool] | None
    """The ``WHERE`` clause selecting the rows after the cursor; ``None`` on the first page."""
