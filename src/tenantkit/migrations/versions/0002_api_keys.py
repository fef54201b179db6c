"""API key columns beyond revision 0001 (the origin schema).

``start`` (the key's non-secret display beginning), ``scopes`` (a JSON list), ``revoked_at``, ``created_by``
(the issuing user; ``NULL`` for the host), ``rotated_from`` (the key a rotation replaced) and ``replaced_at``
(when a key was rotated out). Every column is nullable, so rows written before this revision stay valid;
``hashed_key`` keeps its name, type and unique index, and now holds a digest tagged with its algorithm.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, LongText, UTCDateTime, json_type

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ("start", "scopes", "revoked_at", "created_by", "rotated_from", "replaced_at")


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("start", LongText(), nullable=True))
    op.add_column("api_keys", sa.Column("scopes", json_type, nullable=True))
    op.add_column("api_keys", sa.Column("revoked_at", UTCDateTime(), nullable=True))
    op.add_column("api_keys", sa.Column("created_by", Identifier(), nullable=True))
    op.add_column("api_keys", sa.Column("rotated_from", Identifier(), nullable=True))
    op.add_column("api_keys", sa.Column("replaced_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    # None of these columns is indexed or constrained, so SQLite (3.35+) drops them in place too.
    for name in reversed(_COLUMNS):
        op.drop_column("api_keys", name)
