"""Organization membership: who belongs to an organization, with which role, and what that role allows."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, as_actor
from tenantkit._clock import Clock, system_clock
from tenantkit._errors import AlreadyMemberError, PermissionDeniedError, RoleEscalationError
from tenantkit._events import EventDispatcher, MemberAdded
from tenantkit._roles import Action, Permissions, Role
from tenantkit._tables import new_id, team_members
from tenantkit._validation import check_identifier


class Member(BaseModel):
    """A user's membership of an organization."""

    model_config = ConfigDict(frozen=True)

    id: str
    organization_id: str
    user_id: str
    role: Role
    created_at: datetime
    updated_at: datetime


_ROLE_OF = (
    sa.select(team_members.c.role)
    .where(
        team_members.c.organization_id == sa.bindparam("organization_id"),
        team_members.c.user_id == sa.bindparam("user_id"),
    )
    .limit(1)
)


class MembershipService:
    """Membership of organizations, bounded by roles.

    Args:
        permissions: The permission table (the default one when omitted).
        clock: Where the current time comes from.
        events: The dispatcher that delivers events after commit (a private one when omitted).
    """

    def __init__(
        self,
        *,
        permissions: Permissions | None = None,
        clock: Clock = system_clock,
        events: EventDispatcher | None = None,
    ) -> None:
        self.permissions = permissions or Permissions()
        self.clock = clock
        self.events = events or EventDispatcher()

    def get_role(self, session: Session | Connection, organization_id: str, user_id: str) -> Role | None:
        """The role of ``user_id`` in ``organization_id``, or ``None`` when not a member."""
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        role = session.execute(_ROLE_OF, {"organization_id": organization_id, "user_id": user_id}).scalar()
        return None if role is None else Role(role)

    def authorize(
        self, session: Session, organization_id: str, actor: Actor | str, action: Action | str
    ) -> Role | None:
        """Check that ``actor`` may perform ``action`` in the organization and return its role.

        Returns:
            The actor's role, or ``None`` when the host acts (the host passes every permission check).

        Raises:
            PermissionDeniedError: The actor is not a member, or its role does not allow ``action``.
        """
        check_identifier(organization_id, "organization_id")
        acting = as_actor(actor)
        if acting.user_id is None:
            return None
        role = self.get_role(session, organization_id, acting.user_id)
        if role is None:
            name = action.value if isinstance(action, Action) else action
            raise PermissionDeniedError(
                name, None, f"{acting.user_id!r} is not a member of organization {organization_id!r}"
            )
        self.permissions.require(role, action)
        return role

    @staticmethod
    def check_grant(actor_role: Role | None, role: Role) -> None:
        """Raise :class:`RoleEscalationError` unless an actor with ``actor_role`` may grant ``role``.

        ``actor_role`` is ``None`` for the host, which may grant any role.
        """
        if actor_role is not None and not actor_role.can_grant(role):
            raise RoleEscalationError(actor_role, role)

    def add(
        self,
        session: Session,
        organization_id: str,
        user_id: str,
        role: Role | str = Role.MEMBER,
        *,
        actor: Actor | str,
    ) -> Member:
        """Make ``user_id`` a member of the organization with ``role``.

        Raises:
            AlreadyMemberError: The user is already a member; their role is left as it was.
            PermissionDeniedError: The actor may not add members.
            RoleEscalationError: The actor may not grant ``role``.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        wanted = Role.parse(role)
        acting = as_actor(actor)
        actor_role = self.authorize(session, organization_id, acting, Action.INVITE_MEMBERS)
        self.check_grant(actor_role, wanted)
        existing = self.get_role(session, organization_id, user_id)
        if existing is not None:
            raise AlreadyMemberError(organization_id, user_id, existing)
        now = self.clock()
        member = Member(
            id=new_id(),
            organization_id=organization_id,
            user_id=user_id,
            role=wanted,
            created_at=now,
            updated_at=now,
        )
        session.execute(team_members.insert().values(**member.model_dump()))
        self.events.record(
            session,
            MemberAdded(
                organization_id=organization_id,
                actor_id=acting.user_id,
                occurred_at=now,
                user_id=user_id,
                role=wanted,
            ),
        )
        return member
