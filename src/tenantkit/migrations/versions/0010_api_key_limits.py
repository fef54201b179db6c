"""API key subjects, usage credits, rate limits and bindings: seven nullable columns, no index.

* ``subject_type``, ``subject_id``: whom the key stands for (``NULL``: its organization, as before; ``user``
  or ``device`` and the user id or device serial/UDI). "This subject's keys" is always asked within one
  organization, so it reads the existing ``api_keys_organization_id_idx`` and filters the organization's
  keys (a few, or a few thousand): no new index.
* ``credits_remaining``, ``refill_amount``, ``refill_period``, ``credits_refilled_at``: usage credits
  (``NULL``: unlimited), spent by one conditional ``UPDATE`` per verification and refilled lazily.
* ``constraints``: JSON with what a verification checks (the subject, whether credits apply, the rate
  limits, allowed networks and certificate thumbprint); ``NULL`` for a key without any, the one of these
  columns a verification reads.

Every column is nullable with no default, so on PostgreSQL each ``ADD COLUMN`` changes the catalog alone:
no table rewrite, no scan, and the ``ACCESS EXCLUSIVE`` lock it takes lasts milliseconds (behind a long
transaction on ``api_keys`` it waits, and queues what comes after it: run it with a ``lock_timeout``, as
every migration of a live table). No index is built, so nothing holds writes to ``api_keys`` for a build;
MariaDB (10.4+) adds such columns instantly too (``ALGORITHM=INSTANT`` accepts each). Existing keys keep
verifying exactly as before. Downgrade drops the columns, and with them every subject, credit balance and
limit.

Revision ID: 0010
Revises: 0004 (rechained after the revisions merged before it)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tenantkit._tables import Identifier, UTCDateTime, json_type

revision: str = "0010"
down_revision: str | None = "0009"
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


def downgrade() -> None:
    # Unindexed and unconstrained, so SQLite (3.35+) drops them in place too.
    for name in reversed(_COLUMNS):
        op.drop_column("api_keys", name)
