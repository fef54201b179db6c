"""The pages' protections: a signed double-submit CSRF token, an ``Origin`` check, and the response headers.

Every state-changing page request is a ``POST`` that must carry, in its form, the token derived from the
browser's CSRF cookie, and (when the browser sends one, as every current browser does on a ``POST``) an
``Origin`` equal to the page's own. The cookie is ``HttpOnly`` and ``SameSite=Lax``; the token in the form is
the cookie's value signed with the pages' secret (itsdangerous), so a value planted in the cookie by a
sibling subdomain is useless without the secret. A provider keeping its secret in the host's session instead
(:class:`SessionCsrfTokens`, Flask-WTF's on Flask) needs no cookie of the pages.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from itsdangerous import BadSignature, URLSafeSerializer

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "FLASH_COOKIE",
    "PAGE_HEADERS",
    "CsrfTokens",
    "SessionCsrfTokens",
    "SignedDoubleSubmit",
]

CSRF_COOKIE = "tenantkit_csrf"
CSRF_FIELD = "csrf_token"
FLASH_COOKIE = "tenantkit_flash"

# No inline script or style anywhere: the stylesheet and the scripts are files of the package; htmx's
# requests go to the pages' own origin only (connect-src).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # The accept page's URL carries the invitation token: never hand it to another site ("no-referrer" would
    # also make browsers send "Origin: null" on the pages' own form posts, which the Origin check refuses).
    ("Referrer-Policy", "same-origin"),
)


class CsrfTokens(Protocol):
    """What the pages need of a CSRF token provider (pluggable: ``tk.pages(csrf=...)``)."""

    def new_cookie(self) -> str:
        """A fresh value for the browser's CSRF cookie."""
        ...

    def token_for(self, cookie: str) -> str:
        """The token the pages' forms carry for the browser holding ``cookie``."""
        ...

    def valid(self, cookie: str | None, token: str | None) -> bool:
        """Whether ``token`` is the one for ``cookie`` (compared in constant time)."""
        ...


@runtime_checkable
class SessionCsrfTokens(CsrfTokens, Protocol):
    """A :class:`CsrfTokens` provider whose secret lives in the host's session, not in the pages' cookie.

    Flask-WTF's tokens are such a provider (:class:`tenantkit.ui.FlaskWtfTokens`). For it the pages set no
    ``tenantkit_csrf`` cookie: they call ``token_for("")`` and ``valid(None, token)``, so it ignores the
    cookie arguments, and the forms carry its token in its own field, ``form_field()``.
    """

    def form_field(self) -> str:
        """The form field carrying the token, asked on each request (a host's configuration may name it)."""
        ...


class SignedDoubleSubmit:
    """The default provider: a random cookie, and the form token that is the cookie signed with ``secret``."""

    def __init__(self, secret: str | bytes) -> None:
        if not secret or len(secret) < 16:
            raise ValueError("the pages' secret_key must be at least 16 characters")
        self._serializer = URLSafeSerializer(secret, salt="tenantkit.pages.csrf")

    def new_cookie(self) -> str:
        return secrets.token_urlsafe(32)

    def token_for(self, cookie: str) -> str:
        return str(self._serializer.dumps(cookie))

    def valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        try:
            signed = self._serializer.loads(token)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed.encode(), cookie.encode())


class FlashSigner:
    """Signs the one-line result message carried to the next page by a cookie (never a secret)."""

    def __init__(self, secret: str | bytes) -> None:
        self._serializer = URLSafeSerializer(secret, salt="tenantkit.pages.flash")

    def dumps(self, message: object) -> str:
        """``message``: a JSON value (the pages carry a message id and its values, translated when shown)."""
        return str(self._serializer.dumps(message))

    def loads(self, value: str | None) -> object:
        """The JSON value signed in ``value``, ``None`` when absent or not signed by this secret."""
        if not value:
            return None
        try:
            message: object = self._serializer.loads(value)
        except BadSignature:
            return None
        return message


def same_origin(origin: str | None, own_origin: str) -> bool:
    """Whether a request's ``Origin`` header allows it: absent (older clients), or the page's own origin."""
    if origin is None:
        return True
    return hmac.compare_digest(origin.rstrip("/").lower().encode(), own_origin.rstrip("/").lower().encode())


def first(form: Mapping[str, list[str]], name: str) -> str | None:
    """The first value of a form field, ``None`` when absent."""
    values = form.get(name)
    return values[0] if values else None
