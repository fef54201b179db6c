"""Migration functions given an ``AsyncEngine`` or ``AsyncConnection``: awaited, run through ``run_sync``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import tenantkit
from tests.databases import ThrowawayDatabase

ASYNC_DIALECTS = ["sqlite", "postgresql"]
pytestmark = pytest.mark.anyio


@pytest.fixture
async def fresh_async_engine(fresh_database: ThrowawayDatabase) -> AsyncIterator[AsyncEngine]:
    """An async engine (aiosqlite or psycopg async) on an empty, unmigrated database."""
    assert fresh_database.async_url is not None
    engine = create_async_engine(fresh_database.async_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.parametrize("fresh_database", ASYNC_DIALECTS, indirect=True)
async def test_every_function_accepts_an_async_engine(
    fresh_async_engine: AsyncEngine, fresh_database: ThrowawayDatabase
) -> None:
    """upgrade, downgrade, adopt and the three checks work on an async engine when awaited."""
    engine = fresh_async_engine
    assert await tenantkit.current_revision(engine) is None
    assert await tenantkit.is_up_to_date(engine) is False
    with pytest.raises(tenantkit.SchemaOutOfDateError):
        await tenantkit.require_up_to_date(engine)
    assert (await tenantkit.adopt(engine)).adopted is False
    result = await tenantkit.upgrade(engine)
    assert result.to_revision == tenantkit.head_revision()
    assert result.applied[0] == "0001"
    assert await tenantkit.is_up_to_date(engine) is True
    await tenantkit.require_up_to_date(engine)
    assert tenantkit.current_revision(fresh_database.url) == tenantkit.head_revision()  # committed
    assert (await tenantkit.downgrade(engine, "base")).to_revision is None
    assert tenantkit.current_revision(fresh_database.url) is None


@pytest.mark.parametrize("fresh_database", ASYNC_DIALECTS, indirect=True)
async def test_async_connection_is_left_as_found(
    fresh_async_engine: AsyncEngine, fresh_database: ThrowawayDatabase
) -> None:
    """Without a transaction open tenantkit commits its own; inside the caller's, the caller decides."""
    async with fresh_async_engine.connect() as connection:
        await tenantkit.upgrade(connection, "0001")
        assert not connection.in_transaction()
        assert tenantkit.current_revision(fresh_database.url) == "0001"
        async with connection.begin():
            await tenantkit.upgrade(connection)
            assert await tenantkit.current_revision(connection) == tenantkit.head_revision()
    assert tenantkit.is_up_to_date(fresh_database.url)


@pytest.mark.parametrize("fresh_database", ASYNC_DIALECTS, indirect=True)
async def test_fastapi_lifespan_migrates_on_start(fresh_async_engine: AsyncEngine) -> None:
    """The documented async start-up: a FastAPI lifespan that awaits ``tenantkit.upgrade(engine)``."""
    engine = fresh_async_engine

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await tenantkit.upgrade(engine)
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/revision")
    async def revision() -> dict[str, Any]:
        return {"revision": await tenantkit.current_revision(engine)}

    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/revision")
    assert response.json() == {"revision": tenantkit.head_revision()}


def test_an_unsupported_object_is_invalid_input() -> None:
    """Something that is neither a database nor a URL is refused with a message naming what is accepted."""
    with pytest.raises(tenantkit.InvalidInputError, match="AsyncEngine") as info:
        tenantkit.upgrade(object())  # type: ignore[call-overload]
    assert info.value.field == "database"


def test_a_sync_engine_still_returns_a_plain_result(sqlite_engine: sa.Engine) -> None:
    """Sync callers are unchanged: no awaitable, the result itself."""
    assert tenantkit.upgrade(sqlite_engine).to_revision == tenantkit.head_revision()


@pytest.mark.parametrize("fresh_database", ASYNC_DIALECTS, indirect=True)
async def test_the_adapter_lifespan_awaits_an_async_engine(fresh_async_engine: AsyncEngine) -> None:
    """``tk.lifespan(async_engine)`` migrates to head before the application serves."""
    from tenantkit.fastapi import TenantKitFastAPI

    tk = TenantKitFastAPI(tenantkit.TenantKit(), session=lambda: None)
    app = FastAPI(lifespan=tk.lifespan(fresh_async_engine))

    assert await tenantkit.current_revision(fresh_async_engine) is None
    async with app.router.lifespan_context(app):
        assert await tenantkit.current_revision(fresh_async_engine) == tenantkit.head_revision()


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql", "mariadb"], indirect=True)
async def test_the_adapter_lifespan_migrates_a_sync_engine_off_the_event_loop(
    fresh_database: ThrowawayDatabase,
) -> None:
    """A sync engine is migrated in the thread pool: the upgrade never runs on the event loop's thread."""
    import threading

    from tenantkit.fastapi import TenantKitFastAPI

    engine = sa.create_engine(fresh_database.url)
    threads: list[int] = []
    sa.event.listen(engine, "connect", lambda *_: threads.append(threading.get_ident()))
    tk = TenantKitFastAPI(tenantkit.TenantKit(), session=lambda: None)
    app = FastAPI(lifespan=tk.lifespan(engine))
    try:
        async with app.router.lifespan_context(app):
            assert tenantkit.is_up_to_date(engine)
    finally:
        engine.dispose()
    assert threads
    assert threading.get_ident() not in threads


@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
async def test_the_adapter_lifespan_migrates_into_the_kits_schema(fresh_database: ThrowawayDatabase) -> None:
    """A kit whose tables live in a schema of their own is migrated there, where its services look."""
    from tenantkit.fastapi import TenantKitFastAPI

    engine = sa.create_engine(fresh_database.url)
    kit = tenantkit.TenantKit(database=tenantkit.DatabaseSettings(schema_name="tk_lifespan"))
    tk = TenantKitFastAPI(kit, session=lambda: None)
    app = FastAPI(lifespan=tk.lifespan(engine))
    try:
        async with app.router.lifespan_context(app):
            assert tenantkit.current_revision(engine, schema="tk_lifespan") == tenantkit.head_revision()
            assert tenantkit.current_revision(engine) is None  # nothing in the default schema
    finally:
        engine.dispose()
