"""Invitation tokens: any modification is refused, and refused before any database query."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tenantkit import HOST, InvitationService, MembershipService, Role
from tenantkit.errors import ConfigurationError, InvalidInvitationTokenError
from tenantkit.invitations._tokens import TokenCodec, digest, digest_matches
from tenantkit.testing import FrozenClock
from tests.strategies import token_edits

KEY = "an-invitation-signing-key-of-some-length"


@pytest.fixture
def codec(clock: FrozenClock) -> TokenCodec:
    return TokenCodec([KEY], max_age=timedelta(days=30), clock=clock)


class TestCodec:
    def test_round_trip(self, codec: TokenCodec) -> None:
        """A fresh token reads back its organization, invitation and a secret matching the stored digest."""
        token, stored = codec.issue("org", "inv")
        contents = codec.read(token)
        assert (contents.organization_id, contents.invitation_id) == ("org", "inv")
        assert digest_matches(stored, contents.secret)
        assert stored.startswith("sha256:")
        assert contents.secret not in stored
        assert contents.secret not in repr(contents)

    def test_tokens_are_random(self, codec: TokenCodec) -> None:
        """Two tokens for one invitation differ, as do their digests."""
        (a, da), (b, db) = codec.issue("org", "inv"), codec.issue("org", "inv")
        assert a != b
        assert da != db

    @given(data=st.data())
    def test_any_edit_is_refused(self, codec: TokenCodec, data: st.DataObject) -> None:
        """Replacing, inserting or deleting one character, or truncating, makes a token invalid."""
        token, _ = codec.issue("org_1", "3f2b6c1e-8d43-4f5e-9a57-1c9e2d0b7a61")
        edited = data.draw(token_edits(token))
        with pytest.raises(InvalidInvitationTokenError):
            codec.read(edited)

    def test_stale_token_is_refused(self, codec: TokenCodec, clock: FrozenClock) -> None:
        """A token older than max_age is refused and the message says it is too old."""
        token, _ = codec.issue("org", "inv")
        clock.advance(days=30, seconds=1)
        with pytest.raises(InvalidInvitationTokenError, match="too old"):
            codec.read(token)

    def test_token_from_the_future_is_refused(self, codec: TokenCodec, clock: FrozenClock) -> None:
        """A token signed after the current time (clock moved back) is refused."""
        token, _ = codec.issue("org", "inv")
        clock.advance(days=-1)
        with pytest.raises(InvalidInvitationTokenError):
            codec.read(token)

    def test_other_purpose_salt_is_refused(self, clock: FrozenClock) -> None:
        """A value signed with the same key for another purpose is not an invitation token."""
        from itsdangerous import URLSafeTimedSerializer

        other = URLSafeTimedSerializer(KEY, salt="something-else").dumps(["org", "inv", "secret"])
        with pytest.raises(InvalidInvitationTokenError):
            TokenCodec([KEY], max_age=timedelta(days=1), clock=clock).read(other)

    def test_rotation_verifies_old_and_signs_with_new(self, clock: FrozenClock) -> None:
        """With keys [old, new], old tokens verify; new tokens need the new key."""
        old_only = TokenCodec(["old-key-0123456789"], max_age=timedelta(days=1), clock=clock)
        both = TokenCodec(
            ["old-key-0123456789", "new-key-0123456789"], max_age=timedelta(days=1), clock=clock
        )
        new_only = TokenCodec(["new-key-0123456789"], max_age=timedelta(days=1), clock=clock)
        old_token, _ = old_only.issue("org", "inv")
        new_token, _ = both.issue("org", "inv")
        assert both.read(old_token).invitation_id == "inv"
        assert new_only.read(new_token).invitation_id == "inv"
        with pytest.raises(InvalidInvitationTokenError):
            old_only.read(new_token)

    @pytest.mark.parametrize("keys", [[], ["short"], [""], [b""], "a-single-string-key-here"])
    def test_bad_key_lists_are_configuration_errors(self, keys: object, clock: FrozenClock) -> None:
        """Empty lists, short keys and a bare string are refused at construction."""
        with pytest.raises(ConfigurationError):
            TokenCodec(keys, max_age=timedelta(days=1), clock=clock)  # type: ignore[arg-type]

    def test_digest_is_tagged_sha256(self) -> None:
        """The stored digest names its algorithm."""
        assert digest("abc") == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.fixture
def seeded(sqlite_engine: sa.Engine, clock: FrozenClock) -> Iterator[tuple[InvitationService, Session, str]]:
    service = InvitationService(membership=MembershipService(clock=clock), secret_keys=[KEY], clock=clock)
    with Session(sqlite_engine) as session:
        service.membership.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        created = service.create_link_invitation(session, "org_1", ["example.com"], actor="alice")
        session.commit()
        yield service, session, created.token.get_secret_value()


class TestNoQueryForBadTokens:
    @settings(max_examples=60)
    @given(data=st.data())
    def test_edited_token_is_refused_without_a_query(
        self, seeded: tuple[InvitationService, Session, str], sqlite_engine: sa.Engine, data: st.DataObject
    ) -> None:
        """Accepting or previewing an edited token raises before any statement reaches the database."""
        service, session, token = seeded
        edited = data.draw(token_edits(token))
        statements: list[str] = []

        def listener(*args: object) -> None:
            statements.append(str(args[2]))

        sa.event.listen(sqlite_engine, "before_cursor_execute", listener)
        try:
            with pytest.raises(InvalidInvitationTokenError):
                service.accept(session, edited, user_id="bob", email="bob@example.com", email_verified=True)
            with pytest.raises(InvalidInvitationTokenError):
                service.preview(session, edited)
        finally:
            sa.event.remove(sqlite_engine, "before_cursor_execute", listener)
        assert statements == []

    def test_the_valid_token_does_query(
        self, seeded: tuple[InvitationService, Session, str], sqlite_engine: sa.Engine
    ) -> None:
        """The listener sees the queries of a valid token, so an empty list above means something."""
        service, session, token = seeded
        statements: list[str] = []

        def listener(*args: object) -> None:
            statements.append(str(args[2]))

        sa.event.listen(sqlite_engine, "before_cursor_execute", listener)
        try:
            service.preview(session, token)
        finally:
            sa.event.remove(sqlite_engine, "before_cursor_execute", listener)
        assert statements
