"""``tenantkit db``: what scripts rely on — exit codes, JSON output, the default URL and the environment."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

import tenantkit
from tenantkit._cli import main
from tests.databases import ThrowawayDatabase
from tests.test_origin_document import apply_origin

UNREACHABLE = "postgresql+psycopg://user:hunter2@127.0.0.1:1/nothing"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke ``tenantkit`` with ``args``, keeping stdout and stderr apart."""
    return CliRunner().invoke(main, list(args), env=env)


def assert_clean_failure(result: Result, exit_code: int, code: str) -> None:
    """The command failed with ``exit_code``: one ``error [code]`` line on stderr, no traceback.

    The ``database: <URL>`` line that names the database used may come before it.
    """
    assert result.exit_code == exit_code, (result.stdout, result.stderr)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("database: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error [{code}]: ")


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty working directory with no database URL in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TENANTKIT_DATABASE_URL", raising=False)
    return tmp_path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


class TestUpgrade:
    def test_default_url_is_a_sqlite_file_in_the_working_directory(self, in_tmp: Path) -> None:
        """Without ``--url`` the tables go to ``tenantkit.sqlite3`` in the working directory."""
        result = run("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert (in_tmp / "tenantkit.sqlite3").exists()
        assert f"tenantkit tables at revision {tenantkit.head_revision()}" in result.stdout
        assert tenantkit.is_up_to_date(f"sqlite:///{in_tmp / 'tenantkit.sqlite3'}")

    def test_environment_variable_names_the_database(
        self, in_tmp: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``TENANTKIT_DATABASE_URL`` is used when ``--url`` is not given."""
        monkeypatch.setenv("TENANTKIT_DATABASE_URL", sqlite_url)
        assert run("db", "upgrade").exit_code == 0
        assert not (in_tmp / "tenantkit.sqlite3").exists()
        assert tenantkit.is_up_to_date(sqlite_url)

    def test_json_reports_what_was_applied(self, sqlite_url: str) -> None:
        """``--json`` prints the migration result: revisions applied the first time, none the second."""
        first = json.loads(run("db", "upgrade", "--url", sqlite_url, "--json").stdout)
        assert first == {
            "from_revision": None,
            "to_revision": tenantkit.head_revision(),
            "applied": first["applied"],
            "adopted": False,
        }
        assert first["applied"][0] == "0001"
        assert first["applied"][-1] == tenantkit.head_revision()
        second = json.loads(run("db", "upgrade", "--url", sqlite_url, "--json").stdout)
        assert second["applied"] == []

    def test_revision_option_stops_there(self, sqlite_url: str) -> None:
        """``--revision 0001`` migrates to the origin revision only."""
        assert run("db", "upgrade", "--url", sqlite_url, "--revision", "0001").exit_code == 0
        assert tenantkit.current_revision(sqlite_url) == "0001"

    def test_unknown_revision_is_a_usage_error(self, sqlite_url: str) -> None:
        """An unknown revision exits with 2 and creates nothing."""
        assert_clean_failure(
            run("db", "upgrade", "--url", sqlite_url, "--revision", "9999"), 2, "invalid_input"
        )

    def test_unreachable_server_exits_3_without_traceback(self) -> None:
        """A server that refuses connections exits with 3, one line, no password shown."""
        result = run("db", "upgrade", "--url", UNREACHABLE)
        assert_clean_failure(result, 3, "database_unavailable")
        assert "hunter2" not in result.output

    @pytest.mark.parametrize("url", ["not a url", "nosuchdb://host/db"])
    def test_bad_url_exits_3(self, url: str) -> None:
        """A malformed URL, or one naming an unknown database, exits with 3 and a clear line."""
        assert_clean_failure(run("db", "current", "--url", url), 3, "database_unavailable")

    @pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql"], indirect=True)
    def test_schema_conflict_exits_4_and_lists_it(self, fresh_database: ThrowawayDatabase) -> None:
        """A conflicting ``team_members`` table exits with 4, naming each conflict in the JSON error."""
        url = fresh_database.url.render_as_string(hide_password=False)
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE team_members (id INTEGER PRIMARY KEY, org TEXT)")
        engine.dispose()
        result = run("db", "upgrade", "--url", url, "--json")
        assert result.exit_code == 4
        error = json.loads(result.stderr)["error"]
        assert error["code"] == "schema_conflict"
        assert "team_members.org is not a column of tenantkit's team_members" in error["conflicts"]
        assert tenantkit.current_revision(url) is None

    def test_lock_not_granted_exits_4(self, sqlite_url: str) -> None:
        """When another writer holds the database past ``--lock-timeout``, upgrade exits with 4."""
        path = sqlite_url.removeprefix("sqlite:///")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            result = run("db", "upgrade", "--url", sqlite_url, "--lock-timeout", "0.2")
            assert_clean_failure(result, 4, "migration_lock_timeout")
        finally:
            other.execute("ROLLBACK")
            other.close()

    def test_non_positive_lock_timeout_is_a_usage_error(self, sqlite_url: str) -> None:
        """``--lock-timeout 0`` is refused by the option parser with exit code 2."""
        assert run("db", "upgrade", "--url", sqlite_url, "--lock-timeout", "0").exit_code == 2


class TestCheckAndCurrent:
    def test_check_exits_1_until_upgraded(self, sqlite_url: str) -> None:
        """``check`` exits 1 on an unmigrated database and 0 at head, with matching JSON."""
        behind = run("db", "check", "--url", sqlite_url, "--json")
        assert behind.exit_code == 1
        assert json.loads(behind.stdout) == {
            "current": None,
            "head": tenantkit.head_revision(),
            "up_to_date": False,
        }
        run("db", "upgrade", "--url", sqlite_url)
        ahead = run("db", "check", "--url", sqlite_url)
        assert ahead.exit_code == 0
        assert ahead.stdout == f"up to date at {tenantkit.head_revision()}\n"

    def test_check_on_unreachable_server_exits_3(self) -> None:
        """``check`` tells "cannot tell" (3) apart from "out of date" (1)."""
        assert_clean_failure(run("db", "check", "--url", UNREACHABLE), 3, "database_unavailable")

    def test_current_prints_none_then_the_revision(self, sqlite_url: str) -> None:
        """``current`` prints ``none`` before any migration and the revision after."""
        assert run("db", "current", "--url", sqlite_url).stdout == "none\n"
        run("db", "upgrade", "--url", sqlite_url, "--revision", "0001")
        assert run("db", "current", "--url", sqlite_url).stdout == "0001\n"
        data = json.loads(run("db", "current", "--url", sqlite_url, "--json").stdout)
        assert data == {"current": "0001", "head": tenantkit.head_revision()}


class TestDowngradeAndAdopt:
    def test_downgrade_to_base_removes_the_tables(self, sqlite_url: str) -> None:
        """``downgrade`` (to base by default) leaves no tenantkit table and reports what it undid."""
        run("db", "upgrade", "--url", sqlite_url)
        result = run("db", "downgrade", "--url", sqlite_url, "--json")
        assert result.exit_code == 0
        assert json.loads(result.stdout)["to_revision"] is None
        engine = sa.create_engine(sqlite_url)
        assert set(sa.inspect(engine).get_table_names()) == {tenantkit.tables.VERSION_TABLE}
        engine.dispose()

    def test_adopt_stamps_an_origin_database(self, sqlite_url: str) -> None:
        """``adopt`` stamps a database built by another tool at 0001, and says so."""
        engine = sa.create_engine(sqlite_url)
        apply_origin(engine)
        engine.dispose()
        result = run("db", "adopt", "--url", sqlite_url)
        assert result.exit_code == 0, result.output
        assert "adopted" in result.stdout
        assert tenantkit.current_revision(sqlite_url) == "0001"
        again = run("db", "adopt", "--url", sqlite_url)
        assert "already managed by tenantkit, at revision 0001" in again.stdout

    def test_no_adopt_refuses_existing_tables_with_4(self, sqlite_url: str) -> None:
        """``upgrade --no-adopt`` on a database built by another tool exits with 4 and stamps nothing."""
        engine = sa.create_engine(sqlite_url)
        apply_origin(engine)
        engine.dispose()
        assert_clean_failure(run("db", "upgrade", "--url", sqlite_url, "--no-adopt"), 4, "schema_conflict")
        assert tenantkit.current_revision(sqlite_url) is None

    def test_adopt_on_an_empty_database_says_there_is_nothing(self, sqlite_url: str) -> None:
        """``adopt`` on an empty database changes nothing and points at ``db upgrade``."""
        result = run("db", "adopt", "--url", sqlite_url)
        assert result.exit_code == 0
        assert "no tenantkit tables to adopt" in result.stdout


class TestSql:
    def test_prints_the_postgresql_script_by_default(self) -> None:
        """``sql`` prints PostgreSQL DDL, the role type included, without touching any database."""
        result = run("db", "sql")
        assert result.exit_code == 0
        assert "CREATE TYPE role AS ENUM" in result.stdout
        assert "CREATE TABLE team_members" in result.stdout

    @pytest.mark.parametrize("dialect", ["mysql", "mariadb", "sqlite"])
    def test_other_dialects(self, dialect: str) -> None:
        """Each supported dialect gets a script that creates the tables."""
        result = run("db", "sql", "--dialect", dialect)
        assert result.exit_code == 0
        assert "CREATE TABLE team_members" in result.stdout

    def test_unknown_dialect_or_revision_is_a_usage_error(self) -> None:
        """An unknown dialect or revision exits with 2."""
        assert run("db", "sql", "--dialect", "oracle").exit_code == 2
        assert_clean_failure(run("db", "sql", "--to", "9999"), 2, "invalid_input")

    def test_unknown_option_is_a_usage_error(self) -> None:
        """click's own usage errors exit with 2."""
        assert run("db", "upgrade", "--no-such-option").exit_code == 2
