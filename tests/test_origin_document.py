"""Revision 0001 against the origin document, and adoption of databases where that SQL was already applied.

The origin document is ``shared/seed/migration-log-phase1.md`` (migration ``0001_closed_shaman``). Its
schema is restated here by hand, from the document, so that these tests check the migration against the
document rather than against the code that implements it. The ``*_ORIGIN_SQL`` fixtures are the SQL another
tool would have run: Drizzle's output for PostgreSQL and MySQL/MariaDB, and its equivalent for SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import tenantkit
from tests.databases import ThrowawayDatabase

ALL = ["sqlite", "postgresql", "mariadb"]
ROLES = ("OWNER", "ADMIN", "MEMBER")

# table -> column -> (kind, nullable), as the document lists them; "optional" fields are the nullable ones.
ORIGIN_COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    "team_members": {
        "id": ("text", False),
        "organization_id": ("text", False),
        "user_id": ("text", False),
        "role": ("role", False),
        "created_at": ("timestamp", False),
        "updated_at": ("timestamp", False),
    },
    "api_keys": {
        "id": ("text", False),
        "name": ("text", False),
        "organization_id": ("text", False),
        "hashed_key": ("text", False),
        "expires_at": ("timestamp", True),
        "last_used_at": ("timestamp", True),
        "created_at": ("timestamp", False),
        "updated_at": ("timestamp", False),
    },
    "invitations": {
        "id": ("text", False),
        "organization_id": ("text", False),
        "email": ("text", True),
        "role": ("role", False),
        "token": ("text", False),
        "expires": ("timestamp", False),
        "invited_by": ("text", False),
        "sent_via_email": ("boolean", False),
        "allowed_domains": ("json", True),
        "created_at": ("timestamp", False),
        "updated_at": ("timestamp", False),
    },
}

# The rollback list's nine index names, with the table, columns and uniqueness the document gives each.
ORIGIN_INDEXES: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "team_members_organization_id_idx": ("team_members", ("organization_id",), False),
    "team_members_user_id_idx": ("team_members", ("user_id",), False),
    "unique_team_user_idx": ("team_members", ("organization_id", "user_id"), True),
    "invitations_organization_id_idx": ("invitations", ("organization_id",), False),
    "invitations_email_idx": ("invitations", ("email",), False),
    "unique_team_email_idx": ("invitations", ("organization_id", "email"), True),
    "invitations_token_idx": ("invitations", ("token",), True),
    "api_keys_organization_id_idx": ("api_keys", ("organization_id",), False),
    "api_keys_hashed_key_idx": ("api_keys", ("hashed_key",), True),
}

POSTGRESQL_ORIGIN_SQL = """
CREATE TYPE "public"."role" AS ENUM('OWNER', 'ADMIN', 'MEMBER');--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"organization_id" text NOT NULL,
	"hashed_key" text NOT NULL,
	"expires_at" timestamp,
	"last_used_at" timestamp,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"updated_at" timestamp DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "invitations" (
	"id" text PRIMARY KEY NOT NULL,
	"organization_id" text NOT NULL,
	"email" text,
	"role" "role" DEFAULT 'MEMBER' NOT NULL,
	"token" text NOT NULL,
	"expires" timestamp NOT NULL,
	"invited_by" text NOT NULL,
	"sent_via_email" boolean DEFAULT false NOT NULL,
	"allowed_domains" jsonb,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"updated_at" timestamp DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "team_members" (
	"id" text PRIMARY KEY NOT NULL,
	"organization_id" text NOT NULL,
	"user_id" text NOT NULL,
	"role" "role" DEFAULT 'MEMBER' NOT NULL,
	"created_at" timestamp DEFAULT now() NOT NULL,
	"updated_at" timestamp DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "api_keys_hashed_key_idx" ON "api_keys" USING btree ("hashed_key");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "api_keys_organization_id_idx" ON "api_keys" USING btree ("organization_id");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "invitations_token_idx" ON "invitations" USING btree ("token");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "unique_team_email_idx" ON "invitations" USING btree ("organization_id","email");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "invitations_email_idx" ON "invitations" USING btree ("email");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "invitations_organization_id_idx" ON "invitations" USING btree ("organization_id");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "unique_team_user_idx" ON "team_members" USING btree ("organization_id","user_id");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "team_members_user_id_idx" ON "team_members" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "team_members_organization_id_idx" ON "team_members" USING btree ("organization_id");
"""  # noqa: E501

MARIADB_ORIGIN_SQL = """
CREATE TABLE `api_keys` (
	`id` varchar(255) NOT NULL,
	`name` text NOT NULL,
	`organization_id` varchar(255) NOT NULL,
	`hashed_key` varchar(255) NOT NULL,
	`expires_at` timestamp NULL,
	`last_used_at` timestamp NULL,
	`created_at` timestamp NOT NULL DEFAULT (now()),
	`updated_at` timestamp NOT NULL DEFAULT (now()),
	CONSTRAINT `api_keys_id` PRIMARY KEY(`id`),
	CONSTRAINT `api_keys_hashed_key_idx` UNIQUE(`hashed_key`)
);
--> statement-breakpoint
CREATE TABLE `invitations` (
	`id` varchar(255) NOT NULL,
	`organization_id` varchar(255) NOT NULL,
	`email` varchar(255),
	`role` enum('OWNER','ADMIN','MEMBER') NOT NULL DEFAULT 'MEMBER',
	`token` varchar(255) NOT NULL,
	`expires` timestamp NOT NULL,
	`invited_by` varchar(255) NOT NULL,
	`sent_via_email` boolean NOT NULL DEFAULT false,
	`allowed_domains` json,
	`created_at` timestamp NOT NULL DEFAULT (now()),
	`updated_at` timestamp NOT NULL DEFAULT (now()),
	CONSTRAINT `invitations_id` PRIMARY KEY(`id`),
	CONSTRAINT `invitations_token_idx` UNIQUE(`token`),
	CONSTRAINT `unique_team_email_idx` UNIQUE(`organization_id`,`email`)
);
--> statement-breakpoint
CREATE TABLE `team_members` (
	`id` varchar(255) NOT NULL,
	`organization_id` varchar(255) NOT NULL,
	`user_id` varchar(255) NOT NULL,
	`role` enum('OWNER','ADMIN','MEMBER') NOT NULL DEFAULT 'MEMBER',
	`created_at` timestamp NOT NULL DEFAULT (now()),
	`updated_at` timestamp NOT NULL DEFAULT (now()),
	CONSTRAINT `team_members_id` PRIMARY KEY(`id`),
	CONSTRAINT `unique_team_user_idx` UNIQUE(`organization_id`,`user_id`)
);
--> statement-breakpoint
CREATE INDEX `api_keys_organization_id_idx` ON `api_keys` (`organization_id`);--> statement-breakpoint
CREATE INDEX `invitations_email_idx` ON `invitations` (`email`);--> statement-breakpoint
CREATE INDEX `invitations_organization_id_idx` ON `invitations` (`organization_id`);--> statement-breakpoint
CREATE INDEX `team_members_user_id_idx` ON `team_members` (`user_id`);--> statement-breakpoint
CREATE INDEX `team_members_organization_id_idx` ON `team_members` (`organization_id`);
"""

# Drizzle's SQLite role is plain text (its enum exists only in TypeScript), so there is no CHECK here.
SQLITE_ORIGIN_SQL = """
CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`organization_id` text NOT NULL,
	`hashed_key` text NOT NULL,
	`expires_at` datetime,
	`last_used_at` datetime,
	`created_at` datetime DEFAULT CURRENT_TIMESTAMP NOT NULL,
	`updated_at` datetime DEFAULT CURRENT_TIMESTAMP NOT NULL
);
--> statement-breakpoint
CREATE TABLE `invitations` (
	`id` text PRIMARY KEY NOT NULL,
	`organization_id` text NOT NULL,
	`email` text,
	`role` varchar(16) DEFAULT 'MEMBER' NOT NULL,
	`token` text NOT NULL,
	`expires` datetime NOT NULL,
	`invited_by` text NOT NULL,
	`sent_via_email` boolean DEFAULT false NOT NULL,
	`allowed_domains` json,
	`created_at` datetime DEFAULT CURRENT_TIMESTAMP NOT NULL,
	`updated_at` datetime DEFAULT CURRENT_TIMESTAMP NOT NULL
);
--> statement-breakpoint
CREATE TABLE `team_members` (
	`id` text PRIMARY KEY NOT NULL,
	`organization_id` text NOT NULL,
	`user_id` text NOT NULL,
	`role` varchar(16) DEFAULT 'MEMBER' NOT NULL,
	`created_at` datetime DEFAULT CURRENT_TIMESTAMP NOT NULL,
	`updated_at` datetime DEFAULT CURRENT_TIMESTAMP NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hashed_key_idx` ON `api_keys` (`hashed_key`);--> statement-breakpoint
CREATE INDEX `api_keys_organization_id_idx` ON `api_keys` (`organization_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `invitations_token_idx` ON `invitations` (`token`);--> statement-breakpoint
CREATE UNIQUE INDEX `unique_team_email_idx` ON `invitations` (`organization_id`,`email`);--> statement-breakpoint
CREATE INDEX `invitations_email_idx` ON `invitations` (`email`);--> statement-breakpoint
CREATE INDEX `invitations_organization_id_idx` ON `invitations` (`organization_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `unique_team_user_idx` ON `team_members` (`organization_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `team_members_user_id_idx` ON `team_members` (`user_id`);--> statement-breakpoint
CREATE INDEX `team_members_organization_id_idx` ON `team_members` (`organization_id`);
"""  # noqa: E501

# Keyed by SQLAlchemy dialect name: MariaDB through PyMySQL is the "mysql" dialect.
ORIGIN_SQL = {
    "postgresql": POSTGRESQL_ORIGIN_SQL,
    "mysql": MARIADB_ORIGIN_SQL,
    "mariadb": MARIADB_ORIGIN_SQL,
    "sqlite": SQLITE_ORIGIN_SQL,
}

# Rows the other tool's application wrote: naive timestamps, written as UTC.
WRITTEN_AT = "2025-06-30 12:34:56.789"
WRITTEN_AT_UTC = datetime(2025, 6, 30, 12, 34, 56, 789000, tzinfo=timezone.utc)
ORIGIN_ROWS = [
    "INSERT INTO team_members (id, organization_id, user_id, role, created_at, updated_at) VALUES "
    f"('m1', 'org_1', 'user_1', 'OWNER', '{WRITTEN_AT}', '{WRITTEN_AT}')",
    "INSERT INTO team_members (id, organization_id, user_id, role) "
    "VALUES ('m2', 'org_1', 'user_2', 'MEMBER')",
    "INSERT INTO api_keys (id, name, organization_id, hashed_key, expires_at) VALUES "
    f"('k1', 'ci', 'org_1', 'digest-1', '{WRITTEN_AT}')",
    "INSERT INTO invitations (id, organization_id, email, role, token, expires, invited_by, sent_via_email, "
    "allowed_domains) VALUES ('i1', 'org_1', NULL, 'ADMIN', 'token-digest-1', "
    f"'{WRITTEN_AT}', 'user_1', false, '[\"example.com\"]')",
]


def apply_script(engine: sa.Engine, script: str) -> None:
    """Run a Drizzle-style script, statement by statement, as its migrator would."""
    with engine.begin() as connection:
        for statement in script.split("--> statement-breakpoint"):
            if statement.strip():
                connection.exec_driver_sql(statement.strip().rstrip(";"))


def apply_origin(engine: sa.Engine, *, with_rows: bool = True) -> None:
    """Build the origin schema the way another tool did, and write its application's rows."""
    apply_script(engine, ORIGIN_SQL[engine.dialect.name])
    if with_rows:
        apply_script(engine, "--> statement-breakpoint".join(ORIGIN_ROWS))


def kind(type_: sa.types.TypeEngine[Any]) -> str:
    """The family of a reflected type, as the document names them."""
    if isinstance(type_, sa.Enum):
        return "enum"
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.Boolean) or getattr(type_, "display_width", None) == 1:
        return "boolean"
    if isinstance(type_, sa.DateTime):
        return "timestamp"
    if isinstance(type_, sa.String):
        return "text"
    return repr(type_)


@pytest.fixture
def fresh_engine(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """An engine on the empty database of ``fresh_database``'s dialect."""
    engine = sa.create_engine(fresh_database.url)
    yield engine
    engine.dispose()


def rows_of(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the origin tables, through raw SQL, for before/after comparisons."""
    with engine.connect() as connection:
        return {
            table: sorted(
                tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").all()
            )
            for table in ORIGIN_COLUMNS
        }


def schema_of(engine: sa.Engine) -> dict[str, Any]:
    """Columns, types and indexes of every table, for "nothing was changed" checks."""
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        result: dict[str, Any] = {
            table: (
                [
                    (c["name"], repr(c["type"]), c["nullable"], c.get("default"))
                    for c in inspector.get_columns(table)
                ],
                sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(table)
                ),
            )
            for table in inspector.get_table_names()
        }
        if connection.dialect.name == "postgresql":
            result["__types__"] = connection.exec_driver_sql(
                "SELECT typname FROM pg_type WHERE typtype = 'e' ORDER BY typname"
            ).all()
        return result


class TestFirstRevisionMatchesTheDocument:
    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_tables_columns_and_nullability(self, fresh_engine: sa.Engine) -> None:
        """Revision 0001 creates exactly the document's three tables, each column of the listed kind."""
        tenantkit.upgrade(fresh_engine, "0001")
        with fresh_engine.connect() as connection:
            inspector = sa.inspect(connection)
            assert set(inspector.get_table_names()) == {*ORIGIN_COLUMNS, tenantkit.tables.VERSION_TABLE}
            for table, columns in ORIGIN_COLUMNS.items():
                reflected = {column["name"]: column for column in inspector.get_columns(table)}
                assert set(reflected) == set(columns), table
                for name, (expected_kind, nullable) in columns.items():
                    actual = kind(reflected[name]["type"])
                    if expected_kind == "role":
                        expected = "enum" if connection.dialect.name == "postgresql" else "text"
                    elif expected_kind == "json" and connection.dialect.name in ("mysql", "mariadb"):
                        expected = "text"  # MariaDB's JSON is LONGTEXT with a json_valid() check
                    else:
                        expected = expected_kind
                    assert actual == expected, (table, name, reflected[name]["type"])
                    assert reflected[name]["nullable"] is nullable, (table, name)
                assert inspector.get_pk_constraint(table)["constrained_columns"] == ["id"]

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_defaults(self, fresh_engine: sa.Engine) -> None:
        """Roles default to MEMBER, timestamps to the current time, and ids are generated when not given."""
        tenantkit.upgrade(fresh_engine, "0001")
        with fresh_engine.connect() as connection:
            inspector = sa.inspect(connection)
            for table in ORIGIN_COLUMNS:
                defaults = {column["name"]: str(column["default"]) for column in inspector.get_columns(table)}
                for stamp in ("created_at", "updated_at"):
                    assert "now()" in defaults[stamp] or "current_timestamp" in defaults[stamp].lower()
                if "role" in defaults:
                    assert "MEMBER" in defaults["role"]
        with fresh_engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO team_members (id, organization_id, user_id) VALUES ('x', 'o', 'u')"
            )
            role, created = connection.exec_driver_sql(
                "SELECT role, created_at FROM team_members WHERE id = 'x'"
            ).one()
            assert role == "MEMBER"
            assert created is not None
            row = connection.execute(
                tenantkit.tables.team_members.insert().values(organization_id="o", user_id="v")
            ).inserted_primary_key
            assert row is not None
            assert len(str(row[0])) == 36

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_the_nine_indexes_and_unique_constraints(self, fresh_engine: sa.Engine) -> None:
        """The indexes are exactly the rollback list's nine names, on the columns and uniqueness listed."""
        tenantkit.upgrade(fresh_engine, "0001")
        found: dict[str, tuple[str, tuple[str, ...], bool]] = {}
        with fresh_engine.connect() as connection:
            inspector = sa.inspect(connection)
            for table in ORIGIN_COLUMNS:
                for index in inspector.get_indexes(table):
                    columns = tuple(str(column) for column in index["column_names"])
                    found[str(index["name"])] = (table, columns, bool(index["unique"]))
                for constraint in inspector.get_unique_constraints(table):
                    columns = tuple(constraint["column_names"])
                    found.setdefault(str(constraint["name"]), (table, columns, True))
        assert found == ORIGIN_INDEXES

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_role_values_are_enforced(self, fresh_engine: sa.Engine) -> None:
        """Role is a native ``role`` enum on PostgreSQL, a checked column elsewhere: OWNER, ADMIN, MEMBER."""
        tenantkit.upgrade(fresh_engine, "0001")
        with fresh_engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                labels = connection.exec_driver_sql(
                    "SELECT e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                    "WHERE t.typname = 'role' ORDER BY e.enumsortorder"
                ).scalars()
                assert tuple(labels) == ROLES
                udts = connection.exec_driver_sql(
                    "SELECT table_name, udt_name FROM information_schema.columns WHERE column_name = 'role' "
                    "AND table_schema = current_schema() ORDER BY table_name"
                ).all()
                assert udts == [("invitations", "role"), ("team_members", "role")]
            else:
                for table in ("team_members", "invitations"):
                    checks = [c["sqltext"] for c in sa.inspect(connection).get_check_constraints(table)]
                    assert any(all(f"'{role}'" in text for role in ROLES) for text in checks), checks
        for role in ROLES:
            with fresh_engine.begin() as connection:
                connection.exec_driver_sql(
                    f"INSERT INTO team_members (id, organization_id, user_id, role) VALUES ('{role}', 'o', "
                    f"'{role}', '{role}')"
                )
        with pytest.raises(sa.exc.DBAPIError), fresh_engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO team_members (id, organization_id, user_id, role) VALUES ('k', 'o', 'k', 'KING')"
            )


class TestAdoption:
    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_upgrade_adopts_the_origin_schema_keeping_every_row(self, fresh_engine: sa.Engine) -> None:
        """A database built by another tool is stamped at 0001 and upgraded to head with every row intact."""
        apply_origin(fresh_engine)
        ids_before = {table: [row[0] for row in rows] for table, rows in rows_of(fresh_engine).items()}

        result = tenantkit.upgrade(fresh_engine)

        assert result.adopted
        assert result.from_revision == "0001"
        assert result.to_revision == tenantkit.head_revision()
        assert tenantkit.is_up_to_date(fresh_engine)
        ids_after = {table: [row[0] for row in rows] for table, rows in rows_of(fresh_engine).items()}
        assert ids_after == ids_before
        with fresh_engine.connect() as connection:
            members = connection.execute(
                sa.select(tenantkit.tables.team_members.c.id, tenantkit.tables.team_members.c.role).order_by(
                    "id"
                )
            ).all()
            assert [(m.id, str(getattr(m.role, "value", m.role))) for m in members] == [
                ("m1", "OWNER"),
                ("m2", "MEMBER"),
            ]
            created = connection.execute(
                sa.select(tenantkit.tables.team_members.c.created_at).where(
                    tenantkit.tables.team_members.c.id == "m1"
                )
            ).scalar_one()
            # MySQL's `timestamp` keeps whole seconds: the fraction was lost when the other tool wrote it.
            mysql = connection.dialect.name == "mysql"
            assert created == (WRITTEN_AT_UTC.replace(microsecond=0) if mysql else WRITTEN_AT_UTC)
            domains = connection.execute(
                sa.select(tenantkit.tables.invitations.c.allowed_domains).where(
                    tenantkit.tables.invitations.c.id == "i1"
                )
            ).scalar_one()
            assert domains == ["example.com"]

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_adopted_schema_equals_the_tables(self, fresh_engine: sa.Engine) -> None:
        """After adoption and upgrade, Alembic finds nothing between the database and the tables."""
        apply_origin(fresh_engine, with_rows=False)
        tenantkit.upgrade(fresh_engine)

        def only_ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
            return not (type_ == "table" and name == tenantkit.tables.VERSION_TABLE)

        with fresh_engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": only_ours}
            )
            assert compare_metadata(context, tenantkit.tables.metadata) == []

    @pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
    def test_postgresql_naive_timestamps_are_read_as_utc(self, fresh_database: ThrowawayDatabase) -> None:
        """``timestamp without time zone`` becomes ``timestamptz`` read as UTC, whatever the session zone."""
        engine = sa.create_engine(
            fresh_database.url, connect_args={"options": "-c timezone=America/New_York"}
        )
        try:
            apply_origin(engine)
            tenantkit.adopt(engine)
            with engine.connect() as connection:
                types: dict[str, str] = dict(
                    connection.exec_driver_sql(
                        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                        "WHERE column_name IN ('created_at', 'updated_at', 'expires', 'expires_at', "
                        "'last_used_at') AND table_schema = current_schema()"
                    ).all()
                )
                assert set(types.values()) == {"timestamp with time zone"}, types
                instant = connection.exec_driver_sql(
                    "SELECT extract(epoch FROM created_at) FROM team_members WHERE id = 'm1'"
                ).scalar_one()
                assert float(instant) == WRITTEN_AT_UTC.timestamp()
        finally:
            engine.dispose()

    @pytest.mark.parametrize("fresh_database", ["mariadb"], indirect=True)
    def test_mariadb_ids_become_exact(self, fresh_engine: sa.Engine) -> None:
        """Adopted MariaDB id, digest and address columns get a binary collation: case separates tenants."""
        apply_origin(fresh_engine)
        tenantkit.adopt(fresh_engine)
        with fresh_engine.connect() as connection:
            collations: dict[str, str] = dict(
                connection.exec_driver_sql(
                    "SELECT CONCAT(table_name, '.', column_name), collation_name "
                    "FROM information_schema.columns WHERE table_schema = DATABASE() "
                    "AND data_type = 'varchar' AND table_name IN ('team_members', 'api_keys', 'invitations')"
                ).all()
            )
            assert collations, "the origin tables have varchar columns"
            assert set(collations.values()) == {"utf8mb4_bin"}, collations
            upper = connection.execute(
                sa.select(sa.func.count())
                .select_from(tenantkit.tables.team_members)
                .where(tenantkit.tables.team_members.c.organization_id == "ORG_1")
            ).scalar_one()
            lower = connection.execute(
                sa.select(sa.func.count())
                .select_from(tenantkit.tables.team_members)
                .where(tenantkit.tables.team_members.c.organization_id == "org_1")
            ).scalar_one()
        assert (upper, lower) == (0, 2)

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_explicit_adopt_stamps_without_upgrading(self, fresh_engine: sa.Engine) -> None:
        """``tenantkit.adopt`` stamps the origin revision only, and a second call does nothing."""
        apply_origin(fresh_engine)
        result = tenantkit.adopt(fresh_engine)
        assert result.adopted
        assert result.from_revision is None
        assert result.to_revision == "0001"
        assert tenantkit.current_revision(fresh_engine) == "0001"
        assert not tenantkit.adopt(fresh_engine).adopted

    def test_adopt_on_an_empty_database_does_nothing(self, fresh_engine: sa.Engine) -> None:
        """Adopting a database that holds none of tenantkit's tables changes nothing."""
        result = tenantkit.adopt(fresh_engine)
        assert not result.changed
        assert tenantkit.current_revision(fresh_engine) is None

    def test_upgrade_without_adopt_refuses_to_take_over(self, fresh_engine: sa.Engine) -> None:
        """With ``adopt=False`` tenantkit does not take over existing tables; the rows stay."""
        apply_origin(fresh_engine)
        before = rows_of(fresh_engine)
        with pytest.raises(tenantkit.errors.SchemaConflictError) as info:
            tenantkit.upgrade(fresh_engine, adopt=False)
        assert "table team_members already exists and adoption is off" in info.value.conflicts
        assert rows_of(fresh_engine) == before
        assert tenantkit.current_revision(fresh_engine) is None


CONFLICTING_TEAM_MEMBERS = {
    "postgresql": "CREATE TABLE team_members (id serial PRIMARY KEY, org text, user_id text NOT NULL)",
    "mysql": "CREATE TABLE team_members (id int AUTO_INCREMENT PRIMARY KEY, org text, user_id text NOT NULL)",
    "sqlite": "CREATE TABLE team_members (id INTEGER PRIMARY KEY, org text, user_id text NOT NULL)",
}


class TestConflicts:
    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_a_hosts_own_team_members_table_is_refused_unchanged(self, fresh_engine: sa.Engine) -> None:
        """A host table named ``team_members`` with other columns is refused by name and stays as it was."""
        with fresh_engine.begin() as connection:
            connection.exec_driver_sql(CONFLICTING_TEAM_MEMBERS[fresh_engine.dialect.name])
            connection.exec_driver_sql("INSERT INTO team_members (org, user_id) VALUES ('acme', 'alice')")
        schema_before = schema_of(fresh_engine)

        with pytest.raises(tenantkit.errors.SchemaConflictError) as info:
            tenantkit.upgrade(fresh_engine)

        conflicts = info.value.conflicts
        assert "team_members.id is INTEGER, expected text" in conflicts
        assert "team_members.organization_id is missing" in conflicts
        assert "team_members.role is missing" in conflicts
        assert "team_members.org is not a column of tenantkit's team_members" in conflicts
        assert "team_members.user_id should be NOT NULL" not in conflicts
        assert "table api_keys is missing (the others of the origin schema exist)" in conflicts
        assert "index unique_team_user_idx on team_members is missing" in conflicts
        assert info.value.code == "schema_conflict"
        assert all(conflict in str(info.value) for conflict in conflicts)
        assert schema_of(fresh_engine) == schema_before
        with fresh_engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT org, user_id FROM team_members").all() == [
                ("acme", "alice")
            ]

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_an_origin_schema_with_drifted_columns_is_refused_unchanged(
        self, fresh_engine: sa.Engine
    ) -> None:
        """An origin schema whose columns or indexes drifted is refused, naming each drift, and left alone."""
        apply_origin(fresh_engine)
        with fresh_engine.begin() as connection:
            on_table = " ON invitations" if fresh_engine.dialect.name == "mysql" else ""
            connection.exec_driver_sql(f"DROP INDEX invitations_email_idx{on_table}")
            connection.exec_driver_sql("ALTER TABLE api_keys ADD COLUMN scopes text")
        schema_before = schema_of(fresh_engine)
        rows_before = rows_of(fresh_engine)

        with pytest.raises(tenantkit.errors.SchemaConflictError) as info:
            tenantkit.adopt(fresh_engine)

        assert set(info.value.conflicts) == {
            "api_keys.scopes is not a column of tenantkit's api_keys",
            "index invitations_email_idx on invitations is missing",
        }
        assert schema_of(fresh_engine) == schema_before
        assert rows_of(fresh_engine) == rows_before
        assert tenantkit.current_revision(fresh_engine) is None

    @pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
    def test_a_foreign_role_type_is_refused(self, fresh_engine: sa.Engine) -> None:
        """On PostgreSQL a ``role`` type with other values, left by someone else, is a conflict."""
        with fresh_engine.begin() as connection:
            connection.exec_driver_sql("CREATE TYPE role AS ENUM ('doctor', 'nurse')")
        with pytest.raises(tenantkit.errors.SchemaConflictError) as info:
            tenantkit.upgrade(fresh_engine)
        assert info.value.conflicts == (
            "type role already exists (values doctor, nurse) without tenantkit's tables",
        )
        assert sa.inspect(fresh_engine).get_table_names() == []
