"""The polling bus's change log: ``cache_invalidations``, one new table.

Nothing existing is altered, so the upgrade takes no lock on a table in use and is safe on a live
PostgreSQL database: a ``CREATE TABLE`` and a ``CREATE INDEX`` on a table nobody reads yet. Downgrade drops
it: the log is a hint, never the truth, so nothing is lost but invalidations not yet read (a poller that
finds the table gone reports itself disconnected, and the caches' time to live bounds the lag).

* ``cache_invalidations``: one row per cache key a committed change made stale (see
  :data:`tenantkit.tables.cache_invalidations`), read by :class:`tenantkit.bus.PollingBus` in ``id`` order
  and pruned by ``created_at``. On SQLite the id is ``AUTOINCREMENT`` so that it is never reused.

Revision ID: 0008
Revises: 0004 (rechained after 0007 when the branches merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, UTCDateTime, change_id_type

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "cache_invalidations",
        sa.Column("id", change_id_type, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("subject_id", Identifier(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("cache_invalidations_pkey")),
        sqlite_autoincrement=True,
    )
    op.create_index("cache_invalidations_created_at_idx", "cache_invalidations", ["created_at"])


def downgrade() -> None:
    op.drop_index("cache_invalidations_created_at_idx", table_name="cache_invalidations")
    op.drop_table("cache_invalidations")
