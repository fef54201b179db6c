"""The command line as people meet it (issue 9, "CLI and HTTP polish").

Errors name flags and arguments as typed, ``--help`` carries no reST markup, roles show as they are
typed, listings have header rows, timestamps have one format, ``keys verify`` checks a key without it ever
appearing in argv or output, and ``db check --help`` lists every exit code.
"""

from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, ApiKeyService, MembershipService, Role, transaction
from tenantkit._cli import _common, keys, main
from tenantkit._tables import api_keys
from tests.test_cli import LEAVES

INVITATION_SECRET = "s" * 40
TIMESTAMP_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


def run(*args: str, url: str, stdin: str | None = None) -> Result:
    """Invoke ``tenantkit`` on ``url`` with the invitation signing key set."""
    return CliRunner().invoke(
        main, [*args, "--url", url], input=stdin, env={"TENANTKIT_INVITATION_SECRET": INVITATION_SECRET}
    )


@pytest.fixture
def url(sqlite_engine: sa.Engine) -> str:
    """The migrated SQLite database with org_1: alice OWNER, bob MEMBER."""
    with transaction(sqlite_engine) as session:
        service = MembershipService()
        service.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        service.add(session, "org_1", "bob", Role.MEMBER, actor=HOST)
    return sqlite_engine.url.render_as_string(hide_password=False)


def cli_names(path: tuple[str, ...]) -> set[str]:
    """The names a user types or reads for the command's parameters: ``--from``, ``ORGANIZATION``."""
    command = dict(LEAVES)[path]
    names = set()
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            names.update(parameter.opts)
        else:
            names.add((parameter.name or "").upper())
    return names


class TestFlagNamesInErrors:
    @pytest.mark.parametrize(
        ("arguments", "name"),
        [
            (["members", "transfer", "org_1", "bob"], "--from"),
            (["members", "add", "org_1 ", "carol"], "ORGANIZATION"),
            (["members", "add", "org_1", " carol"], "USER"),
            (["members", "add", "org_1", "carol", "--as", " alice"], "--as"),
            (["members", "orgs", "bob\t"], "USER"),
            (["members", "list", "org_1", "--cursor", "zz"], "--cursor"),
            (["keys", "issue", "org_1", "   "], "NAME"),
            (["keys", "issue", "org_1", "ci", "--expires", "2000-01-01"], "--expires"),
            (["keys", "issue", "org_1", "ci", "--scope", ""], "--scope"),
            (["keys", "revoke", "org_1", " k1"], "KEY_ID"),
            (["invites", "create", "org_1", "--email", "nope"], "--email"),
            (["invites", "create", "org_1", "--domain", "-x-"], "--domain"),
            (["invites", "create", "org_1", "--email", "a@acme.com", "--expires-in", "0s"], "--expires-in"),
            (["invites", "create", "org_1", "--email", "a@acme.com", "--max-uses", "2"], "--max-uses"),
            (["invites", "revoke", "org_1", "inv\x7f"], "INVITATION_ID"),
            (["db", "upgrade", "9999"], "REVISION"),
            (["db", "upgrade", "--revision", "9999"], "--revision"),
        ],
        ids=lambda value: " ".join(value) if isinstance(value, list) else value,
    )
    def test_errors_name_what_was_typed(self, url: str, arguments: list[str], name: str) -> None:
        """An invalid_input error names the flag or argument of the command, never a library parameter."""
        result = run(*arguments, url=url)
        assert result.exit_code == 2, result.output
        error_line = result.stderr.splitlines()[-1]  # after the "database: ..." line
        assert error_line.startswith(f"error [invalid_input]: {name}: "), result.stderr
        assert name in cli_names((arguments[0], arguments[1]))

    def test_json_errors_name_the_flag_too(self, url: str) -> None:
        """With --json the error's field is the flag as well."""
        result = run("members", "transfer", "org_1", "bob", "--json", url=url)
        assert json.loads(result.stderr)["error"]["field"] == "--from"


ALL_HELP = [(), *{path[:1] for path, _ in LEAVES}, *(path for path, _ in LEAVES)]


class TestHelp:
    @pytest.mark.parametrize("path", ALL_HELP, ids=lambda path: " ".join(path) or "tenantkit")
    def test_no_rest_markup(self, path: tuple[str, ...]) -> None:
        """No ``literal``, `role`, :role:`x` or directive reaches a --help page."""
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0
        assert "`" not in result.output
        assert not re.search(r":[a-z]+:|^\s*\.\. ", result.output, re.MULTILINE), result.output

    @pytest.mark.parametrize(
        "path",
        [path for path, command in LEAVES if any(p.name in {"role", "demote_to"} for p in command.params)],
        ids=" ".join,
    )
    def test_roles_are_shown_as_typed(self, path: tuple[str, ...]) -> None:
        """Role options list OWNER|ADMIN|MEMBER, the spelling of their defaults and of every output."""
        result = CliRunner().invoke(main, [*path, "--help"])
        assert "OWNER|ADMIN|MEMBER" in result.output
        assert "owner|" not in result.output

    @pytest.mark.parametrize("path", [("db", "check"), ()], ids=["db check", "tenantkit"])
    def test_every_exit_code_is_listed(self, path: tuple[str, ...]) -> None:
        """``db check --help`` (and the root help) lists 0 and every EXIT_* code the CLI uses."""
        constants = vars(_common).items()
        codes = {0} | {
            value for name, value in constants if name.startswith("EXIT_") and isinstance(value, int)
        }
        output = CliRunner().invoke(main, [*path, "--help"]).output
        listed = {int(number) for number in re.findall(r"^\s+(\d)\s{2}\S", output, re.MULTILINE)}
        assert listed == codes


class TestRoles:
    def test_any_case_is_accepted(self, url: str) -> None:
        """``--role admin`` works and the role comes out as ADMIN."""
        result = run("members", "add", "org_1", "carol", "--role", "admin", url=url)
        assert result.exit_code == 0, result.output
        assert result.stdout == "added carol to org_1 as ADMIN\n"

    def test_unknown_role_lists_the_choices(self, url: str) -> None:
        """An unknown role (neither a rank nor a custom role) is a usage error that names the ranks."""
        result = run("members", "add", "org_1", "carol", "--role", "king", url=url)
        assert result.exit_code == 2
        assert "expected OWNER, ADMIN, MEMBER or a custom role's key" in result.stderr


def issue_key(url: str, *options: str) -> str:
    result = run("keys", "issue", "org_1", "deploy", *options, url=url)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


class TestListings:
    @pytest.mark.parametrize(
        ("arguments", "header"),
        [
            (["members", "list", "org_1"], ["ORGANIZATION", "USER", "ROLE"]),
            (["members", "orgs", "alice"], ["ORGANIZATION", "USER", "ROLE"]),
            (
                ["keys", "list", "org_1"],
                ["ID", "START", "NAME", "STATE", "EXPIRES", "LAST", "USED", "SCOPES", "SUBJECT", "CREDITS"],
            ),
            (["invites", "list", "org_1"], ["ID", "KIND", "FOR", "ROLE", "EXPIRES", "USES"]),
        ],
        ids=lambda value: " ".join(value[:2]),
    )
    def test_header_rows(self, url: str, arguments: list[str], header: list[str]) -> None:
        """Each text listing starts with a header row, then one aligned row per item."""
        issue_key(url)
        assert run("invites", "create", "org_1", "--email", "dave@acme.com", url=url).exit_code == 0
        lines = run(*arguments, url=url).stdout.splitlines()
        assert lines[0].split() == header
        assert len(lines) >= 2
        starts = [
            match.start() for match in re.finditer(r"(?<!\S)\S", lines[0].replace("LAST USED", "LAST_USED"))
        ]
        for line in lines[1:]:
            assert all(position == 0 or line[position - 2 : position] == "  " for position in starts), line

    def test_one_timestamp_format(self, url: str) -> None:
        """Text listings print timestamps exactly as the JSON output does: ISO 8601 UTC with Z."""
        issue_key(url, "--expires", "2100-01-01T01:30:00+01:00")
        assert run("invites", "create", "org_1", "--email", "dave@acme.com", url=url).exit_code == 0
        key = json.loads(run("keys", "list", "org_1", "--json", url=url).stdout)["items"][0]
        invitation = json.loads(run("invites", "list", "org_1", "--json", url=url).stdout)["items"][0]
        assert key["expires_at"] == "2100-01-01T00:30:00Z"
        assert key["expires_at"] in run("keys", "list", "org_1", url=url).stdout
        assert TIMESTAMP_FORMAT.fullmatch(invitation["expires_at"])
        assert invitation["expires_at"] in run("invites", "list", "org_1", url=url).stdout

    @pytest.mark.parametrize("spelling", ["2100-01-01T00:00:00Z", "2100-01-01T00:00:00", "2100-01-01"])
    def test_timestamp_options_read_that_format(self, url: str, spelling: str) -> None:
        """``--expires`` reads the printed format; a time without a zone is UTC."""
        issue_key(url, "--expires", spelling)
        listed = json.loads(run("keys", "list", "org_1", "--json", url=url).stdout)["items"][0]
        assert listed["expires_at"] == "2100-01-01T00:00:00Z"

    def test_a_bad_timestamp_is_a_usage_error(self, url: str) -> None:
        """A time that is not ISO 8601 is refused by click, naming --expires."""
        result = run("keys", "issue", "org_1", "ci", "--expires", "tomorrow", url=url)
        assert result.exit_code == 2
        assert "--expires" in result.stderr


class TestKeysVerify:
    def test_the_key_never_comes_from_argv(self) -> None:
        """``keys verify`` takes no argument and no option that could carry the key."""
        command = dict(LEAVES)[("keys", "verify")]
        assert not [parameter for parameter in command.params if isinstance(parameter, click.Argument)]
        assert {parameter.name for parameter in command.params} == {
            "url",
            "as_json",
            "organization",
            "scopes",
        }

    def test_valid_key(self, engine: sa.Engine) -> None:
        """A valid key from stdin: exit 0, the verdict and metadata, never the key; not marked as used."""
        url = engine.url.render_as_string(hide_password=False)
        assert run("members", "add", "org_1", "alice", "--role", "owner", url=url).exit_code == 0
        key = issue_key(url, "--scope", "reports:read")
        result = run("keys", "verify", "--scope", "reports:read", url=url, stdin=key + "\n")
        assert result.exit_code == 0, result.output
        verdict, header, row = result.stdout.splitlines()
        assert verdict == "valid"
        assert header.split()[:4] == ["ORGANIZATION", "ID", "START", "NAME"]
        assert row.split()[0] == "org_1"
        assert "deploy" in row.split()
        assert key not in result.output
        with engine.connect() as connection:
            assert connection.execute(sa.select(api_keys.c.last_used_at)).scalar_one() is None

    @pytest.mark.parametrize(
        ("options", "reason"),
        [
            ((), "revoked"),
            (("--organization", "org_2"), "unknown"),
            (("--scope", "admin:all"), "missing_scope"),
        ],
    )
    def test_refused_key(self, url: str, options: tuple[str, ...], reason: str) -> None:
        """A refused key exits 1 with the reason; the JSON says the same, and neither shows the key."""
        key = issue_key(url)
        if reason == "revoked":
            key_id = json.loads(run("keys", "list", "org_1", "--json", url=url).stdout)["items"][0]["id"]
            assert run("keys", "revoke", "org_1", key_id, url=url).exit_code == 0
        result = run("keys", "verify", *options, "--json", url=url, stdin=key)
        assert result.exit_code == 1
        data: dict[str, Any] = json.loads(result.stdout)
        assert (data["valid"], data["reason"]) == (False, reason)
        assert key not in result.output
        text = run("keys", "verify", *options, url=url, stdin=key)
        assert text.exit_code == 1
        assert text.stdout.startswith("invalid: ")
        assert key not in text.output

    def test_malformed_key(self, url: str) -> None:
        """Junk is ``invalid: malformed`` and is not echoed."""
        result = run("keys", "verify", url=url, stdin="tk_live_not-a-key-pwqxzj\n")
        assert (result.exit_code, result.stdout) == (1, "invalid: malformed\n")
        assert "pwqxzj" not in result.output

    def test_no_key(self, url: str) -> None:
        """Empty input is a usage error, not a verdict."""
        result = run("keys", "verify", url=url, stdin="")
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1].startswith("error [invalid_input]: key: ")

    def test_a_terminal_gets_a_hidden_prompt(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """At a terminal the key is asked for with echo off, on stderr."""
        asked: dict[str, Any] = {}

        def prompt(text: str, **options: Any) -> str:
            asked.update(options, text=text)
            return " tk_live_typed \n"

        class Terminal(io.StringIO):
            def isatty(self) -> bool:
                return True

        monkeypatch.setattr(sys, "stdin", Terminal())
        monkeypatch.setattr(click, "prompt", prompt)
        assert keys._read_key() == "tk_live_typed"
        assert asked == {"text": "API key", "hide_input": True, "err": True}


def test_verify_agrees_with_the_library(url: str, sqlite_engine: sa.Engine) -> None:
    """What ``keys verify`` says about a key is what ApiKeyService.verify says."""
    key = issue_key(url)
    with transaction(sqlite_engine) as session:
        expected = ApiKeyService(membership=MembershipService()).verify(session, key)
    data = json.loads(run("keys", "verify", "--json", url=url, stdin=key).stdout)
    assert (data["valid"], data["api_key"]["id"]) == (expected.valid, expected.key_id)
