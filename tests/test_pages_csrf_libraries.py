"""The pages beside the frameworks' usual CSRF libraries: Flask-WTF's ``CSRFProtect``, starlette-csrf.

A host that already runs one of them keeps it: on Flask the pages render and check Flask-WTF's token by
themselves; on FastAPI starlette-csrf (a header-only double submit) is told to leave the pages' prefix to the
pages' own protection, the documented recipe (docs/pages.md, "Protections").
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from typing import Any

import flask
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from flask_wtf.csrf import CSRFProtect
from starlette_csrf.middleware import CSRFMiddleware

from tenantkit import HOST, Role, TenantKit
from tenantkit.ui import CSRF_COOKIE, FlaskWtfTokens, SessionCsrfTokens, SignedDoubleSubmit
from tenantkit.ui._flask_wtf import flask_wtf_tokens
from tests.page_apps import (
    ORGANIZATION,
    OWNER,
    OWNER_EMAIL,
    PAGES_SECRET,
    PREFIX,
    fastapi_app,
    flask_app,
    make_kit,
    seed,
)
from tests.test_pages import ACTION_PATHS

ORG = f"{PREFIX}/organizations/{ORGANIZATION}"
APP_SECRET = "host-session-secret-0123456789abcdef"
REFUSED_IN_WORDS = "could not be accepted"


def _flask_wtf(**config: Any) -> Any:
    """A ``configure`` for :func:`flask_app`: the host's session secret, ``config``, and ``CSRFProtect``."""

    def configure(app: flask.Flask) -> None:
        app.secret_key = APP_SECRET
        app.config.update(config)
        CSRFProtect(app)

    return configure


def _kit(engine: sa.Engine) -> TenantKit:
    kit = make_kit()
    seed(kit, engine)
    with kit.transaction(engine) as session:
        kit.members.add(session, ORGANIZATION, "mallory", Role.MEMBER, actor=HOST)
    return kit


def _signed_in(app: flask.Flask) -> Any:
    client = app.test_client()
    client.get(f"/sign-in?user={OWNER}&email={OWNER_EMAIL}")
    return client


def _form_token(html: str, field: str = "csrf_token") -> str:
    found = re.search(rf'<input type="hidden" name="{field}" value="([^"]*)">', html)
    assert found is not None, html
    return found.group(1)


def _key_names(kit: TenantKit, engine: sa.Engine) -> list[str]:
    with kit.transaction(engine) as session:
        return [key.name for key in kit.api_keys.list_keys(session, ORGANIZATION, actor=HOST).items]


def _member_ids(kit: TenantKit, engine: sa.Engine) -> list[str]:
    with kit.transaction(engine) as session:
        return [
            member.user_id for member in kit.members.list_members(session, ORGANIZATION, actor=HOST).items
        ]


# -- Flask-WTF -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("registered", ["before the pages", "after the pages"])
def test_with_csrfprotect_the_pages_post_flask_wtfs_token(sqlite_engine: sa.Engine, registered: str) -> None:
    """On an app running Flask-WTF's ``CSRFProtect`` (registered before or after the pages' blueprint), the
    pages' forms carry Flask-WTF's token for the session, and their POSTs get through ``CSRFProtect``: a key
    is issued, a confirmed removal goes through its confirmation form. The pages set no cookie of their
    own: the secret is Flask-WTF's, in Flask's session."""
    kit = _kit(sqlite_engine)
    if registered == "before the pages":
        app = flask_app(kit, sqlite_engine, configure=_flask_wtf())
    else:
        app = flask_app(kit, sqlite_engine)
        _flask_wtf()(app)
    client = _signed_in(app)
    page = client.get(f"{ORG}/api-keys")
    assert page.status_code == 200
    assert CSRF_COOKIE not in page.headers.get("Set-Cookie", "")
    token = _form_token(page.get_data(as_text=True))
    with app.test_request_context():
        flask.session["csrf_token"] = _flask_session_secret(client)
        assert FlaskWtfTokens().valid(None, token)  # the token is Flask-WTF's, for this session

    issued = client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "CI"})
    assert issued.status_code == 200, issued.get_data(as_text=True)
    assert re.search(r'value="(tk_[^"]+)"', issued.get_data(as_text=True))
    assert _key_names(kit, sqlite_engine) == ["CI"]

    asked = client.post(f"{ORG}/team/remove", data={"csrf_token": token, "user_id": "mallory"})
    assert asked.status_code == 200
    confirm_token = _form_token(asked.get_data(as_text=True))
    removed = client.post(
        f"{ORG}/team/remove", data={"csrf_token": confirm_token, "user_id": "mallory", "confirmed": "yes"}
    )
    assert removed.status_code == 303
    assert _member_ids(kit, sqlite_engine) == [OWNER]
    assert client.get_cookie(CSRF_COOKIE, path=PREFIX) is None


def _flask_session_secret(client: Any) -> str:
    """The raw secret Flask-WTF keeps in the client's Flask session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    app = client.application
    data: dict[str, str] = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    return data["csrf_token"]


def test_with_csrfprotect_a_missing_or_wrong_token_changes_nothing(sqlite_engine: sa.Engine) -> None:
    """With ``CSRFProtect``, a page POST without a token, with a forged one, with the pages' own signed
    double-submit token (cookie and all), or with the right token from another origin is refused, and no
    key is issued."""
    kit = _kit(sqlite_engine)
    app = flask_app(kit, sqlite_engine, configure=_flask_wtf())
    client = _signed_in(app)
    token = _form_token(client.get(f"{ORG}/api-keys").get_data(as_text=True))
    own = SignedDoubleSubmit(PAGES_SECRET)
    cookie = own.new_cookie()
    client.set_cookie(CSRF_COOKIE, cookie)
    for data, headers in (
        ({}, {}),
        ({"csrf_token": "forged"}, {}),
        ({"csrf_token": token + "x"}, {}),
        ({"csrf_token": own.token_for(cookie)}, {}),
        ({"csrf_token": token}, {"Origin": "https://evil.example"}),
    ):
        answer = client.post(f"{ORG}/api-keys/issue", data={**data, "name": "sneaky"}, headers=headers)
        assert answer.status_code in (400, 403), (data, headers)
    assert _key_names(kit, sqlite_engine) == []


def test_the_pages_check_flask_wtfs_token_themselves(sqlite_engine: sa.Engine, monkeypatch: Any) -> None:
    """With ``WTF_CSRF_CHECK_DEFAULT`` off ``CSRFProtect`` checks no view by itself, and the pages still
    check Flask-WTF's token, within its ``WTF_CSRF_TIME_LIMIT``: missing, forged and expired tokens are
    refused in words (403), a fresh one is accepted."""
    kit = _kit(sqlite_engine)
    app = flask_app(
        kit, sqlite_engine, configure=_flask_wtf(WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=60)
    )
    client = _signed_in(app)
    token = _form_token(client.get(f"{ORG}/api-keys").get_data(as_text=True))
    for data in ({}, {"csrf_token": "forged"}):
        answer = client.post(f"{ORG}/api-keys/issue", data={**data, "name": "sneaky"})
        assert answer.status_code == 403
        assert REFUSED_IN_WORDS in answer.get_data(as_text=True)
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)  # itsdangerous's clock: the token is a minute old
    expired = client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "late"})
    assert expired.status_code == 403
    monkeypatch.undo()
    accepted = client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "CI"})
    assert accepted.status_code == 200
    assert _key_names(kit, sqlite_engine) == ["CI"]


@pytest.mark.parametrize("check_default", [True, False])
def test_with_csrfprotect_every_action_refuses_a_missing_or_wrong_token(
    sqlite_engine: sa.Engine, check_default: bool
) -> None:
    """Every POST of the page table, on an app with ``CSRFProtect``, is refused without a token, with a
    forged one and with the right one from another origin: by Flask-WTF (400) when it checks every view,
    else by the pages themselves (403, in words)."""
    kit = make_kit(webhooks=True)
    seed(kit, sqlite_engine)
    app = flask_app(kit, sqlite_engine, configure=_flask_wtf(WTF_CSRF_CHECK_DEFAULT=check_default))
    client = _signed_in(app)
    token = _form_token(client.get(f"{ORG}/team").get_data(as_text=True))
    for path in ACTION_PATHS:
        for data, headers in (
            ({}, {}),
            ({"csrf_token": "forged"}, {}),
            ({"csrf_token": token}, {"Origin": "https://evil.example"}),
        ):
            answer = client.post(path, data={**data, "name": "x", "user_id": OWNER}, headers=headers)
            if check_default and "Origin" not in headers:
                assert answer.status_code == 400, (path, data)
            else:
                assert answer.status_code == 403, (path, data, headers)
                assert REFUSED_IN_WORDS in answer.get_data(as_text=True)


def test_the_pages_use_flask_wtfs_field_name(sqlite_engine: sa.Engine) -> None:
    """``WTF_CSRF_FIELD_NAME`` names the pages' token field too, the one ``CSRFProtect`` reads; the other
    fields posted back (the confirmation form's) never repeat it."""
    kit = _kit(sqlite_engine)
    app = flask_app(kit, sqlite_engine, configure=_flask_wtf(WTF_CSRF_FIELD_NAME="wtf_token"))
    client = _signed_in(app)
    html = client.get(f"{ORG}/team").get_data(as_text=True)
    assert 'name="csrf_token"' not in html
    token = _form_token(html, "wtf_token")
    asked = client.post(f"{ORG}/team/remove", data={"wtf_token": token, "user_id": "mallory"})
    assert asked.status_code == 200
    assert asked.get_data(as_text=True).count('name="wtf_token"') == 1
    removed = client.post(
        f"{ORG}/team/remove", data={"wtf_token": token, "user_id": "mallory", "confirmed": "yes"}
    )
    assert removed.status_code == 303
    assert _member_ids(kit, sqlite_engine) == [OWNER]


def test_with_flask_wtf_disabled_the_pages_keep_their_own_tokens(sqlite_engine: sa.Engine) -> None:
    """With ``WTF_CSRF_ENABLED`` off Flask-WTF checks nothing, so the pages keep their signed double submit
    (never unprotected): their cookie is set, a forged token is refused, theirs is accepted."""
    kit = _kit(sqlite_engine)
    app = flask_app(kit, sqlite_engine, configure=_flask_wtf(WTF_CSRF_ENABLED=False))
    client = _signed_in(app)
    token = _form_token(client.get(f"{ORG}/api-keys").get_data(as_text=True))
    cookie = client.get_cookie(CSRF_COOKIE, path=PREFIX)
    assert cookie is not None
    assert SignedDoubleSubmit(PAGES_SECRET).valid(cookie.value, token)
    assert client.post(f"{ORG}/api-keys/issue", data={"csrf_token": "forged", "name": "x"}).status_code == 403
    assert client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "CI"}).status_code == 200


def test_an_explicit_provider_wins_over_flask_wtf(sqlite_engine: sa.Engine) -> None:
    """``pages_blueprint(csrf=...)`` on an app with ``CSRFProtect``: the pages use the host's provider
    (its token accepted, a forged one refused by the pages in words), and only the pages' blueprint is
    exempted from ``CSRFProtect``; the host's own views are still checked by it."""
    kit = _kit(sqlite_engine)
    provider = SignedDoubleSubmit("the-host-own-csrf-secret-0123")
    app = flask_app(kit, sqlite_engine, configure=_flask_wtf(), csrf=provider)

    @app.post("/host-form")
    def host_form() -> str:
        return "done"

    client = _signed_in(app)
    token = _form_token(client.get(f"{ORG}/api-keys").get_data(as_text=True))
    cookie = client.get_cookie(CSRF_COOKIE, path=PREFIX)
    assert cookie is not None
    assert provider.valid(cookie.value, token)
    forged = client.post(f"{ORG}/api-keys/issue", data={"csrf_token": "forged", "name": "x"})
    assert forged.status_code == 403
    assert REFUSED_IN_WORDS in forged.get_data(as_text=True)
    assert client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "CI"}).status_code == 200
    assert _key_names(kit, sqlite_engine) == ["CI"]
    assert client.post("/host-form").status_code == 400  # CSRFProtect still guards the host


def test_without_csrfprotect_the_pages_are_unchanged(sqlite_engine: sa.Engine) -> None:
    """Flask-WTF installed but not registered on the app (or another extension under ``csrf``): the pages
    use their own signed double submit, cookie and all."""
    kit = _kit(sqlite_engine)
    app = flask_app(kit, sqlite_engine)
    client = _signed_in(app)
    token = _form_token(client.get(f"{ORG}/api-keys").get_data(as_text=True))
    cookie = client.get_cookie(CSRF_COOKIE, path=PREFIX)
    assert cookie is not None
    assert SignedDoubleSubmit(PAGES_SECRET).valid(cookie.value, token)
    assert client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "CI"}).status_code == 200
    app.extensions["csrf"] = object()
    assert flask_wtf_tokens(app) is None
    assert isinstance(FlaskWtfTokens(), SessionCsrfTokens)
    assert not isinstance(SignedDoubleSubmit(PAGES_SECRET), SessionCsrfTokens)


def test_flask_wtf_is_imported_only_by_an_app_that_registered_it() -> None:
    """``tenantkit.flask`` and ``tenantkit.ui`` import no Flask-WTF, nor does a Flask page served without
    ``CSRFProtect``, and without Flask-WTF installed an app's other ``csrf`` extension is left alone: the
    extras need no Flask-WTF."""
    script = """
import sys
import sqlalchemy as sa
import tenantkit.flask, tenantkit.ui
from tenantkit import TenantKit
from tenantkit.flask import TenantKitFlask
import flask
app = flask.Flask("host")
tk = TenantKitFlask(TenantKit(), session=lambda: None, current_user=lambda: "alice", app=app)
app.register_blueprint(tk.pages_blueprint(secret_key="s" * 32), url_prefix="/account")
assert app.test_client().get("/account/static/tenantkit.css").status_code == 200
assert not [name for name in sys.modules if name.startswith(("flask_wtf", "wtforms"))], "imported"
# As if Flask-WTF were not installed, with another extension registered as "csrf":
sys.modules["flask_wtf"] = sys.modules["flask_wtf.csrf"] = None
app.extensions["csrf"] = object()
from tenantkit.ui._flask_wtf import exempt_pages, flask_wtf_tokens
assert flask_wtf_tokens(app) is None
exempt_pages(app, None)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


# -- starlette-csrf ------------------------------------------------------------------------------------------


def _fastapi_with_starlette_csrf(kit: TenantKit, engine: sa.Engine, **options: Any) -> TestClient:
    app = fastapi_app(kit, engine)
    app.add_middleware(CSRFMiddleware, secret=APP_SECRET, **options)

    @app.post("/host-form")
    def host_form() -> str:
        return "done"

    client = TestClient(app, base_url="http://testserver", follow_redirects=False)
    client.get(f"/sign-in?user={OWNER}&email={OWNER_EMAIL}")
    return client


def test_starlette_csrf_alone_refuses_the_pages_plain_form_posts(sqlite_engine: sa.Engine) -> None:
    """starlette-csrf wants its token in the ``x-csrftoken`` header, which a plain HTML form cannot send:
    without the exemption every page POST is refused (403), even with the pages' valid token."""
    kit = _kit(sqlite_engine)
    client = _fastapi_with_starlette_csrf(kit, sqlite_engine)
    token = _form_token(client.get(f"{ORG}/api-keys").text)
    answer = client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "CI"})
    assert answer.status_code == 403
    assert answer.text == "CSRF token verification failed"
    assert _key_names(kit, sqlite_engine) == []


def test_starlette_csrf_exempting_the_pages_prefix_leaves_them_their_own_check(
    sqlite_engine: sa.Engine,
) -> None:
    """The documented recipe: ``exempt_urls=[re.compile(r"^/account/")]``. The pages' POSTs pass the
    middleware and are checked by the pages (their token accepted, a missing or forged one refused in
    words, nothing issued); the host's own routes stay guarded by starlette-csrf."""
    kit = _kit(sqlite_engine)
    client = _fastapi_with_starlette_csrf(kit, sqlite_engine, exempt_urls=[re.compile(rf"^{PREFIX}/")])
    token = _form_token(client.get(f"{ORG}/api-keys").text)
    for data in ({}, {"csrf_token": "forged"}):
        refused = client.post(f"{ORG}/api-keys/issue", data={**data, "name": "sneaky"})
        assert refused.status_code == 403
        assert REFUSED_IN_WORDS in refused.text
    assert _key_names(kit, sqlite_engine) == []
    assert client.post(f"{ORG}/api-keys/issue", data={"csrf_token": token, "name": "CI"}).status_code == 200
    assert _key_names(kit, sqlite_engine) == ["CI"]
    assert client.post("/host-form").status_code == 403
