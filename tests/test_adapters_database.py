"""The adapters given ``database=``: an API-key request costs what its verification costs.

A cache hit resolves no session, checks out no connection and makes no thread hop; a miss checks out exactly
one connection of the adapter's engine (an async engine's on the event loop itself) and never opens the
host's session. Speed changes nothing the keys promise: a revoked key is refused at once in this process
with the cache on, and expiry is exact to the microsecond. Sync engines run on SQLite, PostgreSQL and
MariaDB; async ones on aiosqlite and psycopg's async driver. (No ``from __future__ import annotations``:
FastAPI reads the route's annotations at runtime.)
"""

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import flask
import httpx2
import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeySettings, ApiKeyVerification, TenantKit
from tenantkit.fastapi import TenantKitFastAPI
from tenantkit.flask import TenantKitFlask, current_api_key
from tenantkit.tables import api_keys
from tenantkit.testing import FrozenClock

ORG = "org_1"
SCOPE = "reports:read"
CACHED = ApiKeySettings(cache_ttl=timedelta(hours=2))
# Cached, and no last_used_at write due within the hour that expiry tests travel.
CACHED_QUIET = ApiKeySettings(cache_ttl=timedelta(hours=2), last_used_interval=timedelta(hours=2))


class HostSession:
    """The host's session dependency or callable: with ``database=`` an API-key request never calls it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Session:
        self.calls += 1
        raise AssertionError("the host's session was asked for")


class Checkouts:
    """The connections checked out of an engine's pool, with the thread that checked each out."""

    def __init__(self, engine: sa.Engine) -> None:
        self.threads: list[int] = []
        sa.event.listen(engine, "checkout", self._record)
        self._engine = engine

    def _record(self, *args: Any) -> None:
        self.threads.append(threading.get_ident())

    def __len__(self) -> int:
        return len(self.threads)

    def remove(self) -> None:
        sa.event.remove(self._engine, "checkout", self._record)


@pytest.fixture
def thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[Callable[..., Any]]:
    """Every call anyio runs in a worker thread (what run_in_threadpool does) during the test."""
    hops: list[Callable[..., Any]] = []
    run_sync = anyio.to_thread.run_sync

    async def recording(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(function)
        return await run_sync(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", recording)
    return hops


def issue(engine: sa.Engine, kit: TenantKit, **kwargs: Any) -> tuple[str, str]:
    with Session(engine) as session:
        issued = kit.api_keys.issue(session, ORG, "ci", actor=HOST, scopes=[SCOPE], **kwargs)
        session.commit()
    return issued.id, issued.reveal()


def revoke(engine: sa.Engine, kit: TenantKit, key_id: str) -> None:
    with Session(engine) as session:
        kit.api_keys.revoke(session, ORG, key_id, actor=HOST)
        session.commit()


def fastapi_app(kit: TenantKit, database: sa.Engine | AsyncEngine, host: HostSession) -> FastAPI:
    tk = TenantKitFastAPI(kit, session=host, database=database)
    app = FastAPI()
    tk.install(app)

    @app.get("/reports")
    async def reports(key: Annotated[ApiKeyVerification, Depends(tk.api_key(SCOPE))]) -> dict[str, Any]:
        return {"organization_id": key.organization_id}

    return app


def refusal(response: httpx2.Response) -> str:
    """The reason of a 401 answer."""
    assert response.status_code == 401, response.text
    reason: str = response.json()["error"]["reason"]
    return reason


@pytest.fixture
async def client_for() -> Any:
    """Builds an httpx client on an ASGI app (on this test's event loop), closed at the end."""
    clients: list[httpx2.AsyncClient] = []

    def make(app: FastAPI) -> httpx2.AsyncClient:
        client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.mark.anyio
class TestFastAPISyncEngine:
    async def test_a_hit_needs_no_session_connection_or_thread(
        self, engine: sa.Engine, clock: FrozenClock, thread_hops: list[Any], client_for: Any
    ) -> None:
        """The miss borrows one connection of the engine in one worker thread; the hit, nothing at all."""
        kit = TenantKit(clock=clock, api_keys=CACHED)
        key_id, key = issue(engine, kit)
        host = HostSession()
        client = client_for(fastapi_app(kit, engine, host))
        checkouts = Checkouts(engine)
        try:
            assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            assert (len(checkouts), len(thread_hops)) == (1, 1)
            # The miss's last_used_at write was committed on that connection.
            with engine.connect() as connection:
                stored = connection.execute(
                    sa.select(api_keys.c.last_used_at).where(api_keys.c.id == key_id)
                ).scalar()
            assert stored == clock()
            checkouts.threads.clear()
            thread_hops.clear()
            for _ in range(3):
                response = await client.get("/reports", headers={"Authorization": f"Bearer {key}"})
                assert response.json() == {"organization_id": ORG}
            assert (len(checkouts), len(thread_hops)) == (0, 0)
        finally:
            checkouts.remove()
        assert host.calls == 0

    async def test_a_miss_without_the_cache_opens_one_connection_each(
        self, engine: sa.Engine, clock: FrozenClock, client_for: Any
    ) -> None:
        """Cache off, every request looks its key up on one connection of the engine, never the host's."""
        kit = TenantKit(clock=clock)
        _, key = issue(engine, kit)
        host = HostSession()
        client = client_for(fastapi_app(kit, engine, host))
        checkouts = Checkouts(engine)
        try:
            for _ in range(2):
                assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            assert refusal(
                await client.get("/reports", headers={"X-API-Key": kit.api_keys.format.generate()})
            ) == ("unknown")
            assert len(checkouts) == 3
            assert refusal(await client.get("/reports", headers={"X-API-Key": "tk_live_junk"})) == "malformed"
            assert len(checkouts) == 3
        finally:
            checkouts.remove()
        assert host.calls == 0

    async def test_a_revoked_key_is_refused_at_once(
        self, engine: sa.Engine, clock: FrozenClock, client_for: Any
    ) -> None:
        """With the cache on, the request right after the revocation commits is refused as revoked."""
        kit = TenantKit(clock=clock, api_keys=CACHED)
        key_id, key = issue(engine, kit)
        client = client_for(fastapi_app(kit, engine, HostSession()))
        assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
        revoke(engine, kit, key_id)
        assert refusal(await client.get("/reports", headers={"X-API-Key": key})) == "revoked"

    async def test_expiry_is_exact(self, engine: sa.Engine, clock: FrozenClock, client_for: Any) -> None:
        """A cached key works up to the microsecond before its expiry and is refused at it, from memory."""
        kit = TenantKit(clock=clock, api_keys=CACHED_QUIET)
        expires_at = clock() + timedelta(hours=1)
        _, key = issue(engine, kit, expires=expires_at)
        client = client_for(fastapi_app(kit, engine, HostSession()))
        assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
        checkouts = Checkouts(engine)
        try:
            clock.set(expires_at - timedelta(microseconds=1))
            assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            clock.set(expires_at)
            assert refusal(await client.get("/reports", headers={"X-API-Key": key})) == "expired"
            assert len(checkouts) == 0
        finally:
            checkouts.remove()

    async def test_scopes_are_checked_on_a_hit(
        self, engine: sa.Engine, clock: FrozenClock, client_for: Any
    ) -> None:
        """A cached key without the route's scope is answered 403 from memory."""
        kit = TenantKit(clock=clock, api_keys=CACHED)
        with Session(engine) as session:
            key = kit.api_keys.issue(session, ORG, "no scope", actor=HOST).reveal()
            session.commit()
        client = client_for(fastapi_app(kit, engine, HostSession()))
        assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 403
        assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 403


async def issue_async(engine: AsyncEngine, kit: TenantKit, **kwargs: Any) -> tuple[str, str]:
    async with AsyncSession(engine) as session:
        issued = await session.run_sync(
            lambda sync: kit.api_keys.issue(sync, ORG, "ci", actor=HOST, scopes=[SCOPE], **kwargs)
        )
        await session.commit()
    return issued.id, issued.reveal()


async def last_used_async(engine: AsyncEngine, key_id: str) -> datetime | None:
    async with engine.connect() as connection:
        value: datetime | None = (
            await connection.execute(sa.select(api_keys.c.last_used_at).where(api_keys.c.id == key_id))
        ).scalar()
    return value


@pytest.mark.anyio
class TestFastAPIAsyncEngine:
    async def test_a_miss_stays_on_the_event_loop(
        self, async_engine: AsyncEngine, clock: FrozenClock, thread_hops: list[Any], client_for: Any
    ) -> None:
        """The miss checks out one connection, on the loop's own thread, with no worker thread; the hit,
        none; the host's session never."""
        kit = TenantKit(clock=clock, api_keys=CACHED)
        key_id, key = await issue_async(async_engine, kit)
        host = HostSession()
        client = client_for(fastapi_app(kit, async_engine, host))
        checkouts = Checkouts(async_engine.sync_engine)
        try:
            assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            assert checkouts.threads == [threading.get_ident()]
            assert thread_hops == []
            checkouts.threads.clear()
            assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            assert (len(checkouts), thread_hops) == (0, [])
        finally:
            checkouts.remove()
        assert host.calls == 0
        assert await last_used_async(async_engine, key_id) == clock()  # the miss's write was committed

    async def test_a_revoked_key_is_refused_at_once(
        self, async_engine: AsyncEngine, clock: FrozenClock, client_for: Any
    ) -> None:
        """The revocation's commit evicts the cached key: the next request is refused as revoked."""
        kit = TenantKit(clock=clock, api_keys=CACHED)
        key_id, key = await issue_async(async_engine, kit)
        client = client_for(fastapi_app(kit, async_engine, HostSession()))
        assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
        async with AsyncSession(async_engine) as session:
            await session.run_sync(lambda sync: kit.api_keys.revoke(sync, ORG, key_id, actor=HOST))
            await session.commit()
        assert refusal(await client.get("/reports", headers={"X-API-Key": key})) == "revoked"

    async def test_deferred_uses_are_written_at_shutdown_without_a_thread(
        self, async_engine: AsyncEngine, clock: FrozenClock, thread_hops: list[Any], client_for: Any
    ) -> None:
        """With an async engine the lifespan's last flush is awaited on the loop: no worker thread."""
        kit = TenantKit(
            clock=clock, api_keys=ApiKeySettings(cache_ttl=timedelta(hours=2), last_used_writes="deferred")
        )
        key_id, key = await issue_async(async_engine, kit)
        tk = TenantKitFastAPI(kit, session=HostSession(), database=async_engine)
        app = FastAPI(lifespan=tk.lifespan(flush_every=timedelta(hours=1)))
        tk.install(app)

        @app.get("/reports")
        async def reports(key: Annotated[ApiKeyVerification, Depends(tk.api_key(SCOPE))]) -> dict[str, Any]:
            return {"organization_id": key.organization_id}

        client = client_for(app)
        async with app.router.lifespan_context(app):
            assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            assert await last_used_async(async_engine, key_id) is None
        assert await last_used_async(async_engine, key_id) == clock()
        assert thread_hops == []


class FlaskHarness:
    """A Flask app whose API-key route verifies on ``database``; the host's session must stay unused."""

    def __init__(self, kit: TenantKit, engine: sa.Engine) -> None:
        self.host = HostSession()
        self.app = flask.Flask(__name__)
        self.tk = TenantKitFlask(kit, session=self.host, database=engine, app=self.app)

        @self.app.get("/reports")
        @self.tk.require_api_key(SCOPE)
        def reports() -> dict[str, Any]:
            return {"organization_id": current_api_key().organization_id}

        self.client = self.app.test_client()

    def get(self, key: str) -> tuple[int, Any]:
        response = self.client.get("/reports", headers={"X-API-Key": key})
        body = response.get_json()
        return response.status_code, body["error"]["reason"] if response.status_code == 401 else body


@pytest.fixture
def checkouts_of(engine: sa.Engine) -> Iterator[Checkouts]:
    checkouts = Checkouts(engine)
    yield checkouts
    checkouts.remove()


class TestFlask:
    def test_a_hit_needs_no_connection_and_a_miss_one_of_the_engine(
        self, engine: sa.Engine, clock: FrozenClock, checkouts_of: Checkouts
    ) -> None:
        """The host's session callable is never called; the miss borrows one connection, the hit none."""
        kit = TenantKit(clock=clock, api_keys=CACHED)
        key_id, key = issue(engine, kit)
        checkouts_of.threads.clear()
        harness = FlaskHarness(kit, engine)
        assert harness.get(key) == (200, {"organization_id": ORG})
        assert len(checkouts_of) == 1
        with engine.connect() as connection:
            stored = connection.execute(
                sa.select(api_keys.c.last_used_at).where(api_keys.c.id == key_id)
            ).scalar()
        assert stored == clock()  # committed on the engine's connection
        checkouts_of.threads.clear()
        for _ in range(3):
            assert harness.get(key) == (200, {"organization_id": ORG})
        assert harness.get("tk_live_junk") == (401, "malformed")
        assert len(checkouts_of) == 0
        assert harness.get(kit.api_keys.format.generate()) == (401, "unknown")
        assert len(checkouts_of) == 1
        assert harness.host.calls == 0

    def test_a_revoked_key_is_refused_at_once_and_expiry_is_exact(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Cache on: refused right after the revocation commits; a cached key expires to the microsecond."""
        kit = TenantKit(clock=clock, api_keys=CACHED)
        revoked_id, revoked = issue(engine, kit)
        expires_at = clock() + timedelta(hours=1)
        _, expiring = issue(engine, kit, expires=expires_at)
        harness = FlaskHarness(kit, engine)
        assert harness.get(revoked)[0] == 200
        assert harness.get(expiring)[0] == 200
        revoke(engine, kit, revoked_id)
        assert harness.get(revoked) == (401, "revoked")
        clock.set(expires_at - timedelta(microseconds=1))
        assert harness.get(expiring)[0] == 200
        clock.set(expires_at)
        assert harness.get(expiring) == (401, "expired")
        assert harness.host.calls == 0


def test_database_must_be_an_engine() -> None:
    """Anything else given as database= is refused when the adapter is built."""
    kit = TenantKit()
    with pytest.raises(TypeError, match="Engine"):
        TenantKitFastAPI(kit, session=HostSession(), database="sqlite://")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Engine"):
        TenantKitFlask(kit, session=HostSession(), database="sqlite://")  # type: ignore[arg-type]
