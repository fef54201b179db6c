"""Every read that can reveal an organization's or a member's data takes an actor and authorizes it itself.

Each service test runs on SQLite, PostgreSQL and MariaDB (the ``engine`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session

from tenantkit import (
    DEFAULT_PERMISSIONS,
    HOST,
    Actor,
    ApiKeyService,
    InvitationService,
    MembershipService,
    PermissionDeniedError,
    Permissions,
    Role,
    transaction,
)
from tenantkit._cli import main

ORG = "org_1"
OTHER_ORG = "org_2"


@dataclass(frozen=True)
class Seeded:
    """The three services over ORG (owner o1, admin a1, member m1) and OTHER_ORG (owner x1, member m1)."""

    engine: sa.Engine
    members: MembershipService
    api_keys: ApiKeyService
    invitations: InvitationService
    key_id: str
    invitation_id: str


def seed(engine: sa.Engine, permissions: Permissions | None = None) -> Seeded:
    members = MembershipService(permissions=permissions)
    api_keys = ApiKeyService(membership=members)
    invitations = InvitationService(membership=members, secret_keys=["a-test-secret-of-32-bytes-or-more!"])
    with transaction(engine) as session:
        members.add(session, ORG, "o1", Role.OWNER, actor=HOST)
        members.add(session, ORG, "a1", Role.ADMIN, actor=HOST)
        members.add(session, ORG, "m1", Role.MEMBER, actor=HOST)
        members.add(session, OTHER_ORG, "x1", Role.OWNER, actor=HOST)
        members.add(session, OTHER_ORG, "m1", Role.MEMBER, actor=HOST)
        key_id = api_keys.issue(session, ORG, "ci", actor=HOST).id
        invitation_id = invitations.create_email_invitation(
            session, ORG, "jo@example.com", actor=HOST
        ).invitation.id
    return Seeded(engine, members, api_keys, invitations, key_id, invitation_id)


Read = Callable[[Seeded, Session, Actor | str], object]

READS: dict[str, Read] = {
    "members.get": lambda s, session, actor: s.members.get(session, ORG, "a1", actor=actor),
    "members.list_members": lambda s, session, actor: s.members.list_members(session, ORG, actor=actor),
    "api_keys.get": lambda s, session, actor: s.api_keys.get(session, ORG, s.key_id, actor=actor),
    "api_keys.list_keys": lambda s, session, actor: s.api_keys.list_keys(session, ORG, actor=actor),
    "invitations.get": lambda s, session, actor: s.invitations.get(
        session, ORG, s.invitation_id, actor=actor
    ),
    "invitations.list_pending": lambda s, session, actor: s.invitations.list_pending(
        session, ORG, actor=actor
    ),
}

# The least role the default permission table lets read each.
LEAST_ROLE_ALLOWED = {
    "members.get": "m1",
    "members.list_members": "m1",
    "api_keys.get": "m1",
    "api_keys.list_keys": "m1",
    "invitations.get": "a1",
    "invitations.list_pending": "a1",
}


def run_read(seeded: Seeded, read: str, actor: Actor | str) -> Any:
    with transaction(seeded.engine) as session:
        return READS[read](seeded, session, actor)


@pytest.mark.parametrize("read", READS)
class TestOrganizationReads:
    def test_non_member_is_refused(self, engine: sa.Engine, read: str) -> None:
        """The owner of another organization is refused every read of this one."""
        seeded = seed(engine)
        with pytest.raises(PermissionDeniedError):
            run_read(seeded, read, "x1")

    def test_unknown_user_is_refused(self, engine: sa.Engine, read: str) -> None:
        """A user who belongs to no organization is refused every read."""
        seeded = seed(engine)
        with pytest.raises(PermissionDeniedError):
            run_read(seeded, read, "stranger")

    def test_role_without_the_permission_is_refused(self, engine: sa.Engine, read: str) -> None:
        """A member whose role lacks the read permission (here a table granting MEMBER nothing) is refused."""
        no_member_actions = Permissions({**DEFAULT_PERMISSIONS, Role.MEMBER: frozenset()})
        seeded = seed(engine, permissions=no_member_actions)
        with pytest.raises(PermissionDeniedError):
            run_read(seeded, read, "m1")

    def test_allowed_role_and_host_read(self, engine: sa.Engine, read: str) -> None:
        """The least role the default table allows, and the host, read the same answer."""
        seeded = seed(engine)
        assert run_read(seeded, read, LEAST_ROLE_ALLOWED[read]) == run_read(seeded, read, HOST)


class TestDefaultTableBoundaries:
    @pytest.mark.parametrize("read", ["invitations.get", "invitations.list_pending"])
    def test_member_may_not_read_invitations(self, engine: sa.Engine, read: str) -> None:
        """A MEMBER lacks ``invitations:read`` in the default table, so both invitation reads refuse it."""
        seeded = seed(engine)
        with pytest.raises(PermissionDeniedError):
            run_read(seeded, read, "m1")


class TestListOrganizations:
    def test_another_user_is_refused(self, engine: sa.Engine) -> None:
        """Nobody but the user may list the user's organizations, not even an OWNER of one of them."""
        seeded = seed(engine)
        for actor in ("o1", "x1", "stranger"):
            with pytest.raises(PermissionDeniedError), transaction(engine) as session:
                seeded.members.list_organizations(session, "m1", actor=actor)

    def test_the_user_and_the_host_may(self, engine: sa.Engine) -> None:
        """The user lists their own organizations, and the host sees the same page."""
        seeded = seed(engine)
        with transaction(engine) as session:
            own = seeded.members.list_organizations(session, "m1", actor="m1")
            hosted = seeded.members.list_organizations(session, "m1", actor=HOST)
        assert [member.organization_id for member in own.items] == [ORG, OTHER_ORG]
        assert own == hosted


class TestCommandLine:
    @pytest.fixture
    def seeded(self, sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> Seeded:
        monkeypatch.setenv("TENANTKIT_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
        return seed(sqlite_engine)

    @staticmethod
    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["members", *args])

    def test_members_list_as_a_non_member_is_refused(self, seeded: Seeded) -> None:
        """``members list --as USER`` is bounded by the role: a non-member gets exit 4 (permission_denied)."""
        result = self.run("list", ORG, "--as", "x1", "--json")
        assert result.exit_code == 4, result.output
        assert json.loads(result.stderr)["error"]["code"] == "permission_denied"

    def test_members_list_as_the_host(self, seeded: Seeded) -> None:
        """Without ``--as`` the command acts as the host and lists every member."""
        result = self.run("list", ORG, "--json")
        assert result.exit_code == 0, result.output
        assert [item["user_id"] for item in json.loads(result.stdout)["items"]] == ["a1", "m1", "o1"]

    def test_members_orgs_as_another_user_is_refused(self, seeded: Seeded) -> None:
        """``members orgs USER --as OTHER`` is refused; ``--as USER`` lists the user's own organizations."""
        refused = self.run("orgs", "m1", "--as", "o1")
        own = self.run("orgs", "m1", "--as", "m1", "--json")
        assert refused.exit_code == 4, refused.output
        assert "permission_denied" in refused.stderr
        assert own.exit_code == 0, own.output
        assert [item["organization_id"] for item in json.loads(own.stdout)["items"]] == [ORG, OTHER_ORG]
