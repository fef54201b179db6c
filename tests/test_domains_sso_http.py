"""The domain and SSO-connection management routes, on both adapters, against a real DNS server on 127.0.0.1.

Claim a domain (the TXT value shown once, ``no-store``), verify it through the loopback DNS server, list,
remove; create, read, change and delete SSO connections. Permissions are the services' (``domains:manage``,
``sso:manage``: OWNER and ADMIN), and errors are the stable JSON bodies.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tenantkit.domains import DnsPythonResolver
from tenantkit.testing import FrozenClock
from tests.dns_txt_server import SilentDnsServer, TxtDnsServer
from tests.http_apps import ADAPTERS, BUILDERS, HttpClient, make_kit
from tests.test_http_contract import ALICE, BASE, BOB, CAROL, MALLORY, assert_error, seed

RECORD = "_tenantkit-verification.example.com"
CONNECTION = {"provider": "workos", "protocol": "saml", "provider_connection_id": "conn_okta", "name": "Okta"}


@pytest.fixture
def dns() -> Iterator[TxtDnsServer]:
    """A real DNS server on 127.0.0.1 that the test tells what to answer."""
    with TxtDnsServer() as server:
        yield server


@pytest.fixture(params=ADAPTERS)
def client(
    request: pytest.FixtureRequest, clock: FrozenClock, sqlite_engine: sa.Engine, dns: TxtDnsServer
) -> HttpClient:
    """The seeded application on SQLite, once per adapter, its kit resolving through the loopback server."""
    kit = make_kit(clock=clock, dns_resolver=DnsPythonResolver(["127.0.0.1"], port=dns.port, timeout=2))
    seed(kit, sqlite_engine)
    return BUILDERS[request.param](kit, sqlite_engine)


def add(
    client: HttpClient, domain: str = "Example.COM", headers: dict[str, str] = ALICE
) -> dict[str, object]:
    reply = client.request("POST", f"{BASE}/domains", json={"domain": domain}, headers=headers)
    assert reply.status == 201, reply
    body: dict[str, object] = reply.json
    return body


class TestDomains:
    def test_add_shows_the_record_once_and_not_stored_then_verify(
        self, client: HttpClient, dns: TxtDnsServer
    ) -> None:
        """POST answers the TXT record (``Cache-Control: no-store``); published, it verifies the domain."""
        reply = client.request("POST", f"{BASE}/domains", json={"domain": "Example.COM"}, headers=BOB)
        assert reply.status == 201, reply
        assert reply.headers.get("Cache-Control") == "no-store"
        assert reply.json["domain"]["status"] == "pending"
        assert reply.json["record_name"] == RECORD
        value = reply.json["record_value"]
        assert value.startswith("tenantkit-domain-verification=")

        listed = client.request("GET", f"{BASE}/domains", headers=BOB)
        assert listed.status == 200, listed
        assert [item["domain"] for item in listed.json["items"]] == ["example.com"]
        assert value.partition("=")[2] not in str(listed.json)
        assert listed.headers.get("Cache-Control") is None

        dns.txt(RECORD, value)
        verified = client.request("POST", f"{BASE}/domains/example.com/verify", headers=BOB)
        assert verified.status == 200, verified
        assert verified.json["status"] == "verified"
        got = client.request("GET", f"{BASE}/domains/example.com", headers=ALICE)
        assert (got.status, got.json["status"]) == (200, "verified")

    def test_a_failed_verification_is_422_with_its_reason(
        self, client: HttpClient, dns: TxtDnsServer
    ) -> None:
        """A record of ours with another token: 422 ``domain_verification_failed``; still pending."""
        add(client)
        dns.txt(RECORD, "tenantkit-domain-verification=not-the-token")
        reply = client.request("POST", f"{BASE}/domains/example.com/verify", headers=ALICE)
        assert_error(reply, 422, "domain_verification_failed")
        assert reply.json["error"]["reason"] == "token_mismatch"
        assert client.request("GET", f"{BASE}/domains/example.com", headers=ALICE).json["status"] == "pending"

    def test_remove_and_unknown_domains(self, client: HttpClient) -> None:
        """DELETE answers the removed domain; a domain the organization does not claim is 404."""
        add(client)
        removed = client.request("DELETE", f"{BASE}/domains/example.com", headers=ALICE)
        assert (removed.status, removed.json["domain"]) == (200, "example.com")
        assert_error(
            client.request("GET", f"{BASE}/domains/example.com", headers=ALICE), 404, "domain_not_found"
        )
        assert_error(
            client.request("POST", f"{BASE}/domains/example.com/verify", headers=ALICE),
            404,
            "domain_not_found",
        )

    def test_permissions_public_domains_and_duplicates(self, client: HttpClient) -> None:
        """A MEMBER or a stranger may not manage domains; a public mailbox is 422; a second claim is 409."""
        body = {"domain": "example.com"}
        assert_error(
            client.request("POST", f"{BASE}/domains", json=body, headers=CAROL), 403, "permission_denied"
        )
        assert_error(client.request("GET", f"{BASE}/domains", headers=MALLORY), 403, "permission_denied")
        gmail = client.request("POST", f"{BASE}/domains", json={"domain": "gmail.com"}, headers=ALICE)
        assert_error(gmail, 422, "public_email_domain")
        add(client)
        assert_error(
            client.request("POST", f"{BASE}/domains", json=body, headers=ALICE), 409, "domain_exists"
        )
        assert_error(
            client.request("POST", f"{BASE}/domains", json={"domain": 7}, headers=ALICE), 422, "invalid_input"
        )


def test_a_dns_timeout_is_503(clock: FrozenClock, sqlite_engine: sa.Engine) -> None:
    """A nameserver that never answers: 503 ``dns_lookup_failed`` on both adapters, nothing changed."""
    with SilentDnsServer() as silent:
        kit = make_kit(
            clock=clock, dns_resolver=DnsPythonResolver(["127.0.0.1"], port=silent.port, timeout=0.3)
        )
        seed(kit, sqlite_engine)
        for adapter in ADAPTERS:
            client = BUILDERS[adapter](kit, sqlite_engine)
            if adapter == ADAPTERS[0]:
                add(client)
            reply = client.request("POST", f"{BASE}/domains/example.com/verify", headers=ALICE)
            assert_error(reply, 503, "dns_lookup_failed")


class TestSsoConnections:
    def test_create_read_update_delete(self, client: HttpClient) -> None:
        """An ADMIN registers a connection (201), lists and reads it, changes what it sends, deletes it."""
        created = client.request("POST", f"{BASE}/sso-connections", json=CONNECTION, headers=BOB)
        assert created.status == 201, created
        assert created.headers.get("Cache-Control") is None
        connection = created.json
        assert (connection["enabled"], connection["enforce"], connection["jit"]) == (True, False, False)
        assert (connection["default_role"], connection["role_authority"]) == ("MEMBER", "tenantkit")
        path = f"{BASE}/sso-connections/{connection['id']}"

        listed = client.request("GET", f"{BASE}/sso-connections", headers=ALICE)
        assert [item["id"] for item in listed.json["items"]] == [connection["id"]]
        assert client.request("GET", path, headers=ALICE).json == connection

        updated = client.request("PATCH", path, json={"enforce": True, "jit": True}, headers=ALICE)
        assert updated.status == 200, updated
        assert (updated.json["enforce"], updated.json["jit"], updated.json["name"]) == (True, True, "Okta")

        deleted = client.request("DELETE", path, headers=ALICE)
        assert (deleted.status, deleted.json["id"]) == (200, connection["id"])
        assert_error(client.request("GET", path, headers=ALICE), 404, "sso_connection_not_found")

    def test_refusals(self, client: HttpClient) -> None:
        """A MEMBER may not manage SSO; OWNER is never a JIT role; an unknown provider is 422; a duplicate is
        409; another organization's connection is not found."""
        assert_error(
            client.request("POST", f"{BASE}/sso-connections", json=CONNECTION, headers=CAROL),
            403,
            "permission_denied",
        )
        owner = {**CONNECTION, "default_role": "OWNER"}
        assert_error(
            client.request("POST", f"{BASE}/sso-connections", json=owner, headers=ALICE), 422, "invalid_input"
        )
        unknown = {**CONNECTION, "provider": "okta-direct"}
        assert_error(
            client.request("POST", f"{BASE}/sso-connections", json=unknown, headers=ALICE),
            422,
            "invalid_input",
        )
        created = client.request("POST", f"{BASE}/sso-connections", json=CONNECTION, headers=ALICE)
        assert created.status == 201, created
        again = client.request("POST", f"{BASE}/sso-connections", json=CONNECTION, headers=ALICE)
        assert_error(again, 409, "sso_connection_exists")
        elsewhere = f"/tk/organizations/org_2/sso-connections/{created.json['id']}"
        assert_error(client.request("GET", elsewhere, headers=MALLORY), 404, "sso_connection_not_found")

    def test_an_admin_may_make_jit_admins_and_no_certificate_is_taken(self, client: HttpClient) -> None:
        """An ADMIN may grant its own rank to JIT members; a certificate (an unknown field) is refused."""
        admin = {**CONNECTION, "default_role": "ADMIN"}
        assert client.request("POST", f"{BASE}/sso-connections", json=admin, headers=BOB).status == 201
        extra = {**CONNECTION, "certificate": "-----BEGIN CERTIFICATE-----"}
        assert_error(
            client.request("POST", f"{BASE}/sso-connections", json=extra, headers=ALICE), 422, "invalid_input"
        )
