"""The management endpoints for requirements, suspension and departments, on both adapters and three dialects.

The accept endpoint hands the host's claims (``Principal.claims``) to the accept policy; a suspended member is
refused by the ``permission`` dependency/decorator and by every management endpoint alike.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, InvitationSettings, Role, TenantKit
from tenantkit.credentials import LicencePolicy
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, BUILDERS, INVITATION_SECRET, HttpClient

ORG = "general-hospital"
ALICE = {"X-User": "alice"}
ADAM = {"X-User": "adam"}
NINA = {"X-User": "nina"}
REQUIREMENTS = {"credential_types": ["MD"], "npi_required": True, "licence_states": ["CA"]}


@pytest.fixture(params=ADAPTERS)
def client(request: pytest.FixtureRequest, clock: FrozenClock, engine: sa.Engine) -> HttpClient:
    """An app on each adapter and dialect: alice OWNER, adam ADMIN, nina MEMBER; licences are checked."""
    kit = TenantKit(
        invitations=InvitationSettings(secret_keys=[INVITATION_SECRET]),
        clock=clock,
        accept_policy=LicencePolicy(),
    )
    with Session(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "adam", Role.ADMIN, actor=HOST)
        kit.members.add(session, ORG, "nina", actor=HOST)
        session.commit()
    return BUILDERS[request.param](kit, engine)


def claims_header(clock: FrozenClock, **overrides: Any) -> dict[str, str]:
    claims = {
        "credential_type": "MD",
        "npi": "1234567893",
        "licence_state": "CA",
        "licence_number": "A1",
        "licence_expires_at": (clock() + timedelta(days=30)).isoformat(),
        "verified_by": "nppes",
        **overrides,
    }
    return {"X-Claims": json.dumps(claims)}


def invite(client: HttpClient) -> str:
    reply = client.request(
        "POST",
        f"/tk/organizations/{ORG}/invitations",
        {"email": "lee@example.org", "requirements": REQUIREMENTS},
        ALICE,
    )
    assert reply.status == 201, reply.json
    assert reply.json["invitation"]["requirements"]["credential_types"] == ["MD"]
    return str(reply.json["token"])


def test_the_accept_endpoint_passes_the_host_claims_to_the_policy(
    client: HttpClient, clock: FrozenClock
) -> None:
    """Denied without the claims (422 ``acceptance_denied``, invitation still pending); accepted with them,
    and the member is listed with the verified attributes; the lapsing listing shows the licence."""
    token = invite(client)
    lee = {"X-User": "lee", "X-Email": "lee@example.org", "X-Email-Verified": "true"}
    denied = client.request(
        "POST", "/tk/invitations/accept", {"token": token}, {**lee, **claims_header(clock, npi=None)}
    )
    assert denied.status == 422
    assert denied.json["error"]["code"] == "acceptance_denied"
    assert denied.json["error"]["requirement"] == "npi"
    assert (
        len(client.request("GET", f"/tk/organizations/{ORG}/invitations", headers=ALICE).json["items"]) == 1
    )
    accepted = client.request(
        "POST", "/tk/invitations/accept", {"token": token}, {**lee, **claims_header(clock)}
    )
    assert accepted.status == 200, accepted.json
    members = client.request("GET", f"/tk/organizations/{ORG}/members", headers=ALICE).json["items"]
    [listed] = [member for member in members if member["user_id"] == "lee"]
    assert listed["attributes"]["values"]["npi"] == "1234567893"
    assert listed["attributes"]["verified_by"] == "nppes"
    before = (clock() + timedelta(days=60)).isoformat().replace("+00:00", "Z")
    lapsing = client.request("GET", f"/tk/organizations/{ORG}/lapsing-members?before={before}", headers=ADAM)
    assert [member["user_id"] for member in lapsing.json["items"]] == ["lee"]
    assert client.request("GET", f"/tk/organizations/{ORG}/lapsing-members", headers=ADAM).json["items"] == []


def test_a_suspended_member_is_refused_everywhere_until_resumed(client: HttpClient) -> None:
    """Suspended adam gets 403 ``member_suspended`` from the permission dependency and the router; resumed,
    he is allowed again. A MEMBER may not suspend."""
    assert client.request("POST", f"/tk/organizations/{ORG}/members/adam/suspend", {}, NINA).status == 403
    suspended = client.request(
        "POST", f"/tk/organizations/{ORG}/members/adam/suspend", {"reason": "licence expired"}, ALICE
    )
    assert suspended.status == 200
    assert suspended.json["suspension_reason"] == "licence expired"
    for method, path in (("POST", f"/orgs/{ORG}/danger"), ("GET", f"/tk/organizations/{ORG}/members")):
        refused = client.request(method, path, headers=ADAM)
        assert refused.status == 403, path
        assert refused.json["error"]["code"] == "member_suspended", path
    assert client.request("POST", f"/tk/organizations/{ORG}/members/adam/resume", headers=ALICE).status == 200
    allowed = client.request("POST", f"/orgs/{ORG}/danger", headers=ADAM)
    assert allowed.status == 200
    assert allowed.json["role"] == "ADMIN"


def test_departments_through_the_router(client: HttpClient) -> None:
    """Create, list, rename, fill, list members, empty and delete a department; a MEMBER may only read."""
    base = f"/tk/organizations/{ORG}/departments"
    created = client.request("POST", base, {"name": "Cardiology"}, ADAM)
    assert created.status == 201, created.json
    department = created.json["id"]
    assert client.request("POST", base, {"name": "Oncology"}, NINA).status == 403
    assert (
        client.request("POST", base, {"name": "Cardiology"}, ADAM).json["error"]["code"]
        == "department_exists"
    )
    renamed = client.request("PATCH", f"{base}/{department}", {"name": "Cardiac care"}, ADAM)
    assert renamed.json["name"] == "Cardiac care"
    assert client.request("PUT", f"{base}/{department}/members/nina", headers=ADAM).status == 200
    members = client.request("GET", f"{base}/{department}/members", headers=NINA).json["items"]
    assert [member["user_id"] for member in members] == ["nina"]
    assert [d["name"] for d in client.request("GET", base, headers=NINA).json["items"]] == ["Cardiac care"]
    assert client.request("DELETE", f"{base}/{department}/members/nina", headers=ADAM).status == 200
    assert client.request("DELETE", f"{base}/{department}/members/nina", headers=ADAM).status == 404
    assert client.request("DELETE", f"{base}/{department}", headers=ADAM).status == 200
    assert client.request("GET", f"{base}/{department}/members", headers=ADAM).status == 404
