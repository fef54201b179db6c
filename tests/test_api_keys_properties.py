"""Properties of API keys, checked by hypothesis against real databases.

Every issued key verifies to its own organization and no other; any damage to a key is refused; junk never
verifies and never raises anything but the documented error; expiry, revocation and rotation take effect at
exactly the right instant.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, InvalidApiKeyError, MembershipService
from tenantkit.api_keys._format import SECRET_LENGTH, base62, checksum
from tenantkit.events import EventDispatcher
from tenantkit.testing import FrozenClock
from tests.strategies import api_key_edits, identifiers, junk_api_keys


def _examples(engine: sa.Engine, sqlite: int, server: int) -> settings:
    return settings(max_examples=sqlite if engine.dialect.name == "sqlite" else server)


@pytest.fixture
def service(clock: FrozenClock) -> ApiKeyService:
    events = EventDispatcher()
    return ApiKeyService(membership=MembershipService(clock=clock, events=events), clock=clock, events=events)


def _issue(engine: sa.Engine, service: ApiKeyService, org: str, **kwargs: object) -> tuple[str, str]:
    with Session(engine) as session:
        issued = service.issue(session, org, "key", actor=HOST, **kwargs)  # type: ignore[arg-type]
        session.commit()
    return issued.id, issued.reveal()


class TestOwnership:
    def test_key_verifies_to_its_own_organization_only(
        self, engine: sa.Engine, service: ApiKeyService
    ) -> None:
        """A key issued to one organization verifies to it, and is unknown when another one is asked for."""

        @_examples(engine, 25, 8)
        @given(orgs=st.lists(identifiers, min_size=2, max_size=2, unique=True))
        def check(orgs: list[str]) -> None:
            mine, other = orgs
            key_id, key = _issue(engine, service, mine)
            with Session(engine) as session:
                result = service.verify(session, key)
                assert (result.valid, result.organization_id, result.key_id) == (True, mine, key_id)
                assert service.verify(session, key, organization_id=mine).valid
                assert service.verify(session, key, organization_id=other).reason == "unknown"
                session.commit()

        check()


class TestDamage:
    def test_damaged_keys_refused(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """One changed character, a truncation, an extension or a case change never verifies."""
        _, key = _issue(engine, service, "org")

        @_examples(engine, 200, 40)
        @given(damaged=api_key_edits(key))
        def check(damaged: str) -> None:
            with Session(engine) as session:
                result = service.verify(session, damaged)
            assert not result.valid
            assert result.reason in {"malformed", "unknown"}

        check()

    @settings(max_examples=300)
    @given(secret=st.binary(min_size=32, max_size=32), data=st.data())
    def test_damage_caught_before_database(
        self, service: ApiKeyService, secret: bytes, data: st.DataObject
    ) -> None:
        """The checksum and shape checks alone refuse every single-place damage of any key."""
        body = base62(int.from_bytes(secret, "big"), SECRET_LENGTH)
        key = service.format.prefix + body + checksum(body)
        assert service.format.check(key)
        assert not service.format.check(data.draw(api_key_edits(key)))


class TestJunk:
    def test_junk_never_verifies(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """Arbitrary text, bytes and objects are invalid; authenticate raises only InvalidApiKeyError."""
        _issue(engine, service, "org")

        @_examples(engine, 200, 40)
        @given(junk=junk_api_keys)
        def check(junk: object) -> None:
            with Session(engine) as session:
                result = service.verify(session, junk)
                assert not result.valid
                assert result.reason in {"malformed", "unknown"}
                with pytest.raises(InvalidApiKeyError) as raised:
                    service.authenticate(session, junk)
                assert raised.value.reason == result.reason

        check()


class TestInstants:
    def test_expiry_revocation_and_rotation_instants(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """Keys are valid until 1 µs before their expiry or rotation grace ends; revoked ones never are."""

        @_examples(engine, 20, 6)
        @given(
            lifetime=st.integers(1, 10**12).map(lambda micro: timedelta(microseconds=micro)),
            grace=st.integers(0, 10**12).map(lambda micro: timedelta(microseconds=micro)),
        )
        def check(lifetime: timedelta, grace: timedelta) -> None:
            issued_at = clock()
            _, expiring = _issue(engine, service, "org", expires=lifetime)
            revoked_id, revoked = _issue(engine, service, "org")
            rotated_id, rotated = _issue(engine, service, "org", expires=lifetime)
            with Session(engine) as session:
                service.revoke(session, "org", revoked_id, actor=HOST)
                service.rotate(session, "org", rotated_id, actor=HOST, grace=grace)
                session.commit()
            # Rotation never extends a key: it ends at the earlier of its own expiry and the grace.
            rotated_until = issued_at + min(grace, lifetime)
            one = timedelta(microseconds=1)
            for key, end in ((expiring, issued_at + lifetime), (rotated, rotated_until)):
                for instant, valid in ((end - one, True), (end, False), (end + lifetime, False)):
                    clock.set(instant)
                    with Session(engine) as session:
                        result = service.verify(session, key)
                        session.commit()
                    assert result.valid is valid
                    assert result.reason == (None if valid else "expired")
            for instant in (issued_at, issued_at + lifetime):
                clock.set(instant)
                with Session(engine) as session:
                    assert service.verify(session, revoked).reason == "revoked"
            clock.set(issued_at + timedelta(days=30))

        check()
