"""``tenantkit domains`` and ``tenantkit sso``: claim, verify (through a real DNS server on 127.0.0.1), list
and remove domains; create, list, change and delete SSO connections; stable exit codes and ``--json``."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, MembershipService, Role, transaction
from tenantkit._cli import main
from tests.dns_txt_server import TxtDnsServer

RECORD = "_tenantkit-verification.example.com"


@pytest.fixture
def seeded(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """org_1 with alice (OWNER) and bob (MEMBER), the database given through TENANTKIT_DATABASE_URL."""
    monkeypatch.setenv("TENANTKIT_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    with transaction(sqlite_engine) as session:
        service = MembershipService()
        service.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        service.add(session, "org_1", "bob", Role.MEMBER, actor=HOST)
    return sqlite_engine


@pytest.fixture
def dns() -> Iterator[TxtDnsServer]:
    """A real DNS server on 127.0.0.1 that the test tells what to answer."""
    with TxtDnsServer() as server:
        yield server


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_add_prints_the_record_once_then_verify_list_remove(seeded: sa.Engine, dns: TxtDnsServer) -> None:
    """``add`` prints ``NAME. TXT VALUE`` on stdout; published, ``verify --nameserver`` verifies it."""
    added = run("domains", "add", "org_1", "Example.COM", "--as", "alice")
    assert added.exit_code == 0, added.output
    name, kind, value = added.stdout.strip().split(" ")
    assert (name, kind) == (f"{RECORD}.", "TXT")
    assert value.startswith("tenantkit-domain-verification=")
    assert "shown this once" in added.stderr

    dns.txt(RECORD, value)
    verified = run(
        "domains", "verify", "org_1", "example.com", "--nameserver", "127.0.0.1", "--dns-port", str(dns.port)
    )
    assert verified.exit_code == 0, verified.output
    assert "verified example.com" in verified.stdout

    listed = run("domains", "list", "org_1", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(item["domain"], item["status"]) for item in json.loads(listed.stdout)] == [
        ("example.com", "verified")
    ]
    table = run("domains", "list", "org_1")
    assert table.stdout.splitlines()[0].split() == [
        "DOMAIN",
        "STATUS",
        "STRATEGY",
        "VERIFIED",
        "LAST",
        "CHECKED",
    ]

    removed = run("domains", "remove", "org_1", "example.com", "--json")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["domain"] == "example.com"
    assert json.loads(run("domains", "list", "org_1", "--json").stdout) == []


def test_add_json_carries_the_record(seeded: sa.Engine) -> None:
    """``add --json`` prints the domain and the record's name and value, for scripts."""
    added = run("domains", "add", "org_1", "example.com", "--json")
    assert added.exit_code == 0, added.output
    body = json.loads(added.stdout)
    assert body["domain"]["status"] == "pending"
    assert body["record_name"] == RECORD
    assert body["record_value"].startswith("tenantkit-domain-verification=")


def test_a_manual_domain_is_confirmed_by_the_host(seeded: sa.Engine) -> None:
    """``add --manual`` prints no record; ``confirm`` verifies it on the host's word."""
    added = run("domains", "add", "org_1", "example.com", "--manual")
    assert (added.exit_code, added.stdout) == (0, "")
    confirmed = run("domains", "confirm", "org_1", "example.com", "--json")
    assert confirmed.exit_code == 0, confirmed.output
    assert json.loads(confirmed.stdout)["status"] == "verified"


def test_refusals_have_stable_exit_codes(seeded: sa.Engine, dns: TxtDnsServer) -> None:
    """A MEMBER is refused (4), a public domain is bad input (2), a failed check is a refusal (4)."""
    member = run("domains", "add", "org_1", "example.com", "--as", "bob")
    assert member.exit_code == 4, member.output
    assert "permission_denied" in member.stderr
    public = run("domains", "add", "org_1", "gmail.com")
    assert public.exit_code == 4, public.output
    assert "public_email_domain" in public.stderr
    assert run("domains", "add", "org_1", "example.com").exit_code == 0
    failed = run(
        "domains", "verify", "org_1", "example.com", "--nameserver", "127.0.0.1", "--dns-port", str(dns.port)
    )
    assert failed.exit_code == 4, failed.output
    assert "domain_verification_failed" in failed.stderr
    missing = run("domains", "remove", "org_1", "other.example")
    assert missing.exit_code == 4
    assert "domain_not_found" in missing.stderr
    assert "Traceback" not in failed.output + missing.output


def test_sso_create_list_update_delete(seeded: sa.Engine) -> None:
    """A connection is created with its policy, listed, changed option by option, and deleted."""
    created = run(
        "sso", "create", "org_1", "workos", "saml", "conn_okta", "--name", "Okta", "--jit", "--json"
    )
    assert created.exit_code == 0, created.output
    connection = json.loads(created.stdout)
    assert (connection["jit"], connection["enforce"], connection["default_role"]) == (True, False, "MEMBER")

    table = run("sso", "list", "org_1")
    assert table.exit_code == 0, table.output
    assert connection["id"] in table.stdout

    updated = run("sso", "update", "org_1", connection["id"], "--enforce", "--disabled", "--json")
    assert updated.exit_code == 0, updated.output
    after = json.loads(updated.stdout)
    assert (after["enforce"], after["enabled"], after["jit"], after["name"]) == (True, False, True, "Okta")

    deleted = run("sso", "delete", "org_1", connection["id"])
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(run("sso", "list", "org_1", "--json").stdout) == []


def test_sso_refusals(seeded: sa.Engine) -> None:
    """A MEMBER may not create (4); OWNER is no JIT role (2, click's choice); an unknown connection is 4."""
    member = run("sso", "create", "org_1", "workos", "saml", "conn_1", "--name", "Okta", "--as", "bob")
    assert member.exit_code == 4, member.output
    owner = run(
        "sso", "create", "org_1", "workos", "saml", "conn_1", "--name", "Okta", "--default-role", "OWNER"
    )
    assert owner.exit_code == 2
    unknown = run("sso", "delete", "org_1", "conn_missing")
    assert unknown.exit_code == 4
    assert "sso_connection_not_found" in unknown.stderr
