"""Flask integration: an extension with API-key and permission decorators, JSON errors, and a blueprint.

Install with ``pip install "tenantkit[flask]"``::

    from tenantkit.flask import TenantKitFlask, current_api_key

    tk = TenantKitFlask(kit, session=lambda: db.session, current_user=get_current_user)
    tk.init_app(app)                                  # TenantKitError -> JSON with a stable code
    app.register_blueprint(tk.blueprint(), url_prefix="/tenantkit")

    @app.get("/reports")
    @tk.require_api_key("reports:read")
    def reports():
        return {"organization": current_api_key().organization_id}

``session`` is the host's callable returning the request's SQLAlchemy ``Session`` (Flask-SQLAlchemy's
``db.session``, or a session kept on ``flask.g``); tenantkit never opens or closes it. ``current_user``
returns the signed-in user as a :class:`Principal` or a user id: identities stay with the host's identity
provider. The HTTP contract (paths, bodies, statuses, error format) is the one of :mod:`tenantkit.fastapi`.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, scoped_session
from werkzeug.exceptions import HTTPException

from tenantkit._context import RequestContext, audit_context, context_from_request
from tenantkit._errors import ConfigurationError, InvalidApiKeyError, InvalidInputError, TenantKitError
from tenantkit._http import (
    Authorization,
    Management,
    Principal,
    WsgiClient,
    api_key_from_environ,
    as_principal,
    complete_on_engine,
    error_body,
    error_headers,
    status_for,
    validation_error,
)
from tenantkit._kit import TenantKit
from tenantkit._routes import Route, select_routes
from tenantkit.api_keys._last_used import LastUsedWriter, flush_on_engine
from tenantkit.api_keys._service import ApiKeyVerification, PendingVerification, require_scopes
from tenantkit.roles._policy import Action

if TYPE_CHECKING:
    from tenantkit.ui._security import CsrfTokens
    from tenantkit.ui._site import PageDefinition, PageResponse, PageRoute, PageSite

__all__ = [
    "Authorization",
    "Principal",
    "TenantKitFlask",
    "current_api_key",
    "current_authorization",
    "error_response",
]

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

EXTENSION_KEY = "tenantkit"
_API_KEY_ATTRIBUTE = "tenantkit_api_key"
_AUTHORIZATION_ATTRIBUTE = "tenantkit_authorization"
_JSON_SUBTYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$")


def current_api_key() -> ApiKeyVerification:
    """The API key that :meth:`TenantKitFlask.require_api_key` verified for this request.

    Also available as ``flask.g.tenantkit_api_key``.

    Raises:
        RuntimeError: The view is not decorated with ``require_api_key``.
    """
    verified = g.get(_API_KEY_ATTRIBUTE)
    if not isinstance(verified, ApiKeyVerification):
        raise RuntimeError("no API key was verified for this request: decorate the view with require_api_key")
    return verified


def current_authorization() -> Authorization:
    """The permission that :meth:`TenantKitFlask.require_permission` established for this request.

    Also available as ``flask.g.tenantkit_authorization``.

    Raises:
        RuntimeError: The view is not decorated with ``require_permission``.
    """
    authorization = g.get(_AUTHORIZATION_ATTRIBUTE)
    if not isinstance(authorization, Authorization):
        raise RuntimeError(
            "no permission was checked for this request: decorate the view with require_permission"
        )
    return authorization


def error_response(error: TenantKitError) -> Response:
    """The JSON response for ``error``: ``{"error": {"code", "message", ...}}`` with its mapped status."""
    return _json(error_body(error), status_for(error), error_headers(error))


def _json(payload: object, status: int, headers: dict[str, str] | None = None) -> Response:
    response = current_app.response_class(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )
    if headers:
        response.headers.update(headers)
    return response


def _model(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return _json(model.model_dump(mode="json"), status, headers)


def _http_error(error: HTTPException) -> Response:
    # Raised inside a tenantkit view (a body over MAX_CONTENT_LENGTH, say): answered in the same JSON shape.
    code = re.sub(r"[^a-z0-9]+", "_", (error.name or "http_error").lower()).strip("_")
    body = {"error": {"code": code, "message": error.description or error.name}}
    return _json(body, error.code or 500)


_ABSENT = object()
_NOT_JSON = object()


def _json_payload() -> object:
    """The request body parsed as JSON; :data:`_ABSENT` for none, :data:`_NOT_JSON` without a JSON type.

    Parsing comes before the current-user hook and validation after it, in the order FastAPI follows, so
    a request with several faults is refused for the same one by both adapters.

    Raises:
        InvalidInputError: The body claims to be JSON but does not parse.
    """
    data = request.get_data(cache=True)
    if not data:
        return _ABSENT
    # Like FastAPI's strict default: a body without a JSON content type is not read as JSON, so a cross-site
    # form post (text/plain, form-urlencoded, no type at all) can never pass for an API call.
    if not _JSON_SUBTYPE.match(request.mimetype):
        return _NOT_JSON
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        # ValueError covers malformed JSON and undecodable bytes; absurd nesting exhausts the parser's stack.
        raise InvalidInputError("body", "is not valid JSON") from None


def _validate(model: type[M], payload: object, *, optional: bool = False) -> M | None:
    """Validate a parsed body against ``model``, as FastAPI does for a body parameter.

    Raises:
        InvalidInputError: The body is missing (unless ``optional``), not JSON, or does not fit ``model``.
    """
    if payload is _ABSENT or (optional and payload is None):
        if optional:
            return None
        raise validation_error([{"loc": ("body",), "msg": "Field required"}])
    if payload is _NOT_JSON:
        raise InvalidInputError("body", "must be JSON (Content-Type: application/json)")
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise validation_error(error.errors(include_url=False, include_context=False)) from None


def _query(model: type[M]) -> M:
    """The query string validated against ``model``.

    Raises:
        InvalidInputError: A parameter does not fit ``model`` (a page size out of bounds, say).
    """
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise validation_error(error.errors(include_url=False, include_context=False)) from None


def _page_response(answer: PageResponse) -> Response:
    # A download is streamed from its spooled file, chunk by chunk, as werkzeug iterates the body.
    body = answer.chunks() if answer.file is not None else answer.body
    response = Response(body, status=answer.status, headers=answer.headers)
    response.headers["Content-Type"] = answer.content_type
    for cookie in answer.cookies:
        response.set_cookie(
            cookie.name,
            cookie.value,
            max_age=cookie.max_age,
            path=cookie.path,
            secure=cookie.secure,
            httponly=True,
            samesite="Lax",
        )
    return response


def _call_if_alive(method: weakref.WeakMethod[Callable[[], None]]) -> None:
    bound = method()
    if bound is not None:
        bound()


class TenantKitFlask:
    """tenantkit for Flask applications, following the usual extension pattern.

    Args:
        kit: The configured :class:`~tenantkit.TenantKit`.
        session: The host's callable returning the current request's SQLAlchemy ``Session`` (or a
            ``scoped_session`` such as Flask-SQLAlchemy's ``db.session``). tenantkit never closes it.
        current_user: The host's callable returning the signed-in user as a :class:`Principal` or a user id
            (it should ``abort(401)`` when nobody is signed in). Needed by :meth:`require_permission` and
            :meth:`blueprint`; API-key authentication does without.
        commit: Whether tenantkit ends the transaction of its own work: the blueprint commits after a
            successful change and rolls back a failed request, and :meth:`require_api_key` commits the
            key's last-used time. Turn it off when the host commits and rolls back by itself.
        app: Initialise this application at once (or call :meth:`init_app` later, once per application).
        database: An ``Engine`` for API-key authentication. Given it, :meth:`require_api_key` never opens
            the host's session: a cache hit needs no connection at all, a miss borrows one of the engine's.
            With ``last_used_writes="deferred"`` a thread of each process writes the recorded uses every
            ``flush_every`` and at exit (started at the first recorded use, so after a pre-fork server's
            fork). A kit with a bus (``kit.bus``) has it started at each process's first request.
        flush_every: How often deferred ``last_used_at`` uses are written.
    """

    def __init__(
        self,
        kit: TenantKit,
        *,
        session: Callable[[], Session | scoped_session[Session]],
        current_user: Callable[[], Principal | str] | None = None,
        commit: bool = True,
        app: Flask | None = None,
        database: Engine | None = None,
        flush_every: timedelta = timedelta(seconds=5),
    ) -> None:
        if database is not None and not isinstance(database, Engine):
            raise TypeError("database must be a SQLAlchemy Engine")
        if database is None and kit.api_keys.last_used_writes == "deferred":
            # Deferred uses that nobody writes would pile up in memory and be lost at exit.
            raise ConfigurationError(
                'last_used_writes="deferred" needs an engine to write the uses on: '
                "TenantKitFlask(..., database=engine)"
            )
        self.kit = kit
        self.management: Management = Management(kit)
        self._session = session
        self._current_user = current_user
        self._commit = commit
        self._database = database
        self._flush_every = flush_every
        self._writer: LastUsedWriter | None = None
        self._writer_lock = threading.Lock()
        # A forked worker inherits the parent's writer but not its thread: it starts its own.
        forget = weakref.WeakMethod(self._forget_writer)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(forget))
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app`` and answer every :class:`~tenantkit.TenantKitError` with JSON.

        The body is ``{"error": {"code": ..., "message": ..., ...}}`` and the status is mapped from the
        code (401 for API keys, with ``WWW-Authenticate``; 403, 404, 409, 410, 422, 503), the same as the
        FastAPI adapter. The extension is found again as ``app.extensions["tenantkit"]``.
        """
        app.extensions[EXTENSION_KEY] = self
        app.register_error_handler(TenantKitError, error_response)
        if self.kit.bus is not None:
            app.before_request(self._start_bus)

    def _start_bus(self) -> None:
        # At the first request of each process, so after a pre-fork server's fork (threads do not survive
        # one); a plain attribute read on every later request.
        bus = self.kit.bus
        if bus is not None and not bus.running:
            bus.start()

    # -- request helpers -------------------------------------------------------------------------------

    def session(self) -> Session:
        """The current request's ``Session``, from the host's callable.

        A ``scoped_session`` (Flask-SQLAlchemy's ``db.session``) is resolved to the session it holds for this
        request, because the services need a real ``Session``.
        """
        session = self._session()
        if isinstance(session, scoped_session):
            return session()
        return session

    def principal(self) -> Principal:
        """The signed-in user of the current request, as a :class:`Principal`.

        Raises:
            TypeError: The extension was built without ``current_user``, or it returned something else.
        """
        if self._current_user is None:
            raise TypeError("TenantKitFlask needs current_user= for permission checks and the blueprint")
        return as_principal(self._current_user())

    def request_context(self) -> RequestContext:
        """The current request's context for the audit log: client address, user agent and request id.

        The address honours ``HttpSettings.trusted_proxies`` (never a raw ``X-Forwarded-For``; leave the
        setting empty behind werkzeug's ``ProxyFix``, which has already rewritten ``remote_addr``). The
        blueprint records it by itself; a view of the host's opens :func:`tenantkit.audit.audit_context`::

            with audit_context(tk.request_context()):
                kit.members.add(session, org, user, Role.OWNER, actor=HOST)
        """
        http = self.kit.settings.http
        return context_from_request(
            request.headers,
            request.remote_addr,
            trusted=http.proxies,
            request_id_header=http.request_id_header,
        )

    def _finish(self, session: Session) -> None:
        if self._commit:
            session.commit()

    def _run(self, function: Callable[..., R], *, writes: bool, **arguments: Any) -> R:
        """Call ``function(session, **arguments)``; commit a successful change, roll back any failure."""
        session = self.session()
        try:
            result = function(session, **arguments)
            if writes:
                self._finish(session)
        except BaseException:
            if self._commit:
                session.rollback()
            raise
        return result

    # -- decorators ------------------------------------------------------------------------------------

    def require_api_key(
        self, *scopes: str, organization_id: str | None = None, cost: int = 1
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a view so that it runs only for a request presenting a valid API key.

        The key comes from ``Authorization: Bearer …`` or ``X-API-Key``. A missing or invalid key is
        answered 401 with ``WWW-Authenticate``; a valid key without every scope in ``scopes``, 403. The view
        reads the verified key with :func:`current_api_key` (or ``flask.g.tenantkit_api_key``)::

            @app.get("/reports")
            @tk.require_api_key("reports:read")
            def reports():
                return {"organization": current_api_key().organization_id}

        Args:
            scopes: Scopes the key must carry.
            organization_id: Accept only keys of this organization.
            cost: The usage credits a request spends, for keys with credits (429 ``usage_exceeded`` when
                too few are left; a key over a rate limit is 429 ``rate_limited``, with ``Retry-After``).

        Returns:
            The decorator.
        """
        required = tuple(scopes)

        def decorator(view: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(view)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                presented = api_key_from_environ(request.environ)
                if presented is None:
                    raise InvalidApiKeyError("missing")
                verified = self._verify(presented, organization_id, cost)
                require_scopes(verified, required)
                setattr(g, _API_KEY_ATTRIBUTE, verified)
                return view(*args, **kwargs)

            return wrapper

        return decorator

    def _verify(self, presented: str, organization_id: str | None, cost: int = 1) -> ApiKeyVerification:
        """Memory first; a miss on the adapter's engine, else in the host's session."""
        api_keys = self.kit.api_keys
        known = api_keys.begin_verification(
            presented,
            organization_id=organization_id,
            client=WsgiClient(request.environ, self.kit.settings.http),
            cost=cost,
        )
        if type(known) is ApiKeyVerification:
            verified = known
        else:
            assert isinstance(known, PendingVerification)  # noqa: S101  narrowing: the other answer
            if self._database is not None:
                verified = complete_on_engine(known, self._database)
            else:
                session = self.session()
                verified, wrote = known.complete_and_report(session)
                if wrote and session.in_transaction():
                    # The last-used write (at most once a minute per key) lands in this request's
                    # transaction; a verification that wrote nothing leaves nothing to commit.
                    self._finish(session)
        if self._writer is None and api_keys.pending_last_used and self._database is not None:
            self._start_writer(self._database)
        return verified

    def _start_writer(self, engine: Engine) -> None:
        with self._writer_lock:
            if self._writer is not None:
                return
            writer = LastUsedWriter(self.kit.api_keys.flush_last_used, engine, every=self._flush_every)
            writer.start()
            atexit.register(writer.stop_at_exit)
            self._writer = writer

    def _forget_writer(self) -> None:
        self._writer = None
        self._writer_lock = threading.Lock()

    def close(self) -> None:
        """Stop this process's ``last_used_at`` writer, writing what is pending (``atexit`` does it too), and
        its invalidation bus (``kit.bus``), which the first request started."""
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            atexit.unregister(writer.stop_at_exit)
            writer.stop()
        if self.kit.bus is not None:
            self.kit.bus.stop()

    def flush_last_used(self) -> int:
        """Write the deferred ``last_used_at`` uses now, on the adapter's ``database``; how many it wrote."""
        if self._database is None:
            return 0
        return flush_on_engine(self.kit.api_keys.flush_last_used, self._database)

    def require_permission(
        self, action: Action | str, *, organization_id_arg: str = "organization_id"
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a view so that it runs only if the signed-in user may perform ``action``.

        The organization is the view's URL variable named ``organization_id_arg``. A user without the
        permission (or not a member at all) is answered 403. The view reads the result with
        :func:`current_authorization` (or ``flask.g.tenantkit_authorization``)::

            @app.delete("/orgs/<organization_id>/projects/<project_id>")
            @tk.require_permission("projects:delete")
            def delete_project(organization_id, project_id): ...

        Args:
            action: The action of the permission table (built-in or the host's own), or a permission a
                custom role carries (``"orders:sign"``).
            organization_id_arg: The URL variable holding the organization id.

        Returns:
            The decorator.

        Raises:
            UnknownPermissionError: The kit declares a permission registry and ``action`` is not in it
                (raised when the view is decorated, so a typo never reaches a request).
        """
        action = self.kit.permissions.action_name(action)

        def decorator(view: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(view)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                organization = kwargs.get(organization_id_arg)
                if not isinstance(organization, str):
                    raise TypeError(
                        f"require_permission needs the URL variable {organization_id_arg!r} "
                        f"on view {view.__name__!r}"
                    )
                principal = self.principal()
                role, custom_role = self.kit.members.authorize_role(
                    self.session(), organization, principal.user_id, action
                )
                setattr(
                    g,
                    _AUTHORIZATION_ATTRIBUTE,
                    Authorization(
                        organization_id=organization,
                        user_id=principal.user_id,
                        role=role,
                        custom_role=custom_role,
                    ),
                )
                return view(*args, **kwargs)

            return wrapper

        return decorator

    # -- the management blueprint ----------------------------------------------------------------------

    def blueprint(self, name: str = "tenantkit", *, include: Iterable[str] | None = None) -> Blueprint:
        """The management endpoints: members, API keys and invitations of an organization.

        Every route acts as the signed-in user, whose role bounds what it may do. Register it under any
        prefix; paths are ``/organizations/<organization_id>/members`` and so on, plus
        ``/invitations/preview`` and ``/invitations/accept`` for invitees. Bodies are JSON and validated
        with the same models as the FastAPI router: a missing, malformed or invalid body is answered 422
        ``invalid_input``.

        Args:
            name: The blueprint's name (give another one to register it twice).
            include: The features to mount (``"members"``, ``"roles"``, ``"api_keys"``, ``"invitations"``,
                ``"departments"``, ``"audit"``, ``"settings"``, ``"webhooks"``); by default all of them, but
                ``webhooks`` only when the kit has ``WebhookSettings(secret_keys=...)``.
                ``include=("members",)`` mounts only the member endpoints.

        Raises:
            TypeError: The extension has no ``current_user``, or ``include`` is a bare string.
            ValueError: ``include`` names a feature there is none of, or no feature at all.
            ConfigurationError: ``include`` names ``webhooks`` and the kit has no webhook settings.
        """
        if self._current_user is None:
            raise TypeError("TenantKitFlask needs current_user= for the blueprint")
        routes = select_routes(include, kit=self.kit)
        bp = Blueprint(name, __name__)
        bp.register_error_handler(HTTPException, _http_error)
        bp.register_error_handler(TenantKitError, error_response)
        for route in routes:
            bp.add_url_rule(route.path_as("<{}>"), route.name, self._view(route), methods=[route.method])
        return bp

    def pages_blueprint(
        self,
        name: str = "tenantkit_pages",
        *,
        secret_key: str | bytes,
        templates: Sequence[str] = (),
        include: Iterable[str] | None = None,
        csrf: CsrfTokens | None = None,
        translations: Sequence[str | os.PathLike[str]] = (),
        time_zone: str = "UTC",
        extra_pages: Sequence[PageDefinition] = (),
    ) -> Blueprint:
        """The drop-in pages (``tenantkit[ui]``): team, invitations, the accept page, API keys, audit log.

        The same pages as :meth:`TenantKitFastAPI.pages <tenantkit.fastapi.TenantKitFastAPI.pages>`, from
        the same table and templates, as the signed-in user of ``current_user`` on the host's ``session``::

            app.register_blueprint(tk.pages_blueprint(secret_key=PAGES_SECRET), url_prefix="/account")

        Args:
            name: The blueprint's name.
            secret_key: Signs the CSRF tokens and the result messages (at least 16 characters).
            templates: Directories whose ``tenantkit/*.html`` override the package's templates.
            include: The pages to mount by name (see :data:`tenantkit.ui.PAGES`); the accept page is always
                mounted, and the webhook pages only when the kit has webhooks.
            csrf: Another CSRF token provider (:class:`tenantkit.ui.CsrfTokens`). Without one, the pages use
                Flask-WTF's tokens (:class:`tenantkit.ui.FlaskWtfTokens`) on an app whose Flask-WTF
                ``CSRFProtect`` is enabled, decided on each request, and their own signed double submit
                elsewhere. With one, the blueprint is exempted from an app's ``CSRFProtect`` registered
                before it, which would refuse any token but its own (the pages check ``csrf``'s).
            translations: Directories of the host's catalogs (``<locale>/LC_MESSAGES/tenantkit.po``), read
                once, whose translations win over the package's (see the pages guide).
            time_zone: The IANA zone of dates for viewers whose ``Principal.time_zone`` is unset (UTC).
            extra_pages: Pages of your own (:class:`tenantkit.ui.PageDefinition`), mounted beside these
                with the same sign-in, CSRF and templates (see the pages guide).
        """
        from tenantkit.ui._flask_wtf import FlaskWtfTokens, exempt_pages
        from tenantkit.ui._site import PageSite

        if self._current_user is None:
            raise TypeError("TenantKitFlask needs current_user= for the pages")
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
        bp = Blueprint(name, __name__)
        if csrf is not None and not isinstance(csrf, FlaskWtfTokens):
            bp.record_once(lambda state: exempt_pages(state.app, bp))
        for page_route in site.routes():
            endpoint = page_route.name.replace(".", "_")
            bp.add_url_rule(
                page_route.path_as("<{}>"),
                endpoint,
                self._page_view(site, page_route, own_csrf=csrf is not None),
                methods=[page_route.method],
            )
        return bp

    def _page_view(
        self, site: PageSite, page_route: PageRoute, *, own_csrf: bool
    ) -> Callable[..., ResponseReturnValue]:
        from tenantkit.ui._flask_wtf import flask_wtf_tokens
        from tenantkit.ui._site import PageRequest

        def view(**path_values: str) -> ResponseReturnValue:
            if not page_route.signed_in:
                return _page_response(site.static(path_values.get("filename", "")))
            principal = self.principal()
            form = (
                {key: request.form.getlist(key) for key in request.form} if request.method == "POST" else {}
            )
            page_request = PageRequest(
                method=request.method,
                path=request.path,
                path_values=path_values,
                query=request.args.to_dict(),
                form=form,
                cookies=request.cookies.to_dict(),
                origin=request.headers.get("Origin"),
                own_origin=request.host_url.rstrip("/"),
                accept_language=request.headers.get("Accept-Language"),
                htmx=request.headers.get("HX-Request") == "true",
            )
            with audit_context(self.request_context()):
                answer = self._run(
                    lambda session: site.handle(
                        session,
                        page_route,
                        page_request,
                        principal,
                        # Flask-WTF's CSRFProtect refuses any other token before this view runs.
                        csrf=None if own_csrf else flask_wtf_tokens(current_app),
                    ),
                    writes=False,
                )
            if answer.commit:
                self._finish(self.session())
            return _page_response(answer)

        return view

    def _view(self, route: Route) -> Callable[..., ResponseReturnValue]:
        """The view serving ``route``: read the request in FastAPI's order, run the work, answer JSON.

        The body is parsed before the current-user hook and validated after it (see :func:`_json_payload`),
        and the query string is validated last, so a request with several faults is refused for the same
        one by both adapters.
        """
        management = self.management

        def view(**path_values: str) -> ResponseReturnValue:
            payload = _json_payload() if route.body is not None else _ABSENT
            arguments: dict[str, Any] = dict(path_values)
            if route.signed_in:
                arguments["principal"] = self.principal()
            if route.body is not None:
                body = _validate(route.body, payload, optional=route.body_optional)
                arguments["body"] = route.body_or_default(body)
            if route.query is not None:
                arguments.update(_query(route.query).model_dump())
            call = functools.partial(route.call, management)
            with audit_context(self.request_context()):
                result = self._run(call, writes=route.writes, **arguments)
            return _model(result, route.status, dict(route.headers))

        view.__name__ = view.__qualname__ = route.name
        view.__doc__ = route.description
        return view
