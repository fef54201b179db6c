"""Revision 0007 (requirements, attributes, suspension, departments): up, down and up beside existing rows.

Its SQL only adds nullable columns and creates tables: no rewrite, no index on a table in use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, Role, TenantKit
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, revision_before, upgrade_ddl

DIALECTS = ["sqlite", "postgresql", "mariadb"]
NEW_TABLES = {"departments", "department_members"}
# Whatever revision 0007 follows once the branches are chained (0004 on its own branch).
BEFORE = revision_before("0007")
MEMBER_COLUMNS = {"attributes", "credential_expires_at", "suspended_at", "suspended_by", "suspension_reason"}


def columns(engine: sa.Engine, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}


@pytest.fixture
def engine_before(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at the revision before 0007, holding one member."""
    with database_at(fresh_database.url, BEFORE) as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up_keeps_members_and_writes_the_new_state(engine_before: sa.Engine) -> None:
    """0007 adds the columns and tables (the member stays, unsuspended and without attributes); the new
    features write; downgrade removes exactly what it added; upgrading again works."""
    tables_before = set(sa.inspect(engine_before).get_table_names())
    members_before = columns(engine_before, "team_members")
    assert "0007" in tenantkit.upgrade(engine_before).applied  # to the newest: the kit works there
    assert set(sa.inspect(engine_before).get_table_names()) - tables_before >= NEW_TABLES
    assert columns(engine_before, "team_members") - members_before >= MEMBER_COLUMNS
    assert "requirements" in columns(engine_before, "invitations")
    kit = TenantKit()
    with kit.transaction(engine_before) as session:
        assert not kit.members.get(session, "org_1", "alice", actor=HOST).suspended
        kit.members.add(session, "org_1", "bob", actor="alice")
        kit.members.suspend(session, "org_1", "bob", actor="alice")
        department = kit.departments.create(session, "org_1", "Cardiology", actor="alice")
        kit.departments.add_member(session, "org_1", department.id, "bob", actor="alice")

    assert tenantkit.downgrade(engine_before, BEFORE).applied[-1] == "0007"
    assert set(sa.inspect(engine_before).get_table_names()) == tables_before
    assert columns(engine_before, "team_members") == members_before
    assert "requirements" not in columns(engine_before, "invitations")
    with engine_before.connect() as connection:
        users = (
            connection.execute(sa.text("SELECT user_id FROM team_members ORDER BY user_id")).scalars().all()
        )
    assert users == ["alice", "bob"]

    tenantkit.upgrade(engine_before)
    assert tenantkit.is_up_to_date(engine_before)
    with kit.transaction(engine_before) as session:
        assert kit.members.get_role(session, "org_1", "bob") is Role.MEMBER
        kit.members.change_role(session, "org_1", "bob", Role.ADMIN, actor=HOST)


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_adds_nullable_columns_and_new_tables_only(dialect: str) -> None:
    """The SQL of 0007 is ``ADD COLUMN`` (nullable, no default: no table rewrite on PostgreSQL) on the two
    existing tables, and ``CREATE TABLE``/``CREATE INDEX`` on the two new ones; nothing else."""
    ddl = upgrade_ddl(dialect, "0007")
    allowed = re.compile(
        r"ALTER TABLE (team_members|invitations) ADD( COLUMN)? \w+ [\w() ]+( NULL)?$"
        r"|CREATE (TABLE|(UNIQUE )?INDEX \w+ ON) (departments|department_members)\b"
    )
    for statement in ddl:
        assert allowed.match(statement), statement
        assert "DEFAULT" not in statement.upper() or statement.startswith("CREATE TABLE"), statement
    assert sum(statement.startswith("ALTER TABLE") for statement in ddl) == 6
