"""One HTTP contract, two adapters: every test runs against the FastAPI and the Flask application.

The applications (``tests/http_apps.py``) mount the management endpoints under ``/tk`` and add four
protected routes: ``/reports`` (an API key with ``reports:read``), ``/whoami-key`` (any valid key),
``/metered`` (any valid key, spending one credit of a key with credits) and
``/orgs/<organization_id>/danger`` (the ``members:remove`` permission). The signed-in user comes from the
``X-User`` / ``X-Email`` / ``X-Email-Verified`` headers: a TEST STAND-IN for an identity provider.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tenantkit import HOST, Role, TenantKit
from tenantkit._http import WWW_AUTHENTICATE
from tenantkit._tables import api_keys, invitations
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, BUILDERS, REPORTS_SCOPE, HttpClient, Reply, make_kit

ORG = "org_1"
OTHER_ORG = "org_2"
BASE = f"/tk/organizations/{ORG}"


def user(user_id: str, email: str | None = None, *, verified: bool = True) -> dict[str, str]:
    """Headers of the identity-provider stand-in for ``user_id``."""
    headers = {"X-User": user_id}
    if email is not None:
        headers["X-Email"] = email
        headers["X-Email-Verified"] = "true" if verified else "false"
    return headers


ALICE = user("alice")  # OWNER of org_1
BOB = user("bob")  # ADMIN of org_1
CAROL = user("carol")  # MEMBER of org_1
MALLORY = user("mallory")  # OWNER of org_2, stranger to org_1


def seed(kit: TenantKit, engine: sa.Engine) -> None:
    """org_1: alice OWNER, bob ADMIN, carol MEMBER; org_2: mallory OWNER."""
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "bob", Role.ADMIN, actor=HOST)
        kit.members.add(session, ORG, "carol", Role.MEMBER, actor=HOST)
        kit.members.add(session, OTHER_ORG, "mallory", Role.OWNER, actor=HOST)


def build(adapter: str, clock: FrozenClock, engine: sa.Engine) -> HttpClient:
    kit = make_kit(clock=clock)
    seed(kit, engine)
    return BUILDERS[adapter](kit, engine)


@pytest.fixture(params=ADAPTERS)
def client(request: pytest.FixtureRequest, clock: FrozenClock, sqlite_engine: sa.Engine) -> HttpClient:
    """The seeded application on SQLite, once per adapter."""
    return build(request.param, clock, sqlite_engine)


def assert_error(reply: Reply, status: int, code: str) -> None:
    """``reply`` is the JSON error ``code`` with ``status``."""
    assert reply.status == status, reply
    assert isinstance(reply.json, dict), reply
    assert reply.json["error"]["code"] == code, reply.json
    assert isinstance(reply.json["error"]["message"], str)


def member_ids(client: HttpClient, organization: str = ORG, headers: dict[str, str] = ALICE) -> set[str]:
    reply = client.request("GET", f"/tk/organizations/{organization}/members", headers=headers)
    assert reply.status == 200, reply
    return {item["user_id"] for item in reply.json["items"]}


def issue_key(client: HttpClient, scopes: list[str] | None = None, headers: dict[str, str] = ALICE) -> Reply:
    body: dict[str, object] = {"name": "CI"}
    if scopes is not None:
        body["scopes"] = scopes
    reply = client.request("POST", f"{BASE}/api-keys", json=body, headers=headers)
    assert reply.status == 201, reply
    return reply


def invite_email(client: HttpClient, email: str, role: str = "MEMBER") -> Reply:
    reply = client.request("POST", f"{BASE}/invitations", json={"email": email, "role": role}, headers=ALICE)
    assert reply.status == 201, reply
    return reply


class TestMembers:
    def test_list_members(self, client: HttpClient) -> None:
        """Any member lists the organization's members with their roles."""
        reply = client.request("GET", f"{BASE}/members", headers=CAROL)
        assert reply.status == 200
        roles = {item["user_id"]: item["role"] for item in reply.json["items"]}
        assert roles == {"alice": "OWNER", "bob": "ADMIN", "carol": "MEMBER"}
        assert reply.json["next_cursor"] is None

    def test_paginate(self, client: HttpClient) -> None:
        """A limit splits the listing into pages joined by the cursor, without gaps or repeats."""
        first = client.request("GET", f"{BASE}/members?limit=2", headers=ALICE)
        assert first.status == 200
        assert len(first.json["items"]) == 2
        cursor = first.json["next_cursor"]
        assert cursor
        second = client.request("GET", f"{BASE}/members?limit=2&cursor={cursor}", headers=ALICE)
        assert second.status == 200
        assert second.json["next_cursor"] is None
        seen = [item["user_id"] for item in first.json["items"] + second.json["items"]]
        assert sorted(seen) == ["alice", "bob", "carol"]

    @pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=abc", "cursor=not-a-cursor"])
    def test_bad_listing_query(self, client: HttpClient, query: str) -> None:
        """A page size out of bounds or a forged cursor is a 422 invalid_input."""
        assert_error(client.request("GET", f"{BASE}/members?{query}", headers=ALICE), 422, "invalid_input")

    def test_change_role(self, client: HttpClient) -> None:
        """An OWNER changes an ADMIN into a MEMBER and gets the updated member back."""
        reply = client.request("PATCH", f"{BASE}/members/bob", json={"role": "MEMBER"}, headers=ALICE)
        assert reply.status == 200
        assert reply.json["user_id"] == "bob"
        assert reply.json["role"] == "MEMBER"

    def test_escalation_refused(self, client: HttpClient) -> None:
        """An ADMIN cannot make anyone OWNER: 403 role_escalation, and nothing changes."""
        reply = client.request("PATCH", f"{BASE}/members/carol", json={"role": "OWNER"}, headers=BOB)
        assert_error(reply, 403, "role_escalation")
        assert reply.json["error"]["requested_role"] == "OWNER"
        listing = client.request("GET", f"{BASE}/members", headers=ALICE).json["items"]
        assert {item["user_id"]: item["role"] for item in listing}["carol"] == "MEMBER"

    def test_member_cannot_change_roles(self, client: HttpClient) -> None:
        """A MEMBER changing someone's role gets 403 permission_denied."""
        reply = client.request("PATCH", f"{BASE}/members/bob", json={"role": "MEMBER"}, headers=CAROL)
        assert_error(reply, 403, "permission_denied")

    @pytest.mark.parametrize(
        "body",
        [{}, {"role": "MEMBER", "extra": 1}, [], "MEMBER", 7, {"role": None}, {"role": ""}],
    )
    def test_change_role_bad_body(self, client: HttpClient, body: object) -> None:
        """A body that is not ``{"role": <role>}`` is a 422 invalid_input."""
        reply = client.request("PATCH", f"{BASE}/members/bob", json=body, headers=ALICE)
        assert_error(reply, 422, "invalid_input")

    def test_change_to_an_unknown_role(self, client: HttpClient) -> None:
        """A role that is neither a rank nor a custom role of the organization is a 422 unknown_role."""
        reply = client.request("PATCH", f"{BASE}/members/bob", json={"role": "KING"}, headers=ALICE)
        assert_error(reply, 422, "unknown_role")

    @pytest.mark.parametrize(
        ("content", "content_type"),
        [
            (b"{not json", "application/json"),
            (b"", "application/json"),
            (b"role=OWNER", "text/plain"),
            (b'{"role": "ADMIN"}', "text/plain"),
            (b'{"role": "ADMIN"}', None),
            (b'{"role": "ADMIN"}', ""),
        ],
    )
    def test_unparsable_body(self, client: HttpClient, content: bytes, content_type: str | None) -> None:
        """Malformed JSON, no body, or a body without a JSON content type is a 422 invalid_input."""
        headers = dict(ALICE) if content_type is None else {**ALICE, "Content-Type": content_type}
        reply = client.request("PATCH", f"{BASE}/members/bob", content=content, headers=headers)
        assert_error(reply, 422, "invalid_input")
        assert member_ids(client) == {"alice", "bob", "carol"}

    @pytest.mark.parametrize(
        "content_type",
        ["application/json", "application/json; charset=utf-8", "application/merge-patch+json"],
    )
    def test_json_content_types(self, client: HttpClient, content_type: str) -> None:
        """A JSON body is read under any JSON content type."""
        headers = {**ALICE, "Content-Type": content_type}
        reply = client.request("PATCH", f"{BASE}/members/bob", content=b'{"role": "MEMBER"}', headers=headers)
        assert reply.status == 200, reply
        assert reply.json["role"] == "MEMBER"

    def test_remove(self, client: HttpClient) -> None:
        """An ADMIN removes a MEMBER, who then no longer appears in the listing."""
        reply = client.request("DELETE", f"{BASE}/members/carol", headers=BOB)
        assert reply.status == 200
        assert reply.json["user_id"] == "carol"
        assert member_ids(client) == {"alice", "bob"}

    def test_remove_unknown_member(self, client: HttpClient) -> None:
        """Removing someone who is not a member is a 404 member_not_found."""
        assert_error(client.request("DELETE", f"{BASE}/members/zed", headers=ALICE), 404, "member_not_found")

    def test_last_owner_refused(self, client: HttpClient) -> None:
        """The last OWNER can be neither removed nor demoted: 403 last_owner, and alice stays OWNER."""
        assert_error(client.request("DELETE", f"{BASE}/members/alice", headers=ALICE), 403, "last_owner")
        demote = client.request("PATCH", f"{BASE}/members/alice", json={"role": "ADMIN"}, headers=ALICE)
        assert_error(demote, 403, "last_owner")
        assert "alice" in member_ids(client)

    def test_leave(self, client: HttpClient) -> None:
        """A MEMBER leaves the organization and is gone from the listing."""
        reply = client.request("POST", f"{BASE}/leave", headers=CAROL)
        assert reply.status == 200
        assert reply.json["user_id"] == "carol"
        assert member_ids(client) == {"alice", "bob"}

    def test_last_owner_cannot_leave(self, client: HttpClient) -> None:
        """The last OWNER leaving is refused with 403 last_owner."""
        assert_error(client.request("POST", f"{BASE}/leave", headers=ALICE), 403, "last_owner")

    def test_transfer(self, client: HttpClient) -> None:
        """An OWNER hands ownership to an ADMIN and steps down to the requested role."""
        reply = client.request(
            "POST",
            f"{BASE}/transfer-ownership",
            json={"to_user_id": "bob", "demote_to": "MEMBER"},
            headers=ALICE,
        )
        assert reply.status == 200, reply
        roles = {
            item["user_id"]: item["role"]
            for item in client.request("GET", f"{BASE}/members", headers=BOB).json["items"]
        }
        assert roles == {"alice": "MEMBER", "bob": "OWNER", "carol": "MEMBER"}

    def test_transfer_by_admin_refused(self, client: HttpClient) -> None:
        """Only an OWNER transfers ownership: an ADMIN gets 403."""
        reply = client.request(
            "POST", f"{BASE}/transfer-ownership", json={"to_user_id": "carol"}, headers=BOB
        )
        assert_error(reply, 403, "permission_denied")


class TestApiKeys:
    def test_issue_shows_key_once(self, client: HttpClient, sqlite_engine: sa.Engine) -> None:
        """Issuing answers 201 with the key; the listing shows its metadata but never the key or a digest."""
        issued = issue_key(client, ["reports:read"])
        key = issued.json["key"]
        assert issued.json["api_key"]["scopes"] == ["reports:read"]
        listing = client.request("GET", f"{BASE}/api-keys", headers=CAROL)
        assert listing.status == 200
        assert [item["id"] for item in listing.json["items"]] == [issued.json["api_key"]["id"]]
        text = json.dumps(listing.json)
        assert key not in text
        with sqlite_engine.connect() as connection:
            digest = connection.execute(sa.select(api_keys.c.hashed_key)).scalar_one()
        assert digest not in text
        assert digest.split("$")[-1] not in text
        assert not {"key", "digest", "key_digest", "secret"} & set(listing.json["items"][0])

    def test_bearer_and_header(self, client: HttpClient) -> None:
        """A key authenticates from ``Authorization: Bearer`` and from ``X-API-Key`` alike."""
        issued = issue_key(client)
        key = issued.json["key"]
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
            reply = client.request("GET", "/whoami-key", headers=headers)
            assert reply.status == 200, reply
            assert reply.json == {
                "organization_id": ORG,
                "key_id": issued.json["api_key"]["id"],
                "scopes": [],
            }

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer "},
            {"Authorization": "Basic YWxpY2U6cHc="},
            {"X-API-Key": "tk_nonsense"},
        ],
    )
    def test_missing_or_malformed_key(self, client: HttpClient, headers: dict[str, str]) -> None:
        """No key, an empty or non-Bearer credential, or junk is a 401 with ``WWW-Authenticate``."""
        reply = client.request("GET", "/whoami-key", headers=headers)
        assert_error(reply, 401, "invalid_api_key")
        assert reply.headers["WWW-Authenticate"] == WWW_AUTHENTICATE

    def test_unknown_key(self, client: HttpClient) -> None:
        """A well-formed key that was never issued is a 401 with reason ``unknown``."""
        key = issue_key(client).json["key"]
        with_other_body = key[:-10] + ("A" * 10 if not key.endswith("A" * 10) else "B" * 10)
        reply = client.request("GET", "/whoami-key", headers={"X-API-Key": with_other_body})
        assert_error(reply, 401, "invalid_api_key")
        assert "WWW-Authenticate" in reply.headers

    def test_missing_scope(self, client: HttpClient) -> None:
        """A valid key without the route's scope is a 403 missing_scope; with it, the route answers."""
        plain = issue_key(client).json["key"]
        assert_error(client.request("GET", "/reports", headers={"X-API-Key": plain}), 403, "missing_scope")
        scoped = issue_key(client, [REPORTS_SCOPE]).json["key"]
        reply = client.request("GET", "/reports", headers={"Authorization": f"Bearer {scoped}"})
        assert reply.status == 200
        assert reply.json["scopes"] == [REPORTS_SCOPE]

    def test_revoke(self, client: HttpClient) -> None:
        """A revoked key answers 401 at once."""
        issued = issue_key(client)
        key_id, key = issued.json["api_key"]["id"], issued.json["key"]
        reply = client.request("POST", f"{BASE}/api-keys/{key_id}/revoke", headers=BOB)
        assert reply.status == 200
        assert reply.json["id"] == key_id
        assert reply.json["revoked_at"] is not None
        assert_error(client.request("GET", "/whoami-key", headers={"X-API-Key": key}), 401, "invalid_api_key")

    def test_rotate(self, client: HttpClient) -> None:
        """Rotation answers 201 with a new key that works; with no grace the old key stops at once."""
        issued = issue_key(client)
        key_id, old = issued.json["api_key"]["id"], issued.json["key"]
        reply = client.request(
            "POST", f"{BASE}/api-keys/{key_id}/rotate", json={"grace_seconds": 0}, headers=ALICE
        )
        assert reply.status == 201, reply
        new = reply.json["key"]
        assert new != old
        assert reply.json["api_key"]["id"] != key_id
        assert client.request("GET", "/whoami-key", headers={"X-API-Key": new}).status == 200
        assert_error(client.request("GET", "/whoami-key", headers={"X-API-Key": old}), 401, "invalid_api_key")

    def test_rotate_without_body_keeps_grace(self, client: HttpClient) -> None:
        """Rotation with no body uses the default grace: both keys work for now."""
        issued = issue_key(client)
        key_id, old = issued.json["api_key"]["id"], issued.json["key"]
        reply = client.request("POST", f"{BASE}/api-keys/{key_id}/rotate", headers=ALICE)
        assert reply.status == 201, reply
        for key in (old, reply.json["key"]):
            assert client.request("GET", "/whoami-key", headers={"X-API-Key": key}).status == 200

    def test_member_cannot_issue(self, client: HttpClient) -> None:
        """A MEMBER issuing a key gets 403 permission_denied."""
        reply = client.request("POST", f"{BASE}/api-keys", json={"name": "mine"}, headers=CAROL)
        assert_error(reply, 403, "permission_denied")

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"name": ""},
            {"name": "x" * 201},
            {"name": "ok", "scopes": "admin"},
            {"name": "ok", "expires_in_seconds": 0},
        ],
    )
    def test_issue_bad_body(self, client: HttpClient, body: object) -> None:
        """An issue request with a missing, empty or oversized name or bad options is a 422."""
        reply = client.request("POST", f"{BASE}/api-keys", json=body, headers=ALICE)
        assert_error(reply, 422, "invalid_input")

    def test_revoke_unknown_key(self, client: HttpClient) -> None:
        """Revoking a key id that does not exist is a 404 api_key_not_found."""
        reply = client.request("POST", f"{BASE}/api-keys/nope/revoke", headers=ALICE)
        assert_error(reply, 404, "api_key_not_found")


class TestInvitations:
    def test_email_invitation_flow(self, client: HttpClient, sqlite_engine: sa.Engine) -> None:
        """Invite by email, list without tokens, preview, and accept with the verified address."""
        created = invite_email(client, "dave@acme.com", role="ADMIN")
        token = created.json["token"]
        assert created.json["invitation"]["email"] == "dave@acme.com"
        listing = client.request("GET", f"{BASE}/invitations", headers=BOB)
        assert listing.status == 200
        assert [item["id"] for item in listing.json["items"]] == [created.json["invitation"]["id"]]
        assert token not in json.dumps(listing.json)
        with sqlite_engine.connect() as connection:
            stored = connection.execute(sa.select(invitations.c.token)).scalar_one()
        assert stored.split("$")[-1] not in json.dumps(listing.json)
        preview = client.request("POST", "/tk/invitations/preview", json={"token": token})
        assert preview.status == 200
        assert preview.json["organization_id"] == ORG
        assert preview.json["role"] == "ADMIN"
        accepted = client.request(
            "POST", "/tk/invitations/accept", json={"token": token}, headers=user("dave", "dave@acme.com")
        )
        assert accepted.status == 200, accepted
        assert accepted.json["role"] == "ADMIN"
        assert accepted.json["already_member"] is False
        assert "dave" in member_ids(client)

    def test_link_invitation_flow(self, client: HttpClient) -> None:
        """A link for a domain is accepted by a verified address in that domain, and refused outside it."""
        body = {"allowed_domains": ["acme.com"], "max_uses": 5}
        created = client.request("POST", f"{BASE}/invitations", json=body, headers=ALICE)
        assert created.status == 201, created
        token = created.json["token"]
        outsider = client.request(
            "POST", "/tk/invitations/accept", json={"token": token}, headers=user("oscar", "oscar@other.com")
        )
        assert_error(outsider, 422, "domain_not_allowed")
        accepted = client.request(
            "POST", "/tk/invitations/accept", json={"token": token}, headers=user("erin", "erin@acme.com")
        )
        assert accepted.status == 200
        assert accepted.json["role"] == "MEMBER"
        assert "erin" in member_ids(client)
        assert "oscar" not in member_ids(client)

    def test_accept_unverified_refused(self, client: HttpClient) -> None:
        """An address the identity provider has not verified cannot accept: 422 unverified_email."""
        token = invite_email(client, "dave@acme.com").json["token"]
        reply = client.request(
            "POST",
            "/tk/invitations/accept",
            json={"token": token},
            headers=user("dave", "dave@acme.com", verified=False),
        )
        assert reply.status == 422
        assert reply.json["error"]["code"] == "unverified_email"
        assert "dave" not in member_ids(client)

    def test_accept_without_email_refused(self, client: HttpClient) -> None:
        """A signed-in user without any email address gets 422 invalid_input."""
        token = invite_email(client, "dave@acme.com").json["token"]
        reply = client.request("POST", "/tk/invitations/accept", json={"token": token}, headers=user("dave"))
        assert_error(reply, 422, "invalid_input")

    def test_resend_kills_old_token(self, client: HttpClient) -> None:
        """Re-sending gives a new token; the old one is refused and the new one accepted."""
        created = invite_email(client, "dave@acme.com")
        old = created.json["token"]
        resent = client.request(
            "POST", f"{BASE}/invitations/{created.json['invitation']['id']}/resend", headers=ALICE
        )
        assert resent.status == 200, resent
        new = resent.json["token"]
        assert new != old
        dave = user("dave", "dave@acme.com")
        refused = client.request("POST", "/tk/invitations/accept", json={"token": old}, headers=dave)
        assert_error(refused, 422, "invalid_invitation_token")
        assert (
            client.request("POST", "/tk/invitations/accept", json={"token": new}, headers=dave).status == 200
        )

    def test_revoke(self, client: HttpClient) -> None:
        """A revoked invitation disappears from the pending list and its token no longer works."""
        created = invite_email(client, "dave@acme.com")
        invitation_id, token = created.json["invitation"]["id"], created.json["token"]
        revoked = client.request("POST", f"{BASE}/invitations/{invitation_id}/revoke", headers=BOB)
        assert revoked.status == 200
        assert revoked.json["status"] == "revoked"
        assert client.request("GET", f"{BASE}/invitations", headers=ALICE).json["items"] == []
        reply = client.request(
            "POST", "/tk/invitations/accept", json={"token": token}, headers=user("dave", "dave@acme.com")
        )
        assert reply.status == 410
        assert reply.json["error"]["code"] == "invitation_not_pending"

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"email": "a@acme.com", "allowed_domains": ["acme.com"]},
            {"email": "not an address"},
            {"email": "a@acme.com", "max_uses": 3},
            {"email": "a@acme.com", "role": ""},
        ],
    )
    def test_create_bad_body(self, client: HttpClient, body: object) -> None:
        """An invitation that is neither one email nor a list of domains, or is malformed, is a 422."""
        reply = client.request("POST", f"{BASE}/invitations", json=body, headers=ALICE)
        assert_error(reply, 422, "invalid_input")

    def test_admin_cannot_invite_owner(self, client: HttpClient) -> None:
        """An ADMIN inviting someone as OWNER gets 403 role_escalation."""
        reply = client.request(
            "POST", f"{BASE}/invitations", json={"email": "x@acme.com", "role": "OWNER"}, headers=BOB
        )
        assert_error(reply, 403, "role_escalation")

    @pytest.mark.parametrize("token", ["garbage", "x" * 4000, "a.b.c"])
    def test_forged_token(self, client: HttpClient, token: str) -> None:
        """A token that was not signed by the kit is refused without a 5xx."""
        preview = client.request("POST", "/tk/invitations/preview", json={"token": token})
        assert_error(preview, 422, "invalid_invitation_token")


class TestIsolation:
    def test_stranger_sees_nothing(self, client: HttpClient) -> None:
        """A stranger is refused every listing exactly as for an organization that does not exist."""
        for resource in ("members", "api-keys", "invitations"):
            existing = client.request("GET", f"{BASE}/{resource}", headers=MALLORY)
            missing = client.request("GET", f"/tk/organizations/no_such_org/{resource}", headers=MALLORY)
            assert_error(existing, 403, "permission_denied")
            assert (missing.status, missing.json["error"]["code"]) == (403, "permission_denied")

    def test_stranger_cannot_touch(self, client: HttpClient) -> None:
        """A stranger can neither change a member nor revoke a key of the organization."""
        key_id = issue_key(client).json["api_key"]["id"]
        reply = client.request("PATCH", f"{BASE}/members/carol", json={"role": "ADMIN"}, headers=MALLORY)
        assert_error(reply, 403, "permission_denied")
        assert_error(
            client.request("POST", f"{BASE}/api-keys/{key_id}/revoke", headers=MALLORY),
            403,
            "permission_denied",
        )
        assert_error(
            client.request("DELETE", f"{BASE}/members/carol", headers=MALLORY), 403, "permission_denied"
        )

    def test_ids_of_another_organization_are_unknown(self, client: HttpClient) -> None:
        """org_1's key and invitation, addressed through org_2, answer 404 as an unknown id would."""
        key_id = issue_key(client).json["api_key"]["id"]
        invitation_id = invite_email(client, "dave@acme.com").json["invitation"]["id"]
        other = f"/tk/organizations/{OTHER_ORG}"
        foreign = client.request("POST", f"{other}/api-keys/{key_id}/revoke", headers=MALLORY)
        unknown = client.request("POST", f"{other}/api-keys/unknown-id/revoke", headers=MALLORY)
        assert_error(foreign, 404, "api_key_not_found")
        assert_error(unknown, 404, "api_key_not_found")
        invitation = client.request("POST", f"{other}/invitations/{invitation_id}/revoke", headers=MALLORY)
        assert_error(invitation, 404, "invitation_not_found")
        assert_error(
            client.request("DELETE", f"{other}/members/carol", headers=MALLORY), 404, "member_not_found"
        )

    def test_key_of_one_organization_stays_there(self, client: HttpClient) -> None:
        """A key issued by org_2 authenticates as org_2, never as org_1."""
        base = f"/tk/organizations/{OTHER_ORG}/api-keys"
        reply = client.request("POST", base, json={"name": "theirs"}, headers=MALLORY)
        assert reply.status == 201
        verified = client.request("GET", "/whoami-key", headers={"X-API-Key": reply.json["key"]})
        assert verified.json["organization_id"] == OTHER_ORG


class TestPermissionGuard:
    def test_member_refused(self, client: HttpClient) -> None:
        """A MEMBER on an admin-only route gets 403 permission_denied naming the action."""
        reply = client.request("POST", f"/orgs/{ORG}/danger", headers=CAROL)
        assert_error(reply, 403, "permission_denied")
        assert reply.json["error"]["action"] == "members:remove"

    def test_admin_allowed(self, client: HttpClient) -> None:
        """An ADMIN passes, and the route sees who it is and with which role."""
        reply = client.request("POST", f"/orgs/{ORG}/danger", headers=BOB)
        assert reply.status == 200
        assert reply.json == {"organization_id": ORG, "user_id": "bob", "role": "ADMIN"}

    def test_stranger_refused(self, client: HttpClient) -> None:
        """A user of another organization gets 403 permission_denied."""
        assert_error(client.request("POST", f"/orgs/{ORG}/danger", headers=MALLORY), 403, "permission_denied")


@pytest.mark.parametrize("adapter", ADAPTERS)
class TestEveryDialect:
    def test_whole_contract_flow(self, adapter: str, clock: FrozenClock, engine: sa.Engine) -> None:
        """Keys, invitations, role changes and refusals answer the same on SQLite, PostgreSQL and MariaDB."""
        client = build(adapter, clock, engine)
        issued = issue_key(client, [REPORTS_SCOPE])
        key, key_id = issued.json["key"], issued.json["api_key"]["id"]
        assert client.request("GET", "/reports", headers={"Authorization": f"Bearer {key}"}).status == 200
        assert_error(client.request("GET", "/reports"), 401, "invalid_api_key")
        token = invite_email(client, "dave@acme.com").json["token"]
        dave = user("dave", "dave@acme.com")
        assert (
            client.request("POST", "/tk/invitations/accept", json={"token": token}, headers=dave).status
            == 200
        )
        assert_error(
            client.request("PATCH", f"{BASE}/members/dave", json={"role": "OWNER"}, headers=BOB),
            403,
            "role_escalation",
        )
        assert_error(client.request("DELETE", f"{BASE}/members/alice", headers=ALICE), 403, "last_owner")
        assert_error(client.request("GET", f"{BASE}/members", headers=MALLORY), 403, "permission_denied")
        assert client.request("POST", f"{BASE}/api-keys/{key_id}/revoke", headers=ALICE).status == 200
        assert_error(client.request("GET", "/reports", headers={"X-API-Key": key}), 401, "invalid_api_key")
        assert member_ids(client) == {"alice", "bob", "carol", "dave"}
