"""The same small application built on each web adapter, and one client interface to call either.

Used by the HTTP contract suite and the HTTP fuzz tests: every request goes through :class:`HttpClient`,
so a test cannot tell (and must not care) which framework answers it.

The identity provider is a **test stand-in**: the ``X-User``, ``X-Email`` and ``X-Email-Verified`` request
headers name the signed-in user, and ``X-Claims`` (JSON) what the host vouches for about them. Real
applications get the user from their identity provider's session or token, never from a header the client
chooses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import flask
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenantkit import ApiKeyVerification, InvalidInputError, InvitationSettings, TenantKit, WebhookSettings
from tenantkit.fastapi import Authorization, Principal, TenantKitFastAPI
from tenantkit.flask import TenantKitFlask, current_api_key, current_authorization
from tenantkit.roles._policy import Action

ADAPTERS = ("fastapi", "flask")
INVITATION_SECRET = "contract-suite-invitation-secret-0123456789"
WEBHOOK_KEY = "contract-suite-webhook-key-0123456789"
REPORTS_SCOPE = "reports:read"
METERED_COST = 1  # the usage credits a request to /metered spends, for keys with credits


class Reply(NamedTuple):
    """An HTTP answer: status, decoded JSON body (``None`` when not JSON) and headers."""

    status: int
    json: Any
    headers: Any  # the framework's own case-insensitive header object


RequestHeaders = Mapping[str, str] | Sequence[tuple[str, str]]
"""Request headers: a mapping, or pairs when a header is sent more than once."""


def _header_list(headers: RequestHeaders | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


class HttpClient(Protocol):
    """Calls an application the same way whichever framework serves it."""

    adapter: str

    def request(
        self,
        method: str,
        path: str,
        json: object = None,
        headers: RequestHeaders | None = None,
        *,
        content: bytes | None = None,
    ) -> Reply: ...


def principal_from_headers(headers: Any) -> Principal:
    """TEST STAND-IN for an identity provider: the signed-in user is whoever ``X-User`` names."""
    user = headers.get("X-User")
    if user is None:
        raise InvalidInputError("X-User", "names the signed-in user (test stand-in for an identity provider)")
    verified = (headers.get("X-Email-Verified") or "").strip().lower() == "true"
    # What the host vouches for (its identity provider, a licence registry it asked): here, a JSON header.
    claims = json.loads(headers.get("X-Claims") or "{}")
    return Principal(user_id=user, email=headers.get("X-Email"), email_verified=verified, claims=claims)


def _key_body(verified: ApiKeyVerification) -> dict[str, object]:
    return {
        "organization_id": verified.organization_id,
        "key_id": verified.key_id,
        "scopes": list(verified.scopes),
    }


def _authorization_body(authorization: Authorization) -> dict[str, object]:
    role = None if authorization.role is None else authorization.role.value
    return {"organization_id": authorization.organization_id, "user_id": authorization.user_id, "role": role}


def build_fastapi(kit: TenantKit, engine: sa.Engine) -> FastAPI:
    """The management router under ``/tk`` and four protected routes, on FastAPI."""

    def session() -> Iterator[Session]:
        with Session(engine) as opened:
            yield opened

    def current_user(request: Request) -> Principal:
        return principal_from_headers(request.headers)

    tk = TenantKitFastAPI(kit, session=session, current_user=current_user)
    app = FastAPI()
    tk.install(app)
    app.include_router(tk.router(), prefix="/tk")

    reports_key = tk.api_key(REPORTS_SCOPE)
    any_key = tk.api_key()
    metered_key = tk.api_key(cost=METERED_COST)
    may_remove_members = tk.permission(Action.REMOVE_MEMBERS)

    @app.get("/reports")
    def reports(key: ApiKeyVerification = Depends(reports_key)) -> dict[str, object]:
        return _key_body(key)

    @app.get("/whoami-key")
    def whoami_key(key: ApiKeyVerification = Depends(any_key)) -> dict[str, object]:
        return _key_body(key)

    @app.get("/metered")
    def metered(key: ApiKeyVerification = Depends(metered_key)) -> dict[str, object]:
        return {**_key_body(key), "credits_remaining": key.credits_remaining}

    @app.post("/orgs/{organization_id}/danger")
    def danger(authorization: Authorization = Depends(may_remove_members)) -> dict[str, object]:
        return _authorization_body(authorization)

    return app


def build_flask(kit: TenantKit, engine: sa.Engine) -> flask.Flask:
    """The management blueprint under ``/tk`` and four protected routes, on Flask."""
    app = flask.Flask(__name__)
    app.config["TESTING"] = True

    def session() -> Session:
        if "db_session" not in flask.g:
            flask.g.db_session = Session(engine)
        opened: Session = flask.g.db_session
        return opened

    @app.teardown_appcontext
    def close_session(error: BaseException | None) -> None:
        opened = flask.g.pop("db_session", None)
        if opened is not None:
            opened.close()

    tk = TenantKitFlask(
        kit, session=session, current_user=lambda: principal_from_headers(flask.request.headers)
    )
    tk.init_app(app)
    app.register_blueprint(tk.blueprint(), url_prefix="/tk")

    @app.get("/reports")
    @tk.require_api_key(REPORTS_SCOPE)
    def reports() -> dict[str, object]:
        return _key_body(current_api_key())

    @app.get("/whoami-key")
    @tk.require_api_key()
    def whoami_key() -> dict[str, object]:
        assert flask.g.tenantkit_api_key is current_api_key()
        return _key_body(current_api_key())

    @app.get("/metered")
    @tk.require_api_key(cost=METERED_COST)
    def metered() -> dict[str, object]:
        key = current_api_key()
        return {**_key_body(key), "credits_remaining": key.credits_remaining}

    @app.post("/orgs/<organization_id>/danger")
    @tk.require_permission(Action.REMOVE_MEMBERS)
    def danger(organization_id: str) -> dict[str, object]:
        return _authorization_body(current_authorization())

    return app


class FastAPIClient:
    """:class:`HttpClient` over FastAPI's ``TestClient``."""

    adapter = "fastapi"

    def __init__(self, app: FastAPI) -> None:
        self._client = TestClient(app)

    def request(
        self,
        method: str,
        path: str,
        json: object = None,
        headers: RequestHeaders | None = None,
        *,
        content: bytes | None = None,
    ) -> Reply:
        if content is not None:
            response = self._client.request(method, path, content=content, headers=_header_list(headers))
        elif json is not None:
            response = self._client.request(method, path, json=json, headers=_header_list(headers))
        else:
            response = self._client.request(method, path, headers=_header_list(headers))
        return Reply(
            response.status_code,
            _decode(response.headers.get("content-type"), response.content),
            response.headers,
        )


class FlaskClient:
    """:class:`HttpClient` over Flask's test client."""

    adapter = "flask"

    def __init__(self, app: flask.Flask) -> None:
        self._client = app.test_client()

    def request(
        self,
        method: str,
        path: str,
        json: object = None,
        headers: RequestHeaders | None = None,
        *,
        content: bytes | None = None,
    ) -> Reply:
        if content is not None:
            response = self._client.open(path, method=method, data=content, headers=_header_list(headers))
        elif json is not None:
            response = self._client.open(path, method=method, json=json, headers=_header_list(headers))
        else:
            response = self._client.open(path, method=method, headers=_header_list(headers))
        return Reply(
            response.status_code,
            _decode(response.headers.get("Content-Type"), response.data),
            response.headers,
        )


def _decode(content_type: str | None, data: bytes) -> Any:
    if content_type is None or not content_type.startswith("application/json"):
        return None
    return json.loads(data)


BUILDERS: Mapping[str, Callable[[TenantKit, sa.Engine], HttpClient]] = {
    "fastapi": lambda kit, engine: FastAPIClient(build_fastapi(kit, engine)),
    "flask": lambda kit, engine: FlaskClient(build_flask(kit, engine)),
}


def make_kit(**options: Any) -> TenantKit:
    """A kit with invitations on, as both applications use it."""
    return TenantKit(invitations=InvitationSettings(secret_keys=[INVITATION_SECRET]), **options)


def make_webhook_kit(**options: Any) -> TenantKit:
    """A kit with invitations and webhooks on, whose sender may reach a test receiver on 127.0.0.1.

    With webhooks configured the router and the blueprint mount the ``webhooks`` feature as well.
    """
    webhooks = WebhookSettings(
        secret_keys=[WEBHOOK_KEY], allow_http=True, allow_networks=["127.0.0.1/32"], timeout="2s", lease="10s"
    )
    return make_kit(webhooks=webhooks, **options)
