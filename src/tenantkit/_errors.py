"""Exceptions raised by tenantkit.

Every exception derives from :class:`TenantKitError`, which is never raised directly. Each carries a stable
``code`` (adapters map codes to HTTP statuses without parsing messages) and the data that explains it.

The tree has one axis, the *kind* of failure: each error sits under exactly one kind, and the kind alone
decides the HTTP status (``tenantkit._http`` has one row per kind). A feature's errors are also grouped by a
*family* (``ApiKeyError``, ``InvitationError``): a plain marker to catch every error of one feature, which
never decides a status. Errors carry role names as strings (``"ADMIN"``), never role objects, so this module
imports nothing of tenantkit's and holds for custom roles as well as the built-in ones.

::

    TenantKitError                                    code "tenantkit_error"
    ├── InvalidRequestError              422 kind     code "invalid_request"
    │   ├── InvalidInputError (ValueError)            code "invalid_input"
    │   │   └── PolicyLimitError                      code "policy_limit"
    │   ├── InvalidInvitationTokenError          [i]  code "invalid_invitation_token"
    │   ├── InvitationExhaustedError             [i]  code "invitation_exhausted"
    │   ├── UnverifiedEmailError                 [i]  code "unverified_email"
    │   ├── EmailMismatchError                   [i]  code "email_mismatch"
    │   ├── DomainNotAllowedError                [i]  code "domain_not_allowed"
    │   ├── PublicEmailDomainError (ValueError)  [i]  code "public_email_domain"
    │   ├── InviterNoLongerAllowedError          [i]  code "inviter_no_longer_allowed"
    │   ├── AcceptanceDeniedError                [i]  code "acceptance_denied"
    │   ├── UnknownPermissionError (ValueError)  [r]  code "unknown_permission"
    │   ├── UnknownRoleError (ValueError)        [r]  code "unknown_role"
    │   └── UnsafeWebhookUrlError (ValueError)   [w]  code "unsafe_webhook_url"
    ├── AuthenticationError              401 kind     code "authentication_error"
    │   └── InvalidApiKeyError                   [k]  code "invalid_api_key"
    │       └── AmbiguousApiKeyError             [k]  code "ambiguous_api_key"
    ├── AuthorizationError               403 kind     code "authorization_error"
    │   ├── PermissionDeniedError                     code "permission_denied"
    │   │   └── MemberSuspendedError                  code "member_suspended"
    │   ├── RoleEscalationError                       code "role_escalation"
    │   │   └── PermissionEscalationError        [r]  code "permission_escalation"
    │   ├── LastOwnerError                            code "last_owner"
    │   └── MissingScopeError                    [k]  code "missing_scope"
    ├── NotFoundError (LookupError)      404 kind     code "not_found"
    │   ├── MemberNotFoundError                       code "member_not_found"
    │   ├── ApiKeyNotFoundError                  [k]  code "api_key_not_found"
    │   ├── InvitationNotFoundError              [i]  code "invitation_not_found"
    │   ├── DepartmentNotFoundError                   code "department_not_found"
    │   ├── DepartmentMemberNotFoundError             code "department_member_not_found"
    │   ├── RoleNotFoundError                    [r]  code "role_not_found"
    │   ├── WebhookEndpointNotFoundError         [w]  code "webhook_endpoint_not_found"
    │   └── WebhookMessageNotFoundError          [w]  code "webhook_message_not_found"
    ├── ConflictError                    409 kind     code "conflict"
    │   ├── AlreadyMemberError                        code "already_member"
    │   ├── DepartmentExistsError                     code "department_exists"
    │   ├── ConcurrentUpdateError                     code "concurrent_update"
    │   ├── SettingsVersionConflictError              code "settings_version_conflict"
    │   ├── OrganizationInUseError                    code "organization_in_use"
    │   ├── RoleExistsError                      [r]  code "role_exists"
    │   └── RoleInUseError                       [r]  code "role_in_use"
    ├── GoneError                        410 kind     code "gone"
    │   ├── InvitationExpiredError               [i]  code "invitation_expired"
    │   └── InvitationNotPendingError            [i]  code "invitation_not_pending"
    ├── TooManyRequestsError             429 kind     code "too_many_requests"
    │   ├── RateLimitedError                     [k]  code "rate_limited"
    │   └── UsageExceededError                   [k]  code "usage_exceeded"
    ├── UnavailableError                 503 kind     code "unavailable"
    │   ├── RateLimiterUnavailableError          [k]  code "rate_limiter_unavailable"
    │   └── DatabaseError                             code "database_error"
    │       ├── DatabaseUnavailableError              code "database_unavailable"
    │       ├── MigrationLockTimeoutError             code "migration_lock_timeout"
    │       ├── SchemaConflictError                   code "schema_conflict"
    │       │   └── TableLogicError                   code "table_logic"
    │       ├── SchemaOutOfDateError                  code "schema_out_of_date"
    │       ├── WriteNotAppliedError                  code "write_not_applied"
    │       ├── AuditChainBrokenError                 code "audit_chain_broken"
    │       └── CustomRolesInUseError            [r]  code "custom_roles_in_use"
    └── ConfigurationError               400 kind     code "configuration_error"
        └── InvalidSettingError                       code "invalid_setting"

    Families (markers, no status):
    ApiKeyError      [k]  code "api_key_error"
    InvitationError  [i]  code "invitation_error"
    RolesError       [r]  code "roles_error"
    WebhookError     [w]  code "webhook_error"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import ClassVar


class TenantKitError(Exception):
    """Root of every tenantkit exception; never raised directly.

    Attributes:
        code: A stable, machine-readable identifier of the failure.
        message: A human-readable explanation. It never contains a secret.
    """

    code: ClassVar[str] = "tenantkit_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-ready description: the ``code``, the ``message`` and the error's data."""
        return {"code": self.code, "message": self.message, **self.details()}

    def details(self) -> dict[str, object]:
        """Return the data that explains the error (empty for errors that carry none)."""
        return {}


# -- kinds: each error is under exactly one, and its kind alone decides the HTTP status ----------------


class InvalidRequestError(TenantKitError):
    """The request cannot be carried out as given: a malformed argument, or an invitation that this caller
    may not accept. Never raised directly. HTTP 422.
    """

    code = "invalid_request"


class AuthenticationError(TenantKitError):
    """The credential presented does not establish who is calling. Never raised directly. HTTP 401."""

    code = "authentication_error"


class AuthorizationError(TenantKitError):
    """The actor may not do what it asked. Never raised directly. HTTP 403."""

    code = "authorization_error"


class NotFoundError(TenantKitError, LookupError):
    """The thing asked for does not exist in this organization. Never raised directly. HTTP 404."""

    code = "not_found"


class ConflictError(TenantKitError):
    """The request clashes with the current state. Never raised directly. HTTP 409."""

    code = "conflict"


class GoneError(TenantKitError):
    """The thing asked for existed but can no longer be used. Never raised directly. HTTP 410."""

    code = "gone"


class TooManyRequestsError(TenantKitError):
    """The caller used more than it may: a rate limit or its usage credits. Never raised directly. HTTP 429.

    Attributes:
        retry_after: Whole seconds after which trying again may succeed, or ``None`` when nothing will
            change by itself (credits that are never refilled).
    """

    code = "too_many_requests"
    retry_after: int | None = None


class UnavailableError(TenantKitError):
    """tenantkit cannot serve the request until its database is fixed. Never raised directly. HTTP 503."""

    code = "unavailable"


class ConfigurationError(TenantKitError):
    """tenantkit was configured inconsistently (for example, an empty list of signing keys).

    A kind of its own: the host's setup is at fault, not the request. An adapter answers it with 400.
    """

    code = "configuration_error"


# -- families: markers that group one feature's errors across kinds; they never decide a status --------


class ApiKeyError(TenantKitError):
    """Any error about API keys (a key that does not verify, lacks a scope, or does not exist).

    Never raised directly: catch it to handle every API-key error, whatever its kind.
    """

    code = "api_key_error"


class InvitationError(TenantKitError):
    """Any error about an invitation or its acceptance.

    Never raised directly: catch it to handle every invitation error, whatever its kind.
    """

    code = "invitation_error"


class WebhookError(TenantKitError):
    """Any error about webhooks (an endpoint or message that does not exist, a URL that is refused).

    Never raised directly: catch it to handle every webhook error, whatever its kind.
    """

    code = "webhook_error"


# -- leaves ---------------------------------------------------------------------------------------------


class RolesError(TenantKitError):
    """Marker of every error of the permission registry and custom roles; never raised directly."""

    code = "roles_error"


class InvalidInputError(InvalidRequestError, ValueError):
    """An argument is malformed: empty, too long, of an unknown value, or otherwise unusable."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message

    def details(self) -> dict[str, object]:
        return {"field": self.field}


class PolicyLimitError(InvalidInputError):
    """A value goes beyond what the organization's settings (or the deployment's ceiling) allow.

    Raised when an organization's settings document tries to loosen a deployment ceiling (a longer
    invitation lifetime than the deployment's maximum), and when a request goes beyond the effective limit
    (an API key without expiry where keys must expire, a link domain the organization does not allow).

    Attributes:
        field: The argument or settings key refused (``expires_in``, ``invitation_max_ttl``).
        setting: The setting that sets the limit (``api_key_max_lifetime``).
        limit: The limit in force, in words (``"30 days, 0:00:00"``, ``"example.com, *.example.com"``).
    """

    code = "policy_limit"

    def __init__(self, field: str, setting: str, limit: str, message: str) -> None:
        super().__init__(field, message)
        self.setting = setting
        self.limit = limit

    def details(self) -> dict[str, object]:
        return {"field": self.field, "setting": self.setting, "limit": self.limit}


class InvalidSettingError(ConfigurationError):
    """A setting has an unusable value; :attr:`setting` names it as it was given.

    Attributes:
        setting: The environment variable (``TENANTKIT_API_KEY_PREFIX``) when the value came from the
            environment or ``.env``, else the settings field (``api_keys.prefix``).
        reason: What is wrong with the value. The value itself is never repeated: it may be a secret.
    """

    code = "invalid_setting"

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"setting": self.setting}


class DatabaseError(UnavailableError):
    """A problem with the database itself rather than with the request. Never raised directly."""

    code = "database_error"


class DatabaseUnavailableError(DatabaseError):
    """The database URL is malformed or its server cannot be reached."""

    code = "database_unavailable"

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url

    def details(self) -> dict[str, object]:
        return {"url": self.url}


class MigrationLockTimeoutError(DatabaseError):
    """Another instance held tenantkit's migration lock for longer than the timeout; nothing was changed.

    Attributes:
        timeout: The seconds waited (``None`` if the wait was unbounded and the server gave up).
        dialect: The database dialect whose lock was not granted.
    """

    code = "migration_lock_timeout"

    def __init__(self, timeout: float | None, dialect: str) -> None:
        waited = f"{timeout:g} s" if timeout is not None else "an unbounded wait"
        super().__init__(
            f"another tenantkit migration held the {dialect} migration lock for longer than {waited}; "
            "nothing was changed, retry once it has finished"
        )
        self.timeout = timeout
        self.dialect = dialect

    def details(self) -> dict[str, object]:
        return {"timeout": self.timeout, "dialect": self.dialect}


class SchemaConflictError(DatabaseError):
    """The database holds tables that clash with tenantkit's; nothing was changed.

    Attributes:
        conflicts: One human-readable line per clash, naming the table and what differs.
    """

    code = "schema_conflict"

    def __init__(self, conflicts: Sequence[str]) -> None:
        self.conflicts: tuple[str, ...] = tuple(conflicts)
        super().__init__(self._describe("; ".join(self.conflicts)))

    @staticmethod
    def _describe(listing: str) -> str:
        return f"the database has tables that conflict with tenantkit's: {listing}"

    def details(self) -> dict[str, object]:
        return {"conflicts": list(self.conflicts)}


class TableLogicError(SchemaConflictError):
    """Tables to adopt carry triggers, rules or row-level-security policies; nothing was changed.

    Such logic can rewrite or swallow tenantkit's writes (a trigger that undoes ``revoked_at`` makes a
    revoked key verify again), so adoption refuses it unless told to accept it (``allow_table_logic``).

    Attributes:
        conflicts: One line per trigger, rule, policy or row-level-security switch found, naming its table.
    """

    code = "table_logic"

    @staticmethod
    def _describe(listing: str) -> str:
        return (
            f"the tables to adopt carry logic that can rewrite tenantkit's writes: {listing}; "
            "remove it, or adopt with allow_table_logic=True (--allow-table-logic) if you vouch for it"
        )


class SchemaOutOfDateError(DatabaseError):
    """The database is not at tenantkit's latest migration revision."""

    code = "schema_out_of_date"

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"tenantkit's tables are at revision {current or 'none'}, not at {head}; "
            "run `tenantkit db upgrade` or tenantkit.upgrade()"
        )
        self.current = current
        self.head = head

    def details(self) -> dict[str, object]:
        return {"current": self.current, "head": self.head}


class WriteNotAppliedError(DatabaseError):
    """The database did not keep a security-relevant change that tenantkit had just written.

    Read back in the same transaction, the row did not hold what was written: a trigger, rule or
    row-level-security policy rewrote or swallowed the write. Roll the transaction back; it must not commit.

    Attributes:
        table: The table written to.
        row: The values that identify the row (its organization and its id or user id).
        columns: The columns that do not hold what was written; empty when the row itself is missing (or,
            for a removal, still there).
        problem: What the read-back found, in words.
    """

    code = "write_not_applied"

    def __init__(self, table: str, row: dict[str, str], columns: Sequence[str], problem: str) -> None:
        identity = ", ".join(f"{name}={value!r}" for name, value in row.items())
        super().__init__(
            f"the database did not keep tenantkit's change to {table} ({identity}): {problem}. A trigger, "
            "rule or row-level-security policy on the table may be rewriting writes; roll the transaction "
            "back"
        )
        self.table = table
        self.row: dict[str, str] = dict(row)
        self.columns: tuple[str, ...] = tuple(columns)
        self.problem = problem

    def details(self) -> dict[str, object]:
        return {"table": self.table, "row": dict(self.row), "columns": list(self.columns)}


class AuditChainBrokenError(DatabaseError):
    """An organization's audit chain does not verify: a row was changed, removed or added behind its back.

    Raised by ``ChainReport.raise_if_broken()`` after ``kit.audit.verify()``; ``tenantkit audit verify``
    reports the same link and exits 1.

    Attributes:
        organization_id: The organization whose chain breaks.
        sequence: The position in the chain of the first broken link.
        event_id: The audit row at that position (``None`` when the row is missing).
        reason: What is wrong there, in words.
    """

    code = "audit_chain_broken"

    def __init__(self, organization_id: str, sequence: int, event_id: str | None, reason: str) -> None:
        super().__init__(
            f"the audit chain of organization {organization_id!r} breaks at position {sequence}: {reason}"
        )
        self.organization_id = organization_id
        self.sequence = sequence
        self.event_id = event_id
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {
            "organization_id": self.organization_id,
            "sequence": self.sequence,
            "event_id": self.event_id,
            "reason": self.reason,
        }


class PermissionDeniedError(AuthorizationError):
    """The actor's role (or lack of membership) does not allow the action."""

    code = "permission_denied"

    def __init__(self, action: str, role: str | None, message: str | None = None) -> None:
        held = role if role is not None else "no role"
        super().__init__(message or f"{held} may not {action}")
        self.action = action
        #: The name of the actor's role, or ``None`` when the actor is not a member.
        self.role = role

    def details(self) -> dict[str, object]:
        return {"action": self.action, "role": self.role}


class MemberSuspendedError(PermissionDeniedError):
    """The actor is a member, but suspended: a suspended membership holds no permission until resumed."""

    code = "member_suspended"

    def __init__(self, action: str, role: str | None, organization_id: str, user_id: str) -> None:
        super().__init__(
            action, role, f"{user_id!r} is suspended in organization {organization_id!r} and may not {action}"
        )
        self.organization_id = organization_id
        self.user_id = user_id

    def details(self) -> dict[str, object]:
        return {**super().details(), "organization_id": self.organization_id, "user_id": self.user_id}


class AcceptanceDeniedError(InvalidRequestError, InvitationError):
    """The host's accept policy refused the acceptance: the invitation's requirements are not met.

    Nothing changed: the invitation is still pending and no membership was created.

    Attributes:
        reason: The policy's explanation, for the invitee (never a secret).
        requirement: The requirement that failed (``"npi"``, ``"credential_type"``…), if the policy says.
    """

    code = "acceptance_denied"

    def __init__(self, reason: str, requirement: str | None = None) -> None:
        super().__init__(f"the invitation's requirements are not met: {reason}")
        self.reason = reason
        self.requirement = requirement

    def details(self) -> dict[str, object]:
        return {"reason": self.reason, "requirement": self.requirement}


class RoleEscalationError(AuthorizationError):
    """The actor tried to grant, assign or invite to a role above its own."""

    code = "role_escalation"

    def __init__(self, actor_role: str | None, requested_role: str, message: str | None = None) -> None:
        held = actor_role if actor_role is not None else "no role"
        super().__init__(message or f"an actor with {held} cannot grant {requested_role}")
        #: The name of the actor's role (``None``: not a member).
        self.actor_role = actor_role
        #: The name of the role it tried to grant.
        self.requested_role = requested_role

    def details(self) -> dict[str, object]:
        return {"actor_role": self.actor_role, "requested_role": self.requested_role}


class LastOwnerError(AuthorizationError):
    """The change would leave the organization without an OWNER."""

    code = "last_owner"

    def __init__(self, organization_id: str, user_id: str) -> None:
        super().__init__(
            f"{user_id!r} is the last OWNER of organization {organization_id!r}; "
            "make another member OWNER first"
        )
        self.organization_id = organization_id
        self.user_id = user_id

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "user_id": self.user_id}


class MemberNotFoundError(NotFoundError):
    """The user is not a member of the organization."""

    code = "member_not_found"

    def __init__(self, organization_id: str, user_id: str) -> None:
        super().__init__(f"{user_id!r} is not a member of organization {organization_id!r}")
        self.organization_id = organization_id
        self.user_id = user_id

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "user_id": self.user_id}


class ApiKeyNotFoundError(NotFoundError, ApiKeyError):
    """No API key with this id exists in the organization."""

    code = "api_key_not_found"

    def __init__(self, organization_id: str, key_id: str) -> None:
        super().__init__(f"no API key {key_id!r} in organization {organization_id!r}")
        self.organization_id = organization_id
        self.key_id = key_id

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "key_id": self.key_id}


class InvitationNotFoundError(NotFoundError, InvitationError):
    """No invitation with this id (or token) exists in the organization."""

    code = "invitation_not_found"

    def __init__(self, message: str = "no such invitation", *, invitation_id: str | None = None) -> None:
        super().__init__(message)
        self.invitation_id = invitation_id

    def details(self) -> dict[str, object]:
        return {"invitation_id": self.invitation_id}


class DepartmentNotFoundError(NotFoundError):
    """No department with this id exists in the organization."""

    code = "department_not_found"

    def __init__(self, organization_id: str, department_id: str) -> None:
        super().__init__(f"no department {department_id!r} in organization {organization_id!r}")
        self.organization_id = organization_id
        self.department_id = department_id

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "department_id": self.department_id}


class DepartmentMemberNotFoundError(NotFoundError):
    """The user is not in the department."""

    code = "department_member_not_found"

    def __init__(self, department_id: str, user_id: str) -> None:
        super().__init__(f"{user_id!r} is not in department {department_id!r}")
        self.department_id = department_id
        self.user_id = user_id

    def details(self) -> dict[str, object]:
        return {"department_id": self.department_id, "user_id": self.user_id}


class DepartmentExistsError(ConflictError):
    """The organization already has a department of this name."""

    code = "department_exists"

    def __init__(self, organization_id: str, name: str) -> None:
        super().__init__(f"organization {organization_id!r} already has a department named {name!r}")
        self.organization_id = organization_id
        self.name = name

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "name": self.name}


class AlreadyMemberError(ConflictError):
    """The user is already a member of the organization; their role was left unchanged."""

    code = "already_member"

    def __init__(self, organization_id: str, user_id: str, role: str) -> None:
        super().__init__(
            f"{user_id!r} is already a member of organization {organization_id!r} "
            f"with role {role}; the role was left unchanged"
        )
        self.organization_id = organization_id
        self.user_id = user_id
        #: The name of the role the member holds (and keeps).
        self.role = role

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "user_id": self.user_id, "role": self.role}


class ConcurrentUpdateError(ConflictError):
    """A concurrent transaction held the rows this change needed (a deadlock, lock timeout or serialization
    failure). The database rolled the transaction back: retry the whole unit of work.
    """

    code = "concurrent_update"

    def __init__(self, organization_id: str, reason: str) -> None:
        super().__init__(
            f"a concurrent change to organization {organization_id!r} conflicted with this one ({reason}); "
            "the transaction was rolled back, retry it"
        )
        self.organization_id = organization_id
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "reason": self.reason}


class SettingsVersionConflictError(ConflictError):
    """The organization's settings changed since the caller read them: the write was not made.

    Read the settings again (their current ``version``), reapply the change and write with that version.

    Attributes:
        organization_id: The organization.
        expected_version: The version the caller wrote against.
        current_version: The version stored now (0: no settings stored).
    """

    code = "settings_version_conflict"

    def __init__(self, organization_id: str, expected_version: int, current_version: int) -> None:
        super().__init__(
            f"the settings of organization {organization_id!r} are at version {current_version}, not "
            f"{expected_version}; read them again and retry the change"
        )
        self.organization_id = organization_id
        self.expected_version = expected_version
        self.current_version = current_version

    def details(self) -> dict[str, object]:
        return {
            "organization_id": self.organization_id,
            "expected_version": self.expected_version,
            "current_version": self.current_version,
        }


class OrganizationInUseError(ConflictError):
    """Deleting the organization's data would leave something half deleted, so nothing was deleted.

    A row outside tenantkit's reach still refers to the organization's rows (a foreign key of the host's),
    or a table kept rows the deletion removed. The transaction must be rolled back.

    Attributes:
        organization_id: The organization.
        table: The table that could not be emptied of the organization's rows.
        reason: What stood in the way, in words.
    """

    code = "organization_in_use"

    def __init__(self, organization_id: str, table: str, reason: str) -> None:
        super().__init__(
            f"the data of organization {organization_id!r} was not deleted: {table}: {reason}; "
            "nothing was deleted, roll the transaction back"
        )
        self.organization_id = organization_id
        self.table = table
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "table": self.table, "reason": self.reason}


class InvalidApiKeyError(AuthenticationError, ApiKeyError):
    """The presented API key does not verify.

    Attributes:
        reason: ``"malformed"``, ``"unknown"``, ``"expired"``, ``"revoked"``, or for a bound key
            ``"subject_inactive"``, ``"address_not_allowed"`` or ``"certificate_mismatch"``.
    """

    code = "invalid_api_key"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the API key is not valid ({reason})")
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"reason": self.reason}


class AmbiguousApiKeyError(InvalidApiKeyError):
    """A request presents more than one API key, so which one it means is not clear.

    Two ``Authorization`` headers, two ``X-API-Key`` headers, or both headers naming different keys. The
    frameworks disagree on such requests (Starlette reads the first header, WSGI joins them), so tenantkit
    refuses them before verifying anything. Its ``reason`` is ``"ambiguous"``.
    """

    code = "ambiguous_api_key"

    def __init__(self) -> None:
        # Skips InvalidApiKeyError's "is not valid (reason)" wording: nothing was verified.
        TenantKitError.__init__(self, "the request presents more than one API key; send exactly one")
        self.reason = "ambiguous"


class RateLimitedError(TooManyRequestsError, ApiKeyError):
    """A verified API key went over one of its rate limits; the verification's reason is ``rate_limited``.

    Attributes:
        retry_after: Whole seconds until the limit that refused lets a request through again.
        limits: The state of each of the key's limits that was checked, as
            :class:`~tenantkit.api_keys.RateLimitState` data (``policy``, ``limit``, ``window``,
            ``remaining``, ``reset``): what the adapters' ``RateLimit`` headers say.
    """

    code = "rate_limited"

    def __init__(self, retry_after: int, limits: Sequence[Mapping[str, object]] = ()) -> None:
        super().__init__(f"the API key is over its rate limit; retry in {retry_after} s")
        self.retry_after: int | None = retry_after
        self.limits: tuple[Mapping[str, object], ...] = tuple(limits)

    def details(self) -> dict[str, object]:
        return {"reason": "rate_limited", "retry_after": self.retry_after}


class UsageExceededError(TooManyRequestsError, ApiKeyError):
    """A verified API key has too few usage credits left; the verification's reason is ``usage_exceeded``.

    Attributes:
        remaining: The credits the key has left (fewer than the verification costs).
        retry_after: Whole seconds until the next refill, or ``None`` when the key is never refilled.
    """

    code = "usage_exceeded"

    def __init__(self, remaining: int, retry_after: int | None = None) -> None:
        super().__init__(f"the API key has used its credits ({remaining} left)")
        self.remaining = remaining
        self.retry_after = retry_after

    def details(self) -> dict[str, object]:
        return {"reason": "usage_exceeded", "remaining": self.remaining, "retry_after": self.retry_after}


class RateLimiterUnavailableError(UnavailableError, ApiKeyError):
    """The rate limiter's storage (Redis) did not answer, and the service refuses rather than lets through.

    Raised only with ``rate_limit_unavailable="refuse"``; the default lets requests through (and logs).
    """

    code = "rate_limiter_unavailable"

    def __init__(self) -> None:
        super().__init__("the rate limiter's storage is unavailable; try again shortly")


class MissingScopeError(AuthorizationError, ApiKeyError):
    """A verified API key lacks scopes that the operation requires."""

    code = "missing_scope"

    def __init__(self, missing: Sequence[str]) -> None:
        self.missing: tuple[str, ...] = tuple(sorted(missing))
        super().__init__(f"the API key lacks the scope(s): {', '.join(self.missing)}")

    def details(self) -> dict[str, object]:
        return {"missing": list(self.missing)}


class InvalidInvitationTokenError(InvalidRequestError, InvitationError):
    """The token is malformed, forged, signed with an unknown key, or stale."""

    code = "invalid_invitation_token"

    def __init__(self, message: str = "the invitation token is not valid") -> None:
        super().__init__(message)


class InvitationExpiredError(GoneError, InvitationError):
    """The invitation expired before it was accepted."""

    code = "invitation_expired"

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(f"the invitation expired at {expired_at.isoformat()}")
        self.expired_at = expired_at

    def details(self) -> dict[str, object]:
        return {"expired_at": self.expired_at.isoformat()}


class InvitationNotPendingError(GoneError, InvitationError):
    """The invitation was already accepted, revoked or replaced."""

    code = "invitation_not_pending"

    def __init__(self, status: str) -> None:
        super().__init__(f"the invitation is no longer pending (it is {status})")
        self.status = status

    def details(self) -> dict[str, object]:
        return {"status": self.status}


class InvitationExhaustedError(InvalidRequestError, InvitationError):
    """A link invitation has been used as many times as it allows."""

    code = "invitation_exhausted"

    def __init__(self, max_uses: int) -> None:
        super().__init__(f"the invitation link has been used its maximum of {max_uses} time(s)")
        self.max_uses = max_uses

    def details(self) -> dict[str, object]:
        return {"max_uses": self.max_uses}


class UnverifiedEmailError(InvalidRequestError, InvitationError):
    """The accepting user's email address was not verified by the identity provider."""

    code = "unverified_email"

    def __init__(self) -> None:
        super().__init__("the email address must be verified by the identity provider to accept")


class EmailMismatchError(InvalidRequestError, InvitationError):
    """The accepting address is not the invited one."""

    code = "email_mismatch"

    def __init__(self) -> None:
        super().__init__("this invitation was sent to a different email address")


class DomainNotAllowedError(InvalidRequestError, InvitationError):
    """The accepting address's domain is not one of the invitation's allowed domains."""

    code = "domain_not_allowed"

    def __init__(self, domain: str) -> None:
        super().__init__(f"addresses at {domain!r} may not accept this invitation")
        self.domain = domain

    def details(self) -> dict[str, object]:
        return {"domain": self.domain}


class PublicEmailDomainError(InvalidRequestError, InvitationError, ValueError):
    """A public mailbox provider (gmail.com, outlook.com, …) was given as an allowed domain."""

    code = "public_email_domain"

    def __init__(self, domain: str) -> None:
        super().__init__(
            f"{domain!r} is a public email provider; anyone can get an address there. "
            "Allow it explicitly if you mean it"
        )
        self.domain = domain

    def details(self) -> dict[str, object]:
        return {"domain": self.domain}


class InviterNoLongerAllowedError(InvalidRequestError, InvitationError):
    """The inviter left the organization or may no longer grant the invitation's role."""

    code = "inviter_no_longer_allowed"

    def __init__(self, inviter_id: str, role: str, reason: str) -> None:
        super().__init__(
            f"the invitation from {inviter_id!r} to role {role} can no longer be accepted: {reason}"
        )
        self.inviter_id = inviter_id
        #: The name of the role the invitation grants.
        self.role = role
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"inviter_id": self.inviter_id, "role": self.role, "reason": self.reason}


class UnsafeWebhookUrlError(InvalidRequestError, WebhookError, ValueError):
    """A webhook URL is refused: not HTTPS, malformed, or naming (or resolving to) an address that is not
    globally routable (loopback, private, link-local, CGNAT, multicast, ...), which the sender never contacts.

    Attributes:
        reason: Why the URL is refused. The URL itself is not repeated (it may carry a token in its path).
    """

    code = "unsafe_webhook_url"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the webhook URL is refused: {reason}")
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"reason": self.reason}


class WebhookEndpointNotFoundError(NotFoundError, WebhookError):
    """No such webhook endpoint in the organization."""

    code = "webhook_endpoint_not_found"

    def __init__(self, organization_id: str, endpoint_id: str) -> None:
        super().__init__(f"no webhook endpoint {endpoint_id!r} in organization {organization_id!r}")
        self.organization_id = organization_id
        self.endpoint_id = endpoint_id

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "endpoint_id": self.endpoint_id}


class WebhookMessageNotFoundError(NotFoundError, WebhookError):
    """No such webhook message in the organization."""

    code = "webhook_message_not_found"

    def __init__(self, organization_id: str, message_id: str) -> None:
        super().__init__(f"no webhook message {message_id!r} in organization {organization_id!r}")
        self.organization_id = organization_id
        self.message_id = message_id

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "message_id": self.message_id}


class TableLogicWarning(UserWarning):
    """Adoption accepted tables that carry triggers, rules or row-level-security policies, as it was told to.

    The message lists each one. tenantkit's security writes still read their rows back and raise
    :class:`WriteNotAppliedError` should such logic undo one of them.
    """


# -- the permission registry and custom roles ----------------------------------------------------------


class UnknownPermissionError(InvalidInputError, RolesError):
    """A permission name the host's registry does not declare (a typo, most often)."""

    code = "unknown_permission"

    def __init__(self, field: str, permission: str, known: Sequence[str]) -> None:
        shown = ", ".join(sorted(known)[:20])
        more = "" if len(known) <= 20 else f", … ({len(known)} in all)"
        super().__init__(field, f"unknown permission {permission!r}; the registry declares {shown}{more}")
        #: The name that is not declared.
        self.permission = permission

    def details(self) -> dict[str, object]:
        return {"field": self.field, "permission": self.permission}


class UnknownRoleError(InvalidInputError, RolesError):
    """A role to assign that is neither a rank (OWNER, ADMIN, MEMBER) nor a custom role that exists."""

    code = "unknown_role"

    def __init__(self, role: str, organization_id: str | None = None, *, hint: str | None = None) -> None:
        where = f" in organization {organization_id!r}" if organization_id is not None else ""
        then = hint or "expected OWNER, ADMIN, MEMBER or a custom role's key"
        super().__init__("role", f"unknown role {role!r}{where}; {then}")
        self.role = role
        self.organization_id = organization_id

    def details(self) -> dict[str, object]:
        return {"field": self.field, "role": self.role}


class PermissionEscalationError(RoleEscalationError, RolesError):
    """The actor tried to grant permissions it does not hold itself (through a role, a role's definition or
    an API key's scopes). Nothing was changed.
    """

    code = "permission_escalation"

    def __init__(self, actor_role: str | None, requested_role: str, missing: Sequence[str]) -> None:
        held = actor_role if actor_role is not None else "no role"
        names = ", ".join(sorted(missing))
        super().__init__(
            actor_role,
            requested_role,
            f"an actor with {held} cannot grant {requested_role}: it does not hold {names}",
        )
        #: The permissions being granted that the actor does not hold, sorted.
        self.missing: tuple[str, ...] = tuple(sorted(missing))

    def details(self) -> dict[str, object]:
        return {**super().details(), "missing": list(self.missing)}


class RoleNotFoundError(NotFoundError, RolesError):
    """No custom role with this key exists in the organization."""

    code = "role_not_found"

    def __init__(self, organization_id: str, key: str) -> None:
        super().__init__(f"no custom role {key!r} in organization {organization_id!r}")
        self.organization_id = organization_id
        self.key = key

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "key": self.key}


class RoleExistsError(ConflictError, RolesError):
    """A custom role with this key already exists (in the organization, or deployment-wide)."""

    code = "role_exists"

    def __init__(self, organization_id: str, key: str) -> None:
        super().__init__(f"a role with key {key!r} already exists for organization {organization_id!r}")
        self.organization_id = organization_id
        self.key = key

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "key": self.key}


class RoleInUseError(ConflictError, RolesError):
    """The custom role is held by members (or offered by pending invitations): deleting it would leave them
    with a role that no longer exists. Delete it with ``reassign_to=`` to move them first.
    """

    code = "role_in_use"

    def __init__(self, organization_id: str, key: str, members: int, invitations: int) -> None:
        super().__init__(
            f"custom role {key!r} of organization {organization_id!r} is held by {members} member(s) and "
            f"offered by {invitations} pending invitation(s); delete it with reassign_to= another role"
        )
        self.organization_id = organization_id
        self.key = key
        #: How many members hold the role.
        self.members = members
        #: How many pending invitations offer it.
        self.invitations = invitations

    def details(self) -> dict[str, object]:
        return {
            "organization_id": self.organization_id,
            "key": self.key,
            "members": self.members,
            "invitations": self.invitations,
        }


class CustomRolesInUseError(DatabaseError, RolesError):
    """A downgrade below revision 0005 was refused: custom roles exist or are held, and the older schema has
    nowhere to keep them. Nothing was changed.
    """

    code = "custom_roles_in_use"

    def __init__(self, roles: int, members: int, invitations: int) -> None:
        super().__init__(
            f"cannot downgrade below revision 0005: {roles} custom role(s) exist, {members} member(s) and "
            f"{invitations} invitation(s) hold one; reassign them to a rank and delete the roles first"
        )
        self.roles = roles
        self.members = members
        self.invitations = invitations

    def details(self) -> dict[str, object]:
        return {"roles": self.roles, "members": self.members, "invitations": self.invitations}


# -- verified domains and SSO (revision 0011) ------------------------------------------------------------


class DomainNotFoundError(NotFoundError):
    """The organization claims no such domain."""

    code = "domain_not_found"

    def __init__(self, organization_id: str, domain: str) -> None:
        super().__init__(f"organization {organization_id!r} claims no domain {domain!r}")
        self.organization_id = organization_id
        self.domain = domain

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "domain": self.domain}


class DomainExistsError(ConflictError):
    """The organization already claims this domain."""

    code = "domain_exists"

    def __init__(self, organization_id: str, domain: str) -> None:
        super().__init__(f"organization {organization_id!r} already claims {domain!r}")
        self.organization_id = organization_id
        self.domain = domain

    def details(self) -> dict[str, object]:
        return {"organization_id": self.organization_id, "domain": self.domain}


class DomainTakenError(ConflictError):
    """The domain is verified for another organization; a domain is verified for one at a time."""

    code = "domain_taken"

    def __init__(self, domain: str) -> None:
        super().__init__(f"{domain!r} is verified for another organization")
        self.domain = domain

    def details(self) -> dict[str, object]:
        return {"domain": self.domain}


class DomainVerificationFailedError(InvalidRequestError):
    """The DNS check did not prove ownership; ``reason`` says why. Nothing was changed.

    Reasons: ``no_record`` (no TXT record of ours at the name), ``token_mismatch`` (a record of ours with
    another token), ``nxdomain`` (the name does not exist), ``manual`` (the host verifies this domain).
    """

    code = "domain_verification_failed"

    def __init__(self, domain: str, reason: str, message: str) -> None:
        super().__init__(f"{domain!r} is not verified: {message}")
        self.domain = domain
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"domain": self.domain, "reason": self.reason}


class DomainVerificationExpiredError(GoneError):
    """The pending domain's verification window passed; add the domain again for a new token."""

    code = "domain_verification_expired"

    def __init__(self, domain: str) -> None:
        super().__init__(f"the verification window of {domain!r} has passed; add it again for a new token")
        self.domain = domain

    def details(self) -> dict[str, object]:
        return {"domain": self.domain}


class DnsLookupError(UnavailableError):
    """The DNS lookup gave no answer (a timeout, no reachable nameserver); try again later."""

    code = "dns_lookup_failed"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"the DNS lookup of {name!r} failed: {reason}")
        self.name = name
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"name": self.name, "reason": self.reason}


class SsoConnectionNotFoundError(NotFoundError):
    """No SSO connection with this id exists (in this organization)."""

    code = "sso_connection_not_found"

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"no SSO connection {connection_id!r}")
        self.connection_id = connection_id

    def details(self) -> dict[str, object]:
        return {"connection_id": self.connection_id}


class SsoConnectionExistsError(ConflictError):
    """A connection with this provider and provider connection id is already registered."""

    code = "sso_connection_exists"

    def __init__(self, provider: str, provider_connection_id: str) -> None:
        super().__init__(f"the {provider} connection {provider_connection_id!r} is already registered")
        self.provider = provider
        self.provider_connection_id = provider_connection_id

    def details(self) -> dict[str, object]:
        return {"provider": self.provider, "provider_connection_id": self.provider_connection_id}


class SsoLoginRefusedError(AuthenticationError):
    """An SSO login was refused by tenantkit's policy; ``reason`` is a stable word, nothing was changed.

    Reasons: ``connection_disabled``, ``email_unverified``, ``domain_not_verified`` (the email's domain is not
    a verified domain of the connection's organization), ``not_a_member`` (no membership and JIT is off).
    """

    code = "sso_login_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"SSO login refused: {message}")
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"reason": self.reason}


class SsoRequiredError(PermissionDeniedError):
    """The organization requires single sign-on and the actor signed in otherwise."""

    code = "sso_required"

    def __init__(self, action: str, organization_id: str, method: str) -> None:
        super().__init__(
            action,
            None,
            f"organization {organization_id!r} requires single sign-on; this actor signed in with {method}",
        )
        self.organization_id = organization_id
        self.method = method

    def details(self) -> dict[str, object]:
        return {**super().details(), "organization_id": self.organization_id, "method": self.method}


class AutoJoinRefusedError(AuthorizationError):
    """A user may not join the organization through its verified domain; ``reason`` says why.

    Reasons: ``auto_join_off`` (the organization did not turn ``auto_join`` on), ``email_unverified``,
    ``domain_not_verified`` (the email's domain is not a verified domain of the organization). Nothing
    was changed.
    """

    code = "auto_join_refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"auto-join refused: {message}")
        self.reason = reason

    def details(self) -> dict[str, object]:
        return {"reason": self.reason}
