"""Revision 0010 (API key subjects, credits, limits): nullable columns only, up, down and up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, Role, TenantKit
from tenantkit.api_keys import ApiKeyLimits, ApiKeySubject
from tenantkit.tables import api_keys
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at, revision_before, upgrade_ddl

DIALECTS = ["sqlite", "postgresql", "mariadb"]
NEW_COLUMNS = {
    "subject_type",
    "subject_id",
    "credits_remaining",
    "refill_amount",
    "refill_period",
    "credits_refilled_at",
    "constraints",
}

BEFORE = revision_before("0010")
"""The revision 0010 follows, read from the script directory."""


def columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns("api_keys")}


def indexes(engine: sa.Engine) -> set[str]:
    return {str(index["name"]) for index in sa.inspect(engine).get_indexes("api_keys")}


@pytest.fixture
def engine_before(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at the revision before 0010, holding one member."""
    with database_at(fresh_database.url, BEFORE) as engine:
        yield engine


@pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
def test_up_down_up_keeps_old_keys_verifying(engine_before: sa.Engine) -> None:
    """0010 adds seven nullable columns and no index (old keys verify unchanged, new ones use them);
    downgrade drops exactly those; upgrading again works."""
    before, indexed = columns(engine_before), indexes(engine_before)
    tenantkit.upgrade(engine_before, "0010")
    assert columns(engine_before) == before | NEW_COLUMNS
    assert indexes(engine_before) == indexed
    kit = TenantKit()
    with kit.transaction(engine_before) as session:
        plain = kit.api_keys.issue(session, "org_1", "plain", actor=HOST)
        metered = kit.api_keys.issue(
            session,
            "org_1",
            "pump",
            actor=HOST,
            subject=ApiKeySubject.device("UDI-1"),
            limits=ApiKeyLimits(credits=2, allowed_cidrs=["10.0.0.0/8"]),
        )
    with engine_before.connect() as connection:
        assert kit.api_keys.verify(connection, plain.reveal()).valid
        assert kit.api_keys.verify(connection, metered.reveal()).reason == "address_not_allowed"
        stored = connection.execute(
            sa.select(api_keys.c.credits_remaining, api_keys.c.constraints).where(
                api_keys.c.id.in_([plain.id, metered.id])
            )
        ).all()
        # The plain key's constraints are SQL NULL (the verification reads nothing more of it).
        assert sorted(stored, key=lambda row: row[0] is not None) == [
            (None, None),
            (
                2,
                {
                    "subject_type": "device",
                    "subject_id": "UDI-1",
                    "credits": True,
                    "allowed_cidrs": ["10.0.0.0/8"],
                },
            ),
        ]
        assert (
            connection.execute(
                sa.select(sa.func.count()).where(api_keys.c.id == plain.id, api_keys.c.constraints.is_(None))
            ).scalar_one()
            == 1
        )

    tenantkit.downgrade(engine_before, BEFORE)
    assert columns(engine_before) == before

    tenantkit.upgrade(engine_before, "0010")
    with kit.transaction(engine_before) as session:
        kit.members.change_role(session, "org_1", "alice", Role.OWNER, actor=HOST)
        kit.api_keys.issue(session, "org_1", "again", actor=HOST, limits={"credits": 1})


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "mariadb"])
def test_the_upgrade_adds_nullable_columns_only(dialect: str) -> None:
    """The SQL of 0010 is ADD COLUMN without NOT NULL or DEFAULT (no table rewrite on PostgreSQL) and
    nothing else: no CREATE INDEX (which holds writes to the table while it builds), no UPDATE, DROP or
    ALTER of an existing column."""
    ddl = upgrade_ddl(dialect, "0010")
    adds = [s for s in ddl if s.startswith("ALTER TABLE api_keys ADD")]
    assert len(adds) == len(NEW_COLUMNS)
    assert all("NOT NULL" not in s and "DEFAULT" not in s for s in adds)
    assert [s for s in ddl if s not in adds] == []
    assert all("INDEX" not in s.upper() for s in ddl)
