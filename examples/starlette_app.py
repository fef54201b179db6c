"""A Starlette service whose API keys are checked before routing, by tenantkit's authentication backend.

Run it (it creates and migrates ``example.sqlite3`` in the working directory)::

    pip install "tenantkit[starlette]" uvicorn
    python examples/starlette_app.py            # http://127.0.0.1:8000

Then issue a key for the organization "acme" with the scope reports:read (it is printed this once), and
call the service with it::

    tenantkit keys issue --url sqlite:///example.sqlite3 acme CI --scope reports:read

    # the key's own route, and one its scope allows; another scope is refused 403 by requires()
    curl -s localhost:8000/api/me -H 'Authorization: Bearer tk_live_...'
    curl -s localhost:8000/api/reports -H 'X-API-Key: tk_live_...'
    curl -s -i localhost:8000/api/exports -H 'Authorization: Bearer tk_live_...'

    # a key that does not verify is answered 401 before any route runs, with tenantkit's JSON body
    curl -s -i localhost:8000/api/reports -H 'Authorization: Bearer tk_live_nope'

    # without a key the request goes on unauthenticated: open routes answer, requires() answers 403
    curl -s localhost:8000/health
    curl -s -i localhost:8000/api/reports

The key's ``last_used_at`` is written behind the requests (``last_used_writes="deferred"``): every few
seconds, and once more when the server stops.
"""

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import tenantkit
from tenantkit import ApiKeySettings, TenantKit
from tenantkit.starlette import ApiKeyBackend, ApiKeyUser


async def health(request: Request) -> JSONResponse:
    """Open to anyone: the backend lets a request without a key through, unauthenticated."""
    return JSONResponse({"status": "ok"})


@requires("authenticated")
async def me(request: Request) -> JSONResponse:
    """Any valid key: who it is (``request.user``) and what it may do (``request.auth.scopes``)."""
    user: ApiKeyUser = request.user
    return JSONResponse(
        {
            "key": user.display_name,
            "key_id": user.identity,
            "organization_id": user.organization_id,
            "scopes": list(request.auth.scopes),
        }
    )


@requires("reports:read")
async def reports(request: Request) -> JSONResponse:
    """Needs the scope ``reports:read``. Scope everything you read by the key's organization."""
    user: ApiKeyUser = request.user
    return JSONResponse({"organization_id": user.organization_id, "reports": ["2030-q1", "2030-q2"]})


@requires("reports:export")
async def exports(request: Request) -> JSONResponse:
    """Needs ``reports:export``, which the key of the walk-through does not carry: 403."""
    return JSONResponse({"export": "started"})


def create_app(
    database_url: str = "sqlite:///example.sqlite3", *, flush_every: timedelta = timedelta(seconds=5)
) -> Starlette:
    """Build the app on ``database_url``, migrating tenantkit's tables first."""
    engine = sa.create_engine(database_url)
    tenantkit.upgrade(engine)  # idempotent: every instance may run it at start-up

    kit = TenantKit(
        # Verified keys are remembered for 30 s (a revocation in this process is seen at once), and their
        # last use is written behind the request.
        api_keys=ApiKeySettings(cache_ttl=timedelta(seconds=30), last_used_writes="deferred"),
    )
    # A cache hit opens no connection; a miss opens one of this engine's, in the thread pool (an async
    # engine's would run without it).
    backend = ApiKeyBackend(kit, database=engine)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # A lifespan of your own: writing_last_used() keeps the deferred writes going and flushes at the end.
        async with backend.writing_last_used(flush_every=flush_every):
            yield
        engine.dispose()  # close pooled connections when the server stops

    routes = [
        Route("/health", health),
        Route("/api/me", me),
        Route("/api/reports", reports),
        Route("/api/exports", exports),
    ]
    # backend.middleware() is Starlette's AuthenticationMiddleware with tenantkit's error answers.
    return Starlette(routes=routes, middleware=[backend.middleware()], lifespan=lifespan)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite:///example.sqlite3", help="SQLAlchemy URL")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    uvicorn.run(create_app(arguments.database), host="127.0.0.1", port=arguments.port)


if __name__ == "__main__":
    main()
