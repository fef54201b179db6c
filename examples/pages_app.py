"""The drop-in pages in a FastAPI app, on a SQLite file seeded with an organization to look at.

Run it (it creates, migrates and seeds ``pages_example.sqlite3`` in the working directory; a second start
reuses the file as it is)::

    pip install "tenantkit[fastapi,ui,webhooks]" uvicorn
    python examples/pages_app.py              # prints http://127.0.0.1:8000/

The home page lists the seeded people of ``acme``; a click signs the browser in as one of them (a
STAND-IN for your login) and opens the team page. From there the navigation reaches the invitations, the
API keys, the audit log, the roles, the settings, the webhooks and the domains; each person sees and may do
what their role allows (``carol`` is a MEMBER: fewer pages, no forms). An invitation created on the team
page shows its link once: open it after signing in as the invitee to see the accept page. The audit log
filters by event type and day, and downloads what it shows as CSV or JSON Lines (``alice`` and ``bob``).

The seed: ``alice`` (OWNER), ``bob`` (ADMIN), ``carol`` (MEMBER) and ``dave`` (the organization's custom
role ``billing_clerk``), a pending invitation for ``erin@acme.example``, two API keys, a webhook endpoint
for ``examples/webhook_receiver.py`` on this machine (its deliveries wait for ``tenantkit webhooks work``),
the verified domain ``acme.example`` with an SSO connection, and ``acme.io`` waiting for its TXT record.
``tools/screenshots.py`` photographs these pages for the docs (``make screenshots``).
"""

from __future__ import annotations

import argparse
import html
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import Cookie, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import (
    HOST,
    InvitationSettings,
    PermissionRegistry,
    Permissions,
    Role,
    TenantKit,
    WebhookSettings,
)
from tenantkit.fastapi import Principal, TenantKitFastAPI

# Example-only secrets: in production each comes from your secret store.
EXAMPLE_PAGES_SECRET = "example-only-pages-secret-0123456789"
EXAMPLE_INVITATION_SECRET = "example-only-not-a-real-secret-0123"
EXAMPLE_WEBHOOK_KEY = "example-only-webhook-key-0123456789"

ORGANIZATION = "acme"
PREFIX = "/account"
# The seeded people: user id, verified email address, and what the home page says of them.
PEOPLE = (
    ("alice", "alice@acme.example", "OWNER"),
    ("bob", "bob@acme.example", "ADMIN"),
    ("carol", "carol@acme.example", "MEMBER"),
    ("dave", "dave@acme.example", "billing clerk (a custom role)"),
    ("erin", "erin@acme.example", "invited, not a member yet"),
)
SIGN_IN_COOKIE = "example_user"


def make_kit() -> TenantKit:
    """The kit: invitations, webhooks (delivering to this machine only) and two permissions of the app."""
    return TenantKit(
        invitations=InvitationSettings(secret_keys=[EXAMPLE_INVITATION_SECRET]),
        # Plain HTTP to 127.0.0.1 is for trying webhooks locally: by default only public HTTPS is reached.
        webhooks=WebhookSettings(
            secret_keys=[EXAMPLE_WEBHOOK_KEY], allow_http=True, allow_networks=["127.0.0.1/32"]
        ),
        permissions=Permissions(
            registry=PermissionRegistry(
                {
                    "billing:manage": "See and change the organization's billing",
                    "reports:read": "Read reports (the scope of the reports API key)",
                }
            )
        )
        .with_actions("billing:manage", Role.ADMIN)
        .with_actions("reports:read", Role.ADMIN),
    )


def seed(kit: TenantKit, engine: sa.Engine) -> bool:
    """Fill an empty database with ``acme``; a database that has it already is left alone (``False``)."""
    with kit.transaction(engine) as session:
        if kit.members.list_members(session, ORGANIZATION, actor=HOST, limit=1).items:
            return False
        # Your sign-up flow makes the creator the first OWNER (the host acting); alice does the rest, so the
        # audit log shows her as the actor.
        kit.members.add(session, ORGANIZATION, "alice", Role.OWNER, actor=HOST)
        # Registered before the members join, so that their member.added events queue deliveries to it.
        kit.webhooks.create_endpoint(
            session,
            ORGANIZATION,
            "http://127.0.0.1:8001/",
            ["member.added", "api_key.issued"],
            actor="alice",
            description="examples/webhook_receiver.py on this machine",
        )
        kit.roles.create(
            session,
            ORGANIZATION,
            "billing_clerk",
            name="Billing clerk",
            rank=Role.MEMBER,
            permissions=["billing:manage"],
            description="Sees and changes the billing, nothing else",
            actor="alice",
        )
        kit.members.add(session, ORGANIZATION, "bob", Role.ADMIN, actor="alice")
        kit.members.add(session, ORGANIZATION, "carol", Role.MEMBER, actor="alice")
        kit.members.add(session, ORGANIZATION, "dave", "billing_clerk", actor="alice")
        kit.invitations.create_email_invitation(
            session,
            ORGANIZATION,
            "erin@acme.example",
            Role.ADMIN,
            actor="alice",
            expires_in=timedelta(days=7),
        )
        deploy = kit.api_keys.issue(
            session,
            ORGANIZATION,
            "CI deploy",
            scopes=["reports:read"],
            expires=timedelta(days=90),
            actor="alice",
        )
        kit.api_keys.verify(session, deploy.reveal())  # used once: the dashboard shows when
        kit.api_keys.issue(session, ORGANIZATION, "Billing export", scopes=["billing:manage"], actor="bob")
        # acme.example is vouched for by the host (as a sign-up flow that checked it would); acme.io waits
        # for its TXT record, which the domains page shows with a Verify button.
        kit.domains.add(session, ORGANIZATION, "acme.example", actor="alice")
        kit.domains.confirm(session, ORGANIZATION, "acme.example", actor=HOST)
        kit.domains.add(session, ORGANIZATION, "acme.io", actor="alice")
        # Two settings of acme's own (the others keep the deployment's defaults).
        kit.organizations.update_settings(
            session,
            ORGANIZATION,
            {"api_key_max_lifetime": "365d", "link_invitation_domains": ["acme.example"]},
            expected_version=0,
            actor="alice",
        )
        kit.sso.create_connection(
            session,
            ORGANIZATION,
            provider="polis",
            protocol="saml",
            provider_connection_id="acme-okta",
            name="Acme Okta",
            actor="alice",
        )
    return True


def _home_page() -> str:
    people = "\n".join(
        f'<li><a href="/example-sign-in?user={user}&amp;email={email}">Sign in as {user}</a> '
        f"({html.escape(role)})</li>"
        for user, email, role in PEOPLE
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tenantkit pages example</title>'
        "</head><body><h1>tenantkit's drop-in pages</h1>"
        "<p>A stand-in for your login page: pick who you are (never deploy this).</p>"
        f"<ul>{people}</ul></body></html>"
    )


def create_app(database_url: str = "sqlite:///pages_example.sqlite3") -> FastAPI:
    """Migrate and seed ``database_url``, then build the app serving the pages under ``/account``."""
    kit = make_kit()
    engine = sa.create_engine(database_url)
    tenantkit.upgrade(engine)
    seed(kit, engine)

    def get_session() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as session:
            yield session

    # --- STAND-IN for your identity provider ------------------------------------------------------------
    # A real app reads the signed-in user from its verified session (Clerk, Auth0, WorkOS, your own login).
    # This one believes a cookie that GET /example-sign-in sets for anyone who asks: never deploy it.
    def current_user(example_user: Annotated[str | None, Cookie()] = None) -> Principal:
        user, _, email = (example_user or "").partition("|")
        if not user:
            raise HTTPException(401, "sign in first: open / and pick a user")
        return Principal(user_id=user, email=email or None, email_verified=bool(email))

    # -----------------------------------------------------------------------------------------------------

    tk = TenantKitFastAPI(kit, session=get_session, current_user=current_user)
    app = FastAPI(title="tenantkit pages example")
    app.state.engine = engine  # for a shutdown hook or a test: engine.dispose()
    tk.install(app)
    # The one line that mounts every page: /account/organizations/acme/team and the others beside it.
    app.include_router(tk.pages(secret_key=EXAMPLE_PAGES_SECRET), prefix=PREFIX)

    @app.get("/", response_class=HTMLResponse)
    def home() -> str:
        """STAND-IN for your login page: the seeded people to sign in as."""
        return _home_page()

    @app.get("/example-sign-in")
    def example_sign_in(user: str, email: str = "") -> RedirectResponse:
        """STAND-IN for your login: signs the browser in as ``user`` (never deploy it)."""
        response = RedirectResponse(f"{PREFIX}/organizations/{ORGANIZATION}/team", status_code=303)
        response.set_cookie(SIGN_IN_COOKIE, f"{user}|{email}", httponly=True, samesite="lax")
        return response

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite:///pages_example.sqlite3", help="SQLAlchemy URL")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    app = create_app(arguments.database)
    print(f"tenantkit's pages: http://127.0.0.1:{arguments.port}/ (pick a user to sign in as)", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=arguments.port, log_level="warning")


if __name__ == "__main__":
    main()
