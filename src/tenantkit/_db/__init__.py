"""The database layer every feature shares: the driver fast path, dialect differences, keyset fetching.

- ``_fast``: :class:`RawQuery` (a select compiled per dialect and schema, run on the driver's cursor) and
  :func:`is_observed`, the one reader of SQLAlchemy's private ``_has_events`` flags.
- ``_dialect``: the classification of lock conflicts into ``ConcurrentUpdateError``, SQLite's write lock,
  ``rowcount``.
- ``_keyset``: :func:`fetch_page`, one page of a listing in its keyset order.
"""

from tenantkit._db._dialect import (
    begin_write,
    concurrency_reason,
    mysql_error_number,
    rowcount,
    sqlite_busy,
    sqlstate,
    typed_concurrency_errors,
)
from tenantkit._db._fast import CURSOR_KEY, Plan, Processor, RawQuery, is_observed, schema_of
from tenantkit._db._keyset import fetch_page

__all__ = [
    "CURSOR_KEY",
    "Plan",
    "Processor",
    "RawQuery",
    "begin_write",
    "concurrency_reason",
    "fetch_page",
    "is_observed",
    "mysql_error_number",
    "rowcount",
    "schema_of",
    "sqlite_busy",
    "sqlstate",
    "typed_concurrency_errors",
]
