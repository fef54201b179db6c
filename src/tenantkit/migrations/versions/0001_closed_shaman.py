"""The origin schema: the role type, team_members, api_keys and invitations.

Reproduces the Drizzle migration 0001_closed_shaman of the earlier implementation of these features object
for object, with every index under the name its rollback procedure drops. Its downgrade is that rollback
procedure.

Revision ID: 0001
Revises:
Create Date: 2025-06-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenantkit._tables import Identifier, LongText, UTCDateTime, json_type, utc_now

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ROLES = ("OWNER", "ADMIN", "MEMBER")


def _role_column_type() -> sa.types.TypeEngine[str]:
    # Frozen here rather than imported: this revision must keep meaning what it meant in 0001.
    return sa.Enum(*ROLES, name="role", native_enum=False, create_constraint=True, length=16).with_variant(
        postgresql.ENUM(*ROLES, name="role", create_type=False), "postgresql"
    )


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Created explicitly (and dropped explicitly in downgrade) so that upgrade after downgrade works.
        postgresql.ENUM(*ROLES, name="role").create(bind, checkfirst=False)

    op.create_table(
        "team_members",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("user_id", Identifier(), nullable=False),
        sa.Column("role", _role_column_type(), nullable=False, server_default="MEMBER"),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("team_members_pkey")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("name", LongText(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("hashed_key", Identifier(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("api_keys_pkey")),
    )
    op.create_table(
        "invitations",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("email", Identifier(), nullable=True),
        sa.Column("role", _role_column_type(), nullable=False, server_default="MEMBER"),
        sa.Column("token", Identifier(), nullable=False),
        sa.Column("expires", UTCDateTime(), nullable=False),
        sa.Column("invited_by", Identifier(), nullable=False),
        sa.Column("sent_via_email", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("allowed_domains", json_type, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("invitations_pkey")),
    )

    op.create_index("unique_team_user_idx", "team_members", ["organization_id", "user_id"], unique=True)
    op.create_index("team_members_user_id_idx", "team_members", ["user_id"])
    op.create_index("team_members_organization_id_idx", "team_members", ["organization_id"])
    op.create_index("api_keys_hashed_key_idx", "api_keys", ["hashed_key"], unique=True)
    op.create_index("api_keys_organization_id_idx", "api_keys", ["organization_id"])
    op.create_index("invitations_token_idx", "invitations", ["token"], unique=True)
    op.create_index("unique_team_email_idx", "invitations", ["organization_id", "email"], unique=True)
    op.create_index("invitations_email_idx", "invitations", ["email"])
    op.create_index("invitations_organization_id_idx", "invitations", ["organization_id"])


def downgrade() -> None:
    # The origin document's rollback procedure, in its order: indexes, tables, then the enum type.
    op.drop_index("team_members_organization_id_idx", table_name="team_members")
    op.drop_index("team_members_user_id_idx", table_name="team_members")
    op.drop_index("unique_team_user_idx", table_name="team_members")
    op.drop_index("invitations_organization_id_idx", table_name="invitations")
    op.drop_index("invitations_email_idx", table_name="invitations")
    op.drop_index("unique_team_email_idx", table_name="invitations")
    op.drop_index("invitations_token_idx", table_name="invitations")
    op.drop_index("api_keys_organization_id_idx", table_name="api_keys")
    op.drop_index("api_keys_hashed_key_idx", table_name="api_keys")

    op.drop_table("team_members")
    op.drop_table("invitations")
    op.drop_table("api_keys")

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        postgresql.ENUM(*ROLES, name="role").drop(bind, checkfirst=True)
