"""A small Flask service with tenantkit: organizations, API keys, invitations, on a SQLite file.

Run it (it creates and migrates ``example.sqlite3`` in the working directory)::

    pip install "tenantkit[flask]"
    python examples/flask_app.py              # http://127.0.0.1:8000

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

Webhooks are on when ``TENANTKIT_WEBHOOK_SECRET_KEYS`` is set (``pip install "tenantkit[flask,webhooks]"``);
the blueprint then serves the webhook routes too. To deliver to ``examples/webhook_receiver.py`` on this
machine, allow plain HTTP to 127.0.0.1 (development only: by default the sender reaches public HTTPS
addresses alone)::

    export TENANTKIT_WEBHOOK_SECRET_KEYS=example-only-webhook-key-0123456789
    export TENANTKIT_WEBHOOK_ALLOW_HTTP=true TENANTKIT_WEBHOOK_ALLOW_NETWORKS=127.0.0.1/32
    python examples/flask_app.py

    # alice registers an endpoint; the answer shows its whsec_ secret this once (Cache-Control: no-store)
    curl -s -X POST localhost:8000/tenantkit/organizations/acme/webhook-endpoints -H 'X-User: alice' \
         -H 'Content-Type: application/json' \
         -d '{"url": "http://127.0.0.1:8001/", "event_types": ["member.added", "api_key.issued"]}'

    # in two more terminals (the same TENANTKIT_WEBHOOK_* variables for the worker)
    WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 8001
    tenantkit webhooks work --url sqlite:///example.sqlite3

    # each member.added and api_key.issued in acme now reaches the receiver, signed; its deliveries:
    curl -s localhost:8000/tenantkit/organizations/acme/webhook-endpoints/ENDPOINT_ID/deliveries \
         -H 'X-User: alice'

The drop-in pages (``pip install "tenantkit[flask,ui]"``), in a browser: sign in with the stand-in
http://127.0.0.1:8000/example-sign-in?user=alice&email=alice@acme.example, then the team, API keys,
invitations and audit log of acme are at http://127.0.0.1:8000/account/organizations/acme/team and beside it.
With JavaScript the bundled htmx swaps each answer in place and asks a destructive action's question in
the browser's dialog; with JavaScript off every action is a plain form POST (docs/pages.md).
"""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, abort, g, make_response, redirect, request
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import (
    HOST,
    CustomRole,
    InvalidInputError,
    InvitationSettings,
    PermissionRegistry,
    Permissions,
    Role,
    TenantKit,
    TenantKitSettings,
)
from tenantkit.audit import audit_context
from tenantkit.flask import Principal, TenantKitFlask, current_api_key, current_authorization
from tenantkit.metrics import VerificationMetrics

# In production TENANTKIT_INVITATION_SECRET comes from your secret store; this is for trying the example only.
EXAMPLE_INVITATION_SECRET = "example-only-not-a-real-secret-0123"
EXAMPLE_PAGES_SECRET = os.environ.get("TENANTKIT_PAGES_SECRET", "example-only-pages-secret-0123456789")


# The whole app in one factory, so that the example reads top to bottom; its routes are nested functions.
def create_app(  # noqa: C901, PLR0915  one nested route per feature the example shows
    database_url: str = "sqlite:///example.sqlite3",
    *,
    schema: str | None = None,
    api_key_cache_ttl: timedelta | None = None,
    negative_cache_ttl: timedelta | None = timedelta(seconds=10),
    metrics: VerificationMetrics | None = None,
) -> Flask:
    """Build the app on ``database_url``, migrating tenantkit's tables first.

    The ``TENANTKIT_*`` variables configure it, but for what the arguments below decide.

    Args:
        database_url: The SQLAlchemy URL.
        schema: The PostgreSQL schema for tenantkit's tables (else ``TENANTKIT_DATABASE_SCHEMA``).
        api_key_cache_ttl: Turns on the in-process cache of verified keys (else
            ``TENANTKIT_API_KEY_CACHE_TTL``).
        negative_cache_ttl: How long a well-formed key that matched nothing is refused from memory
            (``None`` turns that cache off); this argument decides, not
            ``TENANTKIT_API_KEY_NEGATIVE_CACHE_TTL``.
        metrics: Told of every verification's outcome and source (``tenantkit.metrics``).
    """
    # Every option from the TENANTKIT_* variables and ./.env, read exactly as the tenantkit CLI reads them,
    # so that `tenantkit keys issue` makes keys this app verifies (docs/configuration.md lists them).
    settings = TenantKitSettings.from_env()
    if not settings.invitations.enabled:
        invitations = InvitationSettings(secret_keys=[EXAMPLE_INVITATION_SECRET])
        settings = settings.model_copy(update={"invitations": invitations})
    api_keys = {
        # last_used_at is written behind the request, in one statement for many keys (by a thread of each
        # worker process, every 5 seconds and at exit), instead of inside a verification.
        "last_used_writes": "deferred",
        "cache_ttl": api_key_cache_ttl or settings.api_keys.cache_ttl,
        "negative_cache_ttl": negative_cache_ttl,
    }
    settings = settings.model_copy(update={"api_keys": settings.api_keys.model_copy(update=api_keys)})
    if schema is not None:
        database = settings.database.model_copy(update={"schema_name": schema})
        settings = settings.model_copy(update={"database": database})

    engine = sa.create_engine(database_url)
    # Idempotent: every instance may run it at start-up. TENANTKIT_DATABASE_SCHEMA, when set, places
    # tenantkit's tables in that PostgreSQL schema, beside tables of yours with the same names.
    tenantkit.upgrade(engine, schema=settings.database.schema_name)

    kit = TenantKit(
        api_keys=settings.api_keys,
        invitations=settings.invitations,
        database=settings.database,
        # Off unless TENANTKIT_WEBHOOK_SECRET_KEYS gives a key that encrypts the endpoints' signing secrets.
        webhooks=settings.webhooks,
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
    )
    app = Flask(__name__)
    # Kept where a shutdown hook (or a test) can reach it to close pooled connections: engine.dispose().
    app.extensions["example_engine"] = engine

    # One session per request, closed when the request ends (Flask-SQLAlchemy's db.session works too).
    def get_session() -> Session:
        if "db_session" not in g:
            g.db_session = Session(engine, expire_on_commit=False)
        session: Session = g.db_session
        return session

    @app.teardown_appcontext
    def close_session(_error: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    # --- STAND-IN for your identity provider ------------------------------------------------------------
    # A real app reads the signed-in user from a verified session cookie or token (Clerk, Auth0, WorkOS,
    # your own). This example believes whatever the X-User and X-Email headers say: never deploy it.
    # The pages (in a browser, which sends no X-User header) read the same stand-in from a cookie that
    # GET /example-sign-in?user=alice&email=alice@acme.example sets.
    def current_user() -> Principal:
        signed_in = request.cookies.get("example_user", "")
        if signed_in and not request.headers.get("X-User"):
            cookie_user, _, cookie_email = signed_in.partition("|")
            return Principal(
                user_id=cookie_user, email=cookie_email or None, email_verified=bool(cookie_email)
            )
        user_id = request.headers.get("X-User")
        if not user_id:
            abort(
                make_response(
                    {"detail": "sign in first: send X-User (the example's stand-in for a login)"}, 401
                )
            )
        return Principal(
            user_id=user_id,
            email=request.headers.get("X-Email"),
            email_verified=request.headers.get("X-Email-Verified", "").lower() == "true",
        )

    # -----------------------------------------------------------------------------------------------------

    # database=engine: API keys are checked without the host's session. A key the cache knows is answered
    # from memory (no session, no connection); a miss borrows a connection of the engine.
    tk = TenantKitFlask(kit, session=get_session, current_user=current_user, database=engine)
    tk.init_app(app)  # tenantkit errors become {"error": {"code": ...}} with the right status
    # Members, API keys, invitations, the audit log and (when configured) webhooks;
    # tk.blueprint(include=("members",)) would mount only some features.
    app.register_blueprint(tk.blueprint(), url_prefix="/tenantkit")
    # The drop-in pages (pip install "tenantkit[flask,ui]"): /account/organizations/acme/team, .../api-keys,
    # .../invitations, .../audit and the accept page an invitation link lands on. The secret signs their
    # CSRF tokens; in production it comes from your secret store. The pages speak English and every language
    # of the catalogs in translations=["translations"] (docs/pages.md, "Translations and time zones"),
    # chosen by Principal(locale=...) or the browser's Accept-Language; dates show in
    # Principal(time_zone=...), else in time_zone= below. An app running Flask-WTF's CSRFProtect(app) needs
    # nothing more: the pages then carry and check its tokens (docs/pages.md, "With Flask-WTF").
    app.register_blueprint(
        tk.pages_blueprint(secret_key=EXAMPLE_PAGES_SECRET, time_zone="UTC"), url_prefix="/account"
    )

    @app.get("/example-sign-in")
    def example_sign_in() -> Any:
        """STAND-IN for your login page: signs the browser in as ``?user=`` (never deploy it)."""
        response = redirect(f"/account/organizations/{request.args.get('organization', 'acme')}/team", 303)
        response.set_cookie(
            "example_user",
            f"{request.args['user']}|{request.args.get('email', '')}",
            httponly=True,
            samesite="Lax",
        )
        return response

    @app.post("/organizations")
    def create_organization() -> tuple[dict[str, object], int]:
        """Your sign-up flow: the user who creates an organization becomes its first OWNER."""
        # Organizations belong to your product (or identity provider), whose own unique key settles two
        # simultaneous sign-ups; this check only keeps strangers from claiming an existing one.
        user = current_user()
        organization_id = (request.get_json(silent=True) or {}).get("organization_id")
        if not isinstance(organization_id, str):
            raise InvalidInputError("organization_id", "is required")
        session = get_session()
        if kit.members.list_members(session, organization_id, actor=HOST, limit=1).items:
            abort(make_response({"detail": "that organization exists already"}, 409))
        # The blueprint records each request's client in the audit log; a view of your own says so itself.
        with audit_context(tk.request_context()):
            member = kit.members.add(session, organization_id, user.user_id, Role.OWNER, actor=HOST)
        session.commit()
        return member.model_dump(mode="json"), 201

    @app.get("/api/reports")
    @tk.require_api_key("reports:read")
    def reports() -> dict[str, object]:
        """For machines: needs an API key with the scope ``reports:read``."""
        key = current_api_key()
        return {"organization_id": key.organization_id, "key": key.name, "reports": ["2030-q1", "2030-q2"]}

    @app.get("/organizations/<organization_id>/billing")
    @tk.require_permission("billing:manage")
    def billing(organization_id: str) -> dict[str, object]:
        """For people: needs the app's own ``billing:manage`` action (ADMIN or OWNER)."""
        auth = current_authorization()
        return {"organization_id": organization_id, "your_role": auth.role, "plan": "team"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite:///example.sqlite3", help="SQLAlchemy URL")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    # Flask's development server; in production use a WSGI server, e.g.
    # gunicorn --workers 4 'flask_app:create_app("postgresql+psycopg://...")'  (benchmarks/bench_http.py)
    create_app(arguments.database).run(host="127.0.0.1", port=arguments.port)


if __name__ == "__main__":
    main()
