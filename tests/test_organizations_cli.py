"""``tenantkit settings`` and ``tenantkit orgs``: settings by version, and the end of an organization."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, MembershipService, Role, transaction
from tenantkit._cli import main
from tenantkit.tables import team_members


@pytest.fixture
def seeded(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """org_1 with alice (OWNER) and bob (MEMBER), the database given through TENANTKIT_DATABASE_URL."""
    monkeypatch.setenv("TENANTKIT_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    with transaction(sqlite_engine) as session:
        service = MembershipService()
        service.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        service.add(session, "org_1", "bob", Role.MEMBER, actor=HOST)
    return sqlite_engine


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_show_then_set_with_the_version(seeded: sa.Engine) -> None:
    """``settings set`` writes against ``--version``; values parse as JSON or stay text."""
    shown = json.loads(run("settings", "show", "org_1", "--json").stdout)
    assert shown["version"] == 0

    written = run(
        "settings", "set", "org_1", "require_sso=true", "invitation_max_ttl=3d", "--version", "0", "--json"
    )

    assert written.exit_code == 0, written.output
    document = json.loads(written.stdout)
    assert document["version"] == 1
    assert document["document"]["require_sso"] is True
    assert document["document"]["invitation_max_ttl"] == "P3D"
    human = run("settings", "show", "org_1")
    assert "* require_sso = true" in human.stdout


def test_a_stale_version_exits_4_with_one_line(seeded: sa.Engine) -> None:
    """A conflict is a refusal: exit code 4, the message on stderr, no traceback."""
    assert run("settings", "set", "org_1", "require_sso=true", "--version", "0").exit_code == 0

    stale = run("settings", "set", "org_1", "require_sso=false", "--version", "0")

    assert stale.exit_code == 4
    assert "version 1, not 0" in stale.stderr
    assert "Traceback" not in stale.output


def test_a_member_may_not_set(seeded: sa.Engine) -> None:
    """``--as`` bounds the command by that user's role: a MEMBER is refused."""
    refused = run("settings", "set", "org_1", "require_sso=true", "--version", "0", "--as", "bob")

    assert refused.exit_code == 4


def test_orgs_delete_and_erase_user(seeded: sa.Engine) -> None:
    """``orgs erase-user`` removes bob; ``orgs delete`` (confirmed with --yes) removes the rest."""
    erased = run("orgs", "erase-user", "bob", "--yes", "--json")
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout)["organizations"] == ["org_1"]

    deleted = run("orgs", "delete", "org_1", "--yes", "--purge-audit", "--json")

    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout)["rows"]["team_members"] == 1
    with seeded.connect() as connection:
        assert connection.execute(sa.select(team_members)).all() == []


def test_delete_asks_first(seeded: sa.Engine) -> None:
    """Without ``--yes`` the command asks, and a "no" deletes nothing."""
    declined = CliRunner().invoke(main, ["orgs", "delete", "org_1"], input="n\n")

    assert declined.exit_code != 0
    with seeded.connect() as connection:
        assert len(connection.execute(sa.select(team_members)).all()) == 2
