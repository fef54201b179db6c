"""A unit of work for standalone use: a session that commits on success and rolls back on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session


@contextmanager
def transaction(bind: sa.Engine | sa.Connection, **session_options: Any) -> Iterator[Session]:
    """Open a :class:`~sqlalchemy.orm.Session` on ``bind`` for one unit of work.

    Every tenantkit service works inside a session it is given and never commits (the host owns its
    transaction). Scripts, workers and tests that have no transaction of their own use this instead::

        with tenantkit.transaction(engine) as session:
            members.add(session, "org_1", "user_1", Role.OWNER, actor=tenantkit.HOST)

    The transaction commits when the block ends normally (and events are delivered then), and rolls back
    when it raises (and the events of the block are discarded).

    Args:
        bind: An engine, or a connection (whose transaction then holds this one's work).
        session_options: Passed to :class:`~sqlalchemy.orm.Session` (``expire_on_commit=False`` is the
            default here, so returned rows stay readable after commit).

    Yields:
        The session, inside a transaction.
    """
    session_options.setdefault("expire_on_commit", False)
    with Session(bind, **session_options) as session, session.begin():
        yield session
