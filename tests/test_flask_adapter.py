"""What only the Flask adapter has: the extension pattern, ``flask.g``, the decorators' edges, transactions.

The HTTP contract shared with FastAPI is in ``test_http_contract.py``. The signed-in user here is a TEST
STAND-IN for an identity provider: the ``X-User`` header.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import flask
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from tenantkit import HOST, PermissionDeniedError, Role, TenantKit
from tenantkit._http import WWW_AUTHENTICATE
from tenantkit.events import MemberRoleChanged
from tenantkit.flask import (
    Authorization,
    Principal,
    TenantKitFlask,
    current_api_key,
    current_authorization,
    error_response,
)
from tenantkit.testing import FrozenClock
from tests.http_apps import make_kit

ORG = "org_1"


class CountingSession(Session):
    """A Session that records how the adapter ended its transactions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def commit(self) -> None:
        self.calls.append("commit")
        super().commit()

    def rollback(self) -> None:
        self.calls.append("rollback")
        super().rollback()


class Harness:
    """A Flask app with the extension, a per-request session and the ``X-User`` stand-in."""

    def __init__(
        self, kit: TenantKit, engine: sa.Engine, *, commit: bool = True, with_user: bool = True
    ) -> None:
        self.kit = kit
        self.engine = engine
        self.sessions: list[CountingSession] = []
        self.app = flask.Flask(__name__)
        self.app.config["TESTING"] = True
        self.app.teardown_appcontext(self._close)
        current_user: Callable[[], Principal | str] | None = None
        if with_user:
            current_user = lambda: flask.request.headers["X-User"]  # noqa: E731 -- TEST STAND-IN
        self.tk = TenantKitFlask(kit, session=self.session, current_user=current_user, commit=commit)

    def session(self) -> Session:
        if "db_session" not in flask.g:
            opened = CountingSession(self.engine)
            self.sessions.append(opened)
            flask.g.db_session = opened
        current: Session = flask.g.db_session
        return current

    @staticmethod
    def _close(error: BaseException | None) -> None:
        opened = flask.g.pop("db_session", None)
        if opened is not None:
            opened.close()

    def client(self) -> flask.testing.FlaskClient:
        return self.app.test_client()


@pytest.fixture
def kit(clock: FrozenClock, sqlite_engine: sa.Engine) -> TenantKit:
    """A kit whose org_1 has alice (OWNER), bob (ADMIN) and carol (MEMBER)."""
    kit = make_kit(clock=clock)
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "bob", Role.ADMIN, actor=HOST)
        kit.members.add(session, ORG, "carol", Role.MEMBER, actor=HOST)
    return kit


def issue(kit: TenantKit, engine: sa.Engine, organization: str = ORG, scopes: tuple[str, ...] = ()) -> str:
    with kit.transaction(engine) as session:
        if organization != ORG:
            kit.members.add(session, organization, "zoe", Role.OWNER, actor=HOST)
        return kit.api_keys.issue(session, organization, "test", actor=HOST, scopes=scopes).reveal()


class TestExtension:
    def test_init_app_registers(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """``init_app`` makes the extension reachable as ``app.extensions["tenantkit"]``."""
        harness = Harness(kit, sqlite_engine)
        harness.tk.init_app(harness.app)
        assert harness.app.extensions["tenantkit"] is harness.tk

    def test_app_in_constructor(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Passing ``app=`` initialises that application at once."""
        app = flask.Flask(__name__)
        tk = TenantKitFlask(kit, session=lambda: Session(sqlite_engine), app=app)
        assert app.extensions["tenantkit"] is tk

    def test_errors_in_host_views_become_json(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A TenantKitError raised in the host's own view is answered with the JSON error and its status."""
        harness = Harness(kit, sqlite_engine)
        harness.tk.init_app(harness.app)

        @harness.app.get("/boom")
        def boom() -> str:
            raise PermissionDeniedError("members:remove", Role.MEMBER)

        response = harness.client().get("/boom")
        assert response.status_code == 403
        assert response.mimetype == "application/json"
        assert response.get_json()["error"]["code"] == "permission_denied"
        assert response.get_json()["error"]["role"] == "MEMBER"

    def test_principal_exported(self) -> None:
        """``Principal`` and ``Authorization`` come from ``tenantkit.flask`` and are the shared models."""
        from tenantkit import _http

        assert Principal is _http.Principal
        assert Authorization is _http.Authorization


class TestRequireApiKey:
    def test_verification_on_g(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """The view sees the verified key both through ``current_api_key()`` and ``g.tenantkit_api_key``."""
        harness = Harness(kit, sqlite_engine)
        harness.tk.init_app(harness.app)
        key = issue(kit, sqlite_engine, scopes=("a", "b"))

        @harness.app.get("/k")
        @harness.tk.require_api_key("a")
        def view() -> dict[str, object]:
            assert flask.g.tenantkit_api_key is current_api_key()
            return {"org": current_api_key().organization_id, "scopes": list(current_api_key().scopes)}

        response = harness.client().get("/k", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        assert response.get_json() == {"org": ORG, "scopes": ["a", "b"]}

    def test_refused_request_never_reaches_view(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A missing key is a 401 with ``WWW-Authenticate`` and the view does not run."""
        harness = Harness(kit, sqlite_engine)
        harness.tk.init_app(harness.app)
        ran: list[bool] = []

        @harness.app.get("/k")
        @harness.tk.require_api_key()
        def view() -> str:
            ran.append(True)
            return "ok"

        response = harness.client().get("/k")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
        assert ran == []

    def test_organization_restriction(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A route restricted to one organization refuses another organization's valid key with 401."""
        harness = Harness(kit, sqlite_engine)
        harness.tk.init_app(harness.app)
        theirs = issue(kit, sqlite_engine, organization="org_2")
        ours = issue(kit, sqlite_engine)

        @harness.app.get("/k")
        @harness.tk.require_api_key(organization_id=ORG)
        def view() -> str:
            return "ok"

        assert harness.client().get("/k", headers={"X-API-Key": theirs}).status_code == 401
        assert harness.client().get("/k", headers={"X-API-Key": ours}).status_code == 200

    def test_current_api_key_outside_decorator(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Asking for the key in an undecorated view is a programming error, said plainly."""
        harness = Harness(kit, sqlite_engine)
        with harness.app.test_request_context("/"), pytest.raises(RuntimeError, match="require_api_key"):
            current_api_key()

    @pytest.mark.parametrize("commit", [True, False])
    def test_last_used_commit(self, kit: TenantKit, sqlite_engine: sa.Engine, commit: bool) -> None:
        """The last-used time is committed by the decorator unless ``commit=False`` leaves it to the host."""
        harness = Harness(kit, sqlite_engine, commit=commit)
        harness.tk.init_app(harness.app)
        key = issue(kit, sqlite_engine)

        @harness.app.get("/k")
        @harness.tk.require_api_key()
        def view() -> str:
            return "ok"

        assert harness.client().get("/k", headers={"X-API-Key": key}).status_code == 200
        with Session(sqlite_engine) as session:
            listed = kit.api_keys.list_keys(session, ORG, actor=HOST).items
        assert (listed[0].last_used_at is not None) is commit
        assert harness.sessions[0].calls == (["commit"] if commit else [])


class TestRequirePermission:
    def test_custom_url_variable(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """The organization can come from a URL variable of any name; the result is on ``g``."""
        harness = Harness(kit, sqlite_engine)
        harness.tk.init_app(harness.app)

        @harness.app.post("/teams/<team>/invite")
        @harness.tk.require_permission("members:invite", organization_id_arg="team")
        def view(team: str) -> dict[str, object]:
            assert flask.g.tenantkit_authorization is current_authorization()
            return current_authorization().model_dump(mode="json")

        allowed = harness.client().post(f"/teams/{ORG}/invite", headers={"X-User": "bob"})
        assert allowed.get_json() == {
            "organization_id": ORG,
            "user_id": "bob",
            "role": "ADMIN",
            "custom_role": None,
        }
        refused = harness.client().post(f"/teams/{ORG}/invite", headers={"X-User": "carol"})
        assert refused.status_code == 403
        assert refused.get_json()["error"]["code"] == "permission_denied"

    def test_missing_url_variable(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A view without the organization's URL variable fails loudly rather than checking nothing."""
        harness = Harness(kit, sqlite_engine)
        harness.tk.init_app(harness.app)

        @harness.app.post("/nowhere")
        @harness.tk.require_permission("members:invite")
        def view() -> str:
            return "ok"

        with pytest.raises(TypeError, match="organization_id"):
            harness.client().post("/nowhere", headers={"X-User": "alice"})

    def test_current_authorization_outside_decorator(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Asking for the authorization in an undecorated view is a programming error, said plainly."""
        harness = Harness(kit, sqlite_engine)
        with harness.app.test_request_context("/"), pytest.raises(RuntimeError, match="require_permission"):
            current_authorization()

    def test_without_current_user(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Permission checks need ``current_user``; without it the request fails with a clear TypeError."""
        harness = Harness(kit, sqlite_engine, with_user=False)
        harness.tk.init_app(harness.app)

        @harness.app.post("/orgs/<organization_id>/x")
        @harness.tk.require_permission("members:invite")
        def view(organization_id: str) -> str:
            return "ok"

        with pytest.raises(TypeError, match="current_user"):
            harness.client().post(f"/orgs/{ORG}/x")


class TestBlueprint:
    def test_needs_current_user(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Building the blueprint without ``current_user`` fails at set-up, not on the first request."""
        with pytest.raises(TypeError, match="current_user"):
            Harness(kit, sqlite_engine, with_user=False).tk.blueprint()

    def test_errors_without_init_app(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """The blueprint answers its errors as JSON even when ``init_app`` was not called."""
        harness = Harness(kit, sqlite_engine)
        harness.app.register_blueprint(harness.tk.blueprint())
        response = harness.client().get(f"/organizations/{ORG}/members", headers={"X-User": "stranger"})
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "permission_denied"

    def test_registered_twice(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Two blueprints with different names can be mounted under two prefixes."""
        harness = Harness(kit, sqlite_engine)
        harness.app.register_blueprint(harness.tk.blueprint(), url_prefix="/a")
        harness.app.register_blueprint(harness.tk.blueprint("tenantkit_b"), url_prefix="/b")
        for prefix in ("/a", "/b"):
            response = harness.client().get(
                f"{prefix}/organizations/{ORG}/members", headers={"X-User": "carol"}
            )
            assert response.status_code == 200

    def test_commit_and_rollback(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A successful change is committed, a refused one rolled back, and a read left alone."""
        harness = Harness(kit, sqlite_engine)
        harness.app.register_blueprint(harness.tk.blueprint())
        client = harness.client()
        assert client.get(f"/organizations/{ORG}/members", headers={"X-User": "bob"}).status_code == 200
        ok = client.patch(
            f"/organizations/{ORG}/members/carol", json={"role": "ADMIN"}, headers={"X-User": "bob"}
        )
        assert ok.status_code == 200
        refused = client.patch(
            f"/organizations/{ORG}/members/carol", json={"role": "OWNER"}, headers={"X-User": "bob"}
        )
        assert refused.status_code == 403
        assert [session.calls for session in harness.sessions] == [[], ["commit"], ["rollback"]]
        with Session(sqlite_engine) as session:
            assert kit.members.get(session, ORG, "carol", actor=HOST).role is Role.ADMIN

    def test_commit_false_leaves_transaction_to_host(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """With ``commit=False`` the blueprint neither commits nor rolls back: the host owns it."""
        harness = Harness(kit, sqlite_engine, commit=False)
        harness.app.register_blueprint(harness.tk.blueprint())
        client = harness.client()
        ok = client.patch(
            f"/organizations/{ORG}/members/carol", json={"role": "ADMIN"}, headers={"X-User": "bob"}
        )
        assert ok.status_code == 200
        refused = client.delete(f"/organizations/{ORG}/members/alice", headers={"X-User": "alice"})
        assert refused.status_code == 403
        assert [session.calls for session in harness.sessions] == [[], []]
        with Session(sqlite_engine) as session:
            assert kit.members.get(session, ORG, "carol", actor=HOST).role is Role.MEMBER

    def test_events_after_commit_only(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """Listeners hear a change made through the blueprint, and nothing from a refused one."""
        heard: list[MemberRoleChanged] = []
        kit.subscribe(heard.append, MemberRoleChanged)
        harness = Harness(kit, sqlite_engine)
        harness.app.register_blueprint(harness.tk.blueprint())
        client = harness.client()
        client.patch(f"/organizations/{ORG}/members/carol", json={"role": "OWNER"}, headers={"X-User": "bob"})
        assert heard == []
        client.patch(f"/organizations/{ORG}/members/carol", json={"role": "ADMIN"}, headers={"X-User": "bob"})
        assert [(event.user_id, event.new_role) for event in heard] == [("carol", Role.ADMIN)]

    def test_oversized_body_is_json(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A body over ``MAX_CONTENT_LENGTH`` is a JSON 413 inside the blueprint, not an HTML page."""
        harness = Harness(kit, sqlite_engine)
        harness.app.config["MAX_CONTENT_LENGTH"] = 100
        harness.app.register_blueprint(harness.tk.blueprint())
        response = harness.client().post(
            f"/organizations/{ORG}/api-keys", json={"name": "x" * 500}, headers={"X-User": "alice"}
        )
        assert response.status_code == 413
        assert response.get_json()["error"]["code"] == "request_entity_too_large"

    def test_bare_user_id(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """``current_user`` may return a bare user id instead of a Principal."""
        harness = Harness(kit, sqlite_engine)
        harness.app.register_blueprint(harness.tk.blueprint())
        response = harness.client().get(f"/organizations/{ORG}/members", headers={"X-User": "carol"})
        assert {item["user_id"] for item in response.get_json()["items"]} == {"alice", "bob", "carol"}


class TestScopedSession:
    def test_scoped_session_like_flask_sqlalchemy(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A ``scoped_session`` (Flask-SQLAlchemy's ``db.session``) works for keys and the blueprint."""
        registry = scoped_session(sessionmaker(sqlite_engine))
        app = flask.Flask(__name__)
        app.config["TESTING"] = True
        app.teardown_appcontext(lambda error: registry.remove())
        tk = TenantKitFlask(
            kit, session=lambda: registry, current_user=lambda: flask.request.headers["X-User"]
        )
        tk.init_app(app)
        app.register_blueprint(tk.blueprint())
        key = issue(kit, sqlite_engine)

        @app.get("/k")
        @tk.require_api_key()
        def view() -> str:
            return current_api_key().organization_id or ""

        client = app.test_client()
        assert client.get("/k", headers={"X-API-Key": key}).get_data(as_text=True) == ORG
        changed = client.patch(
            f"/organizations/{ORG}/members/carol", json={"role": "ADMIN"}, headers={"X-User": "bob"}
        )
        assert changed.status_code == 200
        with Session(sqlite_engine) as session:
            assert kit.members.get(session, ORG, "carol", actor=HOST).role is Role.ADMIN
            assert kit.api_keys.list_keys(session, ORG, actor=HOST).items[0].last_used_at is not None


class TestModule:
    def test_core_does_not_import_flask(self) -> None:
        """Importing tenantkit loads no Flask: the adapter is an optional install."""
        code = "import sys, tenantkit; sys.exit('flask' in sys.modules or 'werkzeug' in sys.modules)"
        assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

    def test_public_names(self) -> None:
        """Every name in ``tenantkit.flask.__all__`` exists, and ``error_response`` builds the JSON error."""
        import tenantkit.flask

        assert all(hasattr(tenantkit.flask, name) for name in tenantkit.flask.__all__)
        with flask.Flask(__name__).test_request_context("/"):
            response = error_response(PermissionDeniedError("members:remove", None))
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "permission_denied"
