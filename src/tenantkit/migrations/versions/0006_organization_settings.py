"""Organization settings: ``organization_settings``, one new table.

Nothing existing is altered, so the upgrade takes no lock on a table in use and is safe on a live
PostgreSQL database: one ``CREATE TABLE`` nobody reads yet. Downgrade drops the table, and with it every
organization's stored settings (the deployment's defaults apply again).

* ``organization_settings``: per organization, the settings document (JSON), its ``version`` (the optimistic
  concurrency counter every write compares), who wrote it last and when (see
  :data:`tenantkit.tables.organization_settings`).

Revision ID: 0006
Revises: 0004 (rechained after 0005 when the custom-roles revision lands)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, UTCDateTime, json_type, utc_now

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "organization_settings",
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("document", json_type, nullable=False),
        sa.Column("updated_by", Identifier(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("organization_settings_pkey")),
    )


def downgrade() -> None:
    op.drop_table("organization_settings")
