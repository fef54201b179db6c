"""The audit log: ``audit_events`` and ``audit_chain_heads``, two new tables.

Nothing existing is altered, so the upgrade takes no lock on a table in use and is safe on a live
PostgreSQL database: ``CREATE TABLE`` and ``CREATE INDEX`` on tables nobody reads yet. Downgrade drops both
tables with their indexes (and the audit trail with them).

* ``audit_events``: one append-only row per recorded event (see :data:`tenantkit.tables.audit_events`),
  indexed for "this organization, newest first", "this actor", the retention purge, and the hash chain
  (unique per organization and position).
* ``audit_chain_heads``: per organization, the newest chained row and the anchor where a purge cut.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, LongText, UTCDateTime, json_type

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("event_version", sa.Integer(), nullable=False),
        sa.Column("actor_kind", sa.String(32), nullable=False),
        sa.Column("actor_id", Identifier(), nullable=True),
        sa.Column("targets", json_type, nullable=False),
        sa.Column("data", json_type, nullable=False),
        sa.Column("ip_address", sa.String(45), nullable=True),
        sa.Column("user_agent", LongText(), nullable=True),
        sa.Column("request_id", Identifier(), nullable=True),
        sa.Column("redacted_at", UTCDateTime(), nullable=True),
        sa.Column("chain_seq", sa.BigInteger(), nullable=True),
        sa.Column("chain_prev", sa.String(64), nullable=True),
        sa.Column("chain_hash", sa.String(64), nullable=True),
        sa.Column("chain_seals", json_type, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("audit_events_pkey")),
    )
    op.create_index(
        "audit_events_organization_time_idx", "audit_events", ["organization_id", "occurred_at", "id"]
    )
    op.create_index(
        "audit_events_actor_idx", "audit_events", ["organization_id", "actor_kind", "actor_id", "occurred_at"]
    )
    op.create_index("audit_events_time_idx", "audit_events", ["occurred_at", "id"])
    op.create_index("audit_events_chain_idx", "audit_events", ["organization_id", "chain_seq"], unique=True)

    op.create_table(
        "audit_chain_heads",
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
        sa.Column("anchored_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("audit_chain_heads_pkey")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes.
    op.drop_table("audit_chain_heads")
    op.drop_table("audit_events")
