"""Webhooks: ``webhook_endpoints``, ``webhook_messages`` and ``webhook_deliveries``, three new tables.

Nothing existing is altered, so the upgrade takes no lock on a table in use and is safe on a live
PostgreSQL database: ``CREATE TABLE`` and ``CREATE INDEX`` on tables nobody reads yet. Downgrade drops the
three tables with their indexes (and every endpoint, message and delivery with them).

* ``webhook_endpoints``: per organization, where events go, which types, and the encrypted signing secret.
* ``webhook_messages``: the outbox, one row per event an endpoint wanted, written in the change's transaction.
* ``webhook_deliveries``: one row per message and endpoint: status, attempts, lease and the last response,
  indexed for "due now" (the workers' claim), "of this endpoint" and "of this message".

Revision ID: 0009
Revises: 0004 (rechained after the revisions merged before it)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, LongText, UTCDateTime, json_type

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("url", LongText(), nullable=False),
        sa.Column("description", LongText(), nullable=False),
        sa.Column("event_types", json_type, nullable=False),
        sa.Column("enabled", sa.Boolean(create_constraint=False), nullable=False),
        sa.Column("disabled_reason", sa.String(16), nullable=True),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.Column("secret", LongText(), nullable=False),
        sa.Column("previous_secret", LongText(), nullable=True),
        sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", Identifier(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_endpoints_pkey")),
    )
    op.create_index(
        "webhook_endpoints_organization_idx", "webhook_endpoints", ["organization_id", "created_at", "id"]
    )
    op.create_table(
        "webhook_messages",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("body", LongText(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_messages_pkey")),
    )
    op.create_index(
        "webhook_messages_organization_idx", "webhook_messages", ["organization_id", "created_at", "id"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("message_id", Identifier(), nullable=False),
        sa.Column("endpoint_id", Identifier(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("lease_token", Identifier(), nullable=True),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_duration_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["webhook_messages.id"],
            name=op.f("webhook_deliveries_message_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("webhook_deliveries_endpoint_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_deliveries_pkey")),
    )
    op.create_index("webhook_deliveries_due_idx", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index(
        "webhook_deliveries_endpoint_idx", "webhook_deliveries", ["endpoint_id", "created_at", "id"]
    )
    op.create_index(
        "webhook_deliveries_message_idx", "webhook_deliveries", ["message_id", "created_at", "id"]
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; the deliveries first, for their foreign keys.
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_messages")
    op.drop_table("webhook_endpoints")
