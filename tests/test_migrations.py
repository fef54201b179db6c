"""tenantkit's embedded migrations: the Python API, the schema they build, downgrades, and life beside a host.

Tests here are generic over whatever the head revision is: they walk the script directory rather than
naming revisions after 0001.
"""

from __future__ import annotations

import contextlib
import sqlite3
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

import tenantkit
from tenantkit import _migrations
from tests.databases import ThrowawayDatabase
from tests.test_host_alembic_recipe import HOST_REVISION

ALL = ["sqlite", "postgresql", "mariadb"]
ORIGIN_INDEXES = {
    "team_members_organization_id_idx",
    "team_members_user_id_idx",
    "unique_team_user_idx",
    "invitations_organization_id_idx",
    "invitations_email_idx",
    "unique_team_email_idx",
    "invitations_token_idx",
    "api_keys_organization_id_idx",
    "api_keys_hashed_key_idx",
}


def revisions_in_order() -> list[str]:
    """Every revision tenantkit ships, oldest first."""
    script = ScriptDirectory.from_config(_migrations.alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


def pg_types(connection: sa.Connection) -> dict[str, tuple[str, ...]]:
    """PostgreSQL enum types in the current schema and their labels."""
    rows = connection.execute(
        sa.text(
            "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
            "WHERE t.typnamespace = to_regnamespace(current_schema())::oid "
            "ORDER BY t.typname, e.enumsortorder"
        )
    ).all()
    types: dict[str, tuple[str, ...]] = {}
    for name, label in rows:
        types[name] = (*types.get(name, ()), label)
    return types


def snapshot(bind: sa.Engine | sa.Connection) -> dict[str, Any]:
    """Everything about a database's schema a migration can change, as comparable plain data."""
    connection_cm = bind.connect() if isinstance(bind, sa.Engine) else None
    connection = connection_cm if connection_cm is not None else bind
    assert isinstance(connection, sa.Connection)
    try:
        inspector = sa.inspect(connection)
        dialect = connection.dialect
        tables: dict[str, Any] = {}
        for table in sorted(inspector.get_table_names()):
            tables[table] = {
                "columns": [
                    (
                        column["name"],
                        str(column["type"].compile(dialect=dialect)),
                        column["nullable"],
                        str(column.get("default")),
                    )
                    for column in inspector.get_columns(table)
                ],
                "pk": inspector.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                    for index in inspector.get_indexes(table)
                ),
                "unique": sorted(
                    (constraint["name"], tuple(constraint["column_names"]))
                    for constraint in inspector.get_unique_constraints(table)
                ),
                "checks": sorted(str(check.get("name")) for check in inspector.get_check_constraints(table)),
            }
        result: dict[str, Any] = {"tables": tables}
        if dialect.name == "postgresql":
            result["types"] = pg_types(connection)
        return result
    finally:
        if connection_cm is not None:
            connection_cm.close()


def version_rows(engine: sa.Engine) -> list[str]:
    """The rows of tenantkit's version table."""
    with engine.connect() as connection:
        return list(
            connection.execute(sa.text(f"SELECT version_num FROM {tenantkit.tables.VERSION_TABLE}")).scalars()
        )


@pytest.fixture
def fresh_engine(fresh_database: ThrowawayDatabase) -> Any:
    """An engine on the empty database of ``fresh_database``'s dialect."""
    engine = sa.create_engine(fresh_database.url)
    yield engine
    engine.dispose()


class TestMigratedSchemaEqualsTables:
    def test_compare_metadata_reports_nothing(self, engine: sa.Engine) -> None:
        """Alembic's comparison (types included) finds nothing between the migrated schema and the tables."""

        def only_ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
            return not (type_ == "table" and name == tenantkit.tables.VERSION_TABLE)

        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": only_ours}
            )
            assert compare_metadata(context, tenantkit.tables.metadata) == []

    def test_compare_metadata_can_see_a_difference(self, sqlite_engine: sa.Engine) -> None:
        """The comparison above is not blind: a column missing from the database is reported."""
        extra = sa.MetaData()
        for table in tenantkit.tables.metadata.tables.values():
            table.to_metadata(extra)
        sa.Table("team_members", extra, sa.Column("nickname", sa.Text()), extend_existing=True)
        with sqlite_engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs = compare_metadata(context, extra)
        assert any(diff[0] == "add_column" and diff[3].name == "nickname" for diff in diffs)


class TestUpgrade:
    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_upgrade_reports_the_revisions_it_applied(self, fresh_engine: sa.Engine) -> None:
        """A first upgrade applies every revision in order; a second one applies none."""
        first = tenantkit.upgrade(fresh_engine)
        assert first.from_revision is None
        assert first.applied == tuple(revisions_in_order())
        assert first.to_revision == tenantkit.head_revision()
        assert first.changed
        second = tenantkit.upgrade(fresh_engine)
        assert second.applied == ()
        assert not second.changed
        assert version_rows(fresh_engine) == [tenantkit.head_revision()]
        assert tenantkit.is_up_to_date(fresh_engine)

    def test_url_string_and_url_object_are_accepted(self, fresh_database: ThrowawayDatabase) -> None:
        """A URL given as text or as a ``URL`` works like an engine."""
        text_url = fresh_database.url.render_as_string(hide_password=False)
        assert tenantkit.upgrade(text_url, "0001").to_revision == "0001"
        assert tenantkit.current_revision(fresh_database.url) == "0001"

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_connection_works_in_the_callers_transaction(self, fresh_engine: sa.Engine) -> None:
        """Given a connection in a transaction, tenantkit migrates in it, kept by the caller's commit."""
        with fresh_engine.connect() as connection:
            connection.begin()
            result = tenantkit.upgrade(connection)
            assert connection.in_transaction()
            assert tenantkit.current_revision(connection) == tenantkit.head_revision()
            connection.commit()
        assert result.to_revision == tenantkit.head_revision()
        assert tenantkit.is_up_to_date(fresh_engine)

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_connection_without_a_transaction_gets_tenantkits_own_committed(
        self, fresh_engine: sa.Engine
    ) -> None:
        """Given a connection with no transaction open, tenantkit commits its own and leaves none open."""
        with fresh_engine.connect() as connection:
            result = tenantkit.upgrade(connection)
            assert not connection.in_transaction()
            assert tenantkit.is_up_to_date(fresh_engine)  # seen from another connection: committed
            assert tenantkit.current_revision(connection) == tenantkit.head_revision()
            assert not connection.in_transaction()
            assert tenantkit.downgrade(connection, "base").to_revision is None
            assert not connection.in_transaction()
        assert result.to_revision == tenantkit.head_revision()
        assert tenantkit.current_revision(fresh_engine) is None

    @pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
    def test_connection_rollback_undoes_the_migration(self, fresh_engine: sa.Engine) -> None:
        """On PostgreSQL (transactional DDL) a caller who rolls back is left with no tenantkit schema."""
        with fresh_engine.connect() as connection:
            connection.begin()
            tenantkit.upgrade(connection)
            connection.rollback()
        assert tenantkit.current_revision(fresh_engine) is None
        with fresh_engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
            assert pg_types(connection) == {}

    def test_require_up_to_date_fires_until_upgraded(self, fresh_engine: sa.Engine) -> None:
        """``require_up_to_date`` raises on an unmigrated or behind database and passes at head."""
        with pytest.raises(tenantkit.SchemaOutOfDateError) as info:
            tenantkit.require_up_to_date(fresh_engine)
        assert info.value.current is None
        assert info.value.head == tenantkit.head_revision()
        tenantkit.upgrade(fresh_engine, "0001")
        if tenantkit.head_revision() != "0001":
            with pytest.raises(tenantkit.SchemaOutOfDateError):
                tenantkit.require_up_to_date(fresh_engine)
        tenantkit.upgrade(fresh_engine)
        tenantkit.require_up_to_date(fresh_engine)

    def test_a_database_from_a_newer_tenantkit_is_refused(self, fresh_engine: sa.Engine) -> None:
        """A version row naming a revision this tenantkit does not ship is refused, changing nothing."""
        tenantkit.upgrade(fresh_engine)
        with fresh_engine.begin() as connection:
            connection.exec_driver_sql(f"UPDATE {tenantkit.tables.VERSION_TABLE} SET version_num = '9999'")
        before = snapshot(fresh_engine)
        for call in (tenantkit.upgrade, tenantkit.downgrade):
            with pytest.raises(tenantkit.errors.SchemaConflictError) as info:
                call(fresh_engine)
            assert "revision 9999" in str(info.value)
            assert "newer tenantkit" in str(info.value)
        assert snapshot(fresh_engine) == before
        assert version_rows(fresh_engine) == ["9999"]

    def test_relative_revisions_step_and_overshooting_is_invalid_input(self, fresh_engine: sa.Engine) -> None:
        """``+1`` and ``-1`` move one revision; moving past either end is refused, changing nothing."""
        first, *_ = revisions_in_order()
        assert tenantkit.upgrade(fresh_engine, "+1").applied == (first,)
        assert tenantkit.downgrade(fresh_engine, "-1").applied == (first,)
        with pytest.raises(tenantkit.InvalidInputError):
            tenantkit.downgrade(fresh_engine, "-1")
        with pytest.raises(tenantkit.InvalidInputError):
            tenantkit.upgrade(fresh_engine, f"+{len(revisions_in_order()) + 1}")
        assert tenantkit.current_revision(fresh_engine) is None

    def test_unknown_revision_is_invalid_input(self, fresh_engine: sa.Engine) -> None:
        """An unknown revision is refused before any database work."""
        with pytest.raises(tenantkit.InvalidInputError):
            tenantkit.upgrade(fresh_engine, "9999")
        with pytest.raises(tenantkit.InvalidInputError):
            tenantkit.downgrade(fresh_engine, "9999")
        assert sa.inspect(fresh_engine).get_table_names() == []

    def test_non_positive_lock_timeout_is_invalid_input(self, fresh_engine: sa.Engine) -> None:
        """A lock timeout of zero or less is a usage error, not a silent no-wait."""
        with pytest.raises(tenantkit.InvalidInputError):
            tenantkit.upgrade(fresh_engine, lock_timeout=0)

    def test_unreachable_server_is_a_typed_error(self) -> None:
        """A refusing server raises ``DatabaseUnavailableError`` naming the URL but not the password."""
        with pytest.raises(tenantkit.errors.DatabaseUnavailableError) as info:
            tenantkit.upgrade("postgresql+psycopg://user:hunter2@127.0.0.1:1/nothing")
        assert "hunter2" not in str(info.value)
        assert info.value.url is not None
        assert "127.0.0.1:1" in info.value.url

    def test_malformed_url_is_a_typed_error(self) -> None:
        """A URL SQLAlchemy cannot parse, or with an unknown driver, raises ``DatabaseUnavailableError``."""
        for url in ("not a url", "nosuchdb://x/y"):
            with pytest.raises(tenantkit.errors.DatabaseUnavailableError):
                tenantkit.current_revision(url)


class TestDowngrade:
    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_every_revision_steps_up_and_down(self, fresh_engine: sa.Engine) -> None:
        """Walking up one revision at a time and back down restores each earlier schema exactly."""
        script = ScriptDirectory.from_config(_migrations.alembic_config())
        before: list[dict[str, Any]] = []
        for revision in revisions_in_order():
            before.append(snapshot(fresh_engine))
            result = tenantkit.upgrade(fresh_engine, revision)
            assert result.applied == (revision,)
            assert tenantkit.current_revision(fresh_engine) == revision
        for revision in reversed(revisions_in_order()):
            down = script.get_revision(revision).down_revision
            target = down if isinstance(down, str) else "base"
            result = tenantkit.downgrade(fresh_engine, target)
            assert result.applied == (revision,)
            # Alembic's version table outlives base (empty); every other object is restored exactly.
            after = snapshot(fresh_engine)
            after["tables"].pop(tenantkit.tables.VERSION_TABLE, None)
            expected = before.pop()
            expected["tables"].pop(tenantkit.tables.VERSION_TABLE, None)
            assert after == expected
        assert tenantkit.current_revision(fresh_engine) is None

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_base_removes_exactly_the_rollback_list(self, fresh_engine: sa.Engine) -> None:
        """Downgrade to base drops the nine indexes, three tables and role type, and nothing of the host's."""
        with fresh_engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE host_widgets (id INTEGER PRIMARY KEY, role VARCHAR(20))")
            connection.exec_driver_sql("CREATE INDEX host_widgets_role_idx ON host_widgets (role)")
            connection.exec_driver_sql("INSERT INTO host_widgets (id, role) VALUES (1, 'OWNER')")
        empty = snapshot(fresh_engine)
        tenantkit.upgrade(fresh_engine)
        migrated = snapshot(fresh_engine)
        assert set(migrated["tables"]) >= {"team_members", "api_keys", "invitations", "host_widgets"}
        index_names = {i[0] for t in migrated["tables"].values() for i in t["indexes"] + t["unique"]}
        assert index_names >= ORIGIN_INDEXES

        result = tenantkit.downgrade(fresh_engine, "base")

        assert result.to_revision is None
        after = snapshot(fresh_engine)
        # Alembic keeps its (now empty) version table; everything else is exactly as before tenantkit.
        assert version_rows(fresh_engine) == []
        del after["tables"][tenantkit.tables.VERSION_TABLE]
        assert after == empty
        with fresh_engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT role FROM host_widgets").scalar_one() == "OWNER"
            if connection.dialect.name == "postgresql":
                assert "role" not in pg_types(connection)

    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_upgrade_after_downgrade_works_again(self, fresh_engine: sa.Engine) -> None:
        """The enum-type trap: after downgrade to base, upgrade recreates everything, twice over."""
        for _ in range(2):
            tenantkit.upgrade(fresh_engine)
            with fresh_engine.begin() as connection:
                connection.execute(
                    tenantkit.tables.team_members.insert().values(
                        organization_id="o", user_id="u", role="OWNER"
                    )
                )
            tenantkit.downgrade(fresh_engine, "base")
        tenantkit.upgrade(fresh_engine)
        assert tenantkit.is_up_to_date(fresh_engine)

    def test_downgrade_of_an_unmigrated_database_does_nothing(self, fresh_engine: sa.Engine) -> None:
        """Downgrading a database tenantkit never touched changes nothing and says so."""
        result = tenantkit.downgrade(fresh_engine, "base")
        assert not result.changed
        assert sa.inspect(fresh_engine).get_table_names() == []


class TestOfflineSql:
    def test_postgresql_creates_the_type_and_all_nine_indexes(self) -> None:
        """The PostgreSQL script creates the role enum, every table and each index under its origin name."""
        script = tenantkit.offline_sql("postgresql")
        assert "CREATE TYPE role AS ENUM ('OWNER', 'ADMIN', 'MEMBER')" in script
        for table in ("team_members", "api_keys", "invitations", tenantkit.tables.VERSION_TABLE):
            assert f"CREATE TABLE {table}" in script
        for index in ORIGIN_INDEXES:
            assert f"INDEX {index} ON" in script
        assert f"INSERT INTO {tenantkit.tables.VERSION_TABLE}" in script
        assert script.strip().endswith("COMMIT;")

    @pytest.mark.parametrize("dialect", ["mysql", "mariadb"])
    def test_mysql_family_scripts_exist(self, dialect: str) -> None:
        """MySQL and MariaDB get scripts in their own dialect, with the version table maintained."""
        script = tenantkit.offline_sql(dialect)
        assert "DATETIME(6)" in script
        assert (
            f"UPDATE {tenantkit.tables.VERSION_TABLE} SET version_num='{tenantkit.head_revision()}'" in script
        )

    def test_sqlite_script_builds_the_online_schema(self, tmp_path: Path, fresh_engine: sa.Engine) -> None:
        """Applying the SQLite script to an empty database gives exactly the online upgrade's schema."""
        path = tmp_path / "offline.sqlite3"
        # sqlite3's own context manager commits but does not close; closing() does both.
        with contextlib.closing(sqlite3.connect(path)) as raw:
            raw.executescript(tenantkit.offline_sql("sqlite"))
        offline = sa.create_engine(f"sqlite:///{path}")
        tenantkit.upgrade(fresh_engine)
        try:
            assert snapshot(offline) == snapshot(fresh_engine)
            assert tenantkit.current_revision(offline) == tenantkit.head_revision()
        finally:
            offline.dispose()

    def test_a_span_starts_from_the_given_revision(self) -> None:
        """``from_revision`` leaves out what the database already has."""
        script = tenantkit.offline_sql("postgresql", "0001")
        assert "CREATE TYPE role" not in script

    def test_unknown_dialect_is_invalid_input(self) -> None:
        """A dialect tenantkit writes no SQL for is refused."""
        with pytest.raises(tenantkit.InvalidInputError):
            tenantkit.offline_sql("oracle")


class TestLockInProcess:
    def test_mysql_lock_name_is_per_database_and_short_enough(self) -> None:
        """GET_LOCK names differ per database and fit MySQL's 64-character limit."""
        names = {_migrations.mysql_lock_name(name) for name in ("app", "other", "x" * 64)}
        assert len(names) == 3
        assert all(name.startswith("tenantkit_migrations:") and len(name) <= 64 for name in names)

    def test_postgresql_key_is_derived_from_the_name(self) -> None:
        """The advisory lock key is a fixed signed 64-bit number derived from "tenantkit"."""
        import hashlib

        digest = hashlib.sha256(b"tenantkit").digest()[:8]
        assert int.from_bytes(digest, "big", signed=True) == _migrations.LOCK_KEY
        assert 0 < _migrations.LOCK_KEY < 2**63  # lock_is_held() below relies on a positive key

    @pytest.mark.parametrize("fresh_database", ["postgresql", "mariadb"], indirect=True)
    def test_held_lock_makes_upgrade_time_out_changing_nothing(self, fresh_engine: sa.Engine) -> None:
        """While another session holds the lock, upgrade gives up with the typed error, migrating nothing."""
        with fresh_engine.connect() as holder:
            hold_lock(holder)
            with pytest.raises(tenantkit.errors.MigrationLockTimeoutError) as info:
                tenantkit.upgrade(fresh_engine, lock_timeout=0.3)
            assert info.value.timeout == 0.3
            assert info.value.code == "migration_lock_timeout"
        assert sa.inspect(fresh_engine).get_table_names() == []

    @pytest.mark.parametrize("fresh_database", ["postgresql", "mariadb"], indirect=True)
    def test_held_lock_also_guards_a_callers_connection(self, fresh_engine: sa.Engine) -> None:
        """Given the caller's connection, upgrade takes the same lock and times out the same way."""
        with fresh_engine.connect() as holder:
            hold_lock(holder)
            with fresh_engine.connect() as connection:
                with pytest.raises(tenantkit.errors.MigrationLockTimeoutError):
                    tenantkit.upgrade(connection, lock_timeout=0.3)
                connection.rollback()
            release_lock(holder)
        with fresh_engine.connect() as connection:
            tenantkit.upgrade(connection, lock_timeout=5)
            connection.commit()
        assert tenantkit.is_up_to_date(fresh_engine)

    @pytest.mark.parametrize("fresh_database", ["postgresql", "mariadb"], indirect=True)
    def test_lock_is_released_after_success_and_failure(self, fresh_engine: sa.Engine) -> None:
        """No session holds the lock after an upgrade, nor after one refused with a schema conflict."""
        tenantkit.upgrade(fresh_engine)
        assert not lock_is_held(fresh_engine)
        tenantkit.downgrade(fresh_engine, "base")
        with fresh_engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE team_members (id INTEGER PRIMARY KEY)")
        with pytest.raises(tenantkit.errors.SchemaConflictError):
            tenantkit.upgrade(fresh_engine)
        assert not lock_is_held(fresh_engine)

    def test_sqlite_write_lock_makes_upgrade_time_out(self, fresh_database: ThrowawayDatabase) -> None:
        """On SQLite, another writer's open transaction makes upgrade give up with the typed error."""
        path = fresh_database.url.database
        assert path is not None
        engine = sa.create_engine(fresh_database.url)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(tenantkit.errors.MigrationLockTimeoutError):
                tenantkit.upgrade(engine, lock_timeout=0.2)
            other.execute("ROLLBACK")
            assert tenantkit.upgrade(engine).to_revision == tenantkit.head_revision()
        finally:
            other.close()
            engine.dispose()

    @pytest.mark.parametrize("fresh_database", ["postgresql", "mariadb"], indirect=True)
    def test_upgrade_waits_for_the_lock_then_migrates(self, fresh_engine: sa.Engine) -> None:
        """An upgrade started while the lock is held blocks on it (seen by the server) and finishes after."""
        results: list[Any] = []
        with fresh_engine.connect() as holder:
            hold_lock(holder)
            worker = threading.Thread(target=lambda: results.append(tenantkit.upgrade(fresh_engine)))
            worker.start()
            wait_until_someone_waits(holder)
            assert sa.inspect(fresh_engine).get_table_names() == []
            release_lock(holder)
        worker.join()
        assert results[0].applied == tuple(revisions_in_order())
        assert tenantkit.is_up_to_date(fresh_engine)


def hold_lock(connection: sa.Connection) -> None:
    """Take tenantkit's migration lock on ``connection``, as another instance mid-migration would."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _migrations.LOCK_KEY})
    else:
        got = connection.execute(
            sa.text("SELECT GET_LOCK(:n, 1)"), {"n": mysql_lock_name(connection)}
        ).scalar()
        assert got == 1
    connection.commit()


def mysql_lock_name(connection: sa.Connection) -> str:
    """The GET_LOCK name tenantkit uses for the database ``connection`` is on."""
    return _migrations.mysql_lock_name(connection.execute(sa.text("SELECT DATABASE()")).scalar())


def lock_is_held(engine: sa.Engine) -> bool:
    """Whether any session holds tenantkit's migration lock, as the server sees it."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            held = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                # pg_locks splits a bigint key into two unsigned halves; this fixed key is positive.
                {"k": _migrations.LOCK_KEY},
            ).scalar_one()
            return bool(held)
        holder = connection.execute(
            sa.text("SELECT IS_USED_LOCK(:n)"), {"n": mysql_lock_name(connection)}
        ).scalar()
        return holder is not None


def release_lock(connection: sa.Connection) -> None:
    """Release what :func:`hold_lock` took."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _migrations.LOCK_KEY})
    else:
        connection.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": mysql_lock_name(connection)})
    connection.commit()


def wait_until_someone_waits(connection: sa.Connection) -> None:
    """Block until the server shows a session waiting for tenantkit's lock (bounded, to fail not hang)."""
    if connection.dialect.name == "postgresql":
        query = sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    else:
        query = sa.text(
            "SELECT count(*) FROM information_schema.PROCESSLIST "
            "WHERE STATE = 'User lock' AND DB = DATABASE()"
        )
    event = threading.Event()
    for _ in range(600):
        if connection.execute(query).scalar_one() > 0:
            connection.commit()
            return
        connection.commit()
        event.wait(0.05)
    pytest.fail("no session ever waited for the migration lock")


class TestBesideAHost:
    @pytest.mark.parametrize("fresh_database", ALL, indirect=True)
    def test_host_history_and_tables_stay_untouched(self, fresh_engine: sa.Engine) -> None:
        """A host's ``alembic_version`` row and its tables survive tenantkit's upgrade and downgrade."""
        with fresh_engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
            connection.exec_driver_sql("INSERT INTO alembic_version VALUES ('hostrev42')")
            connection.exec_driver_sql("CREATE TABLE widgets (id INTEGER PRIMARY KEY, name VARCHAR(20))")
            connection.exec_driver_sql("INSERT INTO widgets VALUES (1, 'sprocket')")
        tenantkit.upgrade(fresh_engine)
        tenantkit.downgrade(fresh_engine, "base")
        tenantkit.upgrade(fresh_engine)
        with fresh_engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [
                ("hostrev42",)
            ]
            assert connection.exec_driver_sql("SELECT id, name FROM widgets").all() == [(1, "sprocket")]
        assert version_rows(fresh_engine) == [tenantkit.head_revision()]

    def test_include_object_keeps_tenantkit_out_of_host_autogenerate(self, sqlite_engine: sa.Engine) -> None:
        """With ``include_object`` host autogenerate ignores tenantkit's tables; without, it drops them."""
        host = sa.MetaData()
        sa.Table("widgets", host, sa.Column("id", sa.Integer, primary_key=True))
        with sqlite_engine.begin() as connection:
            host.create_all(connection)
            try:
                hooked = MigrationContext.configure(
                    connection, opts={"compare_type": True, "include_object": tenantkit.tables.include_object}
                )
                assert compare_metadata(hooked, host) == []
                bare = MigrationContext.configure(connection, opts={"compare_type": True})
                dropped = {diff[1].name for diff in compare_metadata(bare, host) if diff[0] == "remove_table"}
                assert {"team_members", "api_keys", "invitations", tenantkit.tables.VERSION_TABLE} <= dropped
            finally:
                host.drop_all(connection)

    def test_upgrade_runs_inside_a_host_env_py(self, tmp_path: Path, fresh_engine: sa.Engine) -> None:
        """A host's own Alembic ``env.py`` can run tenantkit's upgrade, then its own history, unharmed."""
        scripts = tmp_path / "host_migrations"
        (scripts / "versions").mkdir(parents=True)
        (scripts / "env.py").write_text(
            textwrap.dedent(
                """
                from alembic import context
                import tenantkit

                connection = context.config.attributes["connection"]
                tenantkit.upgrade(connection)
                context.configure(connection=connection, include_object=tenantkit.tables.include_object)
                with context.begin_transaction():
                    context.run_migrations()
                """
            )
        )
        (scripts / "script.py.mako").write_text("")
        (scripts / "versions" / "h1_widgets.py").write_text(HOST_REVISION)
        config = Config()
        config.set_main_option("script_location", str(scripts))
        with fresh_engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        with fresh_engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "h1"
            assert "widgets" in sa.inspect(connection).get_table_names()
        assert tenantkit.is_up_to_date(fresh_engine)
