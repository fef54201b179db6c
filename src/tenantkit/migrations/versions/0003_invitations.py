"""invitation columns beyond revision 0001 (the origin schema).

* ``invitations.invited_by`` becomes nullable: NULL records that the host application invited.
* ``invitations.invited_email`` keeps the invited address for good. Revision 0001's ``email`` column now
  holds the address only while the invitation is open: its unique index ``unique_team_email_idx`` on
  (organization_id, email) then means "one open invitation per address", and an accepted, revoked or
  replaced invitation (whose ``email`` is cleared) never blocks a new one. NULLs never collide in a unique
  index on PostgreSQL, MySQL/MariaDB or SQLite.
* ``status`` (pending, accepted, revoked, replaced, exhausted), ``max_uses``, ``use_count``,
  ``accepted_at``, ``accepted_by`` and ``revoked_at``.
* ``invitation_acceptances``: who accepted which invitation, one row per (invitation, user).

Rows that existed before hold tokens in plaintext, which tenantkit never stored; they cannot be verified,
so the upgrade marks them ``revoked`` and frees their address for a new invitation.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, UTCDateTime, utc_now

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    invitations = sa.table(
        "invitations",
        sa.column("email", Identifier()),
        sa.column("invited_email", Identifier()),
        sa.column("status", sa.String(16)),
    )
    with op.batch_alter_table("invitations") as batch:
        batch.alter_column("invited_by", existing_type=Identifier(), existing_nullable=False, nullable=True)
        batch.add_column(sa.Column("invited_email", Identifier(), nullable=True))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("max_uses", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("use_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("accepted_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("accepted_by", Identifier(), nullable=True))
        batch.add_column(sa.Column("revoked_at", UTCDateTime(), nullable=True))
    # Two statements: MySQL assigns SET clauses left to right, reading columns already changed.
    op.execute(invitations.update().values(invited_email=invitations.c.email))
    op.execute(invitations.update().values(email=None, status="revoked"))

    op.create_table(
        "invitation_acceptances",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("invitation_id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("user_id", Identifier(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
            name=op.f("invitation_acceptances_invitation_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("invitation_acceptances_pkey")),
    )
    op.create_index(
        "invitation_acceptances_invitation_user_idx",
        "invitation_acceptances",
        ["invitation_id", "user_id"],
        unique=True,
    )
    op.create_index(
        "invitation_acceptances_organization_user_idx",
        "invitation_acceptances",
        ["organization_id", "user_id"],
    )


def downgrade() -> None:
    # Dropping the table drops its indexes; MySQL refuses to drop the unique one alone while the foreign
    # key needs it.
    op.drop_table("invitation_acceptances")

    invitations = sa.table(
        "invitations",
        sa.column("id", Identifier()),
        sa.column("email", Identifier()),
        sa.column("invited_by", Identifier()),
        sa.column("invited_email", Identifier()),
        sa.column("status", sa.String(16)),
    )
    # The origin schema knows only open invitations: finished ones would occupy their address again (and
    # collide on unique_team_email_idx), so they go; the host's invitations get an inviter it can read.
    op.execute(invitations.delete().where(invitations.c.status != "pending"))
    op.execute(invitations.update().where(invitations.c.invited_by.is_(None)).values(invited_by="host"))
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("accepted_by")
        batch.drop_column("accepted_at")
        batch.drop_column("use_count")
        batch.drop_column("max_uses")
        batch.drop_column("status")
        batch.drop_column("invited_email")
        batch.alter_column("invited_by", existing_type=Identifier(), existing_nullable=True, nullable=False)
