"""``tenantkit invites``: create by email or domain, list, revoke; as the host, or ``--as USER`` bounded."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, InvitationService, MembershipService, Role, transaction
from tenantkit._cli import main

KEYS = "old-signing-key-0123456789,new-signing-key-0123456789"


@pytest.fixture
def url(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    """The migrated SQLite database and the signing keys, given through the environment."""
    value = sqlite_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TENANTKIT_DATABASE_URL", value)
    monkeypatch.setenv("TENANTKIT_INVITATION_SECRET", KEYS)
    with transaction(sqlite_engine) as session:
        members = MembershipService()
        members.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        members.add(session, "org_1", "adam", Role.ADMIN, actor=HOST)
    return value


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["invites", *args])


class TestCreate:
    def test_email_invitation_prints_token_once(self, url: str, sqlite_engine: sa.Engine) -> None:
        """``create --email`` prints the invitation and a token that the application's keys verify."""
        result = run("create", "org_1", "--email", "Bob@Example.com", "--role", "admin", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["invitation"]["email"] == "bob@example.com"
        assert data["invitation"]["role"] == "ADMIN"
        assert data["invitation"]["invited_by"] is None
        service = InvitationService(membership=MembershipService(), secret_keys=KEYS.split(","))
        with transaction(sqlite_engine) as session:
            accepted = service.accept(
                session, data["token"], user_id="bob", email="bob@example.com", email_verified=True
            )
        assert accepted.role is Role.ADMIN

    def test_link_invitation_with_domains_uses_and_expiry(self, url: str) -> None:
        """``--domain`` (repeatable) makes a link with ``--max-uses`` and ``--expires-in``."""
        result = run(
            "create",
            "org_1",
            "--domain",
            "Example.com",
            "--domain",
            "*.corp.example",
            "--max-uses",
            "3",
            "--expires-in",
            "2d",
            "--accept-url",
            "https://app.example.com/invite?token={token}",
        )
        assert result.exit_code == 0, result.output
        header, row, *lines = result.stdout.splitlines()
        assert header.split() == ["ID", "KIND", "FOR", "ROLE", "EXPIRES", "USES"]
        assert row.split()[1:4] == ["link", "example.com,*.corp.example", "MEMBER"]
        assert row.endswith("0/3")
        assert lines[0].startswith("token: ")
        assert lines[1] == "accept URL: https://app.example.com/invite?token=" + lines[0].removeprefix(
            "token: "
        )

    def test_acting_user_is_bounded_by_role(self, url: str) -> None:
        """``--as adam`` (ADMIN) cannot invite an OWNER: exit 4 with the error code."""
        result = run("create", "org_1", "--email", "bob@example.com", "--role", "owner", "--as", "adam")
        assert result.exit_code == 4
        assert "role_escalation" in result.stderr

    def test_missing_secret_is_a_clear_error(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without TENANTKIT_INVITATION_SECRET, create refuses and names the variable."""
        monkeypatch.delenv("TENANTKIT_INVITATION_SECRET")
        result = run("create", "org_1", "--email", "bob@example.com")
        assert result.exit_code == 4
        assert "TENANTKIT_INVITATION_SECRET" in result.stderr

    @pytest.mark.parametrize(
        "args",
        [
            [],
            ["--email", "a@example.com", "--domain", "example.com"],
            ["--email", "a@example.com", "--max-uses", "2"],
            ["--email", "a@example.com", "--expires-in", "soon"],
            ["--email", "not-an-address"],
        ],
    )
    def test_bad_usage_exits_2(self, url: str, args: list[str]) -> None:
        """Neither or both of --email/--domain, --max-uses on email, a bad duration or address: exit 2."""
        result = run("create", "org_1", *args)
        assert result.exit_code == 2, result.output

    def test_public_domain_refused_unless_allowed(self, url: str) -> None:
        """gmail.com is refused by default and accepted with --allow-public-domain."""
        assert run("create", "org_1", "--domain", "gmail.com").exit_code == 4
        assert run("create", "org_1", "--domain", "gmail.com", "--allow-public-domain").exit_code == 0


class TestListAndRevoke:
    def test_list_never_shows_tokens_and_revoke_removes(self, url: str) -> None:
        """``list`` shows pending invitations without tokens; ``revoke`` takes one off the list."""
        created = json.loads(run("create", "org_1", "--email", "bob@example.com", "--json").stdout)
        run("create", "org_1", "--domain", "example.com")
        listing = run("list", "org_1", "--json")
        assert listing.exit_code == 0
        assert created["token"] not in listing.stdout
        assert len(json.loads(listing.stdout)["items"]) == 2
        revoked = run("revoke", "org_1", created["invitation"]["id"], "--as", "adam")
        assert revoked.exit_code == 0, revoked.output
        remaining = json.loads(run("list", "org_1", "--json").stdout)["items"]
        assert [item["kind"] for item in remaining] == ["link"]

    def test_list_works_without_secret(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """Listing issues no token, so it needs no signing key."""
        run("create", "org_1", "--email", "bob@example.com")
        monkeypatch.delenv("TENANTKIT_INVITATION_SECRET")
        result = run("list", "org_1")
        assert result.exit_code == 0
        assert "bob@example.com" in result.stdout

    def test_revoke_unknown_id_exits_4(self, url: str) -> None:
        """Revoking an id that is not in the organization is refused."""
        result = run("revoke", "org_1", "no-such-id")
        assert result.exit_code == 4
        assert "invitation_not_found" in result.stderr

    def test_member_cannot_list(self, url: str, sqlite_engine: sa.Engine) -> None:
        """``--as`` a MEMBER may not list invitations."""
        with transaction(sqlite_engine) as session:
            MembershipService().add(session, "org_1", "mia", Role.MEMBER, actor=HOST)
        assert run("list", "org_1", "--as", "mia").exit_code == 4
