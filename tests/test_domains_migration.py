"""Revision 0011 (verified domains and SSO connections): two new tables, up, down and up again."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import TenantKit
from tenantkit.tables import team_members
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, revision_before, upgrade_ddl

DIALECTS = ["sqlite", "postgresql", "mariadb"]
CREATES_NEW = re.compile(r"CREATE (UNIQUE )?(TABLE|INDEX \w+ ON) (organization_domains|sso_connections) ")
BEFORE = revision_before("0011")
"""The revision 0011 follows, read from the script directory."""


@pytest.fixture
def engine_before(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at the revision before 0011, holding one member."""
    with database_at(fresh_database.url, BEFORE) as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up_keeps_the_other_tables(engine_before: sa.Engine) -> None:
    """0011 adds the two tables (existing rows untouched); downgrade drops them alone; upgrade again works."""
    before = set(sa.inspect(engine_before).get_table_names())
    assert tenantkit.upgrade(engine_before, "0011").applied == ("0011",)
    assert set(sa.inspect(engine_before).get_table_names()) == before | {
        "organization_domains",
        "sso_connections",
    }
    kit = TenantKit()
    with kit.transaction(engine_before) as session:
        kit.domains.add(session, "org_1", "example.com", actor="alice")
    assert tenantkit.downgrade(engine_before, BEFORE).applied == ("0011",)
    assert set(sa.inspect(engine_before).get_table_names()) == before
    with engine_before.connect() as connection:
        assert connection.execute(sa.select(team_members.c.user_id)).scalars().all() == ["alice"]
    tenantkit.upgrade(engine_before, "0011")
    with kit.transaction(engine_before) as session:
        assert kit.domains.list_domains(session, "org_1", actor="alice") == []


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_only_creates(dialect: str) -> None:
    """The SQL of 0011 creates two tables and their indexes and touches nothing that exists: no ALTER, DROP,
    UPDATE or LOCK of a table in use, so it is safe on a live database."""
    for statement in upgrade_ddl(dialect, "0011"):
        assert CREATES_NEW.match(statement), statement
