"""API key subjects, usage credits, rate limits and bindings: seven nullable columns and one index.

* ``subject_type``, ``subject_id``: whom the key stands for (``NULL``: its organization, as before; ``user``
  or ``device`` and the user id or device serial/UDI), indexed with ``organization_id`` for "this
  subject's keys".
* ``credits_remaining``, ``refill_amount``, ``refill_period``, ``credits_refilled_at``: usage credits
  (``NULL``: unlimited), spent by one conditional ``UPDATE`` per verification and refilled lazily.
* ``constraints``: JSON with the key's rate limits, allowed networks and certificate thumbprint.

Every column is nullable with no default, so adding it is a change of the catalog alone on PostgreSQL (no
table rewrite) and existing keys keep verifying exactly as before. The index is built by a plain ``CREATE
INDEX``, which holds writes to ``api_keys`` (not reads) for the build: milliseconds for the tables of
thousands of keys this library sees. Downgrade drops the index and the columns, and with them every
subject, credit balance and limit.

Revision ID: 0010
Revises: 0004 (rechained after the revisions merged before it)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, UTCDateTime, json_type

revision: str = "0010"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = (
    "subject_type",
    "subject_id",
    "credits_remaining",
    "refill_amount",
    "refill_period",
    "credits_refilled_at",
    "constraints",
)


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("subject_type", sa.String(16), nullable=True))
    op.add_column("api_keys", sa.Column("subject_id", Identifier(), nullable=True))
    op.add_column("api_keys", sa.Column("credits_remaining", sa.BigInteger(), nullable=True))
    op.add_column("api_keys", sa.Column("refill_amount", sa.BigInteger(), nullable=True))
    op.add_column("api_keys", sa.Column("refill_period", sa.String(8), nullable=True))
    op.add_column("api_keys", sa.Column("credits_refilled_at", UTCDateTime(), nullable=True))
    op.add_column("api_keys", sa.Column("constraints", json_type, nullable=True))
    op.create_index("api_keys_subject_idx", "api_keys", ["organization_id", "subject_type", "subject_id"])


def downgrade() -> None:
    op.drop_index("api_keys_subject_idx", table_name="api_keys")
    # Unindexed and unconstrained once the index is gone, so SQLite (3.35+) drops them in place too.
    for name in reversed(_COLUMNS):
        op.drop_column("api_keys", name)
