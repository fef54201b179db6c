"""Revision 0012 (provider membership sync): one new table, up, down and up again, only creating."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, Role, TenantKit
from tenantkit.sso import ProviderMembershipEvent
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, upgrade_ddl

DIALECTS = ["sqlite", "postgresql", "mariadb"]
CREATES_NEW = re.compile(r"CREATE (TABLE|INDEX \w+ ON) sso_member_sync ")


@pytest.fixture
def engine_before(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at revision 0011."""
    with database_at(fresh_database.url, "0011", owner=False) as engine:
        yield engine


def sync_once(engine: sa.Engine) -> str:
    kit = TenantKit()
    with kit.transaction(engine) as session:
        if kit.members.get_role(session, "org_1", "alice") is None:
            kit.members.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        connection = kit.sso.create_connection(
            session,
            "org_1",
            provider="clerk",
            protocol="oidc",
            provider_connection_id=f"c{len(kit.sso.list_connections(session, 'org_1', actor=HOST))}",
            name="Clerk",
            actor=HOST,
        )
        sync = kit.sso.membership_sync(connection.id, roles={"org:member": "MEMBER"})
        event = ProviderMembershipEvent(
            event_id="e1",
            action="created",
            occurred_at=kit.clock(),
            user_id="dave",
            provider_role="org:member",
        )
        return sync.apply(session, event).outcome


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up(engine_before: sa.Engine) -> None:
    """0012 adds ``sso_member_sync``; downgrade drops it alone; upgrade again works."""
    before = set(sa.inspect(engine_before).get_table_names())
    assert tenantkit.upgrade(engine_before, "0012").applied == ("0012",)
    assert set(sa.inspect(engine_before).get_table_names()) == before | {"sso_member_sync"}
    assert sync_once(engine_before) == "created"
    assert tenantkit.downgrade(engine_before, "0011").applied == ("0012",)
    assert set(sa.inspect(engine_before).get_table_names()) == before
    tenantkit.upgrade(engine_before, "0012")
    assert sync_once(engine_before) == "unchanged"  # dave is a member already; the sync state was dropped


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_only_creates(dialect: str) -> None:
    """The SQL of 0012 creates one table and its index and alters nothing that exists."""
    for statement in upgrade_ddl(dialect, "0012"):
        assert CREATES_NEW.match(statement), statement
