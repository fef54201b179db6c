"""The FastAPI adapter's own behaviour: sessions sync and async, its dependencies, OpenAPI, error bodies.

The HTTP contract both adapters share is in ``test_http_contract.py``; this file covers what only FastAPI has.
(No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at runtime.)
"""

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Annotated, Any

import httpx2
import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, Action, ApiKeySettings, ApiKeyVerification, InvitationSettings, Role, TenantKit
from tenantkit.fastapi import Authorization, Principal, TenantKitFastAPI
from tenantkit.testing import EventRecorder, FrozenClock

SECRET = "test-invitation-signing-key-0123456789"


def principal_from_headers(
    x_user: Annotated[str, Header()],
    x_email: Annotated[str | None, Header()] = None,
    x_email_verified: Annotated[bool, Header()] = False,
) -> Principal:
    return Principal(user_id=x_user, email=x_email, email_verified=x_email_verified)


def organization_from_header(x_organization: Annotated[str, Header()]) -> str:
    return x_organization


def build_app(tk: TenantKitFastAPI) -> FastAPI:
    """An app with tenantkit installed, its router under ``/tk`` and a few routes of the host's own."""
    app = FastAPI()
    tk.install(app)
    app.include_router(tk.router(), prefix="/tk")

    @app.get("/reports")
    def reports(key: Annotated[ApiKeyVerification, Depends(tk.api_key("reports:read"))]) -> dict[str, Any]:
        return {"organization_id": key.organization_id, "name": key.name, "scopes": list(key.scopes)}

    @app.get("/any-key")
    async def any_key(key: Annotated[ApiKeyVerification, Depends(tk.api_key())]) -> dict[str, Any]:
        return {"organization_id": key.organization_id}

    @app.get("/acme-only")
    def acme_only(
        key: Annotated[ApiKeyVerification, Depends(tk.api_key(organization_id="acme"))],
    ) -> dict[str, Any]:
        return {"organization_id": key.organization_id}

    @app.get("/orgs/{organization_id}/roles")
    def manage_roles(
        auth: Annotated[Authorization, Depends(tk.permission(Action.CHANGE_ROLES))],
    ) -> Authorization:
        return auth

    @app.get("/current/members")
    def members_of_header_org(
        auth: Annotated[
            Authorization,
            Depends(tk.permission(Action.READ_MEMBERS, organization_id=organization_from_header)),
        ],
    ) -> Authorization:
        return auth

    @app.get("/open")
    def open_route() -> dict[str, Any]:
        return {"ok": True}

    return app


def as_user(user_id: str, **extra: str) -> dict[str, str]:
    return {"X-User": user_id, **extra}


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return TenantKit(invitations=InvitationSettings(secret_keys=[SECRET]), clock=clock)


@pytest.fixture
def sync_tk(kit: TenantKit, sqlite_engine: sa.Engine) -> TenantKitFastAPI:
    def get_session() -> Iterator[Session]:
        with Session(sqlite_engine, expire_on_commit=False) as session:
            yield session

    return TenantKitFastAPI(kit, session=get_session, current_user=principal_from_headers)


@pytest.fixture
def client(sync_tk: TenantKitFastAPI) -> Iterator[TestClient]:
    with TestClient(build_app(sync_tk)) as client:
        yield client


@pytest.fixture
def acme(kit: TenantKit, sqlite_engine: sa.Engine) -> None:
    """acme: alice OWNER, bob ADMIN, carol MEMBER; globex: gina OWNER."""
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, "acme", "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, "acme", "bob", Role.ADMIN, actor=HOST)
        kit.members.add(session, "acme", "carol", Role.MEMBER, actor=HOST)
        kit.members.add(session, "globex", "gina", Role.OWNER, actor=HOST)


def issue(client: TestClient, organization: str, owner: str, scopes: list[str]) -> str:
    response = client.post(
        f"/tk/organizations/{organization}/api-keys",
        json={"name": "test key", "scopes": scopes},
        headers=as_user(owner),
    )
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def count_keys(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(tenantkit.tables.api_keys)
        ).scalar_one()


@pytest.mark.usefixtures("acme")
class TestSyncSession:
    def test_router_commits_a_successful_change(self, client: TestClient, sqlite_engine: sa.Engine) -> None:
        """A change made through the router is committed: another connection sees it."""
        issue(client, "acme", "alice", [])
        assert count_keys(sqlite_engine) == 1

    def test_refused_change_writes_nothing(self, client: TestClient, sqlite_engine: sa.Engine) -> None:
        """A MEMBER's refused key issuance leaves no row behind."""
        response = client.post(
            "/tk/organizations/acme/api-keys", json={"name": "nope"}, headers=as_user("carol")
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
        assert count_keys(sqlite_engine) == 0

    def test_events_are_delivered_after_the_router_commits(self, client: TestClient, kit: TenantKit) -> None:
        """The router's commit delivers the change's events to subscribers."""
        recorder = EventRecorder()
        kit.subscribe(recorder)
        response = client.patch(
            "/tk/organizations/acme/members/carol", json={"role": "ADMIN"}, headers=as_user("alice")
        )
        assert response.status_code == 200
        assert response.json()["role"] == "ADMIN"
        assert [type(event).__name__ for event in recorder.events] == ["MemberRoleChanged"]

    def test_commit_false_leaves_the_commit_to_the_host(
        self, kit: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """With ``commit=False`` the host's session dependency decides: no commit of its own, no change."""
        committed: list[bool] = []

        def session_that_never_commits() -> Iterator[Session]:
            with Session(sqlite_engine) as session:
                yield session
                committed.append(False)

        tk = TenantKitFastAPI(
            kit, session=session_that_never_commits, current_user=principal_from_headers, commit=False
        )
        with TestClient(build_app(tk)) as client:
            response = client.post(
                "/tk/organizations/acme/api-keys", json={"name": "k"}, headers=as_user("alice")
            )
        assert response.status_code == 201
        assert committed == [False]
        assert count_keys(sqlite_engine) == 0

    def test_commit_false_with_a_committing_host_session(
        self, kit: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """With ``commit=False`` a session dependency that commits after the request keeps the change."""

        def session_that_commits() -> Iterator[Session]:
            with Session(sqlite_engine) as session, session.begin():
                yield session

        tk = TenantKitFastAPI(
            kit, session=session_that_commits, current_user=principal_from_headers, commit=False
        )
        with TestClient(build_app(tk)) as client:
            response = client.post(
                "/tk/organizations/acme/api-keys", json={"name": "k"}, headers=as_user("alice")
            )
        assert response.status_code == 201
        assert count_keys(sqlite_engine) == 1

    def test_current_user_may_return_a_bare_user_id(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A current-user dependency returning a plain string is taken as the user id."""

        def get_session() -> Iterator[Session]:
            with Session(sqlite_engine) as session:
                yield session

        def user_id(x_user: Annotated[str, Header()]) -> str:
            return x_user

        tk = TenantKitFastAPI(kit, session=get_session, current_user=user_id)
        with TestClient(build_app(tk)) as client:
            response = client.get("/orgs/acme/roles", headers=as_user("bob"))
        assert response.json() == {
            "organization_id": "acme",
            "user_id": "bob",
            "role": "ADMIN",
            "custom_role": None,
        }


class TestAsyncSession:
    @pytest.fixture
    async def async_client(
        self, kit: TenantKit, async_engine: AsyncEngine
    ) -> AsyncIterator[httpx2.AsyncClient]:
        maker = async_sessionmaker(async_engine, expire_on_commit=False)

        async def get_session() -> AsyncIterator[AsyncSession]:
            async with maker() as session:
                yield session

        async with maker() as session:
            await session.run_sync(kit.members.add, "acme", "alice", Role.OWNER, actor=HOST)
            await session.run_sync(kit.members.add, "acme", "carol", Role.MEMBER, actor=HOST)
            await session.commit()
        tk = TenantKitFastAPI(kit, session=get_session, current_user=principal_from_headers)
        transport = httpx2.ASGITransport(app=build_app(tk))
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client

    @pytest.mark.anyio
    async def test_router_and_api_key_with_an_async_session(self, async_client: httpx2.AsyncClient) -> None:
        """Issuing a key through the router and authenticating with it both work on an ``AsyncSession``."""
        response = await async_client.post(
            "/tk/organizations/acme/api-keys",
            json={"name": "ci", "scopes": ["reports:read"]},
            headers=as_user("alice"),
        )
        assert response.status_code == 201, response.text
        key = response.json()["key"]
        reports = await async_client.get("/reports", headers={"Authorization": f"Bearer {key}"})
        assert reports.status_code == 200
        assert reports.json() == {"organization_id": "acme", "name": "ci", "scopes": ["reports:read"]}
        listed = await async_client.get("/tk/organizations/acme/api-keys", headers=as_user("carol"))
        assert listed.status_code == 200
        (item,) = listed.json()["items"]
        # The API-key dependency committed its last-used write on the async session.
        assert item["last_used_at"] is not None
        assert key not in listed.text

    @pytest.mark.anyio
    async def test_refusals_with_an_async_session(self, async_client: httpx2.AsyncClient) -> None:
        """A refused change through an ``AsyncSession`` answers 403 and commits nothing."""
        response = await async_client.post(
            "/tk/organizations/acme/api-keys", json={"name": "x"}, headers=as_user("carol")
        )
        assert response.status_code == 403
        listed = await async_client.get("/tk/organizations/acme/api-keys", headers=as_user("alice"))
        assert listed.json()["items"] == []

    @pytest.mark.anyio
    async def test_permission_with_an_async_session(self, async_client: httpx2.AsyncClient) -> None:
        """The permission dependency reads roles through an ``AsyncSession``."""
        allowed = await async_client.get("/orgs/acme/roles", headers=as_user("alice"))
        assert allowed.json() == {
            "organization_id": "acme",
            "user_id": "alice",
            "role": "OWNER",
            "custom_role": None,
        }
        denied = await async_client.get("/orgs/acme/roles", headers=as_user("carol"))
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "permission_denied"


@pytest.mark.usefixtures("acme")
class TestApiKeyDependency:
    def test_bearer_token(self, client: TestClient) -> None:
        """``Authorization: Bearer <key>`` authenticates and the route receives the verification."""
        key = issue(client, "acme", "alice", ["reports:read", "reports:write"])
        response = client.get("/reports", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200
        assert response.json() == {
            "organization_id": "acme",
            "name": "test key",
            "scopes": ["reports:read", "reports:write"],
        }

    def test_bearer_scheme_is_case_insensitive(self, client: TestClient) -> None:
        """The scheme name ``bearer`` is matched regardless of case, as RFC 7235 says."""
        key = issue(client, "acme", "alice", [])
        assert client.get("/any-key", headers={"Authorization": f"bearer {key}"}).status_code == 200

    def test_x_api_key_header(self, client: TestClient) -> None:
        """The ``X-API-Key`` header authenticates too."""
        key = issue(client, "acme", "alice", ["reports:read"])
        response = client.get("/reports", headers={"X-API-Key": key})
        assert response.status_code == 200
        assert response.json()["organization_id"] == "acme"

    def test_missing_key_is_401_with_www_authenticate(self, client: TestClient) -> None:
        """No key at all: 401, a ``WWW-Authenticate`` challenge, and reason ``missing``."""
        response = client.get("/reports")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"] == {
            "code": "invalid_api_key",
            "message": "the API key is not valid (missing)",
            "reason": "missing",
        }

    @pytest.mark.parametrize(
        "headers",
        [
            {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer not-a-key"},
            {"X-API-Key": "tk_live_" + "A" * 50},
        ],
    )
    def test_malformed_credentials_are_401(self, client: TestClient, headers: dict[str, str]) -> None:
        """A non-Bearer scheme, an empty token or junk is refused as ``malformed`` with a challenge."""
        response = client.get("/reports", headers=headers)
        assert response.status_code == 401
        assert "WWW-Authenticate" in response.headers
        assert response.json()["error"]["reason"] == "malformed"

    def test_revoked_key_is_401(self, client: TestClient) -> None:
        """A revoked key is refused with reason ``revoked`` at once."""
        key = issue(client, "acme", "alice", ["reports:read"])
        key_id = client.get("/tk/organizations/acme/api-keys", headers=as_user("alice")).json()["items"][0][
            "id"
        ]
        revoked = client.post(f"/tk/organizations/acme/api-keys/{key_id}/revoke", headers=as_user("alice"))
        assert revoked.status_code == 200
        response = client.get("/reports", headers={"X-API-Key": key})
        assert response.status_code == 401
        assert response.json()["error"]["reason"] == "revoked"

    def test_missing_scope_is_403(self, client: TestClient) -> None:
        """A valid key without the route's scope gets 403 ``missing_scope`` naming it, and no challenge."""
        key = issue(client, "acme", "alice", ["reports:write"])
        response = client.get("/reports", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 403
        assert "WWW-Authenticate" not in response.headers
        assert response.json()["error"]["code"] == "missing_scope"
        assert response.json()["error"]["missing"] == ["reports:read"]

    def test_organization_restriction(self, client: TestClient) -> None:
        """``organization_id=`` accepts that organization's keys and answers another's as unknown."""
        acme_key = issue(client, "acme", "alice", [])
        globex_key = issue(client, "globex", "gina", [])
        assert client.get("/acme-only", headers={"X-API-Key": acme_key}).json() == {"organization_id": "acme"}
        refused = client.get("/acme-only", headers={"X-API-Key": globex_key})
        assert refused.status_code == 401
        assert refused.json()["error"]["reason"] == "unknown"
        assert client.get("/any-key", headers={"X-API-Key": globex_key}).json() == {
            "organization_id": "globex"
        }

    def test_authorization_header_wins_over_x_api_key(self, client: TestClient) -> None:
        """With both headers, ``Authorization`` decides: a good X-API-Key does not rescue a bad Bearer."""
        key = issue(client, "acme", "alice", [])
        response = client.get("/any-key", headers={"Authorization": "Bearer junk", "X-API-Key": key})
        assert response.status_code == 401


@pytest.mark.usefixtures("acme")
class TestCachedApiKeys:
    """With the verification cache on, a hit is answered on the event loop, without the database."""

    @pytest.fixture
    def cached_client(self, clock: FrozenClock, sqlite_engine: sa.Engine) -> Iterator[TestClient]:
        kit = TenantKit(
            api_keys=ApiKeySettings(cache_ttl=timedelta(seconds=30)),
            invitations=InvitationSettings(secret_keys=[SECRET]),
            clock=clock,
        )

        def get_session() -> Iterator[Session]:
            with Session(sqlite_engine, expire_on_commit=False) as session:
                yield session

        tk = TenantKitFastAPI(kit, session=get_session, current_user=principal_from_headers)
        with TestClient(build_app(tk)) as client:
            yield client

    def test_hit_runs_no_statement_and_no_worker_thread(
        self, cached_client: TestClient, sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A repeated key runs no SQL and no thread-pool call; scopes and organization are still enforced."""
        key = issue(cached_client, "acme", "alice", ["reports:read"])
        bearer = {"Authorization": f"Bearer {key}"}
        assert cached_client.get("/reports", headers=bearer).status_code == 200
        statements: list[str] = []
        service_calls: list[str] = []
        original_run = TenantKitFastAPI.run

        async def counting_run(session: Any, function: Any, *args: Any, **kwargs: Any) -> Any:
            service_calls.append(function.__name__)
            return await original_run(session, function, *args, **kwargs)

        monkeypatch.setattr(TenantKitFastAPI, "run", staticmethod(counting_run))

        def record(*args: Any) -> None:
            statements.append(args[2])

        sa.event.listen(sqlite_engine, "before_cursor_execute", record)
        try:
            assert cached_client.get("/reports", headers=bearer).status_code == 200
            assert cached_client.get("/acme-only", headers=bearer).status_code == 200
            assert cached_client.get("/any-key", headers={"X-API-Key": key + "x"}).status_code == 401
        finally:
            sa.event.remove(sqlite_engine, "before_cursor_execute", record)
        assert statements == []
        assert service_calls == []

    def test_hit_still_checks_expiry_and_last_used(
        self, cached_client: TestClient, clock: FrozenClock, sqlite_engine: sa.Engine
    ) -> None:
        """A cached key past its expiry is refused, and a due ``last_used_at`` write reaches the database."""
        response = cached_client.post(
            "/tk/organizations/acme/api-keys",
            json={"name": "short", "scopes": ["reports:read"], "expires_in_seconds": 120},
            headers=as_user("alice"),
        )
        key = response.json()["key"]
        bearer = {"Authorization": f"Bearer {key}"}
        assert cached_client.get("/reports", headers=bearer).status_code == 200
        clock.advance(seconds=61)
        assert cached_client.get("/reports", headers=bearer).status_code == 200
        with sqlite_engine.connect() as connection:
            last_used = connection.execute(
                sa.select(tenantkit.tables.api_keys.c.last_used_at).where(
                    tenantkit.tables.api_keys.c.name == "short"
                )
            ).scalar_one()
        assert last_used == clock()
        clock.advance(seconds=60)
        refused = cached_client.get("/reports", headers=bearer)
        assert refused.status_code == 401
        assert refused.json()["error"]["reason"] == "expired"


@pytest.mark.usefixtures("acme")
class TestPermissionDependency:
    @pytest.mark.parametrize(("user", "role"), [("alice", "OWNER"), ("bob", "ADMIN")])
    def test_allowed_roles_get_through(self, client: TestClient, user: str, role: str) -> None:
        """Roles holding the action reach the route, which receives organization, user and role."""
        response = client.get("/orgs/acme/roles", headers=as_user(user))
        assert response.status_code == 200
        assert response.json() == {
            "organization_id": "acme",
            "user_id": user,
            "role": role,
            "custom_role": None,
        }

    @pytest.mark.parametrize("user", ["carol", "gina", "nobody"])
    def test_others_get_403(self, client: TestClient, user: str) -> None:
        """A MEMBER, a member of another organization and a stranger all get 403 naming the action."""
        response = client.get("/orgs/acme/roles", headers=as_user(user))
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "permission_denied"
        assert error["action"] == "members:change_role"

    def test_organization_from_the_hosts_own_dependency(self, client: TestClient) -> None:
        """A custom organization dependency (here a header) chooses the organization checked."""
        allowed = client.get("/current/members", headers=as_user("gina", **{"X-Organization": "globex"}))
        assert allowed.json() == {
            "organization_id": "globex",
            "user_id": "gina",
            "role": "OWNER",
            "custom_role": None,
        }
        denied = client.get("/current/members", headers=as_user("gina", **{"X-Organization": "acme"}))
        assert denied.status_code == 403

    def test_overlong_organization_id_is_422(self, client: TestClient) -> None:
        """An organization id past the identifier limit is bad input (422), never a server error."""
        response = client.get(f"/orgs/{'x' * 300}/roles", headers=as_user("alice"))
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_input"

    def test_permission_needs_a_current_user_dependency(self, kit: TenantKit) -> None:
        """Declaring a permission check without ``current_user=`` fails at once, not at request time."""
        tk = TenantKitFastAPI(kit, session=lambda: None)
        with pytest.raises(TypeError, match="current_user"):
            tk.permission(Action.READ_MEMBERS)
        with pytest.raises(TypeError, match="current_user"):
            tk.router()


class TestOpenAPI:
    @pytest.fixture
    def document(self, sync_tk: TenantKitFastAPI) -> dict[str, Any]:
        with TestClient(build_app(sync_tk)) as client:
            response = client.get("/openapi.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document

    @staticmethod
    def error_statuses(operation: dict[str, Any]) -> set[int]:
        statuses = set()
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert response["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorResponse"
                }, status
                statuses.add(int(status))
        return statuses

    def operations(self, document: dict[str, Any], prefix: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (path, method, operation)
            for path, item in document["paths"].items()
            if path.startswith(prefix)
            for method, operation in item.items()
        ]

    def test_every_management_route_documents_its_errors(
        self, document: dict[str, Any], sync_tk: TenantKitFastAPI
    ) -> None:
        """Each management operation lists 403, 404, 409, 422 and 503, each with the ErrorResponse schema."""
        operations = self.operations(document, "/tk/")
        assert len(operations) == len(sync_tk.router().routes) >= 15
        for path, method, operation in operations:
            assert {403, 404, 409, 422, 503} <= self.error_statuses(operation), (method, path)
            success = [status for status in operation["responses"] if int(status) < 400]
            assert len(success) == 1, (method, path)

    def test_invitation_routes_also_document_410(self, document: dict[str, Any]) -> None:
        """Routes that read invitations list 410 for expired or used-up invitations."""
        for path in ("/tk/invitations/accept", "/tk/invitations/preview"):
            assert 410 in self.error_statuses(document["paths"][path]["post"])

    def test_api_key_routes_document_401_and_security(self, document: dict[str, Any]) -> None:
        """Host routes using the API-key dependency list 401 (403 when scopes are needed) and both schemes."""
        reports = document["paths"]["/reports"]["get"]
        assert {401, 403, 503} <= self.error_statuses(reports)
        assert {"HTTPBearer": []} in reports["security"]
        assert {"APIKeyHeader": []} in reports["security"]
        any_key = document["paths"]["/any-key"]["get"]
        assert 401 in self.error_statuses(any_key)
        assert 403 not in self.error_statuses(any_key)
        schemes = document["components"]["securitySchemes"]
        assert schemes["HTTPBearer"] == {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["HTTPBearer"]["description"],
        }
        assert schemes["APIKeyHeader"]["in"] == "header"
        assert schemes["APIKeyHeader"]["name"] == "X-API-Key"

    def test_permission_routes_document_403(self, document: dict[str, Any]) -> None:
        """Host routes using the permission dependency list 403 and 422."""
        for path in ("/orgs/{organization_id}/roles", "/current/members"):
            assert {403, 422} <= self.error_statuses(document["paths"][path]["get"]), path

    def test_unprotected_routes_are_left_alone(self, document: dict[str, Any]) -> None:
        """A route without tenantkit dependencies gains no error responses."""
        assert set(document["paths"]["/open"]["get"]["responses"]) == {"200"}

    def test_validation_errors_are_documented_as_error_responses(self, document: dict[str, Any]) -> None:
        """No operation promises FastAPI's default validation body: 422 is tenantkit's ErrorResponse."""
        text = json.dumps(document)
        assert "HTTPValidationError" not in text
        error = document["components"]["schemas"]["ErrorResponse"]
        assert error["required"] == ["error"]
        detail = document["components"]["schemas"]["ErrorDetail"]
        assert set(detail["required"]) == {"code", "message"}

    def test_success_responses_name_their_models(self, document: dict[str, Any]) -> None:
        """Issuing a key answers 201 with IssuedApiKeyResponse; listing members answers a Page of Member."""
        issue_key = document["paths"]["/tk/organizations/{organization_id}/api-keys"]["post"]["responses"][
            "201"
        ]
        assert issue_key["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/IssuedApiKeyResponse"
        }
        members = document["paths"]["/tk/organizations/{organization_id}/members"]["get"]["responses"]["200"]
        assert members["content"]["application/json"]["schema"]["$ref"].startswith(
            "#/components/schemas/Page"
        )


@pytest.mark.usefixtures("acme")
class TestErrorBodies:
    def test_invalid_body_is_422_invalid_input(self, client: TestClient) -> None:
        """A body failing validation answers 422 with code ``invalid_input`` and the field's name."""
        response = client.post("/tk/organizations/acme/api-keys", json={"name": ""}, headers=as_user("alice"))
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert error["field"] == "name"

    def test_invalid_query_is_422_invalid_input(self, client: TestClient) -> None:
        """An out-of-range query parameter answers 422 ``invalid_input`` naming it."""
        response = client.get("/tk/organizations/acme/members?limit=0", headers=as_user("alice"))
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "limit"

    def test_unparsable_json_is_422(self, client: TestClient) -> None:
        """A body that is not JSON answers 422 ``invalid_input``, never 500."""
        response = client.post(
            "/tk/organizations/acme/api-keys",
            content=b"{not json",
            headers={**as_user("alice"), "Content-Type": "application/json"},
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_input"

    def test_unknown_fields_are_refused(self, client: TestClient) -> None:
        """Request bodies forbid unknown fields, so a typo is reported instead of ignored."""
        response = client.patch(
            "/tk/organizations/acme/members/carol",
            json={"role": "ADMIN", "rol": "OWNER"},
            headers=as_user("alice"),
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_input"

    def test_service_errors_in_host_routes_become_json(
        self, sync_tk: TenantKitFastAPI, sqlite_engine: sa.Engine
    ) -> None:
        """A TenantKitError raised in the host's own route is answered with its code and mapped status."""
        app = build_app(sync_tk)

        @app.get("/members/{user_id}")
        def member(user_id: str) -> dict[str, Any]:
            with Session(sqlite_engine) as session:
                return sync_tk.kit.members.get(session, "acme", user_id, actor=HOST).model_dump(mode="json")

        with TestClient(app) as client:
            assert client.get("/members/alice").json()["role"] == "OWNER"
            response = client.get("/members/zed")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "member_not_found"
