"""Concurrent acceptances on PostgreSQL and MariaDB: threads, each with its own Session, released together."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, InvitationService, MembershipService, Role, TenantKitError
from tenantkit.errors import InvitationExhaustedError, InvitationNotPendingError
from tenantkit.tables import invitation_acceptances, invitations, team_members
from tenantkit.testing import FrozenClock

ORG = "org_1"
KEY = "an-invitation-signing-key-of-some-length"
THREADS = 8


@pytest.fixture
def service(clock: FrozenClock) -> InvitationService:
    return InvitationService(membership=MembershipService(clock=clock), secret_keys=[KEY], clock=clock)


def run_together(engine: sa.Engine, work: Callable[[Session, int], object], count: int) -> list[object]:
    """Run ``work`` in ``count`` threads released at once by a barrier; return each result or exception."""
    barrier = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def target(index: int) -> None:
        with Session(engine) as session:
            try:
                session.execute(sa.select(1))
                barrier.wait()
                outcomes[index] = work(session, index)
                session.commit()
            except Exception as error:
                session.rollback()
                outcomes[index] = error

    threads = [threading.Thread(target=target, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def count_rows(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


class TestConcurrentAcceptance:
    def test_single_use_invitation_gives_exactly_one_membership(
        self, server_engine: sa.Engine, service: InvitationService
    ) -> None:
        """N users accepting one email invitation at the same moment produce exactly one membership."""
        with Session(server_engine) as session:
            service.membership.add(session, ORG, "owner", Role.OWNER, actor=HOST)
            created = service.create_email_invitation(session, ORG, "shared@example.com", actor="owner")
            session.commit()
        token = created.token.get_secret_value()

        outcomes = run_together(
            server_engine,
            lambda session, index: service.accept(
                session, token, user_id=f"user{index}", email="shared@example.com", email_verified=True
            ),
            THREADS,
        )

        errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        assert len(errors) == THREADS - 1
        assert all(isinstance(error, InvitationNotPendingError) for error in errors), errors
        assert count_rows(server_engine, team_members) == 2
        assert count_rows(server_engine, invitation_acceptances) == 1
        with server_engine.connect() as connection:
            row = connection.execute(sa.select(invitations.c.status, invitations.c.use_count)).one()
        assert tuple(row) == ("accepted", 1)

    def test_link_with_k_uses_admits_exactly_k(
        self, server_engine: sa.Engine, service: InvitationService
    ) -> None:
        """N > k users accepting a k-use link at once produce exactly k memberships; the rest are refused."""
        k = 3
        with Session(server_engine) as session:
            service.membership.add(session, ORG, "owner", Role.OWNER, actor=HOST)
            created = service.create_link_invitation(session, ORG, ["example.com"], actor="owner", max_uses=k)
            session.commit()
        token = created.token.get_secret_value()

        outcomes = run_together(
            server_engine,
            lambda session, index: service.accept(
                session, token, user_id=f"user{index}", email=f"user{index}@example.com", email_verified=True
            ),
            THREADS,
        )

        errors = [outcome for outcome in outcomes if isinstance(outcome, TenantKitError)]
        unexpected = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, TenantKitError)]
        assert unexpected == []
        assert len(errors) == THREADS - k
        assert all(isinstance(error, InvitationExhaustedError) for error in errors), errors
        assert count_rows(server_engine, team_members) == 1 + k
        assert count_rows(server_engine, invitation_acceptances) == k
        with server_engine.connect() as connection:
            row = connection.execute(sa.select(invitations.c.status, invitations.c.use_count)).one()
        assert tuple(row) == ("exhausted", k)

    def test_one_user_accepting_twice_at_once_joins_once(
        self, server_engine: sa.Engine, service: InvitationService
    ) -> None:
        """The same user racing through one link (double click) becomes a member once, using one use."""
        with Session(server_engine) as session:
            service.membership.add(session, ORG, "owner", Role.OWNER, actor=HOST)
            created = service.create_link_invitation(session, ORG, ["example.com"], actor="owner", max_uses=5)
            session.commit()
        token = created.token.get_secret_value()

        outcomes = run_together(
            server_engine,
            lambda session, index: service.accept(
                session, token, user_id="same", email="same@example.com", email_verified=True
            ),
            4,
        )

        assert not any(isinstance(outcome, Exception) for outcome in outcomes), outcomes
        assert sum(not outcome.already_member for outcome in outcomes) == 1  # type: ignore[attr-defined]
        assert count_rows(server_engine, team_members) == 2
        with server_engine.connect() as connection:
            assert connection.execute(sa.select(invitations.c.use_count)).scalar_one() == 1


class TestConcurrentReinvites:
    def test_simultaneous_invitations_to_one_address_leave_one_open(
        self, server_engine: sa.Engine, service: InvitationService
    ) -> None:
        """N inviters inviting one address at once leave exactly one open invitation, the rest replaced."""
        with Session(server_engine) as session:
            service.membership.add(session, ORG, "owner", Role.OWNER, actor=HOST)
            session.commit()

        outcomes = run_together(
            server_engine,
            lambda session, index: service.create_email_invitation(
                session, ORG, "bob@example.com", actor="owner"
            ),
            4,
        )

        errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        assert all(isinstance(error, TenantKitError) for error in errors), errors
        assert len(errors) < 4
        with server_engine.connect() as connection:
            statuses = sorted(connection.execute(sa.select(invitations.c.status)).scalars())
        assert statuses == ["pending"] + ["replaced"] * (len(statuses) - 1)
        assert len(statuses) == 4 - len(errors)
