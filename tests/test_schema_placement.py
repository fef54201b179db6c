"""tenantkit's objects in a PostgreSQL schema of the host's choosing, beside host objects of those names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import tenantkit
from tenantkit import (
    HOST,
    ApiKeySettings,
    DatabaseSettings,
    InvitationSettings,
    Role,
    SchemaOutOfDateError,
    TenantKit,
)
from tenantkit._cli import main
from tenantkit._db import RawQuery
from tenantkit._settings import Hasher
from tenantkit.errors import ConfigurationError, InvalidSettingError
from tenantkit.members._service import _ROLE_OF
from tenantkit.testing import FrozenClock
from tests.databases import ThrowawayDatabase, throwaway_database
from tests.test_migrations import revisions_in_order

SCHEMA = "tenantkit"
SECRET = "an-invitation-signing-key-of-32-chars"

# The host's own objects, named like tenantkit's, in public.
HOST_OBJECTS = (
    "CREATE TYPE role AS ENUM ('viewer', 'editor')",
    "CREATE TABLE api_keys (id serial PRIMARY KEY, token text NOT NULL, role role NOT NULL)",
    "CREATE TABLE invitations (id serial PRIMARY KEY, email text NOT NULL)",
    "INSERT INTO api_keys (token, role) VALUES ('host-token', 'viewer')",
    "INSERT INTO invitations (email) VALUES ('host@example.com')",
)


def _public_objects(connection: sa.Connection) -> dict[str, Any]:
    """What the host has in public: tables with their columns, the role type's values, and their rows."""
    inspector = sa.inspect(connection)
    return {
        "tables": {
            table: [column["name"] for column in inspector.get_columns(table, schema="public")]
            for table in inspector.get_table_names(schema="public")
        },
        "role": connection.exec_driver_sql(
            "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
            "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'role' AND n.nspname = 'public' "
            "ORDER BY e.enumsortorder"
        )
        .scalars()
        .all(),
        "api_keys": connection.exec_driver_sql("SELECT token, role::text FROM public.api_keys").all(),
        "invitations": connection.exec_driver_sql("SELECT email FROM public.invitations").all(),
    }


@pytest.fixture(scope="module")
def host_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayDatabase]:
    """A PostgreSQL database whose public schema holds the host's api_keys, invitations and role type."""
    with throwaway_database("postgresql", tmp_path_factory.mktemp("schema")) as database:
        engine = sa.create_engine(database.url)
        with engine.begin() as connection:
            for statement in HOST_OBJECTS:
                connection.exec_driver_sql(statement)
        engine.dispose()
        yield database


@pytest.fixture(scope="module")
def engine(host_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """An engine on ``host_database``, with tenantkit migrated into the ``tenantkit`` schema."""
    engine = sa.create_engine(host_database.url)
    with engine.connect() as connection:
        before = _public_objects(connection)
    result = tenantkit.upgrade(engine, schema=SCHEMA)
    assert result.applied == tuple(revisions_in_order())
    with engine.connect() as connection:
        assert _public_objects(connection) == before
    yield engine
    engine.dispose()


@pytest.fixture
def kit(engine: sa.Engine, clock: FrozenClock) -> TenantKit:
    """A kit whose services use the ``tenantkit`` schema."""
    return TenantKit(
        database=DatabaseSettings(schema_name=SCHEMA),
        invitations=InvitationSettings(secret_keys=[SECRET]),
        clock=clock,
    )


@pytest.fixture(autouse=True)
def _empty_tables(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "engine" in request.fixturenames:
        engine = request.getfixturevalue("engine")
        with engine.begin() as connection:
            for table in reversed(tenantkit.tables.metadata.sorted_tables):
                connection.execute(table.delete(), execution_options={"schema_translate_map": {None: SCHEMA}})


class TestMigratingIntoASchema:
    def test_objects_land_in_the_schema_and_the_hosts_stay_as_they_were(self, engine: sa.Engine) -> None:
        """Every table, the role type and the version table are in the schema; public is unchanged."""
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            assert set(inspector.get_table_names(schema=SCHEMA)) == {
                *tenantkit.tables.metadata.tables,
                tenantkit.tables.VERSION_TABLE,
            }
            assert set(inspector.get_table_names(schema="public")) == {"api_keys", "invitations"}
            schemas = connection.exec_driver_sql(
                "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE t.typname = 'role' ORDER BY 1"
            )
            assert schemas.scalars().all() == ["public", SCHEMA]
            assert connection.exec_driver_sql("SHOW search_path").scalar() == '"$user", public'

    def test_the_revision_is_read_from_the_schema(self, engine: sa.Engine) -> None:
        """The schema is at head; the default schema holds no tenantkit history."""
        assert tenantkit.current_revision(engine, schema=SCHEMA) == tenantkit.head_revision()
        assert tenantkit.is_up_to_date(engine, schema=SCHEMA)
        tenantkit.require_up_to_date(engine, schema=SCHEMA)
        assert tenantkit.current_revision(engine) is None

    def test_a_second_upgrade_does_nothing(self, engine: sa.Engine) -> None:
        """Upgrading the schema again finds it at head."""
        assert not tenantkit.upgrade(engine, schema=SCHEMA).changed

    def test_the_callers_connection_keeps_its_search_path(self, engine: sa.Engine) -> None:
        """Given the host's connection, the migration leaves its search_path as it found it."""
        with engine.connect() as connection:
            tenantkit.upgrade(connection, schema=SCHEMA)
            assert connection.exec_driver_sql("SHOW search_path").scalar() == '"$user", public'
            connection.rollback()

    def test_downgrade_and_upgrade_again_in_the_schema(self, host_database: ThrowawayDatabase) -> None:
        """A second schema migrates down to base and up again without touching public or the first."""
        other = sa.create_engine(host_database.url)
        try:
            tenantkit.upgrade(other, schema="second")
            assert tenantkit.downgrade(other, schema="second").to_revision is None
            with other.connect() as connection:
                assert sa.inspect(connection).get_table_names(schema="second") == [
                    tenantkit.tables.VERSION_TABLE
                ]
                assert set(sa.inspect(connection).get_table_names(schema="public")) == {
                    "api_keys",
                    "invitations",
                }
            assert tenantkit.upgrade(other, schema="second").applied == tuple(revisions_in_order())
            assert tenantkit.current_revision(other, schema=SCHEMA) == tenantkit.head_revision()
        finally:
            other.dispose()

    def test_offline_sql_sets_the_schema_first(self) -> None:
        """The DBA's script creates the schema and puts it on the search_path before any tenantkit DDL."""
        script = tenantkit.offline_sql("postgresql", schema=SCHEMA)
        assert script.startswith(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA};\n\nSET search_path TO {SCHEMA};\n")

    @pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
    def test_offline_sql_refuses_a_schema_elsewhere(self, dialect: str) -> None:
        """A schema is a PostgreSQL feature: other dialects get a configuration error."""
        with pytest.raises(ConfigurationError, match="PostgreSQL only"):
            tenantkit.offline_sql(dialect, schema=SCHEMA)

    def test_a_schema_on_sqlite_is_refused(self, tmp_path: Path) -> None:
        """Upgrading SQLite with a schema is a configuration error, and creates no table."""
        url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
        with pytest.raises(ConfigurationError, match="PostgreSQL only"):
            tenantkit.upgrade(url, schema=SCHEMA)
        assert tenantkit.current_revision(url) is None

    @pytest.mark.parametrize("name", ["1starts_with_digit", "has-dash", "has space", "x" * 64, ""])
    def test_a_malformed_schema_name_is_refused(self, name: str) -> None:
        """A schema name that is not a plain identifier is an invalid setting (never SQL)."""
        with pytest.raises(InvalidSettingError):
            tenantkit.offline_sql("postgresql", schema=name)
        with pytest.raises(InvalidSettingError):
            TenantKit(database=DatabaseSettings(schema_name=name))


class TestServicesInTheSchema:
    def test_every_service_works_in_the_schema(self, engine: sa.Engine, kit: TenantKit) -> None:
        """Membership, API keys and invitations all read and write tenantkit's tables in the schema."""
        with kit.transaction(engine) as session:
            kit.members.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            kit.members.add(session, "org_1", "admin", Role.MEMBER, actor="owner")
            kit.members.change_role(session, "org_1", "admin", Role.ADMIN, actor="owner")
            issued = kit.api_keys.issue(session, "org_1", "ci", actor="owner", scopes=["reports:read"])
            created = kit.invitations.create_email_invitation(
                session, "org_1", "new@example.com", Role.MEMBER, actor="admin"
            )
            link = kit.invitations.create_link_invitation(
                session, "org_1", ["example.org"], Role.MEMBER, actor="admin"
            )
        with kit.transaction(engine) as session:
            assert kit.members.get_role(session, "org_1", "admin") is Role.ADMIN
            assert [m.user_id for m in kit.members.list_members(session, "org_1", actor=HOST).items] == [
                "admin",
                "owner",
            ]
            assert [
                m.organization_id for m in kit.members.list_organizations(session, "owner", actor=HOST).items
            ] == ["org_1"]
            verification = kit.api_keys.verify(session, issued.reveal())
            assert verification.valid
            assert verification.key_id == issued.id
            assert [key.id for key in kit.api_keys.list_keys(session, "org_1", actor="admin").items] == [
                issued.id
            ]
            rotated = kit.api_keys.rotate(session, "org_1", issued.id, actor="owner")
            kit.api_keys.revoke(session, "org_1", issued.id, actor="owner")
            assert (
                kit.invitations.preview(session, created.token.get_secret_value()).organization_id == "org_1"
            )
            kit.invitations.accept(
                session,
                created.token.get_secret_value(),
                user_id="newcomer",
                email="new@example.com",
                email_verified=True,
            )
            assert [i.id for i in kit.invitations.list_pending(session, "org_1", actor="admin").items] == [
                link.invitation.id
            ]
            kit.invitations.revoke(session, "org_1", link.invitation.id, actor="admin")
            kit.members.transfer_ownership(session, "org_1", "admin", actor="owner")
            kit.members.remove(session, "org_1", "newcomer", actor="admin")
        with kit.transaction(engine) as session:
            assert kit.api_keys.verify(session, rotated.reveal()).valid
            assert not kit.api_keys.verify(session, issued.reveal()).valid
            assert kit.members.get_role(session, "org_1", "admin") is Role.OWNER
            assert kit.members.get_role(session, "org_1", "newcomer") is None
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM public.api_keys").scalar() == 1
            assert connection.exec_driver_sql("SELECT count(*) FROM public.invitations").scalar() == 1

    def test_a_schema_never_migrated_is_out_of_date(self, engine: sa.Engine) -> None:
        """A kit given a schema no migration created says "run tenantkit db upgrade", not a driver error."""
        kit = TenantKit(database=DatabaseSettings(schema_name="never_migrated"))
        with pytest.raises(SchemaOutOfDateError) as caught, kit.transaction(engine) as session:
            kit.members.list_members(session, "org_1", actor=HOST)
        assert caught.value.current is None
        with pytest.raises(SchemaOutOfDateError), kit.transaction(engine) as session:
            kit.members.get_role(session, "org_1", "user_1")
        with pytest.raises(SchemaOutOfDateError), kit.transaction(engine) as session:
            kit.api_keys.verify(session, kit.api_keys.format.generate())

    def test_the_version_table_of_the_schema_decides(self, host_database: ThrowawayDatabase) -> None:
        """A table missing from a schema at head keeps its driver error: public has no say in it."""
        other = sa.create_engine(host_database.url)
        try:
            tenantkit.upgrade(other, schema="damaged")
            with other.begin() as connection:
                connection.exec_driver_sql("DROP TABLE damaged.team_members")
            kit = TenantKit(database=DatabaseSettings(schema_name="damaged"))
            with pytest.raises(sa.exc.ProgrammingError), kit.transaction(other) as session:
                kit.members.list_members(session, "org_1", actor=HOST)
        finally:
            other.dispose()

    def test_without_the_schema_the_services_meet_the_hosts_tables(self, engine: sa.Engine) -> None:
        """A kit without the schema reads public, where tenantkit never migrated: the option separates."""
        kit = TenantKit()
        with pytest.raises(SchemaOutOfDateError), kit.transaction(engine) as session:
            kit.api_keys.list_keys(session, "org_1", actor=HOST)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every statement that goes through ``Connection.execute`` (the fast paths bypass it)."""
    seen: list[Any] = []
    original = sa.Connection.execute

    def spy(self: sa.Connection, statement: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(statement)
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(sa.Connection, "execute", spy)
    return seen


def _lookups(statements: list[Any]) -> list[Any]:
    lookup_statements = {query._statement for query in _lookup_queries()}
    return [statement for statement in statements if statement in lookup_statements or statement is _ROLE_OF]


def _lookup_queries() -> list[RawQuery]:
    from tenantkit.api_keys import _service

    return [*_service._RAW_BY_DIGEST.values(), _service._RAW_BY_ARGON2_ID]


class TestFastPathInTheSchema:
    @pytest.mark.parametrize("hasher", ["sha256", "argon2id"])
    def test_verification_takes_the_fast_path(
        self, engine: sa.Engine, clock: FrozenClock, statements: list[Any], hasher: Hasher
    ) -> None:
        """With a schema, key verification and the role lookup still run on the driver, in the schema."""
        kit = TenantKit(
            api_keys=ApiKeySettings(hasher=hasher, argon2_profile="CHEAPEST", track_last_used=False),
            database=DatabaseSettings(schema_name=SCHEMA),
            clock=clock,
        )
        with kit.transaction(engine) as session:
            kit.members.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            issued = kit.api_keys.issue(session, "org_1", "ci", actor="owner")
        statements.clear()
        with kit.transaction(engine) as session:
            assert kit.api_keys.verify(session, issued.reveal()).valid
            assert kit.members.get_role(session, "org_1", "owner") is Role.OWNER
        assert _lookups(statements) == []

    def test_a_translate_map_set_by_the_host_takes_the_fast_path_too(
        self, engine: sa.Engine, kit: TenantKit, statements: list[Any]
    ) -> None:
        """A host that maps tenantkit's tables itself, on its engine, keeps the fast path."""
        with kit.transaction(engine) as session:
            kit.members.add(session, "org_1", "owner", Role.OWNER, actor=HOST)
            issued = kit.api_keys.issue(session, "org_1", "ci", actor="owner")
        mapped = engine.execution_options(schema_translate_map={None: SCHEMA})
        plain = TenantKit(clock=kit.clock)
        statements.clear()
        with plain.transaction(mapped) as session:
            assert plain.api_keys.verify(session, issued.reveal()).valid
            assert plain.members.get_role(session, "org_1", "owner") is Role.OWNER
        assert _lookups(statements) == []

    def test_the_fast_path_sql_names_the_schema(self, engine: sa.Engine, kit: TenantKit) -> None:
        """The SQL the driver receives is qualified with the schema."""
        with kit.transaction(engine) as session:
            kit.api_keys.verify(session, "tk_live_" + "0" * 49)
            connection = session.connection()
            plan = _lookup_queries()[0].plan(connection.dialect, kit.members.schema_translate_map(connection))
        assert f"FROM {SCHEMA}.api_keys" in plan.sql


class TestTheCommandLine:
    def test_the_cli_migrates_and_reads_the_schema_from_the_environment(
        self, host_database: ThrowawayDatabase, engine: sa.Engine
    ) -> None:
        """TENANTKIT_DATABASE_SCHEMA places the CLI's migrations and reads, as it does the application's."""
        url = host_database.url.render_as_string(hide_password=False)
        env = {"TENANTKIT_DATABASE_URL": url, "TENANTKIT_DATABASE_SCHEMA": SCHEMA}
        runner = CliRunner()
        assert runner.invoke(main, ["db", "check"], env=env).exit_code == 0
        assert (
            runner.invoke(main, ["members", "add", "org_9", "u1", "--role", "OWNER"], env=env).exit_code == 0
        )
        listed = runner.invoke(main, ["members", "list", "org_9"], env=env)
        assert listed.exit_code == 0, listed.output
        assert "u1" in listed.stdout
        assert runner.invoke(main, ["db", "check"], env={"TENANTKIT_DATABASE_URL": url}).exit_code == 1
