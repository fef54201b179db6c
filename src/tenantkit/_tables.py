"""tenantkit's tables, on tenantkit's own ``MetaData``.

The first migration revision reproduces these tables as the Drizzle migration ``0001_closed_shaman`` of
the earlier implementation of these features creates them; later revisions add columns. Hosts import the
tables to join against them, and use :func:`tenantkit.tables.include_object` to keep them out of their own
Alembic autogenerate.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from tenantkit.roles._policy import Role

NAMING_CONVENTION: dict[str, str] = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

metadata: sa.MetaData = sa.MetaData(naming_convention=NAMING_CONVENTION)
"""The ``MetaData`` that holds every tenantkit table (and only those)."""

VERSION_TABLE = "tenantkit_alembic_version"
"""Alembic's version table for tenantkit's own migration history."""


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as an aware UTC datetime on every dialect.

    PostgreSQL stores ``timestamptz``. SQLite and MySQL/MariaDB have no zone-aware type, so the value is
    stored as naive UTC (with microseconds on MySQL/MariaDB, whose ``DATETIME`` otherwise drops them) and
    made aware again when read. A naive value given to tenantkit is refused rather than guessed.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        # Declared, not derived: SQLAlchemy 2.0's TypeDecorator does not take it from ``impl`` (2.1 does), and
        # the cursor codec chooses its encoding by it.
        return datetime

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("tenantkit stores only timezone-aware datetimes")
        value = value.astimezone(timezone.utc)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class utc_now(FunctionElement[datetime]):
    """``CURRENT_TIMESTAMP`` at the precision of each dialect's timestamp column, as a server default."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utc_now)
def _utc_now_default(element: utc_now, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utc_now, "postgresql")
def _utc_now_postgresql(element: utc_now, compiler: Any, **kw: Any) -> str:
    return "now()"


@compiles(utc_now, "mysql")
@compiles(utc_now, "mariadb")
def _utc_now_mysql(element: utc_now, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP(6)"


def Identifier() -> sa.types.TypeEngine[str]:
    """``text`` as revision ``0001`` says; ``VARCHAR(255)`` on MySQL/MariaDB, which cannot index TEXT.

    On MySQL/MariaDB the column is binary-collated: ids are opaque and exact, and the server's default
    case-insensitive collation would make ``"org_1"`` and ``"ORG_1"`` one tenant (and fold digests).
    """
    return sa.Text().with_variant(sa.String(255, collation="utf8mb4_bin"), "mysql", "mariadb")


def LongText() -> sa.types.TypeEngine[str]:
    """``text`` that is never indexed, so it needs no MySQL variant."""
    return sa.Text()


role_type = sa.Enum(
    Role,
    name="role",
    native_enum=False,
    create_constraint=True,
    length=16,
    values_callable=lambda roles: [role.value for role in roles],
    validate_strings=True,
).with_variant(
    postgresql.ENUM(
        Role,
        name="role",
        create_type=False,
        values_callable=lambda roles: [role.value for role in roles],
    ),
    "postgresql",
)
"""The ``role`` type: a native enum on PostgreSQL, a checked column elsewhere."""

json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""``jsonb`` on PostgreSQL, ``JSON`` elsewhere."""

nullable_json_type = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
""":data:`json_type` writing Python ``None`` as SQL ``NULL`` (not JSON ``null``): for a column whose ``NULL``
means something to a query (the same DDL)."""


USER_REFERENCE = "tenantkit_user_reference"
"""``Column.info`` key marking a column that names a user without being the row's subject (``created_by``).

Erasing a user (``kit.organizations.erase_user``) sets every column so marked to ``NULL`` where it names the
user, in every tenantkit table; rows whose ``user_id`` column is the user are deleted. A table added later
takes part by naming its column ``user_id``, or by marking it with this key.
"""

NOT_ORGANIZATION_DATA = "tenantkit_not_organization_data"
"""``Table.info`` key marking a table that holds no organization's data although it has an ``organization_id``
column: the bus's change log, whose rows are hints about caches and prune themselves. Deleting an
organization's data leaves such tables alone."""


def new_id() -> str:
    """A new random id: a UUID as text."""
    return str(uuid.uuid4())


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
        sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
    ]


team_members: sa.Table = sa.Table(
    "team_members",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("user_id", Identifier(), nullable=False),
    sa.Column("role", role_type, nullable=False, server_default=Role.MEMBER.value),
    *_timestamps(),
    # Revision 0005: the custom role held inside the rank ``role`` (its key), or NULL for the rank alone.
    sa.Column("custom_role", Identifier(), nullable=True),
    # Revision 0007: what an accept policy verified, and suspension.
    sa.Column("attributes", json_type, nullable=True),
    sa.Column("credential_expires_at", UTCDateTime(), nullable=True),
    sa.Column("suspended_at", UTCDateTime(), nullable=True),
    sa.Column("suspended_by", Identifier(), nullable=True, info={USER_REFERENCE: True}),
    sa.Column("suspension_reason", LongText(), nullable=True),
    sa.Index("unique_team_user_idx", "organization_id", "user_id", unique=True),
    sa.Index("team_members_user_id_idx", "user_id"),
    sa.Index("team_members_organization_id_idx", "organization_id"),
)
"""Members of organizations, one row per (organization, user), with their rank (``role``) and, from revision
0005, the key of the custom role they hold inside it (``custom_role``).

Revision 0007 adds ``attributes`` (a JSON object: what the accept policy verified, with when and by what),
``credential_expires_at`` (when that verification lapses, for "lapsing before" listings) and the suspension
columns ``suspended_at``, ``suspended_by`` (``NULL`` for the host) and ``suspension_reason``.
"""

api_keys: sa.Table = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("name", LongText(), nullable=False),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("hashed_key", Identifier(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    *_timestamps(),
    # Revision 0002: everything below the origin document's columns.
    sa.Column("start", LongText(), nullable=True),
    sa.Column("scopes", json_type, nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("created_by", Identifier(), nullable=True, info={USER_REFERENCE: True}),
    sa.Column("rotated_from", Identifier(), nullable=True),
    sa.Column("replaced_at", UTCDateTime(), nullable=True),
    # Revision 0010: subjects, credits, and the limits and bindings a verification checks.
    sa.Column("subject_type", sa.String(16), nullable=True),
    sa.Column("subject_id", Identifier(), nullable=True),
    sa.Column("credits_remaining", sa.BigInteger(), nullable=True),
    sa.Column("refill_amount", sa.BigInteger(), nullable=True),
    sa.Column("refill_period", sa.String(8), nullable=True),
    sa.Column("credits_refilled_at", UTCDateTime(), nullable=True),
    sa.Column("constraints", nullable_json_type, nullable=True),
    sa.Index("api_keys_hashed_key_idx", "hashed_key", unique=True),
    sa.Index("api_keys_organization_id_idx", "organization_id"),
)
"""API keys of organizations; only a digest of each key is stored, tagged with its algorithm.

``start`` is the key's non-secret beginning, for display; ``scopes`` a JSON list of strings; ``created_by``
the issuing user (``NULL`` for the host); ``rotated_from`` the key a rotation replaced, whose
``replaced_at`` records the rotation.

Revision 0010: ``subject_type``/``subject_id`` name whom the key stands for (``NULL``: the organization;
``user`` or ``device`` and its id); ``credits_remaining`` (``NULL``: unlimited) is decremented by each
verification in one conditional ``UPDATE``, and reset to ``refill_amount`` once per ``refill_period``
(``day`` or ``month``, UTC) when ``credits_refilled_at`` falls before the period's start; ``constraints``
(``NULL`` for a key without any opt-in limit, the one column of them a verification reads) holds as JSON
what a verification checks: the subject again, whether the key has credits, its rate limits, allowed
networks and certificate thumbprint. Keys are listed and revoked by subject through
``api_keys_organization_id_idx`` and a filter: revision 0010 adds no index (building one would hold writes
to the table on a live PostgreSQL).
"""

invitations: sa.Table = sa.Table(
    "invitations",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("email", Identifier(), nullable=True),
    sa.Column("role", role_type, nullable=False, server_default=Role.MEMBER.value),
    sa.Column("token", Identifier(), nullable=False),
    sa.Column("expires", UTCDateTime(), nullable=False),
    # NULL when the host application invited (revision 0003; the origin column was NOT NULL).
    sa.Column("invited_by", Identifier(), nullable=True, info={USER_REFERENCE: True}),
    sa.Column("sent_via_email", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("allowed_domains", json_type, nullable=True),
    *_timestamps(),
    # Revision 0003. ``email`` holds the address only while the invitation is open, so that the origin's
    # unique (organization_id, email) index means "one open invitation per address"; ``invited_email``
    # keeps the address for good, so finished invitations never block a new one.
    sa.Column("invited_email", Identifier(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("max_uses", sa.Integer(), nullable=True),
    sa.Column("use_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("accepted_at", UTCDateTime(), nullable=True),
    sa.Column("accepted_by", Identifier(), nullable=True, info={USER_REFERENCE: True}),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    # Revision 0005: the custom role offered inside the rank ``role``.
    sa.Column("custom_role", Identifier(), nullable=True),
    # Revision 0007: the requirements an accept policy checks (a JSON object), NULL for none.
    sa.Column("requirements", json_type, nullable=True),
    sa.Index("invitations_token_idx", "token", unique=True),
    sa.Index("unique_team_email_idx", "organization_id", "email", unique=True),
    sa.Index("invitations_email_idx", "email"),
    sa.Index("invitations_organization_id_idx", "organization_id"),
)
"""Invitations by email or by domain-restricted link; the ``token`` column holds a digest, never a token."""

invitation_acceptances: sa.Table = sa.Table(
    "invitation_acceptances",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column(
        "invitation_id",
        Identifier(),
        sa.ForeignKey("invitations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("user_id", Identifier(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
    sa.Index("invitation_acceptances_invitation_user_idx", "invitation_id", "user_id", unique=True),
    sa.Index("invitation_acceptances_organization_user_idx", "organization_id", "user_id"),
)
"""Who accepted which invitation (revision 0003): a user comes in through one link at most once."""

departments: sa.Table = sa.Table(
    "departments",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("name", Identifier(), nullable=False),
    sa.Column("description", LongText(), nullable=True),
    *_timestamps(),
    sa.Index("departments_organization_name_idx", "organization_id", "name", unique=True),
)
"""Departments (revision 0007): named groups of members inside one organization, unique by name."""

department_members: sa.Table = sa.Table(
    "department_members",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column(
        "department_id",
        Identifier(),
        sa.ForeignKey("departments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("user_id", Identifier(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, server_default=utc_now()),
    sa.Index("department_members_department_user_idx", "department_id", "user_id", unique=True),
    sa.Index("department_members_organization_user_idx", "organization_id", "user_id"),
)
"""Which members of an organization belong to which of its departments (revision 0007)."""


audit_events: sa.Table = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("event_version", sa.Integer(), nullable=False),
    sa.Column("actor_kind", sa.String(32), nullable=False),
    sa.Column("actor_id", Identifier(), nullable=True),
    sa.Column("targets", json_type, nullable=False),
    sa.Column("data", json_type, nullable=False),
    sa.Column("ip_address", sa.String(45), nullable=True),
    sa.Column("user_agent", LongText(), nullable=True),
    sa.Column("request_id", Identifier(), nullable=True),
    sa.Column("redacted_at", UTCDateTime(), nullable=True),
    sa.Column("chain_seq", sa.BigInteger(), nullable=True),
    sa.Column("chain_prev", sa.String(64), nullable=True),
    sa.Column("chain_hash", sa.String(64), nullable=True),
    sa.Column("chain_seals", json_type, nullable=True),
    sa.Index("audit_events_organization_time_idx", "organization_id", "occurred_at", "id"),
    sa.Index("audit_events_actor_idx", "organization_id", "actor_kind", "actor_id", "occurred_at"),
    sa.Index("audit_events_time_idx", "occurred_at", "id"),
    sa.Index("audit_events_chain_idx", "organization_id", "chain_seq", unique=True),
)
"""The audit log (revision 0004): one append-only row per recorded event, never a secret.

``targets`` is a JSON list of ``{"type", "id"}`` (what changed), ``data`` the event's allow-listed payload
(the change itself). ``ip_address``, ``user_agent`` and ``request_id`` are the request context; the first two
are personal data, which redaction clears (``redacted_at``). The ``chain_*`` columns are set when the kit
chains rows by hash: the row's place in its organization's chain, the previous row's hash, its own, and the
seals that let a redacted field keep its place in the hash.
"""

audit_chain_heads: sa.Table = sa.Table(
    "audit_chain_heads",
    metadata,
    sa.Column("organization_id", Identifier(), primary_key=True),
    sa.Column("head_seq", sa.BigInteger(), nullable=False),
    sa.Column("head_hash", sa.String(64), nullable=False),
    sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
    sa.Column("anchor_hash", sa.String(64), nullable=False),
    sa.Column("anchored_at", UTCDateTime(), nullable=True),
)
"""The end of each organization's audit chain (revision 0004), locked by every chained write.

``head_*`` is the newest row; ``anchor_*`` the last row a purge removed (sequence 0 and the genesis hash
until then), which the oldest remaining row must link to.
"""


organization_settings: sa.Table = sa.Table(
    "organization_settings",
    metadata,
    sa.Column("organization_id", Identifier(), primary_key=True),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("document", json_type, nullable=False),
    sa.Column("updated_by", Identifier(), nullable=True, info={USER_REFERENCE: True}),
    *_timestamps(),
)
"""Each organization's settings document (revision 0006), one row per organization that stored any.

``document`` holds the keys set explicitly, as JSON; ``version`` counts the writes (1 after the first), and
every write is ``UPDATE … WHERE version = <the version the writer read>``, so a stale write changes nothing
and is refused. ``updated_by`` is the last writing user (``NULL`` for the host).
"""


custom_roles: sa.Table = sa.Table(
    "custom_roles",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("key", Identifier(), nullable=False),
    sa.Column("name", LongText(), nullable=False),
    sa.Column("description", LongText(), nullable=False, server_default=""),
    sa.Column("rank", sa.String(16), nullable=False),
    sa.Column("permissions", json_type, nullable=False),
    *_timestamps(),
    sa.Index("custom_roles_organization_key_idx", "organization_id", "key", unique=True),
)
"""Custom roles an organization defined (revision 0005): a stable ``key`` unique per organization, a rank
(``ADMIN`` or ``MEMBER``) and a JSON list of the permissions added on top of the rank's. Deployment-wide roles
live in the host's code, not here.
"""


change_id_type: sa.types.TypeEngine[int] = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit auto-incrementing id; ``INTEGER`` on SQLite, where only that spelling is the rowid."""

cache_invalidations: sa.Table = sa.Table(
    "cache_invalidations",
    metadata,
    sa.Column("id", change_id_type, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("subject_id", Identifier(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("cache_invalidations_created_at_idx", "created_at"),
    sqlite_autoincrement=True,
    info={NOT_ORGANIZATION_DATA: True},
)
"""The change log the polling bus reads (revision 0008): one row per cache key a change made stale.

Written in the change's own transaction (so a rolled-back change leaves none) by
:class:`tenantkit.bus.PollingBus`, read by every process's poller in ``id`` order, pruned after its
retention. ``subject_id`` is the key's id or the member's user id (never a digest or key); ``kind`` ``"*"``
asks every process to clear its caches. On SQLite the id is ``AUTOINCREMENT``: never reused, even once the
newest rows are pruned.
"""


webhook_endpoints: sa.Table = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("url", LongText(), nullable=False),
    sa.Column("description", LongText(), nullable=False),
    sa.Column("event_types", json_type, nullable=False),
    sa.Column("enabled", sa.Boolean(create_constraint=False), nullable=False),
    sa.Column("disabled_reason", sa.String(16), nullable=True),
    sa.Column("failing_since", UTCDateTime(), nullable=True),
    sa.Column("secret", LongText(), nullable=False),
    sa.Column("previous_secret", LongText(), nullable=True),
    sa.Column("previous_secret_expires_at", UTCDateTime(), nullable=True),
    sa.Column("created_by", Identifier(), nullable=True, info={USER_REFERENCE: True}),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("webhook_endpoints_organization_idx", "organization_id", "created_at", "id"),
)
"""Webhook endpoints (revision 0009): where an organization wants its events sent, and how they are signed.

``secret`` (and ``previous_secret`` during a rotation's grace, until ``previous_secret_expires_at``) is the
``whsec_`` signing secret encrypted with the deployment's webhook keys, never in the clear. ``event_types`` is
the JSON list of dotted event names the endpoint wants. ``disabled_reason`` says why it is off (``manual``,
``failing`` for 5 days of continuous failure since ``failing_since``, or ``gone`` for an HTTP 410).
"""

webhook_messages: sa.Table = sa.Table(
    "webhook_messages",
    metadata,
    sa.Column("id", Identifier(), primary_key=True),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("body", LongText(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("webhook_messages_organization_idx", "organization_id", "created_at", "id"),
)
"""The webhook outbox's messages (revision 0009): one per recorded event an endpoint wanted.

``id`` is the ``webhook-id`` every delivery of it carries (stable across retries, so receivers deduplicate
on it); ``body`` the exact JSON sent, built from the event's allow-listed payload.
"""

webhook_deliveries: sa.Table = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column(
        "message_id", Identifier(), sa.ForeignKey("webhook_messages.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column(
        "endpoint_id", Identifier(), sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("lease_token", Identifier(), nullable=True),
    sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("last_status_code", sa.Integer(), nullable=True),
    sa.Column("last_duration_ms", sa.Integer(), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("delivered_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("webhook_deliveries_due_idx", "status", "next_attempt_at"),
    sa.Index("webhook_deliveries_endpoint_idx", "endpoint_id", "created_at", "id"),
    sa.Index("webhook_deliveries_message_idx", "message_id", "created_at", "id"),
)
"""One message to one endpoint (revision 0009): its state, its attempts and its lease.

``status`` is ``pending`` until it ``succeeded`` or ``failed`` (retries used up, endpoint disabled). A pending
delivery is due at ``next_attempt_at``; a worker that claims it moves ``next_attempt_at`` to the end of its
lease and writes its ``lease_token``, so no other worker sends it until the lease expires. Response bodies are
never stored: the last status code, duration and a truncated error are.
"""


organization_domains: sa.Table = sa.Table(
    "organization_domains",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("domain", Identifier(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("token_digest", sa.String(64), nullable=True),
    sa.Column("verified_domain", Identifier(), nullable=True),
    *_timestamps(),
    sa.Column("verified_at", UTCDateTime(), nullable=True),
    sa.Column("last_checked_at", UTCDateTime(), nullable=True),
    sa.Column("failed_at", UTCDateTime(), nullable=True),
    sa.Index("organization_domains_organization_domain_idx", "organization_id", "domain", unique=True),
    sa.Index("organization_domains_verified_domain_idx", "verified_domain", unique=True),
    sa.Index("organization_domains_domain_idx", "domain"),
)
"""Domains organizations claim (revision 0011): IDNA-normalized, with their verification state.

``token_digest`` is the SHA-256 of the DNS TXT token (shown once, never stored). ``verified_domain`` equals
``domain`` while the row is verified and is ``NULL`` otherwise: its unique index keeps a domain verified for
at most one organization, whatever races.
"""

sso_connections: sa.Table = sa.Table(
    "sso_connections",
    metadata,
    sa.Column("id", Identifier(), primary_key=True, default=new_id),
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
    *_timestamps(),
    sa.Index("sso_connections_organization_id_idx", "organization_id"),
    sa.Index("sso_connections_provider_connection_idx", "provider", "provider_connection_id", unique=True),
)
"""SSO connections (revision 0011): policy records, never certificates or identity-provider metadata."""

sso_member_sync: sa.Table = sa.Table(
    "sso_member_sync",
    metadata,
    sa.Column(
        "connection_id",
        Identifier(),
        sa.ForeignKey("sso_connections.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", Identifier(), primary_key=True),
    sa.Column("organization_id", Identifier(), nullable=False),
    sa.Column("last_event_id", Identifier(), nullable=False),
    sa.Column("last_event_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=utc_now()),
    sa.Index("sso_member_sync_organization_user_idx", "organization_id", "user_id"),
)
"""Where each member's provider membership sync stands (revision 0012): per connection and user, the id and
time of the last provider event applied (or refused). A redelivered event (the same id) and an event older
than that one change nothing."""


def include_object(
    obj: sa.schema.SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """An Alembic ``include_object`` hook for a *host's* ``env.py`` that leaves tenantkit's tables alone.

    tenantkit migrates its own tables; with this hook the host's autogenerate neither creates nor drops them::

        context.configure(..., include_object=tenantkit.tables.include_object)
    """
    return not is_tenantkit_object(obj, name, type_)


def is_tenantkit_object(obj: sa.schema.SchemaItem, name: str | None, type_: str) -> bool:
    """Whether ``obj`` (a table, its column, index or constraint, or tenantkit's version table) is ours."""
    if type_ == "table":
        return name in metadata.tables or name == VERSION_TABLE
    table = getattr(obj, "table", None)
    return table is not None and (table.name in metadata.tables or table.name == VERSION_TABLE)
