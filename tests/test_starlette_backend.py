"""The Starlette authentication backend: keys verified before routing, as the adapters verify them.

``ApiKeyBackend`` under Starlette's ``AuthenticationMiddleware``: a valid key becomes ``request.user`` and
``request.auth.scopes`` (``requires`` then decides), a refused key is answered 401 with tenantkit's body
before any route runs, a request without a key goes on unauthenticated. A hit opens no connection, a miss
exactly one, on a sync engine (SQLite, PostgreSQL, MariaDB) and an async one (aiosqlite, psycopg).
(No ``from __future__ import annotations`` here: FastAPI reads one test app's annotations at runtime.)
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Annotated, Any

import httpx2
import pytest
import sqlalchemy as sa
import starlette.concurrency
from fastapi import Depends, FastAPI
from fastapi import Request as FastAPIRequest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.authentication import AuthenticationError, requires
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

import tenantkit
import tenantkit._asgi
from tenantkit import HOST, ApiKeySettings, ApiKeyVerification, IssuedApiKey, TenantKit
from tenantkit._http import WWW_AUTHENTICATE
from tenantkit.fastapi import TenantKitFastAPI
from tenantkit.starlette import ApiKeyAuthenticationError, ApiKeyBackend, ApiKeyUser
from tenantkit.testing import FrozenClock
from tests.databases import ThrowawayDatabase

ORG = "acme"
CACHED = ApiKeySettings(cache_ttl=timedelta(seconds=30))


def issue(
    kit: TenantKit,
    engine: sa.Engine,
    *,
    organization: str = ORG,
    scopes: tuple[str, ...] = ("reports:read",),
    expires: timedelta | None = None,
) -> IssuedApiKey:
    """Issue (and commit) a key named ``CI``."""
    with tenantkit.transaction(engine) as session:
        return kit.api_keys.issue(
            session, organization, "CI", actor=HOST, scopes=list(scopes), expires=expires
        )


def unknown_key(kit: TenantKit, engine: sa.Engine) -> str:
    """A well-formed key that no row holds: issued in a transaction that is rolled back."""
    with Session(engine) as session:
        key = kit.api_keys.issue(session, ORG, "gone", actor=HOST).reveal()
        session.rollback()
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def build_app(backend: ApiKeyBackend, **options: Any) -> Starlette:
    """A Starlette app behind the backend: an open route, and routes that require scopes."""

    async def whoami(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse(
            {
                "authenticated": user.is_authenticated,
                "display_name": user.display_name,
                "identity": user.identity,
                "organization_id": user.organization_id if isinstance(user, ApiKeyUser) else None,
                "scopes": list(request.auth.scopes),
            }
        )

    @requires("reports:read")
    async def reports(request: Request) -> JSONResponse:
        return JSONResponse({"organization_id": request.user.organization_id})

    @requires("authenticated")
    def anything(request: Request) -> JSONResponse:  # a sync endpoint: requires() serves both kinds
        return JSONResponse({"key": request.user.display_name})

    @requires("reports:write")
    async def write(request: Request) -> JSONResponse:
        return JSONResponse({"written": True})

    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"organization_id": websocket.user.organization_id})
        await websocket.close()

    routes = [
        Route("/whoami", whoami),
        Route("/reports", reports),
        Route("/anything", anything),
        Route("/write", write),
        WebSocketRoute("/feed", feed),
    ]
    return Starlette(routes=routes, middleware=[backend.middleware()], **options)


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    """A kit with the verification cache on and a frozen clock."""
    return TenantKit(api_keys=CACHED, clock=clock)


@pytest.fixture
def client(kit: TenantKit, engine: sa.Engine) -> Iterator[TestClient]:
    """A test client of the app, the backend on ``engine`` (each dialect)."""
    with TestClient(build_app(ApiKeyBackend(kit, database=engine))) as test_client:
        yield test_client


class Checkouts:
    """Counts the connections an engine lends (pool checkouts) while it is listened to."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.count = 0

    def __call__(self, *args: object) -> None:
        self.count += 1

    def __enter__(self) -> "Checkouts":
        sa.event.listen(self.engine, "checkout", self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sa.event.remove(self.engine, "checkout", self)


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the backend sends to the thread pool."""
    hops: list[str] = []
    original = starlette.concurrency.run_in_threadpool  # what tenantkit._asgi imported

    async def counting(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(function.__name__)
        return await original(function, *args, **kwargs)

    monkeypatch.setattr(tenantkit._asgi, "run_in_threadpool", counting)
    return hops


class TestValidKey:
    def test_the_user_is_the_key(self, client: TestClient, kit: TenantKit, engine: sa.Engine) -> None:
        """``request.user`` names the key and its organization; the scopes are "authenticated" and its own."""
        issued = issue(kit, engine, scopes=("reports:read", "usage:read"))
        for headers in (bearer(issued.reveal()), {"X-API-Key": issued.reveal()}):
            response = client.get("/whoami", headers=headers)
            assert response.status_code == 200
            assert response.json() == {
                "authenticated": True,
                "display_name": "CI",
                "identity": issued.id,
                "organization_id": ORG,
                "scopes": ["authenticated", "reports:read", "usage:read"],
            }

    def test_requires_lets_a_key_with_the_scope_through(
        self, client: TestClient, kit: TenantKit, engine: sa.Engine
    ) -> None:
        """A scope with a colon is a Starlette scope like any other: ``requires("reports:read")`` passes."""
        key = issue(kit, engine).reveal()
        assert client.get("/reports", headers=bearer(key)).json() == {"organization_id": ORG}
        assert client.get("/anything", headers=bearer(key)).json() == {"key": "CI"}

    def test_requires_refuses_a_missing_scope_with_403(
        self, client: TestClient, kit: TenantKit, engine: sa.Engine
    ) -> None:
        """A valid key without the scope a route requires is refused 403, by Starlette's ``requires``."""
        key = issue(kit, engine, scopes=("reports:read",)).reveal()
        assert client.get("/write", headers=bearer(key)).status_code == 403
        assert (
            client.get("/reports", headers=bearer(issue(kit, engine, scopes=()).reveal())).status_code == 403
        )

    def test_organization_restriction(self, kit: TenantKit, engine: sa.Engine) -> None:
        """With ``organization_id``, another organization's valid key is refused as ``unknown``."""
        ours, theirs = issue(kit, engine).reveal(), issue(kit, engine, organization="globex").reveal()
        with TestClient(build_app(ApiKeyBackend(kit, database=engine, organization_id=ORG))) as client:
            assert client.get("/reports", headers=bearer(ours)).status_code == 200
            refused = client.get("/reports", headers=bearer(theirs))
        assert refused.status_code == 401
        assert refused.json()["error"]["reason"] == "unknown"

    def test_the_backend_takes_the_service_itself(self, kit: TenantKit, engine: sa.Engine) -> None:
        """``ApiKeyBackend(kit.api_keys, ...)`` works as ``ApiKeyBackend(kit, ...)`` does."""
        key = issue(kit, engine).reveal()
        with TestClient(build_app(ApiKeyBackend(kit.api_keys, database=engine))) as client:
            assert client.get("/reports", headers=bearer(key)).status_code == 200

    def test_a_websocket_gets_the_user_and_a_refused_key_is_closed(
        self, client: TestClient, kit: TenantKit, engine: sa.Engine
    ) -> None:
        """A WebSocket handshake is authenticated too; a refused key closes it before it is accepted."""
        key = issue(kit, engine).reveal()
        with client.websocket_connect("/feed", headers=bearer(key)) as websocket:
            assert websocket.receive_json() == {"organization_id": ORG}
        with pytest.raises(WebSocketDisconnect), client.websocket_connect("/feed", headers=bearer(key + "x")):
            pass  # pragma: no cover  the handshake itself is refused


def refusal_cases(kit: TenantKit, engine: sa.Engine, clock: FrozenClock) -> dict[str, dict[str, str]]:
    """Headers refused for each reason, by name; the revoked and expired keys were valid a moment ago."""
    revoked = issue(kit, engine)
    expiring = issue(kit, engine, expires=timedelta(minutes=1))
    valid = issue(kit, engine).reveal()
    with tenantkit.transaction(engine) as session:
        kit.api_keys.revoke(session, ORG, revoked.id, actor=HOST)
    clock.advance(seconds=61)
    return {
        "malformed": bearer("tk_live_not-a-key"),
        "not bearer": {"Authorization": f"Basic {valid}"},
        "unknown": bearer(unknown_key(kit, engine)),
        "revoked": bearer(revoked.reveal()),
        "expired": bearer(expiring.reveal()),
        "ambiguous": {"Authorization": f"Bearer {valid}", "X-API-Key": unknown_key(kit, engine)},
    }


EXPECTED = {
    "malformed": ("invalid_api_key", "malformed"),
    "not bearer": ("invalid_api_key", "malformed"),
    "unknown": ("invalid_api_key", "unknown"),
    "revoked": ("invalid_api_key", "revoked"),
    "expired": ("invalid_api_key", "expired"),
    "ambiguous": ("ambiguous_api_key", "ambiguous"),
}


class TestRefusals:
    def test_each_refusal_is_a_401_json_body_with_www_authenticate(
        self, client: TestClient, kit: TenantKit, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Malformed, unknown, revoked (at once, cache on), expired and ambiguous keys: 401, code, reason."""
        for name, headers in refusal_cases(kit, engine, clock).items():
            response = client.get("/whoami", headers=headers)  # an open route: refused before routing
            assert response.status_code == 401, name
            assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE, name
            error = response.json()["error"]
            assert (error["code"], error["reason"]) == EXPECTED[name], name
            assert error["message"]

    def test_the_answers_are_the_fastapi_dependencys(
        self, client: TestClient, kit: TenantKit, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Every refusal (and the valid key) gets the status, body and headers ``tk.api_key()`` gives."""
        tk = TenantKitFastAPI(kit, session=lambda: None, database=engine)
        app = FastAPI()
        tk.install(app)

        @app.get("/whoami")
        def whoami(key: Annotated[ApiKeyVerification, Depends(tk.api_key())]) -> dict[str, str | None]:
            return {"organization_id": key.organization_id}

        cases = refusal_cases(kit, engine, clock)
        with TestClient(app) as dependency_client:
            for name, headers in cases.items():
                ours, theirs = (
                    client.get("/whoami", headers=headers),
                    dependency_client.get("/whoami", headers=headers),
                )
                assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()), name
                assert ours.headers["WWW-Authenticate"] == theirs.headers["WWW-Authenticate"], name


class TestWithoutKey:
    def test_a_request_without_a_key_goes_on_unauthenticated(
        self, kit: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """No key is no refusal: an open route runs, with Starlette's unauthenticated user and no scopes."""
        with TestClient(build_app(ApiKeyBackend(kit, database=sqlite_engine))) as client:
            response = client.get("/whoami")
        assert response.status_code == 200
        assert response.json() == {
            "authenticated": False,
            "display_name": "",
            "identity": "",
            "organization_id": None,
            "scopes": [],
        }

    def test_requires_authenticated_answers_403(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A route that requires a key answers a request without one 403: Starlette's ``requires`` decides."""
        with TestClient(build_app(ApiKeyBackend(kit, database=sqlite_engine))) as client:
            assert client.get("/anything").status_code == 403
            assert client.get("/reports").status_code == 403

    def test_require_key_refuses_a_request_without_one_with_401(
        self, kit: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """With ``require_key=True`` every route answers a missing key as the dependencies do: 401 missing."""
        with TestClient(build_app(ApiKeyBackend(kit, database=sqlite_engine, require_key=True))) as client:
            response = client.get("/whoami")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert response.json()["error"]["reason"] == "missing"


class TestConnections:
    def test_a_hit_opens_no_connection_and_a_miss_exactly_one(
        self, client: TestClient, kit: TenantKit, engine: sa.Engine, thread_hops: list[str]
    ) -> None:
        """The first request looks the key up on one connection; the cached ones open none, nor a thread."""
        key = issue(kit, engine).reveal()
        with Checkouts(engine) as checkouts:
            assert client.get("/reports", headers=bearer(key)).status_code == 200
        assert (checkouts.count, thread_hops) == (1, ["complete_on_engine"])
        with Checkouts(engine) as checkouts:
            for _ in range(3):
                assert client.get("/reports", headers=bearer(key)).status_code == 200
            assert client.get("/reports", headers=bearer("tk_live_junk")).status_code == 401
        assert (checkouts.count, thread_hops) == (0, ["complete_on_engine"])

    def test_without_the_cache_each_request_opens_exactly_one(
        self, clock: FrozenClock, engine: sa.Engine
    ) -> None:
        """Uncached, each verification is one connection of the backend's engine, and nothing else."""
        kit = TenantKit(clock=clock)
        key = issue(kit, engine).reveal()
        with (
            TestClient(build_app(ApiKeyBackend(kit, database=engine))) as client,
            Checkouts(engine) as checkouts,
        ):
            for expected in (1, 2, 3):
                assert client.get("/reports", headers=bearer(key)).status_code == 200
                assert checkouts.count == expected

    def test_a_flood_of_one_unknown_key_costs_one_lookup(self, clock: FrozenClock, engine: sa.Engine) -> None:
        """With the negative cache, a repeated well-formed unknown key is refused from memory after once."""
        kit = TenantKit(api_keys=ApiKeySettings(negative_cache_ttl=timedelta(seconds=10)), clock=clock)
        junk = unknown_key(kit, engine)
        with (
            TestClient(build_app(ApiKeyBackend(kit, database=engine))) as client,
            Checkouts(engine) as checkouts,
        ):
            for _ in range(5):
                assert client.get("/reports", headers=bearer(junk)).status_code == 401
        assert checkouts.count == 1


class TestAsyncEngine:
    @pytest.fixture
    async def key(self, kit: TenantKit, async_engine: AsyncEngine) -> str:
        async with async_sessionmaker(async_engine)() as session:
            issued = await session.run_sync(
                lambda sync: kit.api_keys.issue(sync, ORG, "CI", actor=HOST, scopes=["reports:read"])
            )
            await session.commit()
        return issued.reveal()

    @pytest.fixture
    async def async_client(
        self, kit: TenantKit, async_engine: AsyncEngine
    ) -> AsyncIterator[httpx2.AsyncClient]:
        transport = httpx2.ASGITransport(app=build_app(ApiKeyBackend(kit, database=async_engine)))
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as async_client:
            yield async_client

    @pytest.mark.anyio
    async def test_a_miss_opens_one_connection_without_the_thread_pool(
        self, async_client: httpx2.AsyncClient, key: str, async_engine: AsyncEngine, thread_hops: list[str]
    ) -> None:
        """On an async engine a miss is one connection through ``run_sync``; a hit none; no thread at all."""
        with Checkouts(async_engine.sync_engine) as checkouts:
            response = await async_client.get("/whoami", headers=bearer(key))
            assert response.json()["scopes"] == ["authenticated", "reports:read"]
            assert checkouts.count == 1
            assert (await async_client.get("/reports", headers=bearer(key))).status_code == 200
            assert checkouts.count == 1
        assert thread_hops == []

    @pytest.mark.anyio
    async def test_refusals_on_an_async_engine(
        self, async_client: httpx2.AsyncClient, key: str, kit: TenantKit, async_engine: AsyncEngine
    ) -> None:
        """An unknown or revoked key on an async engine is the same 401 body as on a sync one."""
        assert (await async_client.get("/reports", headers=bearer(key))).status_code == 200
        verified = kit.api_keys.verify_cached(key)
        assert verified is not None
        assert verified.key_id is not None
        key_id = verified.key_id
        async with async_sessionmaker(async_engine)() as session:
            await session.run_sync(lambda sync: kit.api_keys.revoke(sync, ORG, key_id, actor=HOST))
            await session.commit()
        refused = await async_client.get("/reports", headers=bearer(key))
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
        assert refused.json()["error"]["reason"] == "revoked"


def last_used_at(engine: sa.Engine) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.select(tenantkit.tables.api_keys.c.last_used_at)).scalar_one()


class TestDeferredLastUsed:
    @pytest.fixture
    def deferred(self, clock: FrozenClock) -> TenantKit:
        return TenantKit(
            api_keys=ApiKeySettings(cache_ttl=timedelta(seconds=30), last_used_writes="deferred"), clock=clock
        )

    def test_the_lifespan_writes_the_recorded_use_at_shutdown(
        self, deferred: TenantKit, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """A verification records its use in memory; the lifespan's end writes it, so none is lost."""
        key = issue(deferred, engine).reveal()
        backend = ApiKeyBackend(deferred, database=engine)
        app = build_app(backend, lifespan=backend.lifespan(flush_every=timedelta(hours=1)))
        with TestClient(app) as client:
            assert client.get("/reports", headers=bearer(key)).status_code == 200
            assert deferred.api_keys.pending_last_used == 1
            assert last_used_at(engine) is None
        assert deferred.api_keys.pending_last_used == 0
        assert last_used_at(engine) is not None

    def test_the_lifespan_writes_every_flush_every(
        self, deferred: TenantKit, sqlite_engine: sa.Engine
    ) -> None:
        """While the app serves, the recorded uses are written within ``flush_every``."""
        key = issue(deferred, sqlite_engine).reveal()
        backend = ApiKeyBackend(deferred, database=sqlite_engine)
        app = build_app(backend, lifespan=backend.lifespan(flush_every=timedelta(milliseconds=20)))
        with TestClient(app) as client:
            assert client.get("/reports", headers=bearer(key)).status_code == 200
            # The effect, not the buffer: the buffer empties when a flush takes it, before its commit.
            deadline = time.monotonic() + 10
            while last_used_at(sqlite_engine) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert last_used_at(sqlite_engine) is not None
            assert deferred.api_keys.pending_last_used == 0

    def test_flush_last_used_writes_now(self, deferred: TenantKit, sqlite_engine: sa.Engine) -> None:
        """``await backend.flush_last_used()`` writes what is pending and says how many keys it wrote."""
        key = issue(deferred, sqlite_engine).reveal()
        backend = ApiKeyBackend(deferred, database=sqlite_engine)
        with TestClient(build_app(backend)) as client:
            assert client.get("/reports", headers=bearer(key)).status_code == 200
        assert asyncio.run(backend.flush_last_used()) == 1
        assert asyncio.run(backend.flush_last_used()) == 0
        assert last_used_at(sqlite_engine) is not None

    @pytest.mark.anyio
    async def test_writing_last_used_in_a_lifespan_of_ones_own(
        self, deferred: TenantKit, async_engine: AsyncEngine
    ) -> None:
        """``async with backend.writing_last_used()`` flushes at its end, on an async engine too."""
        async with async_sessionmaker(async_engine)() as session:
            issued = await session.run_sync(lambda sync: deferred.api_keys.issue(sync, ORG, "CI", actor=HOST))
            await session.commit()
        backend = ApiKeyBackend(deferred, database=async_engine)
        async with backend.writing_last_used(flush_every=timedelta(hours=1)):
            credentials = await backend.authenticate(HTTPConnection(scope_with(bearer(issued.reveal()))))
            assert credentials is not None
            assert deferred.api_keys.pending_last_used == 1
        assert deferred.api_keys.pending_last_used == 0

    def test_flush_every_must_be_positive(self, deferred: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A zero or negative ``flush_every`` is refused when the lifespan is made."""
        backend = ApiKeyBackend(deferred, database=sqlite_engine)
        with pytest.raises(ValueError, match="flush_every"):
            backend.lifespan(flush_every=timedelta(0))
        with pytest.raises(ValueError, match="flush_every"):
            backend.writing_last_used(flush_every=timedelta(seconds=-1))

    def test_inline_writes_leave_nothing_to_flush(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """With inline writes a miss writes ``last_used_at`` itself (and commits); a flush writes nothing."""
        key = issue(kit, sqlite_engine).reveal()
        backend = ApiKeyBackend(kit, database=sqlite_engine)
        with TestClient(build_app(backend, lifespan=backend.lifespan())) as client:
            assert client.get("/reports", headers=bearer(key)).status_code == 200
            assert last_used_at(sqlite_engine) is not None
        assert asyncio.run(backend.flush_last_used()) == 0


def scope_with(headers: dict[str, str]) -> dict[str, Any]:
    """An ASGI HTTP scope carrying ``headers``."""
    return {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }


class TestFastAPI:
    def test_a_fastapi_app_with_the_middleware(self, kit: TenantKit, engine: sa.Engine) -> None:
        """FastAPI takes the same middleware: ``requires`` on a path operation, 401 bodies, 403 scopes."""
        backend = ApiKeyBackend(kit, database=engine)
        app = FastAPI(middleware=[backend.middleware()])

        @app.get("/reports")
        @requires("reports:read")
        async def reports(request: FastAPIRequest) -> dict[str, Any]:
            user = request.user
            assert isinstance(user, ApiKeyUser)
            return {"organization_id": user.organization_id, "scopes": list(user.verification.scopes)}

        @app.get("/write")
        @requires("reports:write")
        def write(request: FastAPIRequest) -> dict[str, bool]:
            return {"written": True}

        key = issue(kit, engine).reveal()
        with TestClient(app) as client:
            assert client.get("/reports", headers=bearer(key)).json() == {
                "organization_id": ORG,
                "scopes": ["reports:read"],
            }
            assert client.get("/write", headers=bearer(key)).status_code == 403
            refused = client.get("/reports", headers={"X-API-Key": key + "x"})
            assert client.get("/reports").status_code == 403
        assert refused.status_code == 401
        assert refused.json()["error"]["reason"] == "malformed"
        assert refused.headers["WWW-Authenticate"] == WWW_AUTHENTICATE

    def test_the_fastapi_lifespan_shares_the_deferred_writes(
        self, clock: FrozenClock, engine: sa.Engine
    ) -> None:
        """``tk.lifespan()`` writes deferred uses at shutdown through the same helper as the backend."""
        kit = TenantKit(api_keys=ApiKeySettings(last_used_writes="deferred"), clock=clock)
        tk = TenantKitFastAPI(kit, session=lambda: None, database=engine)
        app = FastAPI(lifespan=tk.lifespan(flush_every=timedelta(hours=1)))

        @app.get("/reports")
        def reports(
            key: Annotated[ApiKeyVerification, Depends(tk.api_key("reports:read"))],
        ) -> dict[str, bool]:
            return {"valid": key.valid}

        key = issue(kit, engine).reveal()
        with TestClient(app) as client:
            assert client.get("/reports", headers=bearer(key)).status_code == 200
            assert (kit.api_keys.pending_last_used, last_used_at(engine)) == (1, None)
        assert kit.api_keys.pending_last_used == 0
        assert last_used_at(engine) is not None


class TestBoundaries:
    def test_the_key_is_never_logged_or_shown(
        self, client: TestClient, kit: TenantKit, engine: sa.Engine, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Neither the logs, nor the user's repr, nor a refusal's body or message carry the key."""
        valid = issue(kit, engine).reveal()
        junk = unknown_key(kit, engine)
        backend = ApiKeyBackend(kit, database=engine)
        caplog.set_level(logging.DEBUG)
        bodies = [client.get("/whoami", headers=bearer(key)).text for key in (valid, junk, junk[:-1])]
        credentials = asyncio.run(backend.authenticate(HTTPConnection(scope_with(bearer(valid)))))
        assert credentials is not None
        with pytest.raises(ApiKeyAuthenticationError) as refused:
            asyncio.run(backend.authenticate(HTTPConnection(scope_with(bearer(junk)))))
        shown = [caplog.text, *bodies, repr(credentials[1]), str(refused.value), repr(refused.value)]
        for key in (valid, junk):
            secret = key.rpartition("_")[2]
            assert not any(secret[:16] in text for text in shown)

    def test_database_must_be_an_engine(self, kit: TenantKit, sqlite_engine: sa.Engine) -> None:
        """A URL, a connection or a session is refused: the backend opens its own connections."""
        with sqlite_engine.connect() as connection, Session(sqlite_engine) as session:
            for wrong in ("sqlite://", connection, session, None):
                with pytest.raises(TypeError, match="Engine or AsyncEngine"):
                    ApiKeyBackend(kit, database=wrong)  # type: ignore[arg-type]

    def test_an_api_key_user_is_a_valid_key(self) -> None:
        """An invalid verification cannot become a user."""
        with pytest.raises(ValueError, match="valid key"):
            ApiKeyUser(ApiKeyVerification(valid=False, reason="unknown"))

    def test_another_backends_error_is_an_unknown_key(self) -> None:
        """``on_error`` given a plain Starlette ``AuthenticationError`` answers the 401 of an unknown key."""
        response = ApiKeyBackend.on_error(HTTPConnection(scope_with({})), AuthenticationError("nope"))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == WWW_AUTHENTICATE
        assert b'"reason":"unknown"' in response.body

    def test_a_database_error_while_verifying_is_answered_by_its_status(
        self, kit: TenantKit, sqlite_engine: sa.Engine, fresh_database: ThrowawayDatabase
    ) -> None:
        """A database without tenantkit's tables answers 503 ``schema_out_of_date``, not a 500."""
        key = issue(kit, sqlite_engine).reveal()
        unmigrated = sa.create_engine(fresh_database.url)
        try:
            uncached = TenantKit()
            with TestClient(build_app(ApiKeyBackend(uncached, database=unmigrated))) as client:
                response = client.get("/reports", headers=bearer(key))
        finally:
            unmigrated.dispose()
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "schema_out_of_date"
