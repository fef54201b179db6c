"""Revision 0005 (custom roles): up, down and up again beside existing rows, the downgrade that refuses
while custom roles are in use, SQL that rewrites no table, and an adopted origin database that gains custom
roles."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, CustomRole, Permissions, Role, TenantKit
from tenantkit.errors import CustomRolesInUseError
from tenantkit.tables import custom_roles, team_members
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, upgrade_ddl
from tests.test_origin_document import apply_origin

DIALECTS = ["sqlite", "postgresql", "mariadb"]
NURSE = CustomRole(key="nurse", name="Nurse", rank=Role.MEMBER, permissions=frozenset({"members:invite"}))


def columns(engine: sa.Engine, table: str) -> set[str]:
    """The column names ``table`` has in the database."""
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}


@pytest.fixture
def engine_at_0004(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at revision 0004 holding one OWNER."""
    with database_at(fresh_database.url, "0004") as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up_keeps_every_member(engine_at_0004: sa.Engine) -> None:
    """0005 adds the table and two nullable columns (existing rows get NULL: their rank alone); downgrade
    removes exactly those while no custom role is in use; upgrading again works and custom roles with it."""
    tables_before = set(sa.inspect(engine_at_0004).get_table_names())

    assert tenantkit.upgrade(engine_at_0004, "0005").applied == ("0005",)

    assert set(sa.inspect(engine_at_0004).get_table_names()) == tables_before | {"custom_roles"}
    assert "custom_role" in columns(engine_at_0004, "team_members")
    assert "custom_role" in columns(engine_at_0004, "invitations")
    with engine_at_0004.connect() as connection:
        assert connection.execute(sa.select(team_members.c.custom_role)).scalars().all() == [None]

    assert tenantkit.downgrade(engine_at_0004, "0004").applied == ("0005",)
    assert set(sa.inspect(engine_at_0004).get_table_names()) == tables_before
    assert "custom_role" not in columns(engine_at_0004, "team_members")
    assert "custom_role" not in columns(engine_at_0004, "invitations")

    tenantkit.upgrade(engine_at_0004)  # the kit works on the newest schema
    kit = TenantKit()
    with kit.transaction(engine_at_0004) as session:
        kit.roles.create(session, "org_1", "billing", name="Billing", rank=Role.MEMBER, actor="alice")
        kit.members.add(session, "org_1", "bob", "billing", actor="alice")
    with engine_at_0004.connect() as connection:
        assert connection.execute(
            sa.select(team_members.c.user_id, team_members.c.role, team_members.c.custom_role).where(
                team_members.c.user_id == "bob"
            )
        ).one() == ("bob", Role.MEMBER, "billing")


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_downgrade_is_refused_while_custom_roles_are_in_use(engine_at_0004: sa.Engine) -> None:
    """A stored role, a member holding a (deployment-wide) role, or an invitation offering one each make the
    downgrade raise ``CustomRolesInUseError`` with the counts, leaving the schema and rows at 0005."""
    tenantkit.upgrade(engine_at_0004)  # the kit works on the newest schema; each refusal is tried from 0005
    kit = TenantKit(permissions=Permissions(roles=[NURSE]))
    with kit.transaction(engine_at_0004) as session:
        kit.members.add(session, "org_1", "bob", "nurse", actor="alice")
    tenantkit.downgrade(engine_at_0004, "0005")

    with pytest.raises(CustomRolesInUseError) as refused:
        tenantkit.downgrade(engine_at_0004, "0004")

    assert (refused.value.roles, refused.value.members, refused.value.invitations) == (0, 1, 0)
    assert refused.value.code == "custom_roles_in_use"
    assert tenantkit.current_revision(engine_at_0004) == "0005"
    assert "custom_role" in columns(engine_at_0004, "team_members")

    tenantkit.upgrade(engine_at_0004)
    with kit.transaction(engine_at_0004) as session:
        kit.members.change_role(session, "org_1", "bob", Role.MEMBER, actor="alice")
        kit.roles.create(session, "org_1", "billing", name="Billing", rank="MEMBER", actor="alice")
    tenantkit.downgrade(engine_at_0004, "0005")
    with pytest.raises(CustomRolesInUseError) as refused:
        tenantkit.downgrade(engine_at_0004, "base")
    assert (refused.value.roles, refused.value.members) == (1, 0)
    assert tenantkit.current_revision(engine_at_0004) == "0005"

    tenantkit.upgrade(engine_at_0004)
    with kit.transaction(engine_at_0004) as session:
        kit.roles.delete(session, "org_1", "billing", actor="alice")
    assert tenantkit.downgrade(engine_at_0004, "0004").applied[-1] == "0005"


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_rewrites_no_table(dialect: str) -> None:
    """The SQL of 0004 -> 0005 creates ``custom_roles`` and adds two nullable columns without a default: no
    UPDATE, no type change, no index on a table in use, nothing that rewrites or long-locks a live table."""
    ddl = upgrade_ddl(dialect, "0005")
    allowed = re.compile(
        r"CREATE TABLE custom_roles |CREATE UNIQUE INDEX custom_roles_organization_key_idx ON custom_roles "
        r"|ALTER TABLE (team_members|invitations) ADD (COLUMN )?custom_role (TEXT|VARCHAR\(255\)[^,]*)$"
    )
    for statement in ddl:
        assert allowed.match(statement), statement
    assert sum("ADD" in statement for statement in ddl) == 2
    assert "DEFAULT" not in " ".join(s for s in ddl if s.startswith("ALTER"))


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_an_adopted_origin_database_gains_custom_roles(fresh_database: ThrowawayDatabase) -> None:
    """A database another tool built from the origin SQL is adopted and upgraded through 0005; its members
    keep their ranks (no custom role) and can be given one."""
    engine = sa.create_engine(fresh_database.url)
    try:
        apply_origin(engine)
        result = tenantkit.upgrade(engine)
        assert result.adopted
        assert "0005" in result.applied
        with engine.connect() as connection:
            assert set(connection.execute(sa.select(team_members.c.custom_role)).scalars()) == {None}
            assert connection.execute(sa.select(sa.func.count()).select_from(custom_roles)).scalar_one() == 0
        kit = TenantKit(permissions=Permissions(roles=[NURSE]))
        with engine.connect() as connection:
            organization, owner = connection.execute(
                sa.select(team_members.c.organization_id, team_members.c.user_id).where(
                    team_members.c.role == Role.OWNER
                )
            ).one()
        with kit.transaction(engine) as session:
            kit.members.add(session, organization, "new_nurse", "nurse", actor=owner)
            assert kit.members.effective_permissions(session, organization, "new_nurse") is not None
        with kit.transaction(engine) as session:
            kit.members.add(session, organization, "by_host", "nurse", actor=HOST)
    finally:
        engine.dispose()
