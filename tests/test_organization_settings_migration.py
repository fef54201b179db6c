"""Revision 0006 (organization settings): one new table, up, down and up again beside existing rows.

The revision before 0006 is read from the script directory rather than written here, so these tests hold
whichever revision 0006 follows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, Role, TenantKit
from tenantkit.tables import organization_settings, team_members
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, revision_before, upgrade_ddl

DIALECTS = ["sqlite", "postgresql", "mariadb"]
CREATES_NEW = re.compile(r"CREATE TABLE organization_settings ")


@pytest.fixture
def engine_before(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at the revision before 0006, holding one member."""
    with database_at(fresh_database.url, revision_before("0006")) as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up_keeps_the_other_tables_and_stores_settings(engine_before: sa.Engine) -> None:
    """0006 adds ``organization_settings`` alone; downgrade drops it alone; upgrading again works."""
    tables = set(sa.inspect(engine_before).get_table_names())
    assert tenantkit.upgrade(engine_before, "0006").applied == ("0006",)
    assert set(sa.inspect(engine_before).get_table_names()) == tables | {"organization_settings"}
    tenantkit.upgrade(engine_before)
    kit = TenantKit()
    with kit.transaction(engine_before) as session:
        kit.organizations.update_settings(
            session, "org_1", {"require_sso": True}, expected_version=0, actor="alice"
        )

    assert tenantkit.downgrade(engine_before, revision_before("0006")).applied[-1] == "0006"
    assert "organization_settings" not in sa.inspect(engine_before).get_table_names()
    with engine_before.connect() as connection:
        assert connection.execute(sa.select(team_members.c.user_id)).scalars().all() == ["alice"]

    tenantkit.upgrade(engine_before)
    assert tenantkit.is_up_to_date(engine_before)
    with kit.transaction(engine_before) as session:
        assert kit.organizations.get_settings(session, "org_1", actor=HOST).version == 0
        kit.members.add(session, "org_1", "bob", Role.ADMIN, actor=HOST)
    with engine_before.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(organization_settings)).scalar() == 0


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_only_creates(dialect: str) -> None:
    """The SQL of 0006 creates one table and touches nothing that exists: safe on a live database."""
    for statement in upgrade_ddl(dialect, "0006"):
        assert CREATES_NEW.match(statement), statement
