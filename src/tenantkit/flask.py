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

import functools
import json
import re
from collections.abc import Callable
from typing import Any, ClassVar, ParamSpec, TypeVar

from flask import Blueprint, Flask, Response, current_app, g, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session, scoped_session
from werkzeug.exceptions import HTTPException

from tenantkit._api_keys import ApiKeyVerification
from tenantkit._errors import InvalidApiKeyError, InvalidInputError, TenantKitError
from tenantkit._http import (
    Authorization,
    ChangeRoleRequest,
    CreateInvitationRequest,
    IssueApiKeyRequest,
    Management,
    Principal,
    RotateApiKeyRequest,
    TokenRequest,
    TransferOwnershipRequest,
    api_key_from_headers,
    as_principal,
    error_body,
    error_headers,
    status_for,
    validation_error,
)
from tenantkit._kit import TenantKit
from tenantkit._pagination import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from tenantkit._roles import Action

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


class _ListQuery(BaseModel):
    """The query string of a listing, with the same bounds as the FastAPI router."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="ignore")

    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH)


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


def _model(model: BaseModel, status: int = 200) -> Response:
    return _json(model.model_dump(mode="json"), status)


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


def _required(model: type[M], payload: object) -> M:
    body = _validate(model, payload)
    assert body is not None
    return body


def _list_query() -> _ListQuery:
    try:
        return _ListQuery.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise validation_error(error.errors(include_url=False, include_context=False)) from None


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
    """

    def __init__(
        self,
        kit: TenantKit,
        *,
        session: Callable[[], Session | scoped_session[Session]],
        current_user: Callable[[], Principal | str] | None = None,
        commit: bool = True,
        app: Flask | None = None,
    ) -> None:
        self.kit = kit
        self.management: Management = Management(kit)
        self._session = session
        self._current_user = current_user
        self._commit = commit
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

    def _finish(self, session: Session) -> None:
        if self._commit:
            session.commit()

    def _run(self, function: Callable[..., R], *args: Any, mutation: bool = False) -> R:
        """Call ``function(session, *args)``; commit a successful change, roll back any failure."""
        session = self.session()
        try:
            result = function(session, *args)
            if mutation:
                self._finish(session)
        except BaseException:
            if self._commit:
                session.rollback()
            raise
        return result

    # -- decorators ------------------------------------------------------------------------------------

    def require_api_key(
        self, *scopes: str, organization_id: str | None = None
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

        Returns:
            The decorator.
        """
        required = tuple(scopes)

        def decorator(view: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(view)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                presented = api_key_from_headers(request.headers)
                if presented is None:
                    raise InvalidApiKeyError("missing")
                session = self.session()
                verified, wrote = self.kit.api_keys.authenticate_and_report(
                    session, presented, organization_id=organization_id, scopes=required
                )
                if wrote and session.in_transaction():
                    # The last-used write (at most once a minute per key) lands in this request's transaction;
                    # a verification that wrote nothing leaves nothing to commit.
                    self._finish(session)
                setattr(g, _API_KEY_ATTRIBUTE, verified)
                return view(*args, **kwargs)

            return wrapper

        return decorator

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
            action: The action of the permission table (built-in or the host's own).
            organization_id_arg: The URL variable holding the organization id.

        Returns:
            The decorator.
        """

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
                role = self.kit.members.authorize(self.session(), organization, principal.user_id, action)
                setattr(
                    g,
                    _AUTHORIZATION_ATTRIBUTE,
                    Authorization(organization_id=organization, user_id=principal.user_id, role=role),
                )
                return view(*args, **kwargs)

            return wrapper

        return decorator

    # -- the management blueprint ----------------------------------------------------------------------

    def blueprint(self, name: str = "tenantkit") -> Blueprint:
        """The management endpoints: members, API keys and invitations of an organization.

        Every route acts as the signed-in user, whose role bounds what it may do. Register it under any
        prefix; paths are ``/organizations/<organization_id>/members`` and so on, plus
        ``/invitations/preview`` and ``/invitations/accept`` for invitees. Bodies are JSON and validated
        with the same models as the FastAPI router: a missing, malformed or invalid body is answered 422
        ``invalid_input``.

        Args:
            name: The blueprint's name (give another one to register it twice).
        """
        if self._current_user is None:
            raise TypeError("TenantKitFlask needs current_user= for the blueprint")
        bp = Blueprint(name, __name__)
        bp.register_error_handler(HTTPException, _http_error)
        bp.register_error_handler(TenantKitError, error_response)
        management = self.management
        run = self._run
        principal = self.principal
        org = "/organizations/<organization_id>"

        @bp.get(f"{org}/members")
        def list_members(organization_id: str) -> ResponseReturnValue:
            """List the organization's members (needs ``members:read``)."""
            who = principal()
            query = _list_query()
            page = run(management.list_members, organization_id, who, query.limit, query.cursor)
            return _model(page)

        @bp.patch(f"{org}/members/<user_id>")
        def change_role(organization_id: str, user_id: str) -> ResponseReturnValue:
            """Change a member's role (never above the actor's own)."""
            payload = _json_payload()
            who = principal()
            body = _required(ChangeRoleRequest, payload)
            member = run(management.change_role, organization_id, who, user_id, body, mutation=True)
            return _model(member)

        @bp.delete(f"{org}/members/<user_id>")
        def remove_member(organization_id: str, user_id: str) -> ResponseReturnValue:
            """Remove a member (never the last OWNER)."""
            member = run(management.remove_member, organization_id, principal(), user_id, mutation=True)
            return _model(member)

        @bp.post(f"{org}/leave")
        def leave(organization_id: str) -> ResponseReturnValue:
            """Leave the organization (the last OWNER cannot)."""
            return _model(run(management.leave, organization_id, principal(), mutation=True))

        @bp.post(f"{org}/transfer-ownership")
        def transfer_ownership(organization_id: str) -> ResponseReturnValue:
            """Make another member OWNER; the actor steps down to ``demote_to``."""
            payload = _json_payload()
            who = principal()
            body = _required(TransferOwnershipRequest, payload)
            return _model(run(management.transfer_ownership, organization_id, who, body, mutation=True))

        @bp.get(f"{org}/api-keys")
        def list_api_keys(organization_id: str) -> ResponseReturnValue:
            """List the organization's API keys (metadata only, never a secret)."""
            who = principal()
            query = _list_query()
            page = run(management.list_api_keys, organization_id, who, query.limit, query.cursor)
            return _model(page)

        @bp.post(f"{org}/api-keys")
        def issue_api_key(organization_id: str) -> ResponseReturnValue:
            """Issue an API key; the response holds the key, this once."""
            payload = _json_payload()
            who = principal()
            body = _required(IssueApiKeyRequest, payload)
            issued = run(management.issue_api_key, organization_id, who, body, mutation=True)
            return _model(issued, 201)

        @bp.post(f"{org}/api-keys/<key_id>/revoke")
        def revoke_api_key(organization_id: str, key_id: str) -> ResponseReturnValue:
            """Revoke an API key: it stops verifying at once."""
            return _model(run(management.revoke_api_key, organization_id, principal(), key_id, mutation=True))

        @bp.post(f"{org}/api-keys/<key_id>/rotate")
        def rotate_api_key(organization_id: str, key_id: str) -> ResponseReturnValue:
            """Replace a key with a new one; the old one works until the grace period ends."""
            payload = _json_payload()
            who = principal()
            body = _validate(RotateApiKeyRequest, payload, optional=True) or RotateApiKeyRequest()
            issued = run(management.rotate_api_key, organization_id, who, key_id, body, mutation=True)
            return _model(issued, 201)

        @bp.get(f"{org}/invitations")
        def list_invitations(organization_id: str) -> ResponseReturnValue:
            """List pending invitations (never a token)."""
            who = principal()
            query = _list_query()
            page = run(management.list_invitations, organization_id, who, query.limit, query.cursor)
            return _model(page)

        @bp.post(f"{org}/invitations")
        def create_invitation(organization_id: str) -> ResponseReturnValue:
            """Invite by email, or create a link for addresses in allowed domains; the token is shown once."""
            payload = _json_payload()
            who = principal()
            body = _required(CreateInvitationRequest, payload)
            created = run(management.create_invitation, organization_id, who, body, mutation=True)
            return _model(created, 201)

        @bp.post(f"{org}/invitations/<invitation_id>/revoke")
        def revoke_invitation(organization_id: str, invitation_id: str) -> ResponseReturnValue:
            """Revoke an invitation: its token stops working."""
            revoked = run(
                management.revoke_invitation, organization_id, principal(), invitation_id, mutation=True
            )
            return _model(revoked)

        @bp.post(f"{org}/invitations/<invitation_id>/resend")
        def resend_invitation(organization_id: str, invitation_id: str) -> ResponseReturnValue:
            """Give an invitation a new token; the old token stops working."""
            resent = run(
                management.resend_invitation, organization_id, principal(), invitation_id, mutation=True
            )
            return _model(resent)

        @bp.post("/invitations/preview")
        def preview_invitation() -> ResponseReturnValue:
            """Describe the invitation a token stands for, without using it up."""
            body = _required(TokenRequest, _json_payload())
            return _model(run(management.preview_invitation, body))

        @bp.post("/invitations/accept")
        def accept_invitation() -> ResponseReturnValue:
            """Accept an invitation as the signed-in user, with the identity provider's verified email."""
            payload = _json_payload()
            who = principal()
            body = _required(TokenRequest, payload)
            return _model(run(management.accept_invitation, who, body, mutation=True))

        return bp
