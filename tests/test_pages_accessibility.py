"""Every page passes axe-core in Chromium: no ``serious`` or ``critical`` violation.

axe-core is vendored under ``tests/vendor/axe-core/`` (from the npm registry, version and licence noted
there) and injected into each page through the driver, so nothing is downloaded when the test runs. One
browser visits every page of :data:`~tenantkit.ui.PAGES` as an OWNER through FastAPI, with data in its tables,
plus the states a page only shows after an action: a secret revealed once, the confirmation step, a refusal
next to its field. Marked ``browser`` like the other Chromium tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tenantkit import HOST, Role
from tenantkit.ui import PAGES
from tests.chromium import serve_asgi
from tests.page_apps import (
    ORGANIZATION,
    OWNER,
    OWNER_EMAIL,
    PREFIX,
    add_sso_connection,
    fastapi_app,
    make_kit,
    seed,
)
from tests.test_pages_browser import BrowserSession, _browser, _require_browser, database

pytestmark = pytest.mark.browser

__all__ = ["database"]  # the fixture, shared with the flow tests

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = frozenset({"serious", "critical"})
ORG = f"{PREFIX}/organizations/{ORGANIZATION}"


def _violations(driver: WebDriver) -> list[str]:
    """axe-core's serious and critical violations of the page the driver shows, one line each."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    results: list[dict[str, Any]] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done([{id: 'axe-error', impact: 'critical', help: String(e),"
        " nodes: []}]));"
    )
    found = []
    for violation in results:
        if violation["impact"] in BLOCKING:
            targets = ", ".join(str(node["target"]) for node in violation["nodes"][:3])
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found


@contextmanager
def _serve_fastapi(engine: sa.Engine) -> Iterator[str]:
    """The test app on a loopback port, its tables filled for every page."""
    kit = make_kit(webhooks=True)
    seed(kit, engine)
    with kit.transaction(engine) as session:
        kit.members.add(session, ORGANIZATION, "mallory", Role.MEMBER, actor=HOST)
        kit.webhooks.create_endpoint(
            session, ORGANIZATION, "https://8.8.8.8/in", ["member.added"], actor=HOST
        )
        kit.members.add(session, ORGANIZATION, "carol", Role.MEMBER, actor=HOST)  # a delivery to list
        add_sso_connection(kit, session)
    with serve_asgi(fastapi_app(kit, engine)) as base:
        yield base


def test_every_page_has_no_serious_or_critical_accessibility_violation(database: sa.Engine) -> None:  # noqa: PLR0915
    """axe-core finds no serious or critical violation on any page of the table, nor on a revealed secret,
    the confirmation step or a refusal shown next to its field."""
    _require_browser()
    assert AXE.is_file(), "tests/vendor/axe-core/axe.min.js is missing"
    with _serve_fastapi(database) as base:
        driver = _browser(javascript=True)
        session = BrowserSession(driver, javascript=True)
        report: dict[str, list[str]] = {}
        visited: set[str] = set()
        try:
            session.get(f"{base}/sign-in?user={OWNER}&email={OWNER_EMAIL}")

            def check(label: str, page: str | None = None) -> None:
                report[label] = _violations(driver)
                if page is not None:
                    visited.add(page)

            # The states an action leads to, each checked as it appears.
            session.get(f"{base}{ORG}/team")
            driver.find_element(By.ID, "invite-email").send_keys("bob@acme.example")
            session.submit("invite", "Create invitation")
            link = driver.find_element(By.ID, "tk-secret-value").get_attribute("value")
            assert link is not None
            check("team: the invitation link, shown once")
            session.get(f"{base}{ORG}/api-keys")
            driver.find_element(By.ID, "issue-name").send_keys("CI")
            session.submit("issue", "Issue key")
            check("api-keys: the new key, shown once")
            session.get(f"{base}{ORG}/team")
            row = driver.find_element(By.XPATH, f"//tr[th[starts-with(normalize-space(), '{OWNER}')]]")
            row.find_element(By.CSS_SELECTOR, "select[name=role] option[value=MEMBER]").click()
            session.submit("change-role", "Change role", row=OWNER)
            assert driver.find_elements(By.CSS_SELECTOR, ".tk-error")
            check("team: a refusal next to its field")
            session.get(f"{base}{ORG}/team")
            row = driver.find_element(By.XPATH, "//tr[th[starts-with(normalize-space(), 'mallory')]]")
            # htmx would ask in a native dialog: without its question, the server's confirmation step shows.
            driver.execute_script(
                "var form = arguments[0];"
                " form.removeAttribute('hx-confirm'); form.removeAttribute('hx-vals');",
                row.find_element(By.CSS_SELECTOR, "form[action$='/remove']"),
            )
            session.click(row.find_element(By.XPATH, ".//button[contains(., 'Remove')]"))
            assert driver.find_element(By.TAG_NAME, "h1").text == "Please confirm"
            check("team: the confirmation step")
            session.get(f"{base}{ORG}/webhooks")
            row = driver.find_element(
                By.XPATH, "//tr[th[starts-with(normalize-space(), 'https://8.8.8.8/in')]]"
            )
            row.find_element(By.TAG_NAME, "summary").click()
            url = row.find_element(By.CSS_SELECTOR, "input[name=url]")
            url.clear()
            url.send_keys("https://127.0.0.1/admin")
            session.submit("update", "Save endpoint", row="https://8.8.8.8/in")
            assert driver.find_elements(By.CSS_SELECTOR, "details[open] .tk-error")
            check("webhooks: a refused edit, opened next to its field")

            # Every page of the table, with its tables filled.
            for page in PAGES:
                if page.name == "accept":
                    session.get(link)
                elif page.name == "webhook-deliveries":
                    session.get(f"{base}{ORG}/webhooks")
                    href = driver.find_element(By.CSS_SELECTOR, "a[href$='/deliveries']").get_attribute(
                        "href"
                    )
                    assert href is not None
                    session.get(href)
                else:
                    session.get(base + PREFIX + re.sub(r"{organization_id}", ORGANIZATION, page.path))
                assert driver.find_element(By.TAG_NAME, "h1").text, page.name
                check(page.name, page.name)

            # The check can fail: an input without a label, added to the last page, is reported.
            driver.execute_script("document.querySelector('main').append(document.createElement('input'))")
            control = _violations(driver)
        finally:
            driver.quit()
    assert any(line.startswith("label (critical)") for line in control), control
    assert visited == {page.name for page in PAGES}
    failing = {label: found for label, found in report.items() if found}
    assert not failing, "\n".join(f"{label}: {line}" for label, lines in failing.items() for line in lines)
