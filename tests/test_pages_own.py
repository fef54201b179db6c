"""A page of the host's own, given as ``extra_pages=``, is one of the pages: mounted by both adapters from its
definition, listed in the navigation, signed in, permission-checked, CSRF-protected, confirmed before a
destructive action, translated from the host's catalog, and its writes commit with the adapter's commit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tenantkit import HOST, Role
from tenantkit.errors import ConfigurationError
from tenantkit.ui import PAGES, PageDefinition, PageSite
from tests.host_pages import (
    LOCALE,
    PERMISSIONS,
    PROJECTS_PAGE,
    TEMPLATES,
    add_projects,
    projects,
    projects_table,
)
from tests.page_apps import APP_BUILDERS, ORGANIZATION, OWNER, OWNER_EMAIL, PREFIX, make_kit, seed
from tests.test_pages import Client

ROOT = Path(__file__).resolve().parent.parent
ORG = f"{PREFIX}/organizations/{ORGANIZATION}"


@pytest.fixture(params=sorted(APP_BUILDERS))
def client(request: pytest.FixtureRequest, sqlite_engine: sa.Engine) -> Iterator[Client]:
    kit = make_kit(permissions=PERMISSIONS)
    seed(kit, sqlite_engine)
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORGANIZATION, "mallory", Role.MEMBER, actor=HOST)
        kit.members.add(session, "other", "olga", Role.OWNER, actor=HOST)
    with projects_table(sqlite_engine):
        add_projects(sqlite_engine, ORGANIZATION, "Apollo", "Gemini")
        add_projects(sqlite_engine, "other", "Secret")
        app = APP_BUILDERS[request.param](
            kit,
            sqlite_engine,
            extra_pages=[PROJECTS_PAGE],
            templates=[str(TEMPLATES)],
            translations=[LOCALE, ROOT / "tests" / "locale"],
        )
        client = Client(request.param, app, kit, sqlite_engine)
        client.sign_in(OWNER, OWNER_EMAIL)
        yield client


def _archived(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(sa.select(projects.c.name).where(projects.c.archived)).scalars())


def test_the_host_page_is_served_and_listed_beside_tenantkits(client: Client) -> None:
    """The projects page shows this organization's projects only, and every page's navigation links to it."""
    status, text, headers = client.get(f"{ORG}/projects")

    assert status == 200, text
    assert "<h1>Projects of acme</h1>" in text
    assert "Apollo" in text
    assert "Gemini" in text
    assert "Secret" not in text
    assert headers["Cache-Control"] == "no-store"
    _, team, _ = client.get(f"{ORG}/team")
    assert f'<a href="{ORG}/projects">Projects</a>' in team


def test_the_host_pages_permission_decides_who_sees_it_and_its_forms(client: Client) -> None:
    """A MEMBER reads the projects (``projects:read``) but is offered no archive form; a non-member is
    refused the page in words, with none of its data."""
    client.sign_in("mallory", "mallory@acme.example")
    status, text, _ = client.get(f"{ORG}/projects")
    assert status == 200
    assert "Apollo" in text
    assert "/projects/archive" not in text

    client.sign_in("olga", "olga@other.example")
    status, text, _ = client.get(f"{ORG}/projects")
    assert status == 403
    assert "projects:read" in text
    assert "Apollo" not in text


def test_the_host_action_is_csrf_protected_confirmed_and_committed(client: Client) -> None:
    """Archiving without the form's token is refused and changes nothing; with it, the confirmation step
    comes first, and the confirmed POST archives the project, redirects and announces the result."""
    form = {"project_id": f"{ORGANIZATION}-p1"}
    status, _, _ = client.post(
        f"{ORG}/projects/archive", {**form, "csrf_token": "forged", "confirmed": "yes"}
    )
    assert status == 403
    assert _archived(client.engine) == []

    token = client.token()
    status, text, _ = client.post(f"{ORG}/projects/archive", {**form, "csrf_token": token})
    assert status == 200
    assert "Archive this project?" in text
    assert _archived(client.engine) == []

    status, _, headers = client.post(
        f"{ORG}/projects/archive", {**form, "csrf_token": token, "confirmed": "yes"}
    )
    assert status == 303
    assert headers["Location"] == f"{ORG}/projects"
    assert _archived(client.engine) == ["Apollo"]
    _, text, _ = client.get(f"{ORG}/projects")
    assert "Project Apollo was archived." in text
    assert "Archive Apollo" not in text


def test_the_host_actions_refusal_shows_in_its_row(client: Client) -> None:
    """A MEMBER posting the archive form (it is not offered to them) is refused by the action's own check,
    in words, and nothing is archived; another organization's project is not found, next to its row."""
    client.sign_in("mallory", "mallory@acme.example")
    token = client.token()
    status, text, _ = client.post(
        f"{ORG}/projects/archive",
        {"project_id": f"{ORGANIZATION}-p1", "csrf_token": token, "confirmed": "yes"},
    )
    assert status == 403
    assert re.search(r'role="alert"><span class="tk-label">Refused:</span> [^<]*projects:archive', text)
    assert _archived(client.engine) == []

    client.sign_in(OWNER, OWNER_EMAIL)
    token = client.token()
    status, text, _ = client.post(
        f"{ORG}/projects/archive", {"project_id": "other-p1", "csrf_token": token, "confirmed": "yes"}
    )
    assert status == 404
    assert "No project &#39;other-p1&#39; in this organization" in text
    assert _archived(client.engine) == []


def test_the_host_page_speaks_the_hosts_translations(client: Client) -> None:
    """The host's catalog translates its own page's texts, and tenantkit's German the rest of it."""
    status, text, _ = client.get(f"{ORG}/projects", headers={"Accept-Language": "de"})

    assert status == 200
    assert "<h1>Projekte von acme</h1>" in text
    assert "Apollo archivieren" in text
    assert "Angemeldet als" in text  # the layout, from tenantkit's German test catalog


@pytest.mark.parametrize(
    "clash",
    [
        PageDefinition("team", "/mine/team", "Mine", "projects.html", lambda context: {}),
        PageDefinition("mine", "/organizations/{org}/team", "Mine", "projects.html", lambda context: {}),
        PageDefinition("mine", "mine", "Mine", "projects.html", lambda context: {}),
        PageDefinition(
            "mine", "/organizations/{id}/audit/export", "Mine", "projects.html", lambda context: {}
        ),
    ],
    ids=["name taken", "path taken", "relative path", "a download's path taken"],
)
def test_a_host_page_may_not_take_a_name_or_path_of_tenantkits(clash: PageDefinition) -> None:
    """A host page under a taken name or path (which would shadow a page in one adapter only) or a relative
    path is refused when the pages are built, with a ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="extra_pages"):
        PageSite(make_kit(), secret_key="x" * 32, extra_pages=[clash])


def test_two_host_pages_may_not_share_a_path() -> None:
    """Two pages of the host's under one path are refused too, not only a clash with tenantkit's."""
    twin = PageDefinition("twin", PROJECTS_PAGE.path, "Twin", "projects.html", lambda context: {})
    assert PROJECTS_PAGE.path not in {page.path for page in PAGES}

    with pytest.raises(ConfigurationError, match="already taken"):
        PageSite(make_kit(), secret_key="x" * 32, extra_pages=[PROJECTS_PAGE, twin])
