"""``tenantkit keys``: issue, list, revoke and rotate from the command line."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, MembershipService, Role
from tenantkit._cli import main
from tenantkit.tables import api_keys

PEPPER = "a pepper of at least sixteen bytes"


@pytest.fixture
def url(sqlite_engine: sa.Engine) -> str:
    return sqlite_engine.url.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TENANTKIT_API_KEY_PREFIX",
        "TENANTKIT_API_KEY_HASHER",
        "TENANTKIT_API_KEY_PEPPER",
        "TENANTKIT_API_KEY_PEPPER_VERSION",
        "TENANTKIT_API_KEY_OLD_PEPPERS",
    ):
        monkeypatch.delenv(name, raising=False)


def run(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["keys", *args[:1], "--url", url, *args[1:]], env=env)


def verify(engine: sa.Engine, key: str, service: ApiKeyService | None = None) -> str | None:
    """The verification's reason, or None when the key is valid."""
    service = service or ApiKeyService(membership=MembershipService())
    with Session(engine) as session:
        result = service.verify(session, key)
        session.commit()
    return result.reason


class TestIssue:
    def test_prints_the_key_once(self, sqlite_engine: sa.Engine, url: str) -> None:
        """issue prints the key alone on stdout, a warning on stderr, and the key verifies."""
        result = run(url, "issue", "org_1", "deploy", "--scope", "reports:read", "--expires-in", "30d")
        assert result.exit_code == 0, result.output
        key = result.stdout.strip()
        assert result.stdout.count("\n") == 1
        assert key.startswith("tk_live_")
        assert key not in result.stderr
        assert "shown this once" in result.stderr
        assert verify(sqlite_engine, key) is None

    def test_json(self, sqlite_engine: sa.Engine, url: str) -> None:
        """--json prints the key and its metadata; the expiry given as an ISO time is taken as UTC."""
        result = run(url, "issue", "org_1", "deploy", "--expires", "2100-01-01T00:00:00", "--json")
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["api_key"]["expires_at"] == "2100-01-01T00:00:00Z"
        assert data["api_key"]["start"] == data["key"][:12]
        assert verify(sqlite_engine, data["key"]) is None

    @pytest.mark.parametrize("duration", ["0d", "12", "3w", "-1h"])
    def test_bad_duration(self, url: str, duration: str) -> None:
        """A malformed --expires-in is a usage error (exit 2)."""
        assert run(url, "issue", "org_1", "ci", "--expires-in", duration).exit_code == 2

    def test_as_member_refused(self, sqlite_engine: sa.Engine, url: str) -> None:
        """A MEMBER acting with --as may not issue keys: exit 4 and a permission_denied line."""
        with Session(sqlite_engine) as session:
            MembershipService().add(session, "org_1", "mia", Role.MEMBER, actor=HOST)
            session.commit()
        result = run(url, "issue", "org_1", "ci", "--as", "mia")
        assert result.exit_code == 4
        assert result.stderr.splitlines()[-1].startswith("error [permission_denied]")

    def test_pepper_from_environment(self, sqlite_engine: sa.Engine, url: str) -> None:
        """With TENANTKIT_API_KEY_PEPPER the key is stored under that pepper and verifies with it."""
        env = {"TENANTKIT_API_KEY_PEPPER": PEPPER, "TENANTKIT_API_KEY_PEPPER_VERSION": "v3"}
        result = run(url, "issue", "org_1", "ci", env=env)
        assert result.exit_code == 0, result.output
        with sqlite_engine.connect() as connection:
            assert (
                connection.execute(sa.select(api_keys.c.hashed_key))
                .scalar_one()
                .startswith("hmac-sha256$v3$")
            )
        peppered = ApiKeyService(membership=MembershipService(), peppers={"v3": PEPPER})
        assert verify(sqlite_engine, result.stdout.strip(), peppered) is None

    def test_prefix_from_environment(self, url: str) -> None:
        """TENANTKIT_API_KEY_PREFIX sets the deployment's prefix."""
        result = run(url, "issue", "org_1", "ci", env={"TENANTKIT_API_KEY_PREFIX": "tk_test_"})
        assert result.stdout.startswith("tk_test_")

    @pytest.mark.parametrize(
        "env",
        [
            {"TENANTKIT_API_KEY_OLD_PEPPERS": "v1:a pepper of at least sixteen bytes"},
            {"TENANTKIT_API_KEY_PEPPER": PEPPER, "TENANTKIT_API_KEY_OLD_PEPPERS": "no-colon"},
            {"TENANTKIT_API_KEY_PEPPER": "short"},
        ],
    )
    def test_bad_pepper_settings(self, url: str, env: dict[str, str]) -> None:
        """Inconsistent pepper variables are an invalid setting that names the variable (exit 4)."""
        result = run(url, "issue", "org_1", "ci", env=env)
        assert result.exit_code == 4
        assert result.stderr.splitlines()[-1].startswith("error [invalid_setting]: TENANTKIT_API_KEY_")
        assert result.stdout == ""


class TestManage:
    def issue(self, url: str) -> dict[str, object]:
        result = run(url, "issue", "org_1", "ci", "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def test_list(self, url: str) -> None:
        """list shows each key's id, start and state, never a digest or the key."""
        issued = self.issue(url)
        result = run(url, "list", "org_1")
        assert result.exit_code == 0, result.output
        assert issued["api_key"]["id"] in result.stdout  # type: ignore[index]
        assert "active" in result.stdout
        assert str(issued["key"]) not in result.stdout
        assert "sha256$" not in result.stdout
        data = json.loads(run(url, "list", "org_1", "--json").stdout)
        assert [item["id"] for item in data["items"]] == [issued["api_key"]["id"]]  # type: ignore[index]

    def test_revoke(self, sqlite_engine: sa.Engine, url: str) -> None:
        """revoke stops the key at once."""
        issued = self.issue(url)
        result = run(url, "revoke", "org_1", issued["api_key"]["id"])  # type: ignore[index]
        assert result.exit_code == 0, result.output
        assert verify(sqlite_engine, str(issued["key"])) == "revoked"
        assert "revoked" in run(url, "list", "org_1").stdout

    def test_revoke_unknown(self, url: str) -> None:
        """Revoking a key id that is not the organization's fails with api_key_not_found."""
        issued = self.issue(url)
        result = run(url, "revoke", "org_2", issued["api_key"]["id"])  # type: ignore[index]
        assert result.exit_code == 4
        assert result.stderr.splitlines()[-1].startswith("error [api_key_not_found]")

    def test_rotate(self, sqlite_engine: sa.Engine, url: str) -> None:
        """rotate prints a new key once; the old one keeps working through the grace, or stops with --now."""
        first = self.issue(url)
        result = run(url, "rotate", "org_1", first["api_key"]["id"], "--grace", "1h")  # type: ignore[index]
        assert result.exit_code == 0, result.output
        second = result.stdout.strip()
        assert verify(sqlite_engine, second) is None
        assert verify(sqlite_engine, str(first["key"])) is None
        third = run(url, "rotate", "org_1", "--now", "--json", self._id_of(sqlite_engine, second))
        assert third.exit_code == 0, third.output
        assert verify(sqlite_engine, second) == "expired"
        assert verify(sqlite_engine, json.loads(third.stdout)["key"]) is None

    @staticmethod
    def _id_of(engine: sa.Engine, key: str) -> str:
        service = ApiKeyService(membership=MembershipService())
        with Session(engine) as session:
            key_id = service.verify(session, key).key_id
            session.commit()
        assert key_id is not None
        return key_id
