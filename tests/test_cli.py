"""The command line as a whole: every command documents itself and follows the shared conventions."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from tenantkit._cli import main

UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:9/none"


def _leaves(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            yield (*path, name), command


LEAVES = list(_leaves(main))
IDS = [" ".join(path) for path, _ in LEAVES]


def test_every_group_is_registered() -> None:
    """The command groups exist: db, members, roles, keys, invites, departments, audit, settings, orgs,
    webhooks, domains and sso."""
    assert set(main.commands) == {
        "db", "members", "roles", "keys", "invites", "departments", "audit", "settings", "orgs", "webhooks",
        "domains", "sso",
    }  # fmt: skip


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=IDS)
def test_help_everywhere(path: tuple[str, ...], command: click.Command) -> None:
    """Every command answers ``--help`` with exit code 0 and a description."""
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert command.help, f"{' '.join(path)} has no help text"
    assert "Usage: " in result.output


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=IDS)
def test_database_commands_take_url_and_json(path: tuple[str, ...], command: click.Command) -> None:
    """Every command that touches a database takes ``--url`` (or the environment) and ``--json``."""
    options = {name for parameter in command.params for name in getattr(parameter, "opts", ())}
    if path == ("db", "sql"):
        assert "--url" not in options, "offline SQL needs no database"
        return
    assert "--url" in options
    assert "--json" in options


@pytest.mark.parametrize(
    "arguments",
    [
        ["db", "current"],
        ["members", "list", "org_1"],
        ["keys", "list", "org_1"],
        ["invites", "list", "org_1"],
    ],
    ids=lambda arguments: " ".join(arguments[:2]),
)
def test_unreachable_server_is_a_clear_error(arguments: list[str]) -> None:
    """An unreachable server exits 3 with one line naming the problem, and no traceback."""
    result = CliRunner().invoke(main, [*arguments, "--url", UNREACHABLE])
    assert result.exit_code == 3, result.output
    assert "database_unavailable" in result.output
    assert "Traceback" not in result.output


def test_python_dash_m() -> None:
    """``python -m tenantkit`` runs the same command line."""
    completed = subprocess.run(
        [sys.executable, "-m", "tenantkit", "--help"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert "Usage: tenantkit" in completed.stdout
