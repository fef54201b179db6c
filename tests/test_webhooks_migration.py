"""Revision 0009 (webhooks): new tables only, up, down and up again beside existing rows."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit.tables import team_members
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, revision_before, upgrade_ddl

NEW_TABLES = {"webhook_endpoints", "webhook_messages", "webhook_deliveries"}
CREATES_NEW = re.compile(
    r"CREATE (TABLE|(UNIQUE )?INDEX \w+ ON) (webhook_endpoints|webhook_messages|webhook_deliveries) "
)
BEFORE = revision_before("0009")


@pytest.fixture
def engine_before(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at the revision before 0009, holding one member."""
    with database_at(fresh_database.url, BEFORE) as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_up_down_up_keeps_the_other_tables(engine_before: sa.Engine) -> None:
    """0009 adds three tables (existing rows untouched); downgrade drops them alone; upgrade again works."""
    before = set(sa.inspect(engine_before).get_table_names())
    assert tenantkit.upgrade(engine_before, "0009").applied == ("0009",)
    assert set(sa.inspect(engine_before).get_table_names()) == before | NEW_TABLES

    assert tenantkit.downgrade(engine_before, BEFORE).applied == ("0009",)
    assert set(sa.inspect(engine_before).get_table_names()) == before
    with engine_before.connect() as connection:
        assert connection.execute(sa.select(team_members.c.user_id)).scalars().all() == ["alice"]

    tenantkit.upgrade(engine_before)
    assert tenantkit.is_up_to_date(engine_before)


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_only_creates(dialect: str) -> None:
    """The SQL of 0009 creates three tables and their indexes and alters nothing in use."""
    for statement in upgrade_ddl(dialect, "0009"):
        assert CREATES_NEW.match(statement), statement
