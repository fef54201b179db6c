"""Revision 0008 (the polling bus's change log): one new table, up, down and up again beside existing rows."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, Role, TenantKit
from tenantkit.bus import PollingBus
from tenantkit.tables import cache_invalidations, team_members
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, revision_before, upgrade_ddl

DIALECTS = ["sqlite", "postgresql", "mariadb"]
CREATES_NEW = re.compile(r"CREATE (TABLE|INDEX \w+ ON) cache_invalidations ")
BEFORE = revision_before("0008")
"""The revision 0008 follows, read from the script directory."""


@pytest.fixture
def engine_before(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at the revision before 0008, holding one member."""
    with database_at(fresh_database.url, BEFORE) as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up_keeps_the_other_tables_and_logs_changes(engine_before: sa.Engine) -> None:
    """0008 adds the change log (existing rows untouched); downgrade drops it alone; upgrade again works."""
    before = set(sa.inspect(engine_before).get_table_names())
    assert tenantkit.upgrade(engine_before, "0008").applied == ("0008",)
    assert set(sa.inspect(engine_before).get_table_names()) == before | {"cache_invalidations"}
    kit = TenantKit()
    PollingBus(kit.events, engine_before)
    with kit.transaction(engine_before) as session:
        kit.members.add(session, "org_1", "bob", actor="alice")
    with engine_before.connect() as connection:
        assert connection.execute(sa.select(cache_invalidations.c.subject_id)).scalars().all() == ["bob"]

    assert tenantkit.downgrade(engine_before, BEFORE).applied == ("0008",)
    assert set(sa.inspect(engine_before).get_table_names()) == before
    with engine_before.connect() as connection:
        assert sorted(connection.execute(sa.select(team_members.c.user_id)).scalars()) == ["alice", "bob"]

    tenantkit.upgrade(engine_before, "0008")
    with kit.transaction(engine_before) as session:
        kit.members.change_role(session, "org_1", "bob", Role.ADMIN, actor=HOST)
    with engine_before.connect() as connection:
        # A fresh table: ids start again, and the row is there.
        assert connection.execute(sa.select(cache_invalidations.c.subject_id)).scalars().all() == ["bob"]


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_only_creates(dialect: str) -> None:
    """The SQL of 0008 creates one table and its index and touches nothing that exists: no ALTER, DROP,
    UPDATE or LOCK of a table in use, so it is safe on a live database."""
    for statement in upgrade_ddl(dialect, "0008"):
        assert CREATES_NEW.match(statement), statement
