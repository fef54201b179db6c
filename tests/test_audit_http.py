"""The audit log over HTTP: both adapters record each request's context and serve ``audit.list``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tenantkit import HOST, HttpSettings, Role, TenantKit
from tenantkit.audit import RequestContext
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, build_fastapi, build_flask, make_kit

ORG = "org_1"
BASE = f"/tk/organizations/{ORG}"
PROXY = "10.0.0.5"
Call = Callable[..., tuple[int, Any]]


def client_for(adapter: str, kit: TenantKit, engine: sa.Engine) -> Call:
    """A caller of the app whose connections all come from the proxy ``PROXY``."""
    if adapter == "fastapi":
        client = TestClient(build_fastapi(kit, engine), client=(PROXY, 4711))

        def call_fastapi(
            method: str, path: str, headers: dict[str, str], json: object = None
        ) -> tuple[int, Any]:
            response = client.request(method, path, headers=headers, json=json)
            return response.status_code, response.json()

        return call_fastapi
    flask_client = build_flask(kit, engine).test_client()

    def call_flask(method: str, path: str, headers: dict[str, str], json: object = None) -> tuple[int, Any]:
        response = flask_client.open(
            path, method=method, headers=headers, json=json, environ_base={"REMOTE_ADDR": PROXY}
        )
        return response.status_code, response.get_json()

    return call_flask


@pytest.fixture(params=ADAPTERS)
def call(request: pytest.FixtureRequest, clock: FrozenClock, sqlite_engine: sa.Engine) -> Call:
    """The application on each adapter, behind a trusted proxy; alice OWNER, bob ADMIN, carol MEMBER."""
    kit = make_kit(clock=clock, http=HttpSettings(trusted_proxies=["10.0.0.0/8"]))
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "bob", Role.ADMIN, actor=HOST)
        kit.members.add(session, ORG, "carol", Role.MEMBER, actor=HOST)
    return client_for(request.param, kit, sqlite_engine)


def test_a_change_records_the_requests_context_and_the_log_lists_it(call: Call) -> None:
    """A change made through the adapter carries the client address (through the trusted proxy, never the
    forged hop before it), the user agent and the request id; ``GET .../audit-events`` lists it first."""
    headers = {
        "X-User": "alice",
        "X-Forwarded-For": "198.51.100.66, 203.0.113.9",
        "User-Agent": "audit-suite/1.0",
        "X-Request-ID": "req_7",
    }
    status, _ = call("PATCH", f"{BASE}/members/carol", headers, {"role": "ADMIN"})
    assert status == 200
    status, page = call("GET", f"{BASE}/audit-events?limit=2", {"X-User": "bob"})
    assert status == 200
    newest = page["items"][0]
    assert (newest["type"], newest["actor"], newest["targets"]) == (
        "member.role_changed",
        {"kind": "user", "id": "alice"},
        [{"type": "member", "id": "carol"}],
    )
    assert RequestContext(**newest["context"]) == RequestContext(
        ip_address="203.0.113.9", user_agent="audit-suite/1.0", request_id="req_7"
    )
    assert page["next_cursor"] is not None
    status, rest = call(
        "GET", f"{BASE}/audit-events?{urlencode({'cursor': page['next_cursor']})}", {"X-User": "bob"}
    )
    assert [item["data"]["user_id"] for item in rest["items"]] == ["bob", "alice"]


def test_filters_in_the_query_string(call: Call) -> None:
    """``event_types``, ``actor_kind``/``actor_id``, ``target_type``/``target_id`` and ``since`` filter."""
    call("PATCH", f"{BASE}/members/carol", {"X-User": "alice"}, {"role": "ADMIN"})

    def types(**query: str) -> list[str]:
        status, page = call("GET", f"{BASE}/audit-events?{urlencode(query)}", {"X-User": "alice"})
        assert status == 200, page
        return [item["type"] for item in page["items"]]

    assert types(event_types="member.role_changed,api_key.issued") == ["member.role_changed"]
    assert types(actor_id="alice") == ["member.role_changed"]
    assert types(actor_kind="host") == ["member.added"] * 3
    assert types(target_type="member", target_id="carol") == ["member.role_changed", "member.added"]
    assert types(since="2030-01-01T00:00:00Z", until="2030-01-02T00:00:00+00:00") == [
        "member.role_changed",
        "member.added",
        "member.added",
        "member.added",
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "2030-01-01T00:00:00"}, "since"),
        ({"target_type": "member"}, "target_id"),
        ({"event_types": "member.exploded"}, "event_types"),
        ({"actor_kind": "robot"}, "actor_kind"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_filters_are_422(call: Call, query: dict[str, str], field: str) -> None:
    """A naive time, half a target, an unknown type or kind, a bad limit: 422 ``invalid_input`` naming it."""
    status, body = call("GET", f"{BASE}/audit-events?{urlencode(query)}", {"X-User": "alice"})
    assert status == 422, body
    assert (body["error"]["code"], body["error"]["field"]) == ("invalid_input", field)


def test_a_member_may_not_read_the_log(call: Call) -> None:
    """``audit:read`` is OWNER's and ADMIN's: a MEMBER gets 403 ``permission_denied``."""
    status, body = call("GET", f"{BASE}/audit-events", {"X-User": "carol"})
    assert (status, body["error"]["code"], body["error"]["action"]) == (
        403,
        "permission_denied",
        "audit:read",
    )
