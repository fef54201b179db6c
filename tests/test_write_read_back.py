"""Security-relevant writes read their row back: a trigger that undoes one is an error, never a success.

Each test installs, on the migrated test database, a trigger that quietly undoes one change (a ``BEFORE``
trigger putting the old value back on PostgreSQL and MariaDB, an ``AFTER`` trigger writing it back on SQLite,
which cannot assign to ``NEW``; removals are skipped by a ``BEFORE DELETE`` trigger). The call must raise
:class:`WriteNotAppliedError`, and the transaction it ran in, rolled back, leaves the row as it was and
delivers no event.

MariaDB cannot undo a ``DELETE`` silently: a trigger may not write the table its statement is changing
(error 1442) and ``SIGNAL`` fails the statement loudly. The removal tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import tenantkit
from tenantkit import HOST, ApiKeyService, InvitationService, MembershipService, Role
from tenantkit._writes import NOT_NULL, confirm_written
from tenantkit.errors import WriteNotAppliedError
from tenantkit.tables import api_keys, invitations, team_members
from tenantkit.testing import EventRecorder, FrozenClock

ORG = "org_1"
SIGNING_KEY = "an-invitation-signing-key-of-some-length"

Install = Callable[[str, str], None]


class Triggers:
    """Installs undoing triggers on one database and drops them all afterwards (the database is shared)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._drops: list[str] = []
        self._count = 0

    def _name(self) -> str:
        self._count += 1
        return f"tenantkit_test_undo_{self._count}"

    def _run(self, *statements: str) -> None:
        with self.engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)

    def undo_update(self, table: str, column: str) -> None:
        """Make every UPDATE of ``table`` keep ``column``'s old value."""
        name = self._name()
        if self.dialect == "postgresql":
            self._run(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN NEW.{column} := OLD.{column}; RETURN NEW; END $$",
                f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
            )
            self._drops += [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"]
        elif self.dialect == "sqlite":
            self._run(
                f"CREATE TRIGGER {name} AFTER UPDATE OF {column} ON {table} "
                f"BEGIN UPDATE {table} SET {column} = OLD.{column} WHERE id = OLD.id; END"
            )
            self._drops.append(f"DROP TRIGGER {name}")
        else:
            self._run(
                f"CREATE TRIGGER {name} BEFORE UPDATE ON {table} FOR EACH ROW SET NEW.{column} = OLD.{column}"
            )
            self._drops.append(f"DROP TRIGGER {name}")

    def skip_delete(self, table: str) -> None:
        """Make every DELETE from ``table`` silently keep the row (SQLite and PostgreSQL)."""
        name = self._name()
        if self.dialect == "postgresql":
            self._run(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
                f"CREATE TRIGGER {name} BEFORE DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
            )
            self._drops += [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"]
        elif self.dialect == "sqlite":
            self._run(f"CREATE TRIGGER {name} BEFORE DELETE ON {table} BEGIN SELECT RAISE(IGNORE); END")
            self._drops.append(f"DROP TRIGGER {name}")
        else:
            raise AssertionError("MariaDB cannot skip a DELETE silently")

    def drop_all(self) -> None:
        self._run(*self._drops)
        self._drops.clear()


@pytest.fixture
def triggers(engine: sa.Engine) -> Iterator[Triggers]:
    installed = Triggers(engine)
    try:
        yield installed
    finally:
        installed.drop_all()


# MariaDB triggers cannot undo a DELETE silently (see the module docstring).
on_deleting_dialects = pytest.mark.parametrize("engine", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def membership(clock: FrozenClock) -> MembershipService:
    return MembershipService(clock=clock)


@pytest.fixture
def keys(membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
    return ApiKeyService(membership=membership, clock=clock)


@pytest.fixture
def invites(membership: MembershipService, clock: FrozenClock) -> InvitationService:
    return InvitationService(membership=membership, secret_keys=[SIGNING_KEY], clock=clock)


@pytest.fixture
def recorder(membership: MembershipService) -> EventRecorder:
    recorder = EventRecorder()
    membership.events.subscribe(recorder)
    return recorder


@pytest.fixture
def organization(engine: sa.Engine, membership: MembershipService, recorder: EventRecorder) -> None:
    """alice and olga OWNER, adam ADMIN, mia MEMBER; the events of this setup are forgotten."""
    with tenantkit.transaction(engine) as session:
        for user, role in (
            ("alice", Role.OWNER),
            ("olga", Role.OWNER),
            ("adam", Role.ADMIN),
            ("mia", Role.MEMBER),
        ):
            membership.add(session, ORG, user, role, actor=HOST)
    recorder.clear()


def rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    """Every row of ``table``, as the database holds it after the test's transaction ended."""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(table).order_by(table.c.id))]


def refused(engine: sa.Engine, change: Callable[[Any], object]) -> WriteNotAppliedError:
    """Run ``change`` in a transaction, expect the typed error and return it; the transaction rolled back."""
    with pytest.raises(WriteNotAppliedError) as info, tenantkit.transaction(engine) as session:
        change(session)
    assert info.value.code == "write_not_applied"
    return info.value


@pytest.mark.usefixtures("organization")
class TestApiKeys:
    def issue(self, engine: sa.Engine, keys: ApiKeyService, recorder: EventRecorder) -> str:
        with tenantkit.transaction(engine) as session:
            key_id = keys.issue(session, ORG, "CI", actor="alice").id
        recorder.clear()
        return key_id

    def test_an_undone_revocation_is_an_error_and_the_key_stays_as_it_was(
        self, engine: sa.Engine, keys: ApiKeyService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps ``revoked_at`` empty makes revoke raise instead of reporting a revoked key."""
        key_id = self.issue(engine, keys, recorder)
        before = rows(engine, api_keys)
        triggers.undo_update("api_keys", "revoked_at")

        error = refused(engine, lambda session: keys.revoke(session, ORG, key_id, actor="alice"))

        assert error.table == "api_keys"
        assert error.columns == ("revoked_at",)
        assert error.to_dict()["row"] == {"organization_id": ORG, "id": key_id}
        assert rows(engine, api_keys) == before
        assert recorder.events == []

    def test_revoking_an_unknown_key_is_still_not_found(
        self, engine: sa.Engine, keys: ApiKeyService, triggers: Triggers
    ) -> None:
        """The read-back does not turn a key that never existed into a write error."""
        triggers.undo_update("api_keys", "revoked_at")
        with pytest.raises(tenantkit.errors.ApiKeyNotFoundError), tenantkit.transaction(engine) as session:
            keys.revoke(session, ORG, "no-such-key", actor="alice")

    def test_an_undone_rotation_is_an_error_and_no_new_key_is_written(
        self, engine: sa.Engine, keys: ApiKeyService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps ``replaced_at`` empty makes rotate raise; neither key row changes."""
        key_id = self.issue(engine, keys, recorder)
        before = rows(engine, api_keys)
        triggers.undo_update("api_keys", "replaced_at")

        error = refused(engine, lambda session: keys.rotate(session, ORG, key_id, actor="alice"))

        assert error.columns == ("replaced_at",)
        assert rows(engine, api_keys) == before
        assert recorder.events == []

    @on_deleting_dialects
    def test_a_skipped_deletion_is_an_error(
        self, engine: sa.Engine, keys: ApiKeyService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps the row makes delete raise, not report "not found" or success."""
        key_id = self.issue(engine, keys, recorder)
        before = rows(engine, api_keys)
        triggers.skip_delete("api_keys")

        error = refused(engine, lambda session: keys.delete(session, ORG, key_id, actor="alice"))

        assert error.columns == ()
        assert "still there" in error.message
        assert rows(engine, api_keys) == before
        assert recorder.events == []


@pytest.mark.usefixtures("organization")
class TestMembership:
    def test_an_undone_role_change_is_an_error(
        self, engine: sa.Engine, membership: MembershipService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps the old role makes change_role raise; the member keeps the role."""
        before = rows(engine, team_members)
        triggers.undo_update("team_members", "role")

        error = refused(
            engine, lambda session: membership.change_role(session, ORG, "mia", Role.ADMIN, actor="alice")
        )

        assert error.columns == ("role",)
        assert error.row == {"organization_id": ORG, "user_id": "mia"}
        assert rows(engine, team_members) == before
        assert recorder.events == []

    def test_an_undone_ownership_transfer_is_an_error_and_neither_role_changes(
        self, engine: sa.Engine, membership: MembershipService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps the old roles makes transfer_ownership raise; both members keep theirs."""
        before = rows(engine, team_members)
        triggers.undo_update("team_members", "role")

        refused(engine, lambda session: membership.transfer_ownership(session, ORG, "adam", actor="alice"))

        assert rows(engine, team_members) == before
        assert recorder.events == []

    @on_deleting_dialects
    def test_a_skipped_removal_is_an_error(
        self,
        engine: sa.Engine,
        membership: MembershipService,
        recorder: EventRecorder,
        triggers: Triggers,
    ) -> None:
        """A trigger that keeps the membership makes remove raise instead of reporting the member gone."""
        before = rows(engine, team_members)
        triggers.skip_delete("team_members")

        error = refused(engine, lambda session: membership.remove(session, ORG, "mia", actor="alice"))

        assert error.table == "team_members"
        assert rows(engine, team_members) == before
        assert recorder.events == []

    @on_deleting_dialects
    def test_a_skipped_departure_is_an_error(
        self,
        engine: sa.Engine,
        membership: MembershipService,
        recorder: EventRecorder,
        triggers: Triggers,
    ) -> None:
        """Leaving goes through the same checked removal."""
        triggers.skip_delete("team_members")
        refused(engine, lambda session: membership.leave(session, ORG, actor="mia"))
        assert recorder.events == []


@pytest.mark.usefixtures("organization")
class TestInvitations:
    def invite(
        self, engine: sa.Engine, invites: InvitationService, recorder: EventRecorder, **link: Any
    ) -> Any:
        with tenantkit.transaction(engine) as session:
            if link:
                created = invites.create_link_invitation(session, ORG, ["example.com"], actor="alice", **link)
            else:
                created = invites.create_email_invitation(session, ORG, "new@example.com", actor="alice")
        recorder.clear()
        return created

    def test_an_undone_invitation_revocation_is_an_error(
        self, engine: sa.Engine, invites: InvitationService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps the invitation pending makes revoke raise; the invitation stays as it was."""
        invitation_id = self.invite(engine, invites, recorder).invitation.id
        before = rows(engine, invitations)
        triggers.undo_update("invitations", "status")

        error = refused(engine, lambda session: invites.revoke(session, ORG, invitation_id, actor="alice"))

        assert error.columns == ("status",)
        assert rows(engine, invitations) == before
        assert recorder.events == []

    def test_an_undone_resend_is_an_error_and_never_shows_the_digest(
        self, engine: sa.Engine, invites: InvitationService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps the old token digest makes resend raise, naming the column, not its value."""
        invitation_id = self.invite(engine, invites, recorder).invitation.id
        before = rows(engine, invitations)
        triggers.undo_update("invitations", "token")

        error = refused(engine, lambda session: invites.resend(session, ORG, invitation_id, actor="alice"))

        assert error.columns == ("token",)
        assert before[0]["token"] not in str(error.to_dict())
        assert rows(engine, invitations) == before
        assert recorder.events == []

    def test_an_uncounted_acceptance_is_an_error_and_nobody_joins(
        self, engine: sa.Engine, invites: InvitationService, recorder: EventRecorder, triggers: Triggers
    ) -> None:
        """A trigger that keeps ``use_count`` makes accept raise: a link cannot admit past ``max_uses``."""
        token = self.invite(engine, invites, recorder, max_uses=1).token.get_secret_value()
        members_before = rows(engine, team_members)
        invitations_before = rows(engine, invitations)
        triggers.undo_update("invitations", "use_count")

        error = refused(
            engine,
            lambda session: invites.accept(
                session, token, user_id="newcomer", email="newcomer@example.com", email_verified=True
            ),
        )

        assert error.columns == ("use_count",)
        assert rows(engine, team_members) == members_before
        assert rows(engine, invitations) == invitations_before
        assert recorder.events == []


def test_writes_without_interference_pass_the_read_back(
    engine: sa.Engine,
    membership: MembershipService,
    keys: ApiKeyService,
    recorder: EventRecorder,
    organization: None,
) -> None:
    """With no trigger, every checked write succeeds and reports what the database holds."""
    with tenantkit.transaction(engine) as session:
        key = keys.issue(session, ORG, "CI", actor="alice")
        assert keys.revoke(session, ORG, key.id, actor="alice").revoked
        assert keys.revoke(session, ORG, key.id, actor="alice").revoked  # again: nothing to change
        membership.change_role(session, ORG, "mia", Role.ADMIN, actor="alice")
        membership.remove(session, ORG, "mia", actor="alice")
    assert [type(event).__name__ for event in recorder.events] == [
        "ApiKeyIssued",
        "ApiKeyRevoked",
        "MemberRoleChanged",
        "MemberRemoved",
    ]


@given(
    role=st.sampled_from(list(Role)),
    expected_role=st.sampled_from(list(Role)),
    expect_created=st.booleans(),
)
def test_the_read_back_raises_exactly_when_a_compared_column_differs(
    sqlite_engine: sa.Engine, role: Role, expected_role: Role, expect_created: bool
) -> None:
    """The read-back returns the row when each compared column holds its value, else names the others."""
    identity = {"organization_id": ORG, "user_id": "pat"}
    with sqlite_engine.connect() as connection, connection.begin() as transaction:
        connection.execute(team_members.insert().values(id="m1", role=role, **identity))
        expected: dict[str, object] = {"role": expected_role}
        if expect_created:
            expected["created_at"] = NOT_NULL
        if role is expected_role:
            row = confirm_written(connection, team_members, identity, expected)
            assert row.role is role
        else:
            with pytest.raises(WriteNotAppliedError) as info:
                confirm_written(connection, team_members, identity, expected)
            assert info.value.columns == ("role",)
        with pytest.raises(WriteNotAppliedError, match="still there"):
            confirm_written(connection, team_members, identity, None)
        assert (
            confirm_written(connection, team_members, {"organization_id": ORG, "user_id": "nobody"}, None)
            is None
        )
        with pytest.raises(tenantkit.errors.MemberNotFoundError):
            confirm_written(
                connection,
                team_members,
                {"organization_id": ORG, "user_id": "nobody"},
                expected,
                missing=tenantkit.errors.MemberNotFoundError(ORG, "nobody"),
            )
        transaction.rollback()
