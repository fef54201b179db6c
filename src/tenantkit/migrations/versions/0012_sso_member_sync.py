"""Provider membership sync: ``sso_member_sync``, one new table.

Nothing existing is altered, so the upgrade takes no lock on a table in use and is safe on a live
PostgreSQL database: ``CREATE TABLE`` and ``CREATE INDEX`` on a table nobody reads yet (its foreign key to
``sso_connections`` takes a ``SHARE ROW EXCLUSIVE`` lock on that table for the instant of the ``CREATE``,
which blocks only writes to connections, a rare administrative change). Downgrade drops it: the sync then
forgets which provider events it applied, so a provider redelivering an old event after an upgrade again
would apply it once more (within the rank and last-owner rules).

* ``sso_member_sync``: per SSO connection and user, the id and time of the last identity-provider
  membership event applied or refused, so a redelivered event (its id) and an older event change nothing.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, UTCDateTime, utc_now

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sso_member_sync",
        sa.Column("connection_id", Identifier(), nullable=False),
        sa.Column("user_id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("last_event_id", Identifier(), nullable=False),
        sa.Column("last_event_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sso_connections.id"],
            name=op.f("sso_member_sync_connection_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "user_id", name=op.f("sso_member_sync_pkey")),
    )
    op.create_index(
        "sso_member_sync_organization_user_idx", "sso_member_sync", ["organization_id", "user_id"]
    )


def downgrade() -> None:
    op.drop_index("sso_member_sync_organization_user_idx", table_name="sso_member_sync")
    op.drop_table("sso_member_sync")
