"""The pages in a real browser: Debian's Chromium, driven by Selenium, against a real server on 127.0.0.1.

One end-to-end flow per adapter: FastAPI (uvicorn) with JavaScript on, Flask (a werkzeug server thread) with
JavaScript off, so that every action is proven as a plain form POST too. Marked ``browser``: CI runs them
once, on the default Python, on SQLite; under ``CI=true`` a missing Chromium fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import tenantkit
from tests.page_apps import APP_BUILDERS, ORGANIZATION, OWNER_EMAIL, PREFIX, make_kit, seed

if os.environ.get("CI") != "true":
    pytest.importorskip("selenium")  # outside CI a machine without the dev extra skips; CI fails instead
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _require_browser() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    message = (
        "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _browser(*, javascript: bool) -> WebDriver:
    _require_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver: WebDriver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(2)
    return driver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'pages.sqlite3'}"
    tenantkit.upgrade(url)
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def _serve(adapter: str, engine: sa.Engine) -> Iterator[str]:
    kit = make_kit()
    seed(kit, engine)
    app = APP_BUILDERS[adapter](kit, engine)
    if adapter == "fastapi":
        import uvicorn

        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(5)
    else:
        from werkzeug.serving import make_server

        wsgi = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=wsgi.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{wsgi.server_port}"
        wsgi.shutdown()
        thread.join(5)


def _status_of(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})  # noqa: S310  our server
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310  http://127.0.0.1 only
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def _submit(driver: WebDriver, form_action: str, button_text: str, row: str | None = None) -> None:
    scope: Any = driver
    if row is not None:
        scope = driver.find_element(By.XPATH, f"//tr[th[starts-with(normalize-space(), '{row}')]]")
    form = scope.find_element(By.CSS_SELECTOR, f"form[action$='/{form_action}']")
    _click_and_wait(
        driver, form.find_element(By.XPATH, f".//button[contains(normalize-space(), '{button_text}')]")
    )


def _click_and_wait(driver: WebDriver, button: Any) -> None:
    """Click a submit button and wait for the page its form answers with."""
    page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, 10).until(lambda _: _is_gone(page))


def _is_gone(element: Any) -> bool:
    """Whether ``element`` left the document (the answer replaced its page). Chromium's driver reports a node
    of a replaced document either as stale or as "does not belong to the document": both mean gone."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False


def _status_text(driver: WebDriver) -> str:
    text: str = driver.find_element(By.ID, "tk-status").text
    return text


def _flow(base: str, *, javascript: bool) -> None:  # noqa: PLR0915  one scripted session, step by step
    owner = _browser(javascript=javascript)
    invitee = _browser(javascript=javascript)  # a second browser: its own cookies, as the invitee's would be
    team = f"{base}{PREFIX}/organizations/{ORGANIZATION}/team"
    try:
        owner.get(f"{base}/sign-in?user=alice&email={OWNER_EMAIL}")
        assert owner.find_element(By.TAG_NAME, "h1").text == f"Team of {ORGANIZATION}"

        # Invite by email, then by link: each link is shown once, on the answer to the POST.
        owner.find_element(By.ID, "invite-email").send_keys("bob@acme.example")
        _submit(owner, "invite", "Create invitation")
        email_link = owner.find_element(By.ID, "tk-secret-value").get_attribute("value")
        assert email_link is not None
        assert "token=" in email_link
        owner.get(team)
        owner.find_element(By.ID, "invite-kind-link").click()
        owner.find_element(By.ID, "invite-allowed_domains").send_keys("acme.example")
        _submit(owner, "invite", "Create invitation")
        domain_link = owner.find_element(By.ID, "tk-secret-value").get_attribute("value")
        assert domain_link is not None
        assert domain_link != email_link

        # The invitee sees what they are invited to, and accepts with a POST.
        invitee.get(f"{base}/sign-in?user=bob&email=bob@acme.example")
        invitee.get(email_link)
        facts = invitee.find_element(By.CSS_SELECTOR, ".tk-facts").text
        assert ORGANIZATION in facts
        assert "alice" in facts
        assert "MEMBER" in facts
        _click_and_wait(invitee, invitee.find_element(By.XPATH, "//button[contains(., 'Accept and join')]"))
        assert "You joined acme as MEMBER" in _status_text(invitee)
        invitee.get(f"{base}/sign-in?user=carol&email=carol@acme.example")
        invitee.get(domain_link)
        _click_and_wait(invitee, invitee.find_element(By.XPATH, "//button[contains(., 'Accept and join')]"))
        assert "You joined acme as MEMBER" in _status_text(invitee)

        # The owner changes bob's role, and is refused, in words next to the field, demoting herself.
        owner.get(team)
        row = owner.find_element(By.XPATH, "//tr[th[starts-with(normalize-space(), 'bob')]]")
        row.find_element(By.CSS_SELECTOR, "select[name=role] option[value=ADMIN]").click()
        _submit(owner, "change-role", "Change role", row="bob")
        assert "bob is now ADMIN" in _status_text(owner)
        row = owner.find_element(By.XPATH, "//tr[th[starts-with(normalize-space(), 'alice')]]")
        row.find_element(By.CSS_SELECTOR, "select[name=role] option[value=MEMBER]").click()
        _submit(owner, "change-role", "Change role", row="alice")
        row = owner.find_element(By.XPATH, "//tr[th[starts-with(normalize-space(), 'alice')]]")
        assert "last OWNER" in row.find_element(By.CSS_SELECTOR, ".tk-error").text
        assert row.find_element(By.CSS_SELECTOR, "select").get_attribute("aria-invalid") == "true"

        # Issue a key: shown once, in the POST's answer; never in the URL, and gone on the next GET.
        owner.get(f"{base}{PREFIX}/organizations/{ORGANIZATION}/api-keys")
        owner.find_element(By.ID, "issue-name").send_keys("CI")
        owner.find_element(By.ID, "issue-scopes").send_keys("reports:read")
        _submit(owner, "issue", "Issue key")
        key = owner.find_element(By.ID, "tk-secret-value").get_attribute("value")
        assert key is not None
        assert key.startswith("tk_")
        copy = owner.find_element(By.CSS_SELECTOR, "[data-copy]")
        if javascript:
            copy.click()  # the clipboard answers asynchronously: wait for the button to say so
            WebDriverWait(owner, 5).until(lambda _: copy.text == "Copied")
        else:
            assert not copy.is_displayed()  # the copy button needs JavaScript; the field is still selectable
        assert key not in owner.current_url
        reports = f"{base}/api/reports"
        assert _status_of(reports, key) == 200
        owner.get(f"{base}{PREFIX}/organizations/{ORGANIZATION}/api-keys")
        assert key not in owner.page_source
        owner.back()  # history holds the GET of the form, never the POST's answer with the key
        assert key not in owner.current_url

        # Rotate with no grace: the old key stops, the new one (shown once) works.
        owner.get(f"{base}{PREFIX}/organizations/{ORGANIZATION}/api-keys")
        grace = owner.find_element(By.CSS_SELECTOR, "form[action$='/rotate'] input[name=grace_minutes]")
        grace.clear()
        grace.send_keys("0")
        _submit(owner, "rotate", "Rotate CI")
        rotated = owner.find_element(By.ID, "tk-secret-value").get_attribute("value")
        assert rotated is not None
        assert rotated != key
        assert _status_of(reports, rotated) == 200
        assert _status_of(reports, key) == 401

        # Revoke, with its confirmation step.
        owner.get(f"{base}{PREFIX}/organizations/{ORGANIZATION}/api-keys")
        row = owner.find_elements(By.XPATH, "//tr[td[contains(., 'Active')]]")[0]
        _click_and_wait(owner, row.find_element(By.XPATH, ".//button[contains(., 'Revoke')]"))
        assert owner.find_element(By.TAG_NAME, "h1").text == "Please confirm"
        _click_and_wait(owner, owner.find_element(By.XPATH, "//button[contains(., 'Yes, continue')]"))
        assert "revoked" in _status_text(owner)
        assert _status_of(reports, rotated) == 401

        if javascript:
            # A forged CSRF token is refused, in words.
            owner.execute_script(
                "document.querySelector(\"form[action$='/issue'] input[name=csrf_token]\").value = 'forged'"
            )
            owner.find_element(By.ID, "issue-name").send_keys("forged")
            _submit(owner, "issue", "Issue key")
            assert "could not be accepted" in owner.find_element(By.CSS_SELECTOR, "[role=alert]").text
    finally:
        owner.quit()
        invitee.quit()


@pytest.mark.parametrize(("adapter", "javascript"), [("fastapi", True), ("flask", False)])
def test_owner_invites_changes_roles_and_manages_keys_in_chromium(
    adapter: str, javascript: bool, database: sa.Engine
) -> None:
    """An OWNER invites by email and by link, the invitees accept in their own browser, a role changes,
    demoting the last owner is refused in words, and a key is issued (shown once, copied), used, rotated
    and revoked: through FastAPI with JavaScript, through Flask without."""
    _require_browser()
    for base in _serve(adapter, database):
        _flow(base, javascript=javascript)
