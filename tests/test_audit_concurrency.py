"""Eight writers in one organization at once: every committed change has its row, and the chain holds.

Real sessions in real threads on PostgreSQL and MariaDB, started together by a barrier. Each writer changes
issues a key and then, half of them, revokes it or, the other half, changes its own member's role, in one
transaction, a few times over, retrying a transaction the database rolled back (``ConcurrentUpdateError``).
Role changes queue on the organization's OWNER rows; key changes take no lock of their own, so with the chain
on they meet only at the chain head, which must serialise them. The head does not exist when they start:
the first writers race to create it.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, AuditSettings, Role, TenantKit
from tenantkit.errors import ConcurrentUpdateError
from tenantkit.tables import audit_events

pytestmark = pytest.mark.concurrency

ORG = "org_race"
WRITERS = 8
ROUNDS = 3
ATTEMPTS = 20


def seed(engine: sa.Engine) -> None:
    """An OWNER and one member per writer, written with the audit log off (no row, no chain head)."""
    quiet = TenantKit(audit=AuditSettings(enabled=False))
    with quiet.transaction(engine) as session:
        quiet.members.add(session, ORG, "owner", Role.OWNER, actor=HOST)
        for writer in range(WRITERS):
            quiet.members.add(session, ORG, f"member_{writer}", actor=HOST)


def write_concurrently(engine: sa.Engine, kit: TenantKit) -> int:
    """Run the writers; return how many transactions committed (each records two events)."""
    barrier = threading.Barrier(WRITERS)
    committed = [0] * WRITERS
    failures: list[BaseException] = []

    def writer(index: int) -> None:
        try:
            barrier.wait()
            for round_ in range(ROUNDS):
                role = Role.ADMIN if round_ % 2 == 0 else Role.MEMBER
                for _attempt in range(ATTEMPTS):
                    try:
                        with Session(engine) as session:
                            issued = kit.api_keys.issue(session, ORG, f"key {index}.{round_}", actor="owner")
                            if index % 2:
                                kit.api_keys.revoke(session, ORG, issued.id, actor="owner")
                            else:
                                kit.members.change_role(session, ORG, f"member_{index}", role, actor="owner")
                            session.commit()
                        committed[index] += 1
                        break
                    except ConcurrentUpdateError:
                        continue  # the database rolled the transaction back: retry it whole
        except BaseException as error:  # reported by the test, never swallowed
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return sum(committed)


@pytest.mark.parametrize("chain", [False, True], ids=["plain", "chained"])
def test_every_committed_change_has_its_row(server_engine: sa.Engine, chain: bool) -> None:
    """As many rows as committed changes; chained, positions 1..n without a gap, and verify passes."""
    seed(server_engine)
    kit = TenantKit(audit=AuditSettings(chain=chain))
    committed = write_concurrently(server_engine, kit)
    assert committed == WRITERS * ROUNDS
    with server_engine.connect() as connection:
        rows = connection.execute(
            sa.select(audit_events.c.event_type, audit_events.c.chain_seq).where(
                audit_events.c.organization_id == ORG
            )
        ).all()
    assert len(rows) == 2 * committed
    assert sum(row.event_type == "api_key.issued" for row in rows) == committed
    with Session(server_engine) as session:
        report = kit.audit.verify(session)
    if chain:
        assert sorted(row.chain_seq for row in rows) == list(range(1, 2 * committed + 1))
        assert report.ok, report.broken
        assert [(head.organization_id, head.sequence) for head in report.heads] == [(ORG, 2 * committed)]
    else:
        assert {row.chain_seq for row in rows} == {None}
        assert report.heads == []
