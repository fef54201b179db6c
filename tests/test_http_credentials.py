"""Ambiguous credentials: both adapters refuse a request that presents more than one API key, alike.

Issue 18, "also noted": with two ``Authorization`` headers FastAPI used the first and Flask joined them.
Now a request presenting two keys (a header twice, a comma-joined value, or ``Authorization`` and
``X-API-Key`` naming different keys) is a 401 ``ambiguous_api_key`` with ``WWW-Authenticate`` from either
adapter, even when one of the keys is valid; the same key in both headers is accepted.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tenantkit import InvalidApiKeyError
from tenantkit._http import WWW_AUTHENTICATE
from tenantkit.errors import AmbiguousApiKeyError
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, HttpClient
from tests.test_http_contract import assert_error, build, issue_key


@pytest.fixture(params=ADAPTERS)
def client(request: pytest.FixtureRequest, clock: FrozenClock, engine: sa.Engine) -> HttpClient:
    """The seeded application on each database, once per adapter."""
    return build(request.param, clock, engine)


def ambiguous_requests(valid: str, other: str) -> dict[str, list[tuple[str, str]]]:
    """Header lists that present two keys; ``valid`` verifies, ``other`` is another real key."""
    return {
        "two Authorization headers, valid first": [
            ("Authorization", f"Bearer {valid}"),
            ("Authorization", f"Bearer {other}"),
        ],
        "two Authorization headers, valid last": [
            ("Authorization", "Bearer junk"),
            ("Authorization", f"Bearer {valid}"),
        ],
        "the same Authorization header twice": [
            ("Authorization", f"Bearer {valid}"),
            ("Authorization", f"Bearer {valid}"),
        ],
        "one Authorization header holding two": [("Authorization", f"Bearer {valid}, Bearer {other}")],
        "two X-API-Key headers": [("X-API-Key", valid), ("X-API-Key", other)],
        "Authorization and X-API-Key disagreeing": [
            ("Authorization", f"Bearer {valid}"),
            ("X-API-Key", other),
        ],
        "a Basic Authorization next to a valid X-API-Key": [
            ("Authorization", "Basic YWxpY2U6cHc="),
            ("X-API-Key", valid),
        ],
    }


class TestAmbiguousCredentials:
    def test_ambiguous_requests_are_refused_alike(self, client: HttpClient) -> None:
        """Each way of presenting two keys is a 401 ambiguous_api_key with WWW-Authenticate."""
        valid = issue_key(client).json["key"]
        other = issue_key(client).json["key"]
        for name, headers in ambiguous_requests(valid, other).items():
            reply = client.request("GET", "/whoami-key", headers=headers)
            assert_error(reply, 401, "ambiguous_api_key")
            assert reply.json["error"]["reason"] == "ambiguous", name
            assert reply.headers["WWW-Authenticate"] == WWW_AUTHENTICATE, name
            assert valid not in str(reply.json), name

    def test_same_key_in_both_headers_is_accepted(self, client: HttpClient) -> None:
        """A client that sends its one key in both headers is served."""
        key = issue_key(client).json["key"]
        reply = client.request(
            "GET", "/whoami-key", headers=[("Authorization", f"Bearer {key}"), ("X-API-Key", key)]
        )
        assert reply.status == 200, reply

    def test_one_header_still_works(self, client: HttpClient) -> None:
        """One Authorization or one X-API-Key header is unaffected."""
        key = issue_key(client).json["key"]
        for headers in ([("Authorization", f"Bearer {key}")], [("X-API-Key", key)]):
            assert client.request("GET", "/whoami-key", headers=headers).status == 200


def test_the_error_is_an_invalid_key() -> None:
    """``AmbiguousApiKeyError`` is an ``InvalidApiKeyError``: code apart, caught and mapped the same way."""
    error = AmbiguousApiKeyError()
    assert isinstance(error, InvalidApiKeyError)
    assert error.to_dict() == {
        "code": "ambiguous_api_key",
        "message": "the request presents more than one API key; send exactly one",
        "reason": "ambiguous",
    }
