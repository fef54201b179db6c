"""What the ASGI adapters share (FastAPI's dependency, the Starlette backend): the database part of a request.

A cache miss completed on the adapter's own engine (an async engine's through ``run_sync``, never the thread
pool; a sync engine's in the thread pool), and the deferred ``last_used_at`` uses written every few seconds
and once more when the application stops. Imports Starlette, so only the ``fastapi`` and ``starlette``
extras load it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from tenantkit._http import complete_on_engine
from tenantkit._migrations import is_async_database
from tenantkit.api_keys._last_used import flush_on_engine
from tenantkit.api_keys._service import ApiKeyService, ApiKeyVerification, PendingVerification

if TYPE_CHECKING:
    # Imported at run time only for an async engine: the extension needs greenlet (tenantkit[async]).
    from sqlalchemy.ext.asyncio import AsyncEngine
    from typing_extensions import TypeIs

    from tenantkit.bus._base import InvalidationBus

logger = logging.getLogger("tenantkit")


def is_async_engine(database: object) -> TypeIs[AsyncEngine]:
    """Whether ``database`` is an ``AsyncEngine``, without importing SQLAlchemy's asyncio extension."""
    # Nothing async can exist before the extension was imported (a blocked import leaves None in sys.modules).
    extension = sys.modules.get("sqlalchemy.ext.asyncio")
    return extension is not None and isinstance(database, extension.AsyncEngine)


def check_database(database: object) -> None:
    """Raise ``TypeError`` unless ``database`` is a SQLAlchemy ``Engine`` or ``AsyncEngine``."""
    if not isinstance(database, Engine) and not is_async_engine(database):
        raise TypeError("database must be a SQLAlchemy Engine or AsyncEngine")


async def complete_on_database(
    pending: PendingVerification, database: Engine | AsyncEngine
) -> ApiKeyVerification:
    """Complete ``pending`` on a connection of ``database`` of its own, committing only if it wrote."""
    if is_async_engine(database):
        async with database.connect() as connection:
            verified, wrote = await connection.run_sync(pending.complete_on_own_connection)
            if wrote:
                await connection.commit()
        return verified
    assert isinstance(database, Engine)  # noqa: S101  narrowing: the adapters check it when built
    return await run_in_threadpool(complete_on_engine, pending, database)


async def flush_last_used(service: ApiKeyService, database: Engine | AsyncEngine) -> int:
    """Write ``service``'s deferred ``last_used_at`` uses now, in a transaction of their own on ``database``.

    Returns how many keys it wrote (0, with no connection opened, when nothing is pending).
    """
    if service.pending_last_used == 0:
        return 0
    if is_async_database(database):  # an AsyncConnection too, which FastAPI's lifespan may be given
        async with database.begin() as connection:
            return await connection.run_sync(service.flush_last_used)
    assert isinstance(database, Engine)  # noqa: S101  narrowing: the adapters check it when built
    return await run_in_threadpool(flush_on_engine, service.flush_last_used, database)


def check_flush_every(flush_every: timedelta) -> None:
    """Raise ``ValueError`` unless ``flush_every`` is a positive duration."""
    if flush_every <= timedelta(0):
        raise ValueError("flush_every must be a positive timedelta")


@asynccontextmanager
async def running_bus(bus: InvalidationBus | None) -> AsyncIterator[None]:
    """Start ``bus`` (subscribed, its probe heard) before the block and stop it after; nothing without one.

    Start and stop block (a connection, a probe round trip, joining threads), so they run in the thread pool.
    """
    if bus is None:
        yield
        return
    await run_in_threadpool(bus.start)
    try:
        yield
    finally:
        await run_in_threadpool(bus.stop)


@asynccontextmanager
async def writing_last_used(
    service: ApiKeyService, database: Engine | AsyncEngine | None, every: timedelta
) -> AsyncIterator[None]:
    """While the block runs, write deferred uses every ``every``; when it ends, write what is left.

    Does nothing when ``database`` is ``None`` or ``service`` writes ``last_used_at`` inline.
    """
    check_flush_every(every)
    if database is None or service.last_used_writes != "deferred":
        yield
        return
    stopping = asyncio.Event()
    flusher = asyncio.create_task(_flush_periodically(service, database, every, stopping))
    try:
        yield
    finally:
        stopping.set()
        await flusher
        await flush_last_used(service, database)


async def _flush_periodically(
    service: ApiKeyService, database: Engine | AsyncEngine, every: timedelta, stopping: asyncio.Event
) -> None:
    while True:
        try:
            await asyncio.wait_for(stopping.wait(), every.total_seconds())
            return
        except asyncio.TimeoutError:
            pass
        try:
            await flush_last_used(service, database)
        except Exception:
            # The uses stay pending for the next period; a failed write never ends the application.
            logger.exception("tenantkit: writing last_used_at failed; retrying in %s", every)
