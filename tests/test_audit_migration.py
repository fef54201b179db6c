"""Revision 0004 (the audit log): new tables only, up, down and up again beside existing rows."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, Role, TenantKit
from tenantkit.tables import audit_events, team_members
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, upgrade_ddl

DIALECTS = ["sqlite", "postgresql", "mariadb"]
NEW_TABLES = {"audit_events", "audit_chain_heads"}
CREATES_NEW = re.compile(r"CREATE (TABLE|(UNIQUE )?INDEX \w+ ON) (audit_events|audit_chain_heads) ")


@pytest.fixture
def engine_at_0003(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at revision 0003 holding one member."""
    with database_at(fresh_database.url, "0003") as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up_keeps_the_other_tables_and_writes_rows(engine_at_0003: sa.Engine) -> None:
    """0004 adds the two tables (existing rows untouched); downgrade drops them alone; upgrade again works.

    The kit needs the newest schema, so the upgrade goes to the head (through 0004) before writing."""
    before = set(sa.inspect(engine_at_0003).get_table_names())
    assert tenantkit.upgrade(engine_at_0003, "0004").applied == ("0004",)
    assert set(sa.inspect(engine_at_0003).get_table_names()) == before | NEW_TABLES
    tenantkit.upgrade(engine_at_0003)  # the kit works on the newest schema
    kit = TenantKit()
    with kit.transaction(engine_at_0003) as session:
        kit.members.add(session, "org_1", "bob", actor="alice")
    with engine_at_0003.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(audit_events)).scalar_one() == 1

    tenantkit.downgrade(engine_at_0003, "0004")
    assert tenantkit.downgrade(engine_at_0003, "0003").applied == ("0004",)
    assert set(sa.inspect(engine_at_0003).get_table_names()) == before
    with engine_at_0003.connect() as connection:
        assert connection.execute(sa.select(team_members.c.user_id).order_by("user_id")).scalars().all() == [
            "alice",
            "bob",
        ]

    tenantkit.upgrade(engine_at_0003)
    assert tenantkit.is_up_to_date(engine_at_0003)
    with kit.transaction(engine_at_0003) as session:
        kit.members.change_role(session, "org_1", "bob", Role.ADMIN, actor=HOST)


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_only_creates(dialect: str) -> None:
    """The SQL of 0003 -> 0004 creates two tables and their indexes and touches nothing that exists: no
    ALTER, DROP, UPDATE or LOCK of a table in use, so it is safe on a live database."""
    for statement in upgrade_ddl(dialect, "0004"):
        assert CREATES_NEW.match(statement), statement


def test_a_database_behind_0004_is_out_of_date_not_broken(fresh_database: ThrowawayDatabase) -> None:
    """A kit newer than its database answers a change with ``SchemaOutOfDateError``, not a driver error."""
    with database_at(fresh_database.url, "0003", owner=False) as engine:
        kit = TenantKit()
        with pytest.raises(tenantkit.SchemaOutOfDateError), kit.transaction(engine) as session:
            kit.members.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
