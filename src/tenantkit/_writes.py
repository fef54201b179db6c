"""Security-relevant writes confirm that the database kept them.

A revocation that a trigger quietly undoes is worse than one that fails: the caller is told the key is dead
while it still verifies. So every write that takes access away or moves it (revoking, rotating and deleting
a key; removing a member, changing a role, transferring ownership; revoking, re-issuing and consuming an
invitation) reads its row back in the same transaction and raises :class:`WriteNotAppliedError` when the
row does not hold what was written.

The read-back is a ``SELECT`` after the write, on every dialect. ``rowcount`` cannot tell: a ``BEFORE``
trigger that rewrites the new row still counts it, and MySQL/MariaDB count matched rows, not changed ones.
``RETURNING`` cannot tell either: on PostgreSQL and SQLite it reports the row as this statement wrote it,
before ``AFTER`` triggers run (an ``AFTER UPDATE`` trigger that resets ``revoked_at`` goes unseen), and on
PostgreSQL a rule on the table makes ``UPDATE … RETURNING`` fail outright. Only the columns that carry the
security decision are compared, so a host's harmless ``updated_at`` trigger does not trip the check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, overload

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._errors import WriteNotAppliedError


class _AnyValue:
    """Expects a column to hold some value, whichever: ``NULL`` is the only mismatch."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_NULL"


NOT_NULL: Final = _AnyValue()
"""An expected value meaning "any value but ``NULL``" (a revocation that was already in place counts)."""


@overload
def confirm_written(
    session: Session | Connection,
    table: sa.Table,
    identity: Mapping[str, str],
    expected: Mapping[str, object],
    *,
    missing: Exception | None = None,
    execution_options: Mapping[str, Any] | None = None,
) -> sa.Row[Any]: ...


@overload
def confirm_written(
    session: Session | Connection,
    table: sa.Table,
    identity: Mapping[str, str],
    expected: None,
    *,
    missing: Exception | None = None,
    execution_options: Mapping[str, Any] | None = None,
) -> None: ...


def confirm_written(
    session: Session | Connection,
    table: sa.Table,
    identity: Mapping[str, str],
    expected: Mapping[str, object] | None,
    *,
    missing: Exception | None = None,
    execution_options: Mapping[str, Any] | None = None,
) -> sa.Row[Any] | None:
    """Read the row back and raise unless it holds ``expected``; return the row as read.

    Args:
        session: The session (or connection) whose transaction made the write.
        table: The table written to.
        identity: Column name to value, naming exactly one row; always includes ``organization_id``.
        expected: Column name to the value written (or :data:`NOT_NULL`); ``None`` when the write removed
            the row, which must then be gone.
        missing: Raised instead when the row to update does not exist (the caller's "not found" error,
            for a write whose ``WHERE`` matched nothing because there was nothing to match).
        execution_options: The writing service's (its PostgreSQL schema), so that the row is read where it
            was written.

    Returns:
        The row as the database now holds it (``None`` after a removal).

    Raises:
        WriteNotAppliedError: The row differs from what was written, is missing, or survived its removal.
    """
    query = sa.select(table).where(*(table.c[name] == value for name, value in identity.items()))
    row = session.execute(query, execution_options=execution_options or {}).first()
    if expected is None:
        if row is not None:
            raise WriteNotAppliedError(
                table.name, dict(identity), (), "the row is still there after its removal"
            )
        return None
    if row is None:
        if missing is not None:
            raise missing
        raise WriteNotAppliedError(table.name, dict(identity), (), "the row is gone")
    found = row._mapping
    differing = [
        name
        for name, value in expected.items()
        if (found[name] is None if value is NOT_NULL else found[name] != value)
    ]
    if differing:
        raise WriteNotAppliedError(
            table.name, dict(identity), differing, f"{', '.join(differing)} not as written"
        )
    return row
