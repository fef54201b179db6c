"""Two writes of one settings version at the same time: exactly one wins, the other is a typed conflict.

Real sessions in threads on PostgreSQL and MariaDB, started together by a barrier after each has read the
version it writes against (as two browser tabs would).
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, Role, TenantKit
from tenantkit.errors import SettingsVersionConflictError
from tenantkit.organizations import SettingsSnapshot
from tenantkit.tables import organization_settings

ORG = "org_race"
REPEATS = 5


def race_writes(engine: sa.Engine, kit: TenantKit, values: list[str]) -> list[object]:
    """Each value written in its own thread and session against the version read before the barrier."""
    barrier = threading.Barrier(len(values))
    results: list[object] = [None] * len(values)

    def worker(index: int, timezone: str) -> None:
        try:
            with Session(engine) as session:
                read = kit.organizations.get_settings(session, ORG, actor=HOST)
                barrier.wait()
                results[index] = kit.organizations.update_settings(
                    session,
                    ORG,
                    {"require_sso": True, "invitation_max_ttl": timezone},
                    expected_version=read.version,
                    actor=HOST,
                )
                session.commit()
        except Exception as error:  # the outcome under test, checked by the caller
            results[index] = error

    threads = [threading.Thread(target=worker, args=(i, value)) for i, value in enumerate(values)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("first_write", [True, False], ids=["insert", "update"])
def test_two_stale_writes_one_wins_one_conflicts(server_engine: sa.Engine, first_write: bool) -> None:
    """Whether the organization has stored settings yet (INSERT) or not (UPDATE), one write commits and the
    other raises ``SettingsVersionConflictError``; the stored version moved by exactly one."""
    kit = TenantKit()
    for attempt in range(REPEATS):
        with kit.transaction(server_engine) as session:
            session.execute(organization_settings.delete())
            if attempt == 0:
                kit.members.add(session, ORG, "olivia", Role.OWNER, actor=HOST)
            if not first_write:
                kit.organizations.update_settings(
                    session, ORG, {"require_sso": True}, expected_version=0, actor=HOST
                )
        before = 0 if first_write else 1

        results = race_writes(server_engine, kit, ["1d", "2d"])

        conflicts = [result for result in results if isinstance(result, SettingsVersionConflictError)]
        winners = [result for result in results if isinstance(result, SettingsSnapshot)]
        assert (len(winners), len(conflicts)) == (1, 1), results
        assert conflicts[0].expected_version == before
        with server_engine.connect() as connection:
            row = connection.execute(sa.select(organization_settings)).one()
        assert row.version == before + 1
        assert (
            row.document["invitation_max_ttl"]
            == winners[0].document.model_dump(mode="json")["invitation_max_ttl"]
        )
