"""Departments: groups of members inside one organization, managed by its administrators, on every dialect.

A department grants nothing; ``departments:manage`` (ADMIN and above) manages departments,
``departments:read`` (every rank) reads them; its members are members of the organization, and leave its
departments when they leave it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, InvalidInputError, PermissionDeniedError, Role, TenantKit
from tenantkit.errors import (
    DepartmentExistsError,
    DepartmentMemberNotFoundError,
    DepartmentNotFoundError,
    MemberNotFoundError,
    MemberSuspendedError,
)
from tenantkit.tables import department_members
from tenantkit.testing import FrozenClock

ORG = "general-hospital"
OTHER = "other-hospital"


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return TenantKit(clock=clock)


@pytest.fixture
def session(engine: sa.Engine, kit: TenantKit) -> Iterator[Session]:
    """alice OWNER, adam ADMIN, nina and ned MEMBERs; another organization owned by olga."""
    with Session(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "adam", Role.ADMIN, actor=HOST)
        kit.members.add(session, ORG, "nina", actor=HOST)
        kit.members.add(session, ORG, "ned", actor=HOST)
        kit.members.add(session, OTHER, "olga", Role.OWNER, actor=HOST)
        session.commit()
        yield session


def test_administrators_create_rename_list_and_delete(kit: TenantKit, session: Session) -> None:
    """An ADMIN creates, renames and deletes; members list by name; every change is audited."""
    cardiology = kit.departments.create(session, ORG, "Cardiology", actor="adam", description="Heart")
    emergency = kit.departments.create(session, ORG, "Emergency", actor="adam")
    session.commit()
    assert [d.name for d in kit.departments.list_departments(session, ORG, actor="nina").items] == [
        "Cardiology",
        "Emergency",
    ]
    renamed = kit.departments.update(session, ORG, cardiology.id, actor="adam", name="Cardiac care")
    assert renamed.id == cardiology.id
    assert renamed.name == "Cardiac care"
    assert renamed.description == "Heart"
    assert kit.departments.get(session, ORG, cardiology.id, actor="nina").name == "Cardiac care"
    kit.departments.delete(session, ORG, emergency.id, actor="adam")
    session.commit()
    assert [d.id for d in kit.departments.list_departments(session, ORG, actor=HOST).items] == [cardiology.id]
    types = [event.type for event in kit.audit.list_events(session, ORG, actor=HOST).items]
    assert {"department.created", "department.updated", "department.deleted"} <= set(types)


def test_members_cannot_manage_departments(kit: TenantKit, session: Session) -> None:
    """A MEMBER may read but not create, rename, delete or change who is in a department."""
    department = kit.departments.create(session, ORG, "Cardiology", actor="alice")
    with pytest.raises(PermissionDeniedError):
        kit.departments.create(session, ORG, "Oncology", actor="nina")
    with pytest.raises(PermissionDeniedError):
        kit.departments.update(session, ORG, department.id, actor="nina", name="x")
    with pytest.raises(PermissionDeniedError):
        kit.departments.delete(session, ORG, department.id, actor="nina")
    with pytest.raises(PermissionDeniedError):
        kit.departments.add_member(session, ORG, department.id, "ned", actor="nina")


def test_another_organization_sees_nothing(kit: TenantKit, session: Session) -> None:
    """A department is invisible to another organization's members and ids: not found, or denied."""
    department = kit.departments.create(session, ORG, "Cardiology", actor="alice")
    with pytest.raises(DepartmentNotFoundError):
        kit.departments.get(session, OTHER, department.id, actor="olga")
    with pytest.raises(DepartmentNotFoundError):
        kit.departments.add_member(session, OTHER, department.id, "olga", actor="olga")
    with pytest.raises(PermissionDeniedError):
        kit.departments.list_departments(session, ORG, actor="olga")
    assert kit.departments.list_departments(session, OTHER, actor="olga").items == []


def test_names_are_unique_per_organization(kit: TenantKit, session: Session) -> None:
    """Two departments of one organization never share a name; another organization may use it."""
    kit.departments.create(session, ORG, "Cardiology", actor="alice")
    other = kit.departments.create(session, ORG, "Oncology", actor="alice")
    with pytest.raises(DepartmentExistsError):
        kit.departments.create(session, ORG, " Cardiology ", actor="alice")
    with pytest.raises(DepartmentExistsError):
        kit.departments.update(session, ORG, other.id, actor="alice", name="Cardiology")
    kit.departments.create(session, OTHER, "Cardiology", actor="olga")
    with pytest.raises(InvalidInputError):
        kit.departments.create(session, ORG, "  ", actor="alice")


def test_membership_in_departments(kit: TenantKit, session: Session) -> None:
    """Members join and leave departments; listings show their organization memberships; adding twice is
    one membership; a non-member cannot join; removing someone not in it is not found."""
    cardiology = kit.departments.create(session, ORG, "Cardiology", actor="alice")
    emergency = kit.departments.create(session, ORG, "Emergency", actor="alice")
    kit.departments.add_member(session, ORG, cardiology.id, "nina", actor="adam")
    kit.departments.add_member(session, ORG, cardiology.id, "nina", actor="adam")
    kit.departments.add_member(session, ORG, cardiology.id, "adam", actor="adam")
    kit.departments.add_member(session, ORG, emergency.id, "nina", actor="adam")
    session.commit()
    listed = kit.departments.list_members(session, ORG, cardiology.id, actor="ned").items
    assert [(m.user_id, m.role) for m in listed] == [("adam", Role.ADMIN), ("nina", Role.MEMBER)]
    assert [d.name for d in kit.departments.departments_of(session, ORG, "nina", actor="ned")] == [
        "Cardiology",
        "Emergency",
    ]
    with pytest.raises(MemberNotFoundError):
        kit.departments.add_member(session, ORG, cardiology.id, "olga", actor="alice")
    with pytest.raises(DepartmentMemberNotFoundError):
        kit.departments.remove_member(session, ORG, cardiology.id, "ned", actor="alice")
    kit.departments.remove_member(session, ORG, cardiology.id, "nina", actor="adam")
    assert [
        m.user_id for m in kit.departments.list_members(session, ORG, cardiology.id, actor=HOST).items
    ] == ["adam"]
    added = [
        e
        for e in kit.audit.list_events(session, ORG, actor=HOST).items
        if e.type == "department.member_added"
    ]
    assert len(added) == 3
    assert {target.type for target in added[0].targets} == {"department", "member"}


def test_leaving_the_organization_leaves_its_departments(kit: TenantKit, session: Session) -> None:
    """Removal and departure take the member out of every department in the same transaction."""
    cardiology = kit.departments.create(session, ORG, "Cardiology", actor="alice")
    kit.departments.add_member(session, ORG, cardiology.id, "nina", actor="alice")
    kit.departments.add_member(session, ORG, cardiology.id, "ned", actor="alice")
    kit.members.remove(session, ORG, "nina", actor="adam")
    kit.members.leave(session, ORG, actor="ned")
    session.commit()
    assert session.execute(sa.select(sa.func.count()).select_from(department_members)).scalar_one() == 0


def test_deleting_a_department_keeps_its_members(kit: TenantKit, session: Session) -> None:
    """The department's memberships go with it; the organization memberships stay."""
    cardiology = kit.departments.create(session, ORG, "Cardiology", actor="alice")
    kit.departments.add_member(session, ORG, cardiology.id, "nina", actor="alice")
    kit.departments.delete(session, ORG, cardiology.id, actor="alice")
    session.commit()
    assert kit.members.get_role(session, ORG, "nina") is Role.MEMBER
    assert session.execute(sa.select(sa.func.count()).select_from(department_members)).scalar_one() == 0
    with pytest.raises(DepartmentNotFoundError):
        kit.departments.list_members(session, ORG, cardiology.id, actor=HOST)


def test_a_suspended_administrator_manages_nothing(kit: TenantKit, session: Session) -> None:
    """Suspension denies department management too: one resolution of the actor serves every service."""
    kit.members.suspend(session, ORG, "adam", actor="alice")
    with pytest.raises(MemberSuspendedError):
        kit.departments.create(session, ORG, "Cardiology", actor="adam")
    with pytest.raises(MemberSuspendedError):
        kit.departments.list_departments(session, ORG, actor="adam")


class TestDepartmentActions:
    """Departments answer to ``departments:manage`` and ``departments:read``, not to the member actions."""

    def test_the_service_asks_the_department_actions(self) -> None:
        """The service's actions are the built-in department ones, held as the default table says."""
        from tenantkit import Action, Permissions
        from tenantkit.departments import MANAGE_DEPARTMENTS, READ_DEPARTMENTS

        assert (MANAGE_DEPARTMENTS, READ_DEPARTMENTS) == (Action.MANAGE_DEPARTMENTS, Action.READ_DEPARTMENTS)
        table = Permissions()
        assert [table.can(role, "departments:manage") for role in Role] == [True, True, False]
        assert [table.can(role, "departments:read") for role in Role] == [True, True, True]

    def test_a_table_without_them_denies_departments_but_not_members(self, engine: sa.Engine) -> None:
        """A host table that keeps the member actions but drops the department ones: an ADMIN may still
        change roles, yet not create a department, and a MEMBER reads members but not departments."""
        from tenantkit import DEFAULT_PERMISSIONS, Permissions

        table = {
            role: [a for a in actions if not a.startswith("departments:")]
            for role, actions in DEFAULT_PERMISSIONS.items()
        }
        kit = TenantKit(permissions=Permissions(table))
        with Session(engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            kit.members.add(s, ORG, "adam", Role.ADMIN, actor=HOST)
            kit.members.add(s, ORG, "nina", actor=HOST)
            kit.members.change_role(s, ORG, "nina", Role.MEMBER, actor="adam")
            with pytest.raises(PermissionDeniedError) as caught:
                kit.departments.create(s, ORG, "Cardiology", actor="adam")
            assert caught.value.action == "departments:manage"
            kit.members.list_members(s, ORG, actor="nina")
            with pytest.raises(PermissionDeniedError):
                kit.departments.list_departments(s, ORG, actor="nina")

    def test_a_custom_role_may_carry_departments_manage(self, engine: sa.Engine) -> None:
        """A "charge nurse" inside MEMBER with ``departments:manage`` staffs departments without being able
        to change anyone's role; an ADMIN (who holds it) may grant the role, and nothing else widens."""
        from tenantkit import CustomRole, Permissions

        charge = CustomRole(
            key="charge_nurse",
            name="Charge nurse",
            rank=Role.MEMBER,
            permissions=frozenset({"departments:manage"}),
        )
        kit = TenantKit(permissions=Permissions(registry={"records:read": ""}, roles=[charge]))
        with Session(engine) as s:
            kit.members.add(s, ORG, "adam", Role.ADMIN, actor=HOST)
            kit.members.add(s, ORG, "carla", "charge_nurse", actor="adam")
            kit.members.add(s, ORG, "ned", actor=HOST)
            ward = kit.departments.create(s, ORG, "Ward 3", actor="carla")
            kit.departments.add_member(s, ORG, ward.id, "ned", actor="carla")
            with pytest.raises(PermissionDeniedError):
                kit.members.change_role(s, ORG, "ned", Role.MEMBER, actor="carla")
            with pytest.raises(PermissionDeniedError):
                kit.departments.create(s, ORG, "Ward 4", actor="ned")
            assert [m.user_id for m in kit.departments.list_members(s, ORG, ward.id, actor="ned").items] == [
                "ned"
            ]
