"""Which database a ``tenantkit`` command uses, and that it says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tenantkit._cli import main
from tenantkit._settings import ENVIRONMENT_VARIABLES

READ_ONLY_COMMANDS = (
    ("db", "check"),
    ("db", "current"),
    ("members", "list", "org_1"),
    ("members", "orgs", "user_1"),
    ("keys", "list", "org_1"),
    ("invites", "list", "org_1"),
)


@pytest.fixture(autouse=True)
def _empty_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TENANTKIT_* variable from the developer's shell, in an empty working directory."""
    for variable in ENVIRONMENT_VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    monkeypatch.chdir(tmp_path)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


class TestNoDatabaseNamed:
    @pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=" ".join)
    def test_read_only_commands_refuse_and_create_nothing(self, command: tuple[str, ...]) -> None:
        """Without --url, TENANTKIT_DATABASE_URL or ./tenantkit.sqlite3, a read-only command exits 2."""
        result = run(*command)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error [invalid_input]: --url: no database given")
        assert "TENANTKIT_DATABASE_URL" in result.stderr
        assert "Traceback" not in result.output
        assert list(Path().iterdir()) == []

    @pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=" ".join)
    def test_read_only_commands_use_an_existing_default_file(self, command: tuple[str, ...]) -> None:
        """Once ./tenantkit.sqlite3 exists (created by ``db upgrade``), read-only commands read it."""
        assert run("db", "upgrade").exit_code == 0
        result = run(*command)
        assert result.exit_code == 0, result.output
        assert "database: sqlite:///tenantkit.sqlite3" in result.stderr

    def test_a_writing_command_creates_the_default_file_and_says_so(self) -> None:
        """``db upgrade`` without a URL migrates ./tenantkit.sqlite3 and names it on stderr."""
        result = run("db", "upgrade")
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines()[0] == "database: sqlite:///tenantkit.sqlite3"
        assert Path("tenantkit.sqlite3").exists()


class TestTheDatabaseUsedIsNamed:
    def test_the_url_option_is_named_with_its_password_hidden(self) -> None:
        """The database line hides the password, also when the server cannot be reached."""
        result = run("db", "check", "--url", "postgresql+psycopg://app:hunter2-secret@127.0.0.1:1/nothing")
        assert result.exit_code == 3
        assert result.stderr.splitlines()[0] == "database: postgresql+psycopg://app:***@127.0.0.1:1/nothing"
        assert "hunter2-secret" not in result.output

    def test_the_environment_variable_is_read(self, tmp_path: Path) -> None:
        """TENANTKIT_DATABASE_URL names the database when --url is not given."""
        url = f"sqlite:///{tmp_path / 'from-env.sqlite3'}"
        assert run("db", "upgrade", env={"TENANTKIT_DATABASE_URL": url}).exit_code == 0
        result = run("db", "current", env={"TENANTKIT_DATABASE_URL": url})
        assert result.exit_code == 0
        assert result.stderr.splitlines()[0] == f"database: {url}"

    def test_dot_env_is_read(self, tmp_path: Path) -> None:
        """TENANTKIT_DATABASE_URL in ./.env names the database too, as it does for the application."""
        url = f"sqlite:///{tmp_path / 'from-dotenv.sqlite3'}"
        Path(".env").write_text(f"TENANTKIT_DATABASE_URL={url}\n")
        assert run("db", "upgrade").exit_code == 0
        assert (tmp_path / "from-dotenv.sqlite3").exists()
        assert not Path("tenantkit.sqlite3").exists()

    def test_the_option_wins_over_the_environment(self, tmp_path: Path) -> None:
        """--url is used even when TENANTKIT_DATABASE_URL names another database."""
        chosen = f"sqlite:///{tmp_path / 'chosen.sqlite3'}"
        result = run(
            "db", "upgrade", "--url", chosen, env={"TENANTKIT_DATABASE_URL": "sqlite:///other.sqlite3"}
        )
        assert result.exit_code == 0
        assert result.stderr.splitlines()[0] == f"database: {chosen}"
        assert not Path("other.sqlite3").exists()

    def test_json_output_keeps_stderr_for_the_error_alone(self) -> None:
        """With --json, stderr holds only the error object, for scripts to parse."""
        result = run("db", "check", "--json", "--url", "postgresql+psycopg://app:pw@127.0.0.1:1/nothing")
        assert result.exit_code == 3
        assert result.stderr.startswith('{"error": ')

    def test_an_invalid_setting_is_named(self) -> None:
        """A malformed TENANTKIT_* variable fails the command with the variable's name, exit 4."""
        result = run("db", "upgrade", env={"TENANTKIT_DATABASE_SCHEMA": "no spaces please"})
        assert result.exit_code == 4
        assert result.stderr.startswith("error [invalid_setting]: TENANTKIT_DATABASE_SCHEMA: ")
