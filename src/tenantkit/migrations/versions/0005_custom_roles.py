"""Custom roles: the ``custom_roles`` table, and a nullable ``custom_role`` column on memberships and
invitations.

The rank stays in the ``role`` column exactly as revision 0001 made it (the ``role``
enum); a membership or invitation that holds a custom role names its key in ``custom_role`` beside it.
Adding a nullable column without a default is a catalogue change on PostgreSQL (no table rewrite, a brief
``ACCESS EXCLUSIVE`` lock only while the catalogue is updated) and an instant ``ADD COLUMN`` on MariaDB
10.3+; ``CREATE TABLE`` touches nothing in use. No index is added to ``team_members`` (building one would
block writes to a live table): holders of a role are counted within one organization, through the
existing ``team_members_organization_id_idx``.

Downgrade refuses, changing nothing, while any custom role exists or is held
(:class:`~tenantkit.errors.CustomRolesInUseError`): the older schema could only drop them, and with them
the permissions members rely on. Reassign the holders to a rank and delete the roles first.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._errors import CustomRolesInUseError
from tenantkit._tables import Identifier, LongText, UTCDateTime, json_type, utc_now

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "custom_roles",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("key", Identifier(), nullable=False),
        sa.Column("name", LongText(), nullable=False),
        sa.Column("description", LongText(), nullable=False, server_default=""),
        sa.Column("rank", sa.String(16), nullable=False),
        sa.Column("permissions", json_type, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.PrimaryKeyConstraint("id", name=op.f("custom_roles_pkey")),
    )
    op.create_index(
        "custom_roles_organization_key_idx", "custom_roles", ["organization_id", "key"], unique=True
    )
    op.add_column("team_members", sa.Column("custom_role", Identifier(), nullable=True))
    op.add_column("invitations", sa.Column("custom_role", Identifier(), nullable=True))


def _count(connection: sa.Connection, sql: str) -> int:
    return int(connection.execute(sa.text(sql)).scalar_one())


def downgrade() -> None:
    connection = op.get_bind()
    roles = _count(connection, "SELECT COUNT(*) FROM custom_roles")
    members = _count(connection, "SELECT COUNT(*) FROM team_members WHERE custom_role IS NOT NULL")
    invitations = _count(connection, "SELECT COUNT(*) FROM invitations WHERE custom_role IS NOT NULL")
    if roles or members or invitations:
        raise CustomRolesInUseError(roles, members, invitations)
    op.drop_column("invitations", "custom_role")
    op.drop_column("team_members", "custom_role")
    op.drop_table("custom_roles")
