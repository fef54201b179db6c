"""Generated bad requests against both adapters: never a 5xx, and every refusal is a JSON error with a code.

Requests follow the route templates of ``tests/http_apps.py`` with hypothesis choosing the path segments
(real ids, random text, oversized text), the method, the query string (with cursors drawn from the
library's own codec: valid, mutated, or made by hand), the body (JSON of any shape, JSON
close to the request models, raw bytes with any content type) and the credentials (the identity-provider
stand-in headers, API keys that are junk, well-formed but unknown, or real). A request whose method the
route serves must be answered by tenantkit, so a refusal must be ``{"error": {"code", "message"}}``; any
other method is the framework's own 404/405, which must still not be a 5xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantkit.api_keys._format import CHECKSUM_LENGTH, checksum
from tenantkit.testing import FrozenClock
from tests.databases import delete_all_rows
from tests.http_apps import ADAPTERS, BUILDERS, HttpClient, Reply, make_kit
from tests.strategies import cursors
from tests.test_http_contract import ALICE, BASE, seed

ORG_TEMPLATE = "/tk/organizations/{org}"
ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", ORG_TEMPLATE + "/members"),
    ("PATCH", ORG_TEMPLATE + "/members/{id}"),
    ("DELETE", ORG_TEMPLATE + "/members/{id}"),
    ("POST", ORG_TEMPLATE + "/leave"),
    ("POST", ORG_TEMPLATE + "/transfer-ownership"),
    ("GET", ORG_TEMPLATE + "/api-keys"),
    ("POST", ORG_TEMPLATE + "/api-keys"),
    ("POST", ORG_TEMPLATE + "/api-keys/{id}/revoke"),
    ("POST", ORG_TEMPLATE + "/api-keys/{id}/rotate"),
    ("PUT", ORG_TEMPLATE + "/api-keys/{id}/credits"),
    ("POST", ORG_TEMPLATE + "/api-keys/{id}/credits/add"),
    ("POST", ORG_TEMPLATE + "/api-keys/revoke-subject"),
    ("GET", ORG_TEMPLATE + "/invitations"),
    ("POST", ORG_TEMPLATE + "/invitations"),
    ("POST", ORG_TEMPLATE + "/invitations/{id}/revoke"),
    ("POST", ORG_TEMPLATE + "/invitations/{id}/resend"),
    ("POST", "/tk/invitations/preview"),
    ("POST", "/tk/invitations/accept"),
    ("GET", ORG_TEMPLATE + "/audit-events"),
    ("GET", "/reports"),
    ("GET", "/whoami-key"),
    ("GET", "/metered"),
    ("POST", "/orgs/{org}/danger"),
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

# Header values must be latin-1 for both test clients; printable ASCII keeps them valid HTTP.
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
unicode_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
oversized_text = st.integers(min_value=256, max_value=5000).map(lambda n: "x" * n)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    unicode_text,
    oversized_text,
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(unicode_text, children, max_size=4)
    ),
    max_leaves=12,
)
roles = st.sampled_from(["OWNER", "ADMIN", "MEMBER", "owner", "KING", ""])
emails = st.one_of(st.sampled_from(["dave@acme.com", "a@b", "@acme.com", "x@gmail.com"]), unicode_text)
# Bodies close to the request models, so validation passes often enough to reach the services.
near_model_bodies = st.fixed_dictionaries(
    {},
    optional={
        "role": st.one_of(roles, json_values),
        "demote_to": roles,
        "to_user_id": st.one_of(st.sampled_from(["bob", "carol", "mallory", "alice"]), unicode_text),
        "name": st.one_of(unicode_text, oversized_text, json_values),
        "scopes": st.one_of(st.lists(unicode_text, max_size=5), json_values),
        "expires_in_seconds": st.one_of(st.integers(min_value=-10, max_value=10**12), json_values),
        "grace_seconds": st.one_of(st.integers(min_value=-10, max_value=10**9), json_values),
        "email": emails,
        "allowed_domains": st.one_of(
            st.lists(st.sampled_from(["acme.com", "gmail.com", "", "-x-"])), json_values
        ),
        "max_uses": st.one_of(st.integers(min_value=-5, max_value=2_000_000), json_values),
        "token": st.one_of(unicode_text, oversized_text, json_values),
        "credits": st.one_of(st.integers(min_value=-(2**63), max_value=2**63), json_values),
        "subject": st.one_of(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["user", "device", "organization", "robot"])},
                optional={"id": st.one_of(st.sampled_from(["bob", "SN-1"]), unicode_text, oversized_text)},
            ),
            json_values,
        ),
        "limits": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "credits": st.one_of(st.integers(min_value=-5, max_value=2**63), json_values),
                    "refill_amount": st.integers(min_value=-5, max_value=100),
                    "refill_period": st.sampled_from(["day", "month", "week"]),
                    "rate_limits": st.one_of(
                        st.lists(st.sampled_from(["10/minute", "1 per day", "lots", ""]), max_size=3),
                        json_values,
                    ),
                    "allowed_cidrs": st.one_of(
                        st.lists(st.sampled_from(["10.0.0.0/8", "::1", "300.0.0.1", ""]), max_size=3),
                        json_values,
                    ),
                    "certificate_sha256": st.one_of(st.just("ab" * 32), unicode_text),
                },
            ),
            json_values,
        ),
    },
)
bodies = st.one_of(st.none(), json_values, near_model_bodies)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"{",
            b"[" * 5000 + b"]" * 5000,
            b'{"name": ' + b"9" * 5000 + b"}",
            b'{"token": "\xff\xfe"}',
            b"null",
            b'"just a string"',
        ]
    ),
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/merge-patch+json",
        "",
    ]
)


def usable_segment(text: str) -> bool:
    # "." and ".." are normalised away by URL handling, and "" or "/" would change the route itself.
    return text not in {"", ".", ".."} and "/" not in text


@dataclass
class Target:
    """A seeded application and the real ids and key a generated request may use."""

    client: HttpClient
    key: str
    key_id: str
    invitation_id: str
    token: str


def seeded_target(adapter: str, clock: FrozenClock, engine: sa.Engine) -> Target:
    """The seeded application with one real key and one pending invitation."""
    kit = make_kit(clock=clock)
    seed(kit, engine)
    client = BUILDERS[adapter](kit, engine)
    issued = client.request(
        "POST", f"{BASE}/api-keys", json={"name": "fuzz", "scopes": ["reports:read"]}, headers=ALICE
    )
    invited = client.request("POST", f"{BASE}/invitations", json={"email": "dave@acme.com"}, headers=ALICE)
    assert issued.status == 201
    assert invited.status == 201
    return Target(
        client,
        issued.json["key"],
        issued.json["api_key"]["id"],
        invited.json["invitation"]["id"],
        invited.json["token"],
    )


@pytest.fixture(params=ADAPTERS)
def target(request: pytest.FixtureRequest, clock: FrozenClock, sqlite_engine: sa.Engine) -> Target:
    """The seeded application on SQLite, once per adapter."""
    return seeded_target(request.param, clock, sqlite_engine)


@pytest.fixture(params=ADAPTERS)
def server_target(request: pytest.FixtureRequest, clock: FrozenClock, server_engine: sa.Engine) -> Target:
    """The seeded application on PostgreSQL or MariaDB, once per adapter."""
    return seeded_target(request.param, clock, server_engine)


def well_formed_unknown_key(real: str, body: str) -> str:
    """A key with the real key's prefix, length and a valid checksum, but another body."""
    prefix_length = real.index("_", 3) + 1
    length = len(real) - prefix_length - CHECKSUM_LENGTH
    new_body = (body * length)[:length] if body else "A" * length
    return real[:prefix_length] + new_body + checksum(new_body)


@st.composite
def requests(draw: st.DrawFn, target: Target) -> tuple[str, str, dict[str, str], Any, bytes | None]:
    """One generated request: method, path with query, headers, JSON body and raw body."""
    route_method, template = draw(st.sampled_from(ROUTES))
    method = draw(st.one_of(st.just(route_method), st.just(route_method), st.sampled_from(METHODS)))
    segment = st.one_of(unicode_text, oversized_text).filter(usable_segment)
    org = draw(st.one_of(st.sampled_from(["org_1", "org_2", "org_1 ", "ORG_1"]), segment))
    thing = draw(st.one_of(st.sampled_from([target.key_id, target.invitation_id, "bob", "alice"]), segment))
    path = template.format(org=quote(org, safe=""), id=quote(thing, safe=""))
    query_text = st.one_of(st.integers(-5, 1000).map(str), unicode_text, oversized_text)
    query = draw(
        st.fixed_dictionaries(
            {},
            optional={"limit": query_text, "cursor": st.one_of(cursors(), query_text), "x": query_text},
        )
    )
    if query:
        path += "?" + urlencode(query)
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["X-User"] = draw(
            st.one_of(st.sampled_from(["alice", "bob", "carol", "mallory", "dave"]), header_text)
        )
    if draw(st.booleans()):
        headers["X-Email"] = draw(st.one_of(st.just("dave@acme.com"), header_text))
        headers["X-Email-Verified"] = draw(st.sampled_from(["true", "false", "TRUE", "yes", ""]))
    key = draw(
        st.one_of(
            st.just(target.key),
            header_text,
            header_text.map(
                lambda body: well_formed_unknown_key(target.key, "".join(c for c in body if c.isalnum()))
            ),
        )
    )
    credential = draw(st.sampled_from(["none", "bearer", "header", "scheme"]))
    if credential == "bearer":
        headers["Authorization"] = f"Bearer {key}"
    elif credential == "header":
        headers["X-API-Key"] = key
    elif credential == "scheme":
        headers["Authorization"] = draw(header_text)
    raw: bytes | None = None
    body: Any = None
    if draw(st.booleans()):
        raw = draw(raw_bodies)
        headers["Content-Type"] = draw(content_types)
    else:
        body = draw(st.one_of(bodies, st.just({"token": target.token})))
    return method, path, headers, body, raw


def check(reply: Reply, answered_by_tenantkit: bool) -> None:
    """No 5xx ever; a refusal by a tenantkit route is a JSON error with a code and a message."""
    assert reply.status < 500, reply
    if not answered_by_tenantkit:
        return
    assert reply.json is not None, reply
    if reply.status >= 400:
        error = reply.json["error"]
        assert isinstance(error["code"], str)
        assert error["code"]
        assert isinstance(error["message"], str)
        if reply.status == 401:
            assert "WWW-Authenticate" in reply.headers


class TestGeneratedRequests:
    @settings(max_examples=150)
    @given(data=st.data())
    def test_no_server_errors(self, target: Target, data: st.DataObject) -> None:
        """Any generated request is answered below 500; tenantkit's refusals are JSON errors with a code."""
        method, path, headers, body, raw = data.draw(requests(target))
        reply = target.client.request(method, path, json=body, headers=headers, content=raw)
        served_methods = {route_method for route_method, template in ROUTES if _matches(template, path)}
        check(reply, method in served_methods)

    @settings(max_examples=40)
    @given(data=st.data())
    def test_no_server_errors_on_server_databases(self, server_target: Target, data: st.DataObject) -> None:
        """On PostgreSQL and MariaDB too, generated requests (NUL bytes, odd text) never reach a 5xx."""
        method, path, headers, body, raw = data.draw(requests(server_target))
        reply = server_target.client.request(method, path, json=body, headers=headers, content=raw)
        served_methods = {route_method for route_method, template in ROUTES if _matches(template, path)}
        check(reply, method in served_methods)

    @pytest.mark.parametrize(
        "raw",
        [b"[" * 100_000, b'{"name": ' + b"9" * 10_000 + b"}", b"\xff\xfe\x00", b'{"name": "a", "name": 5}'],
    )
    def test_pathological_bodies(self, target: Target, raw: bytes) -> None:
        """Absurd nesting, an over-long number or undecodable bytes are a 422 invalid_input, never 5xx."""
        headers = {**ALICE, "Content-Type": "application/json"}
        reply = target.client.request("POST", f"{BASE}/api-keys", headers=headers, content=raw)
        assert reply.status == 422, reply
        assert reply.json["error"]["code"] == "invalid_input"


def _matches(template: str, path: str) -> bool:
    """Whether ``path`` (with its query) fits ``template``, whose ``{...}`` stand for one segment."""
    parts = template.split("/")
    actual = path.split("?", 1)[0].split("/")
    if len(parts) != len(actual):
        return False
    return all(part.startswith("{") or part == segment for part, segment in zip(parts, actual, strict=True))


def test_template_matching() -> None:
    """The matcher that decides which replies must be tenantkit's recognises a route and rejects others."""
    assert _matches(ORG_TEMPLATE + "/members/{id}", "/tk/organizations/o%20rg/members/bob?limit=3")
    assert not _matches(ORG_TEMPLATE + "/members", "/tk/organizations/org/members/bob")


# -- both adapters give the same answer ------------------------------------------------------------------

SYMBOLIC_IDS = ("<key_id>", "<invitation_id>", "bob", "carol", "alice", "nope")
SYMBOLIC_KEYS = ("<key>", "<unknown_key>", "junk", None)


@st.composite
def symbolic_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request naming the seeded key, invitation and token by symbol, to replay on either app."""
    method, template = draw(st.sampled_from(ROUTES))
    odd_segment = unicode_text.filter(usable_segment)
    org = draw(st.one_of(st.sampled_from(["org_1", "org_2", "org_1 ", "x" * 300, "ünï"]), odd_segment))
    thing = draw(st.one_of(st.sampled_from(SYMBOLIC_IDS), odd_segment))
    query = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "limit": st.sampled_from(["0", "2", "abc", "9999", "zz"]),
                "cursor": st.one_of(st.sampled_from(["0", "abc", "zz"]), cursors()),
            },
        )
    )
    user_id = draw(st.sampled_from(["alice", "bob", "carol", "mallory", "dave", None]))
    email = draw(
        st.sampled_from([None, ("dave@acme.com", "true"), ("dave@acme.com", "false"), ("x@y", "true")])
    )
    credential = draw(st.sampled_from(["bearer", "header", "basic"]))
    key = draw(st.sampled_from(SYMBOLIC_KEYS))
    body: Any = draw(st.one_of(st.none(), near_model_bodies, st.just({"token": "<token>"}), json_values))
    raw = draw(st.one_of(st.none(), st.sampled_from([b"{", b"\x80", b"[]", b"null", b"{}"])))
    content_type = draw(st.sampled_from(["application/json", "text/plain", ""]))
    return {
        "method": method,
        "template": template,
        "org": org,
        "thing": thing,
        "query": query,
        "user": user_id,
        "email": email,
        "credential": credential,
        "key": key,
        "body": body,
        "raw": raw,
        "content_type": content_type,
    }


def replay(target: Target, symbolic: dict[str, Any]) -> tuple[int, object]:
    """Send ``symbolic`` to ``target``: the outcome is the status and the error code or the field names."""
    names = {
        "<key_id>": target.key_id,
        "<invitation_id>": target.invitation_id,
        "<key>": target.key,
        "<unknown_key>": well_formed_unknown_key(target.key, "Z"),
        "<token>": target.token,
    }
    thing = names.get(symbolic["thing"], symbolic["thing"])
    path = symbolic["template"].format(org=quote(symbolic["org"], safe=""), id=quote(thing, safe=""))
    if symbolic["query"]:
        path += "?" + urlencode(symbolic["query"])
    headers: dict[str, str] = {}
    if symbolic["user"] is not None:
        headers["X-User"] = symbolic["user"]
    if symbolic["email"] is not None:
        headers["X-Email"], headers["X-Email-Verified"] = symbolic["email"]
    if symbolic["key"] is not None:
        key = names.get(symbolic["key"], symbolic["key"])
        if symbolic["credential"] == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        elif symbolic["credential"] == "header":
            headers["X-API-Key"] = key
        else:
            headers["Authorization"] = f"Basic {key}"
    body = symbolic["body"]
    if body == {"token": "<token>"}:
        body = {"token": target.token}
    raw = symbolic["raw"]
    if raw is not None:
        headers["Content-Type"] = symbolic["content_type"]
    reply = target.client.request(symbolic["method"], path, json=body, headers=headers, content=raw)
    assert reply.status < 500, reply
    if reply.status >= 400:
        return reply.status, reply.json["error"]["code"]
    return reply.status, sorted(reply.json)


class TestAdaptersAgree:
    @settings(max_examples=40)
    @given(script=st.lists(symbolic_requests(), min_size=1, max_size=4))
    def test_same_answers(
        self, clock: FrozenClock, sqlite_engine: sa.Engine, script: list[dict[str, Any]]
    ) -> None:
        """A generated sequence of requests gets the same statuses and error codes from FastAPI and Flask."""
        outcomes = {}
        for adapter in ADAPTERS:
            delete_all_rows(sqlite_engine)
            target = seeded_target(adapter, clock, sqlite_engine)
            outcomes[adapter] = [replay(target, symbolic) for symbolic in script]
        assert outcomes["fastapi"] == outcomes["flask"]
