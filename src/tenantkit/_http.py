"""What the web adapters share: credentials from headers, and errors as HTTP statuses and JSON bodies.

Adapters translate; they decide nothing. Both the FastAPI and the Flask adapter use this module, so one
request gets the same answer from either.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TextIO

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, ActorKind
from tenantkit._context import FORWARDED_FOR_HEADER, client_address, parse_ip_address
from tenantkit._errors import (
    AmbiguousApiKeyError,
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConflictError,
    GoneError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    TenantKitError,
    TooManyRequestsError,
    UnavailableError,
)
from tenantkit._pagination import Page
from tenantkit._validation import MAX_IDENTIFIER_LENGTH
from tenantkit.api_keys._limits import ApiKeyLimits, ApiKeySubject, SubjectType
from tenantkit.api_keys._service import ApiKey, ApiKeyVerification, PendingVerification
from tenantkit.audit._export import ExportFormat
from tenantkit.audit._model import AuditEvent
from tenantkit.departments._service import Department
from tenantkit.domains._service import OrganizationDomain
from tenantkit.invitations._service import (
    AcceptedInvitation,
    CreatedInvitation,
    Invitation,
    InvitationPreview,
)
from tenantkit.members._service import Member
from tenantkit.organizations._service import SettingsSnapshot
from tenantkit.roles._policy import CustomRole, Role
from tenantkit.sso._service import Provider, RoleAuthority, SsoConnection, SsoProtocol
from tenantkit.webhooks._models import WebhookDelivery, WebhookEndpoint
from tenantkit.webhooks._service import MAX_DESCRIPTION_LENGTH as MAX_WEBHOOK_DESCRIPTION_LENGTH
from tenantkit.webhooks._service import MAX_EVENT_TYPES as MAX_WEBHOOK_EVENT_TYPES
from tenantkit.webhooks._targets import MAX_URL_LENGTH as MAX_WEBHOOK_URL_LENGTH

if TYPE_CHECKING:
    from tenantkit._kit import TenantKit
    from tenantkit._settings import HttpSettings

API_KEY_HEADER = "X-API-Key"
WWW_AUTHENTICATE = 'Bearer realm="api", charset="UTF-8"'

# One row per kind of error (see tenantkit._errors): every error sits under exactly one kind, so the order
# of the rows does not matter and a new feature's errors need no row of their own.
_STATUS_BY_KIND: Mapping[type[TenantKitError], int] = {
    InvalidRequestError: 422,
    AuthenticationError: 401,
    AuthorizationError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    GoneError: 410,
    TooManyRequestsError: 429,
    UnavailableError: 503,
    ConfigurationError: 400,
}


class ErrorDetail(BaseModel):
    """The body of every error response: a stable ``code``, a ``message``, and the error's data."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorResponse(BaseModel):
    """``{"error": {"code": ..., "message": ..., ...}}``."""

    error: ErrorDetail


def status_for(error: TenantKitError) -> int:
    """The HTTP status an adapter answers ``error`` with."""
    for error_class in type(error).__mro__:
        status = _STATUS_BY_KIND.get(error_class)
        if status is not None:
            return status
    return 400  # a host's own TenantKitError subclass outside every kind


def error_body(error: TenantKitError) -> dict[str, object]:
    """The JSON body for ``error``."""
    return {"error": error.to_dict()}


def error_headers(error: TenantKitError) -> dict[str, str]:
    """Headers that must accompany ``error``: a 401 names its authentication scheme; a 429 says when to
    retry and, for a rate limit, the IETF draft's ``RateLimit-Policy`` and ``RateLimit``."""
    if isinstance(error, TooManyRequestsError):
        return rate_limit_headers(error)
    if status_for(error) == 401:
        return {"WWW-Authenticate": WWW_AUTHENTICATE}
    return {}


def rate_limit_headers(error: TooManyRequestsError) -> dict[str, str]:
    """``Retry-After`` (seconds), and for a :class:`RateLimitedError` the limits it checked, as
    draft-ietf-httpapi-ratelimit-headers writes them::

        RateLimit-Policy: "100 per 1 minute";q=100;w=60
        RateLimit: "100 per 1 minute";r=0;t=17

    ``q`` is the quota, ``w`` the window in seconds, ``r`` what remains and ``t`` the seconds until reset.
    """
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(max(1, error.retry_after))
    if isinstance(error, RateLimitedError) and error.limits:
        policies, states = [], []
        for state in error.limits:
            name = _sf_string(str(state["policy"]))
            policies.append(f"{name};q={state['limit']};w={state['window']}")
            states.append(f"{name};r={state['remaining']};t={state['reset']}")
        headers["RateLimit-Policy"] = ", ".join(policies)
        headers["RateLimit"] = ", ".join(states)
    return headers


def _sf_string(text: str) -> str:
    """``text`` as a structured-field string (RFC 8941): quoted, with ``\\`` and ``"`` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def api_key_from_environ(environ: Mapping[str, Any]) -> str | None:
    """The API key a WSGI request presents (see :func:`api_key_from_values`); repeated headers arrive joined.

    Two dictionary reads, where werkzeug's ``getlist`` walks the whole environ once per header.
    """
    authorization = environ.get("HTTP_AUTHORIZATION")
    header_key = environ.get(_API_KEY_ENVIRON)
    return api_key_from_values(
        () if authorization is None else (authorization,), () if header_key is None else (header_key,)
    )


def api_key_from_scope(scope: Mapping[str, Any]) -> str | None:
    """The API key an ASGI request presents (see :func:`api_key_from_values`): one pass over its headers.

    Starlette's ``Headers.getlist`` decodes every header on each call; the two credentials are picked out
    here in one loop (header names in ASGI are lower-case bytes, values latin-1 as Starlette reads them).
    """
    authorizations: list[str] = []
    header_keys: list[str] = []
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorizations.append(value.decode("latin-1"))
        elif name == _API_KEY_ASGI:
            header_keys.append(value.decode("latin-1"))
    return api_key_from_values(authorizations, header_keys)


_API_KEY_ASGI = API_KEY_HEADER.lower().encode("latin-1")
_API_KEY_ENVIRON = "HTTP_" + API_KEY_HEADER.upper().replace("-", "_")


def api_key_from_values(authorizations: Sequence[str], header_keys: Sequence[str]) -> str | None:
    """The API key presented by the values of ``Authorization: Bearer …`` and ``X-API-Key``.

    A request that presents no key gets ``None``; one that presents an empty or non-Bearer credential gets
    ``""``, which verifies as malformed. Both headers may be sent if they carry the same key.

    Raises:
        AmbiguousApiKeyError: The request presents more than one key: a header sent twice, or both
            headers with different values. Starlette would read the first of two headers and a WSGI
            server joins them with a comma, so the rule is the same for both adapters: a header may
            appear once, and a comma (which no key or Bearer token contains) counts as a second value.
    """
    if len(authorizations) > 1 or len(header_keys) > 1:
        raise AmbiguousApiKeyError()
    if any("," in value for value in (*authorizations, *header_keys)):
        raise AmbiguousApiKeyError()
    bearer = None
    if authorizations:
        scheme, _, credentials = authorizations[0].strip().partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else ""
    header_key = header_keys[0].strip() if header_keys else None
    # Constant time all the same: the comparison must not tell a caller how much of a key matched.
    both = bearer is not None and header_key is not None
    if both and not hmac.compare_digest(str(bearer).encode(), str(header_key).encode()):
        raise AmbiguousApiKeyError()
    return bearer if bearer is not None else header_key


class AsgiClient:
    """The client of an ASGI request, as a bound API key asks about it: read only when a key asks.

    The address is :func:`~tenantkit._context.client_address` of the peer and ``X-Forwarded-For`` under
    ``HttpSettings.trusted_proxies``; the certificate thumbprint is the ``client_certificate_header``,
    believed only when the peer is a trusted proxy (any client could send that header itself).
    """

    __slots__ = ("_http", "_scope")

    def __init__(self, scope: Mapping[str, Any], http: HttpSettings) -> None:
        self._scope = scope
        self._http = http

    def _peer(self) -> str | None:
        client = self._scope.get("client")
        return str(client[0]) if client else None

    def _header(self, name: str) -> list[str]:
        wanted = name.lower().encode("latin-1")
        return [value.decode("latin-1") for key, value in self._scope["headers"] if key == wanted]

    @property
    def address(self) -> str | None:
        """The client's address under the trusted-proxy setting."""
        return client_address(self._peer(), self._header(FORWARDED_FOR_HEADER), self._http.proxies)

    @property
    def certificate_thumbprint(self) -> str | None:
        """The thumbprint the trusted TLS-terminating proxy forwarded, or ``None``."""
        return _forwarded_thumbprint(self._http, self._peer(), self._header)


class WsgiClient:
    """The client of a WSGI request (see :class:`AsgiClient`); ``REMOTE_ADDR`` is the peer."""

    __slots__ = ("_environ", "_http")

    def __init__(self, environ: Mapping[str, Any], http: HttpSettings) -> None:
        self._environ = environ
        self._http = http

    def _header(self, name: str) -> list[str]:
        value = self._environ.get("HTTP_" + name.upper().replace("-", "_"))
        return [] if value is None else [str(value)]

    @property
    def address(self) -> str | None:
        """The client's address under the trusted-proxy setting."""
        return client_address(
            self._environ.get("REMOTE_ADDR"), self._header(FORWARDED_FOR_HEADER), self._http.proxies
        )

    @property
    def certificate_thumbprint(self) -> str | None:
        """The thumbprint the trusted TLS-terminating proxy forwarded, or ``None``."""
        return _forwarded_thumbprint(self._http, self._environ.get("REMOTE_ADDR"), self._header)


def _forwarded_thumbprint(
    http: HttpSettings, peer: str | None, header: Callable[[str], list[str]]
) -> str | None:
    name = http.client_certificate_header
    if name is None or peer is None:
        return None
    address = parse_ip_address(peer)
    if address is None or address not in http.proxies:
        return None  # not from the proxy that terminates TLS: anyone may send the header
    values = header(name)
    return values[0] if len(values) == 1 else None


def complete_on_engine(pending: PendingVerification, engine: Engine) -> ApiKeyVerification:
    """Complete ``pending`` on a connection of ``engine`` of its own, committing only if it wrote.

    What the adapters do on a cache miss when given ``database=``: the host's session is never opened.
    """
    with engine.connect() as connection:
        verified, wrote = pending.complete_on_own_connection(connection)
        if wrote:
            connection.commit()
    return verified


class Principal(BaseModel):
    """The signed-in user of a request, as the host's identity provider vouches for them.

    Adapters ask the host for it (a FastAPI dependency, a Flask callable): tenantkit never authenticates
    people itself. ``email`` and ``email_verified`` matter only for accepting invitations.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    user_id: str
    email: str | None = None
    email_verified: bool = False
    claims: dict[str, Any] = Field(default_factory=dict)
    """What the host vouches for about the user (from its identity provider, or a check such as a licence
    registry look-up it ran before): the accept endpoint hands them to the accept policy. tenantkit never
    takes them from a request body."""
    locale: str | None = None
    """The user's language (``"de"``, ``"pt-BR"``), for the drop-in pages: a catalog of it is used when one
    exists; otherwise the browser's ``Accept-Language`` chooses, then English."""
    time_zone: str | None = None
    """The user's IANA time zone (``"America/New_York"``), in which the drop-in pages show dates; otherwise
    the pages' ``time_zone=`` (UTC by default)."""


class Authorization(BaseModel):
    """What a permission check establishes: this user, in this organization, holds this role.

    ``role`` is the rank; ``custom_role`` the key of the custom role held inside it (``"physician"``), or
    ``None`` for the rank alone. Both are ``None`` only when the host itself acted (``tenantkit.HOST``).

    .. versionchanged:: 0.2 ``custom_role``.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    organization_id: str
    user_id: str
    role: Role | None
    custom_role: str | None = None


def as_principal(value: Principal | str) -> Principal:
    """Accept a :class:`Principal` or a bare user id from the host's current-user hook."""
    if isinstance(value, Principal):
        return value
    if isinstance(value, str):
        return Principal(user_id=value)
    raise TypeError(f"the current-user hook must return a Principal or a user id, not {type(value).__name__}")


_RoleName = Annotated[
    Role | Annotated[str, Field(min_length=1, max_length=64)],
    Field(description="A rank (OWNER, ADMIN, MEMBER) or a custom role's key."),
]


class ChangeRoleRequest(BaseModel):
    """Body of "change a member's role": a rank, or a custom role's key (its rank comes with it)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    role: _RoleName


class TransferOwnershipRequest(BaseModel):
    """Body of "transfer ownership": the new owner, and the role the current owner steps down to."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    to_user_id: str = Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)
    demote_to: _RoleName = Role.ADMIN


class IssueApiKeyRequest(BaseModel):
    """Body of "issue an API key"."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    expires_in_seconds: int | None = Field(default=None, gt=0, le=10 * 365 * 24 * 3600)
    subject: ApiKeySubject | None = Field(
        default=None,
        description=(
            'Whom the key stands for: {"type": "user", "id": ...} (a member), {"type": "device", "id": ...}; '
            "the organization when left out."
        ),
    )
    limits: ApiKeyLimits | None = Field(
        default=None,
        description="Opt-in usage credits, refill, rate limits and network/certificate bindings.",
    )


class CreditsRequest(BaseModel):
    """Body of "set credits" (zero or more) and "add credits" (negative takes away, never below zero)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    credits: int = Field(strict=True, ge=-(2**62), lt=2**62)


class RevokeSubjectRequest(BaseModel):
    """Body of "revoke by subject": every active key standing for this subject is revoked."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    subject: ApiKeySubject


class RevokedApiKeysResponse(BaseModel):
    """The ids of the keys a revocation by subject revoked (keys revoked before are left out)."""

    revoked: list[str]


class RotateApiKeyRequest(BaseModel):
    """Body of "rotate an API key": how long the old key keeps working, at most."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 24 * 3600)


class IssuedApiKeyResponse(BaseModel):
    """A newly issued key: its metadata and, this once, the key itself."""

    api_key: ApiKey
    key: str = Field(description="The API key. It is shown this once and cannot be retrieved again.")


class CreateInvitationRequest(BaseModel):
    """Body of "invite": either an ``email``, or ``allowed_domains`` for a shareable link."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, max_length=MAX_IDENTIFIER_LENGTH)
    allowed_domains: list[str] | None = Field(default=None, min_length=1, max_length=50)
    role: _RoleName | None = Field(
        default=None,
        description=(
            "The role offered (a rank or a custom role's key); the organization's default role when left out."
        ),
    )
    max_uses: int | None = Field(default=None, gt=0, le=1_000_000)
    expires_in_seconds: int | None = Field(default=None, gt=0)
    requirements: dict[str, Any] | None = None


class SuspendRequest(BaseModel):
    """Body of "suspend a member": why, for the member and the audit log."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=200)


class LapsingQuery(BaseModel):
    """The query string of "members lapsing": a page, the cutoff (now when left out: those lapsed already),
    and whether to include suspended members."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="ignore")

    before: datetime | None = None
    include_suspended: bool = False
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=2000)


class DepartmentRequest(BaseModel):
    """Body of "create a department" (``name`` required) and "update a department" (either field)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class UpdateSettingsRequest(BaseModel):
    """Body of "update settings": the version read, the keys to set, and the keys to return to defaults."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    expected_version: int = Field(
        ge=0, description="The ``version`` the settings had when read (0 when nothing is stored)."
    )
    changes: dict[str, Any] = Field(default_factory=dict, max_length=200)
    unset: list[str] = Field(default_factory=list, max_length=200)


class CreatedInvitationResponse(BaseModel):
    """A new (or re-sent) invitation and, this once, its token and accept URL."""

    invitation: Invitation
    token: str = Field(description="The invitation token. It is shown this once; deliver it to the invitee.")
    accept_url: str | None = None


class CreateRoleRequest(BaseModel):
    """Body of "create a custom role"."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    rank: Role = Field(description="ADMIN or MEMBER.")
    permissions: list[str] = Field(default_factory=list, max_length=200)
    description: str = Field("", max_length=2000)


class UpdateRoleRequest(BaseModel):
    """Body of "edit a custom role": the fields to change (a missing one stays as it is)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    permissions: list[str] | None = Field(None, max_length=200)


class DeletedRoleResponse(BaseModel):
    """A deleted custom role, and how many members moved to ``reassign_to``."""

    key: str
    reassigned_members: int


class CreateWebhookEndpointRequest(BaseModel):
    """Body of "create a webhook endpoint": where to send, which event types, and a note."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=MAX_WEBHOOK_URL_LENGTH)
    event_types: list[str] = Field(max_length=MAX_WEBHOOK_EVENT_TYPES)
    description: str | None = Field(default=None, max_length=MAX_WEBHOOK_DESCRIPTION_LENGTH)


class UpdateWebhookEndpointRequest(BaseModel):
    """Body of "update a webhook endpoint": each field given replaces the endpoint's, each left out stays."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=MAX_WEBHOOK_URL_LENGTH)
    event_types: list[str] | None = Field(default=None, max_length=MAX_WEBHOOK_EVENT_TYPES)
    description: str | None = Field(default=None, max_length=MAX_WEBHOOK_DESCRIPTION_LENGTH)


class RotateWebhookSecretRequest(BaseModel):
    """Body of "rotate a webhook secret": how long the previous secret still signs (the setting's default)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 24 * 3600)


class RecoverWebhookDeliveriesRequest(BaseModel):
    """Body of "recover": queue again what failed for good since this time (ISO 8601, with a zone)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    since: datetime


class CreatedWebhookEndpointResponse(BaseModel):
    """A new endpoint (or one whose secret was just rotated) and, this once, its signing secret."""

    endpoint: WebhookEndpoint
    secret: str = Field(
        description="The whsec_ signing secret. It is shown this once; hand it to the receiver."
    )


class ResentWebhookMessageResponse(BaseModel):
    """The deliveries a resend queued: one per enabled endpoint the message went to."""

    deliveries: list[WebhookDelivery]


class RecoveredWebhookDeliveriesResponse(BaseModel):
    """How many failed deliveries a recover queued again."""

    recovered: int


class AddDomainRequest(BaseModel):
    """Body of "add a domain": the domain to claim (Unicode or IDNA), proven later by a DNS TXT record."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    domain: str = Field(min_length=1, max_length=253)


class AddedDomainResponse(BaseModel):
    """A newly claimed domain and, this once, the TXT record that proves it."""

    domain: OrganizationDomain
    record_name: str | None = Field(description="Where to publish the TXT record.")
    record_value: str | None = Field(
        description="The TXT record's value, carrying the verification token. It is shown this once."
    )


class CreateSsoConnectionRequest(BaseModel):
    """Body of "create an SSO connection": the provider's connection and the policy of its logins."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    provider: Provider
    protocol: SsoProtocol
    provider_connection_id: str = Field(min_length=1, max_length=MAX_IDENTIFIER_LENGTH)
    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    enforce: bool = False
    jit: bool = False
    default_role: Role = Role.MEMBER
    role_authority: RoleAuthority = "tenantkit"


class UpdateSsoConnectionRequest(BaseModel):
    """Body of "update an SSO connection": each field given changes, each left out stays."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    enforce: bool | None = None
    jit: bool | None = None
    default_role: Role | None = None
    role_authority: RoleAuthority | None = None


class TokenRequest(BaseModel):
    """Body of "preview" and "accept": the invitation token (sent in the body so it stays out of logs)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=4096)


class Management:
    """The management endpoints' work, framework-free: call the service as the principal, shape the answer.

    Authorization is the services' job (every read and change takes the actor), never this layer's.

    Each method takes the request's ``Session`` first (so FastAPI can run it through
    ``AsyncSession.run_sync``) and never commits: the adapter commits after a mutation succeeds.
    """

    def __init__(self, kit: TenantKit) -> None:
        self.kit = kit

    # -- members ---------------------------------------------------------------------------------------

    def list_members(
        self, session: Session, organization_id: str, principal: Principal, limit: int, cursor: str | None
    ) -> Page[Member]:
        return self.kit.members.list_members(
            session, organization_id, actor=principal.user_id, limit=limit, cursor=cursor
        )

    def change_role(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        user_id: str,
        body: ChangeRoleRequest,
    ) -> Member:
        return self.kit.members.change_role(
            session, organization_id, user_id, body.role, actor=principal.user_id
        )

    def remove_member(
        self, session: Session, organization_id: str, principal: Principal, user_id: str
    ) -> Member:
        return self.kit.members.remove(session, organization_id, user_id, actor=principal.user_id)

    def leave(self, session: Session, organization_id: str, principal: Principal) -> Member:
        return self.kit.members.leave(session, organization_id, actor=principal.user_id)

    def transfer_ownership(
        self, session: Session, organization_id: str, principal: Principal, body: TransferOwnershipRequest
    ) -> Member:
        return self.kit.members.transfer_ownership(
            session, organization_id, body.to_user_id, actor=principal.user_id, demote_to=body.demote_to
        )

    def suspend_member(
        self, session: Session, organization_id: str, principal: Principal, user_id: str, body: SuspendRequest
    ) -> Member:
        return self.kit.members.suspend(
            session, organization_id, user_id, actor=principal.user_id, reason=body.reason
        )

    def resume_member(
        self, session: Session, organization_id: str, principal: Principal, user_id: str
    ) -> Member:
        return self.kit.members.resume(session, organization_id, user_id, actor=principal.user_id)

    def list_lapsing_members(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        before: datetime | None,
        include_suspended: bool,
        limit: int,
        cursor: str | None,
    ) -> Page[Member]:
        return self.kit.members.list_lapsing(
            session,
            organization_id,
            self.kit.clock() if before is None else before,
            actor=principal.user_id,
            include_suspended=include_suspended,
            limit=limit,
            cursor=cursor,
        )

    # -- departments -----------------------------------------------------------------------------------

    def list_departments(
        self, session: Session, organization_id: str, principal: Principal, limit: int, cursor: str | None
    ) -> Page[Department]:
        return self.kit.departments.list_departments(
            session, organization_id, actor=principal.user_id, limit=limit, cursor=cursor
        )

    def create_department(
        self, session: Session, organization_id: str, principal: Principal, body: DepartmentRequest
    ) -> Department:
        if body.name is None:
            raise InvalidInputError("name", "is required")
        return self.kit.departments.create(
            session, organization_id, body.name, actor=principal.user_id, description=body.description
        )

    def update_department(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        department_id: str,
        body: DepartmentRequest,
    ) -> Department:
        return self.kit.departments.update(
            session,
            organization_id,
            department_id,
            actor=principal.user_id,
            name=body.name,
            description=body.description,
        )

    def delete_department(
        self, session: Session, organization_id: str, principal: Principal, department_id: str
    ) -> Department:
        return self.kit.departments.delete(session, organization_id, department_id, actor=principal.user_id)

    def list_department_members(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        department_id: str,
        limit: int,
        cursor: str | None,
    ) -> Page[Member]:
        return self.kit.departments.list_members(
            session, organization_id, department_id, actor=principal.user_id, limit=limit, cursor=cursor
        )

    def add_department_member(
        self, session: Session, organization_id: str, principal: Principal, department_id: str, user_id: str
    ) -> Member:
        return self.kit.departments.add_member(
            session, organization_id, department_id, user_id, actor=principal.user_id
        )

    def remove_department_member(
        self, session: Session, organization_id: str, principal: Principal, department_id: str, user_id: str
    ) -> Member:
        member = self.kit.members.get(session, organization_id, user_id, actor=principal.user_id)
        self.kit.departments.remove_member(
            session, organization_id, department_id, user_id, actor=principal.user_id
        )
        return member

    # -- custom roles ----------------------------------------------------------------------------------

    def list_roles(self, session: Session, organization_id: str, principal: Principal) -> Page[CustomRole]:
        return Page(items=self.kit.roles.list_roles(session, organization_id, actor=principal.user_id))

    def create_role(
        self, session: Session, organization_id: str, principal: Principal, body: CreateRoleRequest
    ) -> CustomRole:
        return self.kit.roles.create(
            session,
            organization_id,
            body.key,
            name=body.name,
            rank=body.rank,
            permissions=body.permissions,
            description=body.description,
            actor=principal.user_id,
        )

    def update_role(
        self, session: Session, organization_id: str, principal: Principal, key: str, body: UpdateRoleRequest
    ) -> CustomRole:
        return self.kit.roles.update(
            session,
            organization_id,
            key,
            actor=principal.user_id,
            name=body.name,
            description=body.description,
            permissions=body.permissions,
        )

    def delete_role(
        self, session: Session, organization_id: str, principal: Principal, key: str, reassign_to: str | None
    ) -> DeletedRoleResponse:
        moved = self.kit.roles.delete(
            session, organization_id, key, actor=principal.user_id, reassign_to=reassign_to
        )
        return DeletedRoleResponse(key=key, reassigned_members=moved)

    # -- API keys --------------------------------------------------------------------------------------

    def list_api_keys(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        limit: int,
        cursor: str | None,
        subject_type: SubjectType | None,
        subject_id: str | None,
    ) -> Page[ApiKey]:
        subject = None
        if subject_type is not None:
            subject = ApiKeySubject.parse({"type": subject_type, "id": subject_id})
        elif subject_id is not None:
            raise InvalidInputError("subject_type", "give subject_type with subject_id")
        return self.kit.api_keys.list_keys(
            session, organization_id, actor=principal.user_id, limit=limit, cursor=cursor, subject=subject
        )

    def issue_api_key(
        self, session: Session, organization_id: str, principal: Principal, body: IssueApiKeyRequest
    ) -> IssuedApiKeyResponse:
        expires = None if body.expires_in_seconds is None else timedelta(seconds=body.expires_in_seconds)
        issued = self.kit.api_keys.issue(
            session,
            organization_id,
            body.name,
            actor=principal.user_id,
            expires=expires,
            scopes=body.scopes,
            subject=body.subject,
            limits=body.limits,
        )
        return IssuedApiKeyResponse(api_key=issued.api_key, key=issued.reveal())

    def set_api_key_credits(
        self, session: Session, organization_id: str, principal: Principal, key_id: str, body: CreditsRequest
    ) -> ApiKey:
        return self.kit.api_keys.set_credits(
            session, organization_id, key_id, body.credits, actor=principal.user_id
        )

    def add_api_key_credits(
        self, session: Session, organization_id: str, principal: Principal, key_id: str, body: CreditsRequest
    ) -> ApiKey:
        return self.kit.api_keys.add_credits(
            session, organization_id, key_id, body.credits, actor=principal.user_id
        )

    def revoke_api_key_subject(
        self, session: Session, organization_id: str, principal: Principal, body: RevokeSubjectRequest
    ) -> RevokedApiKeysResponse:
        revoked = self.kit.api_keys.revoke_subject(
            session, organization_id, body.subject, actor=principal.user_id
        )
        return RevokedApiKeysResponse(revoked=list(revoked))

    def revoke_api_key(
        self, session: Session, organization_id: str, principal: Principal, key_id: str
    ) -> ApiKey:
        return self.kit.api_keys.revoke(session, organization_id, key_id, actor=principal.user_id)

    def rotate_api_key(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        key_id: str,
        body: RotateApiKeyRequest,
    ) -> IssuedApiKeyResponse:
        grace = None if body.grace_seconds is None else timedelta(seconds=body.grace_seconds)
        issued = self.kit.api_keys.rotate(
            session, organization_id, key_id, actor=principal.user_id, grace=grace
        )
        return IssuedApiKeyResponse(api_key=issued.api_key, key=issued.reveal())

    # -- invitations -----------------------------------------------------------------------------------

    def list_invitations(
        self, session: Session, organization_id: str, principal: Principal, limit: int, cursor: str | None
    ) -> Page[Invitation]:
        return self.kit.invitations.list_pending(
            session, organization_id, actor=principal.user_id, limit=limit, cursor=cursor
        )

    def create_invitation(
        self, session: Session, organization_id: str, principal: Principal, body: CreateInvitationRequest
    ) -> CreatedInvitationResponse:
        expires_in = None if body.expires_in_seconds is None else timedelta(seconds=body.expires_in_seconds)
        if (body.email is None) == (body.allowed_domains is None):
            raise InvalidInputError("email", "give either an email or allowed_domains, not both or neither")
        if body.email is not None:
            if body.max_uses is not None:
                raise InvalidInputError("max_uses", "applies to link invitations only")
            created = self.kit.invitations.create_email_invitation(
                session,
                organization_id,
                body.email,
                body.role,
                actor=principal.user_id,
                expires_in=expires_in,
                requirements=body.requirements,
            )
        else:
            assert body.allowed_domains is not None  # noqa: S101  narrowing: exactly one is set (above)
            created = self.kit.invitations.create_link_invitation(
                session,
                organization_id,
                body.allowed_domains,
                body.role,
                actor=principal.user_id,
                max_uses=body.max_uses,
                expires_in=expires_in,
                requirements=body.requirements,
            )
        return _created_response(created)

    def revoke_invitation(
        self, session: Session, organization_id: str, principal: Principal, invitation_id: str
    ) -> Invitation:
        return self.kit.invitations.revoke(session, organization_id, invitation_id, actor=principal.user_id)

    def resend_invitation(
        self, session: Session, organization_id: str, principal: Principal, invitation_id: str
    ) -> CreatedInvitationResponse:
        created = self.kit.invitations.resend(
            session, organization_id, invitation_id, actor=principal.user_id
        )
        return _created_response(created)

    # -- audit log -------------------------------------------------------------------------------------

    def list_audit_events(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        limit: int,
        cursor: str | None,
        event_types: str | None,
        actor_kind: str | None,
        actor_id: str | None,
        target_type: str | None,
        target_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> Page[AuditEvent]:
        if (target_type is None) != (target_id is None):
            raise InvalidInputError("target_id", "give target_type and target_id together")
        return self.kit.audit.list_events(
            session,
            organization_id,
            actor=principal.user_id,
            performed_by=_performed_by(actor_kind, actor_id),
            event_types=_event_type_list(event_types),
            target=None if target_type is None or target_id is None else (target_type, target_id),
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )

    def export_audit_events(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        out: TextIO,
        export_format: ExportFormat,
        event_types: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> int:
        """The organization's log written to ``out``, oldest first, filtered as :meth:`list_audit_events`
        filters (``audit:read``, checked before anything is written)."""
        return self.kit.audit.export(
            session,
            out,
            export_format=export_format,
            organization_id=organization_id,
            since=since,
            until=until,
            event_types=_event_type_list(event_types),
            actor=principal.user_id,
        )

    # -- settings --------------------------------------------------------------------------------------

    def get_settings(self, session: Session, organization_id: str, principal: Principal) -> SettingsSnapshot:
        return self.kit.organizations.get_settings(session, organization_id, actor=principal.user_id)

    def update_settings(
        self, session: Session, organization_id: str, principal: Principal, body: UpdateSettingsRequest
    ) -> SettingsSnapshot:
        return self.kit.organizations.update_settings(
            session,
            organization_id,
            body.changes,
            expected_version=body.expected_version,
            actor=principal.user_id,
            unset=body.unset,
        )

    # -- domains ---------------------------------------------------------------------------------------

    def list_domains(
        self, session: Session, organization_id: str, principal: Principal
    ) -> Page[OrganizationDomain]:
        return Page(items=self.kit.domains.list_domains(session, organization_id, actor=principal.user_id))

    def add_domain(
        self, session: Session, organization_id: str, principal: Principal, body: AddDomainRequest
    ) -> AddedDomainResponse:
        added = self.kit.domains.add(session, organization_id, body.domain, actor=principal.user_id)
        value = None if added.record_value is None else added.record_value.get_secret_value()
        return AddedDomainResponse(domain=added.domain, record_name=added.record_name, record_value=value)

    def get_domain(
        self, session: Session, organization_id: str, principal: Principal, domain: str
    ) -> OrganizationDomain:
        return self.kit.domains.get(session, organization_id, domain, actor=principal.user_id)

    def verify_domain(
        self, session: Session, organization_id: str, principal: Principal, domain: str
    ) -> OrganizationDomain:
        return self.kit.domains.verify(session, organization_id, domain, actor=principal.user_id)

    def remove_domain(
        self, session: Session, organization_id: str, principal: Principal, domain: str
    ) -> OrganizationDomain:
        return self.kit.domains.remove(session, organization_id, domain, actor=principal.user_id)

    # -- SSO connections -------------------------------------------------------------------------------

    def list_sso_connections(
        self, session: Session, organization_id: str, principal: Principal
    ) -> Page[SsoConnection]:
        return Page(items=self.kit.sso.list_connections(session, organization_id, actor=principal.user_id))

    def create_sso_connection(
        self, session: Session, organization_id: str, principal: Principal, body: CreateSsoConnectionRequest
    ) -> SsoConnection:
        return self.kit.sso.create_connection(
            session, organization_id, actor=principal.user_id, **body.model_dump()
        )

    def get_sso_connection(
        self, session: Session, organization_id: str, principal: Principal, connection_id: str
    ) -> SsoConnection:
        return self.kit.sso.get_connection(session, organization_id, connection_id, actor=principal.user_id)

    def update_sso_connection(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        connection_id: str,
        body: UpdateSsoConnectionRequest,
    ) -> SsoConnection:
        return self.kit.sso.update_connection(
            session, organization_id, connection_id, actor=principal.user_id, **body.model_dump()
        )

    def delete_sso_connection(
        self, session: Session, organization_id: str, principal: Principal, connection_id: str
    ) -> SsoConnection:
        return self.kit.sso.delete_connection(
            session, organization_id, connection_id, actor=principal.user_id
        )

    # -- webhooks --------------------------------------------------------------------------------------

    def list_webhook_endpoints(
        self, session: Session, organization_id: str, principal: Principal, limit: int, cursor: str | None
    ) -> Page[WebhookEndpoint]:
        return self.kit.webhooks.list_endpoints(
            session, organization_id, actor=principal.user_id, limit=limit, cursor=cursor
        )

    def create_webhook_endpoint(
        self, session: Session, organization_id: str, principal: Principal, body: CreateWebhookEndpointRequest
    ) -> CreatedWebhookEndpointResponse:
        created = self.kit.webhooks.create_endpoint(
            session,
            organization_id,
            body.url,
            body.event_types,
            actor=principal.user_id,
            description=body.description,
        )
        return CreatedWebhookEndpointResponse(endpoint=created.endpoint, secret=created.reveal())

    def get_webhook_endpoint(
        self, session: Session, organization_id: str, principal: Principal, endpoint_id: str
    ) -> WebhookEndpoint:
        return self.kit.webhooks.get_endpoint(session, organization_id, endpoint_id, actor=principal.user_id)

    def update_webhook_endpoint(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        endpoint_id: str,
        body: UpdateWebhookEndpointRequest,
    ) -> WebhookEndpoint:
        return self.kit.webhooks.update_endpoint(
            session,
            organization_id,
            endpoint_id,
            actor=principal.user_id,
            url=body.url,
            event_types=body.event_types,
            description=body.description,
        )

    def enable_webhook_endpoint(
        self, session: Session, organization_id: str, principal: Principal, endpoint_id: str
    ) -> WebhookEndpoint:
        return self.kit.webhooks.enable_endpoint(
            session, organization_id, endpoint_id, actor=principal.user_id
        )

    def disable_webhook_endpoint(
        self, session: Session, organization_id: str, principal: Principal, endpoint_id: str
    ) -> WebhookEndpoint:
        return self.kit.webhooks.disable_endpoint(
            session, organization_id, endpoint_id, actor=principal.user_id
        )

    def delete_webhook_endpoint(
        self, session: Session, organization_id: str, principal: Principal, endpoint_id: str
    ) -> WebhookEndpoint:
        return self.kit.webhooks.delete_endpoint(
            session, organization_id, endpoint_id, actor=principal.user_id
        )

    def rotate_webhook_secret(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        endpoint_id: str,
        body: RotateWebhookSecretRequest,
    ) -> CreatedWebhookEndpointResponse:
        grace = None if body.grace_seconds is None else timedelta(seconds=body.grace_seconds)
        rotated = self.kit.webhooks.rotate_secret(
            session, organization_id, endpoint_id, actor=principal.user_id, grace=grace
        )
        return CreatedWebhookEndpointResponse(endpoint=rotated.endpoint, secret=rotated.reveal())

    def list_webhook_deliveries(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        endpoint_id: str,
        limit: int,
        cursor: str | None,
    ) -> Page[WebhookDelivery]:
        return self.kit.webhooks.list_deliveries(
            session,
            organization_id,
            actor=principal.user_id,
            endpoint_id=endpoint_id,
            limit=limit,
            cursor=cursor,
        )

    def list_webhook_message_deliveries(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        message_id: str,
        limit: int,
        cursor: str | None,
    ) -> Page[WebhookDelivery]:
        return self.kit.webhooks.list_deliveries(
            session,
            organization_id,
            actor=principal.user_id,
            message_id=message_id,
            limit=limit,
            cursor=cursor,
        )

    def resend_webhook_message(
        self, session: Session, organization_id: str, principal: Principal, message_id: str
    ) -> ResentWebhookMessageResponse:
        deliveries = self.kit.webhooks.resend(session, organization_id, message_id, actor=principal.user_id)
        return ResentWebhookMessageResponse(deliveries=deliveries)

    def recover_webhook_deliveries(
        self,
        session: Session,
        organization_id: str,
        principal: Principal,
        endpoint_id: str,
        body: RecoverWebhookDeliveriesRequest,
    ) -> RecoveredWebhookDeliveriesResponse:
        recovered = self.kit.webhooks.recover(
            session, organization_id, endpoint_id, since=body.since, actor=principal.user_id
        )
        return RecoveredWebhookDeliveriesResponse(recovered=recovered)

    def send_webhook_test(
        self, session: Session, organization_id: str, principal: Principal, endpoint_id: str
    ) -> WebhookDelivery:
        return self.kit.webhooks.send_test(session, organization_id, endpoint_id, actor=principal.user_id)

    def preview_invitation(self, session: Session, body: TokenRequest) -> InvitationPreview:
        return self.kit.invitations.preview(session, body.token)

    def accept_invitation(
        self, session: Session, principal: Principal, body: TokenRequest
    ) -> AcceptedInvitation:
        if principal.email is None:
            raise InvalidInputError("email", "the signed-in user has no email address to accept with")
        return self.kit.invitations.accept(
            session,
            body.token,
            user_id=principal.user_id,
            email=principal.email,
            email_verified=principal.email_verified,
            claims=principal.claims,
        )


def _event_type_list(event_types: str | None) -> list[str] | None:
    """The comma-separated ``event_types`` of a query string, as the audit service's filter."""
    if event_types is None:
        return None
    return [name.strip() for name in event_types.split(",") if name.strip()]


def _performed_by(actor_kind: str | None, actor_id: str | None) -> Actor | None:
    """The ``performed_by`` filter that ``actor_kind`` and ``actor_id`` name (no kind: a user)."""
    if actor_kind is None and actor_id is None:
        return None
    try:
        kind = ActorKind(actor_kind) if actor_kind is not None else ActorKind.USER
    except ValueError:
        known = ", ".join(kind.value for kind in ActorKind)
        raise InvalidInputError(
            "actor_kind", f"unknown kind {actor_kind!r}; expected one of {known}"
        ) from None
    return Actor(kind, actor_id)


def _created_response(created: CreatedInvitation) -> CreatedInvitationResponse:
    return CreatedInvitationResponse(
        invitation=created.invitation,
        token=created.token.get_secret_value(),
        accept_url=None if created.accept_url is None else created.accept_url.get_secret_value(),
    )


def validation_error(errors: Sequence[Mapping[str, Any]]) -> InvalidInputError:
    """Turn a framework's or pydantic's list of validation errors into one :class:`InvalidInputError`."""
    first = errors[0] if errors else {}
    location = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    # A model's own validator (ApiKeyLimits, ApiKeySubject) says what is wrong; the prefix adds nothing.
    message = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
    return InvalidInputError(location or "request", message)
