"""The pages through each adapter's test client: CSRF on every action, escaping, permissions, no-store.

The browser flows are in ``test_pages_browser.py``; these are the fast checks, on SQLite, for both adapters.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tenantkit import HOST, CustomRole, Permissions, Role
from tenantkit.audit import CSV_COLUMNS
from tenantkit.domains import TxtAnswer
from tenantkit.errors import ConfigurationError
from tenantkit.ui import PAGES, PageSite
from tests.page_apps import (
    APP_BUILDERS,
    ORGANIZATION,
    OWNER,
    OWNER_EMAIL,
    PAGES_SECRET,
    PREFIX,
    add_sso_connection,
    make_kit,
    seed,
)

ORG = f"{PREFIX}/organizations/{ORGANIZATION}"


class Client:
    """One adapter's test client, answering ``(status, text, headers)``."""

    def __init__(self, adapter: str, app: Any, kit: Any = None, engine: Any = None) -> None:
        self.adapter = adapter
        self.kit = kit
        self.engine = engine
        self.dns = FakeDns()
        if adapter == "fastapi":
            from fastapi.testclient import TestClient

            self._client: Any = TestClient(app, base_url="http://testserver", follow_redirects=False)
        else:
            self._client = app.test_client()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        response = self._client.get(path, headers=headers or {})
        return response.status_code, _text(response), response.headers

    def post(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> tuple[int, str, Any]:
        response = self._client.post(path, data=data, headers=headers or {})
        return response.status_code, _text(response), response.headers

    def sign_in(self, user: str, email: str) -> None:
        self.get(f"/sign-in?user={user}&email={email}")

    def sign_in_holding(self, permissions: list[str], *, rank: Role = Role.MEMBER) -> None:
        """Sign in as ``bob``, a member holding a custom role of exactly ``permissions`` inside ``rank``."""
        with self.kit.transaction(self.engine) as session:
            self.kit.roles.create(
                session, ORGANIZATION, "holder", name="Holder", rank=rank, permissions=permissions, actor=HOST
            )
            self.kit.members.add(session, ORGANIZATION, "bob", "holder", actor=HOST)
        self.sign_in("bob", "bob@acme.example")

    def token(self) -> str:
        _, text, _ = self.get(f"{ORG}/team")
        found = re.search(r'name="csrf_token" value="([^"]+)"', text)
        assert found is not None
        return found.group(1)


def _text(response: Any) -> str:
    text: str = response.get_data(as_text=True) if hasattr(response, "get_data") else response.text
    return text


class FakeDns:
    """A TXT resolver answering what a test published."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[str, ...]] = {}

    def txt(self, name: str) -> TxtAnswer:
        values = self.records.get(name.rstrip("."))
        return TxtAnswer(exists=values is not None, values=values or ())


@pytest.fixture(params=sorted(APP_BUILDERS))
def client(request: pytest.FixtureRequest, sqlite_engine: sa.Engine) -> Client:
    dns = FakeDns()
    auditor = CustomRole(
        key="auditor", name="Auditor", rank=Role.MEMBER, permissions=frozenset({"audit:read"})
    )
    kit = make_kit(webhooks=True, dns_resolver=dns, permissions=Permissions(roles=[auditor]))
    seed(kit, sqlite_engine)
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORGANIZATION, "mallory", Role.MEMBER, actor=HOST)
    client = Client(request.param, APP_BUILDERS[request.param](kit, sqlite_engine), kit, sqlite_engine)
    client.dns = dns
    client.sign_in(OWNER, OWNER_EMAIL)
    return client


def _filled(path: str) -> str:
    """A page path with its values: the organization, and a made-up id for any other."""
    return re.sub(r"{(\w+)}", lambda m: ORGANIZATION if m.group(1) == "organization_id" else "x1", path)


ACTION_PATHS = [f"{PREFIX}{_filled(page.path)}/{action.name}" for page in PAGES for action in page.actions]


def test_every_action_of_the_table_is_in_the_csrf_check() -> None:
    """The CSRF check covers each action of each page, the roles, settings, webhooks and domains included."""
    assert len(ACTION_PATHS) == sum(len(page.actions) for page in PAGES)
    for name in (
        "roles/create",
        "roles/delete",
        "settings/update",
        "webhooks/create",
        "webhooks/rotate",
        "webhooks/update",
        "webhooks/enable",
        "webhooks/disable",
        "webhooks/test",
        "webhooks/delete",
        "deliveries/resend",
        "domains/add",
        "domains/verify",
        "domains/remove",
        "domains/create-sso",
        "domains/update-sso",
        "domains/delete-sso",
    ):
        assert any(path.endswith(name) for path in ACTION_PATHS), name


def test_the_pages_guide_lists_every_action_and_its_confirmation_step() -> None:
    """docs/pages.md's table of actions is the page table's: each action and download of each page, and
    which of them ask for confirmation first."""
    guide = (Path(__file__).parent.parent / "docs" / "pages.md").read_text(encoding="utf-8")
    table = guide.split("| Page (its `include=` name) | Action | Confirmation |", 1)[1].split("\n\n", 1)[0]
    listed: set[tuple[str, str, bool]] = set()
    for line in table.strip().splitlines()[1:]:
        page, actions, confirmed = (cell.strip() for cell in line.strip("|").split("|"))
        for action in actions.split(","):
            name = action.replace("(a `GET` download)", "").strip().strip("`")
            listed.add((page.strip("`"), name, confirmed == "✔"))
    declared = {
        (page.name, action.name, action.confirm is not None) for page in PAGES for action in page.actions
    }
    declared |= {(page.name, download.name, False) for page in PAGES for download in page.downloads}
    assert listed == declared


def test_only_the_actions_that_make_a_secret_answer_it_in_their_page() -> None:
    """The actions answering in their own (``no-store``) page rather than a redirect are exactly those whose
    result holds a secret; editing, enabling, testing or deleting an endpoint and the SSO actions redirect."""
    revealing = {(page.name, action.name) for page in PAGES for action in page.actions if action.reveals}
    assert revealing == {
        ("team", "invite"),
        ("invitations", "resend"),
        ("api-keys", "issue"),
        ("api-keys", "rotate"),
        ("webhooks", "create"),
        ("webhooks", "rotate"),
        ("domains", "add"),
    }


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


def test_htmx_is_served_from_the_package_and_loaded_without_its_inline_styles(client: Client) -> None:
    """htmx ships as a static file of the package (no CDN), every page loads it with its indicator styles
    off (the policy allows no inline style), and the policy still allows no inline script."""
    status, script, headers = client.get(f"{PREFIX}/static/htmx.min.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")
    assert script.startswith("var htmx=")
    _, page, headers = client.get(f"{ORG}/team")
    assert f'<script src="{PREFIX}/static/htmx.min.js" defer></script>' in page
    config = re.search(r"""<meta name="htmx-config" content='([^']+)'>""", page)
    assert config is not None
    settings = json.loads(config.group(1))
    assert settings["includeIndicatorStyles"] is False
    assert settings["allowEval"] is False
    assert settings["allowScriptTags"] is False
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self';" in policy  # htmx's requests, to the pages' own origin only
    assert "unsafe-inline" not in policy


# -- htmx -------------------------------------------------------------------------------------------------

HTMX = {"HX-Request": "true"}


def test_htmx_keeps_no_page_in_the_browsers_history_cache(client: Client) -> None:
    """htmx snapshots pages into the browser's storage for its history: the pages turn that cache off (a
    page may show a secret), reload a history entry from the server instead, and mark a page showing a
    secret ``hx-history="false"`` as well; a listing is not marked."""
    _, page, _ = client.get(f"{ORG}/api-keys")
    config = re.search(r"""<meta name="htmx-config" content='([^']+)'>""", page)
    assert config is not None
    settings = json.loads(config.group(1))
    assert settings["historyCacheSize"] == 0
    assert settings["refreshOnHistoryMiss"] is True
    assert 'hx-history="false"' not in page
    _, revealed, _ = client.post(f"{ORG}/api-keys/issue", {"csrf_token": client.token(), "name": "CI"}, HTMX)
    assert '<div id="tk-content" hx-history="false">' in revealed


def test_with_htmx_an_actions_own_answer_is_not_pushed_into_history(client: Client) -> None:
    """An action answered in place (a revealed key, a refusal in words) tells htmx to leave the address bar
    at the page (``HX-Push-Url: false``): its URL is POST-only, and names the answer holding the secret. A
    redirect after success, and any request without htmx, carry no such header; the body is the same."""
    token = client.token()
    status, revealed, headers = client.post(
        f"{ORG}/api-keys/issue", {"csrf_token": token, "name": "CI", "scopes": "reports:read"}, HTMX
    )
    assert status == 200
    assert headers["HX-Push-Url"] == "false"
    assert headers["Cache-Control"] == "no-store"
    assert "Location" not in headers
    assert 'id="tk-secret-value"' in revealed
    status, _, headers = client.post(
        f"{ORG}/team/change-role", {"csrf_token": token, "user_id": OWNER, "role": "MEMBER"}, HTMX
    )
    assert status == 403
    assert headers["HX-Push-Url"] == "false"
    status, refused, headers = client.post(
        f"{ORG}/api-keys/issue", {"csrf_token": "forged", "name": "x"}, HTMX
    )
    assert status == 403
    assert headers["HX-Push-Url"] == "false"
    status, _, headers = client.post(
        f"{ORG}/roles/create", {"csrf_token": token, "key": "a", "name": "A"}, HTMX
    )
    assert status == 303
    assert "HX-Push-Url" not in headers
    status, plain, headers = client.post(f"{ORG}/api-keys/issue", {"csrf_token": "forged", "name": "x"})
    assert status == 403
    assert "HX-Push-Url" not in headers
    assert plain == refused
    status, _, headers = client.post(f"{ORG}/api-keys/issue", {"csrf_token": token, "name": "CI2"})
    assert status == 200
    assert "HX-Push-Url" not in headers


def _forms(page: str) -> dict[str, list[str]]:
    """Each action form's opening tag on ``page``, by the action it posts to."""
    found: dict[str, list[str]] = {}
    for tag in re.findall(r'<form method="post" action="[^"]*"[^>]*>', page):
        action = re.search(r'action="[^"]*/([\w-]+)"', tag)
        assert action is not None
        found.setdefault(action.group(1), []).append(tag)
    return found


def test_destructive_forms_ask_with_their_actions_own_question_and_only_they_do(client: Client) -> None:
    """With htmx, a destructive action's form asks the question of its ``PageAction.confirm`` (``hx-confirm``,
    one source for both steps) and sends ``confirmed=yes`` only then; no other form asks anything. Checked
    on every page of the table that has a row to act on."""
    token = client.token()
    client.post(f"{ORG}/api-keys/issue", {"csrf_token": token, "name": "CI"})
    client.post(f"{ORG}/team/invite", {"csrf_token": token, "kind": "email", "email": "bob@acme.example"})
    client.post(f"{ORG}/roles/create", {"csrf_token": token, "key": "nurse", "name": "Nurse"})
    client.post(f"{ORG}/domains/add", {"csrf_token": token, "domain": "acme.example"})
    client.post(
        f"{ORG}/webhooks/create",
        {"csrf_token": token, "url": "https://8.8.8.8/in", "event_types": "member.added"},
    )
    client.post(f"{ORG}/domains/create-sso", {"csrf_token": token, **SSO_FORM})
    checked = 0
    for page in PAGES:
        if not any(action.confirm for action in page.actions):
            continue
        _, text, _ = client.get(f"{PREFIX}{_filled(page.path)}")
        forms = _forms(text)
        for action in page.actions:
            # A destructive action's form is there to be checked; another may be absent (an endpoint
            # shows one of enable and disable).
            assert action.name in forms or action.confirm is None, (page.name, action.name)
            for tag in forms.get(action.name, []):
                if action.confirm is None:
                    assert "hx-confirm" not in tag, (page.name, action.name)
                    assert "hx-vals" not in tag, (page.name, action.name)
                else:
                    assert f'hx-confirm="{html.escape(action.confirm)}"' in tag, (page.name, action.name)
                    assert """hx-vals='{"confirmed": "yes"}'""" in tag, (page.name, action.name)
                    checked += 1
    assert checked == sum(1 for page in PAGES for action in page.actions if action.confirm)


def test_every_page_swaps_its_content_and_keeps_the_live_region(client: Client) -> None:
    """Each page boosts its links and forms to swap ``#tk-content`` only, and updates the ``aria-live`` region
    and the navigation by their content, so the region itself stays in the document and announces."""
    _, page, _ = client.get(f"{ORG}/team")
    body = re.search(r"<body[^>]*>", page)
    assert body is not None
    assert 'hx-boost="true"' in body.group(0)
    assert 'hx-select="#tk-content"' in body.group(0)
    assert 'hx-target="#tk-content"' in body.group(0)
    assert 'hx-swap="outerHTML"' in body.group(0)
    assert 'hx-select-oob="#tk-status:innerHTML,#tk-navigation:innerHTML"' in body.group(0)
    assert page.count('id="tk-content"') == 1
    assert page.index('id="tk-status"') < page.index('id="tk-content"')
    _, accept, _ = client.get(f"{PREFIX}/invitations/accept?token=nonsense")
    assert 'id="tk-navigation"' in accept
    assert 'id="tk-content"' in accept


def test_a_short_secret_is_refused() -> None:
    """The pages' signing secret must be long enough to sign with."""
    with pytest.raises(ValueError, match="16 characters"):
        PageSite(make_kit(), secret_key="short")


def _location_ok(headers: Any, page: str) -> None:
    assert headers["Location"].endswith(f"{ORG}/{page}")


# -- roles ------------------------------------------------------------------------------------------------


def test_an_owner_creates_edits_and_lists_an_organization_role(client: Client) -> None:
    """A created role is listed with its rank and permissions; editing its permissions shows them."""
    token = client.token()
    status, _, headers = client.post(
        f"{ORG}/roles/create",
        {
            "csrf_token": token,
            "key": "nurse",
            "name": "Nurse",
            "rank": "MEMBER",
            "permissions": "members:invite",
        },
    )
    assert status == 303
    _location_ok(headers, "roles")
    _, page, _ = client.get(f"{ORG}/roles")
    assert "Role &#39;nurse&#39; created." in page
    auditor = re.search(r"<tr>\s*<th scope=\"row\">Auditor.*?</tr>", page, re.S)
    assert auditor is not None
    assert "audit:read" in auditor.group(0)
    assert "The deployment (read-only)" in auditor.group(0)
    assert "<form" not in auditor.group(0)
    assert "<code>nurse</code>" in page
    assert "members:invite" in page
    status, _, _ = client.post(
        f"{ORG}/roles/update",
        {
            "csrf_token": token,
            "key": "nurse",
            "name": "Nurse",
            "permissions": "members:invite invitations:manage",
        },
    )
    assert status == 303
    _, page, _ = client.get(f"{ORG}/roles")
    assert "invitations:manage members:invite" in page


def test_permission_escalation_is_shown_next_to_the_permissions_field(client: Client) -> None:
    """An ADMIN allowed to manage roles may not give a role a permission it lacks: the server refuses and the
    page says ``permission_escalation`` in words at the permissions field."""
    client.sign_in_holding(["roles:manage"], rank=Role.ADMIN)
    status, text, _ = client.post(
        f"{ORG}/roles/create",
        {
            "csrf_token": client.token(),
            "key": "boss",
            "name": "Boss",
            "rank": "ADMIN",
            "permissions": "settings:manage",
        },
    )
    assert status == 403
    field = re.search(
        r'<input id="create-permissions"[^>]*>\s*<p class="tk-error"[^>]*>(.*?)</p>', text, re.S
    )
    assert field is not None, text
    assert "settings:manage" in field.group(1)
    assert 'aria-invalid="true"' in text


def test_deleting_a_held_role_is_refused_in_words_until_holders_are_reassigned(client: Client) -> None:
    """While a member holds the role its deletion is refused in its row, next to the reassign choice; moving
    the holders to another role deletes it."""
    token = client.token()
    client.post(
        f"{ORG}/roles/create", {"csrf_token": token, "key": "nurse", "name": "Nurse", "rank": "MEMBER"}
    )
    client.post(f"{ORG}/team/change-role", {"csrf_token": token, "user_id": "mallory", "role": "nurse"})
    status, text, _ = client.post(
        f"{ORG}/roles/delete", {"csrf_token": token, "key": "nurse", "reassign_to": "", "confirmed": "yes"}
    )
    assert status == 409
    assert 'id="delete-nurse-error"' in text
    assert "Move holders of nurse to" in text
    status, _, _ = client.post(
        f"{ORG}/roles/delete",
        {"csrf_token": token, "key": "nurse", "reassign_to": "MEMBER", "confirmed": "yes"},
    )
    assert status == 303
    _, page, _ = client.get(f"{ORG}/roles")
    assert "1 member(s) moved" in page
    assert "<code>nurse</code>" not in page


# -- settings ---------------------------------------------------------------------------------------------


def _settings_form(text: str) -> dict[str, str]:
    return dict(re.findall(r'name="((?:shown|setting)\.[^"]+|expected_version)"[^>]*value="([^"]*)"', text))


def test_settings_show_their_version_and_a_stale_edit_is_refused_in_words(client: Client) -> None:
    """The page shows the document and its version; a save against it bumps the version; a second save of
    the old form is refused (``settings_version_conflict``) and writes nothing."""
    _, page, _ = client.get(f"{ORG}/settings")
    assert 'id="tk-settings-version">0<' in page
    form = _settings_form(page)
    assert form["expected_version"] == "0"
    stale = {**form, "csrf_token": client.token(), "setting.api_keys_must_expire": "true"}
    status, _, headers = client.post(f"{ORG}/settings/update", stale)
    assert status == 303
    _location_ok(headers, "settings")
    _, page, _ = client.get(f"{ORG}/settings")
    assert 'id="tk-settings-version">1<' in page
    assert "Set by the organization" in page
    status, text, _ = client.post(f"{ORG}/settings/update", {**stale, "setting.require_sso": "true"})
    assert status == 409
    assert 'id="update-expected_version-error"' in text
    assert "at version 1, not 0" in text
    with client.kit.transaction(client.engine) as session:
        assert client.kit.organizations.get_settings(session, ORGANIZATION, actor=HOST).version == 1


# -- webhooks ---------------------------------------------------------------------------------------------


def test_a_webhook_secret_is_shown_once_and_rotating_shows_the_new_one(client: Client) -> None:
    """Creating an endpoint answers its ``whsec_`` secret in the POST (no-store), never in the listing;
    rotating answers a new one."""
    status, text, headers = client.post(
        f"{ORG}/webhooks/create",
        {"csrf_token": client.token(), "url": "https://8.8.8.8/in", "event_types": "member.added"},
    )
    assert status == 200, text
    assert headers["Cache-Control"] == "no-store"
    assert "Location" not in headers
    found = re.search(r'value="(whsec_[^"]+)"', text)
    assert found is not None
    secret = found.group(1)
    _, listing, _ = client.get(f"{ORG}/webhooks")
    assert "https://8.8.8.8/in" in listing
    assert secret not in listing
    endpoint_id = re.search(r'name="endpoint_id" value="([^"]+)"', listing)
    assert endpoint_id is not None
    status, rotated, _ = client.post(
        f"{ORG}/webhooks/rotate",
        {"csrf_token": client.token(), "endpoint_id": endpoint_id.group(1), "grace_minutes": "5"},
    )
    assert status == 200
    again = re.search(r'value="(whsec_[^"]+)"', rotated)
    assert again is not None
    assert again.group(1) != secret


def test_an_endpoints_deliveries_are_listed_and_a_message_resent(client: Client) -> None:
    """An event the endpoint subscribes to shows on its deliveries page; resend queues it again."""
    with client.kit.transaction(client.engine) as session:
        created = client.kit.webhooks.create_endpoint(
            session, ORGANIZATION, "https://8.8.8.8/in", ["member.added"], actor=HOST
        )
        client.kit.members.add(session, ORGANIZATION, "carol", Role.MEMBER, actor=HOST)
    path = f"{ORG}/webhooks/{created.endpoint.id}/deliveries"
    status, page, _ = client.get(path)
    assert status == 200
    assert "member.added" in page
    message = re.search(r'name="message_id" value="([^"]+)"', page)
    assert message is not None
    status, _, headers = client.post(
        f"{path}/resend", {"csrf_token": client.token(), "message_id": message.group(1)}
    )
    assert status == 303
    assert headers["Location"].endswith(path)
    _, page, _ = client.get(path)
    assert "The message was queued again" in page


def _endpoint(client: Client, url: str = "https://8.8.8.8/in") -> str:
    """An endpoint of ``acme`` subscribed to ``member.added``, made by the host: its id."""
    with client.kit.transaction(client.engine) as session:
        created = client.kit.webhooks.create_endpoint(
            session, ORGANIZATION, url, ["member.added"], actor=HOST
        )
    endpoint_id: str = created.endpoint.id
    return endpoint_id


def _endpoint_row(page: str, url: str) -> str:
    row = re.search(rf'<tr>\s*<th scope="row">{re.escape(url)}.*?</tr>', page, re.S)
    assert row is not None, page
    return row.group(0)


def test_an_endpoint_is_edited_disabled_enabled_and_sent_a_test_message(client: Client) -> None:
    """The edit form shows the endpoint as it is and saves URL, events and description; disable and enable
    change its state in words; a test message lands in its deliveries. No answer shows its secret."""
    endpoint_id = _endpoint(client)
    token = client.token()
    _, page, _ = client.get(f"{ORG}/webhooks")
    row = _endpoint_row(page, "https://8.8.8.8/in")
    assert 'name="url" type="url" required value="https://8.8.8.8/in"' in row
    assert 'name="event_types" type="text" required value="member.added"' in row
    status, _, headers = client.post(
        f"{ORG}/webhooks/update",
        {
            "csrf_token": token,
            "endpoint_id": endpoint_id,
            "url": "https://8.8.4.4/hook",
            "event_types": "member.added member.removed",
            "description": "Billing",
        },
    )
    assert status == 303
    _location_ok(headers, "webhooks")
    _, page, _ = client.get(f"{ORG}/webhooks")
    assert "Endpoint https://8.8.4.4/hook saved." in page
    row = _endpoint_row(page, "https://8.8.4.4/hook")
    assert "member.added member.removed" in row
    assert '<span class="tk-hint">Billing</span>' in row
    assert "whsec_" not in page
    status, _, _ = client.post(f"{ORG}/webhooks/disable", {"csrf_token": token, "endpoint_id": endpoint_id})
    assert status == 303
    _, page, _ = client.get(f"{ORG}/webhooks")
    row = _endpoint_row(page, "https://8.8.4.4/hook")
    assert "Disabled (manual)" in row
    assert f"{ORG}/webhooks/enable" in row
    assert f"{ORG}/webhooks/disable" not in row
    status, _, _ = client.post(f"{ORG}/webhooks/enable", {"csrf_token": token, "endpoint_id": endpoint_id})
    assert status == 303
    _, page, _ = client.get(f"{ORG}/webhooks")
    assert "Endpoint https://8.8.4.4/hook is enabled." in page
    assert "<td>Enabled</td>" in _endpoint_row(page, "https://8.8.4.4/hook")
    status, _, _ = client.post(f"{ORG}/webhooks/test", {"csrf_token": token, "endpoint_id": endpoint_id})
    assert status == 303
    _, page, _ = client.get(f"{ORG}/webhooks")
    assert "A test message (webhook.test) was queued" in page
    _, deliveries, _ = client.get(f"{ORG}/webhooks/{endpoint_id}/deliveries")
    assert "<td>webhook.test</td>" in deliveries


def test_a_refused_endpoint_edit_is_shown_next_to_its_field_in_its_row(client: Client) -> None:
    """A URL the sender would never call is refused (``unsafe_webhook_url``) next to the URL field of that
    endpoint's form, opened again with what was typed; the other rows and the add form are left as they were;
    nothing changes."""
    _endpoint(client, "https://8.8.8.8/first")
    second = _endpoint(client, "https://8.8.8.8/second")
    status, text, _ = client.post(
        f"{ORG}/webhooks/update",
        {
            "csrf_token": client.token(),
            "endpoint_id": second,
            "url": "https://127.0.0.1/admin",
            "event_types": "member.added",
        },
    )
    assert status == 422
    row = _endpoint_row(text, "https://8.8.8.8/second")
    assert '<details class="tk-edit" open>' in row
    field = re.search(r'<input id="webhook-url-2"[^>]*>\s*<p class="tk-error"[^>]*>(.*?)</p>', row, re.S)
    assert field is not None, row
    assert "refused" in field.group(1)
    assert 'value="https://127.0.0.1/admin" aria-invalid="true" aria-describedby="update-url-error"' in row
    first_row = _endpoint_row(text, "https://8.8.8.8/first")
    assert "open>" not in first_row
    assert "tk-error" not in first_row
    assert 'id="create-url" name="url" type="url" value=""' in text
    status, text, _ = client.post(
        f"{ORG}/webhooks/update",
        {"csrf_token": client.token(), "endpoint_id": second, "url": "https://8.8.8.8/second"},
    )
    assert status == 422
    assert re.search(
        r'<input id="webhook-events-2"[^>]*aria-invalid="true"[^>]*>\s*'
        r'<p class="tk-error"[^>]*>.*?event type',
        text,
        re.S,
    )
    with client.kit.transaction(client.engine) as session:
        endpoint = client.kit.webhooks.get_endpoint(session, ORGANIZATION, second, actor=HOST)
    assert endpoint.url == "https://8.8.8.8/second"


def test_deleting_an_endpoint_asks_first(client: Client) -> None:
    """Delete answers a confirmation form and keeps the endpoint; the confirmed POST deletes it."""
    endpoint_id = _endpoint(client)
    token = client.token()
    status, asked, _ = client.post(
        f"{ORG}/webhooks/delete", {"csrf_token": token, "endpoint_id": endpoint_id}
    )
    assert status == 200
    assert "Please confirm" in asked
    assert "Delete this endpoint?" in asked
    assert f'name="endpoint_id" value="{endpoint_id}"' in asked
    _, page, _ = client.get(f"{ORG}/webhooks")
    assert '<th scope="row">https://8.8.8.8/in' in page
    status, _, headers = client.post(
        f"{ORG}/webhooks/delete", {"csrf_token": token, "endpoint_id": endpoint_id, "confirmed": "yes"}
    )
    assert status == 303
    _location_ok(headers, "webhooks")
    _, page, _ = client.get(f"{ORG}/webhooks")
    assert "Endpoint https://8.8.8.8/in was deleted." in page
    assert '<th scope="row">https://8.8.8.8/in' not in page


def test_a_webhook_reader_sees_the_endpoints_but_no_form_and_the_server_still_refuses(client: Client) -> None:
    """A member who may read webhooks but not manage them is offered no edit, enable, disable, test or delete
    form; posting one anyway is refused by the service, in words, and changes nothing."""
    endpoint_id = _endpoint(client)
    client.sign_in_holding(["webhooks:read"])
    status, page, _ = client.get(f"{ORG}/webhooks")
    assert status == 200
    assert "https://8.8.8.8/in" in page
    for action in ("update", "enable", "disable", "test", "delete", "rotate"):
        assert f"/webhooks/{action}" not in page, action
    status, text, _ = client.post(
        f"{ORG}/webhooks/disable", {"csrf_token": client.token(), "endpoint_id": endpoint_id}
    )
    assert status == 403
    assert "Refused" in text
    with client.kit.transaction(client.engine) as session:
        assert client.kit.webhooks.get_endpoint(session, ORGANIZATION, endpoint_id, actor=HOST).enabled


@pytest.mark.parametrize("adapter", sorted(APP_BUILDERS))
def test_without_webhooks_the_webhook_pages_are_left_out(adapter: str, sqlite_engine: sa.Engine) -> None:
    """A kit without a webhook key mounts no webhook page (as its routes), links none, and refuses to be
    asked for one."""
    kit = make_kit()
    seed(kit, sqlite_engine)
    client = Client(adapter, APP_BUILDERS[adapter](kit, sqlite_engine))
    client.sign_in(OWNER, OWNER_EMAIL)
    _, team, _ = client.get(f"{ORG}/team")
    assert "/webhooks" not in team
    status, _, _ = client.get(f"{ORG}/webhooks")
    assert status == 404
    assert "webhooks" not in {page.name for page in PageSite(kit, secret_key=PAGES_SECRET).pages}
    with pytest.raises(ConfigurationError, match="not configured for webhooks"):
        PageSite(kit, secret_key=PAGES_SECRET, include=["webhooks"])


# -- domains and SSO --------------------------------------------------------------------------------------


def test_a_domain_is_added_with_its_txt_record_shown_once_then_verified_and_removed(client: Client) -> None:
    """Adding answers the TXT record (no-store) once; verifying before it is published is refused in the
    domain's row; once published it verifies; removing asks first."""
    token = client.token()
    status, text, headers = client.post(f"{ORG}/domains/add", {"csrf_token": token, "domain": "acme.example"})
    assert status == 200, text
    assert headers["Cache-Control"] == "no-store"
    name = re.search(r'id="tk-record-name" type="text" readonly value="([^"]+)"', text)
    value = re.search(
        r'id="tk-secret-value" class="tk-secret-value" type="text" readonly value="([^"]+)"', text
    )
    assert name is not None
    assert value is not None
    _, listing, _ = client.get(f"{ORG}/domains")
    assert "acme.example" in listing
    assert value.group(1) not in listing
    status, refused, _ = client.post(f"{ORG}/domains/verify", {"csrf_token": token, "domain": "acme.example"})
    assert status >= 400
    assert 'id="verify-acme.example-error"' in refused
    client.dns.records[name.group(1).rstrip(".")] = (value.group(1),)
    status, _, _ = client.post(f"{ORG}/domains/verify", {"csrf_token": token, "domain": "acme.example"})
    assert status == 303
    _, listing, _ = client.get(f"{ORG}/domains")
    assert "acme.example is verified." in listing
    status, asked, _ = client.post(f"{ORG}/domains/remove", {"csrf_token": token, "domain": "acme.example"})
    assert status == 200
    assert "Please confirm" in asked
    status, _, _ = client.post(
        f"{ORG}/domains/remove", {"csrf_token": token, "domain": "acme.example", "confirmed": "yes"}
    )
    assert status == 303
    _, listing, _ = client.get(f"{ORG}/domains")
    assert '<th scope="row">acme.example</th>' not in listing


def test_sso_connections_are_listed_with_the_domains(client: Client) -> None:
    """The organization's SSO connections show on the domains page with their policy."""
    with client.kit.transaction(client.engine) as session:
        add_sso_connection(client.kit, session, jit=True)
    _, page, _ = client.get(f"{ORG}/domains")
    assert "SSO connections" in page
    assert "Acme Okta" in page
    assert "conn_1" in page


def _connections(client: Client) -> list[Any]:
    with client.kit.transaction(client.engine) as session:
        return list(client.kit.sso.list_connections(session, ORGANIZATION, actor=HOST))


def _connection_block(page: str, name: str) -> str:
    block = re.search(
        rf'<section class="tk-connection"[^>]*>\s*<h3[^>]*>Change {re.escape(name)}<.*?</section>',
        page,
        re.S,
    )
    assert block is not None, page
    return block.group(0)


SSO_FORM = {
    "provider": "workos",
    "protocol": "saml",
    "provider_connection_id": "conn_9",
    "name": "Acme Okta",
    "enabled": "yes",
    "jit": "yes",
    "default_role": "MEMBER",
    "role_authority": "tenantkit",
}


def test_an_sso_connection_is_created_edited_and_deleted_after_confirmation(client: Client) -> None:
    """The add form creates a connection with its policy; its edit form shows that policy and saves it (an
    unticked box turns a flag off); delete asks first, then deletes."""
    token = client.token()
    status, _, headers = client.post(f"{ORG}/domains/create-sso", {"csrf_token": token, **SSO_FORM})
    assert status == 303
    _location_ok(headers, "domains")
    _, page, _ = client.get(f"{ORG}/domains")
    assert "SSO connection &#39;Acme Okta&#39; created." in page
    (connection,) = _connections(client)
    assert (connection.provider, connection.protocol, connection.provider_connection_id) == (
        "workos",
        "saml",
        "conn_9",
    )
    assert (connection.enabled, connection.enforce, connection.jit) == (True, False, True)
    block = _connection_block(page, "Acme Okta")
    assert 'name="enabled" type="checkbox" value="yes" checked' in block
    assert 'name="enforce" type="checkbox" value="yes">' in block
    assert 'name="name" type="text" required value="Acme Okta"' in block
    status, _, _ = client.post(
        f"{ORG}/domains/update-sso",
        {
            "csrf_token": token,
            "connection_id": connection.id,
            "name": "Acme Entra",
            "enforce": "yes",
            "default_role": "ADMIN",
            "role_authority": "provider",
        },
    )
    assert status == 303
    _, page, _ = client.get(f"{ORG}/domains")
    assert "SSO connection &#39;Acme Entra&#39; saved." in page
    (saved,) = _connections(client)
    assert (saved.name, saved.enabled, saved.enforce, saved.jit) == ("Acme Entra", False, True, False)
    assert (saved.default_role, saved.role_authority) == (Role.ADMIN, "provider")
    status, asked, _ = client.post(
        f"{ORG}/domains/delete-sso", {"csrf_token": token, "connection_id": connection.id}
    )
    assert status == 200
    assert "Please confirm" in asked
    assert "Delete this SSO connection?" in asked
    assert len(_connections(client)) == 1
    status, _, _ = client.post(
        f"{ORG}/domains/delete-sso", {"csrf_token": token, "connection_id": connection.id, "confirmed": "yes"}
    )
    assert status == 303
    _, page, _ = client.get(f"{ORG}/domains")
    assert "SSO connection &#39;Acme Entra&#39; was deleted." in page
    assert _connections(client) == []


def test_sso_refusals_are_shown_next_to_their_fields(client: Client) -> None:
    """A provider connection registered twice is refused at its id field, with the add form filled in again;
    an OWNER as JIT role is refused at the role of that connection's edit form, opened again; the other
    connection's form stays closed and unmarked."""
    token = client.token()
    client.post(f"{ORG}/domains/create-sso", {"csrf_token": token, **SSO_FORM})
    client.post(
        f"{ORG}/domains/create-sso",
        {"csrf_token": token, **SSO_FORM, "provider_connection_id": "conn_2", "name": "Second"},
    )
    status, text, _ = client.post(
        f"{ORG}/domains/create-sso", {"csrf_token": token, **SSO_FORM, "name": "Again"}
    )
    assert status == 409
    field = re.search(
        r'<input id="create-sso-provider_connection_id"[^>]*aria-invalid="true"[^>]*>\s*'
        r'<p class="tk-error"[^>]*>(.*?)</p>',
        text,
        re.S,
    )
    assert field is not None, text
    assert "conn_9" in field.group(1)
    assert 'id="create-sso-name" name="name" type="text" value="Again"' in text
    second = next(connection for connection in _connections(client) if connection.name == "Second")
    status, text, _ = client.post(
        f"{ORG}/domains/update-sso",
        {
            "csrf_token": token,
            "connection_id": second.id,
            "name": "Second",
            "default_role": "OWNER",
            "role_authority": "tenantkit",
        },
    )
    assert status == 422
    block = _connection_block(text, "Second")
    assert '<details class="tk-edit" open>' in block
    role = re.search(
        r'<select id="sso-default-role-2"[^>]*aria-invalid="true".*?<p class="tk-error"[^>]*>(.*?)</p>',
        block,
        re.S,
    )
    assert role is not None, block
    assert "OWNER" in role.group(1)
    first_block = _connection_block(text, "Acme Okta")
    assert "open>" not in first_block
    assert "aria-invalid" not in first_block
    assert 'id="create-sso-name" name="name" type="text" value=""' in text
    assert len(_connections(client)) == 2


def test_an_sso_role_above_the_managers_own_is_refused_next_to_the_role(client: Client) -> None:
    """A MEMBER-rank manager of SSO may not create a connection whose JIT members are ADMINs
    (``role_escalation``): the refusal shows at the role field and nothing is created."""
    client.sign_in_holding(["domains:manage", "sso:manage"])
    status, text, _ = client.post(
        f"{ORG}/domains/create-sso", {"csrf_token": client.token(), **SSO_FORM, "default_role": "ADMIN"}
    )
    assert status == 403
    role = re.search(
        r'<select id="create-sso-default_role"[^>]*aria-invalid="true".*?<p class="tk-error"[^>]*>(.*?)</p>',
        text,
        re.S,
    )
    assert role is not None, text
    assert "ADMIN" in role.group(1)
    assert _connections(client) == []


def test_a_domain_manager_without_sso_permission_sees_no_connection_and_the_server_still_refuses(
    client: Client,
) -> None:
    """A member who manages domains but not SSO sees the domains without the SSO section or its forms;
    posting a connection anyway is refused by the service."""
    with client.kit.transaction(client.engine) as session:
        add_sso_connection(client.kit, session)
    client.sign_in_holding(["domains:manage"])
    status, page, _ = client.get(f"{ORG}/domains")
    assert status == 200
    assert "/domains/add" in page
    assert "SSO connections" not in page
    assert "Acme Okta" not in page
    for action in ("create-sso", "update-sso", "delete-sso"):
        assert f"/domains/{action}" not in page, action
    status, text, _ = client.post(f"{ORG}/domains/create-sso", {"csrf_token": client.token(), **SSO_FORM})
    assert status == 403
    assert "Refused" in text
    assert len(_connections(client)) == 1


def test_a_member_sees_the_new_pages_without_their_forms(client: Client) -> None:
    """A MEMBER reads the roles page but gets no role form; the settings, webhook and domain pages, which need
    permissions a MEMBER lacks, are refused and not linked; a forged POST is refused by the service."""
    client.sign_in("mallory", "mallory@acme.example")
    status, roles, _ = client.get(f"{ORG}/roles")
    assert status == 200
    assert "/roles/create" not in roles
    assert "/roles/delete" not in roles
    for page in ("settings", "webhooks", "domains"):
        assert f'{ORG}/{page}"' not in roles
        status, _, _ = client.get(f"{ORG}/{page}")
        assert status == 403, page
    status, text, _ = client.post(
        f"{ORG}/roles/create", {"csrf_token": client.token(), "key": "x", "name": "X", "rank": "MEMBER"}
    )
    assert status == 403
    assert "Refused" in text


# -- the audit log's export --------------------------------------------------------------------------------


def _audit_rows(page: str) -> list[tuple[str, str]]:
    """The audit page's rows as (event type, actor), newest first."""
    rows = re.findall(r'<th scope="row">([\w.]+)</th>\s*<td>([^<]*)</td>', page)
    return [(kind, html.unescape(actor).strip()) for kind, actor in rows]


def _download_links(page: str) -> list[str]:
    return [html.unescape(link) for link in re.findall(r'<a href="([^"]*/audit/export\?[^"]*)"', page)]


def _busy_log(client: Client) -> None:
    """An OWNER's key issued with a spreadsheet formula for a user agent, and another organization whose
    owner is alice too, with events of its own."""
    client.post(
        f"{ORG}/api-keys/issue",
        {"csrf_token": client.token(), "name": "CI"},
        {"User-Agent": '=HYPERLINK("https://evil.example")'},
    )
    assert client.kit is not None
    with client.kit.transaction(client.engine) as session:
        client.kit.members.add(session, "globex", OWNER, Role.OWNER, actor=HOST)
        client.kit.members.add(session, "globex", "gordon", Role.MEMBER, actor=HOST)


def test_the_audit_export_downloads_the_filtered_list(client: Client) -> None:
    """The page links CSV and JSON Lines with its own filters (not boosted by htmx); each download holds
    the very rows the filtered list shows, oldest first, and none of another organization."""
    _busy_log(client)
    _, page, _ = client.get(f"{ORG}/audit?event_types=member.added")
    listed = _audit_rows(page)
    assert listed == [("member.added", "host")] * 2
    links = _download_links(page)
    assert [link.rsplit("format=", 1)[1] for link in links] == ["csv", "jsonl"]
    assert all("event_types=member.added" in link for link in links)
    assert page.count('hx-boost="false" download') == 2
    status, text, _ = client.get(links[1])
    assert status == 200
    records = [json.loads(line) for line in text.splitlines()]
    assert [(r["type"], r["actor"]["kind"]) for r in records] == listed[::-1]
    assert [r["data"]["user_id"] for r in records] == [OWNER, "mallory"]
    assert {r["organization_id"] for r in records} == {ORGANIZATION}
    status, text, _ = client.get(links[0])
    assert status == 200
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert header == list(CSV_COLUMNS)
    assert [row[0] for row in rows] == [r["id"] for r in records]
    _, everything, _ = client.get(_download_links(client.get(f"{ORG}/audit")[1])[1])
    assert "globex" not in everything
    assert len(everything.splitlines()) == len(_audit_rows(client.get(f"{ORG}/audit")[1])) == 3


def test_the_audit_export_answers_an_uncached_attachment(client: Client) -> None:
    """The download is an attachment named after the organization and the day, of its format's type, never
    cached, never sniffed, its length given."""
    today = datetime.now(timezone.utc).strftime("%Y%m%d")
    for export_format, content_type in (("csv", "text/csv"), ("jsonl", "application/x-ndjson")):
        status, text, headers = client.get(f"{ORG}/audit/export?format={export_format}")
        assert status == 200
        assert headers["Content-Type"].startswith(content_type)
        assert "charset=utf-8" in headers["Content-Type"]
        disposition = f'attachment; filename="audit-{ORGANIZATION}-{today}.{export_format}"'
        assert headers["Content-Disposition"] == disposition
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert int(headers["Content-Length"]) == len(text.encode())
    _, _, headers = client.get(f"{ORG}/audit/export")
    assert headers["Content-Disposition"].endswith('.csv"')


def test_the_date_filters_keep_the_same_days_on_the_page_and_in_the_export(client: Client) -> None:
    """``since`` and ``until`` are days (``until`` included) in the viewer's zone, for the list and the
    export alike; a day before another day's start is refused in words next to its field, by both."""
    today = datetime.now(timezone.utc).date()
    for query, count in (
        (f"since={today}&until={today}", 2),
        (f"since={today + timedelta(days=2)}", 0),
        (f"until={today - timedelta(days=2)}", 0),
    ):
        _, page, _ = client.get(f"{ORG}/audit?{query}")
        assert len(_audit_rows(page)) == count, query
        links = _download_links(page)
        assert len(links) == 2
        _, exported, _ = client.get(links[1])
        assert len(exported.splitlines()) == count, query
    for path in (f"{ORG}/audit?since=2030-02-02&until=2030-01-01", f"{ORG}/audit?since=someday"):
        for url in (path, path.replace("/audit?", "/audit/export?format=csv&")):
            status, page, headers = client.get(url)
            assert status == (200 if "/export" not in url else 422), url
            assert "Content-Disposition" not in headers
            assert 'aria-invalid="true"' in page
            assert _download_links(page) == []


def test_a_refused_filter_or_format_answers_the_page_not_a_file(client: Client) -> None:
    """An unknown event type is shown next to its field; an unknown format is refused in words; neither
    answers a file."""
    status, page, headers = client.get(f"{ORG}/audit/export?format=csv&event_types=member.eaten")
    assert status == 422
    assert "Content-Disposition" not in headers
    assert "unknown event type" in page
    assert 'id="filter-event_types-error"' in page
    status, page, headers = client.get(f"{ORG}/audit/export?format=xlsx")
    assert status == 422
    assert "Content-Disposition" not in headers
    assert "no such download format" in page


def test_the_audit_export_is_refused_without_audit_read(client: Client) -> None:
    """A MEMBER gets the 403 page and no row; an auditor (a custom role with ``audit:read``) gets the link
    and the file; nobody exports an organization they do not belong to."""
    _busy_log(client)
    client.sign_in("mallory", "mallory@acme.example")
    for export_format in ("csv", "jsonl"):
        status, text, headers = client.get(f"{ORG}/audit/export?format={export_format}")
        assert status == 403
        assert "audit:read" in text
        assert "member.added" not in text
        assert "Content-Disposition" not in headers
    status, text, _ = client.get(f"{PREFIX}/organizations/globex/audit/export")
    assert status == 403
    assert "gordon" not in text
    assert client.kit is not None
    with client.kit.transaction(client.engine) as session:
        client.kit.members.change_role(session, ORGANIZATION, "mallory", "auditor", actor=HOST)
    _, page, _ = client.get(f"{ORG}/audit")
    links = _download_links(page)
    assert len(links) == 2
    status, text, headers = client.get(links[1])
    assert status == 200
    assert "gordon" not in text
    assert headers["Content-Disposition"].startswith("attachment;")


def test_the_csv_export_neutralizes_spreadsheet_formulas(client: Client) -> None:
    """A user agent a spreadsheet would run as a formula is written with a leading quote; JSON Lines keeps
    it as it came."""
    _busy_log(client)
    _, text, _ = client.get(f"{ORG}/audit/export?format=csv&event_types=api_key.issued")
    header, *rows = list(csv.reader(io.StringIO(text)))
    agent = header.index("user_agent")
    assert [row[agent] for row in rows] == ['\'=HYPERLINK("https://evil.example")']
    _, text, _ = client.get(f"{ORG}/audit/export?format=jsonl&event_types=api_key.issued")
    assert json.loads(text)["context"]["user_agent"] == '=HYPERLINK("https://evil.example")'


def test_the_export_is_a_get_of_the_page_table_mounted_by_both_adapters() -> None:
    """The audit page declares its export as a download: a GET beside the page, no action, no CSRF form."""
    site_routes = {
        (route.method, route.path)
        for route in PageSite(make_kit(webhooks=True), secret_key=PAGES_SECRET).routes()
        if route.download is not None
    }
    assert site_routes == {("GET", "/organizations/{organization_id}/audit/export")}


def test_a_large_export_spills_to_disk_and_streams_whole(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the spool's memory the file moves to disk mid-export and still streams whole, in chunks, the
    same bytes as an export held in memory; the spooled file is closed once sent."""
    import tempfile

    from tenantkit.ui import _site

    _busy_log(client)
    _, in_memory, _ = client.get(f"{ORG}/audit/export?format=jsonl")
    spools: list[Any] = []
    real = tempfile.SpooledTemporaryFile

    def recorded(*args: Any, **kwargs: Any) -> Any:
        spool = real(*args, **kwargs)
        spools.append(spool)
        return spool

    monkeypatch.setattr(_site, "_SPOOL_MEMORY", 256)
    monkeypatch.setattr(_site, "_CHUNK", 100)
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", recorded)
    status, on_disk, _ = client.get(f"{ORG}/audit/export?format=jsonl")
    assert status == 200
    assert on_disk == in_memory
    assert len(in_memory.encode()) > 256 == spools[0]._max_size
    assert spools[0]._rolled
    assert spools[0].closed
