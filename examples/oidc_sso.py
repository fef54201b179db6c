"""An OIDC identity provider in front of tenantkit's SSO policy, in FastAPI.

The protocol stays with the identity provider (Ory Polis, WorkOS, Auth0, Okta, Keycloak...); tenantkit
decides who may come in. The app:

1. ``GET /login?email=...``: home-realm discovery (``kit.sso.discover``) picks the organization's SSO
   connection; the browser is redirected to the issuer's authorize endpoint (authorization code flow with
   PKCE, ``state`` and ``nonce``, kept in a short-lived signed cookie);
2. ``GET /callback?code=...&state=...``: checks ``state``, exchanges the code (with the PKCE verifier) at the
   token endpoint, validates the ID token (RS256 signature against the issuer's JWKS; ``iss``, ``aud``,
   ``exp`` and ``nonce``), asks ``kit.sso.check_sso_login`` with the ``email`` and ``email_verified``
   claims (JIT creates the membership), and signs the user in with a signed session cookie;
3. ``GET /organizations/{organization_id}/members``: acts as
   ``Actor.user(user_id, authenticated_by=Authentication.sso(connection_id))``, so an organization whose
   ``require_sso`` setting is on accepts it only while that connection is one of its enabled connections.

Requirements (beside tenantkit)::

    pip install "tenantkit[fastapi]" httpx "PyJWT[crypto]" itsdangerous

Run it (``DATABASE_URL`` defaults to ``sqlite:///example.sqlite3``, migrated when it starts)::

    OIDC_ISSUER=https://login.example.com OIDC_CLIENT_ID=app OIDC_CLIENT_SECRET=... \
    OIDC_REDIRECT_URI=http://127.0.0.1:8000/callback SESSION_SECRET=... python examples/oidc_sso.py

The configuration comes from the environment (see :func:`config_from_environment`); with Ory Polis, the
issuer is Polis's external URL, the client id the connection's ``tenant=...&product=...`` and the secret
``dummy`` (see docs/domains-and-sso.md). ``tests/test_oidc_example.py`` runs the whole flow against a
stub issuer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import jwt
import sqlalchemy as sa
from fastapi import Cookie, FastAPI, HTTPException
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer

from tenantkit import Actor, Authentication, TenantKit
from tenantkit.errors import PermissionDeniedError, SsoLoginRefusedError, TenantKitError
from tenantkit.sso import SsoLogin

__all__ = [
    "OidcClient",
    "OidcConfig",
    "config_from_environment",
    "create_app",
    "finish_login",
    "login_in_progress",
    "main",
    "user_id_for",
]

FLOW_COOKIE = "oidc_flow"
SESSION_COOKIE = "session"
FLOW_MAX_AGE = 600  # seconds from the redirect to the callback
SESSION_MAX_AGE = 8 * 3600


@dataclass(frozen=True)
class OidcConfig:
    """Where the OIDC provider is and who the app is to it.

    Attributes:
        issuer: The issuer URL (its ``/.well-known/openid-configuration`` is read once).
        redirect_uri: This app's ``/callback``, as registered at the provider.
        client_secret: The app's client secret (Polis: ``dummy``; PKCE protects the code).
        client_id: The app's client id; ``None`` to use the discovered connection's
            ``provider_connection_id`` (Polis's ``tenant=...&product=...`` client ids).
        session_secret: Signs the flow and session cookies (from your secret store in production).
        secure_cookies: Send cookies over HTTPS only (leave on outside tests on plain HTTP).
    """

    issuer: str
    redirect_uri: str
    client_secret: str = field(repr=False)
    session_secret: str = field(repr=False)
    client_id: str | None = None
    secure_cookies: bool = True


def config_from_environment() -> OidcConfig:
    """The configuration from ``OIDC_ISSUER``, ``OIDC_REDIRECT_URI``, ``OIDC_CLIENT_SECRET``,
    ``SESSION_SECRET`` and (optional) ``OIDC_CLIENT_ID``."""
    return OidcConfig(
        issuer=os.environ["OIDC_ISSUER"],
        redirect_uri=os.environ["OIDC_REDIRECT_URI"],
        client_secret=os.environ["OIDC_CLIENT_SECRET"],
        session_secret=os.environ["SESSION_SECRET"],
        client_id=os.environ.get("OIDC_CLIENT_ID"),
    )


def user_id_for(issuer: str, subject: str) -> str:
    """The host's user id for an identity: your users table would map (``iss``, ``sub``) to it."""
    return "u_" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:24]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class OidcClient:
    """The relying party's side of the authorization code flow (discovery, token exchange, ID token)."""

    def __init__(self, config: OidcConfig, http: httpx.Client | None = None) -> None:
        self.config = config
        self.http = http or httpx.Client(timeout=10.0)
        self._metadata: dict[str, Any] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            response = self.http.get(url)
            response.raise_for_status()
            metadata: dict[str, Any] = response.json()
            if metadata.get("issuer") != self.config.issuer:
                raise ValueError("the discovery document names another issuer")
            self._metadata = metadata
        return self._metadata

    def authorize_url(self, client_id: str, state: str, nonce: str, verifier: str, email: str) -> str:
        challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.config.redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "login_hint": email,
        }
        return f"{self.metadata['authorization_endpoint']}?{urlencode(query)}"

    def exchange(self, client_id: str, code: str, verifier: str) -> str:
        """The ID token the token endpoint answers for ``code`` (client_secret_post, the PKCE verifier)."""
        response = self.http.post(
            self.metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.config.redirect_uri,
                "client_id": client_id,
                "client_secret": self.config.client_secret,
                "code_verifier": verifier,
            },
        )
        response.raise_for_status()
        return str(response.json()["id_token"])

    def validate(self, id_token: str, client_id: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature (the issuer's JWKS), iss, aud, exp and nonce hold.

        Raises:
            jwt.InvalidTokenError: Any of them does not.
        """
        keys = self.http.get(self.metadata["jwks_uri"])
        keys.raise_for_status()
        kid = jwt.get_unverified_header(id_token).get("kid")
        key = next((k for k in jwt.PyJWKSet.from_dict(keys.json()).keys if k.key_id == kid), None)
        if key is None:
            raise jwt.InvalidTokenError("no key of the issuer's JWKS signed it")
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=self.config.issuer,
            options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
        )
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            raise jwt.InvalidTokenError("the nonce is not this login's")
        return claims


def login_in_progress(flows: URLSafeTimedSerializer, cookie: str | None, state: str) -> dict[str, str]:
    """The login the flow cookie holds, when the callback's ``state`` is its own (400 otherwise)."""
    try:
        flow: dict[str, str] = flows.loads(cookie or "", max_age=FLOW_MAX_AGE)
    except BadSignature:
        raise HTTPException(400, "no login in progress") from None
    if not hmac.compare_digest(flow["state"], state):
        raise HTTPException(400, "the state is not this login's")
    return flow


def finish_login(
    kit: TenantKit, engine: sa.Engine, oidc: OidcClient, flow: dict[str, str], code: str
) -> SsoLogin:
    """Exchange the code, validate the ID token, and ask tenantkit's policy (HTTP errors when refused)."""
    try:
        id_token = oidc.exchange(flow["client_id"], code, flow["verifier"])
        claims = oidc.validate(id_token, flow["client_id"], flow["nonce"])
    except (httpx.HTTPError, jwt.InvalidTokenError) as exc:
        raise HTTPException(401, f"the ID token was refused: {type(exc).__name__}") from None
    try:
        with kit.transaction(engine) as session:
            return kit.sso.check_sso_login(
                session,
                flow["connection_id"],
                email=str(claims.get("email", "")),
                email_verified=claims.get("email_verified") is True,
                user_id=user_id_for(str(claims["iss"]), str(claims["sub"])),
                claims=claims,
            )
    except SsoLoginRefusedError as exc:
        raise HTTPException(403, {"code": exc.code, "reason": exc.reason}) from None
    except TenantKitError as exc:  # a malformed email, say
        raise HTTPException(403, {"code": exc.code}) from None


def create_app(
    kit: TenantKit, engine: sa.Engine, config: OidcConfig, http: httpx.Client | None = None
) -> FastAPI:
    """The app: ``/login``, ``/callback`` and one route acting as the SSO-signed-in user."""
    oidc = OidcClient(config, http)
    flows = URLSafeTimedSerializer(config.session_secret, salt="oidc-flow")
    sessions = URLSafeTimedSerializer(config.session_secret, salt="session")
    app = FastAPI(title="tenantkit behind OIDC")

    @app.get("/login")
    def login(email: str) -> RedirectResponse:
        with kit.transaction(engine) as session:
            realm = kit.sso.discover(session, email)
        if realm.sso == "none" or realm.connection_id is None or realm.provider_connection_id is None:
            # No SSO for this email: your password (or magic link) login takes over here.
            raise HTTPException(409, "no SSO connection for this email; sign in with a password")
        client_id = config.client_id or realm.provider_connection_id
        flow = {
            "state": secrets.token_urlsafe(32),
            "nonce": secrets.token_urlsafe(32),
            "verifier": secrets.token_urlsafe(64),
            "connection_id": realm.connection_id,
            "client_id": client_id,
        }
        url = oidc.authorize_url(client_id, flow["state"], flow["nonce"], flow["verifier"], email)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            FLOW_COOKIE,
            flows.dumps(flow),
            max_age=FLOW_MAX_AGE,
            httponly=True,
            secure=config.secure_cookies,
            samesite="lax",  # the provider's redirect back is a top-level GET
        )
        return response

    @app.get("/callback")
    def callback(
        state: str,
        code: str | None = None,
        error: str | None = None,
        oidc_flow: Annotated[str | None, Cookie()] = None,
    ) -> RedirectResponse:
        flow = login_in_progress(flows, oidc_flow, state)
        if error is not None or code is None:
            raise HTTPException(401, f"the identity provider refused the login: {error}")
        accepted = finish_login(kit, engine, oidc, flow, code)
        user_id, organization_id = accepted.member.user_id, accepted.connection.organization_id
        response = RedirectResponse(f"/organizations/{organization_id}/members", status_code=303)
        response.delete_cookie(FLOW_COOKIE)
        response.set_cookie(
            SESSION_COOKIE,
            sessions.dumps({"user_id": user_id, "connection_id": flow["connection_id"]}),
            max_age=SESSION_MAX_AGE,
            httponly=True,
            secure=config.secure_cookies,
            samesite="lax",
        )
        return response

    def signed_in(cookie: str | None) -> Actor:
        try:
            data: dict[str, str] = sessions.loads(cookie or "", max_age=SESSION_MAX_AGE)
        except BadSignature:
            raise HTTPException(401, "sign in first") from None
        return Actor.user(data["user_id"], authenticated_by=Authentication.sso(data["connection_id"]))

    @app.get("/organizations/{organization_id}/members")
    def members(
        organization_id: str, session_cookie: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None
    ) -> dict[str, Any]:
        actor = signed_in(session_cookie)
        try:
            with kit.transaction(engine) as session:
                page = kit.members.list_members(session, organization_id, actor=actor)
        except PermissionDeniedError as exc:  # SsoRequiredError among them
            raise HTTPException(403, {"code": exc.code}) from None
        return {
            "me": actor.id,
            "members": [{"user_id": m.user_id, "role": m.role.value} for m in page.items],
        }

    return app


def main() -> None:
    """Serve the app with uvicorn on the environment's configuration, its database migrated first."""
    import uvicorn

    import tenantkit

    engine = sa.create_engine(os.environ.get("DATABASE_URL", "sqlite:///example.sqlite3"))
    tenantkit.upgrade(engine)
    uvicorn.run(create_app(TenantKit(), engine, config_from_environment()), host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
