"""The management HTTP surface, declared once: one :class:`Route` per endpoint, mounted by both adapters.

The FastAPI router and the Flask blueprint loop over :data:`ROUTES` (or the features a host picks with
:func:`select_routes`), so a path, a method, a success status or a commit decision is written here and
nowhere else, and a new feature's endpoint is one more entry rather than two more copies. The table is
framework-free: paths are templates with ``{name}`` parameters (Flask's adapter turns them into
``<name>``), and each entry's work is a :class:`~tenantkit._http.Management` method.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tenantkit._errors import ConfigurationError
from tenantkit._http import (
    AddDomainRequest,
    AddedDomainResponse,
    ChangeRoleRequest,
    CreatedInvitationResponse,
    CreatedWebhookEndpointResponse,
    CreateInvitationRequest,
    CreateRoleRequest,
    CreateSsoConnectionRequest,
    CreateWebhookEndpointRequest,
    CreditsRequest,
    DeletedRoleResponse,
    DepartmentRequest,
    IssueApiKeyRequest,
    IssuedApiKeyResponse,
    LapsingQuery,
    Management,
    RecoveredWebhookDeliveriesResponse,
    RecoverWebhookDeliveriesRequest,
    ResentWebhookMessageResponse,
    RevokedApiKeysResponse,
    RevokeSubjectRequest,
    RotateApiKeyRequest,
    RotateWebhookSecretRequest,
    SuspendRequest,
    TokenRequest,
    TransferOwnershipRequest,
    UpdateRoleRequest,
    UpdateSettingsRequest,
    UpdateSsoConnectionRequest,
    UpdateWebhookEndpointRequest,
)
from tenantkit._pagination import DEFAULT_PAGE_SIZE, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE, Page
from tenantkit._validation import MAX_IDENTIFIER_LENGTH
from tenantkit.api_keys._limits import SubjectType
from tenantkit.api_keys._service import ApiKey
from tenantkit.audit._model import AuditEvent
from tenantkit.departments._service import Department
from tenantkit.domains._service import OrganizationDomain
from tenantkit.invitations._service import AcceptedInvitation, Invitation, InvitationPreview
from tenantkit.members._service import Member
from tenantkit.organizations._service import SettingsSnapshot
from tenantkit.roles._policy import CustomRole
from tenantkit.sso._service import SsoConnection
from tenantkit.webhooks._models import WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from tenantkit._kit import TenantKit

__all__ = [
    "DOMAIN_ERRORS",
    "FEATURES",
    "INVITATION_ERRORS",
    "MANAGEMENT_ERRORS",
    "NO_STORE",
    "OPERATIONS",
    "ROUTES",
    "ApiKeyListQuery",
    "AuditQuery",
    "ListQuery",
    "ReassignQuery",
    "Route",
    "feature_configured",
    "missing_configuration",
    "select_routes",
]

_PATH_PARAMETER = re.compile(r"{(\w+)}")

# The error statuses an endpoint documents: what the services can answer, mapped by _http.status_for.
MANAGEMENT_ERRORS: tuple[int, ...] = (403, 404, 409, 422, 503)
# Endpoints that read an invitation also answer 410 for an expired or used-up one.
INVITATION_ERRORS: tuple[int, ...] = (403, 404, 409, 410, 422, 503)

# Endpoints that verify a domain also answer 410 for a claim whose pending window passed.
DOMAIN_ERRORS: tuple[int, ...] = (403, 404, 409, 410, 422, 503)

# The headers of a success response that shows a secret: no cache, shared or private, may keep it.
NO_STORE: tuple[tuple[str, str], ...] = (("Cache-Control", "no-store"),)


class ListQuery(BaseModel):
    """The query string of a listing: the page size and the cursor of the page before."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="ignore")

    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(None, max_length=MAX_CURSOR_LENGTH)


class ReassignQuery(BaseModel):
    """The query string of "delete a custom role": the role its holders move to, if any hold it."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="ignore")

    reassign_to: str | None = Field(None, min_length=1, max_length=64)


class ApiKeyListQuery(ListQuery):
    """The query string of the API-key listing: a page, and the subject the keys stand for, if given.

    ``subject_type=organization`` lists the organization's own keys; ``user`` and ``device`` need
    ``subject_id``.
    """

    subject_type: SubjectType | None = None
    subject_id: str | None = Field(None, max_length=MAX_IDENTIFIER_LENGTH)


class AuditQuery(ListQuery):
    """The query string of the audit log: a page, and the filters of ``kit.audit.list_events``.

    ``event_types`` is comma-separated (``member.added,api_key.revoked``); ``actor_kind`` and ``actor_id``
    name who acted (``actor_id`` alone is a user; ``actor_kind=host`` alone is the host); ``target_type`` and
    ``target_id`` go together (``member`` and a user id, ``api_key``, ``invitation``); ``since`` and
    ``until`` are ISO 8601 times with a zone.
    """

    event_types: str | None = Field(None, max_length=2000)
    actor_kind: str | None = Field(None, max_length=32)
    actor_id: str | None = Field(None, max_length=MAX_IDENTIFIER_LENGTH)
    target_type: str | None = Field(None, max_length=32)
    target_id: str | None = Field(None, max_length=MAX_IDENTIFIER_LENGTH)
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Route:
    """One management endpoint: what an adapter needs to serve and document it.

    The adapter calls ``call(management, session, **arguments)`` with, by keyword, the path parameters,
    ``principal`` (when ``signed_in``), ``body`` (when the route has one) and the fields of ``query``;
    :meth:`arguments_of` is that contract, checked against each method by the tests.
    """

    operation: str
    """Stable ``feature.action`` name (``members.list``): the default OpenAPI ``operationId``."""
    method: str
    path: str
    """Path template under the mount prefix, with ``{name}`` parameters."""
    call: Callable[..., BaseModel]
    """The :class:`Management` method doing the work; its name is the endpoint's name in both adapters."""
    response: Any
    """The model of the success body (``Page[Member]``, ``Member``, ...)."""
    summary: str
    description: str
    status: int = 200
    body: type[BaseModel] | None = None
    body_optional: bool = False
    """An absent (or ``null``) body stands for the body model's defaults."""
    query: type[BaseModel] | None = None
    writes: bool = False
    """Whether the work changes state, so the adapter commits after it succeeds."""
    signed_in: bool = True
    """Whether the route acts as the signed-in user (every route but the invitation preview)."""
    errors: tuple[int, ...] = MANAGEMENT_ERRORS
    headers: tuple[tuple[str, str], ...] = ()
    """Headers of the success response, ``(name, value)`` pairs: :data:`NO_STORE` when it shows a secret."""

    @property
    def feature(self) -> str:
        """The feature the route belongs to (``members``, ``roles``, ``api_keys``, ``webhooks``...)."""
        return self.operation.partition(".")[0]

    @property
    def name(self) -> str:
        """The endpoint's name: the view's name in Flask (``url_for``) and the route's in FastAPI."""
        return self.call.__name__

    @property
    def path_parameters(self) -> tuple[str, ...]:
        """The names of the path template's parameters, in order."""
        return tuple(_PATH_PARAMETER.findall(self.path))

    def path_as(self, placeholder: str) -> str:
        """The path template with each parameter written as ``placeholder`` (``"<{}>"`` for Flask)."""
        return _PATH_PARAMETER.sub(lambda parameter: placeholder.format(parameter.group(1)), self.path)

    def arguments_of(self) -> tuple[str, ...]:
        """The keyword arguments an adapter passes to ``call`` after the session, in this order."""
        names = list(self.path_parameters)
        if self.signed_in:
            names.append("principal")
        if self.body is not None:
            names.append("body")
        if self.query is not None:
            names.extend(self.query.model_fields)
        return tuple(names)

    def body_or_default(self, body: BaseModel | None) -> BaseModel | None:
        """The body ``call`` receives: an optional body's defaults stand in for an absent one."""
        if body is None and self.body_optional and self.body is not None:
            return self.body()
        return body


_ORGANIZATION = "/organizations/{organization_id}"
_WEBHOOK_ENDPOINT = f"{_ORGANIZATION}/webhook-endpoints/{{endpoint_id}}"
_WEBHOOK_MESSAGE = f"{_ORGANIZATION}/webhook-messages/{{message_id}}"
_DOMAIN = f"{_ORGANIZATION}/domains/{{domain}}"
_SSO_CONNECTION = f"{_ORGANIZATION}/sso-connections/{{connection_id}}"

ROUTES: tuple[Route, ...] = (
    Route(
        operation="members.list",
        method="GET",
        path=f"{_ORGANIZATION}/members",
        call=Management.list_members,
        response=Page[Member],
        summary="List members",
        description="List the organization's members (needs ``members:read``).",
        query=ListQuery,
    ),
    Route(
        operation="members.change_role",
        method="PATCH",
        path=f"{_ORGANIZATION}/members/{{user_id}}",
        call=Management.change_role,
        response=Member,
        summary="Change a member's role",
        description="Change a member's role (never above the actor's own).",
        body=ChangeRoleRequest,
        writes=True,
    ),
    Route(
        operation="members.remove",
        method="DELETE",
        path=f"{_ORGANIZATION}/members/{{user_id}}",
        call=Management.remove_member,
        response=Member,
        summary="Remove a member",
        description="Remove a member (never the last OWNER).",
        writes=True,
    ),
    Route(
        operation="members.leave",
        method="POST",
        path=f"{_ORGANIZATION}/leave",
        call=Management.leave,
        response=Member,
        summary="Leave the organization",
        description="Leave the organization (the last OWNER cannot).",
        writes=True,
    ),
    Route(
        operation="members.transfer_ownership",
        method="POST",
        path=f"{_ORGANIZATION}/transfer-ownership",
        call=Management.transfer_ownership,
        response=Member,
        summary="Transfer ownership",
        description="Make another member OWNER; the actor steps down to ``demote_to``.",
        body=TransferOwnershipRequest,
        writes=True,
    ),
    Route(
        operation="members.suspend",
        method="POST",
        path=f"{_ORGANIZATION}/members/{{user_id}}/suspend",
        call=Management.suspend_member,
        response=Member,
        summary="Suspend a member",
        description="Suspend a member: the membership stays, its permissions are denied until resumed.",
        body=SuspendRequest,
        body_optional=True,
        writes=True,
    ),
    Route(
        operation="members.resume",
        method="POST",
        path=f"{_ORGANIZATION}/members/{{user_id}}/resume",
        call=Management.resume_member,
        response=Member,
        summary="Resume a member",
        description="Lift a member's suspension.",
        writes=True,
    ),
    Route(
        operation="members.list_lapsing",
        method="GET",
        path=f"{_ORGANIZATION}/lapsing-members",
        call=Management.list_lapsing_members,
        response=Page[Member],
        summary="List members whose credentials lapse",
        description="Members whose verified attributes lapse before ``before``, soonest first.",
        query=LapsingQuery,
    ),
    Route(
        operation="roles.list",
        method="GET",
        path=f"{_ORGANIZATION}/roles",
        call=Management.list_roles,
        response=Page[CustomRole],
        summary="List custom roles",
        description="The deployment-wide custom roles and the organization's own (needs ``members:read``).",
    ),
    Route(
        operation="roles.create",
        method="POST",
        path=f"{_ORGANIZATION}/roles",
        call=Management.create_role,
        response=CustomRole,
        summary="Create a custom role",
        description=(
            "Define a role inside ADMIN or MEMBER (needs ``roles:manage``); every permission it adds must be "
            "the actor's own."
        ),
        status=201,
        body=CreateRoleRequest,
        writes=True,
    ),
    Route(
        operation="roles.update",
        method="PATCH",
        path=f"{_ORGANIZATION}/roles/{{key}}",
        call=Management.update_role,
        response=CustomRole,
        summary="Edit a custom role",
        description="Rename a role or change its permissions; added permissions must be the actor's own.",
        body=UpdateRoleRequest,
        writes=True,
    ),
    Route(
        operation="roles.delete",
        method="DELETE",
        path=f"{_ORGANIZATION}/roles/{{key}}",
        call=Management.delete_role,
        response=DeletedRoleResponse,
        summary="Delete a custom role",
        description=(
            "Delete a role; refused (409 ``role_in_use``) while members hold it unless ``reassign_to`` names "
            "the role they move to."
        ),
        query=ReassignQuery,
        writes=True,
    ),
    Route(
        operation="api_keys.list",
        method="GET",
        path=f"{_ORGANIZATION}/api-keys",
        call=Management.list_api_keys,
        response=Page[ApiKey],
        summary="List API keys",
        description=(
            "List the organization's API keys (metadata only, never a secret), with their subject and "
            "limits; ``subject_type`` (and ``subject_id``) lists those standing for one subject."
        ),
        query=ApiKeyListQuery,
    ),
    Route(
        operation="api_keys.issue",
        method="POST",
        path=f"{_ORGANIZATION}/api-keys",
        call=Management.issue_api_key,
        response=IssuedApiKeyResponse,
        summary="Issue an API key",
        description=(
            "Issue an API key, optionally for a ``subject`` (a user, a device) and with ``limits`` (credits, "
            "rate limits, networks, a certificate); the response holds the key, this once."
        ),
        status=201,
        body=IssueApiKeyRequest,
        writes=True,
        headers=NO_STORE,
    ),
    Route(
        operation="api_keys.revoke",
        method="POST",
        path=f"{_ORGANIZATION}/api-keys/{{key_id}}/revoke",
        call=Management.revoke_api_key,
        response=ApiKey,
        summary="Revoke an API key",
        description="Revoke an API key: it stops verifying at once.",
        writes=True,
    ),
    Route(
        operation="api_keys.rotate",
        method="POST",
        path=f"{_ORGANIZATION}/api-keys/{{key_id}}/rotate",
        call=Management.rotate_api_key,
        response=IssuedApiKeyResponse,
        summary="Rotate an API key",
        description="Replace a key with a new one; the old one works until the grace period ends.",
        status=201,
        body=RotateApiKeyRequest,
        body_optional=True,
        writes=True,
        headers=NO_STORE,
    ),
    Route(
        operation="api_keys.set_credits",
        method="PUT",
        path=f"{_ORGANIZATION}/api-keys/{{key_id}}/credits",
        call=Management.set_api_key_credits,
        response=ApiKey,
        summary="Set an API key's credits",
        description=(
            "Set the usage credits a key has left (zero or more); a key without credits gets a limit "
            "(``api_keys:manage``)."
        ),
        body=CreditsRequest,
        writes=True,
    ),
    Route(
        operation="api_keys.add_credits",
        method="POST",
        path=f"{_ORGANIZATION}/api-keys/{{key_id}}/credits/add",
        call=Management.add_api_key_credits,
        response=ApiKey,
        summary="Add credits to an API key",
        description=(
            "Add credits to what a key with credits has left, atomically (negative takes away, never below "
            "zero); a key without a credit limit is answered 422."
        ),
        body=CreditsRequest,
        writes=True,
    ),
    Route(
        operation="api_keys.revoke_subject",
        method="POST",
        path=f"{_ORGANIZATION}/api-keys/revoke-subject",
        call=Management.revoke_api_key_subject,
        response=RevokedApiKeysResponse,
        summary="Revoke every key of a subject",
        description=(
            "Revoke every active key standing for ``subject`` (a user leaving, a device lost); the answer "
            "lists the keys revoked."
        ),
        body=RevokeSubjectRequest,
        writes=True,
    ),
    Route(
        operation="invitations.list",
        method="GET",
        path=f"{_ORGANIZATION}/invitations",
        call=Management.list_invitations,
        response=Page[Invitation],
        summary="List pending invitations",
        description="List pending invitations (never a token).",
        query=ListQuery,
    ),
    Route(
        operation="invitations.create",
        method="POST",
        path=f"{_ORGANIZATION}/invitations",
        call=Management.create_invitation,
        response=CreatedInvitationResponse,
        summary="Create an invitation",
        description=(
            "Invite by email, or create a link for addresses in allowed domains; the token is shown once."
        ),
        status=201,
        body=CreateInvitationRequest,
        writes=True,
        headers=NO_STORE,
        errors=INVITATION_ERRORS,
    ),
    Route(
        operation="invitations.revoke",
        method="POST",
        path=f"{_ORGANIZATION}/invitations/{{invitation_id}}/revoke",
        call=Management.revoke_invitation,
        response=Invitation,
        summary="Revoke an invitation",
        description="Revoke an invitation: its token stops working.",
        writes=True,
        errors=INVITATION_ERRORS,
    ),
    Route(
        operation="invitations.resend",
        method="POST",
        path=f"{_ORGANIZATION}/invitations/{{invitation_id}}/resend",
        call=Management.resend_invitation,
        response=CreatedInvitationResponse,
        summary="Resend an invitation",
        description="Give an invitation a new token; the old token stops working.",
        writes=True,
        headers=NO_STORE,
        errors=INVITATION_ERRORS,
    ),
    Route(
        operation="invitations.preview",
        method="POST",
        path="/invitations/preview",
        call=Management.preview_invitation,
        response=InvitationPreview,
        summary="Preview an invitation",
        description="Describe the invitation a token stands for, without using it up.",
        body=TokenRequest,
        signed_in=False,
        errors=INVITATION_ERRORS,
    ),
    Route(
        operation="invitations.accept",
        method="POST",
        path="/invitations/accept",
        call=Management.accept_invitation,
        response=AcceptedInvitation,
        summary="Accept an invitation",
        description=(
            "Accept an invitation as the signed-in user, with the identity provider's verified email."
        ),
        body=TokenRequest,
        writes=True,
        errors=INVITATION_ERRORS,
    ),
    Route(
        operation="departments.list",
        method="GET",
        path=f"{_ORGANIZATION}/departments",
        call=Management.list_departments,
        response=Page[Department],
        summary="List departments",
        description="List the organization's departments by name (needs ``departments:read``).",
        query=ListQuery,
    ),
    Route(
        operation="departments.create",
        method="POST",
        path=f"{_ORGANIZATION}/departments",
        call=Management.create_department,
        response=Department,
        summary="Create a department",
        description="Create a department (needs ``departments:manage``).",
        status=201,
        body=DepartmentRequest,
        writes=True,
    ),
    Route(
        operation="departments.update",
        method="PATCH",
        path=f"{_ORGANIZATION}/departments/{{department_id}}",
        call=Management.update_department,
        response=Department,
        summary="Update a department",
        description="Rename a department or change its description.",
        body=DepartmentRequest,
        writes=True,
    ),
    Route(
        operation="departments.delete",
        method="DELETE",
        path=f"{_ORGANIZATION}/departments/{{department_id}}",
        call=Management.delete_department,
        response=Department,
        summary="Delete a department",
        description="Delete a department; its members stay members of the organization.",
        writes=True,
    ),
    Route(
        operation="departments.list_members",
        method="GET",
        path=f"{_ORGANIZATION}/departments/{{department_id}}/members",
        call=Management.list_department_members,
        response=Page[Member],
        summary="List a department's members",
        description="List the members of a department, with their roles and attributes.",
        query=ListQuery,
    ),
    Route(
        operation="departments.add_member",
        method="PUT",
        path=f"{_ORGANIZATION}/departments/{{department_id}}/members/{{user_id}}",
        call=Management.add_department_member,
        response=Member,
        summary="Add a member to a department",
        description="Put a member of the organization into a department.",
        writes=True,
    ),
    Route(
        operation="departments.remove_member",
        method="DELETE",
        path=f"{_ORGANIZATION}/departments/{{department_id}}/members/{{user_id}}",
        call=Management.remove_department_member,
        response=Member,
        summary="Remove a member from a department",
        description="Take a member out of a department; the organization membership stays.",
        writes=True,
    ),
    Route(
        operation="audit.list",
        method="GET",
        path=f"{_ORGANIZATION}/audit-events",
        call=Management.list_audit_events,
        response=Page[AuditEvent],
        summary="List audit events",
        description=(
            "List the organization's audit log, newest first, filtered by actor, event type, target and "
            "time (needs ``audit:read``)."
        ),
        query=AuditQuery,
    ),
    Route(
        operation="settings.read",
        method="GET",
        path=f"{_ORGANIZATION}/settings",
        call=Management.get_settings,
        response=SettingsSnapshot,
        summary="Read the organization's settings",
        description=(
            "The settings document with its ``version`` (needs ``settings:read``); write back with that "
            "version as ``expected_version``."
        ),
    ),
    Route(
        operation="settings.update",
        method="PATCH",
        path=f"{_ORGANIZATION}/settings",
        call=Management.update_settings,
        response=SettingsSnapshot,
        summary="Update the organization's settings",
        description=(
            "Set ``changes`` and reset ``unset`` if the settings are still at ``expected_version`` (needs "
            "``settings:manage``); a stale version is answered 409 ``settings_version_conflict``."
        ),
        body=UpdateSettingsRequest,
        writes=True,
    ),
    Route(
        operation="domains.list",
        method="GET",
        path=f"{_ORGANIZATION}/domains",
        call=Management.list_domains,
        response=Page[OrganizationDomain],
        summary="List domains",
        description="The organization's claimed domains and their verification (``domains:manage``).",
    ),
    Route(
        operation="domains.add",
        method="POST",
        path=f"{_ORGANIZATION}/domains",
        call=Management.add_domain,
        response=AddedDomainResponse,
        summary="Add a domain",
        description=(
            "Claim a domain, pending until verified; the response holds the TXT record to publish, this once "
            "(``domains:manage``)."
        ),
        status=201,
        body=AddDomainRequest,
        writes=True,
        headers=NO_STORE,
    ),
    Route(
        operation="domains.get",
        method="GET",
        path=_DOMAIN,
        call=Management.get_domain,
        response=OrganizationDomain,
        summary="Get a domain",
        description="One claimed domain of the organization (never its token; ``domains:manage``).",
    ),
    Route(
        operation="domains.verify",
        method="POST",
        path=f"{_DOMAIN}/verify",
        call=Management.verify_domain,
        response=OrganizationDomain,
        summary="Verify a domain",
        description=(
            "Look up the domain's TXT record and mark it verified when it carries the token: 422 "
            "``domain_verification_failed`` (with a ``reason``) when it does not, 503 ``dns_lookup_failed`` "
            "when DNS gives no answer, 410 when the pending window passed."
        ),
        writes=True,
        errors=DOMAIN_ERRORS,
    ),
    Route(
        operation="domains.remove",
        method="DELETE",
        path=_DOMAIN,
        call=Management.remove_domain,
        response=OrganizationDomain,
        summary="Remove a domain",
        description="Give up a domain; SSO logins and auto-joins of its addresses are refused from now on.",
        writes=True,
    ),
    Route(
        operation="sso.list",
        method="GET",
        path=f"{_ORGANIZATION}/sso-connections",
        call=Management.list_sso_connections,
        response=Page[SsoConnection],
        summary="List SSO connections",
        description="The organization's SSO connections, oldest first (``sso:manage``).",
    ),
    Route(
        operation="sso.create",
        method="POST",
        path=f"{_ORGANIZATION}/sso-connections",
        call=Management.create_sso_connection,
        response=SsoConnection,
        summary="Create an SSO connection",
        description=(
            "Register an identity provider's connection and the policy of its logins (enforce, JIT, the "
            "default role, who decides roles); never a certificate or metadata (``sso:manage``)."
        ),
        status=201,
        body=CreateSsoConnectionRequest,
        writes=True,
    ),
    Route(
        operation="sso.get",
        method="GET",
        path=_SSO_CONNECTION,
        call=Management.get_sso_connection,
        response=SsoConnection,
        summary="Get an SSO connection",
        description="One SSO connection of the organization (``sso:manage``).",
    ),
    Route(
        operation="sso.update",
        method="PATCH",
        path=_SSO_CONNECTION,
        call=Management.update_sso_connection,
        response=SsoConnection,
        summary="Update an SSO connection",
        description="Change a connection's name or policy; fields left out stay.",
        body=UpdateSsoConnectionRequest,
        writes=True,
    ),
    Route(
        operation="sso.delete",
        method="DELETE",
        path=_SSO_CONNECTION,
        call=Management.delete_sso_connection,
        response=SsoConnection,
        summary="Delete an SSO connection",
        description="Delete a connection; logins through it are refused from now on (memberships stay).",
        writes=True,
    ),
    Route(
        operation="webhooks.list",
        method="GET",
        path=f"{_ORGANIZATION}/webhook-endpoints",
        call=Management.list_webhook_endpoints,
        response=Page[WebhookEndpoint],
        summary="List webhook endpoints",
        description="List the organization's webhook endpoints, oldest first (``webhooks:read``).",
        query=ListQuery,
    ),
    Route(
        operation="webhooks.create",
        method="POST",
        path=f"{_ORGANIZATION}/webhook-endpoints",
        call=Management.create_webhook_endpoint,
        response=CreatedWebhookEndpointResponse,
        summary="Create a webhook endpoint",
        description=(
            "Register an HTTPS endpoint for the event types it names; the response holds its signing "
            "secret, this once (``webhooks:manage``)."
        ),
        status=201,
        body=CreateWebhookEndpointRequest,
        writes=True,
        headers=NO_STORE,
    ),
    Route(
        operation="webhooks.get",
        method="GET",
        path=_WEBHOOK_ENDPOINT,
        call=Management.get_webhook_endpoint,
        response=WebhookEndpoint,
        summary="Get a webhook endpoint",
        description="One webhook endpoint of the organization (never its secret; ``webhooks:read``).",
    ),
    Route(
        operation="webhooks.update",
        method="PATCH",
        path=_WEBHOOK_ENDPOINT,
        call=Management.update_webhook_endpoint,
        response=WebhookEndpoint,
        summary="Update a webhook endpoint",
        description="Change an endpoint's URL, event types or description; fields left out stay.",
        body=UpdateWebhookEndpointRequest,
        writes=True,
    ),
    Route(
        operation="webhooks.delete",
        method="DELETE",
        path=_WEBHOOK_ENDPOINT,
        call=Management.delete_webhook_endpoint,
        response=WebhookEndpoint,
        summary="Delete a webhook endpoint",
        description="Delete an endpoint and its deliveries; the answer is what it was.",
        writes=True,
    ),
    Route(
        operation="webhooks.enable",
        method="POST",
        path=f"{_WEBHOOK_ENDPOINT}/enable",
        call=Management.enable_webhook_endpoint,
        response=WebhookEndpoint,
        summary="Enable a webhook endpoint",
        description="Enable an endpoint again, however it was disabled; its run of failures starts afresh.",
        writes=True,
    ),
    Route(
        operation="webhooks.disable",
        method="POST",
        path=f"{_WEBHOOK_ENDPOINT}/disable",
        call=Management.disable_webhook_endpoint,
        response=WebhookEndpoint,
        summary="Disable a webhook endpoint",
        description="Disable an endpoint by hand: nothing more is queued for it.",
        writes=True,
    ),
    Route(
        operation="webhooks.rotate_secret",
        method="POST",
        path=f"{_WEBHOOK_ENDPOINT}/rotate-secret",
        call=Management.rotate_webhook_secret,
        response=CreatedWebhookEndpointResponse,
        summary="Rotate a webhook endpoint's secret",
        description=(
            "Give an endpoint a new signing secret, shown this once; the previous one still signs for the "
            "grace period (``grace_seconds``, the settings' rotation grace by default)."
        ),
        body=RotateWebhookSecretRequest,
        body_optional=True,
        writes=True,
        headers=NO_STORE,
    ),
    Route(
        operation="webhooks.list_deliveries",
        method="GET",
        path=f"{_WEBHOOK_ENDPOINT}/deliveries",
        call=Management.list_webhook_deliveries,
        response=Page[WebhookDelivery],
        summary="List an endpoint's deliveries",
        description=(
            "The endpoint's deliveries, newest first: status, attempts, the last status code and error "
            "(never a response body; ``webhooks:read``)."
        ),
        query=ListQuery,
    ),
    Route(
        operation="webhooks.recover",
        method="POST",
        path=f"{_WEBHOOK_ENDPOINT}/recover",
        call=Management.recover_webhook_deliveries,
        response=RecoveredWebhookDeliveriesResponse,
        summary="Recover failed deliveries",
        description="Queue again every delivery of the endpoint that failed for good since ``since``.",
        status=202,
        body=RecoverWebhookDeliveriesRequest,
        writes=True,
    ),
    Route(
        operation="webhooks.send_test",
        method="POST",
        path=f"{_WEBHOOK_ENDPOINT}/test",
        call=Management.send_webhook_test,
        response=WebhookDelivery,
        summary="Send a test event",
        description="Queue a ``webhook.test`` message for this one endpoint; the answer is its delivery.",
        status=202,
        writes=True,
    ),
    Route(
        operation="webhooks.list_message_deliveries",
        method="GET",
        path=f"{_WEBHOOK_MESSAGE}/deliveries",
        call=Management.list_webhook_message_deliveries,
        response=Page[WebhookDelivery],
        summary="List a message's deliveries",
        description="The deliveries of one message (its ``webhook-id``), newest first (``webhooks:read``).",
        query=ListQuery,
    ),
    Route(
        operation="webhooks.resend",
        method="POST",
        path=f"{_WEBHOOK_MESSAGE}/resend",
        call=Management.resend_webhook_message,
        response=ResentWebhookMessageResponse,
        summary="Resend a message",
        description=(
            "Queue a message again, with the same ``webhook-id``, for each enabled endpoint it went to."
        ),
        status=202,
        writes=True,
    ),
)
"""Every management endpoint, grouped by feature in the order the adapters mount them."""

OPERATIONS: tuple[str, ...] = tuple(route.operation for route in ROUTES)
"""The management endpoints' operations, each named ``feature.action``: their default OpenAPI ``operationId``.

The names are part of the API (generated clients are built on them): they do not change between releases.
"""

FEATURES: tuple[str, ...] = tuple(dict.fromkeys(route.feature for route in ROUTES))
"""The features of the management endpoints, which a host mounts all or some of (``include=``)."""


# The features a kit may lack, and why: their routes are mounted only when the kit has them.
_NEEDS_CONFIGURATION: dict[str, str] = {
    "webhooks": "TenantKit(webhooks=WebhookSettings(secret_keys=[...])) or TENANTKIT_WEBHOOK_SECRET_KEYS",
}


def _configured(kit: TenantKit, feature: str) -> bool:
    if feature == "webhooks":
        return kit.settings.webhooks.enabled
    return True


def feature_configured(kit: TenantKit, feature: str) -> bool:
    """Whether ``kit`` is configured for ``feature`` (``webhooks`` needs its key); the pages ask it too."""
    return _configured(kit, feature)


def missing_configuration(feature: str) -> str:
    """What configures ``feature``, for the message refusing to mount it."""
    return _NEEDS_CONFIGURATION.get(feature, feature)


def select_routes(include: Iterable[str] | None = None, *, kit: TenantKit | None = None) -> tuple[Route, ...]:
    """The routes of the features named in ``include`` (every feature when it is ``None``).

    Given the ``kit`` they will serve, the default leaves out the features it is not configured for
    (``webhooks`` without ``WebhookSettings(secret_keys=...)``), and naming one of those is refused.

    Raises:
        TypeError: ``include`` is a bare string (which would name each of its letters).
        ValueError: ``include`` names a feature there is none of, or no feature at all.
        ConfigurationError: ``include`` names a feature ``kit`` is not configured for.
    """
    if include is None:
        if kit is None:
            return ROUTES
        return tuple(route for route in ROUTES if _configured(kit, route.feature))
    if isinstance(include, str):
        raise TypeError("include: a list of features, not a string")
    chosen = set(include)
    unknown = sorted(chosen - set(FEATURES))
    if unknown:
        raise ValueError(f"include: unknown feature(s) {unknown}; the features are {list(FEATURES)}")
    if not chosen:
        raise ValueError(f"include: name at least one feature of {list(FEATURES)}")
    if kit is not None:
        for feature in sorted(chosen):
            if not _configured(kit, feature):
                raise ConfigurationError(
                    f"include: the kit is not configured for {feature}: {_NEEDS_CONFIGURATION[feature]}"
                )
    return tuple(route for route in ROUTES if route.feature in chosen)
