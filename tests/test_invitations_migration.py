"""Revision 0003 on a database that already holds origin-style invitations, up and down, on every dialect."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, InvitationService, InvitationStatus, MembershipService, Role
from tenantkit.testing import FrozenClock
from tests.databases import ThrowawayDatabase
from tests.revisions import database_at

DIALECTS = ["sqlite", "postgresql", "mariadb"]
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def engine_at_0002(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """A fresh database at revision 0002 with one origin-style invitation (plaintext token)."""
    origin = sa.table(
        "invitations",
        sa.column("id"),
        sa.column("organization_id"),
        sa.column("email"),
        sa.column("role"),
        sa.column("token"),
        sa.column("expires", tenantkit.tables.invitations.c.expires.type),
        sa.column("invited_by"),
        sa.column("sent_via_email"),
    )
    with database_at(fresh_database.url, "0002", owner=False) as engine:
        with engine.begin() as connection:
            connection.execute(
                origin.insert().values(
                    id="old-1",
                    organization_id="org_1",
                    email="bob@example.com",
                    role="MEMBER",
                    token="plaintext-token-from-the-old-system",
                    expires=datetime(2031, 1, 1, tzinfo=timezone.utc),
                    invited_by="alice",
                    sent_via_email=True,
                )
            )
        yield engine


class TestRevision0003:
    @pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
    def test_upgrade_retires_plaintext_rows_and_frees_the_address(self, engine_at_0002: sa.Engine) -> None:
        """Old rows become revoked with their address kept; a new invitation to that address then works."""
        tenantkit.upgrade(engine_at_0002)
        invitations = tenantkit.tables.invitations
        with engine_at_0002.connect() as connection:
            row = connection.execute(sa.select(invitations).where(invitations.c.id == "old-1")).one()
        assert (row.status, row.email, row.invited_email, row.use_count) == (
            "revoked",
            None,
            "bob@example.com",
            0,
        )

        clock = FrozenClock(NOW)
        membership = MembershipService(clock=clock)
        service = InvitationService(membership=membership, secret_keys=["k" * 32], clock=clock)
        with Session(engine_at_0002) as session:
            membership.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
            created = service.create_email_invitation(session, "org_1", "bob@example.com", actor="alice")
            session.commit()
            assert service.get(session, "org_1", "old-1", actor="alice").status is InvitationStatus.REVOKED
            assert created.invitation.status is InvitationStatus.PENDING

    @pytest.mark.parametrize("fresh_database", DIALECTS, indirect=True)
    def test_downgrade_keeps_open_invitations_only(self, engine_at_0002: sa.Engine) -> None:
        """Down to 0002: finished invitations go, open ones stay, and a host inviter is written as 'host'."""
        tenantkit.upgrade(engine_at_0002)
        clock = FrozenClock(NOW)
        service = InvitationService(
            membership=MembershipService(clock=clock), secret_keys=["k" * 32], clock=clock
        )
        with Session(engine_at_0002) as session:
            service.create_email_invitation(session, "org_1", "carol@example.com", Role.ADMIN, actor=HOST)
            session.commit()
        tenantkit.downgrade(engine_at_0002, "0002")
        inspector = sa.inspect(engine_at_0002)
        columns = {column["name"]: column for column in inspector.get_columns("invitations")}
        assert "status" not in columns
        assert columns["invited_by"]["nullable"] is False
        assert "invitation_acceptances" not in inspector.get_table_names()
        with engine_at_0002.connect() as connection:
            rows = connection.execute(sa.text("SELECT email, invited_by FROM invitations")).all()
        assert [tuple(row) for row in rows] == [("carol@example.com", "host")]
        tenantkit.upgrade(engine_at_0002)
        assert tenantkit.is_up_to_date(engine_at_0002)
