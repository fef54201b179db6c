"""Usage credits, rate limits and bound keys over HTTP, on both adapters (SQLite).

The management endpoints issue a key with a ``subject`` and ``limits``, list keys by subject, set and add
credits and revoke every key of a subject; the services decide who may, as for every other endpoint. A key
whose credits run out is answered 429 ``usage_exceeded`` by ``tk.api_key(cost=1)`` /
``require_api_key(cost=1)`` (the ``/metered`` route of ``tests/http_apps.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tenantkit import PermissionRegistry, Permissions, Role, TenantKit
from tenantkit._tables import api_keys
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, BUILDERS, HttpClient, make_kit
from tests.test_http_contract import ALICE, BASE, BOB, CAROL, assert_error, seed

THUMBPRINT = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
# reports:export is a permission of the table that only OWNER holds: ADMIN bob may not grant it.
POLICY = Permissions(registry=PermissionRegistry(["reports:read", "reports:export"])).with_actions(
    "reports:export", Role.OWNER
)


def build(adapter: str, engine: sa.Engine, clock: FrozenClock, **options: Any) -> HttpClient:
    kit: TenantKit = make_kit(clock=clock, **options)
    seed(kit, engine)
    return BUILDERS[adapter](kit, engine)


@pytest.fixture(params=ADAPTERS)
def client(request: pytest.FixtureRequest, clock: FrozenClock, sqlite_engine: sa.Engine) -> HttpClient:
    """The contract suite's seeded application (alice OWNER, bob ADMIN, carol MEMBER), once per adapter."""
    return build(request.param, sqlite_engine, clock)


def issue(client: HttpClient, body: dict[str, Any], headers: dict[str, str] = ALICE) -> dict[str, Any]:
    reply = client.request("POST", f"{BASE}/api-keys", json={"name": "robot", **body}, headers=headers)
    assert reply.status == 201, reply
    assert reply.headers.get("Cache-Control") == "no-store"
    issued: dict[str, Any] = reply.json
    return issued


def listed(client: HttpClient, query: str = "") -> list[dict[str, Any]]:
    reply = client.request("GET", f"{BASE}/api-keys{query}", headers=CAROL)
    assert reply.status == 200, reply
    items: list[dict[str, Any]] = reply.json["items"]
    return items


class TestIssuing:
    def test_a_limited_bound_key_shows_its_subject_and_limits(self, client: HttpClient) -> None:
        """Issued with a device subject, credits, a refill, rate limits, networks and a thumbprint, the key's
        answer and its listing show them, normalized, and never the key itself."""
        issued = issue(
            client,
            {
                "subject": {"type": "device", "id": "SN-4711"},
                "limits": {
                    "credits": 20,
                    "refill_amount": 100,
                    "refill_period": "day",
                    "rate_limits": ["100/minute"],
                    "allowed_cidrs": ["10.20.0.0/16", "2001:db8::1"],
                    "certificate_sha256": THUMBPRINT.upper(),
                },
            },
        )
        expected_limits = {
            "credits": 20,
            "refill_amount": 100,
            "refill_period": "day",
            "rate_limits": ["100 per 1 minute"],
            "allowed_cidrs": ["10.20.0.0/16", "2001:db8::1/128"],
            "certificate_sha256": THUMBPRINT,
        }
        assert issued["api_key"]["subject"] == {"type": "device", "id": "SN-4711"}
        assert issued["api_key"]["limits"] == expected_limits
        (item,) = listed(client)
        assert item["subject"] == {"type": "device", "id": "SN-4711"}
        assert item["limits"] == expected_limits
        assert issued["key"] not in str(item)

    def test_a_plain_key_stands_for_its_organization(self, client: HttpClient) -> None:
        """Without ``subject`` and ``limits`` the key stands for the organization and has no limits."""
        issued = issue(client, {})
        assert issued["api_key"]["subject"] == {"type": "organization", "id": None}
        assert issued["api_key"]["limits"] is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"limits": {"credits": -1}}, "limits.credits"),
            ({"limits": {"rate_limits": ["lots"]}}, "limits.rate_limits"),
            ({"limits": {"rate_limits": "100/minute"}}, "limits.rate_limits"),
            ({"limits": {"allowed_cidrs": ["10.0.0.0/33"]}}, "limits.allowed_cidrs"),
            ({"limits": {"certificate_sha256": "abc"}}, "limits.certificate_sha256"),
            ({"limits": {"refill_amount": 10}}, "limits"),
            ({"limits": {"credits": 5, "burst": 1}}, "limits.burst"),
            ({"subject": {"type": "device"}}, "subject"),
            ({"subject": {"type": "robot", "id": "r2"}}, "subject.type"),
            ({"subject": {"type": "user", "id": "nobody"}}, "subject"),
        ],
    )
    def test_bad_limits_or_subject_are_a_422(
        self, client: HttpClient, sqlite_engine: sa.Engine, body: dict[str, Any], field: str
    ) -> None:
        """Malformed limits, a subject without an id or of an unknown type, or a user subject who is not a
        member: 422 ``invalid_input`` with the stable body, the field named, and no key written."""
        reply = client.request("POST", f"{BASE}/api-keys", json={"name": "robot", **body}, headers=ALICE)
        assert_error(reply, 422, "invalid_input")
        assert reply.json["error"]["field"] == field, reply.json
        assert not reply.json["error"]["message"].startswith("Value error")
        with sqlite_engine.connect() as connection:
            assert connection.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar() == 0

    def test_a_member_may_not_issue_a_limited_key(self, client: HttpClient) -> None:
        """Limits do not widen who may issue: a MEMBER is refused 403 ``permission_denied``."""
        reply = client.request(
            "POST", f"{BASE}/api-keys", json={"name": "robot", "limits": {"credits": 5}}, headers=CAROL
        )
        assert_error(reply, 403, "permission_denied")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_admin_may_not_mint_a_limited_key_with_a_scope_it_lacks(
    adapter: str, sqlite_engine: sa.Engine, clock: FrozenClock
) -> None:
    """With a permission registry, ADMIN bob (who lacks ``reports:export``) cannot issue a key carrying it,
    limits and subject notwithstanding: 403 ``permission_escalation``; OWNER alice can."""
    client = build(adapter, sqlite_engine, clock, permissions=POLICY)
    body = {
        "name": "robot",
        "scopes": ["reports:export"],
        "subject": {"type": "device", "id": "SN-1"},
        "limits": {"credits": 5, "rate_limits": ["10/minute"]},
    }
    refused = client.request("POST", f"{BASE}/api-keys", json=body, headers=BOB)
    assert_error(refused, 403, "permission_escalation")
    assert client.request("POST", f"{BASE}/api-keys", json=body, headers=ALICE).status == 201


class TestListingBySubject:
    def test_the_listing_filters_by_subject(self, client: HttpClient) -> None:
        """``subject_type``/``subject_id`` list a device's keys, a user's, or the organization's own."""
        device = issue(client, {"subject": {"type": "device", "id": "SN-1"}})["api_key"]["id"]
        other_device = issue(client, {"subject": {"type": "device", "id": "SN-2"}})["api_key"]["id"]
        users = issue(client, {"subject": {"type": "user", "id": "carol"}})["api_key"]["id"]
        own = issue(client, {})["api_key"]["id"]

        def ids(query: str) -> set[str]:
            return {item["id"] for item in listed(client, query)}

        assert ids("?subject_type=device&subject_id=SN-1") == {device}
        assert ids("?subject_type=user&subject_id=carol") == {users}
        assert ids("?subject_type=organization") == {own}
        assert ids("") == {device, other_device, users, own}

    @pytest.mark.parametrize(
        "query", ["subject_type=device", "subject_id=SN-1", "subject_type=robot&subject_id=x"]
    )
    def test_a_half_or_unknown_subject_is_a_422(self, client: HttpClient, query: str) -> None:
        """A device without its id, an id without a type, or an unknown type: 422 ``invalid_input``."""
        assert_error(client.request("GET", f"{BASE}/api-keys?{query}", headers=CAROL), 422, "invalid_input")


class TestCredits:
    def test_exhausted_credits_are_a_429_and_an_admin_sets_more(self, client: HttpClient) -> None:
        """A key with 2 credits passes ``/metered`` twice, then gets 429 ``usage_exceeded`` with what
        remains; after ADMIN bob sets 1 credit (PUT) it passes once more."""
        issued = issue(client, {"limits": {"credits": 2}})
        key, key_id = {"X-API-Key": issued["key"]}, issued["api_key"]["id"]
        remaining = [client.request("GET", "/metered", headers=key).json["credits_remaining"] for _ in "ab"]
        assert remaining == [1, 0]
        exhausted = client.request("GET", "/metered", headers=key)
        assert_error(exhausted, 429, "usage_exceeded")
        assert exhausted.json["error"]["remaining"] == 0
        assert exhausted.json["error"]["reason"] == "usage_exceeded"

        reply = client.request("PUT", f"{BASE}/api-keys/{key_id}/credits", json={"credits": 1}, headers=BOB)
        assert reply.status == 200, reply
        assert reply.json["limits"]["credits"] == 1
        assert client.request("GET", "/metered", headers=key).status == 200
        assert_error(client.request("GET", "/metered", headers=key), 429, "usage_exceeded")

    def test_a_refilled_key_says_when_to_retry(self, client: HttpClient) -> None:
        """An exhausted key refilled per day answers 429 with ``Retry-After`` until midnight UTC."""
        issued = issue(client, {"limits": {"credits": 0, "refill_amount": 5, "refill_period": "day"}})
        reply = client.request("GET", "/metered", headers={"X-API-Key": issued["key"]})
        assert_error(reply, 429, "usage_exceeded")
        assert int(reply.headers["Retry-After"]) > 0

    def test_add_credits_adds_takes_away_and_floors_at_zero(self, client: HttpClient) -> None:
        """POST ``credits/add`` adds (or, negative, takes away, never below zero) to what a key has left."""
        key_id = issue(client, {"limits": {"credits": 3}})["api_key"]["id"]
        url = f"{BASE}/api-keys/{key_id}/credits/add"
        assert client.request("POST", url, json={"credits": 4}, headers=ALICE).json["limits"]["credits"] == 7
        assert (
            client.request("POST", url, json={"credits": -10}, headers=ALICE).json["limits"]["credits"] == 0
        )

    def test_a_plain_key_gets_a_limit_by_set_not_add(self, client: HttpClient) -> None:
        """Adding to a key without credits is a 422 (nothing to add to); setting gives it a limit."""
        issued = issue(client, {})
        key_id = issued["api_key"]["id"]
        added = client.request(
            "POST", f"{BASE}/api-keys/{key_id}/credits/add", json={"credits": 1}, headers=ALICE
        )
        assert_error(added, 422, "invalid_input")
        put = client.request("PUT", f"{BASE}/api-keys/{key_id}/credits", json={"credits": 1}, headers=ALICE)
        assert put.json["limits"]["credits"] == 1
        assert client.request("GET", "/metered", headers={"X-API-Key": issued["key"]}).status == 200
        assert_error(
            client.request("GET", "/metered", headers={"X-API-Key": issued["key"]}), 429, "usage_exceeded"
        )

    @pytest.mark.parametrize("credits", [-1, 1.5, "3", True, None])
    def test_bad_credits_are_a_422(self, client: HttpClient, credits: object) -> None:
        """A negative balance, a fraction, a string, a boolean or nothing: 422 ``invalid_input``."""
        key_id = issue(client, {"limits": {"credits": 3}})["api_key"]["id"]
        reply = client.request(
            "PUT", f"{BASE}/api-keys/{key_id}/credits", json={"credits": credits}, headers=ALICE
        )
        assert_error(reply, 422, "invalid_input")

    def test_a_member_may_not_change_credits_nor_touch_another_organizations_key(
        self, client: HttpClient
    ) -> None:
        """MEMBER carol is refused 403; an unknown key (or another organization's) is 404."""
        key_id = issue(client, {"limits": {"credits": 3}})["api_key"]["id"]
        for method, path in (("PUT", "credits"), ("POST", "credits/add")):
            url = f"{BASE}/api-keys/{key_id}/{path}"
            assert_error(
                client.request(method, url, json={"credits": 9}, headers=CAROL), 403, "permission_denied"
            )
            other = f"/tk/organizations/org_2/api-keys/{key_id}/{path}"
            mallory = {"X-User": "mallory"}
            assert_error(
                client.request(method, other, json={"credits": 9}, headers=mallory), 404, "api_key_not_found"
            )
        assert listed(client)[0]["limits"]["credits"] == 3


class TestRevokingBySubject:
    def test_every_active_key_of_the_subject_is_revoked(self, client: HttpClient) -> None:
        """Revoking device SN-1 revokes its two keys (and lists them), and leaves the other keys working."""
        first = issue(client, {"subject": {"type": "device", "id": "SN-1"}})
        second = issue(client, {"subject": {"type": "device", "id": "SN-1"}})
        other = issue(client, {"subject": {"type": "device", "id": "SN-2"}})
        reply = client.request(
            "POST",
            f"{BASE}/api-keys/revoke-subject",
            json={"subject": {"type": "device", "id": "SN-1"}},
            headers=BOB,
        )
        assert reply.status == 200, reply
        assert sorted(reply.json["revoked"]) == sorted([first["api_key"]["id"], second["api_key"]["id"]])
        for gone in (first, second):
            assert_error(
                client.request("GET", "/whoami-key", headers={"X-API-Key": gone["key"]}),
                401,
                "invalid_api_key",
            )
        assert client.request("GET", "/whoami-key", headers={"X-API-Key": other["key"]}).status == 200
        again = client.request(
            "POST",
            f"{BASE}/api-keys/revoke-subject",
            json={"subject": {"type": "device", "id": "SN-1"}},
            headers=BOB,
        )
        assert again.json == {"revoked": []}

    def test_a_member_may_not_and_a_subject_is_required(self, client: HttpClient) -> None:
        """MEMBER carol is refused 403; a body without a subject (or a device without its id) is a 422."""
        url = f"{BASE}/api-keys/revoke-subject"
        device = {"subject": {"type": "device", "id": "SN-1"}}
        assert_error(client.request("POST", url, json=device, headers=CAROL), 403, "permission_denied")
        assert_error(client.request("POST", url, json={}, headers=ALICE), 422, "invalid_input")
        bad = {"subject": {"type": "device"}}
        assert_error(client.request("POST", url, json=bad, headers=ALICE), 422, "invalid_input")
