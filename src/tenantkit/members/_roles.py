"""An organization's custom roles: list, create, edit and delete them, each change bounded by the policy.

Deployment-wide roles are the host's (``Permissions(roles=[...])``) and read-only here; an organization's
own roles are rows of ``custom_roles``. Every change needs ``roles:manage``, reaches no role above the
actor's own rank, and passes the escalation rule: the permissions it adds to a role must be the actor's
already (editing a role one holds is a grant to oneself, and is judged the same way). Removing permissions
is always allowed within those bounds.

Deleting a role never cascades into memberships. While members hold it (or pending invitations offer it)
the deletion is refused with the count, unless ``reassign_to=`` names the role they move to: then, in the
caller's transaction, the invitations offering the role are locked, then the role row ``FOR UPDATE`` (an
assignment in flight holds it shared, so one of the two waits for the other; an acceptance locks its
invitation, then the role, the same order), then the member rows as the owner invariant locks them; the
holders and invitations move, and the row goes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, as_actor
from tenantkit._db import begin_write, typed_concurrency_errors
from tenantkit._errors import (
    InvalidInputError,
    RoleExistsError,
    RoleInUseError,
    RoleNotFoundError,
)
from tenantkit._events import MemberRoleChanged, RoleCreated, RoleDeleted, RoleUpdated
from tenantkit._invalidation import CacheKey
from tenantkit._missing_schema import translate_missing_schema
from tenantkit._tables import custom_roles, invitations, new_id
from tenantkit._validation import check_identifier
from tenantkit.members._service import Member, MembershipService
from tenantkit.roles._policy import Action, CustomRole, EffectivePermissions, Role
from tenantkit.roles._store import load_organization_roles, load_role

_INVITATIONS_OFFERING = (
    sa.select(invitations.c.id, invitations.c.status)
    .where(
        invitations.c.organization_id == sa.bindparam("organization_id"),
        invitations.c.custom_role == sa.bindparam("key"),
    )
    .with_for_update()
)

_UPDATE = custom_roles.update().where(
    custom_roles.c.organization_id == sa.bindparam("org"), custom_roles.c.key == sa.bindparam("role_key")
)
_DELETE = custom_roles.delete().where(
    custom_roles.c.organization_id == sa.bindparam("org"), custom_roles.c.key == sa.bindparam("role_key")
)


def _validated(**fields: Any) -> CustomRole:
    """A :class:`CustomRole` from user input; a validation failure is the usual :class:`InvalidInputError`."""
    try:
        return CustomRole(**fields)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        errors = getattr(error, "errors", None)
        if callable(errors):
            first = errors()[0]
            field = ".".join(str(part) for part in first.get("loc", ())) or "role"
            raise InvalidInputError(field, str(first.get("msg", error))) from None
        raise InvalidInputError("role", str(error)) from None


@translate_missing_schema()
class RoleService:
    """Custom roles of organizations; built on a :class:`MembershipService`, whose policy it applies.

    Every method takes the caller's ``Session`` and works inside its transaction (flushes, never commits).

    .. versionadded:: 0.2
    """

    def __init__(self, membership: MembershipService) -> None:
        self.membership = membership

    @property
    def permissions(self) -> Any:
        """The policy (:class:`~tenantkit.Permissions`) of the membership service."""
        return self.membership.permissions

    # -- reads -----------------------------------------------------------------------------------------

    def list_roles(
        self, session: Session | Connection, organization_id: str, *, actor: Actor | str
    ) -> list[CustomRole]:
        """Every custom role members of the organization may hold: the deployment-wide ones, then the
        organization's own, each by key.

        Raises:
            PermissionDeniedError: The actor may not read the organization's members (``members:read``; MEMBER
                has it), whose roles these are.
        """
        check_identifier(organization_id, "organization_id")
        self.membership.authorize(session, organization_id, actor, Action.READ_MEMBERS)
        declared = sorted(self.permissions.roles.values(), key=lambda role: role.key)
        return [
            *declared,
            *load_organization_roles(session, organization_id, self.membership.execution_options),
        ]

    def get(
        self, session: Session | Connection, organization_id: str, key: str, *, actor: Actor | str
    ) -> CustomRole:
        """One custom role (deployment-wide or the organization's).

        Raises:
            PermissionDeniedError: The actor may not read the organization's members.
            RoleNotFoundError: No such role.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(key, "key")
        self.membership.authorize(
            session, organization_id, actor, Action.READ_MEMBERS, resource=f"role:{key}"
        )
        found = self.membership.custom_role_of(session, organization_id, key)
        if found is None:
            raise RoleNotFoundError(organization_id, key)
        return found

    # -- changes ---------------------------------------------------------------------------------------

    def _manager(
        self, session: Session, organization_id: str, acting: Actor, rank: Role
    ) -> EffectivePermissions | None:
        """The actor's authority over a role of ``rank``: ``roles:manage``, and a rank no lower."""
        held = self.membership.grant_authority(session, organization_id, acting, Action.MANAGE_ROLES)
        if held is not None:
            self.permissions.require_manage(held.rank, rank, Action.MANAGE_ROLES)
        return held

    def create(
        self,
        session: Session,
        organization_id: str,
        key: str,
        *,
        name: str,
        rank: Role | str,
        permissions: Iterable[str] = (),
        description: str = "",
        actor: Actor | str,
    ) -> CustomRole:
        """Define a custom role in the organization.

        Args:
            session: The caller's session.
            organization_id: The organization.
            key: The role's stable identifier (lower-case letters, digits, ``_ . -``; not a rank's name).
            name: Its display name.
            rank: ADMIN or MEMBER: the rank it sits in.
            permissions: What it adds to the rank's permissions: names of the registry, never an OWNER-only
                action, each held by the actor.
            description: A longer explanation.
            actor: Who defines it (needs ``roles:manage``), or :data:`~tenantkit.HOST`.

        Returns:
            The new role.

        Raises:
            InvalidInputError: A malformed key, name, rank or permission list; an OWNER-only permission.
            UnknownPermissionError: A permission is not in the registry.
            PermissionDeniedError: The actor may not manage roles, or not of this rank.
            PermissionEscalationError: A permission is not the actor's own.
            RoleExistsError: The key is taken (in the organization or deployment-wide).
        """
        check_identifier(organization_id, "organization_id")
        acting = as_actor(actor)
        role = _validated(
            key=key,
            name=name,
            rank=rank,
            permissions=permissions,
            description=description,
            organization_id=organization_id,
        )
        checked = self.permissions.check_role_permissions(role.permissions)
        options = self.membership.execution_options
        with typed_concurrency_errors(organization_id):
            begin_write(session.connection(), custom_roles, options)
            held = self._manager(session, organization_id, acting, role.rank)
            self.permissions.require_may_grant(held, permissions=checked, what=f"role {role.key!r}")
            if self.permissions.deployment_role(role.key) is not None or load_role(
                session, organization_id, role.key, options
            ):
                raise RoleExistsError(organization_id, role.key)
            now = self.membership.clock()
            row = {
                "id": new_id(),
                "organization_id": organization_id,
                "key": role.key,
                "name": role.name,
                "description": role.description,
                "rank": role.rank.value,
                "permissions": sorted(checked),
                "created_at": now,
                "updated_at": now,
            }
            try:
                with session.begin_nested():
                    session.execute(custom_roles.insert(), row, execution_options=options)
            except sa.exc.IntegrityError as error:
                raise RoleExistsError(organization_id, role.key) from error
            self.membership.events.record(
                session,
                RoleCreated(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    role_key=role.key,
                    name=role.name,
                    rank=role.rank.value,
                    permissions=tuple(sorted(checked)),
                ),
            )
        return role.model_copy(update={"permissions": checked, "created_at": now, "updated_at": now})

    def _refuse_deployment_role(self, key: str) -> None:
        check_identifier(key, "key")
        if self.permissions.deployment_role(key) is not None:
            raise InvalidInputError("key", f"{key!r} is a deployment-wide role: the host declares it in code")

    def _locked_role(self, session: Session, organization_id: str, key: str) -> CustomRole:
        self._refuse_deployment_role(key)
        begin_write(session.connection(), custom_roles, self.membership.execution_options)
        found = load_role(session, organization_id, key, self.membership.execution_options, lock="update")
        if found is None:
            raise RoleNotFoundError(organization_id, key)
        return found

    def update(
        self,
        session: Session,
        organization_id: str,
        key: str,
        *,
        actor: Actor | str,
        name: str | None = None,
        description: str | None = None,
        permissions: Iterable[str] | None = None,
    ) -> CustomRole:
        """Rename, redescribe, or change the permissions of the organization's role ``key`` (its key and rank
        never change).

        Permissions added must be the actor's own (also when the actor holds this role: that is a grant to
        itself); permissions removed need only ``roles:manage`` over the role's rank. Holders' cached
        permissions are evicted at commit.

        Raises:
            InvalidInputError: A deployment-wide role, a malformed field or an OWNER-only permission.
            UnknownPermissionError: A permission is not in the registry.
            RoleNotFoundError: No such role in the organization.
            PermissionDeniedError: The actor may not manage roles, or not of this rank.
            PermissionEscalationError: An added permission is not the actor's own.
        """
        check_identifier(organization_id, "organization_id")
        acting = as_actor(actor)
        options = self.membership.execution_options
        with typed_concurrency_errors(organization_id):
            current = self._locked_role(session, organization_id, key)
            wanted = _validated(
                **{
                    **current.model_dump(exclude={"permissions"}),
                    "name": current.name if name is None else name,
                    "description": current.description if description is None else description,
                    "permissions": current.permissions if permissions is None else permissions,
                }
            )
            checked = self.permissions.check_role_permissions(wanted.permissions)
            held = self._manager(session, organization_id, acting, current.rank)
            added = checked - current.permissions
            removed = current.permissions - checked
            self.permissions.require_may_grant(held, permissions=added, what=f"role {key!r}")
            changed = tuple(
                field
                for field, differs in (
                    ("name", wanted.name != current.name),
                    ("description", wanted.description != current.description),
                    ("permissions", bool(added or removed)),
                )
                if differs
            )
            if not changed:
                return current
            now = self.membership.clock()
            session.execute(
                _UPDATE.values(
                    name=wanted.name,
                    description=wanted.description,
                    permissions=sorted(checked),
                    updated_at=now,
                ),
                {"org": organization_id, "role_key": key},
                execution_options=options,
            )
            self.membership.events.record(
                session,
                RoleUpdated(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    role_key=key,
                    changed=changed,
                    added=tuple(sorted(added)),
                    removed=tuple(sorted(removed)),
                ),
            )
            self.membership.events.caches.invalidate((CacheKey.role(organization_id, key),))
        return wanted.model_copy(update={"permissions": checked, "updated_at": now})

    def delete(
        self,
        session: Session,
        organization_id: str,
        key: str,
        *,
        actor: Actor | str,
        reassign_to: Role | str | None = None,
    ) -> int:
        """Delete the organization's role ``key``.

        Refused while members hold it or pending invitations offer it, unless ``reassign_to`` names the role
        (a rank or another custom role) they move to, which the actor must be allowed to grant; finished
        invitations merely forget it. Everything happens in the caller's transaction, under the role's row
        lock and the member locks of the owner invariant.

        Args:
            session: The caller's session.
            organization_id: The organization.
            key: The role to delete.
            actor: Who deletes (needs ``roles:manage``, and ``members:change_role`` to reassign members).
            reassign_to: Where holders and pending invitations go; ``None`` refuses while there are any.

        Returns:
            How many members were reassigned.

        Raises:
            RoleNotFoundError: No such role in the organization.
            RoleInUseError: Members or pending invitations hold it and ``reassign_to`` is ``None``.
            UnknownRoleError: ``reassign_to`` names no role.
            InvalidInputError: A deployment-wide role, or ``reassign_to`` is the role itself.
            PermissionDeniedError: The actor may not manage roles, or reassign members.
            RoleEscalationError / PermissionEscalationError: The actor may not grant ``reassign_to``.
        """
        check_identifier(organization_id, "organization_id")
        acting = as_actor(actor)
        options = self.membership.execution_options
        membership = self.membership
        with typed_concurrency_errors(organization_id):
            self._refuse_deployment_role(key)
            begin_write(session.connection(), custom_roles, options)
            # Invitations offering the role, then the role, then member rows: an acceptance locks its
            # invitation before the role it offers, so the two paths lock in the same order.
            offers = session.execute(
                _INVITATIONS_OFFERING,
                {"organization_id": organization_id, "key": key},
                execution_options=options,
            ).all()
            current = self._locked_role(session, organization_id, key)
            # Read them again now that the role is ours: an invitation created while this deletion waited
            # for the role's lock (its creator share-locks the role, then inserts) committed before the lock
            # was granted, after the read above. PostgreSQL's READ COMMITTED sees it in this new statement
            # (and a locking read on MariaDB reads the latest rows); without it, it would be left offering
            # a role that is gone.
            offers = session.execute(
                _INVITATIONS_OFFERING,
                {"organization_id": organization_id, "key": key},
                execution_options=options,
            ).all()
            target: tuple[Role, CustomRole | None] | None = None
            if reassign_to is not None:
                target = membership.resolve_role(session, organization_id, reassign_to, lock="share")
                if target[1] is not None and target[1].key == key:
                    raise InvalidInputError("reassign_to", "must be another role than the one deleted")
            # The owner invariant's locks, on the owners, the actor and every holder, in one statement.
            locked = membership._lock(session, organization_id, acting.user_id, holders_of=key)
            holders = [member for member in locked.by_user.values() if member.custom_role == key]
            pending = [row.id for row in offers if row.status == "pending"]
            held = self._manager(session, organization_id, acting, current.rank)
            now = membership.clock()
            moved = 0
            if holders or pending:
                if target is None:
                    raise RoleInUseError(organization_id, key, len(holders), len(pending))
                moved = self._reassign(
                    session, acting, locked, held, holders, pending, target, now, organization_id
                )
            finished = [row.id for row in offers if row.status != "pending"]
            if finished:
                session.execute(
                    invitations.update()
                    .where(invitations.c.organization_id == organization_id, invitations.c.id.in_(finished))
                    .values(custom_role=None),
                    execution_options=options,
                )
            session.execute(_DELETE, {"org": organization_id, "role_key": key}, execution_options=options)
            membership.events.record(
                session,
                RoleDeleted(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    role_key=key,
                    reassigned_to=None
                    if target is None
                    else (target[1].key if target[1] else target[0].value),
                    members=moved,
                ),
            )
            membership.events.caches.invalidate((CacheKey.role(organization_id, key),))
        return moved

    def _reassign(
        self,
        session: Session,
        acting: Actor,
        locked: Any,
        held: EffectivePermissions | None,
        holders: list[Member],
        pending: list[str],
        target: tuple[Role, CustomRole | None],
        now: datetime,
        organization_id: str,
    ) -> int:
        """Move the locked holders and the pending invitations of a role being deleted to ``target``: a grant,
        under the escalation rule, of a change of role to every holder (each recorded)."""
        membership = self.membership
        rank, custom = target
        self.permissions.require_may_grant(held, self.permissions.effective(rank, custom))
        key = custom.key if custom is not None else None
        if holders and acting.user_id is not None:
            membership._actor_holding(
                session, holders[0].organization_id, acting, locked, Action.CHANGE_ROLES
            )
        for member in holders:
            membership._check_manages(held, member, Action.CHANGE_ROLES)
            membership._set_role(session, member.organization_id, member.user_id, rank, now, key)
            membership.events.record(
                session,
                MemberRoleChanged(
                    organization_id=member.organization_id,
                    actor=acting,
                    occurred_at=now,
                    user_id=member.user_id,
                    old_role=member.role,
                    new_role=rank,
                    old_custom_role=member.custom_role,
                    new_custom_role=key,
                ),
            )
        if pending:
            session.execute(
                invitations.update()
                .where(invitations.c.organization_id == organization_id, invitations.c.id.in_(pending))
                .values(role=rank, custom_role=key),
                execution_options=membership.execution_options,
            )
        return len(holders)

    def __repr__(self) -> str:
        return f"RoleService(deployment_roles={sorted(self.permissions.roles)!r})"
