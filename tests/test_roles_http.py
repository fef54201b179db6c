"""Custom roles over HTTP, on both adapters: the management endpoints for roles, assigning a custom role, and
``permission(...)`` / ``require_permission(...)`` guarding a host route with a custom permission."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session

from tenantkit import HOST, CustomRole, PermissionRegistry, Permissions, Role, TenantKit
from tenantkit._http import Authorization
from tenantkit.errors import UnknownPermissionError
from tenantkit.fastapi import TenantKitFastAPI
from tenantkit.flask import TenantKitFlask, current_authorization
from tests.http_apps import FastAPIClient, FlaskClient, HttpClient, principal_from_headers
from tests.test_http_contract import assert_error, user

ORG = "org_1"
BASE = f"/tk/organizations/{ORG}"
OWNER, ADMIN, DOC = user("owner"), user("admin"), user("doc")
PHYSICIAN = CustomRole(
    key="physician", name="Physician", rank=Role.MEMBER, permissions=frozenset({"orders:sign"})
)
POLICY = Permissions(registry=PermissionRegistry(["orders:sign", "records:read"]), roles=[PHYSICIAN])


def fastapi_client(kit: TenantKit, engine: sa.Engine) -> HttpClient:
    def session() -> Iterator[Session]:
        with Session(engine) as opened:
            yield opened

    def current_user(request: Request) -> Any:
        return principal_from_headers(request.headers)

    tk = TenantKitFastAPI(kit, session=session, current_user=current_user)
    app = FastAPI()
    tk.install(app)
    app.include_router(tk.router(), prefix="/tk")

    may_sign = tk.permission("orders:sign")
    may_read = tk.permission("members:read")

    @app.post("/orgs/{organization_id}/orders/sign")
    def sign(authorization: Authorization = Depends(may_sign)) -> dict[str, object]:
        return {"user_id": authorization.user_id}

    @app.get("/orgs/{organization_id}/whoami/sign")
    def whoami_sign(authorization: Authorization = Depends(may_sign)) -> dict[str, object]:
        return authorization.model_dump(mode="json")

    @app.get("/orgs/{organization_id}/whoami/read")
    def whoami_read(authorization: Authorization = Depends(may_read)) -> dict[str, object]:
        return authorization.model_dump(mode="json")

    return FastAPIClient(app)


def flask_client(kit: TenantKit, engine: sa.Engine) -> HttpClient:
    app = flask.Flask(__name__)
    app.config["TESTING"] = True

    def session() -> Session:
        if "db_session" not in flask.g:
            flask.g.db_session = Session(engine)
        opened: Session = flask.g.db_session
        return opened

    @app.teardown_appcontext
    def close_session(error: BaseException | None) -> None:
        opened = flask.g.pop("db_session", None)
        if opened is not None:
            opened.close()

    tk = TenantKitFlask(
        kit, session=session, current_user=lambda: principal_from_headers(flask.request.headers)
    )
    tk.init_app(app)
    app.register_blueprint(tk.blueprint(), url_prefix="/tk")

    @app.post("/orgs/<organization_id>/orders/sign")
    @tk.require_permission("orders:sign")
    def sign(organization_id: str) -> dict[str, object]:
        return {"user_id": current_authorization().user_id}

    @app.get("/orgs/<organization_id>/whoami/sign")
    @tk.require_permission("orders:sign")
    def whoami_sign(organization_id: str) -> dict[str, object]:
        return current_authorization().model_dump(mode="json")

    @app.get("/orgs/<organization_id>/whoami/read")
    @tk.require_permission("members:read")
    def whoami_read(organization_id: str) -> dict[str, object]:
        return current_authorization().model_dump(mode="json")

    return FlaskClient(app)


@pytest.fixture(params=["fastapi", "flask"])
def client(request: pytest.FixtureRequest, sqlite_engine: sa.Engine) -> HttpClient:
    kit = TenantKit(permissions=POLICY)
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORG, "owner", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "admin", Role.ADMIN, actor="owner")
        kit.members.add(session, ORG, "doc", "physician", actor=HOST)
    build = fastapi_client if request.param == "fastapi" else flask_client
    return build(kit, sqlite_engine)


class TestRoleEndpoints:
    def test_create_list_assign_and_delete(self, client: HttpClient) -> None:
        """The OWNER defines a role, an ADMIN assigns it (members list it), deleting it is refused with the
        count, and deleting with ``reassign_to`` moves its holder."""
        created = client.request(
            "POST",
            f"{BASE}/roles",
            json={"key": "scribe", "name": "Scribe", "rank": "MEMBER", "permissions": ["members:read"]},
            headers=OWNER,
        )
        assert created.status == 201, created
        assert created.json["key"] == "scribe"
        listed = client.request("GET", f"{BASE}/roles", headers=DOC)
        assert [item["key"] for item in listed.json["items"]] == ["physician", "scribe"]

        assigned = client.request("PATCH", f"{BASE}/members/admin", json={"role": "scribe"}, headers=OWNER)
        assert (assigned.status, assigned.json["role"], assigned.json["custom_role"]) == (
            200,
            "MEMBER",
            "scribe",
        )
        members = client.request("GET", f"{BASE}/members", headers=DOC).json["items"]
        assert {item["user_id"]: item["custom_role"] for item in members} == {
            "admin": "scribe",
            "doc": "physician",
            "owner": None,
        }

        refused = client.request("DELETE", f"{BASE}/roles/scribe", headers=OWNER)
        assert_error(refused, 409, "role_in_use")
        assert refused.json["error"]["members"] == 1
        deleted = client.request("DELETE", f"{BASE}/roles/scribe?reassign_to=MEMBER", headers=OWNER)
        assert (deleted.status, deleted.json) == (200, {"key": "scribe", "reassigned_members": 1})

    def test_edit_a_role(self, client: HttpClient) -> None:
        """PATCH renames a role; an ADMIN (no ``roles:manage``) is refused."""
        client.request(
            "POST", f"{BASE}/roles", json={"key": "ward", "name": "Ward", "rank": "ADMIN"}, headers=OWNER
        )
        renamed = client.request("PATCH", f"{BASE}/roles/ward", json={"name": "Ward lead"}, headers=OWNER)
        assert (renamed.status, renamed.json["name"]) == (200, "Ward lead")
        denied = client.request("PATCH", f"{BASE}/roles/ward", json={"name": "x"}, headers=ADMIN)
        assert_error(denied, 403, "permission_denied")

    def test_escalation_is_refused_over_http(self, client: HttpClient) -> None:
        """An ADMIN may not assign the physician role, whose ``orders:sign`` it lacks: 403 with the list."""
        reply = client.request("PATCH", f"{BASE}/members/admin", json={"role": "physician"}, headers=ADMIN)
        assert_error(reply, 403, "permission_escalation")
        assert reply.json["error"]["missing"] == ["orders:sign"]
        typo = client.request(
            "POST",
            f"{BASE}/roles",
            json={"key": "x", "name": "X", "rank": "MEMBER", "permissions": ["orders:sing"]},
            headers=OWNER,
        )
        assert_error(typo, 422, "unknown_permission")


class TestCustomPermissionGuards:
    def test_a_custom_permission_guards_a_host_route(self, client: HttpClient) -> None:
        """The physician may sign orders; the OWNER and ADMIN, whose ranks lack it, get 403."""
        assert client.request("POST", f"/orgs/{ORG}/orders/sign", headers=DOC).json == {"user_id": "doc"}
        for headers in (OWNER, ADMIN):
            assert_error(
                client.request("POST", f"/orgs/{ORG}/orders/sign", headers=headers), 403, "permission_denied"
            )

    def test_a_typo_fails_when_the_route_is_declared(self) -> None:
        """With a registry, ``permission("orders:sing")`` raises at once, not on the first request."""
        kit = TenantKit(permissions=POLICY)
        with pytest.raises(UnknownPermissionError):
            TenantKitFastAPI(kit, session=lambda: None, current_user=lambda: "u").permission("orders:sing")
        with pytest.raises(UnknownPermissionError):
            TenantKitFlask(kit, session=Session, current_user=lambda: "u").require_permission("orders:sing")


class TestTheAuthorizationNamesTheCustomRole:
    """``permission(...)`` / ``require_permission(...)`` report the custom role beside the rank."""

    def test_a_custom_permission_reports_the_role_that_carries_it(self, client: HttpClient) -> None:
        """Allowed ``orders:sign`` through the physician role, the authorization says so."""
        reply = client.request("GET", f"/orgs/{ORG}/whoami/sign", headers=DOC)
        assert reply.json == {
            "organization_id": ORG,
            "user_id": "doc",
            "role": "MEMBER",
            "custom_role": "physician",
        }

    def test_a_rank_action_reports_the_custom_role_too(self, client: HttpClient) -> None:
        """An action the rank answers alone (``members:read``) still names the member's custom role; a member
        with a rank alone has ``custom_role`` null."""
        doc = client.request("GET", f"/orgs/{ORG}/whoami/read", headers=DOC).json
        owner = client.request("GET", f"/orgs/{ORG}/whoami/read", headers=OWNER).json
        assert (doc["role"], doc["custom_role"]) == ("MEMBER", "physician")
        assert (owner["role"], owner["custom_role"]) == ("OWNER", None)

    def test_an_authorization_without_a_custom_role_is_still_built(self) -> None:
        """Code that builds an ``Authorization`` as before (no ``custom_role``) keeps working."""
        built = Authorization(organization_id=ORG, user_id="u", role=Role.ADMIN)
        assert built.custom_role is None
