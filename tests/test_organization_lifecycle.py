"""The end of an organization's data, and of one user's: one call each, in one transaction, audited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tenantkit import HOST, InvitationSettings, PermissionDeniedError, Role, TenantKit
from tenantkit.audit import audit_context
from tenantkit.errors import LastOwnerError, OrganizationInUseError
from tenantkit.tables import (
    USER_REFERENCE,
    api_keys,
    audit_events,
    invitation_acceptances,
    invitations,
    metadata,
    organization_settings,
    team_members,
)
from tenantkit.testing import FrozenClock

ORG = "org_gone"
OTHER = "org_stays"
SECRET = "an-invitation-signing-key-of-some-length"


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return TenantKit(invitations=InvitationSettings(secret_keys=[SECRET]), clock=clock)


def populate(kit: TenantKit, engine: sa.Engine, organization_id: str) -> None:
    """Members, keys, invitations (one accepted), settings and audit rows in ``organization_id``."""
    with kit.transaction(engine) as session, audit_context(ip_address="203.0.113.7", user_agent="probe/1"):
        kit.members.add(session, organization_id, "olivia", Role.OWNER, actor=HOST)
        kit.members.add(session, organization_id, "adam", Role.ADMIN, actor="olivia")
        kit.api_keys.issue(session, organization_id, "ci", actor="adam")
        kit.invitations.create_email_invitation(session, organization_id, "eve@example.com", actor="adam")
        link = kit.invitations.create_link_invitation(session, organization_id, ["example.com"], actor="adam")
        kit.invitations.accept(
            session,
            link.token.get_secret_value(),
            user_id="nora",
            email="nora@example.com",
            email_verified=True,
        )
        kit.organizations.update_settings(
            session, organization_id, {"require_sso": True}, expected_version=0, actor="olivia"
        )


def rows_of(engine: sa.Engine, organization_id: str) -> dict[str, int]:
    """Rows per tenantkit table that belong to ``organization_id`` (tables without any left out)."""
    found = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if "organization_id" in table.c:
                count = connection.execute(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.organization_id == organization_id)
                ).scalar_one()
                if count:
                    found[table.name] = count
    return found


class TestDeletingAnOrganization:
    def test_nothing_of_the_organization_is_left_but_the_deletion_itself(
        self, engine: sa.Engine, kit: TenantKit
    ) -> None:
        """With ``audit="purge"``, every table with an ``organization_id`` holds no row of it but the one
        audit row recording the deletion; another organization keeps all of its rows."""
        populate(kit, engine, ORG)
        populate(kit, engine, OTHER)
        others_before = rows_of(engine, OTHER)

        with kit.transaction(engine) as session:
            result = kit.organizations.delete_organization(session, ORG, actor="olivia", audit="purge")

        assert rows_of(engine, ORG) == {"audit_events": 1}
        assert rows_of(engine, OTHER) == others_before
        assert result.rows["team_members"] == 3
        assert result.rows["api_keys"] == 1
        assert result.rows["invitations"] == 2
        assert result.rows["invitation_acceptances"] == 1
        assert result.rows["organization_settings"] == 1
        with engine.connect() as connection:
            last = connection.execute(
                sa.select(audit_events).where(audit_events.c.organization_id == ORG)
            ).one()
        assert last.event_type == "organization.data_deleted"
        assert last.data["audit"] == "purged"

    def test_the_audit_log_is_kept_by_default(self, engine: sa.Engine, kit: TenantKit) -> None:
        """By default the organization's audit rows stay, and the deletion is the last of them."""
        populate(kit, engine, ORG)
        audit_rows = rows_of(engine, ORG)["audit_events"]

        with kit.transaction(engine) as session:
            kit.organizations.delete_organization(session, ORG, actor=HOST)

        assert rows_of(engine, ORG) == {"audit_events": audit_rows + 1}

    def test_every_table_with_an_organization_column_takes_part(self) -> None:
        """The deletion finds its tables in tenantkit's metadata: a table another feature adds is covered, a
        table marked as no organization's data is not."""
        from tenantkit.organizations._service import organization_tables

        names = {table.name for table in organization_tables()}

        assert {
            "team_members",
            "api_keys",
            "invitations",
            "invitation_acceptances",
            "organization_settings",
        } <= names
        with_the_column = {table.name for table in metadata.tables.values() if "organization_id" in table.c}
        # Only the bus's change log is left alone: hints about caches, which prune themselves.
        assert with_the_column - names == {"cache_invalidations"}

    def test_every_column_naming_a_user_is_erased_with_the_user(self) -> None:
        """Every ``*_by`` column (who created, invited, suspended, updated…) is marked ``USER_REFERENCE``, so
        erasing a user clears it: a column a later feature adds without the mark fails here."""
        unmarked = [
            f"{table.name}.{column.name}"
            for table in metadata.tables.values()
            for column in table.c
            if column.name.endswith("_by") and not column.info.get(USER_REFERENCE)
        ]
        assert unmarked == []

    @pytest.mark.parametrize("user", ["adam", "nora", "eve"])
    def test_only_an_owner_may_delete(self, sqlite_engine: sa.Engine, kit: TenantKit, user: str) -> None:
        """``organization:delete`` is OWNER-only: an ADMIN, a MEMBER and a stranger are refused."""
        populate(kit, sqlite_engine, ORG)
        with pytest.raises(PermissionDeniedError), kit.transaction(sqlite_engine) as session:
            kit.organizations.delete_organization(session, ORG, actor=user)

        assert rows_of(sqlite_engine, ORG)["team_members"] == 3

    def test_a_row_that_stays_refuses_the_whole_deletion(
        self, sqlite_engine: sa.Engine, kit: TenantKit
    ) -> None:
        """A trigger that keeps an API key row makes the call raise; deleted members come back."""
        populate(kit, sqlite_engine, ORG)
        with sqlite_engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TRIGGER keep_keys BEFORE DELETE ON api_keys BEGIN SELECT RAISE(IGNORE); END"
            )
        try:
            with pytest.raises(OrganizationInUseError) as raised, kit.transaction(sqlite_engine) as session:
                kit.organizations.delete_organization(session, ORG, actor=HOST)
        finally:
            with sqlite_engine.begin() as connection:
                connection.exec_driver_sql("DROP TRIGGER keep_keys")

        assert raised.value.table == "api_keys"
        assert rows_of(sqlite_engine, ORG)["team_members"] == 3

    def test_a_second_deletion_finds_nothing(self, sqlite_engine: sa.Engine, kit: TenantKit) -> None:
        """Deleting again (a retry) deletes nothing and fails on nothing."""
        populate(kit, sqlite_engine, ORG)
        with kit.transaction(sqlite_engine) as session:
            kit.organizations.delete_organization(session, ORG, actor=HOST)
        with kit.transaction(sqlite_engine) as session:
            again = kit.organizations.delete_organization(session, ORG, actor=HOST)

        assert again.total == 0


class TestErasingAUser:
    def test_the_user_is_gone_from_every_table_but_the_audit_ids(
        self, engine: sa.Engine, kit: TenantKit
    ) -> None:
        """Memberships and acceptances go, references become NULL, request context is redacted."""
        populate(kit, engine, ORG)
        populate(kit, engine, OTHER)

        with kit.transaction(engine) as session:
            result = kit.organizations.erase_user(session, "adam", emails=["eve@example.com"])

        with engine.connect() as connection:
            assert (
                connection.execute(sa.select(team_members).where(team_members.c.user_id == "adam")).all()
                == []
            )
            assert connection.execute(sa.select(api_keys).where(api_keys.c.created_by == "adam")).all() == []
            assert connection.execute(sa.select(sa.func.count()).select_from(api_keys)).scalar() == 2
            assert (
                connection.execute(
                    sa.select(invitations).where(
                        sa.or_(
                            invitations.c.invited_by == "adam",
                            invitations.c.invited_email == "eve@example.com",
                        )
                    )
                ).all()
                == []
            )
            contexts = connection.execute(
                sa.select(audit_events.c.ip_address, audit_events.c.user_agent).where(
                    audit_events.c.actor_id == "adam"
                )
            ).all()
        assert contexts
        assert set(contexts) == {(None, None)}
        assert result.organizations == (ORG, OTHER)
        assert result.rows["team_members"] == 2

    def test_the_last_owner_is_refused_and_nothing_changes(self, engine: sa.Engine, kit: TenantKit) -> None:
        """Erasing an organization's last OWNER would orphan it: refused before any row changes."""
        populate(kit, engine, ORG)
        with pytest.raises(LastOwnerError), kit.transaction(engine) as session:
            kit.organizations.erase_user(session, "olivia")

        assert rows_of(engine, ORG)["team_members"] == 3
        with engine.connect() as connection:
            assert (
                connection.execute(
                    sa.select(organization_settings.c.updated_by).where(
                        organization_settings.c.organization_id == ORG
                    )
                ).scalar_one()
                == "olivia"
            )

    def test_a_user_who_joined_through_a_link_leaves_no_acceptance(
        self, sqlite_engine: sa.Engine, kit: TenantKit
    ) -> None:
        """The acceptance row (the user's ``user_id``) goes with the membership."""
        populate(kit, sqlite_engine, ORG)
        with kit.transaction(sqlite_engine) as session:
            kit.organizations.erase_user(session, "nora")

        with sqlite_engine.connect() as connection:
            assert connection.execute(sa.select(invitation_acceptances)).all() == []
