"""Organizations: each one's settings document, the policy it sets, and the end of its data (or a user's).

Settings are one row per organization (``organization_settings``), written with optimistic concurrency: a
writer names the version it read, the ``UPDATE`` matches only that version, and a writer that lost the race
changes nothing and gets :class:`SettingsVersionConflictError`. Two concurrent writes of one version cannot
both win: on PostgreSQL and MySQL/MariaDB the second ``UPDATE`` waits on the first one's row lock and then
finds the version moved (the first write of an organization is an ``INSERT``, where the primary key plays the
same part); SQLite serializes writers outright.

Deleting an organization's data and erasing a user's find their tables generically: every tenantkit table
with an ``organization_id`` column (for the one), every one with a ``user_id`` column or a column marked
:data:`~tenantkit.tables.USER_REFERENCE` (for the other). A table another feature adds takes part without a
line here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, SerializeAsAny, ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import HOST, Actor, as_actor
from tenantkit._addresses import normalize_email
from tenantkit._clock import Clock, system_clock
from tenantkit._db import begin_write, rowcount, typed_concurrency_errors
from tenantkit._errors import (
    InvalidInputError,
    LastOwnerError,
    OrganizationInUseError,
    PolicyLimitError,
    SettingsVersionConflictError,
)
from tenantkit._events import (
    EventDispatcher,
    OrganizationDataDeleted,
    OrganizationSettingsChanged,
    UserDataErased,
)
from tenantkit._missing_schema import translate_missing_schema
from tenantkit._settings import OrganizationDefaults
from tenantkit._tables import (
    NOT_ORGANIZATION_DATA,
    USER_REFERENCE,
    api_keys,
    audit_chain_heads,
    audit_events,
    invitation_acceptances,
    invitations,
    metadata,
    organization_settings,
    team_members,
)
from tenantkit._validation import check_identifier
from tenantkit._writes import confirm_written
from tenantkit.audit._service import AuditService
from tenantkit.members._service import MembershipService
from tenantkit.organizations._document import OrganizationPolicy, SettingsDocument
from tenantkit.roles._policy import Action, Role

__all__ = ["DeletionResult", "ErasureResult", "OrganizationService", "SettingsSnapshot"]

# The audit log is kept or purged as the caller says, never deleted as "one more table".
_AUDIT_TABLES = frozenset({audit_events.name, audit_chain_heads.name})

_SETTINGS_ROW = sa.select(organization_settings).where(
    organization_settings.c.organization_id == sa.bindparam("organization_id")
)


class SettingsSnapshot(BaseModel):
    """An organization's settings as read: the full document (defaults filled in) and its version.

    Attributes:
        organization_id: The organization.
        version: The version to write against (``expected_version``); 0 while nothing is stored.
        document: The settings document, an instance of the host's model.
        explicit_keys: The keys the organization set itself (the others hold the model's defaults).
        updated_at: When the settings were last written (``None``: never).
        updated_by: The user who wrote them last (``None``: the host, or never).
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    organization_id: str
    version: int
    document: SerializeAsAny[SettingsDocument]
    explicit_keys: tuple[str, ...]
    updated_at: datetime | None
    updated_by: str | None

    @property
    def etag(self) -> str:
        """The version as an HTTP entity tag (``"3"``), for ``ETag`` and ``If-Match``."""
        return f'"{self.version}"'


@dataclass(frozen=True)
class DeletionResult:
    """What deleting an organization's data removed.

    Attributes:
        organization_id: The organization.
        rows: Rows deleted per table (tables with none are listed with 0).
        audit: ``"kept"`` or ``"purged"``.
    """

    organization_id: str
    rows: dict[str, int]
    audit: Literal["kept", "purged"]

    @property
    def total(self) -> int:
        """Every row deleted, over all tables."""
        return sum(self.rows.values())


@dataclass(frozen=True)
class ErasureResult:
    """What erasing a user's data changed.

    Attributes:
        user_id: The user.
        rows: Rows deleted or cleared per table (``audit_events`` counts the rows redacted).
        organizations: The organizations whose rows changed, sorted.
    """

    user_id: str
    rows: dict[str, int] = field(default_factory=dict)
    organizations: tuple[str, ...] = ()


def _validation_error(error: ValidationError) -> InvalidInputError:
    first = error.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "extra_forbidden":
        return InvalidInputError(location, "is not a setting of this deployment")
    return InvalidInputError(location, str(first["msg"]).removeprefix("Value error, "))


@translate_missing_schema()
class OrganizationService:
    """Organization settings (read, write with a version, the policy in force) and the organization lifecycle.

    A :class:`~tenantkit.TenantKit` builds one as ``kit.organizations``; its invitation and API-key services
    ask it for each organization's :meth:`policy` at the point of use. Every method takes the caller's
    ``Session`` first and never commits.

    Args:
        membership: The membership service (permissions, schema, owner locks).
        audit: The audit service, whose redaction erasing a user uses.
        defaults: The deployment's defaults and the host's settings model.
        clock: Where the current time comes from.
        events: The dispatcher (the membership service's by default).
        invitation_default_ttl: The deployment's invitation lifetime (from ``InvitationSettings``).
        invitation_max_ttl: The deployment's longest invitation lifetime.
    """

    def __init__(
        self,
        *,
        membership: MembershipService,
        audit: AuditService | None = None,
        defaults: OrganizationDefaults | None = None,
        clock: Clock = system_clock,
        events: EventDispatcher | None = None,
        invitation_default_ttl: timedelta = timedelta(days=7),
        invitation_max_ttl: timedelta = timedelta(days=30),
    ) -> None:
        self.membership = membership
        self.audit = audit
        self.defaults: OrganizationDefaults = defaults or OrganizationDefaults()
        self.clock = clock
        self.events: EventDispatcher = events or membership.events
        self.document_model: type[SettingsDocument] = self.defaults.document
        self.deployment_policy: OrganizationPolicy = OrganizationPolicy.deployment(
            self.defaults,
            invitation_default_ttl=invitation_default_ttl,
            invitation_max_ttl=invitation_max_ttl,
        )
        """What an organization that chose nothing gets; every organization's ceiling."""

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.membership.execution_options

    # -- settings --------------------------------------------------------------------------------------

    def _stored(self, session: Session | Connection, organization_id: str, *, lock: bool = False) -> Any:
        query = _SETTINGS_ROW.with_for_update() if lock else _SETTINGS_ROW
        return session.execute(
            query, {"organization_id": organization_id}, execution_options=self._options
        ).first()

    def _document(self, explicit: Mapping[str, Any]) -> SettingsDocument:
        # A key the model no longer declares (the host removed a field) is left out rather than making the
        # organization's settings unreadable; the next write drops it for good.
        known = {key: value for key, value in explicit.items() if key in self.document_model.model_fields}
        try:
            return self.document_model.model_validate(known)
        except ValidationError as error:
            raise _validation_error(error) from None

    def _snapshot(self, organization_id: str, row: Any) -> SettingsSnapshot:
        if row is None:
            return SettingsSnapshot(
                organization_id=organization_id,
                version=0,
                document=self._document({}),
                explicit_keys=(),
                updated_at=None,
                updated_by=None,
            )
        explicit = dict(row.document or {})
        document = self._document(explicit)
        return SettingsSnapshot(
            organization_id=organization_id,
            version=int(row.version),
            document=document,
            explicit_keys=tuple(sorted(key for key in explicit if key in document.model_fields_set)),
            updated_at=row.updated_at,
            updated_by=row.updated_by,
        )

    def get_settings(
        self, session: Session | Connection, organization_id: str, *, actor: Actor | str
    ) -> SettingsSnapshot:
        """The organization's settings document and its version.

        Args:
            session: The caller's session (or connection).
            organization_id: The organization.
            actor: Who asks: needs ``settings:read`` (ADMIN and OWNER by default), or :data:`tenantkit.HOST`.

        Returns:
            The settings; version 0 with the model's defaults when nothing is stored.

        Raises:
            InvalidInputError: A malformed id, or a stored value the host's model no longer accepts.
            PermissionDeniedError: The actor may not read the settings.
        """
        check_identifier(organization_id, "organization_id")
        self.membership.authorize(session, organization_id, actor, Action.READ_SETTINGS)
        return self._snapshot(organization_id, self._stored(session, organization_id))

    def policy(self, session: Session | Connection, organization_id: str) -> OrganizationPolicy:
        """The honoured settings in force for the organization: the deployment's, tightened by its document.

        This is the question the services ask before inviting or issuing a key, so it takes no actor.
        """
        check_identifier(organization_id, "organization_id")
        row = self._stored(session, organization_id)
        if row is None:
            return self.deployment_policy
        return self.deployment_policy.tightened_by(self._document(dict(row.document or {})))

    def update_settings(
        self,
        session: Session,
        organization_id: str,
        changes: Mapping[str, Any],
        *,
        expected_version: int,
        actor: Actor | str,
        unset: Iterable[str] = (),
    ) -> SettingsSnapshot:
        """Change some keys of the organization's settings, if they are still at ``expected_version``.

        ``changes`` sets keys (the others keep their value); ``unset`` returns keys to the model's default.
        The whole document is validated by the host's model (unknown keys refused), must fit in
        ``max_document_bytes`` as JSON, and may not loosen a deployment ceiling. A change that changes
        nothing writes nothing, records nothing and returns the settings as they are.

        Args:
            session: The caller's session.
            organization_id: The organization.
            changes: Keys to set, with their new values.
            expected_version: The version the caller read (0 when nothing was stored).
            actor: Who writes: needs ``settings:manage`` (OWNER by default), or :data:`tenantkit.HOST`.
            unset: Keys to return to their defaults.

        Returns:
            The settings as written, with their new version.

        Raises:
            InvalidInputError: A malformed id or version, an unknown key, a bad value, or a document too big.
            PolicyLimitError: A value looser than the deployment's ceiling.
            PermissionDeniedError: The actor may not manage the settings.
            SettingsVersionConflictError: The settings are no longer at ``expected_version``; nothing written.
            WriteNotAppliedError: The database did not keep the write (a trigger, rule or policy); roll back.
        """
        check_identifier(organization_id, "organization_id")
        if (
            isinstance(expected_version, bool)
            or not isinstance(expected_version, int)
            or expected_version < 0
        ):
            raise InvalidInputError("expected_version", "must be a whole number, 0 or more")
        if not isinstance(changes, Mapping):
            raise InvalidInputError("changes", "must be a mapping of setting names to values")
        removed = [unset] if isinstance(unset, str) else list(unset)
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_SETTINGS)
        with typed_concurrency_errors(organization_id):
            row = self._stored(session, organization_id)
            current = int(row.version) if row is not None else 0
            if current != expected_version:
                raise SettingsVersionConflictError(organization_id, expected_version, current)
            before: dict[str, Any] = dict(row.document or {}) if row is not None else {}
            merged = {key: value for key, value in before.items() if key in self.document_model.model_fields}
            for key in removed:
                if key not in self.document_model.model_fields:
                    raise InvalidInputError(str(key), "is not a setting of this deployment")
                merged.pop(key, None)
            merged.update(changes)
            try:
                document = self.document_model.model_validate(merged)
            except ValidationError as error:
                raise _validation_error(error) from None
            refused = self.deployment_policy.looser_settings(document)
            if refused:
                raise refused[0]
            self._check_default_role(
                session, organization_id, document, acting, chosen="default_role" in changes
            )
            after = document.model_dump(mode="json", include=set(merged))
            size = len(json.dumps(after, separators=(",", ":"), sort_keys=True).encode())
            if size > self.defaults.max_document_bytes:
                raise InvalidInputError(
                    "settings",
                    f"is {size} bytes as JSON; at most {self.defaults.max_document_bytes} are kept",
                )
            changed = tuple(
                sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
            )
            if not changed:
                return self._snapshot(organization_id, row)
            written = self._write(session, organization_id, expected_version, after, acting)
            self.events.record(
                session,
                OrganizationSettingsChanged(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=written.updated_at,
                    settings_version=written.version,
                    changed_keys=changed,
                ),
            )
        return self._snapshot(organization_id, written)

    def _check_default_role(
        self,
        session: Session,
        organization_id: str,
        document: SettingsDocument,
        acting: Actor,
        *,
        chosen: bool,
    ) -> None:
        """A custom role chosen (now) as the default role must exist, sit within the deployment's ceiling,
        and be one the writer could grant itself (choosing a default is granting it to whoever joins).

        A default chosen earlier is not checked again when other keys change: a role deleted since is
        reported where it would be assigned (:meth:`MembershipService.resolve_default_role`).
        """
        key = document.default_role
        if not chosen or key is None or key in (Role.ADMIN.value, Role.MEMBER.value):
            return
        membership = self.membership
        rank, custom = membership.resolve_role(session, organization_id, key)
        ceiling = self.deployment_policy.default_role
        if rank.rank > ceiling.rank:
            raise PolicyLimitError(
                "default_role",
                "default_role",
                ceiling.value,
                f"{key} is inside {rank.value}, looser than this deployment allows ({ceiling.value})",
            )
        held = membership.grant_authority(session, organization_id, acting, Action.MANAGE_SETTINGS)
        membership.permissions.require_may_grant(
            held, membership.permissions.effective(rank, custom), what=f"the default role {key!r}"
        )

    def _write(
        self, session: Session, organization_id: str, expected: int, document: dict[str, Any], acting: Actor
    ) -> Any:
        now = self.clock()
        version = expected + 1
        if expected == 0:
            # The first write: the primary key lets one of two concurrent inserts in.
            begin_write(session, team_members, self._options)
            try:
                with session.begin_nested():
                    session.execute(
                        organization_settings.insert(),
                        {
                            "organization_id": organization_id,
                            "version": version,
                            "document": document,
                            "updated_by": acting.user_id,
                            "created_at": now,
                            "updated_at": now,
                        },
                        execution_options=self._options,
                    )
            except sa.exc.IntegrityError:
                raise self._conflict(session, organization_id, expected) from None
        else:
            result = session.execute(
                organization_settings.update()
                .where(
                    organization_settings.c.organization_id == organization_id,
                    organization_settings.c.version == expected,
                )
                .values(version=version, document=document, updated_by=acting.user_id, updated_at=now),
                execution_options=self._options,
            )
            if rowcount(result) != 1:
                raise self._conflict(session, organization_id, expected)
        return confirm_written(
            session,
            organization_settings,
            {"organization_id": organization_id},
            {"version": version},
            execution_options=self._options,
        )

    def _conflict(
        self, session: Session, organization_id: str, expected: int
    ) -> SettingsVersionConflictError:
        row = self._stored(session, organization_id)
        # Under MySQL/MariaDB's repeatable read the winner's row may be out of this transaction's sight.
        current = int(row.version) if row is not None and int(row.version) != expected else expected + 1
        return SettingsVersionConflictError(organization_id, expected, current)

    # -- lifecycle -------------------------------------------------------------------------------------

    def delete_organization(
        self,
        session: Session,
        organization_id: str,
        *,
        actor: Actor | str,
        audit: Literal["keep", "purge"] = "keep",
    ) -> DeletionResult:
        """Delete every row tenantkit holds for the organization, in the caller's transaction.

        Memberships, API keys, invitations and their acceptances, settings, and the rows of every other
        tenantkit table with an ``organization_id`` column go. The audit log is kept (``audit="keep"``, the
        default: the record of what happened outlives the organization, until retention purges it) or
        purged with its hash chain (``"purge"``). Either way an ``organization.data_deleted`` event is
        recorded, so the audit log ends with the deletion. The organization's member rows and settings row
        are locked first, so a concurrent role change or settings write waits and then finds nothing.

        Everything is deleted or nothing: a row outside tenantkit's reach that still refers to one of
        these rows, or a table that kept rows the deletion removed, refuses the whole deletion. Calling it
        again on an organization with no data deletes nothing and records the event again.

        Args:
            session: The caller's session; the caller commits.
            organization_id: The organization.
            actor: Who deletes: needs ``organization:delete`` (OWNER only by default), or
                :data:`tenantkit.HOST`.
            audit: ``"keep"`` or ``"purge"`` the organization's audit log.

        Returns:
            The rows deleted per table.

        Raises:
            InvalidInputError: A malformed id, or ``audit`` other than ``"keep"`` or ``"purge"``.
            PermissionDeniedError: The actor may not delete the organization.
            OrganizationInUseError: Something would be left half deleted; nothing was deleted, roll back.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
        """
        check_identifier(organization_id, "organization_id")
        if audit not in ("keep", "purge"):
            raise InvalidInputError("audit", "must be 'keep' or 'purge'")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.DELETE_ORGANIZATION)
        with typed_concurrency_errors(organization_id):
            begin_write(session, team_members, self._options)
            members = session.execute(
                sa.select(team_members.c.user_id)
                .where(team_members.c.organization_id == organization_id)
                .order_by(team_members.c.user_id)
                .with_for_update(),
                execution_options=self._options,
            ).scalars()
            user_ids = tuple(members)
            self._stored(session, organization_id, lock=True)
            key_ids = tuple(
                session.execute(
                    sa.select(api_keys.c.id).where(api_keys.c.organization_id == organization_id),
                    execution_options=self._options,
                ).scalars()
            )
            tables = [table for table in organization_tables() if table.name not in _AUDIT_TABLES]
            if audit == "purge":
                tables += [audit_events, audit_chain_heads]
            rows = self._delete_rows(session, organization_id, tables)
            self.events.record(
                session,
                OrganizationDataDeleted(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=self.clock(),
                    rows=rows,
                    audit="purged" if audit == "purge" else "kept",
                    user_ids=user_ids,
                    key_ids=key_ids,
                ),
            )
        return DeletionResult(organization_id, rows, "purged" if audit == "purge" else "kept")

    def _delete_rows(
        self, session: Session, organization_id: str, tables: Sequence[sa.Table]
    ) -> dict[str, int]:
        rows: dict[str, int] = {}
        # One savepoint: a table that cannot be emptied takes the other tables' deletions back with it.
        with session.begin_nested():
            for table in tables:
                scope = table.c.organization_id == organization_id
                try:
                    result = session.execute(table.delete().where(scope), execution_options=self._options)
                except sa.exc.IntegrityError:
                    raise OrganizationInUseError(
                        organization_id,
                        table.name,
                        "a row outside tenantkit's tables still refers to its rows",
                    ) from None
                rows[table.name] = rowcount(result)
                left = session.execute(
                    sa.select(sa.func.count()).select_from(table).where(scope),
                    execution_options=self._options,
                ).scalar_one()
                if left:
                    raise OrganizationInUseError(
                        organization_id,
                        table.name,
                        f"{left} row(s) stayed after the delete (a trigger, rule or policy)",
                    )
        return rows

    def erase_user(self, session: Session, user_id: str, *, emails: Iterable[str] = ()) -> ErasureResult:
        """Erase one user's data from every tenantkit table, on the user's (or the law's) request.

        The host acts; there is no actor argument. In one transaction:

        * the user's memberships go (refused with :class:`LastOwnerError`, before anything changes, while the
          user is the last OWNER of an organization: transfer ownership or delete that organization first),
          with every other row whose ``user_id`` is the user (invitation acceptances, and the rows of tables
          other features add);
        * open invitations the user sent go (they could no longer be accepted), and so do invitations to
          ``emails`` (the user's addresses, which tenantkit cannot know by itself);
        * every column that names the user without being about them (an API key's ``created_by``, an
          invitation's ``invited_by`` and ``accepted_by``, the settings' ``updated_by``) is set to ``NULL``;
          the organization's keys and records stay;
        * the audit log's IP addresses and user agents of the user's requests are redacted (and the invited
          ``emails`` in its rows), which keeps a hash chain verifying. The rows keep the user's id, which the
          chain's hashes cover; once the identity provider has erased the user, the id names nobody.

        Args:
            session: The caller's session; the caller commits.
            user_id: The user.
            emails: The user's email addresses, whose invitations and audit mentions go too.

        Returns:
            The rows changed per table, and the organizations they were in.

        Raises:
            InvalidInputError: A malformed id or address.
            LastOwnerError: The user is the last OWNER of an organization; nothing changed.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
        """
        check_identifier(user_id, "user_id")
        given = [emails] if isinstance(emails, str) else list(emails)
        addresses = sorted({normalize_email(email, "emails") for email in given})
        self._check_not_last_owner(session, user_id)
        erasure = _Erasure(session, self._options)
        begin_write(session, team_members, self._options)
        with session.begin_nested():
            sent = sa.and_(invitations.c.invited_by == user_id, invitations.c.status == "pending")
            to_user = invitations.c.invited_email.in_(addresses) if addresses else sa.false()
            doomed = sa.or_(sent, to_user)
            accepted = invitation_acceptances.c.invitation_id.in_(sa.select(invitations.c.id).where(doomed))
            erasure.run(invitation_acceptances, accepted, invitation_acceptances.delete().where(accepted))
            erasure.run(invitations, doomed, invitations.delete().where(doomed))
            for table in reversed(metadata.sorted_tables):
                if table.name not in _AUDIT_TABLES:
                    erasure.forget(table, user_id)
        if self.audit is not None:
            rows = self.audit.redact(session, user_id=user_id).rows
            for address in addresses:
                rows += self.audit.redact(session, email=address).rows
            erasure.counts[audit_events.name] = rows
        now = self.clock()
        for organization_id, tally in sorted(erasure.by_organization.items()):
            self.events.record(
                session,
                UserDataErased(
                    organization_id=organization_id,
                    actor=HOST,
                    occurred_at=now,
                    subject_user_id=user_id,
                    rows=tally,
                ),
            )
        return ErasureResult(
            user_id=user_id,
            rows={name: rows for name, rows in erasure.counts.items() if rows},
            organizations=tuple(sorted(erasure.by_organization)),
        )

    def _check_not_last_owner(self, session: Session, user_id: str) -> None:
        """Lock the user's memberships as a removal does; refuse if one is an organization's last OWNER."""
        organizations = sorted(
            session.execute(
                sa.select(team_members.c.organization_id).where(team_members.c.user_id == user_id),
                execution_options=self._options,
            ).scalars()
        )
        # Every check before any change, in one order (by organization), so a refusal changes nothing.
        for organization_id in organizations:
            with typed_concurrency_errors(organization_id):
                locked = self.membership._lock(session, organization_id, user_id)
                if locked.role_of(user_id) is Role.OWNER and len(locked.owners) < 2:
                    raise LastOwnerError(organization_id, user_id)

    def __repr__(self) -> str:
        return f"OrganizationService(document={self.document_model.__name__})"


class _Erasure:
    """The changes erasing a user makes, counted per table and per organization as they are made."""

    def __init__(self, session: Session, options: Mapping[str, Any]) -> None:
        self.session = session
        self.options = options
        self.counts: dict[str, int] = {}
        self.by_organization: dict[str, dict[str, int]] = {}

    def forget(self, table: sa.Table, user_id: str) -> None:
        """Delete the table's rows about the user; clear the columns that merely name the user."""
        if "user_id" in table.c:
            subject = table.c.user_id == user_id
            self.run(table, subject, table.delete().where(subject))
        for column in table.c:
            if column.info.get(USER_REFERENCE):
                named = column == user_id
                self.run(table, named, table.update().where(named).values({column.name: None}))

    def run(self, table: sa.Table, where: sa.ColumnElement[bool], change: sa.Delete | sa.Update) -> None:
        """Count the rows ``where`` picks per organization, then make ``change`` to them."""
        if "organization_id" in table.c:
            per_organization = self.session.execute(
                sa.select(table.c.organization_id, sa.func.count())
                .where(where)
                .group_by(table.c.organization_id),
                execution_options=self.options,
            ).all()
            for organization_id, rows in per_organization:
                tally = self.by_organization.setdefault(organization_id, {})
                tally[table.name] = tally.get(table.name, 0) + int(rows)
        result = self.session.execute(change, execution_options=self.options)
        self.counts[table.name] = self.counts.get(table.name, 0) + rowcount(result)


def organization_tables() -> list[sa.Table]:
    """Every tenantkit table holding organizations' data (an ``organization_id`` column, and not marked
    :data:`~tenantkit._tables.NOT_ORGANIZATION_DATA`), children before the tables they refer to."""
    return [
        table
        for table in reversed(metadata.sorted_tables)
        if "organization_id" in table.c and not table.info.get(NOT_ORGANIZATION_DATA)
    ]
