"""Departments: named groups of members inside one organization (a hospital's Cardiology, Emergency…).

A department is not an organization. It grants nothing: roles, the owner invariants, verified domains and
SSO stay the organization's, and an organization's administrators manage all of its departments. Two
built-in actions govern them: ``departments:manage`` (ADMIN and above by default) creates, renames and
deletes departments and changes who is in them; ``departments:read`` (every rank) reads them. A host may
move either (``Permissions.with_actions``) or put ``departments:manage`` in a custom role ("charge nurse"):
since a department grants nothing, managing one reaches no further than the organization's membership.

A department's members are members of its organization: adding someone who is not is refused, and
removing (or the departure of) a member takes them out of every department in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, as_actor
from tenantkit._db import begin_write, fetch_page, typed_concurrency_errors
from tenantkit._errors import (
    DepartmentExistsError,
    DepartmentMemberNotFoundError,
    DepartmentNotFoundError,
    InvalidInputError,
    MemberNotFoundError,
)
from tenantkit._events import (
    DepartmentCreated,
    DepartmentDeleted,
    DepartmentMemberAdded,
    DepartmentMemberRemoved,
    DepartmentUpdated,
)
from tenantkit._missing_schema import translate_missing_schema
from tenantkit._pagination import DEFAULT_PAGE_SIZE, Keyset, Page
from tenantkit._tables import department_members, departments, new_id, team_members
from tenantkit._validation import check_identifier, check_name
from tenantkit._writes import confirm_written
from tenantkit.members._service import Member, MembershipService, _member
from tenantkit.roles._policy import Action

MANAGE_DEPARTMENTS: Action = Action.MANAGE_DEPARTMENTS
"""The action that creates, renames and deletes departments and changes who is in them."""
READ_DEPARTMENTS: Action = Action.READ_DEPARTMENTS
"""The action that lists departments and their members."""

MAX_DESCRIPTION_LENGTH = 2000


class Department(BaseModel):
    """A department of an organization."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


def _department(row: Any) -> Department:
    return Department(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_BY_ID = sa.select(departments).where(
    departments.c.organization_id == sa.bindparam("b_org"), departments.c.id == sa.bindparam("b_id")
)
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_BY_NAME = sa.select(departments.c.id).where(
    departments.c.organization_id == sa.bindparam("b_org"), departments.c.name == sa.bindparam("b_name")
)
_MEMBERSHIP = sa.select(department_members.c.id).where(
    department_members.c.organization_id == sa.bindparam("b_org"),
    department_members.c.department_id == sa.bindparam("b_id"),
    department_members.c.user_id == sa.bindparam("b_user"),
)
# The organization membership a department membership depends on, share-locked: a concurrent removal of
# the member waits for this transaction (and then takes the new department row with it), or went first.
_MEMBER_SHARED = (
    sa.select(team_members)
    .where(
        team_members.c.organization_id == sa.bindparam("b_org"),
        team_members.c.user_id == sa.bindparam("b_user"),
    )
    .with_for_update(read=True)
)
_DEPARTMENTS_ORDER = Keyset("departments", departments.c.name, departments.c.id)
_DEPARTMENT_MEMBERS_ORDER = Keyset("department_members", team_members.c.user_id)


@translate_missing_schema()
class DepartmentService:
    """Departments of organizations and who is in them (``kit.departments``).

    Every method takes the caller's ``Session`` first and works in its transaction; every change is
    recorded as an event (and so in the audit log).

    Args:
        membership: The membership service that authorizes actors (and whose clock, events and schema
            this service shares).
    """

    def __init__(self, *, membership: MembershipService) -> None:
        self.membership = membership

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.membership.execution_options

    # -- departments -----------------------------------------------------------------------------------

    def create(
        self,
        session: Session,
        organization_id: str,
        name: str,
        *,
        actor: Actor | str,
        description: str | None = None,
    ) -> Department:
        """Create a department named ``name`` (unique in the organization, compared exactly).

        Raises:
            InvalidInputError: A malformed id, name or description.
            PermissionDeniedError: The actor may not manage departments (``departments:manage``).
            DepartmentExistsError: The organization has a department of this name.
        """
        check_identifier(organization_id, "organization_id")
        title = check_name(name, "name")
        about = _description(description)
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, MANAGE_DEPARTMENTS)
        now = self.membership.clock()
        values = {
            "id": new_id(),
            "organization_id": organization_id,
            "name": title,
            "description": about,
            "created_at": now,
            "updated_at": now,
        }
        with typed_concurrency_errors(organization_id):
            begin_write(session, departments, self._options)
            self._require_free_name(session, organization_id, title)
            try:
                with session.begin_nested():
                    session.execute(departments.insert(), values, execution_options=self._options)
            except sa.exc.IntegrityError:
                raise DepartmentExistsError(organization_id, title) from None
        department = Department(**values)  # type: ignore[arg-type]
        self.membership.events.record(
            session,
            DepartmentCreated(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                department_id=department.id,
                name=title,
            ),
        )
        return department

    def get(
        self, session: Session | Connection, organization_id: str, department_id: str, *, actor: Actor | str
    ) -> Department:
        """One department.

        Raises:
            InvalidInputError: A malformed id.
            PermissionDeniedError: The actor may not read departments (``departments:read``).
            DepartmentNotFoundError: No such department in this organization.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(department_id, "department_id")
        self.membership.authorize(session, organization_id, actor, READ_DEPARTMENTS)
        return _department(self._row(session, organization_id, department_id))

    def list_departments(
        self,
        session: Session | Connection,
        organization_id: str,
        *,
        actor: Actor | str,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Department]:
        """One page of the organization's departments, by name.

        Raises:
            InvalidInputError: A malformed id, limit or cursor.
            PermissionDeniedError: The actor may not read departments.
        """
        check_identifier(organization_id, "organization_id")
        seek = _DEPARTMENTS_ORDER.seek(limit=limit, cursor=cursor)
        self.membership.authorize(session, organization_id, actor, READ_DEPARTMENTS)
        query = sa.select(departments).where(departments.c.organization_id == organization_id)
        return fetch_page(session, query, seek, _department, execution_options=self._options)

    def update(
        self,
        session: Session,
        organization_id: str,
        department_id: str,
        *,
        actor: Actor | str,
        name: str | None = None,
        description: str | None = None,
    ) -> Department:
        """Rename a department or change its description (a field left ``None`` stays as it is).

        The id is the department's stable identifier; names may change. Changing nothing records no event.

        Raises:
            InvalidInputError: A malformed id, name or description.
            PermissionDeniedError: The actor may not manage departments.
            DepartmentNotFoundError: No such department in this organization.
            DepartmentExistsError: Another department has the new name.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(department_id, "department_id")
        title = None if name is None else check_name(name, "name")
        about = None if description is None else _description(description)
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, MANAGE_DEPARTMENTS)
        with typed_concurrency_errors(organization_id):
            begin_write(session, departments, self._options)
            current = _department(self._row(session, organization_id, department_id, lock=True))
            changes: dict[str, Any] = {}
            if title is not None and title != current.name:
                self._require_free_name(session, organization_id, title)
                changes["name"] = title
            if about is not None and about != current.description:
                changes["description"] = about
            if not changes:
                return current
            now = self.membership.clock()
            try:
                with session.begin_nested():
                    session.execute(
                        departments.update()
                        .where(
                            departments.c.organization_id == organization_id,
                            departments.c.id == department_id,
                        )
                        .values(**changes, updated_at=now),
                        execution_options=self._options,
                    )
            except sa.exc.IntegrityError:
                raise DepartmentExistsError(organization_id, str(title)) from None
            confirm_written(
                session,
                departments,
                {"organization_id": organization_id, "id": department_id},
                changes,
                execution_options=self._options,
            )
        updated = current.model_copy(update={**changes, "updated_at": now})
        self.membership.events.record(
            session,
            DepartmentUpdated(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                department_id=department_id,
                name=updated.name,
                changed=tuple(sorted(changes)),
            ),
        )
        return updated

    def delete(
        self, session: Session, organization_id: str, department_id: str, *, actor: Actor | str
    ) -> Department:
        """Delete a department and its memberships; the members stay members of the organization.

        Raises:
            InvalidInputError: A malformed id.
            PermissionDeniedError: The actor may not manage departments.
            DepartmentNotFoundError: No such department in this organization.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(department_id, "department_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, MANAGE_DEPARTMENTS)
        with typed_concurrency_errors(organization_id):
            begin_write(session, departments, self._options)
            department = _department(self._row(session, organization_id, department_id, lock=True))
            # Explicitly, not by the foreign key's cascade alone: SQLite enforces foreign keys when asked.
            removed = session.execute(
                department_members.delete().where(
                    department_members.c.organization_id == organization_id,
                    department_members.c.department_id == department_id,
                ),
                execution_options=self._options,
            )
            session.execute(
                departments.delete().where(
                    departments.c.organization_id == organization_id, departments.c.id == department_id
                ),
                execution_options=self._options,
            )
            confirm_written(
                session,
                departments,
                {"organization_id": organization_id, "id": department_id},
                None,
                execution_options=self._options,
            )
        self.membership.events.record(
            session,
            DepartmentDeleted(
                organization_id=organization_id,
                actor=acting,
                occurred_at=self.membership.clock(),
                department_id=department_id,
                name=department.name,
                members=max(getattr(removed, "rowcount", 0), 0),
            ),
        )
        return department

    # -- who is in a department ------------------------------------------------------------------------

    def add_member(
        self, session: Session, organization_id: str, department_id: str, user_id: str, *, actor: Actor | str
    ) -> Member:
        """Put a member of the organization into a department; one already in it changes nothing.

        Returns:
            The organization membership of ``user_id``.

        Raises:
            InvalidInputError: A malformed id.
            PermissionDeniedError: The actor may not manage departments.
            DepartmentNotFoundError: No such department in this organization.
            MemberNotFoundError: ``user_id`` is not a member of the organization.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(department_id, "department_id")
        check_identifier(user_id, "user_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, MANAGE_DEPARTMENTS)
        keys = {"b_org": organization_id, "b_id": department_id, "b_user": user_id}
        with typed_concurrency_errors(organization_id):
            begin_write(session, department_members, self._options)
            self._row(session, organization_id, department_id)
            member_row = session.execute(_MEMBER_SHARED, keys, execution_options=self._options).first()
            if member_row is None:
                raise MemberNotFoundError(organization_id, user_id)
            member = _member(member_row)
            if session.execute(_MEMBERSHIP, keys, execution_options=self._options).first() is not None:
                return member
            now = self.membership.clock()
            try:
                with session.begin_nested():
                    session.execute(
                        department_members.insert(),
                        {
                            "id": new_id(),
                            "department_id": department_id,
                            "organization_id": organization_id,
                            "user_id": user_id,
                            "created_at": now,
                        },
                        execution_options=self._options,
                    )
            except sa.exc.IntegrityError:
                # A concurrent add of the same member committed first (or the department just went).
                self._row(session, organization_id, department_id)
                return member
        self.membership.events.record(
            session,
            DepartmentMemberAdded(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                department_id=department_id,
                user_id=user_id,
            ),
        )
        return member

    def remove_member(
        self, session: Session, organization_id: str, department_id: str, user_id: str, *, actor: Actor | str
    ) -> None:
        """Take a member out of a department (the organization membership stays).

        Raises:
            InvalidInputError: A malformed id.
            PermissionDeniedError: The actor may not manage departments.
            DepartmentNotFoundError: No such department in this organization.
            DepartmentMemberNotFoundError: ``user_id`` is not in the department.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(department_id, "department_id")
        check_identifier(user_id, "user_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, MANAGE_DEPARTMENTS)
        with typed_concurrency_errors(organization_id):
            begin_write(session, department_members, self._options)
            self._row(session, organization_id, department_id)
            removed = session.execute(
                department_members.delete().where(
                    department_members.c.organization_id == organization_id,
                    department_members.c.department_id == department_id,
                    department_members.c.user_id == user_id,
                ),
                execution_options=self._options,
            )
            if getattr(removed, "rowcount", 0) < 1:
                raise DepartmentMemberNotFoundError(department_id, user_id)
        self.membership.events.record(
            session,
            DepartmentMemberRemoved(
                organization_id=organization_id,
                actor=acting,
                occurred_at=self.membership.clock(),
                department_id=department_id,
                user_id=user_id,
            ),
        )

    def list_members(
        self,
        session: Session | Connection,
        organization_id: str,
        department_id: str,
        *,
        actor: Actor | str,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Member]:
        """One page of a department's members (their organization memberships, with role, attributes and
        suspension), by user id.

        Raises:
            InvalidInputError: A malformed id, limit or cursor.
            PermissionDeniedError: The actor may not read departments.
            DepartmentNotFoundError: No such department in this organization.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(department_id, "department_id")
        seek = _DEPARTMENT_MEMBERS_ORDER.seek(limit=limit, cursor=cursor)
        self.membership.authorize(session, organization_id, actor, READ_DEPARTMENTS)
        self._row(session, organization_id, department_id)
        query = (
            sa.select(team_members)
            .join(
                department_members,
                sa.and_(
                    department_members.c.organization_id == team_members.c.organization_id,
                    department_members.c.user_id == team_members.c.user_id,
                ),
            )
            .where(
                team_members.c.organization_id == organization_id,
                department_members.c.department_id == department_id,
            )
        )
        return fetch_page(session, query, seek, _member, execution_options=self._options)

    def departments_of(
        self, session: Session | Connection, organization_id: str, user_id: str, *, actor: Actor | str
    ) -> list[Department]:
        """Every department ``user_id`` is in, by name (a member is in a handful, so no pages).

        Raises:
            InvalidInputError: A malformed id.
            PermissionDeniedError: The actor may not read departments.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        self.membership.authorize(session, organization_id, actor, READ_DEPARTMENTS)
        rows = session.execute(
            sa.select(departments)
            .join(department_members, department_members.c.department_id == departments.c.id)
            .where(
                departments.c.organization_id == organization_id,
                department_members.c.organization_id == organization_id,
                department_members.c.user_id == user_id,
            )
            .order_by(departments.c.name, departments.c.id),
            execution_options=self._options,
        ).all()
        return [_department(row) for row in rows]

    # -- helpers ---------------------------------------------------------------------------------------

    def _row(
        self, session: Session | Connection, organization_id: str, department_id: str, *, lock: bool = False
    ) -> Any:
        row = session.execute(
            _BY_ID_FOR_UPDATE if lock else _BY_ID,
            {"b_org": organization_id, "b_id": department_id},
            execution_options=self._options,
        ).first()
        if row is None:
            raise DepartmentNotFoundError(organization_id, department_id)
        return row

    def _require_free_name(self, session: Session, organization_id: str, name: str) -> None:
        taken = session.execute(
            _BY_NAME, {"b_org": organization_id, "b_name": name}, execution_options=self._options
        ).first()
        if taken is not None:
            raise DepartmentExistsError(organization_id, name)


def _description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError("description", f"must be a string, got {type(value).__name__}")
    text = value.strip()
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInputError("description", f"must be at most {MAX_DESCRIPTION_LENGTH} characters")
    return text or None
