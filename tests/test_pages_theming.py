"""Theming the pages: a host's ``tenantkit/macros.html`` restyles every table and alert, a host's
``tenantkit/base.html`` wraps the pages in its own layout.

The host's templates are in ``tests/theme/`` (the ``table``, ``alert``, ``button`` and ``field`` macros, the
others kept from the package through ``tenantkit-default/``) and ``tests/theme_layout/`` (a base extending
the host's ``layout.html``). Every page of :data:`~tenantkit.ui.PAGES` is rendered with rows in its tables
and in the states that show an alert, so a table or an alert written out by hand in a template fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantkit import HOST, Role
from tenantkit.ui import PAGES
from tests.page_apps import APP_BUILDERS, ORGANIZATION, OWNER, OWNER_EMAIL, PREFIX, make_kit, seed
from tests.test_pages import SSO_FORM, Client, FakeDns, _filled

THEME = Path(__file__).parent / "theme"
LAYOUT = Path(__file__).parent / "theme_layout"
ORG = f"{PREFIX}/organizations/{ORGANIZATION}"


def _client(adapter: str, engine: sa.Engine, templates: Path) -> Client:
    """An OWNER's client on pages themed by ``templates``, with a row in every table of every page: a
    member, an invitation, a key, a role, a webhook endpoint with a delivery, a domain, an SSO connection
    and the audit events of all that."""
    dns = FakeDns()
    kit = make_kit(webhooks=True, dns_resolver=dns)
    seed(kit, engine)
    with kit.transaction(engine) as session:
        kit.members.add(session, ORGANIZATION, "mallory", Role.MEMBER, actor=HOST)
    client = Client(adapter, APP_BUILDERS[adapter](kit, engine, templates=[str(templates)]), kit, engine)
    client.dns = dns
    client.sign_in(OWNER, OWNER_EMAIL)
    token = client.token()
    client.post(f"{ORG}/api-keys/issue", {"csrf_token": token, "name": "CI"})
    client.post(f"{ORG}/team/invite", {"csrf_token": token, "kind": "email", "email": "bob@acme.example"})
    client.post(f"{ORG}/roles/create", {"csrf_token": token, "key": "nurse", "name": "Nurse"})
    client.post(f"{ORG}/domains/add", {"csrf_token": token, "domain": "acme.example"})
    client.post(f"{ORG}/domains/create-sso", {"csrf_token": token, **SSO_FORM})
    client.post(
        f"{ORG}/webhooks/create",
        {"csrf_token": token, "url": "https://8.8.8.8/in", "event_types": "member.added"},
    )
    with kit.transaction(engine) as session:
        kit.members.add(session, ORGANIZATION, "carol", Role.MEMBER, actor=HOST)  # a delivery to list
    return client


@pytest.fixture(params=sorted(APP_BUILDERS))
def themed(request: pytest.FixtureRequest, sqlite_engine: sa.Engine) -> Client:
    return _client(request.param, sqlite_engine, THEME)


def test_the_pages_guide_shows_these_host_templates() -> None:
    """docs/pages.md's "Theming" examples are the two host templates tried here, word for word."""
    guide = (Path(__file__).parent.parent / "docs" / "pages.md").read_text(encoding="utf-8")
    shown = re.findall(r"^```jinja\n(.*?)^```", guide.split("## Theming", 1)[1], re.DOTALL | re.MULTILINE)
    assert shown[:2] == [
        (THEME / "tenantkit" / "macros.html").read_text(encoding="utf-8"),
        (LAYOUT / "tenantkit" / "base.html").read_text(encoding="utf-8"),
    ]


def _tags(text: str, pattern: str) -> list[str]:
    return re.findall(rf"<{pattern}\b[^>]*>", text)


def _alerts(text: str) -> list[str]:
    """Every opening tag that is an alert: of class ``tk-alert`` (the package's) or ``role="alert"``."""
    return [tag for tag in _tags(text, r"\w+") if "tk-alert" in tag or 'role="alert"' in tag]


def _accept_link(text: str) -> str:
    found = re.search(r'value="(http[^"]+token=[^"]+)"', text)
    assert found is not None
    return re.sub(r"^https?://[^/]+", "", found.group(1))


def test_every_table_of_every_page_is_the_hosts_table_macro(themed: Client) -> None:
    """Each page of the table, with rows in its tables, renders every ``<table>`` through the host's
    ``table`` macro (its class ``host-table``), column headers and row headers kept."""
    _, webhooks, _ = themed.get(f"{ORG}/webhooks")
    deliveries = re.search(r'href="([^"]+/deliveries)"', webhooks)
    assert deliveries is not None
    _, invited, _ = themed.post(
        f"{ORG}/team/invite", {"csrf_token": themed.token(), "kind": "email", "email": "dan@acme.example"}
    )
    tables = 0
    for page in PAGES:
        if page.name == "accept":
            continue  # the accept page has no table: checked for its alerts below
        path = deliveries.group(1) if page.name == "webhook-deliveries" else f"{PREFIX}{_filled(page.path)}"
        status, text, _ = themed.get(path)
        assert status == 200, page.name
        found = _tags(text, "table")
        assert found, f"{page.name} shows no table"
        for tag in found:
            assert "host-table" in tag, (page.name, tag)
        assert text.count('<th scope="col">') >= len(found), page.name
        assert '<th scope="row">' in text, page.name
        tables += len(found)
    assert tables == 10  # domains has two: its domains and its SSO connections
    assert "dan@acme.example" in invited


def test_every_alert_the_pages_show_is_the_hosts_alert_macro(themed: Client) -> None:
    """The result of an action (in the live region), a refusal, a page refused altogether and the accept
    page's explanations (a broken link, another address, already a member) all come from the host's
    ``alert`` macro; the live region itself stays the package's."""
    token = themed.token()
    shown: dict[str, str] = {}
    themed.post(f"{ORG}/team/remove", {"csrf_token": token, "user_id": "mallory", "confirmed": "yes"})
    _, shown["the result of an action"], _ = themed.get(f"{ORG}/team")
    _, invited, _ = themed.post(
        f"{ORG}/team/invite", {"csrf_token": token, "kind": "email", "email": "bob@other.example"}
    )
    _, shown["another address and already a member"], _ = themed.get(_accept_link(invited))
    _, shown["a broken invitation link"], _ = themed.get(f"{PREFIX}/invitations/accept?token=nonsense")
    themed.sign_in("carol", "carol@acme.example")
    status, shown["a refused action"], _ = themed.post(
        f"{ORG}/api-keys/issue", {"csrf_token": themed.token(), "name": "sneaky"}
    )
    assert status == 403
    status, shown["a refused page"], _ = themed.get(f"{ORG}/audit")
    assert status == 403
    for situation, text in shown.items():
        alerts = _alerts(text)
        assert alerts, f"{situation}: no alert shown"
        for tag in alerts:
            assert "host-alert" in tag, (situation, tag)
        assert re.search(r'<div id="tk-status" class="tk-status" role="status" aria-live="polite">', text)
    assert re.search(
        r'id="tk-status"[^>]*>\s*<div class="tk-alert host-alert host-alert-success">',
        shown["the result of an action"],
    )
    accept = shown["another address and already a member"]
    assert 'class="tk-alert host-alert host-alert-warning" id="tk-other-address"' in accept
    assert "host-alert-info" in accept
    assert 'host-alert-error" role="alert"' in shown["a refused page"]


def test_the_hosts_button_and_field_macros_draw_the_forms(themed: Client) -> None:
    """The host's ``button`` and ``field`` replace the package's on the forms; the macros the host did not
    override (``csrf``, ``select``, ``time``) are the package's, imported from ``tenantkit-default/``."""
    _, page, _ = themed.get(f"{ORG}/api-keys")
    assert 'class="host-button host-button-primary">Issue key</button>' in page
    assert 'class="host-button host-button-danger">Revoke CI</button>' in page
    assert '<p class="host-field"><label for="issue-name">Name</label>' in page
    assert 'class="tk-button' not in page.replace('class="tk-button tk-button-secondary" data-copy', "")
    assert 'name="csrf_token" value="' in page
    assert "<time datetime=" in page
    _, team, _ = themed.get(f"{ORG}/team")
    assert '<select id="invite-role" name="role">' in team


@pytest.mark.parametrize("adapter", sorted(APP_BUILDERS))
def test_a_hosts_base_template_wraps_the_pages_in_its_layout(adapter: str, sqlite_engine: sa.Engine) -> None:
    """A host's ``tenantkit/base.html`` extending its own ``layout.html`` puts every page inside the host's
    layout: the host's menu and title, the page's content, the live region htmx updates, and the flash."""
    client = _client(adapter, sqlite_engine, LAYOUT)
    token = client.token()
    client.post(f"{ORG}/team/remove", {"csrf_token": token, "user_id": "mallory", "confirmed": "yes"})
    _, team, _ = client.get(f"{ORG}/team")
    assert '<body class="host-layout">' in team
    assert '<nav class="host-menu"><a href="/">Host app home</a></nav>' in team
    assert re.search(r"<title>Team · Host app</title>", team)
    assert "mallory was removed" in team.split('id="tk-status"', 1)[1].split("</div>", 1)[0]
    assert team.index('id="tk-status"') < team.index('id="tk-content"') < team.index("<h1>Team of acme</h1>")
    assert "tenantkit.css" not in team  # the package's <head> is the host's now
    for page in PAGES:
        if page.name in {"accept", "webhook-deliveries"}:
            continue  # need a token or an id; the same base as the others
        _, text, _ = client.get(f"{PREFIX}{_filled(page.path)}")
        assert '<nav class="host-menu">' in text, page.name
        assert "<h1>" in text, page.name
