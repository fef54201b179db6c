"""A stub OIDC issuer on 127.0.0.1: a real HTTP server thread serving discovery, JWKS, authorize and token.

It is as strict as a provider where the relying party's correctness shows (the registered client and
redirect URI, the one-time code, the PKCE S256 verifier, the client secret), signs RS256 ID tokens with a key
it publishes in its JWKS, and can be told to misbehave (``misbehave``) as an attacker in the middle would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["Account", "StubIssuer", "stub_issuer"]

Misbehaviour = Literal["foreign_key", "tampered", "wrong_nonce", "wrong_audience", "expired"] | None


@dataclass
class Account:
    """A user the identity provider knows (its IT admin may have typed any email)."""

    subject: str
    email_verified: bool = True
    email: str | None = None  # the email it asserts, when not the one the user typed


@dataclass
class StubIssuer:
    """The issuer's state: its clients, accounts, codes handed out, and how it misbehaves next."""

    clients: dict[str, str]  # client id -> client secret
    redirect_uris: tuple[str, ...]
    accounts: dict[str, Account] = field(default_factory=dict)
    misbehave: Misbehaviour = None
    url: str = ""
    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    kid: str = "stub-key-1"
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens_issued: int = 0

    def jwks(self) -> dict[str, Any]:
        public: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def id_token(self, grant: dict[str, str]) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": grant["client_id"],
            "sub": self.accounts[grant["email"]].subject,
            "email": self.accounts[grant["email"]].email or grant["email"],
            "email_verified": self.accounts[grant["email"]].email_verified,
            "nonce": grant["nonce"],
            "iat": now,
            "exp": now + 300,
        }
        key: rsa.RSAPrivateKey = self.key
        if self.misbehave == "wrong_nonce":
            claims["nonce"] = "a-nonce-of-another-login"
        elif self.misbehave == "wrong_audience":
            claims["aud"] = "another-client"
        elif self.misbehave == "expired":
            claims["iat"], claims["exp"] = now - 3600, now - 1800
        elif self.misbehave == "foreign_key":
            key = rsa.generate_private_key(65537, 2048)  # an attacker's key, claiming the issuer's kid
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})
        if self.misbehave == "tampered":
            header, payload, signature = token.split(".")
            changed = {**claims, "email": "admin@example.com"}
            payload = base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()
            token = f"{header}.{payload}.{signature}"
        self.tokens_issued += 1
        return token


class _Handler(BaseHTTPRequestHandler):
    issuer: StubIssuer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        if url.path == "/.well-known/openid-configuration":
            self._json(
                200,
                {
                    "issuer": self.issuer.url,
                    "authorization_endpoint": f"{self.issuer.url}/authorize",
                    "token_endpoint": f"{self.issuer.url}/token",
                    "jwks_uri": f"{self.issuer.url}/jwks",
                    "response_types_supported": ["code"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "code_challenge_methods_supported": ["S256"],
                },
            )
        elif url.path == "/jwks":
            self._json(200, self.issuer.jwks())
        elif url.path == "/authorize":
            self._authorize(query)
        else:
            self._json(404, {"error": "not_found"})

    def _authorize(self, query: dict[str, str]) -> None:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") not in self.issuer.clients or redirect_uri not in self.issuer.redirect_uris:
            self._json(400, {"error": "invalid_client"})  # never redirect to an unregistered URI
            return
        back: dict[str, str] = {"state": query.get("state", "")}
        email = query.get("login_hint", "")
        if (
            query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
            or "openid" not in query.get("scope", "").split()
        ):
            back["error"] = "invalid_request"
        elif email not in self.issuer.accounts:
            back["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(24)
            self.issuer.codes[code] = {
                "client_id": query["client_id"],
                "redirect_uri": redirect_uri,
                "nonce": query.get("nonce", ""),
                "code_challenge": query["code_challenge"],
                "email": email,
            }
            back["code"] = code
        self.send_response(302)
        self.send_header("Location", f"{redirect_uri}?{urlencode(back)}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/token":
            self._json(404, {"error": "not_found"})
            return
        length = int(self.headers.get("Content-Length", "0"))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        grant = self.issuer.codes.pop(form.get("code", ""), None)  # a code is good once
        if form.get("grant_type") != "authorization_code" or grant is None:
            self._json(400, {"error": "invalid_grant"})
            return
        client_id = form.get("client_id", "")
        if (
            client_id != grant["client_id"]
            or not secrets.compare_digest(self.issuer.clients[client_id], form.get("client_secret", ""))
            or form.get("redirect_uri") != grant["redirect_uri"]
        ):
            self._json(401, {"error": "invalid_client"})
            return
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["code_challenge"]:
            self._json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
            return
        self._json(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                         "id_token": self.issuer.id_token(grant)})  # fmt: skip


@contextmanager
def stub_issuer(issuer: StubIssuer) -> Iterator[StubIssuer]:
    """Serve ``issuer`` on 127.0.0.1 (a free port) in a thread while the block runs; ``issuer.url`` is set."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"issuer": issuer}))
    issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
