"""``tenantkit keys``: a key's subject and limits at issue, the listing by subject, ``credits set|add`` and
``revoke-subject``, each with ``--json``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, MembershipService, Role
from tenantkit._cli import main
from tenantkit.api_keys import ClientInfo

THUMBPRINT = "ab" * 32


@pytest.fixture
def url(sqlite_engine: sa.Engine) -> str:
    return sqlite_engine.url.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TENANTKIT_API_KEY_PREFIX", "TENANTKIT_API_KEY_HASHER", "TENANTKIT_API_KEY_PEPPER"):
        monkeypatch.delenv(name, raising=False)


def run(url: str, *args: str) -> Result:
    """``tenantkit keys ARGS --url URL`` (the URL last, so that it reaches subcommands of ``credits``)."""
    return CliRunner().invoke(main, ["keys", *args, "--url", url])


def issued(url: str, *options: str) -> dict[str, Any]:
    result = run(url, "issue", "org_1", "robot", "--json", *options)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def reason(engine: sa.Engine, key: str, client: ClientInfo | None = None) -> str | None:
    """The verification's reason as the application sees it, or ``None`` when the key is valid."""
    service = ApiKeyService(membership=MembershipService())
    with Session(engine) as session:
        result = service.verify(session, key, client=client)
        session.commit()
    return result.reason


def add_member(engine: sa.Engine, user: str, role: Role) -> None:
    with Session(engine) as session:
        MembershipService().add(session, "org_1", user, role, actor=HOST)
        session.commit()


class TestIssue:
    def test_every_limit_and_binding_option(self, sqlite_engine: sa.Engine, url: str) -> None:
        """The subject, credits, refill, repeated rate limits and networks and the thumbprint reach the key,
        normalized, and the key is bound: refused from another network, accepted from an allowed one."""
        data = issued(
            url,
            "--subject-device", "SN-4711",
            "--credits", "5",
            "--refill", "100/month",
            "--rate-limit", "100/minute",
            "--rate-limit", "5000 per day",
            "--allow-cidr", "10.20.0.0/16",
            "--allow-cidr", "2001:db8::/32",
            "--thumbprint", THUMBPRINT.upper(),
        )  # fmt: skip
        assert data["api_key"]["subject"] == {"type": "device", "id": "SN-4711"}
        assert data["api_key"]["limits"] == {
            "credits": 5,
            "refill_amount": 100,
            "refill_period": "month",
            "rate_limits": ["100 per 1 minute", "5000 per 1 day"],
            "allowed_cidrs": ["10.20.0.0/16", "2001:db8::/32"],
            "certificate_sha256": THUMBPRINT,
        }
        outside = ClientInfo(address="192.0.2.1", certificate_thumbprint=THUMBPRINT)
        inside = ClientInfo(address="2001:db8::7", certificate_thumbprint=THUMBPRINT)
        assert reason(sqlite_engine, data["key"], outside) == "address_not_allowed"
        assert reason(sqlite_engine, data["key"], inside) is None

    def test_credits_run_out(self, sqlite_engine: sa.Engine, url: str) -> None:
        """A key issued with ``--credits 2`` verifies twice, then is ``usage_exceeded``."""
        key = issued(url, "--credits", "2")["key"]
        assert [reason(sqlite_engine, key) for _ in range(3)] == [None, None, "usage_exceeded"]

    def test_a_user_subject(self, sqlite_engine: sa.Engine, url: str) -> None:
        """``--subject-user`` names a member; a key for someone who is not one is refused (exit 2)."""
        add_member(sqlite_engine, "bob", Role.MEMBER)
        assert issued(url, "--subject-user", "bob")["api_key"]["subject"] == {"type": "user", "id": "bob"}
        result = run(url, "issue", "org_1", "robot", "--subject-user", "nobody")
        assert result.exit_code == 2, result.output
        assert "not a member" in result.stderr

    @pytest.mark.parametrize(
        ("options", "named"),
        [
            (["--credits", "-1"], "--credits"),
            (["--rate-limit", "lots"], "--rate-limit"),
            (["--allow-cidr", "10.0.0.0/33"], "--allow-cidr"),
            (["--thumbprint", "abc"], "--thumbprint"),
            (["--refill", "10/week"], "--refill"),
            (["--refill", "ten/day"], "--refill"),
            (["--subject-device", " SN"], "--subject-device"),
            (["--subject-user", "bob", "--subject-device", "SN"], "--subject-user"),
        ],
    )
    def test_bad_options_are_usage_errors(
        self, sqlite_engine: sa.Engine, url: str, options: list[str], named: str
    ) -> None:
        """A bad limit, refill, network, thumbprint or subject (or two subjects) is exit 2, naming the
        option, and no key is written."""
        result = run(url, "issue", "org_1", "robot", *options)
        assert result.exit_code == 2, result.output
        assert named in result.stderr
        assert json.loads(run(url, "list", "org_1", "--json").stdout)["items"] == []


class TestListBySubject:
    def test_the_listing_filters_and_shows_subject_and_credits(self, url: str) -> None:
        """``list --subject-device`` lists that device's keys; the table shows SUBJECT and CREDITS."""
        device = issued(url, "--subject-device", "SN-1", "--credits", "9", "--refill", "20/day")
        other = issued(url, "--subject-device", "SN-2")
        issued(url)
        listing = json.loads(run(url, "list", "org_1", "--subject-device", "SN-1", "--json").stdout)
        assert [item["id"] for item in listing["items"]] == [device["api_key"]["id"]]
        table = run(url, "list", "org_1")
        assert table.exit_code == 0, table.output
        header, *rows = table.stdout.splitlines()
        assert "SUBJECT" in header
        assert "CREDITS" in header
        (device_row,) = (row for row in rows if row.startswith(device["api_key"]["id"]))
        assert "device:SN-1" in device_row
        assert "9 (+20/day)" in device_row
        assert any(row.startswith(other["api_key"]["id"]) and "device:SN-2" in row for row in rows)
        assert device["key"] not in table.stdout


class TestCredits:
    def test_set_and_add(self, sqlite_engine: sa.Engine, url: str) -> None:
        """``credits set`` gives a plain key a limit; ``credits add`` adds, or takes away down to zero."""
        data = issued(url)
        key_id = data["api_key"]["id"]
        result = run(url, "credits", "set", "org_1", key_id, "--credits", "1")
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"{key_id} (robot): 1 credits left"
        added = run(url, "credits", "add", "org_1", key_id, "--credits", "4", "--json")
        assert json.loads(added.stdout)["limits"]["credits"] == 5
        taken = run(url, "credits", "add", "org_1", key_id, "--credits", "-9", "--json")
        assert json.loads(taken.stdout)["limits"]["credits"] == 0
        assert reason(sqlite_engine, data["key"]) == "usage_exceeded"

    def test_add_needs_a_limit_and_set_a_balance(self, url: str) -> None:
        """Adding to a key without credits names KEY_ID (exit 2); a negative balance names --credits."""
        key_id = issued(url)["api_key"]["id"]
        added = run(url, "credits", "add", "org_1", key_id, "--credits", "3")
        assert added.exit_code == 2, added.output
        assert "KEY_ID" in added.stderr
        assert "set_credits" in added.stderr
        negative = run(url, "credits", "set", "org_1", key_id, "--credits", "-3")
        assert negative.exit_code == 2, negative.output
        assert "--credits" in negative.stderr

    @pytest.mark.parametrize("command", ["set", "add"])
    def test_refused_and_unknown(self, sqlite_engine: sa.Engine, url: str, command: str) -> None:
        """A MEMBER acting with ``--as`` is refused (exit 4); another organization's key is not found."""
        add_member(sqlite_engine, "mia", Role.MEMBER)
        key_id = issued(url, "--credits", "3")["api_key"]["id"]
        refused = run(url, "credits", command, "org_1", key_id, "--credits", "7", "--as", "mia")
        assert refused.exit_code == 4, refused.output
        assert "error [permission_denied]" in refused.stderr
        unknown = run(url, "credits", command, "org_2", key_id, "--credits", "7", "--json")
        assert unknown.exit_code == 4, unknown.output
        assert json.loads(unknown.stderr)["error"]["code"] == "api_key_not_found"


class TestRevokeSubject:
    def test_every_key_of_the_device_stops(self, sqlite_engine: sa.Engine, url: str) -> None:
        """``revoke-subject --subject-device`` revokes that device's keys and prints their ids; other keys
        keep working; a second run revokes nothing."""
        first = issued(url, "--subject-device", "SN-1")
        second = issued(url, "--subject-device", "SN-1")
        other = issued(url, "--subject-device", "SN-2")
        result = run(url, "revoke-subject", "org_1", "--subject-device", "SN-1")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert lines[0] == "revoked 2 key(s) of device SN-1"
        assert sorted(lines[1:]) == sorted([first["api_key"]["id"], second["api_key"]["id"]])
        assert [reason(sqlite_engine, data["key"]) for data in (first, second, other)] == [
            "revoked",
            "revoked",
            None,
        ]
        again = run(url, "revoke-subject", "org_1", "--subject-device", "SN-1", "--json")
        assert json.loads(again.stdout) == {"revoked": []}

    def test_a_subject_is_required_and_a_member_refused(self, sqlite_engine: sa.Engine, url: str) -> None:
        """Without a subject: exit 2; a MEMBER acting with ``--as``: exit 4, and the keys still work."""
        add_member(sqlite_engine, "mia", Role.MEMBER)
        data = issued(url, "--subject-device", "SN-1")
        assert run(url, "revoke-subject", "org_1").exit_code == 2
        refused = run(url, "revoke-subject", "org_1", "--subject-device", "SN-1", "--as", "mia")
        assert refused.exit_code == 4, refused.output
        assert reason(sqlite_engine, data["key"]) is None
