"""Verification as a pipeline: hasher objects tried in preference order, key kinds, and the service saying
whether a verification wrote (so that the web adapters commit exactly then)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import timedelta

import flask
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    ApiKeyService,
    ApiKeySettings,
    ApiKeyVerification,
    MembershipService,
    Role,
    TenantKit,
)
from tenantkit._tables import api_keys
from tenantkit.api_keys._format import KeyFormat, KeyKind
from tenantkit.api_keys._hashers import (
    Argon2idHasher,
    HmacSha256Hasher,
    Pepper,
    Sha256Hasher,
    build_peppers,
    choose_hasher,
)
from tenantkit.fastapi import TenantKitFastAPI
from tenantkit.flask import TenantKitFlask
from tenantkit.testing import FrozenClock

ORG = "org_1"
PEPPER = "a-pepper-of-16-bytes-or-more"
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
KEYS = st.builds(lambda _: KeyFormat().generate(), st.integers())


class TestHashers:
    """Each hasher writes today's stored format byte for byte, and matches only what it wrote."""

    @given(KEYS)
    def test_sha256_format(self, key: str) -> None:
        """``sha256$`` followed by the hex SHA-256 of the key."""
        assert Sha256Hasher().store(key) == "sha256$" + hashlib.sha256(key.encode()).hexdigest()

    @given(KEYS)
    def test_hmac_format(self, key: str) -> None:
        """``hmac-sha256$<version>$`` followed by the hex HMAC-SHA256 of the key under the pepper."""
        mac = hmac.new(PEPPER.encode(), key.encode(), hashlib.sha256).hexdigest()
        assert HmacSha256Hasher(Pepper("v1", PEPPER.encode())).store(key) == f"hmac-sha256$v1${mac}"

    @given(KEYS, KEYS)
    def test_digest_hashers_match_only_their_own_form(self, key: str, other: str) -> None:
        """A digest hasher matches its own stored form of the key, not another hasher's or another key's."""
        sha, peppered = Sha256Hasher(), HmacSha256Hasher(Pepper("v1", PEPPER.encode()))
        assert sha.matches(sha.store(key), key)
        assert peppered.matches(peppered.store(key), key)
        assert not sha.matches(peppered.store(key), key)
        assert not peppered.matches(sha.store(key), key)
        assert key == other or not sha.matches(sha.store(other), key)

    def test_argon2id_format_and_match(self) -> None:
        """``argon2id$<lookup id>`` then argon2-cffi's encoding; it verifies the key and no other."""
        key_format = KeyFormat()
        key = key_format.generate(with_lookup_id=True)
        parsed = key_format.parse(key)
        assert parsed is not None
        hasher = Argon2idHasher(CHEAP_ARGON2)
        stored = hasher.store(key)
        assert stored.startswith(f"argon2id${parsed.lookup_id}$argon2id$v=19$")
        assert hasher.matches(stored, key)
        assert not hasher.matches(stored, key_format.generate(with_lookup_id=True))
        low, high = hasher.bounds(key)
        assert low <= stored < high

    def test_preference_order(self) -> None:
        """Digest keys try the current pepper, the older ones, then SHA-256; ``hasher`` picks new keys'."""
        peppers = build_peppers({"v1": PEPPER, "v2": PEPPER + "2"}, "v2")
        hashers = choose_hasher(None, peppers)
        kinds = [type(hasher) for hasher in hashers.digests]
        assert kinds == [HmacSha256Hasher, HmacSha256Hasher, Sha256Hasher]
        versions = [
            hasher.pepper.version for hasher in hashers.digests if isinstance(hasher, HmacSha256Hasher)
        ]
        assert versions == ["v2", "v1"]
        assert hashers.current is hashers.digests[0]
        assert choose_hasher("sha256", ()).current.name == "sha256"
        assert choose_hasher("sha256", peppers).name == "sha256"
        assert choose_hasher("argon2id", ()).current.kind is KeyKind.ARGON2
        assert choose_hasher(None, ()).current.name == "sha256"


class TestKeyKind:
    """The format check answers a KeyKind, never a bare int."""

    def test_kinds(self) -> None:
        """A digest key, an argon2id key and garbage each get their own kind."""
        key_format = KeyFormat()
        assert key_format.check(key_format.generate()) is KeyKind.DIGEST
        assert key_format.check(key_format.generate(with_lookup_id=True)) is KeyKind.ARGON2
        assert key_format.check("tk_live_nope") is KeyKind.MALFORMED
        assert key_format.check(b"bytes") is KeyKind.MALFORMED


@pytest.fixture
def membership(clock: FrozenClock) -> MembershipService:
    """A membership service on the test clock."""
    return MembershipService(clock=clock)


def _issue(engine: sa.Engine, service: ApiKeyService) -> tuple[str, str]:
    with Session(engine) as session, session.begin():
        service.membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        issued = service.issue(session, ORG, "ci", actor=HOST)
    return issued.id, issued.reveal()


def _stored(engine: sa.Engine, key_id: str) -> str:
    with engine.connect() as connection:
        return str(connection.scalar(sa.select(api_keys.c.hashed_key).where(api_keys.c.id == key_id)))


class TestWroteFlag:
    """The service, not the adapter, says whether a verification wrote and needs a commit."""

    def test_last_used_write_is_reported(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """The first verification writes last_used_at; the next, within the interval, writes nothing."""
        service = ApiKeyService(membership=membership, clock=clock)
        _, key = _issue(engine, service)
        with Session(engine) as session:
            assert service.verify_and_report(session, key) == (service.verify(session, key), True)
            session.commit()
            clock.advance(timedelta(seconds=1))
            assert service.verify_and_report(session, key)[1] is False

    def test_read_only_service_writes_nothing(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """With track_last_used=False a verification of a current-hasher key writes nothing."""
        service = ApiKeyService(membership=membership, clock=clock, track_last_used=False)
        _, key = _issue(engine, service)
        with Session(engine) as session:
            verified, wrote = service.verify_and_report(session, key)
        assert verified.valid
        assert not wrote

    def test_rehash_is_reported(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """A key matched by a fallback hasher is moved to the current one, and that write is reported."""
        key_id, key = _issue(engine, ApiKeyService(membership=membership, clock=clock))
        peppered = ApiKeyService(
            membership=membership, clock=clock, peppers={"v1": PEPPER}, track_last_used=False
        )
        with Session(engine) as session:
            verified, wrote = peppered.verify_and_report(session, key)
            session.commit()
        assert verified.valid
        assert wrote
        assert _stored(engine, key_id).startswith("hmac-sha256$v1$")

    def test_refused_and_malformed_write_nothing(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """A malformed or unknown key is answered without any write."""
        service = ApiKeyService(membership=membership, clock=clock)
        _issue(engine, service)
        with Session(engine) as session:
            assert service.verify_and_report(session, "nope") == (service.verify(session, "nope"), False)
            unknown = KeyFormat().generate()
            assert service.verify_and_report(session, unknown)[1] is False

    def test_cache_hit_reports_its_write(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """A cache hit writes only when last_used_at is due, and says so."""
        service = ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(hours=1))
        _, key = _issue(engine, service)
        with Session(engine) as session:
            assert service.verify_and_report(session, key)[1] is True
            session.commit()
            assert service.verify_and_report(session, key)[1] is False
            clock.advance(timedelta(minutes=2))
            assert service.verify_and_report(session, key)[1] is True

    def test_authenticate_and_report(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """authenticate_and_report answers like authenticate, with the write flag beside it."""
        service = ApiKeyService(membership=membership, clock=clock)
        _, key = _issue(engine, service)
        with Session(engine) as session:
            verified, wrote = service.authenticate_and_report(session, key)
        assert isinstance(verified, ApiKeyVerification)
        assert verified.valid
        assert wrote


def _rehash_kits(clock: FrozenClock, engine: sa.Engine) -> tuple[TenantKit, str, str]:
    """A key issued as plain SHA-256, and a kit that tracks no last use but has a pepper to move it to."""
    kit = TenantKit(api_keys=ApiKeySettings(peppers={"v1": PEPPER}, track_last_used=False), clock=clock)
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        issued = ApiKeyService(membership=kit.members, clock=clock).issue(session, ORG, "ci", actor=HOST)
    return kit, issued.id, issued.reveal()


class TestAdaptersCommitWhatTheServiceWrote:
    """The adapters commit a verification's write even when last_used_at tracking is off."""

    def test_flask_commits_a_rehash(self, clock: FrozenClock, sqlite_engine: sa.Engine) -> None:
        """Flask's decorator commits the move of a key to the current pepper."""
        kit, key_id, key = _rehash_kits(clock, sqlite_engine)
        app = flask.Flask(__name__)
        sessions: list[Session] = []

        def session() -> Session:
            if not sessions:
                sessions.append(Session(sqlite_engine))
            return sessions[0]

        tk = TenantKitFlask(kit, session=session, current_user=None, app=app)

        @app.get("/k")
        @tk.require_api_key()
        def view() -> str:
            return "ok"

        assert app.test_client().get("/k", headers={"X-API-Key": key}).status_code == 200
        sessions[0].close()
        assert _stored(sqlite_engine, key_id).startswith("hmac-sha256$v1$")

    def test_fastapi_commits_a_rehash(self, clock: FrozenClock, sqlite_engine: sa.Engine) -> None:
        """FastAPI's dependency commits the move of a key to the current pepper."""
        kit, key_id, key = _rehash_kits(clock, sqlite_engine)

        def session() -> Iterator[Session]:
            with Session(sqlite_engine) as opened:
                yield opened

        tk = TenantKitFastAPI(kit, session=session)
        app = FastAPI()
        any_key = tk.api_key()

        @app.get("/k")
        def view(verified: ApiKeyVerification = Depends(any_key)) -> str:
            return verified.key_id or ""

        with TestClient(app) as client:
            assert client.get("/k", headers={"X-API-Key": key}).status_code == 200
        assert _stored(sqlite_engine, key_id).startswith("hmac-sha256$v1$")
