"""Starlette integration: API keys checked by an ``AuthenticationBackend``, before routing.

Install with ``pip install "tenantkit[starlette]"`` (FastAPI brings Starlette too)::

    from starlette.applications import Starlette
    from starlette.authentication import requires

    from tenantkit.starlette import ApiKeyBackend

    backend = ApiKeyBackend(kit, database=engine)
    app = Starlette(routes=routes, middleware=[backend.middleware()], lifespan=backend.lifespan())

    @requires("reports:read")
    async def reports(request):
        return JSONResponse({"organization": request.user.organization_id})

Every request's key (``Authorization: Bearer …`` or ``X-API-Key``) is verified by Starlette's
``AuthenticationMiddleware`` before any route runs: a valid key becomes ``request.user`` (an
:class:`ApiKeyUser`) and ``request.auth.scopes`` (``"authenticated"`` and the key's scopes, so that
``requires("reports:read")`` works); an invalid key is answered 401 with tenantkit's JSON error body and
``WWW-Authenticate``, exactly as the FastAPI and Flask adapters answer it; a request with no key goes on
unauthenticated, for the routes to decide (``requires`` answers it 403, as Starlette does).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.authentication import AuthenticationError as StarletteAuthenticationError
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from tenantkit._asgi import (
    check_database,
    check_flush_every,
    complete_on_database,
    running_bus,
    writing_last_used,
)
from tenantkit._asgi import flush_last_used as _flush_last_used
from tenantkit._errors import InvalidApiKeyError, TenantKitError
from tenantkit._http import AsgiClient, api_key_from_scope, error_body, error_headers, status_for
from tenantkit._kit import TenantKit
from tenantkit._settings import HttpSettings
from tenantkit.api_keys._service import (
    ApiKeyService,
    ApiKeyVerification,
    PendingVerification,
    refusal_error,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    # Imported at run time only for an async engine: the extension needs greenlet (tenantkit[async]).
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tenantkit.bus._base import InvalidationBus

__all__ = ["AUTHENTICATED", "ApiKeyAuthenticationError", "ApiKeyBackend", "ApiKeyUser"]

AUTHENTICATED = "authenticated"
"""The scope every verified key holds in ``request.auth.scopes`` beside its own scopes."""


class ApiKeyUser(BaseUser):
    """The API key a request authenticated with, as Starlette's ``request.user``.

    ``display_name`` is the key's name, ``identity`` its id; :attr:`verification` is the whole
    :class:`~tenantkit.ApiKeyVerification`. Scope everything a route reads by :attr:`organization_id`.
    """

    def __init__(self, verification: ApiKeyVerification) -> None:
        if not verification.valid or verification.organization_id is None or verification.key_id is None:
            raise ValueError("an ApiKeyUser stands for a valid key only")
        self.verification: ApiKeyVerification = verification
        """What :meth:`~tenantkit.api_keys.ApiKeyService.verify` answered for the request's key."""

    @property
    def is_authenticated(self) -> bool:
        """Always ``True``: a request without a valid key has Starlette's ``UnauthenticatedUser`` instead."""
        return True

    @property
    def display_name(self) -> str:
        """The key's name, as it was issued (``"CI"``, ``"billing export"``)."""
        return self.verification.name or ""

    @property
    def identity(self) -> str:
        """The key's id, the same in every request made with it (what `tenantkit keys list` shows)."""
        return self.verification.key_id or ""

    @property
    def organization_id(self) -> str:
        """The organization the key belongs to."""
        return self.verification.organization_id or ""

    @property
    def scopes(self) -> tuple[str, ...]:
        """The key's own scopes (``request.auth.scopes`` adds ``"authenticated"``)."""
        return self.verification.scopes

    def __repr__(self) -> str:
        return f"ApiKeyUser(key_id={self.identity!r}, organization_id={self.organization_id!r})"


class ApiKeyAuthenticationError(StarletteAuthenticationError):
    """A request's key is refused: Starlette's ``AuthenticationError``, carrying tenantkit's error.

    Raised by :meth:`ApiKeyBackend.authenticate` for an invalid or ambiguous key (an
    :class:`~tenantkit.errors.InvalidApiKeyError`), and for any other tenantkit error met while verifying (a
    database whose schema is out of date, say), so that the middleware's ``on_error`` answers it.
    """

    def __init__(self, error: TenantKitError) -> None:
        super().__init__(str(error))
        self.error: TenantKitError = error
        """The tenantkit error to answer: its code, status and body."""


class ApiKeyBackend(AuthenticationBackend):
    """Starlette's ``AuthenticationBackend`` for tenantkit API keys.

    A key answered from memory (a cache hit, a malformed key, a negative-cache hit) opens no connection and
    no thread; any other opens one connection of ``database`` for the lookup (an ``AsyncEngine``'s through
    ``run_sync``, without the thread pool; an ``Engine``'s in the thread pool), and commits on it only when
    the verification wrote ``last_used_at``.

    Mount it with :meth:`middleware`, which also installs :meth:`on_error`: Starlette's own default would
    answer a refused key 400, in plain text.

    Args:
        kit: The configured :class:`~tenantkit.TenantKit`, or its :class:`~tenantkit.api_keys.ApiKeyService`.
        database: The ``Engine`` or ``AsyncEngine`` a cache miss is looked up on (never a request's session).
        organization_id: Accept only keys of this organization (others are refused as ``unknown``).
        require_key: Refuse a request that presents no key, with 401 ``invalid_api_key`` (reason
            ``missing``), as the adapters' dependencies do. By default it goes on unauthenticated, so that
            routes without ``requires`` (a health check, a sign-in page) stay open.
        cost: The usage credits each request spends, for keys with credits.
        http: Trusted proxies and the certificate header, for keys bound to a network or certificate (the
            kit's ``settings.http`` when given a kit).

    Raises:
        TypeError: ``database`` is not an ``Engine`` or ``AsyncEngine``.
    """

    def __init__(
        self,
        kit: TenantKit | ApiKeyService,
        *,
        database: Engine | AsyncEngine,
        organization_id: str | None = None,
        require_key: bool = False,
        cost: int = 1,
        http: HttpSettings | None = None,
    ) -> None:
        check_database(database)
        self.service: ApiKeyService = kit.api_keys if isinstance(kit, TenantKit) else kit
        self.cost: int = cost
        """The credits each request spends, for keys with usage credits."""
        self.http: HttpSettings = http or (
            kit.settings.http if isinstance(kit, TenantKit) else HttpSettings()
        )
        """Who may name the client (trusted proxies) and the certificate header."""
        """The service that verifies the keys."""
        self.database: Engine | AsyncEngine = database
        """Where a cache miss is looked up and deferred ``last_used_at`` uses are written."""
        self.organization_id: str | None = organization_id
        """When set, the only organization whose keys are accepted."""
        self.bus: InvalidationBus | None = kit.bus if isinstance(kit, TenantKit) else None
        """The kit's cross-process invalidation bus, which :meth:`lifespan` starts and stops (``None``: none,
        or a service was given rather than the kit)."""
        self.require_key: bool = require_key
        """Whether a request without a key is refused (401) rather than left unauthenticated."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, ApiKeyUser] | None:
        """Verify the request's key: its credentials and user, ``None`` without a key, or raise.

        Raises:
            ApiKeyAuthenticationError: The key does not verify, the request presents two keys, or (with
                ``require_key``) none; or verifying met another tenantkit error.
        """
        try:
            presented = api_key_from_scope(conn.scope)
            if presented is None:
                if self.require_key:
                    raise InvalidApiKeyError("missing")
                return None
            verified = self.service.begin_verification(
                presented,
                organization_id=self.organization_id,
                client=AsgiClient(conn.scope, self.http),
                cost=self.cost,
            )
            if isinstance(verified, PendingVerification):  # memory could not answer: one connection
                verified = await complete_on_database(verified, self.database)
        except TenantKitError as error:
            raise ApiKeyAuthenticationError(error) from None
        if not verified.valid:
            raise ApiKeyAuthenticationError(refusal_error(verified))
        scopes = [AUTHENTICATED, *(scope for scope in verified.scopes if scope != AUTHENTICATED)]
        return AuthCredentials(scopes), ApiKeyUser(verified)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: StarletteAuthenticationError) -> Response:
        """The answer to a refused key: tenantkit's JSON error body, its status, and ``WWW-Authenticate``.

        ``{"error": {"code": "invalid_api_key", "message": ..., "reason": "revoked"}}`` with 401, the same
        answer as the FastAPI and Flask adapters give. An ``AuthenticationError`` of another backend is
        answered as an ``unknown`` key.
        """
        error = exc.error if isinstance(exc, ApiKeyAuthenticationError) else InvalidApiKeyError("unknown")
        return JSONResponse(error_body(error), status_code=status_for(error), headers=error_headers(error))

    def middleware(self) -> Middleware:
        """Starlette's ``AuthenticationMiddleware`` with this backend and :meth:`on_error`.

        ``Starlette(middleware=[backend.middleware()])`` or ``FastAPI(middleware=[backend.middleware()])``.
        """
        return Middleware(AuthenticationMiddleware, backend=self, on_error=self.on_error)

    async def flush_last_used(self) -> int:
        """Write the deferred ``last_used_at`` uses now, in a transaction of their own on ``database``.

        Returns how many keys it wrote (0 when nothing was pending or the service writes inline).
        """
        return await _flush_last_used(self.service, self.database)

    def writing_last_used(
        self, *, flush_every: timedelta = timedelta(seconds=5)
    ) -> AbstractAsyncContextManager[None]:
        """A context manager that writes deferred uses every ``flush_every``, and all that is left at its end.

        For an application with a lifespan of its own: ``async with backend.writing_last_used(): yield``.
        With ``last_used_writes="inline"`` (the default) it does nothing.

        Raises:
            ValueError: ``flush_every`` is not positive.
        """
        check_flush_every(flush_every)
        return writing_last_used(self.service, self.database, flush_every)

    def lifespan(
        self, *, flush_every: timedelta = timedelta(seconds=5)
    ) -> Callable[[object], AbstractAsyncContextManager[None]]:
        """A lifespan that keeps deferred ``last_used_at`` uses written: ``Starlette(lifespan=...)``.

        With ``ApiKeySettings(last_used_writes="deferred")`` a verification records its use in memory
        instead of writing it; this lifespan writes them every ``flush_every`` and once more at shutdown, so
        none is lost. Given the kit (not its service) with a bus (``TenantKit(bus=BusSettings(...))``), it
        also starts :attr:`bus` before serving and stops it after. It migrates nothing: run
        :func:`tenantkit.upgrade` before serving.

        Raises:
            ValueError: ``flush_every`` is not positive.
        """
        check_flush_every(flush_every)

        @asynccontextmanager
        async def keep_last_used_written(app: object) -> AsyncIterator[None]:
            async with running_bus(self.bus), writing_last_used(self.service, self.database, flush_every):
                yield

        return keep_last_used_written
