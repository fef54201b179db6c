"""Verified domains and SSO connections: ``organization_domains`` and ``sso_connections``, two new tables.

Nothing existing is altered, so the upgrade takes no lock on a table in use and is safe on a live
PostgreSQL database: ``CREATE TABLE`` and ``CREATE INDEX`` on tables nobody reads yet. Downgrade drops both
(the domains' verification state and the connections' policy records go with them).

* ``organization_domains``: one row per domain an organization claims (IDNA-normalized, lower case), its
  status (``pending``, ``verified``, ``failed``), strategy (``dns_txt`` or ``manual``), the SHA-256 digest of
  its verification token (never the token), and when it was created, verified, last checked and failed.
  ``verified_domain`` repeats ``domain`` while the row is verified and is ``NULL`` otherwise; its unique
  index is what keeps a domain verified for at most one organization, on every dialect.
* ``sso_connections``: an organization's SSO connections as policy records: provider, protocol, the
  provider's connection id, name, enabled, enforce, JIT, the JIT members' default role and which side is
  authoritative for roles. No certificate and no identity-provider metadata.

Revision ID: 0011
Revises: 0008 (rechained after 0010 when the branches merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, LongText, UTCDateTime, utc_now

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "organization_domains",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("domain", Identifier(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=True),
        sa.Column("verified_domain", Identifier(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        sa.Column("last_checked_at", UTCDateTime(), nullable=True),
        sa.Column("failed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("organization_domains_pkey")),
    )
    op.create_index(
        "organization_domains_organization_domain_idx",
        "organization_domains",
        ["organization_id", "domain"],
        unique=True,
    )
    op.create_index(
        "organization_domains_verified_domain_idx", "organization_domains", ["verified_domain"], unique=True
    )
    op.create_index("organization_domains_domain_idx", "organization_domains", ["domain"])
    op.create_table(
        "sso_connections",
        sa.Column("id", Identifier(), nullable=False),
        sa.Column("organization_id", Identifier(), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("provider_connection_id", Identifier(), nullable=False),
        sa.Column("name", LongText(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("enforce", sa.Boolean(), nullable=False),
        sa.Column("jit", sa.Boolean(), nullable=False),
        sa.Column("default_role", sa.String(16), nullable=False),
        sa.Column("role_authority", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.PrimaryKeyConstraint("id", name=op.f("sso_connections_pkey")),
    )
    op.create_index("sso_connections_organization_id_idx", "sso_connections", ["organization_id"])
    op.create_index(
        "sso_connections_provider_connection_idx",
        "sso_connections",
        ["provider", "provider_connection_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("sso_connections_provider_connection_idx", table_name="sso_connections")
    op.drop_index("sso_connections_organization_id_idx", table_name="sso_connections")
    op.drop_table("sso_connections")
    op.drop_index("organization_domains_domain_idx", table_name="organization_domains")
    op.drop_index("organization_domains_verified_domain_idx", table_name="organization_domains")
    op.drop_index("organization_domains_organization_domain_idx", table_name="organization_domains")
    op.drop_table("organization_domains")
