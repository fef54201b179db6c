"""A small FastAPI service with tenantkit: organizations, API keys, invitations, on a SQLite file.

Run it (it creates and migrates ``example.sqlite3`` in the working directory when it starts)::

    pip install "tenantkit[fastapi]" uvicorn
    python examples/fastapi_app.py            # http://127.0.0.1:8000, OpenAPI docs at /docs

Then try, as the user ``alice`` (the ``X-User`` header is a STAND-IN for your identity provider)::

    # alice creates the organization "acme" and becomes its OWNER
    curl -s -X POST localhost:8000/organizations -H 'X-User: alice' \\
         -H 'Content-Type: application/json' -d '{"organization_id": "acme"}'

    # she issues an API key with the scope reports:read (the response shows the key this once)
    curl -s -X POST localhost:8000/tenantkit/organizations/acme/api-keys -H 'X-User: alice' \\
         -H 'Content-Type: application/json' -d '{"name": "CI", "scopes": ["reports:read"]}'

    # a client calls the protected route with it; without it the answer is 401
    curl -s localhost:8000/api/reports -H 'Authorization: Bearer tk_live_...'
    curl -s -i localhost:8000/api/reports

    # she invites bob; bob accepts with the token from the response, as bob@acme.example
    curl -s -X POST localhost:8000/tenantkit/organizations/acme/invitations -H 'X-User: alice' \\
         -H 'Content-Type: application/json' -d '{"email": "bob@acme.example", "role": "MEMBER"}'
    curl -s -X POST localhost:8000/tenantkit/invitations/accept -H 'X-User: bob' \\
         -H 'X-Email: bob@acme.example' -H 'X-Email-Verified: true' \\
         -H 'Content-Type: application/json' -d '{"token": "..."}'

    # billing is for ADMINs and OWNERs: alice gets in, bob gets 403 permission_denied
    curl -s localhost:8000/organizations/acme/billing -H 'X-User: alice'
    curl -s localhost:8000/organizations/acme/billing -H 'X-User: bob'
    curl -s localhost:8000/tenantkit/organizations/acme/members -H 'X-User: bob'

    # a custom role inside MEMBER: alice makes bob a billing clerk, and billing lets him in
    curl -s -X PATCH localhost:8000/tenantkit/organizations/acme/members/bob -H 'X-User: alice' \\
         -H 'Content-Type: application/json' -d '{"role": "billing_clerk"}'
    curl -s localhost:8000/organizations/acme/billing -H 'X-User: bob'

    # the audit log: who changed what, from where, newest first (OWNERs and ADMINs only)
    curl -s localhost:8000/tenantkit/organizations/acme/audit-events -H 'X-User: alice'

    # the organization's settings (AcmeSettings below): read them with their version, then write against
    # it; a write against an older version is answered 409 settings_version_conflict
    curl -s localhost:8000/tenantkit/organizations/acme/settings -H 'X-User: alice'
    curl -s -X PATCH localhost:8000/tenantkit/organizations/acme/settings -H 'X-User: alice' \
         -H 'Content-Type: application/json' \
         -d '{"expected_version": 0, "changes": {"weekly_digest": false, "api_key_max_lifetime": "90d"}}'

Several instances on one PostgreSQL database, each caching verified keys: the invalidation bus makes a key
revoked through one instance refused by the others within milliseconds (docs/many-instances.md), and
``/health`` shows its state::

    export TENANTKIT_BUS=postgres      # or redis (with TENANTKIT_BUS_URL=redis://...), or poll
    python examples/fastapi_app.py --database postgresql+psycopg://app@db/app --cache-ttl 30 --port 8000 &
    python examples/fastapi_app.py --database postgresql+psycopg://app@db/app --cache-ttl 30 --port 8001 &
    curl -s localhost:8001/health
"""

import argparse
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    ApiKeySettings,
    ApiKeyVerification,
    BusSettings,
    CustomRole,
    DatabaseSettings,
    InvitationSettings,
    Member,
    OrganizationDefaults,
    PermissionRegistry,
    Permissions,
    Role,
    SettingsDocument,
    TenantKit,
)
from tenantkit.audit import RequestContext, audit_context
from tenantkit.fastapi import Authorization, Principal, TenantKitFastAPI
from tenantkit.metrics import VerificationMetrics

# In production the secret comes from your secret store; this default is for trying the example only.
INVITATION_SECRET = os.environ.get("TENANTKIT_INVITATION_SECRET", "example-only-not-a-real-secret-0123")


class AcmeSettings(SettingsDocument):
    """The product's own per-organization settings, beside the ones tenantkit honours.

    tenantkit's fields (``api_key_max_lifetime``, ``invitation_max_ttl``, ``default_role``, ...) come from
    ``SettingsDocument``; an organization may only tighten the deployment's values of those.
    """

    weekly_digest: bool = True
    report_timezone: str = Field(default="UTC", max_length=64)


class NewOrganization(BaseModel):
    organization_id: str = Field(min_length=1, max_length=255)


def database_and_session(database_url: str, *, async_engine: bool) -> tuple[Any, Any]:
    """The engine, and your session dependency: one ``Session`` (or ``AsyncSession``) per request."""
    if async_engine:
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

        async_database = create_async_engine(database_url)

        async def get_async_session() -> AsyncIterator[AsyncSession]:
            async with AsyncSession(async_database, expire_on_commit=False) as session:
                yield session

        return async_database, get_async_session
    engine = sa.create_engine(database_url)

    def get_session() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as session:
            yield session

    return engine, get_session


def bus_from_environment(database_url: str) -> BusSettings:
    """The bus ``TENANTKIT_BUS`` chooses (off when unset), on ``TENANTKIT_BUS_URL`` or else the database."""
    return BusSettings(
        backend=os.environ.get("TENANTKIT_BUS"), url=os.environ.get("TENANTKIT_BUS_URL", database_url)
    )


def add_health_route(app: FastAPI, kit: TenantKit) -> None:
    """``GET /health`` for the load balancer, with the invalidation bus's state (``null`` without one)."""

    @app.get("/health")
    def health() -> dict[str, object]:
        bus = kit.bus.health().to_dict() if kit.bus is not None else None
        return {"status": "ok", "bus": bus}


def create_app(  # noqa: C901  one nested route per feature the example shows
    database_url: str = "sqlite:///example.sqlite3",
    *,
    schema: str | None = None,
    async_engine: bool = False,
    api_key_cache_ttl: timedelta | None = None,
    negative_cache_ttl: timedelta | None = timedelta(seconds=10),
    metrics: VerificationMetrics | None = None,
    bus: BusSettings | None = None,
) -> FastAPI:
    """Build the app on ``database_url``; tenantkit's tables are migrated when the server starts.

    Args:
        database_url: The SQLAlchemy URL (``postgresql+psycopg://...`` serves sync and async alike).
        schema: The PostgreSQL schema for tenantkit's tables (``None``: the default schema).
        async_engine: An ``AsyncEngine`` and ``AsyncSession`` instead of their sync kinds.
        api_key_cache_ttl: Turns on the in-process cache of verified keys.
        negative_cache_ttl: How long a well-formed key that matched nothing is refused from memory.
        metrics: Told of every verification's outcome and source (``tenantkit.metrics``).
        bus: The invalidation bus across instances (off by default; ``main`` reads ``TENANTKIT_BUS``).

    ``app.state`` keeps ``tenantkit`` (the adapter), ``get_session`` (the session dependency) and ``engine``
    for a benchmark's or a test's own routes (``benchmarks/bench_http.py`` measures this app).
    """
    kit = TenantKit(
        api_keys=ApiKeySettings(
            cache_ttl=api_key_cache_ttl,
            negative_cache_ttl=negative_cache_ttl,
            # last_used_at is written behind the request, in one statement for many keys (by the
            # lifespan below, every 5 seconds and at shutdown), instead of inside a verification.
            last_used_writes="deferred",
        ),
        database=DatabaseSettings(schema_name=schema),
        invitations=InvitationSettings(secret_keys=[INVITATION_SECRET]),
        # Each organization's settings document is an AcmeSettings. Deployment ceilings go here too
        # (api_key_max_lifetime="365d", say); an organization may choose tighter ones in its settings.
        organizations=OrganizationDefaults(document=AcmeSettings),
        # The app's own permissions, declared in a registry (a typo anywhere is refused). ADMIN and OWNER hold
        # both; the custom role "billing_clerk" inside MEMBER holds billing:manage. Granting needs holding:
        # an OWNER or ADMIN may make someone a billing clerk, or issue a key scoped reports:read.
        permissions=Permissions(
            registry=PermissionRegistry(
                {
                    "billing:manage": "See and change the organization's billing",
                    "reports:read": "Read reports (the scope of the reports API key)",
                }
            ),
            roles=[
                CustomRole(
                    key="billing_clerk",
                    name="Billing clerk",
                    rank=Role.MEMBER,
                    permissions=frozenset({"billing:manage"}),
                )
            ],
        )
        .with_actions("billing:manage", Role.ADMIN)
        .with_actions("reports:read", Role.ADMIN),
        metrics=metrics,
        bus=bus,
    )

    engine, get_session = database_and_session(database_url, async_engine=async_engine)

    # --- STAND-IN for your identity provider ------------------------------------------------------------
    # A real app reads the signed-in user from a verified session cookie or token (Clerk, Auth0, WorkOS,
    # your own). This example believes whatever the X-User and X-Email headers say: never deploy it.
    def current_user(
        x_user: Annotated[str | None, Header()] = None,
        x_email: Annotated[str | None, Header()] = None,
        x_email_verified: Annotated[bool, Header()] = False,
    ) -> Principal:
        if not x_user:
            raise HTTPException(401, "sign in first: send X-User (the example's stand-in for a login)")
        return Principal(user_id=x_user, email=x_email, email_verified=x_email_verified)

    # -----------------------------------------------------------------------------------------------------

    # database=engine: API keys are checked without the session. A key the cache knows is answered from
    # memory (no session, no connection, no thread hop); a miss borrows a connection of the engine.
    tk = TenantKitFastAPI(kit, session=get_session, current_user=current_user, database=engine)

    # tk.lifespan(engine) migrates tenantkit's tables before serving (idempotent: every instance may), into
    # the kit's schema, and writes the deferred last_used_at uses.
    serve = tk.lifespan(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serve(app):
            yield
        # Close pooled connections when the server stops.
        if isinstance(engine, sa.Engine):
            engine.dispose()
        else:
            await engine.dispose()

    app = FastAPI(title="tenantkit FastAPI example", lifespan=lifespan)
    app.state.tenantkit = tk
    app.state.get_session = get_session
    app.state.engine = engine
    tk.install(app)  # tenantkit errors become {"error": {"code": ...}} with the right status
    # Members, API keys and invitations; tk.router(include=("members",)) would mount only some features.
    app.include_router(tk.router(), prefix="/tenantkit")

    @app.post("/organizations", status_code=201)
    async def create_organization(
        body: NewOrganization,
        user: Annotated[Principal, Depends(current_user)],
        session: Annotated[Any, Depends(get_session)],
        context: Annotated[RequestContext, Depends(tk.request_context)],
    ) -> Member:
        """Your sign-up flow: the user who creates an organization becomes its first OWNER."""

        def sign_up(session: Session) -> Member:
            # Organizations belong to your product (or identity provider), whose own unique key settles
            # two simultaneous sign-ups; this check only keeps strangers from claiming an existing one.
            if kit.members.list_members(session, body.organization_id, actor=HOST, limit=1).items:
                raise HTTPException(409, "that organization exists already")
            # The router records each request's client in the audit log; a route of your own says so itself.
            with audit_context(context):
                member = kit.members.add(session, body.organization_id, user.user_id, Role.OWNER, actor=HOST)
            session.commit()
            return member

        # In the thread pool for a Session, through run_sync for an AsyncSession: one call serves both.
        return await tk.run(session, sign_up)

    # The two kinds of protection, as reusable parameter types.
    ReportsKey = Annotated[ApiKeyVerification, Depends(tk.api_key("reports:read"))]
    BillingManager = Annotated[Authorization, Depends(tk.permission("billing:manage"))]

    @app.get("/api/reports")
    def reports(key: ReportsKey) -> dict[str, object]:
        """For machines: needs an API key with the scope ``reports:read``."""
        return {"organization_id": key.organization_id, "key": key.name, "reports": ["2030-q1", "2030-q2"]}

    add_health_route(app, kit)
    # A metered device (docs/usage-limits.md, docs/bound-keys.md): its key is issued in Python with
    #     kit.api_keys.issue(session, org, "pump 4711", actor=..., scopes=["telemetry:write"],
    #                        subject=ApiKeySubject.device("SN-4711"),
    #                        limits=ApiKeyLimits(refill_amount=10_000, refill_period="day",
    #                                            rate_limits=["10/second"], allowed_cidrs=["10.20.0.0/16"]))
    # Each request spends one credit; out of credits or over the rate it is answered 429 with Retry-After.
    TelemetryKey = Annotated[ApiKeyVerification, Depends(tk.api_key("telemetry:write", cost=1))]

    @app.post("/api/telemetry", status_code=202)
    def telemetry(key: TelemetryKey) -> dict[str, object]:
        """For devices: one usage credit per reading; the answer says how many are left."""
        return {"device": key.subject_id, "credits_remaining": key.credits_remaining}

    @app.get("/organizations/{organization_id}/billing")
    def billing(auth: BillingManager) -> dict[str, object]:
        """For people: needs the app's own ``billing:manage`` action (ADMIN or OWNER)."""
        return {"organization_id": auth.organization_id, "your_role": auth.role, "plan": "team"}

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite:///example.sqlite3", help="SQLAlchemy URL")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--cache-ttl", type=float, default=None, help="seconds verified keys are cached")
    arguments = parser.parse_args()
    cache_ttl = None if arguments.cache_ttl is None else timedelta(seconds=arguments.cache_ttl)
    app = create_app(
        arguments.database, api_key_cache_ttl=cache_ttl, bus=bus_from_environment(arguments.database)
    )
    uvicorn.run(app, host="127.0.0.1", port=arguments.port)


if __name__ == "__main__":
    main()
