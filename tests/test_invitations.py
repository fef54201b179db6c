"""Invitations: the contract on SQLite, PostgreSQL and MariaDB, and one test per defect of the reference."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    AcceptedInvitation,
    Actor,
    CreatedInvitation,
    InvalidInputError,
    InvitationService,
    InvitationStatus,
    MembershipService,
    PermissionDeniedError,
    Role,
)
from tenantkit.errors import (
    ConfigurationError,
    DomainNotAllowedError,
    EmailMismatchError,
    InvalidInvitationTokenError,
    InvitationExhaustedError,
    InvitationExpiredError,
    InvitationNotFoundError,
    InvitationNotPendingError,
    InviterNoLongerAllowedError,
    PublicEmailDomainError,
    RoleEscalationError,
    UnverifiedEmailError,
)
from tenantkit.events import (
    Event,
    InvitationAccepted,
    InvitationCreated,
    InvitationResent,
    InvitationRevoked,
    MemberAdded,
)
from tenantkit.tables import invitations, team_members
from tenantkit.testing import EventRecorder, FrozenClock

ORG = "org_1"
OTHER_ORG = "org_2"
KEY = "an-invitation-signing-key-of-some-length"


@pytest.fixture
def membership(clock: FrozenClock) -> MembershipService:
    return MembershipService(clock=clock)


@pytest.fixture
def service(membership: MembershipService, clock: FrozenClock) -> InvitationService:
    return InvitationService(
        membership=membership,
        secret_keys=[KEY],
        clock=clock,
        accept_url_template="https://app.example.com/invite?token={token}",
    )


@pytest.fixture
def recorder(membership: MembershipService) -> EventRecorder:
    recorder = EventRecorder()
    membership.events.subscribe(recorder)
    return recorder


@pytest.fixture
def session(engine: sa.Engine, membership: MembershipService) -> Iterator[Session]:
    """A session on each dialect, with an organization: alice OWNER, adam ADMIN, mia MEMBER."""
    with Session(engine) as session:
        for user, role in (("alice", Role.OWNER), ("adam", Role.ADMIN), ("mia", Role.MEMBER)):
            membership.add(session, ORG, user, role, actor=HOST)
        membership.add(session, OTHER_ORG, "olga", Role.OWNER, actor=HOST)
        session.commit()
        yield session


def role_of(session: Session, user_id: str, organization_id: str = ORG) -> Role | None:
    value = session.execute(
        sa.select(team_members.c.role).where(
            team_members.c.organization_id == organization_id, team_members.c.user_id == user_id
        )
    ).scalar()
    return None if value is None else Role(value)


def token_of(created: CreatedInvitation) -> str:
    return created.token.get_secret_value()


def accept(
    service: InvitationService, session: Session, created: CreatedInvitation | str, user: str, email: str
) -> AcceptedInvitation:
    token = created if isinstance(created, str) else token_of(created)
    return service.accept(session, token, user_id=user, email=email, email_verified=True)


@contextmanager
def no_queries(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect every statement sent to the database; the caller asserts the list stays empty."""
    statements: list[str] = []

    def listener(*args: object) -> None:
        statements.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


class TestConfiguration:
    def test_empty_key_list_is_refused(self, membership: MembershipService) -> None:
        """Without a signing key no token could be issued, so construction fails."""
        with pytest.raises(ConfigurationError):
            InvitationService(membership=membership, secret_keys=[])

    def test_single_string_is_not_a_key_list(self, membership: MembershipService) -> None:
        """A bare string would be read as a list of one-character keys; it is refused."""
        with pytest.raises(ConfigurationError):
            InvitationService(membership=membership, secret_keys=KEY)

    def test_default_ttl_above_maximum_is_refused(self, membership: MembershipService) -> None:
        """The default validity may not exceed the configured maximum."""
        with pytest.raises(ConfigurationError):
            InvitationService(
                membership=membership,
                secret_keys=[KEY],
                default_ttl=timedelta(days=9),
                max_ttl=timedelta(days=8),
            )

    def test_template_without_token_placeholder_is_refused(self, membership: MembershipService) -> None:
        """An accept URL template that cannot carry the token is a configuration error."""
        with pytest.raises(ConfigurationError):
            InvitationService(
                membership=membership, secret_keys=[KEY], accept_url_template="https://x/invite"
            )


class TestCreateEmail:
    def test_creates_pending_invitation_with_defaults(
        self, service: InvitationService, session: Session, clock: FrozenClock
    ) -> None:
        """An email invitation is pending, single-use, canonical, and valid for the default 7 days."""
        created = service.create_email_invitation(session, ORG, "Bob@Example.COM", actor="alice")
        invitation = created.invitation
        assert invitation.kind == "email"
        assert invitation.email == "bob@example.com"
        assert invitation.status is InvitationStatus.PENDING
        assert invitation.max_uses == 1
        assert invitation.use_count == 0
        assert invitation.invited_by == "alice"
        assert invitation.expires_at == clock() + timedelta(days=7)
        assert created.accept_url is not None
        assert created.accept_url.get_secret_value() == (
            "https://app.example.com/invite?token=" + token_of(created)
        )

    def test_invalid_address_is_refused_before_database_work(
        self, service: InvitationService, session: Session, engine: sa.Engine
    ) -> None:
        """A malformed address is an InvalidInputError and no statement is sent."""
        with no_queries(engine) as statements, pytest.raises(InvalidInputError):
            service.create_email_invitation(session, ORG, "not-an-address", actor="alice")
        assert statements == []

    def test_expiry_above_maximum_is_refused(self, service: InvitationService, session: Session) -> None:
        """The validity is bounded by max_ttl."""
        with pytest.raises(InvalidInputError):
            service.create_email_invitation(
                session, ORG, "bob@example.com", actor="alice", expires_in=timedelta(days=31)
            )

    def test_member_without_invite_permission_is_refused(
        self, service: InvitationService, session: Session
    ) -> None:
        """A MEMBER may not invite."""
        with pytest.raises(PermissionDeniedError):
            service.create_email_invitation(session, ORG, "bob@example.com", actor="mia")

    def test_outsider_is_refused(self, service: InvitationService, session: Session) -> None:
        """A user of another organization may not invite into this one."""
        with pytest.raises(PermissionDeniedError):
            service.create_email_invitation(session, ORG, "bob@example.com", actor="olga")


class TestDefects:
    """One test per defect of the reference implementation: each must be impossible."""

    def test_admin_cannot_invite_as_owner(self, service: InvitationService, session: Session) -> None:
        """An ADMIN inviting someone as OWNER gets RoleEscalationError and nothing is stored."""
        with pytest.raises(RoleEscalationError):
            service.create_email_invitation(session, ORG, "bob@example.com", Role.OWNER, actor="adam")
        with pytest.raises(RoleEscalationError):
            service.create_link_invitation(session, ORG, ["example.com"], Role.OWNER, actor="adam")
        assert session.execute(sa.select(sa.func.count()).select_from(invitations)).scalar() == 0

    def test_admin_cannot_invite_themself_as_owner(
        self, service: InvitationService, session: Session
    ) -> None:
        """An ADMIN cannot invite their own address as OWNER either."""
        with pytest.raises(RoleEscalationError):
            service.create_email_invitation(session, ORG, "adam@example.com", "OWNER", actor="adam")

    def test_accepting_never_changes_an_existing_role(
        self, service: InvitationService, session: Session
    ) -> None:
        """An ADMIN accepting a MEMBER invitation stays ADMIN; a MEMBER offered ADMIN stays MEMBER."""
        demote = service.create_email_invitation(session, ORG, "adam@example.com", Role.MEMBER, actor="alice")
        promote = service.create_email_invitation(session, ORG, "mia@example.com", Role.ADMIN, actor="alice")
        session.commit()
        first = accept(service, session, demote, "adam", "adam@example.com")
        second = accept(service, session, promote, "mia", "mia@example.com")
        session.commit()
        assert (first.already_member, first.role) == (True, Role.ADMIN)
        assert (second.already_member, second.role) == (True, Role.MEMBER)
        assert role_of(session, "adam") is Role.ADMIN
        assert role_of(session, "mia") is Role.MEMBER

    def test_link_is_used_up(self, service: InvitationService, session: Session) -> None:
        """A link with two uses admits two people and refuses the third."""
        created = service.create_link_invitation(session, ORG, ["example.com"], actor="alice", max_uses=2)
        session.commit()
        accept(service, session, created, "u1", "u1@example.com")
        accept(service, session, created, "u2", "u2@example.com")
        session.commit()
        with pytest.raises(InvitationExhaustedError):
            accept(service, session, created, "u3", "u3@example.com")
        assert (
            service.get(session, ORG, created.invitation.id, actor="alice").status
            is InvitationStatus.EXHAUSTED
        )

    def test_removed_member_cannot_rejoin_through_old_link(
        self, service: InvitationService, session: Session
    ) -> None:
        """Someone who came in through a link and was removed cannot use that link again."""
        created = service.create_link_invitation(session, ORG, ["example.com"], actor="alice")
        session.commit()
        accept(service, session, created, "u1", "u1@example.com")
        session.commit()
        session.execute(
            team_members.delete().where(team_members.c.organization_id == ORG, team_members.c.user_id == "u1")
        )
        session.commit()
        with pytest.raises(InvitationNotPendingError):
            accept(service, session, created, "u1", "u1@example.com")
        assert role_of(session, "u1") is None

    def test_unverified_address_fails_domain_check(
        self, service: InvitationService, session: Session
    ) -> None:
        """A typed-in (unverified) address at an allowed domain is refused."""
        created = service.create_link_invitation(session, ORG, ["example.com"], actor="alice")
        session.commit()
        with pytest.raises(UnverifiedEmailError):
            service.accept(
                session, token_of(created), user_id="u1", email="u1@example.com", email_verified=False
            )
        assert role_of(session, "u1") is None

    def test_comparisons_are_case_insensitive(self, service: InvitationService, session: Session) -> None:
        """Bob@EXAMPLE.com's invitation takes bob@example.com; a link for Example.COM takes X@eXample.com."""
        email = service.create_email_invitation(session, ORG, "Bob@EXAMPLE.com", actor="alice")
        link = service.create_link_invitation(session, ORG, ["Example.COM."], actor="alice")
        session.commit()
        assert not accept(service, session, email, "bob", "bob@example.com").already_member
        assert not accept(service, session, link, "x", "X@eXample.com").already_member

    def test_tokens_are_not_stored_or_listed_in_plaintext(
        self, service: InvitationService, session: Session, recorder: EventRecorder
    ) -> None:
        """The token column holds a tagged digest; listings, reprs and events never show the token."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        token = token_of(created)
        stored = session.execute(sa.select(invitations.c.token)).scalar_one()
        assert stored.startswith("sha256:")
        assert token not in stored
        page = service.list_pending(session, ORG, actor="alice")
        assert token not in page.model_dump_json()
        assert stored not in page.model_dump_json()
        assert token not in repr(created)
        assert token not in repr(recorder.events)
        assert token not in str([event.model_dump() for event in recorder.events])

    def test_expired_invitation_does_not_block_a_new_one(
        self, service: InvitationService, session: Session, clock: FrozenClock
    ) -> None:
        """After expiry, the same address can be invited again, and the new invitation works."""
        old = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        clock.advance(days=8)
        new = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        with pytest.raises(InvitationNotPendingError):
            accept(service, session, old, "bob", "bob@example.com")
        assert accept(service, session, new, "bob", "bob@example.com").role is Role.MEMBER

    def test_acceptance_is_atomic(
        self,
        service: InvitationService,
        session: Session,
        membership: MembershipService,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """When adding the member fails, the invitation is not consumed and no acceptance is recorded."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()

        def broken_add(*args: object, **kwargs: object) -> None:
            raise RuntimeError("the membership insert failed")

        monkeypatch.setattr(membership, "_admit", broken_add)
        with pytest.raises(RuntimeError):
            accept(service, session, created, "bob", "bob@example.com")
        session.commit()
        monkeypatch.undo()
        invitation = service.get(session, ORG, created.invitation.id, actor="alice")
        assert (invitation.status, invitation.use_count) == (InvitationStatus.PENDING, 0)
        assert accept(service, session, created, "bob", "bob@example.com").role is Role.MEMBER


class TestReinvite:
    def test_reinvite_replaces_pending(self, service: InvitationService, session: Session) -> None:
        """Re-inviting a pending address gives a new token; the old one is dead."""
        old = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        new = service.create_email_invitation(session, ORG, "BOB@example.com", Role.ADMIN, actor="alice")
        session.commit()
        assert service.get(session, ORG, old.invitation.id, actor="alice").status is InvitationStatus.REPLACED
        with pytest.raises(InvitationNotPendingError):
            service.preview(session, token_of(old))
        assert accept(service, session, new, "bob", "bob@example.com").role is Role.ADMIN

    def test_accepted_and_revoked_do_not_block(self, service: InvitationService, session: Session) -> None:
        """An accepted or a revoked invitation leaves the address free for a new one."""
        first = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        accept(service, session, first, "bob", "bob@example.com")
        second = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        service.revoke(session, ORG, second.invitation.id, actor="alice")
        third = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        statuses = {
            service.get(session, ORG, c.invitation.id, actor="alice").status for c in (first, second, third)
        }
        assert statuses == {InvitationStatus.ACCEPTED, InvitationStatus.REVOKED, InvitationStatus.PENDING}

    def test_same_address_in_two_organizations(self, service: InvitationService, session: Session) -> None:
        """Invitations to one address from two organizations do not replace each other."""
        a = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        b = service.create_email_invitation(session, OTHER_ORG, "bob@example.com", actor="olga")
        session.commit()
        assert accept(service, session, a, "bob", "bob@example.com").organization_id == ORG
        assert accept(service, session, b, "bob", "bob@example.com").organization_id == OTHER_ORG


class TestCreateLink:
    def test_domains_are_normalized(self, service: InvitationService, session: Session) -> None:
        """Domains are lower-cased, IDNA-encoded, stripped of a trailing dot and deduplicated."""
        created = service.create_link_invitation(
            session, ORG, ["Example.COM.", "example.com", "Bücher.example", "*.Corp.Example"], actor="alice"
        )
        assert created.invitation.allowed_domains == (
            "example.com",
            "xn--bcher-kva.example",
            "*.corp.example",
        )
        assert created.invitation.kind == "link"
        assert created.invitation.max_uses is None

    def test_public_provider_is_refused(self, service: InvitationService, session: Session) -> None:
        """gmail.com (in any case, or as a wildcard parent) is refused as an allowed domain."""
        for domain in ("gmail.com", "GMail.Com.", "*.gmail.com"):
            with pytest.raises(PublicEmailDomainError):
                service.create_link_invitation(session, ORG, [domain], actor="alice")

    def test_public_provider_allowed_when_configured(
        self, membership: MembershipService, session: Session, clock: FrozenClock
    ) -> None:
        """A host that allows public providers can create a gmail.com link."""
        service = InvitationService(
            membership=membership, secret_keys=[KEY], clock=clock, allow_public_domains=True
        )
        created = service.create_link_invitation(session, ORG, ["gmail.com"], actor="alice")
        assert created.invitation.allowed_domains == ("gmail.com",)

    @pytest.mark.parametrize("domains", [[], ["com"], ["not a domain"], ["a@b.com"], "example.com"])
    def test_bad_domains_are_refused(
        self, service: InvitationService, session: Session, domains: list[str]
    ) -> None:
        """Empty lists, single labels, non-domains and a bare string are invalid input."""
        with pytest.raises(InvalidInputError):
            service.create_link_invitation(session, ORG, domains, actor="alice")

    @pytest.mark.parametrize("max_uses", [0, -1, True, 1.5])
    def test_bad_max_uses_is_refused(
        self, service: InvitationService, session: Session, max_uses: object
    ) -> None:
        """max_uses must be a positive whole number."""
        with pytest.raises(InvalidInputError):
            service.create_link_invitation(session, ORG, ["example.com"], actor="alice", max_uses=max_uses)  # type: ignore[arg-type]


class TestAccept:
    def test_email_invitation_makes_a_member_once(
        self, service: InvitationService, session: Session, recorder: EventRecorder
    ) -> None:
        """Accepting adds the member with the invited role; a second acceptance is refused."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", Role.ADMIN, actor="alice")
        session.commit()
        result = accept(service, session, created, "bob", "bob@example.com")
        session.commit()
        assert (result.role, result.already_member) == (Role.ADMIN, False)
        assert role_of(session, "bob") is Role.ADMIN
        invitation = service.get(session, ORG, created.invitation.id, actor="alice")
        assert (invitation.status, invitation.accepted_by, invitation.use_count) == (
            InvitationStatus.ACCEPTED,
            "bob",
            1,
        )
        with pytest.raises(InvitationNotPendingError):
            accept(service, session, created, "bob2", "bob@example.com")
        expected: list[type[Event]] = [MemberAdded, InvitationAccepted]
        assert [type(e) for e in recorder.events if not isinstance(e, InvitationCreated)] == expected

    def test_wrong_address_is_refused(self, service: InvitationService, session: Session) -> None:
        """An email invitation accepted with another address is refused."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        with pytest.raises(EmailMismatchError):
            accept(service, session, created, "eve", "eve@example.com")

    @pytest.mark.parametrize(
        "email", ["x@evilexample.com", "x@example.com.evil.org", "x@sub.example.com", "x@example.co"]
    )
    def test_look_alike_domains_are_refused(
        self, service: InvitationService, session: Session, email: str
    ) -> None:
        """Suffix, prefix and subdomain tricks do not pass an exact domain."""
        created = service.create_link_invitation(session, ORG, ["example.com"], actor="alice")
        session.commit()
        with pytest.raises(DomainNotAllowedError):
            accept(service, session, created, "eve", email)

    def test_wildcard_admits_subdomains_only(self, service: InvitationService, session: Session) -> None:
        """``*.example.com`` admits a.b.example.com but not example.com itself."""
        created = service.create_link_invitation(session, ORG, ["*.example.com"], actor="alice")
        session.commit()
        assert accept(service, session, created, "u1", "u1@a.b.example.com").role is Role.MEMBER
        with pytest.raises(DomainNotAllowedError):
            accept(service, session, created, "u2", "u2@example.com")

    def test_expired_invitation_is_refused(
        self, service: InvitationService, session: Session, clock: FrozenClock
    ) -> None:
        """After its expiry an invitation is refused with its expiry date."""
        created = service.create_email_invitation(
            session, ORG, "bob@example.com", actor="alice", expires_in=timedelta(hours=1)
        )
        session.commit()
        clock.advance(hours=2)
        with pytest.raises(InvitationExpiredError) as caught:
            accept(service, session, created, "bob", "bob@example.com")
        assert caught.value.expired_at == created.invitation.expires_at

    def test_inviter_who_left_invalidates_invitation(
        self, service: InvitationService, session: Session
    ) -> None:
        """When the inviter is no longer a member, acceptance is refused and the error says so."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="adam")
        session.execute(
            team_members.delete().where(
                team_members.c.organization_id == ORG, team_members.c.user_id == "adam"
            )
        )
        session.commit()
        with pytest.raises(InviterNoLongerAllowedError, match="no longer a member"):
            accept(service, session, created, "bob", "bob@example.com")
        assert role_of(session, "bob") is None

    def test_demoted_inviter_invalidates_invitation(
        self, service: InvitationService, session: Session
    ) -> None:
        """When the inviter was demoted below the invited role, acceptance is refused."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", Role.ADMIN, actor="adam")
        session.execute(
            team_members.update()
            .where(team_members.c.organization_id == ORG, team_members.c.user_id == "adam")
            .values(role=Role.MEMBER)
        )
        session.commit()
        with pytest.raises(InviterNoLongerAllowedError, match="may no longer"):
            accept(service, session, created, "bob", "bob@example.com")

    def test_host_invitation_has_no_inviter_to_recheck(
        self, service: InvitationService, session: Session
    ) -> None:
        """An invitation by the host records no inviter and can make an OWNER."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", Role.OWNER, actor=HOST)
        session.commit()
        assert created.invitation.invited_by is None
        assert accept(service, session, created, "bob", "bob@example.com").role is Role.OWNER

    def test_forged_token_is_refused_without_a_query(
        self,
        service: InvitationService,
        session: Session,
        engine: sa.Engine,
        membership: MembershipService,
        clock: FrozenClock,
    ) -> None:
        """Tokens that are junk, tampered, signed by another key or stale never reach the database."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        token = token_of(created)
        other = InvitationService(
            membership=membership, secret_keys=["another-key-entirely-here"], clock=clock
        )
        forged = token_of(other.create_email_invitation(session, ORG, "eve@example.com", actor="alice"))
        session.commit()
        with no_queries(engine) as statements:
            for bad in (
                "",
                "junk",
                token[:-1],
                token + "A",
                token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1],
                forged,
            ):
                with pytest.raises(InvalidInvitationTokenError):
                    accept(service, session, bad, "bob", "bob@example.com")
                with pytest.raises(InvalidInvitationTokenError):
                    service.preview(session, bad)
            clock.advance(days=31)
            with pytest.raises(InvalidInvitationTokenError):
                accept(service, session, token, "bob", "bob@example.com")
        assert statements == []

    def test_invalid_input_is_refused_before_database_work(
        self, service: InvitationService, session: Session, engine: sa.Engine
    ) -> None:
        """A bad address, an unverified one or a bad user id fails without any query."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        with no_queries(engine) as statements:
            with pytest.raises(InvalidInputError):
                accept(service, session, created, "bob", "bob")
            with pytest.raises(InvalidInputError):
                accept(service, session, created, " bob", "bob@example.com")
            truthy_but_not_true: Any = 1
            with pytest.raises(UnverifiedEmailError):
                service.accept(
                    session,
                    token_of(created),
                    user_id="bob",
                    email="bob@example.com",
                    email_verified=truthy_but_not_true,
                )
        assert statements == []

    def test_key_rotation(
        self, service: InvitationService, session: Session, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """A token signed with the old key verifies after a new key is appended, and not after removal."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        rotated = InvitationService(
            membership=membership, secret_keys=[KEY, "the-newer-signing-key-000"], clock=clock
        )
        assert rotated.preview(session, token_of(created)).email == "bob@example.com"
        retired = InvitationService(
            membership=membership, secret_keys=["the-newer-signing-key-000"], clock=clock
        )
        with pytest.raises(InvalidInvitationTokenError):
            retired.preview(session, token_of(created))

    def test_existing_member_link_acceptance_consumes_nothing(
        self, service: InvitationService, session: Session
    ) -> None:
        """A member accepting a link keeps their role and uses none of the link's uses."""
        created = service.create_link_invitation(
            session, ORG, ["example.com"], Role.ADMIN, actor="alice", max_uses=1
        )
        session.commit()
        result = accept(service, session, created, "mia", "mia@example.com")
        assert (result.already_member, result.role, result.invitation_role) == (True, Role.MEMBER, Role.ADMIN)
        assert accept(service, session, created, "newbie", "newbie@example.com").role is Role.ADMIN


class TestPreview:
    def test_preview_does_not_consume(self, service: InvitationService, session: Session) -> None:
        """Preview shows organization, role, inviter, expiry and address, and the token still works."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", Role.ADMIN, actor="alice")
        session.commit()
        preview = service.preview(session, token_of(created))
        assert (preview.organization_id, preview.role, preview.invited_by, preview.email) == (
            ORG,
            Role.ADMIN,
            "alice",
            "bob@example.com",
        )
        assert preview.expires_at == created.invitation.expires_at
        assert preview.uses_left == 1
        assert accept(service, session, created, "bob", "bob@example.com").role is Role.ADMIN

    def test_preview_of_link_shows_domains_and_uses_left(
        self, service: InvitationService, session: Session
    ) -> None:
        """A link's preview lists its domains and how many uses remain."""
        created = service.create_link_invitation(session, ORG, ["example.com"], actor="alice", max_uses=3)
        session.commit()
        accept(service, session, created, "u1", "u1@example.com")
        preview = service.preview(session, token_of(created))
        assert (preview.kind, preview.allowed_domains, preview.uses_left) == ("link", ("example.com",), 2)


class TestManage:
    def test_list_pending_paginates_and_hides_finished(
        self, service: InvitationService, session: Session, clock: FrozenClock
    ) -> None:
        """Only pending, unexpired invitations are listed, oldest first, page by page."""
        ids = []
        for index in range(5):
            ids.append(
                service.create_email_invitation(
                    session, ORG, f"u{index}@example.com", actor="alice"
                ).invitation.id
            )
            clock.advance(seconds=1)
        service.revoke(session, ORG, ids[1], actor="alice")
        service.create_email_invitation(
            session, ORG, "short@example.com", actor="alice", expires_in=timedelta(seconds=1)
        )
        service.create_email_invitation(session, OTHER_ORG, "x@example.com", actor="olga")
        session.commit()
        clock.advance(seconds=5)
        first = service.list_pending(session, ORG, actor="adam", limit=2)
        assert first.next_cursor is not None
        second = service.list_pending(session, ORG, actor="adam", limit=2, cursor=first.next_cursor)
        assert [i.id for i in first.items + second.items] == [ids[0], ids[2], ids[3], ids[4]]
        assert second.next_cursor is None

    def test_member_cannot_list(self, service: InvitationService, session: Session) -> None:
        """A MEMBER may not read invitations."""
        with pytest.raises(PermissionDeniedError):
            service.list_pending(session, ORG, actor="mia")

    def test_revoke_kills_token(
        self, service: InvitationService, session: Session, recorder: EventRecorder
    ) -> None:
        """A revoked invitation cannot be accepted, and InvitationRevoked is delivered after commit."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        revoked = service.revoke(session, ORG, created.invitation.id, actor="adam")
        assert revoked.status is InvitationStatus.REVOKED
        assert recorder.of_type(InvitationRevoked) == []
        session.commit()
        assert len(recorder.of_type(InvitationRevoked)) == 1
        with pytest.raises(InvitationNotPendingError):
            accept(service, session, created, "bob", "bob@example.com")
        with pytest.raises(InvitationNotPendingError):
            service.revoke(session, ORG, created.invitation.id, actor="adam")

    def test_other_organization_cannot_see_or_touch(
        self, service: InvitationService, session: Session
    ) -> None:
        """An invitation id of another organization is not found there."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        for call in (service.revoke, service.resend, service.get, service.mark_sent):
            with pytest.raises(InvitationNotFoundError):
                call(session, OTHER_ORG, created.invitation.id, actor="olga")

    def test_resend_replaces_token(
        self, service: InvitationService, session: Session, clock: FrozenClock, recorder: EventRecorder
    ) -> None:
        """Resending issues a new token and a new expiry; the old token is dead; the event hides the URL."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.commit()
        clock.advance(days=10)
        resent = service.resend(session, ORG, created.invitation.id, actor="alice")
        session.commit()
        assert resent.invitation.expires_at == clock() + timedelta(days=7)
        assert token_of(resent) != token_of(created)
        [event] = recorder.of_type(InvitationResent)
        assert isinstance(event, InvitationResent)
        assert event.accept_url is not None
        assert token_of(resent) in event.accept_url.get_secret_value()
        assert token_of(resent) not in repr(event)
        with pytest.raises(InvalidInvitationTokenError):
            accept(service, session, created, "bob", "bob@example.com")
        assert accept(service, session, resent, "bob", "bob@example.com").role is Role.MEMBER

    def test_admin_cannot_resend_owner_invitation(self, service: InvitationService, session: Session) -> None:
        """Resending is bounded like inviting: an ADMIN cannot renew an OWNER invitation."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", Role.OWNER, actor="alice")
        with pytest.raises(RoleEscalationError):
            service.resend(session, ORG, created.invitation.id, actor="adam")

    def test_mark_sent(self, service: InvitationService, session: Session) -> None:
        """mark_sent records what the host says it did."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        assert service.mark_sent(session, ORG, created.invitation.id, actor="alice").sent_via_email is True
        assert (
            service.mark_sent(session, ORG, created.invitation.id, actor="alice", sent=False).sent_via_email
            is False
        )


class TestEvents:
    def test_created_event_after_commit_with_secret_url(
        self, service: InvitationService, session: Session, recorder: EventRecorder
    ) -> None:
        """InvitationCreated arrives after commit, with the accept URL as a SecretStr."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        assert recorder.of_type(InvitationCreated) == []
        session.commit()
        [event] = recorder.of_type(InvitationCreated)
        assert isinstance(event, InvitationCreated)
        assert event.accept_url is not None
        assert event.accept_url.get_secret_value() == created.accept_url.get_secret_value()  # type: ignore[union-attr]
        assert "**********" in repr(event)

    def test_rollback_discards_events_and_rows(
        self, service: InvitationService, session: Session, recorder: EventRecorder
    ) -> None:
        """A rolled-back creation leaves neither a row nor an event."""
        service.create_email_invitation(session, ORG, "bob@example.com", actor="alice")
        session.rollback()
        session.commit()
        assert recorder.of_type(InvitationCreated) == []
        assert session.execute(sa.select(sa.func.count()).select_from(invitations)).scalar() == 0


class TestActorObject:
    def test_actor_instance_is_accepted(self, service: InvitationService, session: Session) -> None:
        """Actor.user(...) works wherever a user id does."""
        created = service.create_email_invitation(session, ORG, "bob@example.com", actor=Actor.user("alice"))
        assert created.invitation.invited_by == "alice"


@pytest.mark.anyio
class TestAsync:
    async def test_flow_through_run_sync(self, async_engine: AsyncEngine, clock: FrozenClock) -> None:
        """Create, preview and accept work through AsyncSession.run_sync; events wait for the async commit."""
        membership = MembershipService(clock=clock)
        service = InvitationService(membership=membership, secret_keys=[KEY], clock=clock)
        recorder = EventRecorder()
        membership.events.subscribe(recorder)
        async with AsyncSession(async_engine) as session:
            await session.run_sync(membership.add, ORG, "alice", Role.OWNER, actor=HOST)
            created = await session.run_sync(
                service.create_link_invitation, ORG, ["example.com"], actor="alice", max_uses=1
            )
            await session.commit()
            token = token_of(created)
            preview = await session.run_sync(service.preview, token)
            assert preview.uses_left == 1
            result = await session.run_sync(
                service.accept, token, user_id="bob", email="bob@example.com", email_verified=True
            )
            assert recorder.of_type(InvitationAccepted) == []
            await session.commit()
        assert result.role is Role.MEMBER
        assert len(recorder.of_type(InvitationAccepted)) == 1
