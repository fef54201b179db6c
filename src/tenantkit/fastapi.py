"""FastAPI integration: API-key and permission dependencies, error responses, and a management router.

Install with ``pip install "tenantkit[fastapi]"``::

    from tenantkit.fastapi import TenantKitFastAPI

    tk = TenantKitFastAPI(kit, session=get_session, current_user=get_current_user)
    tk.install(app)                                   # TenantKitError -> JSON with a stable code
    app.include_router(tk.router(), prefix="/tenantkit")

    @app.get("/reports")
    def reports(key: ApiKeyVerification = Depends(tk.api_key("reports:read"))):
        return {"organization": key.organization_id}

``session`` is the host's own dependency yielding a SQLAlchemy ``Session`` or ``AsyncSession``; tenantkit
runs sync work in the thread pool and async sessions through ``AsyncSession.run_sync``, so one
implementation serves both. ``current_user`` is the host's dependency naming the signed-in user (a
:class:`Principal` or a user id): identities stay with the host's identity provider.
"""

import functools
import inspect
import json
import logging
import os
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from weakref import WeakKeyDictionary, WeakSet

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from tenantkit._asgi import check_flush_every, complete_on_database, running_bus, writing_last_used
from tenantkit._asgi import flush_last_used as flush_on_database
from tenantkit._async_support import is_async_session
from tenantkit._context import RequestContext, audit_context, context_from_request
from tenantkit._errors import ConfigurationError, InvalidApiKeyError, InvalidInputError, TenantKitError
from tenantkit._http import (
    API_KEY_HEADER,
    AsgiClient,
    Authorization,
    ErrorResponse,
    Management,
    Principal,
    api_key_from_scope,
    as_principal,
    error_body,
    error_headers,
    status_for,
    validation_error,
)
from tenantkit._kit import TenantKit
from tenantkit._migrations import DEFAULT_LOCK_TIMEOUT, AsyncDatabase, Database, is_async_database, upgrade
from tenantkit._routes import FEATURES, OPERATIONS, Route, select_routes
from tenantkit.api_keys._service import ApiKeyVerification, PendingVerification, require_scopes
from tenantkit.roles._policy import Action

if TYPE_CHECKING:
    # Imported at run time only for an async session: the extension needs greenlet (tenantkit[async]).
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from tenantkit.ui._security import CsrfTokens
    from tenantkit.ui._site import PageDefinition, PageRequest, PageResponse, PageRoute, PageSite

__all__ = ["FEATURES", "OPERATIONS", "Authorization", "Principal", "TenantKitFastAPI"]

T = TypeVar("T")

logger: logging.Logger = logging.getLogger("tenantkit")


# FastAPI's own answer when a JSON body cannot be parsed at all (undecodable bytes, absurd nesting, a number
# longer than Python parses): a bare 400 outside the error contract.
_UNPARSABLE_BODY = "There was an error parsing the body"


class _TenantKitRoute(APIRoute):
    """A route of the management router: a body FastAPI cannot parse is a 422 ``invalid_input`` too."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as error:
                if error.status_code == 400 and error.detail == _UNPARSABLE_BODY:
                    raise InvalidInputError("body", "is not valid JSON") from None
                raise

        return route_handler


_bearer = HTTPBearer(auto_error=False, description="An API key as a Bearer token.")
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An API key.")


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "The API key is missing or not valid.",
        403: "The actor may not do this.",
        404: "Not found in this organization.",
        409: "Conflicts with the current state.",
        410: "The invitation is expired or no longer pending.",
        422: "The request is not valid.",
        429: "The API key is over its rate limit or out of usage credits (see Retry-After).",
        503: "The database is unavailable.",
    }
    return {status: {"model": ErrorResponse, "description": descriptions[status]} for status in statuses}


# The error statuses each of our dependencies can answer with, so that the OpenAPI document of a host's own
# route lists them too (a FastAPI dependency cannot declare responses itself). Every api_key() and
# permission() call makes a new closure: weak keys let each entry go with its dependency, so the registry
# holds only dependencies something still uses.
_DEPENDENCY_ERRORS: "WeakKeyDictionary[Callable[..., Any], tuple[int, ...]]" = WeakKeyDictionary()


# The API-key dependencies: their operations name both security schemes in the OpenAPI document. The
# schemes are documented by install()'s hook rather than declared as sub-dependencies, which FastAPI would
# resolve on every request (half the cost of a cache hit) although the adapter reads the headers itself.
_API_KEY_DEPENDENCIES: "WeakSet[Callable[..., Any]]" = WeakSet()


def _uses_api_key(dependant: Any) -> bool:
    if dependant.call is not None and dependant.call in _API_KEY_DEPENDENCIES:
        return True
    return any(_uses_api_key(child) for child in dependant.dependencies)


def _document_security(operation: dict[str, Any], schema: dict[str, Any]) -> None:
    """Name the API-key schemes on ``operation`` and define them in ``schema``'s components."""
    security = operation.setdefault("security", [])
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for scheme in (_bearer, _api_key_header):
        if {scheme.scheme_name: []} not in security:
            security.append({scheme.scheme_name: []})
        schemes.setdefault(
            scheme.scheme_name, scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
        )


def _dependency_errors(dependant: Any) -> set[int]:
    statuses = set(_DEPENDENCY_ERRORS.get(dependant.call, ())) if dependant.call is not None else set()
    for child in dependant.dependencies:
        statuses |= _dependency_errors(child)
    return statuses


def _error_response_schema(status: int) -> dict[str, Any]:
    return {
        "description": _responses(status)[status]["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


# Walks the OpenAPI document (paths, operations, responses) adding each missing entry: nesting, not logic.
def _document_errors(schema: dict[str, Any], routes: Sequence[Any]) -> None:  # noqa: C901
    """Add our dependencies' error responses, and our 422 body, to every operation of ``schema``."""
    changed = False
    paths = schema.get("paths", {})
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        statuses = _dependency_errors(route.dependant)
        api_key = _uses_api_key(route.dependant)
        for method in route.methods or ():
            operation = paths.get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            if api_key:
                _document_security(operation, schema)
            responses = operation.setdefault("responses", {})
            validation = responses.get("422")
            # install() turns request validation errors into ErrorResponse bodies; say so.
            if validation is not None and "HTTPValidationError" in repr(validation):
                responses["422"] = _error_response_schema(422)
                changed = True
            for status in sorted(statuses):
                if str(status) not in responses:
                    responses[str(status)] = _error_response_schema(status)
                    changed = True
    if not changed:
        return
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    generated = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in generated.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault("ErrorResponse", generated)
    # FastAPI's own validation error schemas stay only if something still refers to them.
    for unused in ("HTTPValidationError", "ValidationError"):
        definition = components.pop(unused, None)
        if definition is not None and f"#/components/schemas/{unused}" in json.dumps(schema):
            components[unused] = definition


def _success_headers(route: Route) -> dict[int | str, dict[str, Any]]:
    """The entry's success headers, documented on its success response."""
    if not route.headers:
        return {}
    headers = {name: {"schema": {"type": "string", "enum": [value]}} for name, value in route.headers}
    return {route.status: {"headers": headers}}


def _operation_options(
    routes: Sequence[Route],
    tags: Sequence[str] | Mapping[str, Sequence[str]] | None,
    operation_id: Callable[[str], str] | None,
) -> dict[str, dict[str, Any]]:
    """The ``operation_id`` and ``tags`` of each of ``routes``, by operation name."""
    tags_by_feature: dict[str, list[str]] = {feature: [feature] for feature in FEATURES}
    if isinstance(tags, Mapping):
        unknown = sorted(set(tags) - set(FEATURES))
        if unknown:
            raise ValueError(f"tags: unknown feature(s) {unknown}; the features are {list(FEATURES)}")
        tags_by_feature.update({feature: list(chosen) for feature, chosen in tags.items()})
    elif tags is not None:
        if isinstance(tags, str):
            raise TypeError("tags: a list of tags or a mapping from feature to tags, not a string")
        tags_by_feature = {feature: list(tags) for feature in FEATURES}
    ids = {route.operation: route.operation for route in routes}
    if operation_id is not None:
        ids = {name: operation_id(name) for name in ids}
    chosen_ids = list(ids.values())
    duplicates = sorted({identifier for identifier in chosen_ids if chosen_ids.count(identifier) > 1})
    if duplicates:
        raise ValueError(f"operation_id gives several operations the same id: {duplicates}")
    return {
        route.operation: {"operation_id": ids[route.operation], "tags": tags_by_feature[route.feature]}
        for route in routes
    }


class TenantKitFastAPI:
    """tenantkit for one FastAPI application.

    Args:
        kit: The configured :class:`~tenantkit.TenantKit`.
        session: The host's dependency that yields a ``Session`` or an ``AsyncSession`` per request.
        current_user: The host's dependency returning the signed-in user as a :class:`Principal` or a user
            id. Needed by :meth:`permission` and :meth:`router`; API-key authentication does without.
        commit: Whether the management router commits after a successful change (the default). Turn it
            off when the host's session dependency commits by itself.
        database: An ``Engine`` or ``AsyncEngine`` for API-key authentication. Given it, :meth:`api_key`
            no longer depends on ``session``: a cache hit answers with no session, connection or thread
            hop, and a miss opens a connection of its own (an async engine's without the thread pool).
            :meth:`lifespan` then also writes deferred ``last_used_at`` uses every few seconds and at
            shutdown.
    """

    def __init__(
        self,
        kit: TenantKit,
        *,
        session: Callable[..., Any],
        current_user: Callable[..., Any] | None = None,
        commit: bool = True,
        database: "Engine | AsyncEngine | None" = None,
    ) -> None:
        if database is not None and not isinstance(database, Engine) and not is_async_database(database):
            raise TypeError("database must be a SQLAlchemy Engine or AsyncEngine")
        self.kit = kit
        self.management: Management = Management(kit)
        self._session = session
        self._current_user = current_user
        self._commit = commit
        self._database = database

    # -- running service code against either kind of session ----------------------------------------

    @staticmethod
    async def run(
        session: "Session | AsyncSession", function: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Call ``function(sync_session, *args, **kwargs)``: through ``run_sync`` or in the thread pool.

        Raises:
            ModuleNotFoundError: ``session`` is not a ``Session`` and greenlet, which an ``AsyncSession``
                needs, is not installed; the message names the ``tenantkit[async]`` extra.
        """
        if is_async_session(session):
            return await session.run_sync(function, *args, **kwargs)
        return await run_in_threadpool(function, session, *args, **kwargs)

    async def _finish(self, session: "Session | AsyncSession") -> None:
        if not self._commit:
            return
        if is_async_session(session):
            await session.commit()
        else:
            await run_in_threadpool(session.commit)

    async def _mutate(
        self, session: "Session | AsyncSession", function: Callable[..., T], **kwargs: Any
    ) -> T:
        result = await self.run(session, function, **kwargs)
        await self._finish(session)
        return result

    # -- installation --------------------------------------------------------------------------------

    def install(self, app: FastAPI) -> None:
        """Answer every :class:`~tenantkit.TenantKitError` (and request validation error) with JSON.

        The body is ``{"error": {"code": ..., "message": ..., ...}}`` and the status is mapped from the
        code (401 for API keys, with ``WWW-Authenticate``; 403, 404, 409, 410, 422, 503).
        """

        async def tenantkit_error(request: Request, error: Exception) -> JSONResponse:
            assert isinstance(error, TenantKitError)  # noqa: S101  narrowing: registered for this class
            return JSONResponse(
                error_body(error), status_code=status_for(error), headers=error_headers(error)
            )

        async def invalid_request(request: Request, error: Exception) -> JSONResponse:
            assert isinstance(error, RequestValidationError)  # noqa: S101  narrowing: registered for it
            converted = validation_error(list(error.errors()))
            return JSONResponse(error_body(converted), status_code=422)

        app.add_exception_handler(TenantKitError, tenantkit_error)
        app.add_exception_handler(RequestValidationError, invalid_request)

        generate = app.openapi

        def openapi() -> dict[str, Any]:
            fresh = app.openapi_schema is None
            schema = generate()
            if fresh:
                _document_errors(schema, app.routes)
            return schema

        app.openapi = openapi  # type: ignore[method-assign]

    def lifespan(
        self,
        database: "Database | AsyncDatabase | None" = None,
        *,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        flush_every: timedelta = timedelta(seconds=5),
    ) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
        """A FastAPI lifespan that migrates tenantkit's tables before serving, and keeps ``last_used_at``.

        ``FastAPI(lifespan=tk.lifespan(engine))`` runs :func:`tenantkit.upgrade` at start-up: every
        instance may, one migrates under the migration lock and the others wait for it. A sync engine,
        connection or URL is migrated in the thread pool (the event loop stays free); an async engine or
        connection is awaited. With ``last_used_writes="deferred"``, it also writes the recorded uses every
        ``flush_every`` and once more at shutdown, on the adapter's ``database`` (or this one when it is
        an engine). With a bus (``TenantKit(bus=BusSettings(...))``) it starts ``kit.bus`` before serving
        and stops it at shutdown. A host with a lifespan of its own calls
        ``await run_in_threadpool(upgrade, engine)`` (or ``await upgrade(async_engine)``),
        ``await run_in_threadpool(kit.bus.start)`` and ``await tk.flush_last_used()`` in it instead.

        Args:
            database: What :func:`tenantkit.upgrade` accepts: an engine, a connection or a URL, sync or
                async; ``None`` migrates nothing (the adapter's ``database`` still gets the writes).
            lock_timeout: Seconds to wait for another instance's migration; ``None`` waits forever.
            flush_every: How often deferred ``last_used_at`` uses are written.

        Raises:
            MigrationLockTimeoutError: At start-up, when another migration held the lock too long.
        """
        check_flush_every(flush_every)

        @asynccontextmanager
        async def migrate_then_serve(app: FastAPI) -> AsyncIterator[None]:
            if database is not None:
                # Into the kit's schema (DatabaseSettings.schema_name), where its services look.
                schema = self.kit.members.schema
                if is_async_database(database):
                    await upgrade(database, lock_timeout=lock_timeout, schema=schema)
                else:
                    await run_in_threadpool(upgrade, database, lock_timeout=lock_timeout, schema=schema)
            # The bus is subscribed before the first request and stopped after the last.
            async with (
                running_bus(self.kit.bus),
                writing_last_used(self.kit.api_keys, self._writes_database(database), flush_every),
            ):
                yield

        return migrate_then_serve

    async def flush_last_used(self, database: "Engine | AsyncEngine | None" = None) -> int:
        """Write the deferred ``last_used_at`` uses now, in a transaction of their own.

        On ``database`` or the adapter's own; an async engine's without the thread pool. Returns how many
        keys it wrote (0 when nothing was pending or the service writes inline).
        """
        engine = database if database is not None else self._database
        if engine is None:
            return 0
        return await flush_on_database(self.kit.api_keys, engine)

    def _writes_database(self, database: object) -> "Engine | AsyncEngine | None":
        """Where deferred ``last_used_at`` uses go: ``None`` when the service writes them inline."""
        if self.kit.api_keys.last_used_writes != "deferred":
            return None
        if self._database is not None:
            return self._database
        if isinstance(database, Engine) or (is_async_database(database) and hasattr(database, "begin")):
            return database  # type: ignore[return-value]
        # Deferred uses that nobody writes would pile up in memory and be lost at exit: refuse at start-up.
        raise ConfigurationError(
            'last_used_writes="deferred" needs an engine to write the uses on: '
            "TenantKitFastAPI(..., database=engine) or tk.lifespan(engine)"
        )

    # -- dependencies --------------------------------------------------------------------------------

    def api_key(self, *scopes: str, organization_id: str | None = None, cost: int = 1) -> Callable[..., Any]:
        """A dependency that authenticates the request's API key and returns the verification.

        The key comes from ``Authorization: Bearer …`` or ``X-API-Key``. A missing or invalid key is
        answered 401 with ``WWW-Authenticate``; a valid key without every scope in ``scopes``, 403.

        Args:
            scopes: Scopes the key must carry.
            organization_id: Accept only keys of this organization.
            cost: The usage credits a request spends, for keys with credits (429 ``usage_exceeded`` when
                too few are left; a key over a rate limit is 429 ``rate_limited``, with ``Retry-After``).
        """
        required = tuple(scopes)

        async def verified(
            request: Request, miss: Callable[[PendingVerification], Awaitable[ApiKeyVerification]]
        ) -> ApiKeyVerification:
            known = self._answer(request, required=required, organization_id=organization_id, cost=cost)
            if type(known) is ApiKeyVerification:
                return known
            assert isinstance(known, PendingVerification)  # noqa: S101  narrowing: the other answer
            found = await miss(known)
            require_scopes(found, required)
            return found

        if self._database is not None:
            on_database = self._complete_on_database

            async def authenticate_api_key(
                request: Request,
            ) -> ApiKeyVerification:
                return await verified(request, on_database)

        else:

            async def authenticate_api_key(  # type: ignore[misc]  # the same dependency, on the host's session
                request: Request,
                session: Any = Depends(self._session),
            ) -> ApiKeyVerification:
                return await verified(request, functools.partial(self.run, session, complete))

        def complete(session: Session, pending: PendingVerification) -> ApiKeyVerification:
            found, wrote = pending.complete_and_report(session)
            # The last-used write (at most once a minute per key) lands in this request's transaction.
            # Committing here, in the same worker-thread call, spares a second hop; a verification that
            # wrote nothing leaves nothing to commit.
            if self._commit and wrote and session.in_transaction():
                session.commit()
            return found

        _DEPENDENCY_ERRORS[authenticate_api_key] = (401, 403, 429, 503) if required else (401, 429, 503)
        _API_KEY_DEPENDENCIES.add(authenticate_api_key)
        return authenticate_api_key

    def _answer(
        self, request: Request, *, required: tuple[str, ...], organization_id: str | None, cost: int = 1
    ) -> ApiKeyVerification | PendingVerification:
        """The request's key answered from memory (scopes checked), or what the database must complete."""
        # The shared parser reads the headers, so that a non-Bearer Authorization is "malformed" here as in
        # Flask; the schemes reach the OpenAPI document through install()'s hook.
        presented = api_key_from_scope(request.scope)
        if presented is None:
            raise InvalidApiKeyError("missing")
        # Malformed keys and cache hits need no database: answered here, without a thread-pool hop.
        known = self.kit.api_keys.begin_verification(
            presented,
            organization_id=organization_id,
            client=AsgiClient(request.scope, self.kit.settings.http),
            cost=cost,
        )
        if type(known) is ApiKeyVerification:
            require_scopes(known, required)
        return known

    async def _complete_on_database(self, pending: PendingVerification) -> ApiKeyVerification:
        """A cache miss, on a connection of the adapter's ``database`` (never the host's session)."""
        assert self._database is not None  # noqa: S101  narrowing: only called when it was given
        return await complete_on_database(pending, self._database)

    def current_principal(self) -> Callable[..., Any]:
        """A dependency returning the signed-in user as a :class:`Principal`."""
        current_user = self._require_current_user()

        async def principal(user: Any = Depends(current_user)) -> Principal:
            return as_principal(user)

        return principal

    def permission(
        self, action: Action | str, *, organization_id: Callable[..., str] | None = None
    ) -> Callable[..., Any]:
        """A dependency that checks the signed-in user may perform ``action`` in the request's organization.

        Args:
            action: The action of the permission table (built-in or the host's own), or a permission a
                custom role carries (``"orders:sign"``).
            organization_id: A dependency returning the organization id; by default the path parameter
                ``organization_id``.

        Returns:
            A dependency returning an :class:`Authorization`; a user without the permission gets 403.

        Raises:
            UnknownPermissionError: The kit declares a permission registry and ``action`` is not in it
                (raised here, when the route is declared, so a typo never reaches a request).
        """
        action = self.kit.permissions.action_name(action)
        organization_dependency = organization_id or _organization_from_path
        principal_dependency = self.current_principal()

        async def require_permission(
            organization: str = Depends(organization_dependency),
            principal: Principal = Depends(principal_dependency),
            session: Any = Depends(self._session),
        ) -> Authorization:
            role, custom_role = await self.run(
                session, self.kit.members.authorize_role, organization, principal.user_id, action
            )
            return Authorization(
                organization_id=organization, user_id=principal.user_id, role=role, custom_role=custom_role
            )

        _DEPENDENCY_ERRORS[require_permission] = (403, 422, 503)
        return require_permission

    def request_context(self, request: Request) -> RequestContext:
        """The request's context for the audit log: client address, user agent and request id.

        The address honours ``HttpSettings.trusted_proxies`` (never a raw ``X-Forwarded-For``). The
        management router records it by itself; a route of the host's takes it as a dependency and opens
        :func:`tenantkit.audit.audit_context` around its own calls::

            @app.post("/signup")
            def signup(context: RequestContext = Depends(tk.request_context), ...):
                with audit_context(context):
                    kit.members.add(session, org, user, Role.OWNER, actor=HOST)
        """
        http = self.kit.settings.http
        peer = request.client.host if request.client is not None else None
        return context_from_request(
            request.headers, peer, trusted=http.proxies, request_id_header=http.request_id_header
        )

    def _require_current_user(self) -> Callable[..., Any]:
        if self._current_user is None:
            raise TypeError("TenantKitFastAPI needs current_user= for permission checks and the router")
        return self._current_user

    # -- the management router -----------------------------------------------------------------------

    def router(
        self,
        *,
        include: Iterable[str] | None = None,
        tags: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        operation_id: Callable[[str], str] | None = None,
    ) -> APIRouter:
        """The management endpoints: members, API keys and invitations of an organization.

        Every route acts as the signed-in user, whose role bounds what it may do. Mount it under any
        prefix; paths are ``/organizations/{organization_id}/members`` and so on, plus
        ``/invitations/preview`` and ``/invitations/accept`` for invitees.

        Each operation has a stable name, ``feature.action`` (``members.list``, ``api_keys.issue``,
        ``invitations.accept``; :data:`OPERATIONS` lists them all), which is its OpenAPI ``operationId``
        and whose feature (``members``, ``api_keys``, ``invitations``) is its tag, so that a client
        generator makes one well-named method per operation, grouped per feature.

        Args:
            include: The features to mount (:data:`FEATURES`: ``"members"``, ``"roles"``, ``"api_keys"``,
                ``"invitations"``, ``"departments"``, ``"audit"``, ``"settings"``, ``"webhooks"``); by default
                all of them, but ``webhooks`` only when the kit has ``WebhookSettings(secret_keys=...)``.
                ``include=("members",)`` mounts only the member endpoints.
            tags: The OpenAPI tags: a list puts the same tags on every operation; a mapping from feature to
                tags replaces the tags of the features it names (the others keep their feature's name).
            operation_id: Turns an operation's name into its ``operationId``, for example
                ``lambda name: "admin." + name`` when the router is mounted twice. The default keeps the
                name itself.

        Raises:
            ValueError: ``include`` or ``tags`` names a feature the router does not have, ``include``
                names none, or ``operation_id`` gives two operations the same id.
            TypeError: ``include`` or ``tags`` is a bare string.
            ConfigurationError: ``include`` names ``webhooks`` and the kit has no webhook settings.
        """
        routes = select_routes(include, kit=self.kit)
        operation_options = _operation_options(routes, tags, operation_id)
        router = APIRouter(route_class=_TenantKitRoute)
        principal_dependency = self.current_principal()
        for route in routes:
            router.add_api_route(
                route.path,
                self._endpoint(route, principal_dependency),
                methods=[route.method],
                response_model=route.response,
                status_code=route.status,
                responses={**_responses(*route.errors), **_success_headers(route)},
                summary=route.summary,
                description=route.description,
                name=route.name,
                **operation_options[route.operation],
            )
        return router

    def pages(
        self,
        *,
        secret_key: str | bytes,
        templates: Sequence[str] = (),
        include: Iterable[str] | None = None,
        csrf: "CsrfTokens | None" = None,
        translations: Sequence[str | os.PathLike[str]] = (),
        time_zone: str = "UTC",
        extra_pages: "Sequence[PageDefinition]" = (),
    ) -> APIRouter:
        """The drop-in pages (``tenantkit[ui]``): team, invitations, the accept page, API keys, audit log.

        They act as the signed-in user of the host's ``current_user`` hook, on the host's ``session``, and
        call the same services as :meth:`router`. Mount them under any prefix::

            app.include_router(tk.pages(secret_key=settings.pages_secret), prefix="/account")

        Args:
            secret_key: Signs the CSRF tokens and the result messages (at least 16 characters).
            templates: Directories whose ``tenantkit/*.html`` override the package's templates.
            include: The pages to mount by name (``"team"``, ``"invitations"``, ``"api-keys"``,
                ``"audit"``, ``"roles"``, ``"settings"``, ``"webhooks"``, ``"domains"``); the accept page is
                always mounted, and the webhook pages only when the kit has webhooks.
            csrf: Another CSRF token provider (:class:`tenantkit.ui.CsrfTokens`).
            translations: Directories of the host's catalogs (``<locale>/LC_MESSAGES/tenantkit.po``), read
                once, whose translations win over the package's (see the pages guide).
            time_zone: The IANA zone of dates for viewers whose ``Principal.time_zone`` is unset (UTC).
            extra_pages: Pages of your own (:class:`tenantkit.ui.PageDefinition`), mounted beside these
                with the same sign-in, CSRF and templates (see the pages guide).
        """
        from tenantkit.ui._site import PageSite

        site = PageSite(
            self.kit,
            secret_key=secret_key,
            templates=templates,
            include=include,
            csrf=csrf,
            translations=translations,
            time_zone=time_zone,
            extra_pages=extra_pages,
        )
        router = APIRouter()
        principal_dependency = self.current_principal()
        for page_route in site.routes():
            router.add_api_route(
                page_route.path,
                self._page_endpoint(site, page_route, principal_dependency),
                methods=[page_route.method],
                name=f"tenantkit_pages.{page_route.name}",
                include_in_schema=False,
            )
        return router

    def _page_endpoint(
        self, site: "PageSite", page_route: "PageRoute", principal_dependency: Callable[..., Any]
    ) -> Callable[..., Any]:
        if not page_route.signed_in:

            async def static(request: Request) -> Response:
                return _page_response(site.static(str(request.path_params.get("filename", ""))))

            return static

        async def page(
            request: Request,
            principal: Principal = Depends(principal_dependency),
            session: Any = Depends(self._session),
        ) -> Response:
            page_request = _page_request(request, await _read_form(request))
            with audit_context(self.request_context(request)):
                answer = await self.run(session, site.handle, page_route, page_request, principal)
            if answer.commit:
                await self._finish(session)
            return _page_response(answer)

        return page

    def _endpoint(self, route: Route, principal_dependency: Callable[..., Any]) -> Callable[..., Any]:
        """The FastAPI endpoint serving ``route``: it hands the request's values to the entry's call."""
        management = self.management

        async def endpoint(
            session: Any, tenantkit_request: Request, tenantkit_response: Response, **arguments: Any
        ) -> Any:
            # Headers set on the injected response reach the answer (errors are answered without them).
            tenantkit_response.headers.update(dict(route.headers))
            if "query" in arguments:
                arguments.update(arguments.pop("query").model_dump())
            if "body" in arguments:
                arguments["body"] = route.body_or_default(arguments["body"])
            call = functools.partial(route.call, management)
            # The context variable follows the call into the thread pool and through run_sync.
            with audit_context(self.request_context(tenantkit_request)):
                if route.writes:
                    return await self._mutate(session, call, **arguments)
                return await self.run(session, call, **arguments)

        endpoint.__signature__ = _signature(route, principal_dependency, self._session)  # type: ignore[attr-defined]
        endpoint.__name__ = endpoint.__qualname__ = route.name
        endpoint.__doc__ = route.description
        return endpoint


def _page_request(request: Request, form: dict[str, list[str]]) -> "PageRequest":
    from tenantkit.ui._site import PageRequest

    host = request.headers.get("host") or request.url.netloc
    return PageRequest(
        method=request.method,
        path=request.url.path,
        path_values={name: str(value) for name, value in request.path_params.items()},
        query=dict(request.query_params),
        form=form,
        cookies=dict(request.cookies),
        origin=request.headers.get("origin"),
        own_origin=f"{request.url.scheme}://{host}",
        accept_language=request.headers.get("accept-language"),
        htmx=request.headers.get("hx-request") == "true",
    )


async def _read_form(request: Request) -> dict[str, list[str]]:
    """A form POST's fields (``application/x-www-form-urlencoded``, what the pages' forms send)."""
    if request.method != "POST":
        return {}
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    body = await request.body()
    return urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)


def _page_response(answer: "PageResponse") -> Response:
    response: Response
    if answer.file is not None:
        # A download, streamed from its spooled file (Starlette iterates the chunks in its thread pool).
        response = StreamingResponse(answer.chunks(), status_code=answer.status, headers=answer.headers)
    else:
        response = Response(answer.body, status_code=answer.status, headers=answer.headers, media_type=None)
    response.headers["Content-Type"] = answer.content_type
    for cookie in answer.cookies:
        response.set_cookie(
            cookie.name,
            cookie.value,
            max_age=cookie.max_age,
            path=cookie.path,
            secure=cookie.secure,
            httponly=True,
            samesite="lax",
        )
    return response


def _signature(
    route: Route, principal_dependency: Callable[..., Any], session_dependency: Callable[..., Any]
) -> inspect.Signature:
    """The signature FastAPI reads ``route``'s request from, and documents it by.

    It declares the path parameters, the body, the query model and the principal and session
    dependencies, so the OpenAPI document describes each operation as fully as a hand-written endpoint.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter(name, keyword, annotation=str) for name in route.path_parameters]
    if route.body is not None and route.body_optional:
        parameters.append(inspect.Parameter("body", keyword, annotation=route.body | None, default=None))
    elif route.body is not None:
        parameters.append(inspect.Parameter("body", keyword, annotation=route.body))
    if route.query is not None:
        # FastAPI reads a query model's fields as separate, documented query parameters.
        parameters.append(inspect.Parameter("query", keyword, annotation=Annotated[route.query, Query()]))
    if route.signed_in:
        principal = Depends(principal_dependency)
        parameters.append(inspect.Parameter("principal", keyword, annotation=Principal, default=principal))
    parameters.append(
        inspect.Parameter("session", keyword, annotation=Any, default=Depends(session_dependency))
    )
    # The request itself, for its audit context (FastAPI passes a parameter typed Request, whatever its name).
    parameters.append(inspect.Parameter("tenantkit_request", keyword, annotation=Request))
    # The response FastAPI sends the result in, for the entry's success headers.
    parameters.append(inspect.Parameter("tenantkit_response", keyword, annotation=Response))
    return inspect.Signature(parameters, return_annotation=route.response)


def _organization_from_path(organization_id: str = Path(min_length=1, max_length=255)) -> str:
    return organization_id
