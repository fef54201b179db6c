"""Bad database URLs, generated, against every command that takes ``--url``: one line, exit 3, no password.

Issue 18 §5: ``--url 'postgresql+psycopg://u:p@127.0.0.1:abc/db'`` printed a ``ValueError`` traceback and
exited 1. The URLs here are built from parts that are each wrong in a known way (no scheme, a port that is
not a number or out of range, an IPv6 host without its bracket, an unknown dialect or driver, a driver that
is not installed, an async driver, options the driver refuses, a raw ``@`` in the password, a closed port),
and every one must end in ``error [database_unavailable]: …`` on one line of stderr with exit code 3 and
no fragment of the password anywhere in the output.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tenantkit._cli import main
from tenantkit.api_keys._format import KeyFormat
from tests.test_cli import LEAVES

# Every command that opens a database, with the arguments and options that get it as far as the URL.
_EXTRA_OPTIONS: dict[tuple[str, ...], list[str]] = {
    ("invites", "create"): ["--email", "dave@acme.com"],
    ("members", "transfer"): ["--from", "alice"],
    ("audit", "purge"): ["--older-than", "30d"],
    ("audit", "redact"): ["--user", "alice"],
    ("settings", "set"): ["--version", "0"],
    ("roles", "create"): ["--name", "Billing", "--rank", "member"],
    ("orgs", "delete"): ["--yes"],
    ("orgs", "erase-user"): ["--yes"],
    ("webhooks", "create"): ["--event", "member.added"],
    ("webhooks", "recover"): ["--since", "2030-01-01T00:00:00"],
    ("webhooks", "deliveries"): ["--endpoint", "ep_1"],
    ("sso", "create"): ["--name", "Okta"],
    ("keys", "credits", "set"): ["--credits", "5"],
    ("keys", "credits", "add"): ["--credits", "5"],
    ("keys", "revoke-subject"): ["--subject-device", "SN-1"],
}
# Positional arguments that are not ids.
_POSITIONAL: dict[tuple[str, ...], list[str]] = {
    **{("domains", name): ["org_1", "example.com"] for name in ("add", "confirm", "remove", "verify")},
    ("webhooks", "create"): [
        "org_1",
        "https://93.184.216.34/tenantkit",
    ],  # a literal: no DNS before the database,
}
COMMANDS = dict(LEAVES)
URL_COMMANDS = [
    path
    for path, command in LEAVES
    if any("--url" in getattr(parameter, "opts", ()) for parameter in command.params)
]


def arguments_for(path: tuple[str, ...]) -> list[str]:
    """Plausible values for the positional arguments of the command at ``path``."""
    values = list(_POSITIONAL.get(path, []))
    for parameter in COMMANDS[path].params if not values else ():
        if isinstance(parameter, click.Argument) and parameter.required:
            choices = getattr(parameter.type, "choices", None)
            values.append(str(choices[0]) if choices else "org_1")
    return [*path, *values, *_EXTRA_OPTIONS.get(path, [])]


# A password made of pieces no message would contain by chance, so that any piece in the output is a leak.
password_pieces = st.from_regex(r"pw[qxzjk]{4,8}", fullmatch=True)
passwords = st.lists(password_pieces, min_size=1, max_size=2)

schemes = st.sampled_from(
    [
        "postgresql+psycopg",
        "mysql+pymysql",
        "postgresql",
        "mysql",
        "mariadb+pymysql",
        "postgresql+nodriver",  # unknown driver
        "nodialect",  # unknown dialect
        "postgresql+psycopg2",  # not installed, and no extra of ours provides it
        "mysql+mysqldb",
        "postgresql+asyncpg",
        "postgresql+psycopg_async",  # async where the CLI needs a synchronous driver
        "mysql+aiomysql",
    ]
)
hosts = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "[::1", "::1", ""])
ports = st.one_of(
    st.sampled_from(["", ":1", ":abc", ":99999", ":-1", ": 1", ":1.5", ":0x10"]),
    st.text(alphabet="0123456789abc:", max_size=6).map(lambda text: ":" + text),
)
queries = st.sampled_from(
    ["", "?foo=bar", "?charset=bogus", "?connect_timeout=abc", "?ssl_ca=/nonexistent", "?sslmode=bogus", "?"]
)


@st.composite
def bad_urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A URL that cannot work, and the password pieces it carries."""
    pieces = draw(passwords)
    joiner = draw(st.sampled_from(["@", ":", "/", "%40", "?", "#"]))
    raw_password = joiner.join(pieces)
    password = draw(st.sampled_from([raw_password, quote(raw_password, safe="")]))
    user = draw(st.sampled_from(["u", "root", "a@b", ""]))
    shape = draw(st.sampled_from(["server", "server", "server", "no scheme", "junk"]))
    if shape == "no scheme":
        return f"{user}:{password}@{draw(hosts)}{draw(ports)}/db", pieces
    if shape == "junk":
        text = draw(st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30))
        return f"{text}{password}{text}", pieces
    # Closed ports and refused options fail at once; no name is looked up in DNS.
    url = f"{draw(schemes)}://{user}:{password}@{draw(hosts)}{draw(ports)}/db{draw(queries)}"
    return url, pieces


# A well-formed key that was never issued: ``keys verify`` must ask the database about it.
WELL_FORMED_KEY = KeyFormat().generate()


def invoke(path: tuple[str, ...], url: str) -> Result:
    return CliRunner().invoke(
        main,
        [*arguments_for(path), "--url", url],
        input=WELL_FORMED_KEY + "\n",
        env={"TENANTKIT_INVITATION_SECRET": "s" * 40, "TENANTKIT_WEBHOOK_SECRET_KEYS": "w" * 40},
    )


def assert_refused_cleanly(result: Result, pieces: list[str]) -> None:
    """One ``error [database_unavailable]`` line, exit 3, no traceback, no piece of the password."""
    assert result.exit_code == 3, (result.exit_code, result.output, result.exception)
    # Besides the error there may be the line naming the database the command tried (password hidden).
    lines = [line for line in result.stderr.splitlines() if not line.startswith("database: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error [database_unavailable]: "), result.stderr
    assert "Traceback" not in result.output
    for piece in pieces:
        assert piece not in result.output, result.output


@pytest.mark.parametrize("path", URL_COMMANDS, ids=" ".join)
@settings(max_examples=12)
@given(case=bad_urls())
@example(case=("postgresql+psycopg://u:pwqxzjk@127.0.0.1:abc/db", ["pwqxzjk"]))  # the URL
@example(case=("postgresql+psycopg://u:pwqxzj@pwkkkk@127.0.0.1:1/db", ["pwqxzj", "pwkkkk"]))
@example(case=("mysql+pymysql://root:pwjjjj@127.0.0.1:3306/test?foo=bar", ["pwjjjj"]))
@example(case=("sqlite+aiosqlite:///pwzzzz.db", []))
def test_bad_urls(path: tuple[str, ...], case: tuple[str, list[str]]) -> None:
    """Every command answers every generated bad URL with one line and exit code 3, hiding the password."""
    url, pieces = case
    assert_refused_cleanly(invoke(path, url), pieces)


@pytest.mark.parametrize(
    ("module", "url", "extra"),
    [
        ("psycopg", "postgresql+psycopg://u:pwqqqq@127.0.0.1:1/db", "postgres"),
        ("pymysql", "mysql+pymysql://u:pwqqqq@127.0.0.1:1/db", "mysql"),
    ],
)
def test_missing_driver_names_the_extra(
    module: str, url: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver that is not installed is named with the extra that installs it."""
    monkeypatch.setitem(sys.modules, module, None)  # importing it now fails, as when it is not installed
    result = invoke(("db", "current"), url)
    assert_refused_cleanly(result, ["pwqqqq"])
    assert f'pip install "tenantkit[{extra}]"' in result.stderr


def test_sqlite_file_in_a_missing_directory(tmp_path: Path) -> None:
    """A SQLite file whose directory does not exist is the same clean refusal."""
    assert_refused_cleanly(invoke(("db", "current"), f"sqlite:///{tmp_path / 'missing' / 'x.db'}"), [])
