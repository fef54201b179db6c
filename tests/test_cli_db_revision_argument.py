"""``tenantkit db upgrade/downgrade REVISION``: the target revision spelled as Alembic spells it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import tenantkit
from tenantkit._cli import main


def run(*args: str) -> Result:
    """Invoke ``tenantkit`` with ``args``, keeping stdout and stderr apart."""
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def url(tmp_path: Path) -> str:
    """The URL of a SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def test_downgrade_base_as_an_argument_removes_the_tables(url: str) -> None:
    """``tenantkit db downgrade base`` (Alembic's own spelling) downgrades to base."""
    assert run("db", "upgrade", "--url", url).exit_code == 0
    result = run("db", "downgrade", "base", "--url", url)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("tenantkit tables at revision base\n")
    assert tenantkit.current_revision(url) is None


def test_upgrade_takes_the_revision_as_an_argument(url: str) -> None:
    """``tenantkit db upgrade 0001`` stops at 0001; a later bare ``upgrade`` goes on to head."""
    assert run("db", "upgrade", "0001", "--url", url).exit_code == 0
    assert tenantkit.current_revision(url) == "0001"
    assert run("db", "upgrade", "--url", url).exit_code == 0
    assert tenantkit.current_revision(url) == tenantkit.head_revision()


def test_relative_revisions_work_as_arguments(url: str) -> None:
    """``downgrade -1`` and ``upgrade +1`` step one revision, as with Alembic (not read as options)."""
    assert run("db", "upgrade", "0001", "--url", url).exit_code == 0
    if tenantkit.head_revision() != "0001":
        assert run("db", "upgrade", "+1", "--url", url).exit_code == 0
        assert tenantkit.current_revision(url) not in (None, "0001")
        assert run("db", "downgrade", "-1", "--url", url).exit_code == 0
        assert tenantkit.current_revision(url) == "0001"
    assert run("db", "downgrade", "-1", "--url", url).exit_code == 0
    assert tenantkit.current_revision(url) is None


def test_revision_option_keeps_working(url: str) -> None:
    """``--revision`` still names the target, for scripts written before the argument existed."""
    assert run("db", "upgrade", "--revision", "0001", "--url", url).exit_code == 0
    assert run("db", "downgrade", "--revision", "base", "--url", url).exit_code == 0
    assert tenantkit.current_revision(url) is None


@pytest.mark.parametrize("command", ["upgrade", "downgrade"])
def test_argument_and_option_that_disagree_are_a_usage_error(url: str, command: str) -> None:
    """Two different targets exit with 2 and change nothing; the same one twice is accepted."""
    result = run("db", command, "0001", "--revision", "base", "--url", url)
    assert result.exit_code == 2
    assert "--revision" in result.stderr
    assert tenantkit.current_revision(url) is None
    assert run("db", "upgrade", "0001", "--revision", "0001", "--url", url).exit_code == 0


def test_an_unknown_revision_argument_is_a_usage_error(url: str) -> None:
    """An argument that is no revision exits with 2, one line, and creates nothing."""
    result = run("db", "upgrade", "9999", "--url", url)
    assert result.exit_code == 2
    # One error line, below the "database: <URL>" line every command prints first.
    assert result.stderr.splitlines()[0].startswith("database: ")
    assert result.stderr.splitlines()[1].startswith("error [invalid_input]: REVISION: ")
    assert result.stderr.count("\n") == 2
    assert tenantkit.current_revision(url) is None
