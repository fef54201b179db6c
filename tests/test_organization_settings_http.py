"""The settings endpoints, on both adapters: read with a version, write against it, 409 when stale."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, HttpClient
from tests.test_http_contract import ALICE, BASE, BOB, CAROL, assert_error, build


@pytest.fixture(params=ADAPTERS)
def client(request: pytest.FixtureRequest, clock: FrozenClock, sqlite_engine: sa.Engine) -> HttpClient:
    """The seeded application on SQLite, once per adapter."""
    return build(request.param, clock, sqlite_engine)


def test_read_then_write_with_the_version(client: HttpClient) -> None:
    """GET answers the document and version 0; PATCH with that version answers version 1."""
    read = client.request("GET", f"{BASE}/settings", headers=BOB)
    assert read.status == 200, read
    assert read.json["version"] == 0
    assert read.json["document"]["require_sso"] is None

    written = client.request(
        "PATCH",
        f"{BASE}/settings",
        json={"expected_version": 0, "changes": {"require_sso": True, "invitation_max_ttl": "3d"}},
        headers=ALICE,
    )

    assert written.status == 200, written
    assert written.json["version"] == 1
    assert written.json["document"]["require_sso"] is True
    assert written.json["explicit_keys"] == ["invitation_max_ttl", "require_sso"]


def test_a_stale_write_is_409_with_the_stable_body(client: HttpClient) -> None:
    """Writing against a version already passed answers ``settings_version_conflict`` with both versions."""
    body = {"expected_version": 0, "changes": {"require_sso": True}}
    assert client.request("PATCH", f"{BASE}/settings", json=body, headers=ALICE).status == 200

    stale = client.request("PATCH", f"{BASE}/settings", json=body, headers=ALICE)

    assert_error(stale, 409, "settings_version_conflict")
    assert stale.json["error"]["expected_version"] == 0
    assert stale.json["error"]["current_version"] == 1


def test_permissions_and_bad_keys(client: HttpClient) -> None:
    """A MEMBER may not read; an ADMIN may not write; an unknown key is 422 naming it."""
    assert_error(client.request("GET", f"{BASE}/settings", headers=CAROL), 403, "permission_denied")
    body = {"expected_version": 0, "changes": {"require_sso": True}}
    assert_error(
        client.request("PATCH", f"{BASE}/settings", json=body, headers=BOB), 403, "permission_denied"
    )
    typo = {"expected_version": 0, "changes": {"require_ssoo": True}}
    reply = client.request("PATCH", f"{BASE}/settings", json=typo, headers=ALICE)
    assert_error(reply, 422, "invalid_input")
    assert reply.json["error"]["field"] == "require_ssoo"


def test_an_invitation_without_role_takes_the_organization_default(client: HttpClient) -> None:
    """The invite body's ``role`` may be left out: the organization's default role is offered."""
    reply = client.request("POST", f"{BASE}/invitations", json={"email": "new@example.com"}, headers=BOB)

    assert reply.status == 201, reply
    assert reply.json["invitation"]["role"] == "MEMBER"


def test_the_fastapi_example_serves_its_settings_model(tmp_path: Path) -> None:
    """The example's settings steps work as its docstring prints them: AcmeSettings, a version, a 409."""
    from fastapi.testclient import TestClient

    from tests.test_examples import load_example

    app = load_example("fastapi_app").create_app(f"sqlite:///{tmp_path / 'example.sqlite3'}")
    alice = {"X-User": "alice"}
    with TestClient(app) as client:
        assert (
            client.post("/organizations", json={"organization_id": "acme"}, headers=alice).status_code == 201
        )
        read = client.get("/tenantkit/organizations/acme/settings", headers=alice).json()
        body = {"expected_version": 0, "changes": {"weekly_digest": False, "api_key_max_lifetime": "90d"}}
        written = client.patch("/tenantkit/organizations/acme/settings", json=body, headers=alice)
        stale = client.patch("/tenantkit/organizations/acme/settings", json=body, headers=alice)
        refused = client.post(
            "/tenantkit/organizations/acme/api-keys", json={"name": "forever"}, headers=alice
        )

    assert read["document"]["weekly_digest"] is True
    assert written.status_code == 200
    assert written.json()["document"]["weekly_digest"] is False
    assert stale.status_code == 409
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "policy_limit"
