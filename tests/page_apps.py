"""The same small host application with tenantkit's pages mounted, on FastAPI and on Flask.

The identity provider is a **test stand-in**: ``GET /sign-in?user=alice&email=alice@acme.example`` puts the
user in a cookie that ``current_user`` believes (``&locale=de&time_zone=America/New_York`` adds the user's
language and zone). Real hosts read a verified session of their own.
"""

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import flask
import sqlalchemy as sa
from fastapi import Cookie, Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    ApiKeyVerification,
    InvitationSettings,
    Permissions,
    Role,
    TenantKit,
    WebhookSettings,
)
from tenantkit.domains import TxtResolver
from tenantkit.fastapi import Principal, TenantKitFastAPI
from tenantkit.flask import TenantKitFlask, current_api_key

PAGES_SECRET = "pages-test-secret-0123456789abcdef"
INVITATION_SECRET = "pages-test-invitation-secret-0123456789"
WEBHOOK_SECRET = "pages-test-webhook-secret-0123456789"
ORGANIZATION = "acme"
OWNER = "alice"
OWNER_EMAIL = "alice@acme.example"
PREFIX = "/account"


def make_kit(
    *, webhooks: bool = False, dns_resolver: TxtResolver | None = None, permissions: Permissions | None = None
) -> TenantKit:
    """The pages' kit; ``webhooks=True`` adds the webhook key (and so the webhook pages)."""
    return TenantKit(
        permissions=permissions,
        invitations=InvitationSettings(secret_keys=[INVITATION_SECRET]),
        webhooks=WebhookSettings(secret_keys=[WEBHOOK_SECRET]) if webhooks else None,
        dns_resolver=dns_resolver,
    )


def seed(kit: TenantKit, engine: sa.Engine) -> None:
    """Organization ``acme`` with ``alice`` as its only OWNER."""
    with kit.transaction(engine) as session:
        kit.members.add(session, ORGANIZATION, OWNER, Role.OWNER, actor=HOST)


def add_sso_connection(kit: TenantKit, session: Session, *, jit: bool = False) -> Any:
    """Acme's WorkOS SAML connection "Acme Okta" (``conn_1``), created by the host."""
    return kit.sso.create_connection(
        session,
        ORGANIZATION,
        provider="workos",
        protocol="saml",
        provider_connection_id="conn_1",
        name="Acme Okta",
        actor=HOST,
        jit=jit,
    )


def _principal(value: str | None) -> Principal | None:
    """The stand-in sign-in cookie: ``user|email|locale|time_zone``."""
    if not value:
        return None
    user, email, locale, time_zone = [*value.split("|"), "", "", ""][:4]
    return Principal(
        user_id=user,
        email=email or None,
        email_verified=bool(email),
        locale=locale or None,
        time_zone=time_zone or None,
    )


def fastapi_app(kit: TenantKit, engine: sa.Engine, **pages: Any) -> FastAPI:
    """The FastAPI host; ``pages`` go to ``tk.pages()`` (``translations=``, ``time_zone=``)."""

    def get_session() -> Iterator[Session]:
        with Session(engine, expire_on_commit=False) as session:
            yield session

    def current_user(signed_in: Annotated[str | None, Cookie()] = None) -> Principal:
        principal = _principal(signed_in)
        if principal is None:
            raise HTTPException(401, "sign in first")
        return principal

    tk = TenantKitFastAPI(kit, session=get_session, current_user=current_user)
    app = FastAPI()
    tk.install(app)
    app.include_router(tk.pages(secret_key=PAGES_SECRET, **pages), prefix=PREFIX)

    @app.get("/sign-in")
    def sign_in(user: str, email: str = "", locale: str = "", time_zone: str = "") -> RedirectResponse:
        response = RedirectResponse(f"{PREFIX}/organizations/{ORGANIZATION}/team", status_code=303)
        response.set_cookie(
            "signed_in", f"{user}|{email}|{locale}|{time_zone}", httponly=True, samesite="lax"
        )
        return response

    @app.get("/api/reports")
    def reports(key: Annotated[ApiKeyVerification, Depends(tk.api_key("reports:read"))]) -> JSONResponse:
        return JSONResponse({"organization_id": key.organization_id})

    return app


def flask_app(
    kit: TenantKit, engine: sa.Engine, configure: Callable[[flask.Flask], Any] | None = None, **pages: Any
) -> flask.Flask:
    """The Flask host; ``pages`` go to ``tk.pages_blueprint()`` (``translations=``, ``time_zone=``), and
    ``configure`` sees the app before the pages are registered (Flask-WTF's ``CSRFProtect``, say)."""

    app = flask.Flask(__name__)
    if configure is not None:
        configure(app)

    def get_session() -> Session:
        if "session" not in flask.g:
            flask.g.session = Session(engine, expire_on_commit=False)
        session: Session = flask.g.session
        return session

    @app.teardown_appcontext
    def close(_: BaseException | None) -> None:
        session = flask.g.pop("session", None)
        if session is not None:
            session.close()

    def current_user() -> Principal:
        principal = _principal(flask.request.cookies.get("signed_in"))
        if principal is None:
            flask.abort(401)
        return principal

    tk = TenantKitFlask(kit, session=get_session, current_user=current_user, app=app)
    app.register_blueprint(tk.pages_blueprint(secret_key=PAGES_SECRET, **pages), url_prefix=PREFIX)

    @app.get("/sign-in")
    def sign_in() -> Any:
        user = flask.request.args["user"]
        email = flask.request.args.get("email", "")
        locale = flask.request.args.get("locale", "")
        time_zone = flask.request.args.get("time_zone", "")
        response = flask.redirect(f"{PREFIX}/organizations/{ORGANIZATION}/team", code=303)
        response.set_cookie(
            "signed_in", f"{user}|{email}|{locale}|{time_zone}", httponly=True, samesite="Lax"
        )
        return response

    @app.get("/api/reports")
    @tk.require_api_key("reports:read")
    def reports() -> Any:
        return {"organization_id": current_api_key().organization_id}

    return app


APP_BUILDERS: dict[str, Callable[..., Any]] = {"fastapi": fastapi_app, "flask": flask_app}
