"""Invitation requirements, verified member attributes, suspension, and departments.

* ``invitations.requirements``: a JSON object an accept policy checks (``NULL``: none).
* ``team_members.attributes`` (what the accept policy verified, with when and by what),
  ``credential_expires_at`` (when that verification lapses), ``suspended_at``, ``suspended_by`` and
  ``suspension_reason``.
* ``departments`` and ``department_members``: named groups of members inside one organization.

Every new column is nullable without a default, so on PostgreSQL ``ADD COLUMN`` only touches the catalog
(no table rewrite, the ``ACCESS EXCLUSIVE`` lock is held for an instant); MariaDB adds such columns
instantly too. No index is built on an existing table: "lapsing before" is read per organization, whose
index already bounds the scan. The new tables are empty, so their indexes cost nothing. Downgrade drops the
two tables and the six columns (and the data they hold).

Revision ID: 0007
Revises: 0004 (rechained onto the newest revision when branches merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, LongText, UTCDateTime, json_type, utc_now

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_MEMBER_COLUMNS = ("attributes", "credential_expires_at", "suspended_at", "suspended_by", "suspension_reason")


def upgrade() -> None:
    op.add_column("invitations", sa.Column("requirements", json_type, nullable=True))
    op.add_column("team_members", sa.Column("attributes", json_type, nullable=True))
    op.add_column("team_members", sa.Column("credential_expires_at", UTCDateTime(), nullable=True))
    op.add_column("team_members", sa.Column("suspended_at", UTCDateTime(), nullable=True))
    op.add_column("team_members", sa.Column("suspended_by", Identifier(), nullable=True))
    op.add_column("team_members", sa.Column("suspension_reason", LongText(), nullable=True))

    op.create_table(
        "departments",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("name", Identifier(), nullable=False),
        sa.Column("description", LongText(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.PrimaryKeyConstraint("id", name=op.f("departments_pkey")),
    )
    op.create_index(
        "departments_organization_name_idx", "departments", ["organization_id", "name"], unique=True
    )
    op.create_table(
        "department_members",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("department_id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("user_id", Identifier(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("department_members_department_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("department_members_pkey")),
    )
    op.create_index(
        "department_members_department_user_idx",
        "department_members",
        ["department_id", "user_id"],
        unique=True,
    )
    op.create_index(
        "department_members_organization_user_idx", "department_members", ["organization_id", "user_id"]
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; the members' table goes first, its foreign key needs the other.
    op.drop_table("department_members")
    op.drop_table("departments")
    # None of these columns is indexed or constrained, so SQLite (3.35+) drops them in place too.
    for name in reversed(_MEMBER_COLUMNS):
        op.drop_column("team_members", name)
    op.drop_column("invitations", "requirements")
