"""``tenantkit members``: the host by default, ``--as USER`` bounded by that user's role, JSON, exit codes."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, MembershipService, Role, transaction
from tenantkit._cli import main


@pytest.fixture
def url(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    """The migrated SQLite database, given to every command through TENANTKIT_DATABASE_URL."""
    value = sqlite_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TENANTKIT_DATABASE_URL", value)
    return value


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["members", *args])


def roles(engine: sa.Engine, organization_id: str = "org_1") -> dict[str, Role]:
    with transaction(engine) as session:
        page = MembershipService().list_members(session, organization_id, actor=HOST)
    return {member.user_id: member.role for member in page.items}


@pytest.fixture
def seeded(url: str, sqlite_engine: sa.Engine) -> sa.Engine:
    with transaction(sqlite_engine) as session:
        service = MembershipService()
        service.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        service.add(session, "org_1", "bob", Role.MEMBER, actor=HOST)
    return sqlite_engine


class TestMembersCommands:
    def test_add_as_host_then_list(self, url: str, sqlite_engine: sa.Engine) -> None:
        """``add`` acts as the host by default; ``list`` prints a header row and one row per member."""
        first = run("add", "org_1", "alice", "--role", "owner")
        second = run("add", "org_1", "bob", "--as", "alice")
        assert (first.exit_code, second.exit_code) == (0, 0), (first.output, second.output)
        listing = run("list", "org_1")
        assert listing.exit_code == 0
        assert [line.split() for line in listing.stdout.splitlines()] == [
            ["ORGANIZATION", "USER", "ROLE"],
            ["org_1", "alice", "OWNER"],
            ["org_1", "bob", "MEMBER"],
        ]

    def test_json_pages(self, seeded: sa.Engine) -> None:
        """``--json`` prints the page; ``--cursor`` continues it."""
        first = json.loads(run("list", "org_1", "--limit", "1", "--json").stdout)
        assert [item["user_id"] for item in first["items"]] == ["alice"]
        second = json.loads(
            run("list", "org_1", "--limit", "1", "--cursor", first["next_cursor"], "--json").stdout
        )
        assert [item["user_id"] for item in second["items"]] == ["bob"]
        assert second["next_cursor"] is None

    def test_set_role_remove_orgs_transfer(self, seeded: sa.Engine) -> None:
        """Each changing command changes the database as the library call would."""
        assert run("set-role", "org_1", "bob", "ADMIN", "--as", "alice").exit_code == 0
        assert roles(seeded) == {"alice": Role.OWNER, "bob": Role.ADMIN}
        assert run("transfer", "org_1", "bob", "--as", "alice", "--demote-to", "MEMBER").exit_code == 0
        assert roles(seeded) == {"alice": Role.MEMBER, "bob": Role.OWNER}
        orgs = json.loads(run("orgs", "bob", "--json").stdout)
        assert [(item["organization_id"], item["role"]) for item in orgs["items"]] == [("org_1", "OWNER")]
        assert run("remove", "org_1", "alice", "--as", "bob").exit_code == 0
        assert roles(seeded) == {"bob": Role.OWNER}

    def test_acting_user_is_bounded(self, seeded: sa.Engine) -> None:
        """With ``--as``, a MEMBER is refused (exit 4, one error line) and nothing changes."""
        result = run("remove", "org_1", "alice", "--as", "bob")
        assert result.exit_code == 4
        assert result.stderr.splitlines()[-1].startswith("error [permission_denied]: ")
        assert "Traceback" not in result.output
        assert roles(seeded) == {"alice": Role.OWNER, "bob": Role.MEMBER}

    def test_last_owner_refused_even_for_host(self, seeded: sa.Engine) -> None:
        """The host cannot remove the last OWNER either; ``--json`` puts the error on stderr as JSON."""
        result = run("remove", "org_1", "alice", "--json")
        assert result.exit_code == 4
        assert json.loads(result.stderr)["error"]["code"] == "last_owner"

    def test_bad_input_is_usage_error(self, seeded: sa.Engine) -> None:
        """A malformed id exits 2 with a typed error; an unknown role is refused by the option itself."""
        result = run("add", "org_1", " padded ")
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1].startswith("error [invalid_input]: ")
        assert run("set-role", "org_1", "bob", "BOSS").exit_code == 2
        assert roles(seeded) == {"alice": Role.OWNER, "bob": Role.MEMBER}

    def test_transfer_as_host_needs_from(self, seeded: sa.Engine) -> None:
        """As the host, ``transfer`` must name the OWNER handing over."""
        assert run("transfer", "org_1", "bob").exit_code == 2
        assert run("transfer", "org_1", "bob", "--from", "alice").exit_code == 0
        assert roles(seeded) == {"alice": Role.ADMIN, "bob": Role.OWNER}
