"""The pages through each adapter's test client: CSRF on every action, escaping, permissions, no-store.

The browser flows are in ``test_pages_browser.py``; these are the fast checks, on SQLite, for both adapters.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from tenantkit import HOST, Role
from tenantkit.ui import PAGES, PageSite
from tests.page_apps import (
    APP_BUILDERS,
    ORGANIZATION,
    OWNER,
    OWNER_EMAIL,
    PAGES_SECRET,
    PREFIX,
    make_kit,
    seed,
)

ORG = f"{PREFIX}/organizations/{ORGANIZATION}"


class Client:
    """One adapter's test client, answering ``(status, text, headers)``."""

    def __init__(self, adapter: str, app: Any) -> None:
        self.adapter = adapter
        if adapter == "fastapi":
            from fastapi.testclient import TestClient

            self._client: Any = TestClient(app, base_url="http://testserver", follow_redirects=False)
        else:
            self._client = app.test_client()

    def get(self, path: str) -> tuple[int, str, Any]:
        response = self._client.get(path)
        return response.status_code, _text(response), response.headers

    def post(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> tuple[int, str, Any]:
        response = self._client.post(path, data=data, headers=headers or {})
        return response.status_code, _text(response), response.headers

    def sign_in(self, user: str, email: str) -> None:
        self.get(f"/sign-in?user={user}&email={email}")

    def token(self) -> str:
        _, text, _ = self.get(f"{ORG}/team")
        found = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert found is not None
        return found.group(1)


def _text(response: Any) -> str:
    text: str = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    return text


@pytest.fixture(params=sorted(APP_BUILDERS))
def client(request: pytest.FixtureRequest, sqlite_engine: sa.Engine) -> Client:
    kit = make_kit()
    seed(kit, sqlite_engine)
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORGANIZATION, "mallory", Role.MEMBER, actor=HOST)
    client = Client(request.param, APP_BUILDERS[request.param](kit, sqlite_engine))
    client.sign_in(OWNER, OWNER_EMAIL)
    return client


ACTION_PATHS = [
    f"{PREFIX}{page.path.replace('{organization_id}', ORGANIZATION)}/{action.name}"
    for page in PAGES
    for action in page.actions
]


@pytest.mark.parametrize("path", ACTION_PATHS)
def test_every_action_refuses_a_missing_or_wrong_csrf_token(client: Client, path: str) -> None:
    """Every POST of the page table is refused (403, in words) without the token, with a forged one, and
    with the right token from another origin."""
    good = client.token()
    for data, headers in (
        ({}, {}),
        ({"csrf_token": "forged"}, {}),
        ({"csrf_token": good + "x"}, {}),
        ({"csrf_token": good}, {"Origin": "https://evil.example"}),
    ):
        status, text, _ = client.post(path, {**data, "name": "x", "user_id": "mallory"}, headers)
        assert status == 403, (path, data, headers)
        assert "could not be accepted" in text


def test_pages_send_their_security_headers(client: Client) -> None:
    """Every page has a CSP without inline script, refuses framing, and is never cached."""
    status, text, headers = client.get(f"{ORG}/team")
    assert status == 200
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert "<script>" not in text
    assert " style=" not in text


def test_the_new_key_is_only_in_the_post_answer(client: Client) -> None:
    """The issued key is in the POST's answer (no-store) and nowhere after: not in a redirect, a cookie or
    the next GET."""
    status, text, headers = client.post(
        f"{ORG}/api-keys/issue", {"csrf_token": client.token(), "name": "CI", "scopes": "reports:read"}
    )
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert "Location" not in headers
    found = re.search(r'value="(tk_[^"]+)"', text)
    assert found is not None
    key = found.group(1)
    assert key not in str(headers.get("Set-Cookie", ""))
    _, listing, _ = client.get(f"{ORG}/api-keys")
    assert "CI" in listing
    assert key not in listing


def test_user_values_are_escaped(client: Client) -> None:
    """A key named with markup is shown as text."""
    client.post(f"{ORG}/api-keys/issue", {"csrf_token": client.token(), "name": "<script>alert(1)</script>"})
    _, listing, _ = client.get(f"{ORG}/api-keys")
    assert "<script>alert(1)</script>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing


def test_a_member_sees_no_management_forms_and_the_server_still_refuses(client: Client) -> None:
    """A MEMBER is offered no invite, role or key form; posting one anyway is refused by the service."""
    client.sign_in("mallory", "mallory@acme.example")
    _, team, _ = client.get(f"{ORG}/team")
    assert "/team/invite" not in team
    assert "/team/change-role" not in team
    assert "/team/remove" not in team
    _, keys, _ = client.get(f"{ORG}/api-keys")
    assert "/api-keys/issue" not in keys
    status, text, _ = client.post(f"{ORG}/api-keys/issue", {"csrf_token": client.token(), "name": "sneaky"})
    assert status == 403
    assert "Refused" in text
    status, _, _ = client.get(f"{ORG}/audit")
    assert status == 403


def test_demoting_the_last_owner_is_refused_next_to_her_role(client: Client) -> None:
    """``last_owner`` is shown in words in the owner's own row, the select marked invalid."""
    status, text, _ = client.post(
        f"{ORG}/team/change-role", {"csrf_token": client.token(), "user_id": OWNER, "role": "MEMBER"}
    )
    assert status == 403
    row = re.search(r"<tr>\s*<th scope=\"row\">alice.*?</tr>", text, re.S)
    assert row is not None
    assert "last OWNER" in row.group(0)
    assert 'aria-invalid="true"' in row.group(0)


def test_remove_asks_for_confirmation_first(client: Client) -> None:
    """A destructive action answers a confirmation form; only the confirmed POST removes."""
    token = client.token()
    status, text, _ = client.post(f"{ORG}/team/remove", {"csrf_token": token, "user_id": "mallory"})
    assert status == 200
    assert "Please confirm" in text
    assert 'name="confirmed" value="yes"' in text
    _, team, _ = client.get(f"{ORG}/team")
    assert "mallory" in team
    status, _, headers = client.post(
        f"{ORG}/team/remove", {"csrf_token": token, "user_id": "mallory", "confirmed": "yes"}
    )
    assert status == 303
    assert headers["Location"].endswith(f"{ORG}/team")
    _, team, _ = client.get(f"{ORG}/team")
    assert "mallory was removed" in team
    assert '<th scope="row">mallory' not in team


def test_accept_page_explains_another_address_and_a_bad_link(client: Client) -> None:
    """The accept page names the organization and inviter, warns a viewer signed in as another address, and
    says in words why a broken link does not work."""
    _, text, _ = client.post(
        f"{ORG}/team/invite", {"csrf_token": client.token(), "kind": "email", "email": "bob@acme.example"}
    )
    found = re.search(r'value="(http[^"]+token=[^"]+)"', text)
    assert found is not None
    path = found.group(1).split("testserver", 1)[-1] if client.adapter == "fastapi" else found.group(1)
    client.sign_in("eve", "eve@other.example")
    _, page, _ = client.get(path.replace("http://localhost", ""))
    assert "Signed in as another address" in page
    assert "acme" in page
    assert "alice" in page
    _, broken, _ = client.get(f"{PREFIX}/invitations/accept?token=nonsense")
    assert "This invitation no longer works" in broken


def test_static_files_and_unknown_ones() -> None:
    """The stylesheet and script come from the package; any other name is 404."""
    site = PageSite(make_kit(), secret_key=PAGES_SECRET)
    assert site.static("tenantkit.css").status == 200
    assert site.static("../_site.py").status == 404


def test_a_short_secret_is_refused() -> None:
    """The pages' signing secret must be long enough to sign with."""
    with pytest.raises(ValueError, match="16 characters"):
        PageSite(make_kit(), secret_key="short")
