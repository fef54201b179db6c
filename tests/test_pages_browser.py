"""The pages in a real browser: Debian's Chromium, driven by Selenium, against a real server on 127.0.0.1.

The scripted session of the pages runs through each adapter (FastAPI on uvicorn, Flask on a werkzeug server
thread), each with JavaScript on (every action done by htmx, in place) and off (every action a plain form
POST); short flows cover the roles, settings, webhooks and domains pages, and the audit log's download.
Marked ``browser``: CI runs them once, on the default Python, on SQLite; under ``CI=true`` a missing Chromium
fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import TenantKit
from tenantkit.ui import PAGES
from tests.chromium import CHROMEDRIVER, CHROMIUM, chromium, is_gone, serve_asgi
from tests.page_apps import APP_BUILDERS, ORGANIZATION, OWNER_EMAIL, PREFIX, make_kit, seed

if os.environ.get("CI") != "true":
    pytest.importorskip("selenium")  # outside CI a machine without the dev extra skips; CI fails instead
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

pytestmark = pytest.mark.browser


def _require_browser() -> None:
    if Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists():
        return
    message = (
        "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _browser(*, javascript: bool, profile: Path | None = None) -> WebDriver:
    """A headless Chromium; with ``profile``, in that profile directory, to read after it quits."""
    _require_browser()
    driver: WebDriver = chromium(javascript=javascript, profile=profile)
    return driver


@pytest.fixture
def database(tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'pages.sqlite3'}"
    tenantkit.upgrade(url)
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def _serve(adapter: str, engine: sa.Engine, kit: TenantKit | None = None) -> Iterator[str]:
    """Serve the test app on 127.0.0.1; both servers log each request through :mod:`logging` (uvicorn's
    access log included: ``log_config=None`` leaves its loggers propagating to the root)."""
    kit = kit or make_kit()
    seed(kit, engine)
    app = APP_BUILDERS[adapter](kit, engine)
    if adapter == "fastapi":
        with serve_asgi(app, log_level="debug") as base:
            yield base
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


class BrowserSession:
    """One browser of the scripted session, and how its actions are proven to have been done.

    With JavaScript, each action must be done by htmx: a marker set on ``window`` by the last full load
    survives it (no page was loaded), the ``aria-live`` region is the same element with new content, and a
    destructive action asks its ``PageAction.confirm`` question in a native dialog, accepted through
    Selenium's alert API. Without JavaScript, each answer is a new page and the server asks on a page.
    """

    def __init__(self, driver: WebDriver, *, javascript: bool) -> None:
        self.driver = driver
        self.javascript = javascript

    def get(self, url: str) -> None:
        self.driver.get(url)
        if self.javascript:
            self.driver.execute_script("window.tkLoaded = (window.tkLoaded || 0) + 1")

    def submit(self, form_action: str, button_text: str, row: str | None = None) -> None:
        scope: Any = self.driver
        if row is not None:
            scope = self.driver.find_element(By.XPATH, f"//tr[th[starts-with(normalize-space(), '{row}')]]")
        form = scope.find_element(By.CSS_SELECTOR, f"form[action$='/{form_action}']")
        self.click(form.find_element(By.XPATH, f".//button[contains(normalize-space(), '{button_text}')]"))

    def click(self, button: Any, *, confirm: str | None = None) -> None:
        """Click a submit button and wait for the answer to be shown: swapped in by htmx, or loaded."""
        content = self.driver.find_element(By.ID, "tk-content")
        status = self.driver.find_element(By.ID, "tk-status")
        button.click()
        if confirm is not None and self.javascript:
            dialog = WebDriverWait(self.driver, 5, poll_frequency=0.05).until(
                expected_conditions.alert_is_present()
            )
            assert dialog.text == confirm
            dialog.accept()
        WebDriverWait(self.driver, 10, poll_frequency=0.05).until(lambda _: is_gone(content))
        if self.javascript:
            assert self.driver.execute_script("return window.tkLoaded") == 1, "a full page load happened"
            assert not is_gone(status), "the live region was replaced instead of updated"

    def confirm(self, button: Any, question: str) -> None:
        """A destructive action: one native dialog with JavaScript, the server's confirmation page without."""
        self.click(button, confirm=question)
        if not self.javascript:
            assert self.driver.find_element(By.TAG_NAME, "h1").text == "Please confirm"
            assert question in self.driver.page_source
            self.click(self.driver.find_element(By.XPATH, "//button[contains(., 'Yes, continue')]"))

    def status(self) -> str:
        text: str = self.driver.find_element(By.ID, "tk-status").text
        return text

    def secret(self) -> str:
        value = self.driver.find_element(By.ID, "tk-secret-value").get_attribute("value")
        assert value
        return value


def _question(page: str, action: str) -> str:
    question = next(p for p in PAGES if p.name == page).action(action).confirm
    assert question is not None
    return question


def _flow(base: str, profiles: Path, *, javascript: bool) -> list[str]:  # noqa: PLR0915  one scripted session
    """The scripted session of the issue; answers the keys it was shown, for the checks that follow."""
    owner = BrowserSession(_browser(javascript=javascript, profile=profiles / "owner"), javascript=javascript)
    # A second browser, its own profile: the invitee's cookies are not the owner's.
    invitee = BrowserSession(
        _browser(javascript=javascript, profile=profiles / "invitee"), javascript=javascript
    )
    team = f"{base}{PREFIX}/organizations/{ORGANIZATION}/team"
    keys_page = f"{base}{PREFIX}/organizations/{ORGANIZATION}/api-keys"
    try:
        owner.get(f"{base}/sign-in?user=alice&email={OWNER_EMAIL}")
        assert owner.driver.find_element(By.TAG_NAME, "h1").text == f"Team of {ORGANIZATION}"

        # Invite by email, then by link: each link is shown once, on the answer to the POST.
        owner.driver.find_element(By.ID, "invite-email").send_keys("bob@acme.example")
        owner.submit("invite", "Create invitation")
        email_link = owner.secret()
        assert "token=" in email_link
        owner.get(team)
        owner.driver.find_element(By.ID, "invite-kind-link").click()
        owner.driver.find_element(By.ID, "invite-allowed_domains").send_keys("acme.example")
        owner.submit("invite", "Create invitation")
        domain_link = owner.secret()
        assert domain_link != email_link

        # The invitee sees what they are invited to, and accepts with a POST.
        invitee.get(f"{base}/sign-in?user=bob&email=bob@acme.example")
        invitee.get(email_link)
        facts = invitee.driver.find_element(By.CSS_SELECTOR, ".tk-facts").text
        assert ORGANIZATION in facts
        assert "alice" in facts
        assert "MEMBER" in facts
        invitee.click(invitee.driver.find_element(By.XPATH, "//button[contains(., 'Accept and join')]"))
        assert "You joined acme as MEMBER" in invitee.status()
        assert invitee.driver.current_url == team  # the team's page, swapped in or loaded
        invitee.get(f"{base}/sign-in?user=carol&email=carol@acme.example")
        invitee.get(domain_link)
        invitee.click(invitee.driver.find_element(By.XPATH, "//button[contains(., 'Accept and join')]"))
        assert "You joined acme as MEMBER" in invitee.status()

        # The owner changes bob's role, and is refused, in words next to the field, demoting herself.
        owner.get(team)
        row = owner.driver.find_element(By.XPATH, "//tr[th[starts-with(normalize-space(), 'bob')]]")
        row.find_element(By.CSS_SELECTOR, "select[name=role] option[value=ADMIN]").click()
        owner.submit("change-role", "Change role", row="bob")
        assert "bob is now ADMIN" in owner.status()
        row = owner.driver.find_element(By.XPATH, "//tr[th[starts-with(normalize-space(), 'alice')]]")
        row.find_element(By.CSS_SELECTOR, "select[name=role] option[value=MEMBER]").click()
        owner.submit("change-role", "Change role", row="alice")
        row = owner.driver.find_element(By.XPATH, "//tr[th[starts-with(normalize-space(), 'alice')]]")
        refusal = row.find_element(By.CSS_SELECTOR, ".tk-error")
        assert refusal.is_displayed()
        assert "last OWNER" in refusal.text
        assert row.find_element(By.CSS_SELECTOR, "select").get_attribute("aria-invalid") == "true"

        # Issue a key: shown once, in the POST's answer; never in the URL, and gone on the next GET.
        owner.get(keys_page)
        owner.driver.find_element(By.ID, "issue-name").send_keys("CI")
        owner.driver.find_element(By.ID, "issue-scopes").send_keys("reports:read")
        owner.submit("issue", "Issue key")
        key = owner.secret()
        assert key.startswith("tk_")
        copy = owner.driver.find_element(By.CSS_SELECTOR, "[data-copy]")
        if javascript:
            copy.click()  # the clipboard answers asynchronously: wait for the button to say so
            WebDriverWait(owner.driver, 5).until(lambda _: copy.text == "Copied")
            assert owner.driver.current_url == keys_page  # htmx left the action's URL out of the address bar
        else:
            assert not copy.is_displayed()  # the copy button needs JavaScript; the field is still selectable
        assert key not in owner.driver.current_url
        reports = f"{base}/api/reports"
        assert _status_of(reports, key) == 200
        owner.get(keys_page)
        assert key not in owner.driver.page_source
        owner.driver.back()  # history holds the GET of the form, never the POST's answer with the key
        assert key not in owner.driver.current_url

        # Rotate with no grace: the old key stops, the new one (shown once) works.
        owner.get(keys_page)
        grace = owner.driver.find_element(
            By.CSS_SELECTOR, "form[action$='/rotate'] input[name=grace_minutes]"
        )
        grace.clear()
        grace.send_keys("0")
        owner.submit("rotate", "Rotate CI")
        rotated = owner.secret()
        assert rotated != key
        assert _status_of(reports, rotated) == 200
        assert _status_of(reports, key) == 401

        # Revoke, confirmed once: by htmx's native dialog, or by the server's confirmation page.
        owner.get(keys_page)
        row = owner.driver.find_elements(By.XPATH, "//tr[td[contains(., 'Active')]]")[0]
        owner.confirm(
            row.find_element(By.XPATH, ".//button[contains(., 'Revoke')]"), _question("api-keys", "revoke")
        )
        assert "revoked" in owner.status()
        assert _status_of(reports, rotated) == 401

        if javascript:
            # A forged CSRF token is refused, in words, swapped in like any answer.
            owner.driver.execute_script(
                "document.querySelector(\"form[action$='/issue'] input[name=csrf_token]\").value = 'forged'"
            )
            owner.driver.find_element(By.ID, "issue-name").send_keys("forged")
            owner.submit("issue", "Issue key")
            assert "could not be accepted" in owner.driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
            _assert_not_in_web_storage(owner.driver, [key, rotated])
        return [key, rotated]
    finally:
        owner.driver.quit()
        invitee.driver.quit()


def _assert_not_in_web_storage(driver: WebDriver, secrets: list[str]) -> None:
    """Nothing htmx (or anything else) put in the page's local or session storage holds a secret; htmx did
    write there (its current path), so the check is not of an empty store."""
    stored: dict[str, str] = driver.execute_script(
        "var all = {}; [localStorage, sessionStorage].forEach(function (store) {"
        " for (var i = 0; i < store.length; i++) { all[store.key(i)] = store.getItem(store.key(i)); } });"
        " return all;"
    )
    assert "htmx-current-path-for-history" in stored
    assert "htmx-history-cache" not in stored
    for secret in secrets:
        assert not any(secret in name or secret in value for name, value in stored.items())


def _assert_not_in_profile(profile: Path, secrets: list[str], *, javascript: bool) -> None:
    """After the browser quit: its history (the ``urls`` table of ``Default/History``) and its Local and
    Session Storage files hold no secret; the history does hold the pages visited, so it was written."""
    history = profile / "Default" / "History"
    assert history.exists()
    copy = profile.parent / f"{profile.name}-history.sqlite3"
    shutil.copyfile(history, copy)  # never open the browser's own file
    with contextlib.closing(sqlite3.connect(copy)) as connection:
        urls = [url for (url,) in connection.execute("SELECT url FROM urls")]
    assert any(url.endswith("/api-keys") for url in urls), urls
    if javascript:  # htmx kept each action's URL out of history (HX-Push-Url: false on its own answer)
        assert not any(url.endswith(("/issue", "/rotate", "/revoke")) for url in urls), urls
    files = [history]
    for store in ("Local Storage", "Session Storage"):
        files.extend(path for path in (profile / "Default" / store).rglob("*") if path.is_file())
    for secret in secrets:
        assert not any(secret in url for url in urls)
        for path in files:
            data = path.read_bytes()
            assert secret.encode() not in data, path
            assert secret.encode("utf-16-le") not in data, path


def _assert_not_logged(caplog: pytest.LogCaptureFixture, printed: str, secrets: list[str]) -> None:
    """No log record (root logger at DEBUG: the servers' access logs, SQLAlchemy's statements and their
    parameters, tenantkit's own) and nothing the servers printed holds a secret; the requests were logged."""
    lines = [caplog.text, printed]
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(record.args))
    logged = "\n".join(lines)
    assert "/api-keys/issue" in logged  # the access log was captured: the check is not of nothing
    for secret in secrets:
        assert secret not in logged


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record at DEBUG, less the test's own browser driver (Selenium reports what it reads from
    the page, the shown key included: that is the test reading it, not the server logging it)."""
    for driver_logger in ("selenium", "urllib3"):
        caplog.set_level(logging.WARNING, driver_logger)
    caplog.set_level(logging.DEBUG)  # last: it sets the capturing handler's level too
    return caplog


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
@pytest.mark.parametrize("adapter", sorted(APP_BUILDERS))
def test_owner_invites_changes_roles_and_manages_keys_in_chromium(
    adapter: str,
    javascript: bool,
    database: sa.Engine,
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An OWNER invites by email and by link, the invitees accept in their own browser, a role changes,
    demoting the last owner is refused in words, and a key is issued (shown once, copied), used, rotated
    and revoked: through each adapter, with JavaScript (every action done by htmx) and without (every action
    a plain form POST). The keys shown never reach a log line, the browser's history or its storage."""
    _require_browser()
    for base in _serve(adapter, database):
        keys = _flow(base, tmp_path, javascript=javascript)
    printed = capfd.readouterr()
    _assert_not_logged(logs, printed.out + printed.err, keys)
    _assert_not_in_profile(tmp_path / "owner", keys, javascript=javascript)


def _assert_foreign_answer_loads_in_full(owner: BrowserSession, url: str) -> None:
    """An answer that is not one of the pages (here the host's 401 JSON) is loaded in full, as without
    JavaScript, instead of blanking the page it would have been swapped into."""
    owner.driver.execute_script(
        "var link = document.createElement('a'); link.id = 'tk-foreign'; link.href = arguments[0];"
        " link.textContent = 'Reports'; document.getElementById('tk-content').append(link);"
        " htmx.process(link);",
        url,
    )
    owner.driver.find_element(By.ID, "tk-foreign").click()
    WebDriverWait(owner.driver, 10, poll_frequency=0.05).until(lambda driver: driver.current_url == url)
    assert owner.driver.execute_script("return window.tkLoaded") is None  # a full load happened


def test_roles_settings_webhooks_and_domains_in_chromium(
    database: sa.Engine, tmp_path: Path, logs: pytest.LogCaptureFixture
) -> None:
    """With htmx on FastAPI: a custom role is created and listed, a setting saved, a webhook endpoint
    created with its secret shown once, a domain added with its TXT record shown; an answer that is not
    one of the pages is loaded in full."""
    _require_browser()
    for base in _serve("fastapi", database, make_kit(webhooks=True)):
        owner = BrowserSession(_browser(javascript=True, profile=tmp_path / "owner"), javascript=True)
        organization = f"{base}{PREFIX}/organizations/{ORGANIZATION}"
        try:
            owner.get(f"{base}/sign-in?user=alice&email={OWNER_EMAIL}")
            owner.click(owner.driver.find_element(By.LINK_TEXT, "Roles"))  # a boosted link: swapped in
            assert owner.driver.current_url == f"{organization}/roles"
            assert owner.driver.title.startswith("Roles")
            owner.driver.find_element(By.ID, "create-key").send_keys("nurse")
            owner.driver.find_element(By.ID, "create-name").send_keys("Nurse")
            owner.driver.find_element(By.ID, "create-permissions").send_keys("members:invite")
            owner.submit("create", "Create role")
            assert "Role 'nurse' created." in owner.status()
            row = owner.driver.find_element(By.XPATH, "//tr[td[code[.='nurse']]]")
            assert "members:invite" in row.text

            owner.get(f"{organization}/settings")
            field = owner.driver.find_element(By.CSS_SELECTOR, "input[name='setting.api_keys_must_expire']")
            field.clear()
            field.send_keys("true")
            owner.submit("update", "Save settings")
            assert "Settings saved (version 1)." in owner.status()
            assert owner.driver.find_element(By.ID, "tk-settings-version").text == "1"

            owner.get(f"{organization}/webhooks")
            owner.driver.find_element(By.ID, "create-url").send_keys("https://8.8.8.8/in")
            owner.driver.find_element(By.ID, "create-event_types").send_keys("member.added")
            owner.submit("create", "Add endpoint")
            secret = owner.secret()
            assert secret.startswith("whsec_")
            assert "https://8.8.8.8/in" in owner.driver.find_element(By.CSS_SELECTOR, ".tk-table").text
            owner.get(f"{organization}/webhooks")
            assert secret not in owner.driver.page_source

            owner.get(f"{organization}/domains")
            owner.driver.find_element(By.ID, "add-domain").send_keys("acme.example")
            owner.submit("add", "Add domain")
            record = owner.driver.find_element(By.ID, "tk-record-name").get_attribute("value")
            assert record
            assert "acme.example" in record
            token = owner.secret()
            owner.get(f"{organization}/domains")
            assert token not in owner.driver.page_source
            _assert_not_in_web_storage(owner.driver, [secret, token])

            _assert_foreign_answer_loads_in_full(owner, f"{base}/api/reports")
        finally:
            owner.driver.quit()
    assert secret not in logs.text
    assert token not in logs.text


@pytest.mark.parametrize("adapter", sorted(APP_BUILDERS))
def test_the_audit_log_is_filtered_and_downloaded_in_chromium(
    adapter: str, database: sa.Engine, tmp_path: Path
) -> None:
    """With htmx: the audit filter swaps the list in, and the download link (``hx-boost="false"``) is left
    to the browser, which saves the file with the filter's rows while the page stays as it was."""
    _require_browser()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    for base in _serve(adapter, database):
        owner = BrowserSession(_browser(javascript=True, profile=tmp_path / "owner"), javascript=True)
        organization = f"{base}{PREFIX}/organizations/{ORGANIZATION}"
        try:
            owner.driver.execute_cdp_cmd(
                "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
            )
            owner.get(f"{base}/sign-in?user=alice&email={OWNER_EMAIL}")
            owner.get(f"{organization}/audit")
            owner.driver.find_element(By.ID, "audit-event-types").send_keys("member.added")
            owner.click(owner.driver.find_element(By.XPATH, "//button[normalize-space()='Filter']"))
            assert "event_types=member.added" in owner.driver.current_url
            listed = owner.driver.find_elements(By.CSS_SELECTOR, ".tk-table tbody th[scope='row']")
            assert [cell.text for cell in listed] == ["member.added"]
            content = owner.driver.find_element(By.ID, "tk-content")
            # Boosted, htmx would fetch the file itself (and the pages' script then load it again in full):
            # the export would run twice. Left to the browser, htmx sends nothing.
            owner.driver.execute_script(
                "document.body.addEventListener('htmx:beforeRequest',"
                " function () { window.tkRequests = (window.tkRequests || 0) + 1; });"
            )
            owner.driver.find_element(By.LINK_TEXT, "Download CSV").click()
            saved = WebDriverWait(owner.driver, 10, poll_frequency=0.1).until(
                lambda _: [path for path in downloads.glob("*.csv") if path.stat().st_size]
            )
            assert saved[0].name.startswith(f"audit-{ORGANIZATION}-")
            rows = saved[0].read_text(encoding="utf-8").splitlines()
            assert len(rows) == 2  # the header and alice's member.added
            assert ",member.added," in rows[1]
            assert not is_gone(content), "the download replaced the page"
            assert owner.driver.execute_script("return window.tkLoaded") == 1
            assert owner.driver.execute_script("return window.tkRequests") is None, "htmx fetched the file"
        finally:
            owner.driver.quit()
