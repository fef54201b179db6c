"""The one way a listing fetches a page: resume after the cursor, in the keyset's order, one row extra."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._pagination import Page, Seek

__all__ = ["fetch_page"]

T = TypeVar("T")


def fetch_page(
    session: Session | Connection,
    query: sa.Select[Any],
    seek: Seek,
    item: Callable[[Any], T],
    *,
    execution_options: Mapping[str, Any],
) -> Page[T]:
    """The page of ``query``'s rows that ``seek`` asks for, each turned into an item by ``item``.

    Args:
        session: The caller's session or connection.
        query: The listing's select, filtered (by organization first) but neither ordered nor limited.
        seek: The keyset, page size and resume point, checked beforehand (:meth:`Keyset.seek`).
        item: Turns a row into what the page lists.
        execution_options: The service's execution options (its schema).
    """
    keyset = seek.keyset
    if seek.after is not None:
        query = query.where(seek.after)
    # One row more than the page holds says whether a next page exists.
    rows = session.execute(
        query.order_by(*keyset.order_by()).limit(seek.limit + 1), execution_options=execution_options
    ).all()
    return keyset.page(rows, seek.limit, item)
