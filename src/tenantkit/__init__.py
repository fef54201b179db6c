"""tenantkit: multi-tenant access control for Python services.

Organization membership with roles, API keys verified on every request, invitations by email or by a
domain-restricted link, and an audit log of every change, on SQLAlchemy tables that tenantkit migrates
inside the host's database.
"""

# The homes of the names a host imports less often: ``tenantkit.errors.LastOwnerError`` and
# ``tenantkit.api_keys.KeyKind`` work after a plain ``import tenantkit``. (The redundant aliases mark them as
# re-exported.) The feature packages come first on purpose: ``_settings`` reads the API-key format and hashers
# and the services read ``_settings``, so the import must enter that circle by ``tenantkit.api_keys``.
from tenantkit import api_keys as api_keys
from tenantkit import audit as audit
from tenantkit import bus as bus
from tenantkit import credentials as credentials
from tenantkit import departments as departments
from tenantkit import errors as errors
from tenantkit import events as events
from tenantkit import invitations as invitations
from tenantkit import members as members
from tenantkit import organizations as organizations
from tenantkit import roles as roles
from tenantkit import tables as tables
from tenantkit._actor import HOST, Actor, ActorKind, Authentication, AuthMethod
from tenantkit._addresses import PUBLIC_EMAIL_DOMAINS
from tenantkit._clock import Clock, system_clock
from tenantkit._errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    GoneError,
    InvalidApiKeyError,
    InvalidInputError,
    InvalidRequestError,
    MissingScopeError,
    NotFoundError,
    PermissionDeniedError,
    SchemaOutOfDateError,
    TenantKitError,
    UnavailableError,
)
from tenantkit._invalidation import CacheKey, Invalidator, LocalInvalidator
from tenantkit._kit import TenantKit
from tenantkit._migrations import (
    MigrationResult,
    adopt,
    current_revision,
    downgrade,
    head_revision,
    is_alembic_upgrade,
    is_up_to_date,
    offline_sql,
    require_up_to_date,
    upgrade,
)
from tenantkit._pagination import Page
from tenantkit._session import transaction
from tenantkit._settings import (
    ApiKeySettings,
    AuditSettings,
    BusSettings,
    DatabaseSettings,
    HttpSettings,
    InvitationSettings,
    OrganizationDefaults,
    TenantKitSettings,
    WebhookSettings,
)
from tenantkit._version import __version__
from tenantkit.api_keys._service import (
    ApiKey,
    ApiKeyService,
    ApiKeyVerification,
    IssuedApiKey,
    check_scopes,
    require_scopes,
)
from tenantkit.invitations._service import (
    AcceptedInvitation,
    CreatedInvitation,
    Invitation,
    InvitationPreview,
    InvitationService,
    InvitationStatus,
)
from tenantkit.members._roles import RoleService
from tenantkit.members._service import Member, MembershipService
from tenantkit.organizations._document import SettingsDocument
from tenantkit.organizations._service import OrganizationService
from tenantkit.roles._authorizer import AccessRequest, Authorizer
from tenantkit.roles._policy import (
    DEFAULT_PERMISSIONS,
    Action,
    CustomRole,
    EffectivePermissions,
    PermissionRegistry,
    Permissions,
    Role,
)

__all__ = [
    "DEFAULT_PERMISSIONS",
    "HOST",
    "PUBLIC_EMAIL_DOMAINS",
    "AcceptedInvitation",
    "AccessRequest",
    "Action",
    "Actor",
    "ActorKind",
    "ApiKey",
    "ApiKeyService",
    "ApiKeySettings",
    "ApiKeyVerification",
    "AuditSettings",
    "AuthMethod",
    "Authentication",
    "AuthenticationError",
    "AuthorizationError",
    "Authorizer",
    "BusSettings",
    "CacheKey",
    "Clock",
    "ConflictError",
    "CreatedInvitation",
    "CustomRole",
    "DatabaseSettings",
    "EffectivePermissions",
    "GoneError",
    "HttpSettings",
    "InvalidApiKeyError",
    "InvalidInputError",
    "InvalidRequestError",
    "Invalidator",
    "Invitation",
    "InvitationPreview",
    "InvitationService",
    "InvitationSettings",
    "InvitationStatus",
    "IssuedApiKey",
    "LocalInvalidator",
    "Member",
    "MembershipService",
    "MigrationResult",
    "MissingScopeError",
    "NotFoundError",
    "OrganizationDefaults",
    "OrganizationService",
    "Page",
    "PermissionDeniedError",
    "PermissionRegistry",
    "Permissions",
    "Role",
    "RoleService",
    "SchemaOutOfDateError",
    "SettingsDocument",
    "TenantKit",
    "TenantKitError",
    "TenantKitSettings",
    "UnavailableError",
    "WebhookSettings",
    "__version__",
    "adopt",
    "check_scopes",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_alembic_upgrade",
    "is_up_to_date",
    "offline_sql",
    "require_scopes",
    "require_up_to_date",
    "system_clock",
    "transaction",
    "upgrade",
]
