"""API keys: issuing, storage, verification, last use, peppers, argon2id, management, caching and scopes.

The contract classes take the ``engine`` fixture, so they run on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import gc
import json
import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from tenantkit import (
    HOST,
    ApiKeyService,
    ApiKeyVerification,
    CacheKey,
    InvalidApiKeyError,
    InvalidInputError,
    MembershipService,
    MissingScopeError,
    PermissionDeniedError,
    Role,
    check_scopes,
    require_scopes,
)
from tenantkit.api_keys._format import CHECKSUM_LENGTH, SECRET_LENGTH, KeyFormat, checksum
from tenantkit.api_keys._service import _MAX_RESULTS
from tenantkit.errors import ApiKeyNotFoundError, ConfigurationError
from tenantkit.events import ApiKeyDeleted, ApiKeyIssued, ApiKeyRevoked, ApiKeyRotated, EventDispatcher
from tenantkit.tables import api_keys
from tenantkit.testing import EventRecorder, FrozenClock

ORG = "org_1"
OTHER_ORG = "org_2"
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def events() -> EventDispatcher:
    return EventDispatcher()


@pytest.fixture
def recorder(events: EventDispatcher) -> EventRecorder:
    recorder = EventRecorder()
    events.subscribe(recorder)
    return recorder


@pytest.fixture
def membership(clock: FrozenClock, events: EventDispatcher) -> MembershipService:
    return MembershipService(clock=clock, events=events)


@pytest.fixture
def service(membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
    return ApiKeyService(membership=membership, clock=clock)


def issue(engine: sa.Engine, service: ApiKeyService, org: str = ORG, **kwargs: Any) -> tuple[str, str]:
    """Issue a key as the host and commit; return (key id, plaintext)."""
    with Session(engine) as session:
        issued = service.issue(session, org, kwargs.pop("name", "ci"), actor=HOST, **kwargs)
        session.commit()
    return issued.id, issued.reveal()


def verify(engine: sa.Engine, service: ApiKeyService, key: object, **kwargs: Any) -> ApiKeyVerification:
    with Session(engine) as session:
        result = service.verify(session, key, **kwargs)
        session.commit()
    return result


def stored_digest(engine: sa.Engine, key_id: str) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(sa.select(api_keys.c.hashed_key).where(api_keys.c.id == key_id)).scalar()
        )


def failing_session() -> Session:
    """A session whose every database access fails, to prove that no query runs."""

    def refuse() -> Any:
        raise AssertionError("the database was touched")

    return Session(sa.create_engine("sqlite://", creator=refuse))


@contextmanager
def count_updates(engine: sa.Engine) -> Iterator[list[str]]:
    """Collect every UPDATE statement SQLAlchemy sends to ``engine``."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE"):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)


@contextmanager
def sqlite_trace(connection: sa.Connection) -> Iterator[list[str]]:
    """Every statement SQLite runs on ``connection``'s driver connection, raw ones included."""
    seen: list[str] = []
    driver = connection.connection.dbapi_connection
    assert driver is not None
    driver.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        driver.set_trace_callback(None)


class TestKeyFormat:
    def test_shape(self) -> None:
        """A key is the prefix, 43 base62 characters of secret and a 6-character checksum of the secret."""
        key = KeyFormat("tk_test_").generate()
        assert key.startswith("tk_test_")
        body = key[len("tk_test_") :]
        assert len(body) == SECRET_LENGTH + CHECKSUM_LENGTH
        assert body.isascii()
        assert body.isalnum()
        assert checksum(body[:SECRET_LENGTH]) == body[SECRET_LENGTH:]

    def test_keys_differ(self) -> None:
        """Every generated key is new."""
        key_format = KeyFormat()
        assert len({key_format.generate() for _ in range(200)}) == 200

    @pytest.mark.parametrize("prefix", ["", "tk", "TK_live_", "tk-live_", "tk_live", "_tk_", "tk_a_b_c_", 7])
    def test_bad_prefix_refused(self, prefix: object, membership: MembershipService) -> None:
        """A prefix that could blur into the key body, or is not text, is a configuration error."""
        with pytest.raises(ConfigurationError):
            ApiKeyService(membership=membership, prefix=prefix)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "junk",
        [None, 12, b"tk_live_", "", "tk_live_", "x" * 57, "tk_live_" + "!" * 49, "tk_live_" + "é" * 49],
    )
    def test_malformed_refused_without_database(self, service: ApiKeyService, junk: object) -> None:
        """Junk is answered ``malformed`` with a session that fails on any database access."""
        with failing_session() as session:
            assert service.verify(session, junk).reason == "malformed"

    def test_typo_refused_without_database(self, service: ApiKeyService) -> None:
        """A one-character typo in a real-looking key fails the checksum before any database work."""
        key = service.format.generate()
        typo = key[:12] + ("a" if key[12] != "a" else "b") + key[13:]
        with failing_session() as session:
            assert service.verify(session, typo).reason == "malformed"

    def test_other_deployment_prefix_refused(self, membership: MembershipService) -> None:
        """A test-mode key is malformed for a live deployment."""
        live = ApiKeyService(membership=membership, prefix="tk_live_")
        test_key = KeyFormat("tk_test_").generate()
        with failing_session() as session:
            assert live.verify(session, test_key).reason == "malformed"


class TestIssue:
    def test_issued_key_verifies(self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock) -> None:
        """An issued key verifies to its organization, id, name and scopes."""
        with Session(engine) as session:
            issued = service.issue(
                session, ORG, " deploy bot ", actor=HOST, scopes=["b:write", "a:read", "a:read"]
            )
            session.commit()
        assert issued.api_key.name == "deploy bot"
        assert issued.api_key.scopes == ("a:read", "b:write")
        assert issued.api_key.created_at == clock()
        assert issued.api_key.created_by is None
        result = verify(engine, service, issued.reveal())
        assert result == ApiKeyVerification(
            valid=True, organization_id=ORG, key_id=issued.id, name="deploy bot", scopes=("a:read", "b:write")
        )

    def test_only_a_tagged_digest_is_stored(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """The row holds ``sha256$`` and a hex digest, never the key or its secret part."""
        key_id, key = issue(engine, service)
        digest = stored_digest(engine, key_id)
        assert digest.startswith("sha256$")
        assert len(digest) == len("sha256$") + 64
        with engine.connect() as connection:
            row = connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).one()
        assert all(key[8:20] not in str(value) for value in row)

    def test_secret_never_shown(
        self,
        engine: sa.Engine,
        service: ApiKeyService,
        recorder: EventRecorder,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """repr, str, model_dump, JSON, logs and events show the start of the key, never its secret."""
        caplog.set_level(logging.DEBUG, logger="tenantkit")
        with Session(engine) as session:
            issued = service.issue(session, ORG, "ci", actor=HOST)
            session.commit()
        secret = issued.reveal()[len("tk_live_") + 4 :]
        shown = [
            repr(issued),
            str(issued),
            str(issued.model_dump()),
            issued.model_dump_json(),
            caplog.text,
            *(repr(event) for event in recorder.events),
            *(event.model_dump_json() for event in recorder.events),
        ]
        assert all(secret not in text for text in shown)
        assert str(issued) == issued.reveal()[:12] + "…"
        assert "tk_live_" in repr(issued)
        [event] = recorder.of_type(ApiKeyIssued)
        assert event.start == issued.reveal()[:12]  # type: ignore[attr-defined]

    def test_expiry_as_duration_or_time(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """A timedelta counts from now; an aware datetime is taken as is, in UTC."""
        with Session(engine) as session:
            by_duration = service.issue(session, ORG, "a", actor=HOST, expires=timedelta(days=30))
            at = datetime(2030, 2, 1, 12, tzinfo=timezone(timedelta(hours=2)))
            by_time = service.issue(session, ORG, "b", actor=HOST, expires=at)
            session.commit()
        assert by_duration.api_key.expires_at == clock() + timedelta(days=30)
        assert by_time.api_key.expires_at == at
        assert by_time.api_key.expires_at.tzinfo == timezone.utc

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("expires", {"expires": datetime(2030, 6, 1)}),  # noqa: DTZ001  naive, refused on purpose
            ("expires", {"expires": datetime(2029, 1, 1, tzinfo=timezone.utc)}),
            ("expires", {"expires": timedelta(0)}),
            ("scopes", {"scopes": "reports:read"}),
            ("scopes", {"scopes": ["has space"]}),
            ("scopes", {"scopes": [":leading"]}),
            ("scopes", {"scopes": [""]}),
            ("scopes", {"scopes": [1]}),
            ("scopes", {"scopes": [f"s{n}" for n in range(65)]}),
            ("name", {"name": "  "}),
            ("organization_id", {"organization_id": ""}),
        ],
    )
    def test_bad_input_refused_before_database(
        self, service: ApiKeyService, field: str, kwargs: dict[str, Any]
    ) -> None:
        """Bad names, ids, expiries and scopes raise InvalidInputError with no database access."""
        arguments: dict[str, Any] = {"organization_id": ORG, "name": "ci", **kwargs}
        with failing_session() as session, pytest.raises(InvalidInputError) as raised:
            service.issue(
                session, arguments.pop("organization_id"), arguments.pop("name"), actor=HOST, **arguments
            )
        assert raised.value.field == field

    def test_permissions(
        self, engine: sa.Engine, service: ApiKeyService, membership: MembershipService
    ) -> None:
        """ADMIN and OWNER issue keys; MEMBER and strangers may not, and nothing is written for them."""
        with Session(engine) as session:
            membership.add(session, ORG, "owner", Role.OWNER, actor=HOST)
            membership.add(session, ORG, "admin", Role.ADMIN, actor=HOST)
            membership.add(session, ORG, "member", Role.MEMBER, actor=HOST)
            session.commit()
            assert service.issue(session, ORG, "by owner", actor="owner").api_key.created_by == "owner"
            assert service.issue(session, ORG, "by admin", actor="admin").api_key.created_by == "admin"
            for actor in ("member", "stranger"):
                with pytest.raises(PermissionDeniedError):
                    service.issue(session, ORG, "nope", actor=actor)
            session.commit()
            names = {key.name for key in service.list_keys(session, ORG, actor="member").items}
        assert names == {"by owner", "by admin"}


class TestVerify:
    def test_unknown_key(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """A well-formed key that was never issued is ``unknown``."""
        assert verify(engine, service, service.format.generate()).reason == "unknown"

    def test_expiry_is_exact(self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock) -> None:
        """A key verifies one microsecond before its expiry and is ``expired`` from that instant on."""
        _, key = issue(engine, service, expires=timedelta(hours=1))
        expiry = clock() + timedelta(hours=1)
        clock.set(expiry - timedelta(microseconds=1))
        assert verify(engine, service, key).valid
        clock.set(expiry)
        assert verify(engine, service, key).reason == "expired"

    def test_revoked(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """A revoked key is ``revoked``."""
        key_id, key = issue(engine, service)
        with Session(engine) as session:
            service.revoke(session, ORG, key_id, actor=HOST)
            session.commit()
        assert verify(engine, service, key).reason == "revoked"

    def test_other_organization_not_revealed(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """Asked for one organization, a valid or revoked key of another is plainly ``unknown``."""
        key_id, key = issue(engine, service, org=OTHER_ORG)
        assert verify(engine, service, key, organization_id=ORG).reason == "unknown"
        assert verify(engine, service, key, organization_id=OTHER_ORG).valid
        with Session(engine) as session:
            service.revoke(session, OTHER_ORG, key_id, actor=HOST)
            session.commit()
        assert verify(engine, service, key, organization_id=ORG).reason == "unknown"

    def test_connection_as_well_as_session(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """verify takes a Connection too, and leaves it in a transaction the caller ends."""
        key_id, key = issue(engine, service)
        with engine.connect() as connection:
            assert service.verify(connection, key).key_id == key_id
            assert connection.in_transaction()
            connection.commit()

    def test_authenticate(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """authenticate returns a valid result, else raises InvalidApiKeyError or MissingScopeError."""
        _, key = issue(engine, service, scopes=["reports:read"])
        with Session(engine) as session:
            assert service.authenticate(session, key, scopes=["reports:read"]).valid
            with pytest.raises(InvalidApiKeyError) as invalid:
                service.authenticate(session, key[:-1])
            assert invalid.value.reason == "malformed"
            assert invalid.value.code == "invalid_api_key"
            with pytest.raises(MissingScopeError) as missing:
                service.authenticate(session, key, scopes=["reports:read", "billing:write"])
            assert missing.value.missing == ("billing:write",)

    def test_one_query(self, sqlite_engine: sa.Engine, service: ApiKeyService) -> None:
        """A verification within the last-use interval runs exactly one statement: the indexed lookup."""
        _, key = issue(sqlite_engine, service)
        with sqlite_engine.connect() as connection:
            service.verify(connection, key)
            with sqlite_trace(connection) as statements:
                assert service.verify(connection, key).valid
        assert len(statements) == 1
        assert "WHERE api_keys.hashed_key = " in statements[0]
        with sqlite_engine.connect() as connection:
            plan = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statements[0]).all()
        assert "api_keys_hashed_key_idx" in str(plan)


class TestInstrumentation:
    def test_listeners_see_the_lookup(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """With a before_cursor_execute listener the lookup goes through SQLAlchemy, with the same answers."""
        key_id, key = issue(engine, service, expires=timedelta(hours=1), scopes=["a:read"])
        seen: list[str] = []

        def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            result = verify(engine, service, key)
            clock.advance(hours=1)
            expired = verify(engine, service, key)
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        assert (result.key_id, result.scopes, result.expires_at) == (key_id, ("a:read",), clock())
        assert expired.reason == "expired"
        assert sum("FROM api_keys" in statement and "hashed_key" in statement for statement in seen) == 2


class TestScopes:
    def test_check_and_require(self) -> None:
        """check_scopes says whether all required scopes are held; require_scopes raises the missing ones."""
        verified = ApiKeyVerification(
            valid=True, organization_id=ORG, key_id="k", name="n", scopes=("a", "b")
        )
        assert check_scopes(verified, [])
        assert check_scopes(verified, ["a", "b"])
        assert verified.has_scopes("a")
        assert not check_scopes(verified, ["a", "c"])
        require_scopes(verified, ["b"])
        with pytest.raises(MissingScopeError) as raised:
            require_scopes(verified, ["d", "c", "a"])
        assert raised.value.missing == ("c", "d")

    def test_invalid_key_holds_no_scope(self) -> None:
        """An invalid result satisfies no scope check, not even an empty one."""
        invalid = ApiKeyVerification(valid=False, reason="revoked")
        assert not check_scopes(invalid, [])
        with pytest.raises(InvalidApiKeyError) as raised:
            require_scopes(invalid, [])
        assert raised.value.reason == "revoked"


class TestLastUsed:
    def test_written_once_per_interval(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """Verifications within an interval write last_used_at once, then once after it; updated_at stays."""
        key_id, key = issue(engine, service)
        start = clock()
        with count_updates(engine) as updates, engine.connect() as connection:
            for _ in range(50):
                assert service.verify(connection, key).valid
                clock.advance(seconds=1)
            connection.commit()
            assert len(updates) == 1
            for _ in range(20):
                assert service.verify(connection, key).valid
                clock.advance(seconds=1)
            connection.commit()
        assert len(updates) == 2
        with Session(engine) as session:
            metadata = service.get(session, ORG, key_id, actor=HOST)
        # Written again once more than an interval has passed: at 61 s, the first reading after 60 s.
        assert metadata.last_used_at == start + timedelta(seconds=61)
        assert metadata.updated_at == start

    def test_interval_is_configurable(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """With a 5-second interval, 13 verifications a second apart write three times (at 0, 6 and 12 s)."""
        service = ApiKeyService(membership=membership, clock=clock, last_used_interval=timedelta(seconds=5))
        _, key = issue(engine, service)
        with count_updates(engine) as updates, engine.connect() as connection:
            for _ in range(13):
                service.verify(connection, key)
                clock.advance(seconds=1)
            connection.commit()
        assert len(updates) == 3

    def test_tracking_off(self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock) -> None:
        """With track_last_used=False verification never writes."""
        service = ApiKeyService(membership=membership, clock=clock, track_last_used=False)
        _, key = issue(engine, service)
        with count_updates(engine) as updates:
            for _ in range(3):
                assert verify(engine, service, key).valid
                clock.advance(minutes=5)
        assert updates == []

    def test_cached_verifications_write_once_per_interval(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """Cache hits keep last_used_at current too, at most once per interval."""
        service = ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(minutes=10))
        _, key = issue(engine, service)
        with count_updates(engine) as updates, engine.connect() as connection:
            for _ in range(150):
                assert service.verify(connection, key).valid
                clock.advance(seconds=1)
            connection.commit()
        assert len(updates) == 3


class TestPeppers:
    PEPPERS: ClassVar[dict[str, str | bytes]] = {
        "v1": "first pepper, 16+ bytes",
        "v2": b"second pepper, 16+ bytes",
    }

    def test_pepper_digest_tagged_with_version(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """With a pepper, keys are stored as ``hmac-sha256$<version>$<hex>`` and verify."""
        service = ApiKeyService(membership=membership, clock=clock, peppers={"v1": self.PEPPERS["v1"]})
        key_id, key = issue(engine, service)
        assert stored_digest(engine, key_id).startswith("hmac-sha256$v1$")
        assert verify(engine, service, key).valid

    def test_old_pepper_verifies_and_moves_to_current(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """A key stored under an old pepper, or none, verifies and is re-digested to the current one."""
        unpeppered = ApiKeyService(membership=membership, clock=clock)
        old = ApiKeyService(membership=membership, clock=clock, peppers={"v1": self.PEPPERS["v1"]})
        rotated = ApiKeyService(membership=membership, clock=clock, peppers=self.PEPPERS, current_pepper="v2")
        plain_id, plain_key = issue(engine, unpeppered)
        old_id, old_key = issue(engine, old)
        for key_id, key in ((plain_id, plain_key), (old_id, old_key)):
            assert verify(engine, rotated, key).key_id == key_id
            assert stored_digest(engine, key_id).startswith("hmac-sha256$v2$")
            assert verify(engine, rotated, key).key_id == key_id
        assert verify(engine, old, old_key).reason == "unknown"

    def test_wrong_pepper_does_not_verify(
        self, engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """A key stored under one pepper secret is unknown to a service with another secret for it."""
        service = ApiKeyService(membership=membership, clock=clock, peppers={"v1": self.PEPPERS["v1"]})
        impostor = ApiKeyService(membership=membership, clock=clock, peppers={"v1": "another secret of 16+"})
        _, key = issue(engine, service)
        assert verify(engine, impostor, key).reason == "unknown"

    @pytest.mark.parametrize(
        "settings",
        [
            {"peppers": {"v1": "short"}},
            {"peppers": {"v 1": "long enough pepper secret"}},
            {"peppers": {"v1": "long enough pepper 1", "v2": "long enough pepper 2"}},
            {"peppers": {"v1": "long enough pepper 1"}, "current_pepper": "v9"},
            {"current_pepper": "v1"},
            {"hasher": "hmac-sha256"},
            {"hasher": "md5"},
            {"cache_ttl": timedelta(0)},
            {"last_used_interval": timedelta(seconds=-1)},
        ],
    )
    def test_bad_configuration(self, membership: MembershipService, settings: dict[str, Any]) -> None:
        """Unusable hasher, pepper or cache settings are refused when the service is built."""
        with pytest.raises(ConfigurationError):
            ApiKeyService(membership=membership, **settings)

    def test_repr_hides_peppers(self, membership: MembershipService) -> None:
        """The service's repr names pepper versions, never their secrets."""
        service = ApiKeyService(membership=membership, peppers=self.PEPPERS, current_pepper="v2")
        assert "v2" in repr(service)
        assert "pepper, 16+" not in repr(service)


class TestArgon2:
    @pytest.fixture
    def argon(self, membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
        return ApiKeyService(
            membership=membership, clock=clock, hasher="argon2id", argon2_hasher=CHEAP_ARGON2
        )

    def test_argon2_keys_verify_by_lookup_id(self, engine: sa.Engine, argon: ApiKeyService) -> None:
        """An argon2id key carries a lookup id, is stored as ``argon2id$<id>$argon2id$…`` and verifies."""
        key_id, key = issue(engine, argon)
        parsed = argon.format.parse(key)
        assert parsed is not None
        assert parsed.lookup_id is not None
        assert stored_digest(engine, key_id).startswith(f"argon2id${parsed.lookup_id}$argon2id$v=19$")
        assert verify(engine, argon, key).key_id == key_id

    def test_same_lookup_id_other_secret_refused(self, engine: sa.Engine, argon: ApiKeyService) -> None:
        """A well-formed key with a real lookup id but another secret is ``unknown``."""
        _, key = issue(engine, argon)
        prefix_and_id = key[: len("tk_live_") + 16]
        forged_secret = "A" * SECRET_LENGTH
        body = key[len("tk_live_") : len("tk_live_") + 16] + forged_secret
        forged = prefix_and_id + forged_secret + checksum(body)
        assert argon.format.check(forged)
        assert verify(engine, argon, forged).reason == "unknown"

    def test_case_variant_of_lookup_id_refused(self, engine: sa.Engine, argon: ApiKeyService) -> None:
        """A lookup id differing only in case (equal under MariaDB's collation) does not match."""
        start = len("tk_live_")
        swapped = lookup_id = ""
        while swapped == lookup_id:  # a lookup id without letters (odds about 1e-13) has no case variant
            _, key = issue(engine, argon)
            lookup_id = key[start : start + 16]
            swapped = lookup_id.swapcase()
        body = swapped + key[start + 16 : -CHECKSUM_LENGTH]
        variant = key[:start] + body + checksum(body)
        assert verify(engine, argon, variant).reason == "unknown"

    def test_digest_keys_still_verify(
        self, engine: sa.Engine, argon: ApiKeyService, service: ApiKeyService
    ) -> None:
        """Switching a deployment to argon2id leaves its SHA-256 keys valid."""
        key_id, key = issue(engine, service)
        assert verify(engine, argon, key).key_id == key_id


class TestManage:
    def test_list_pages_newest_first_without_digests(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """Keys are listed newest first in pages, as metadata with no digest or secret."""
        ids = []
        for number in range(5):
            ids.append(issue(engine, service, name=f"key {number}")[0])
            clock.advance(seconds=1)
        issue(engine, service, org=OTHER_ORG)
        with Session(engine) as session:
            first = service.list_keys(session, ORG, actor=HOST, limit=2)
            assert first.next_cursor is not None
            second = service.list_keys(session, ORG, actor=HOST, limit=2, cursor=first.next_cursor)
            assert second.next_cursor is not None
            third = service.list_keys(session, ORG, actor=HOST, limit=2, cursor=second.next_cursor)
        assert third.next_cursor is None
        listed = [key.id for page in (first, second, third) for key in page.items]
        assert listed == list(reversed(ids))
        dumped = json.dumps([page.model_dump(mode="json") for page in (first, second, third)])
        assert "sha256$" not in dumped
        assert "hashed_key" not in dumped

    def test_list_ties_broken_by_id(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """Keys created at the same instant are all listed exactly once across pages."""
        ids = {issue(engine, service, name=f"k{n}")[0] for n in range(5)}
        seen: list[str] = []
        cursor = None
        with Session(engine) as session:
            while True:
                page = service.list_keys(session, ORG, actor=HOST, limit=2, cursor=cursor)
                seen.extend(key.id for key in page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert sorted(seen) == sorted(ids)

    def test_list_without_revoked(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """include_revoked=False leaves revoked keys out."""
        revoked_id, _ = issue(engine, service)
        kept_id, _ = issue(engine, service)
        with Session(engine) as session:
            service.revoke(session, ORG, revoked_id, actor=HOST)
            keys = service.list_keys(session, ORG, actor=HOST, include_revoked=False).items
        assert [key.id for key in keys] == [kept_id]

    def test_bad_cursor(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """A cursor not made by a previous page is refused."""
        with Session(engine) as session, pytest.raises(InvalidInputError):
            service.list_keys(session, ORG, actor=HOST, cursor="bm90IGEgY3Vyc29y")

    def test_other_organization_invisible(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """A key id of another organization is not found by get, revoke, rotate or delete, and stays valid."""
        key_id, key = issue(engine, service, org=OTHER_ORG)
        with Session(engine) as session:
            for method in (service.get, service.revoke, service.rotate, service.delete):
                with pytest.raises(ApiKeyNotFoundError):
                    method(session, ORG, key_id, actor=HOST)
            session.commit()
        assert verify(engine, service, key).valid

    def test_member_may_read_not_manage(
        self, engine: sa.Engine, service: ApiKeyService, membership: MembershipService
    ) -> None:
        """A MEMBER lists and reads key metadata but cannot revoke, rotate or delete."""
        key_id, _ = issue(engine, service)
        with Session(engine) as session:
            membership.add(session, ORG, "member", Role.MEMBER, actor=HOST)
            assert service.get(session, ORG, key_id, actor="member").id == key_id
            for method in (service.revoke, service.rotate, service.delete):
                with pytest.raises(PermissionDeniedError):
                    method(session, ORG, key_id, actor="member")
            with pytest.raises(PermissionDeniedError):
                service.list_keys(session, ORG, actor="stranger")

    def test_revoke_is_idempotent(
        self, engine: sa.Engine, service: ApiKeyService, recorder: EventRecorder, clock: FrozenClock
    ) -> None:
        """Revoking twice keeps the first revocation time and announces it once."""
        key_id, _ = issue(engine, service)
        with Session(engine) as session:
            first = service.revoke(session, ORG, key_id, actor=HOST)
            clock.advance(minutes=1)
            second = service.revoke(session, ORG, key_id, actor=HOST)
            session.commit()
        assert first.revoked_at == second.revoked_at
        assert second.revoked
        assert len(recorder.of_type(ApiKeyRevoked)) == 1

    def test_delete(self, engine: sa.Engine, service: ApiKeyService, recorder: EventRecorder) -> None:
        """A deleted key is gone: unknown to verify, not found afterwards."""
        key_id, key = issue(engine, service)
        with Session(engine) as session:
            service.delete(session, ORG, key_id, actor=HOST)
            session.commit()
            with pytest.raises(ApiKeyNotFoundError):
                service.delete(session, ORG, key_id, actor=HOST)
        assert verify(engine, service, key).reason == "unknown"
        assert [event.key_id for event in recorder.of_type(ApiKeyDeleted)] == [key_id]  # type: ignore[attr-defined]

    def test_rotate_with_grace(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock, recorder: EventRecorder
    ) -> None:
        """The new key works at once; the old one until now + grace, then it is expired."""
        old_id, old_key = issue(engine, service, scopes=["a:read"])
        with Session(engine) as session:
            rotated = service.rotate(session, ORG, old_id, actor=HOST, grace=timedelta(hours=1))
            session.commit()
        assert rotated.api_key.rotated_from == old_id
        assert rotated.api_key.scopes == ("a:read",)
        new = verify(engine, service, rotated.reveal())
        assert new.key_id == rotated.id
        until = clock() + timedelta(hours=1)
        clock.set(until - timedelta(microseconds=1))
        assert verify(engine, service, old_key).valid
        clock.set(until)
        assert verify(engine, service, old_key).reason == "expired"
        assert verify(engine, service, rotated.reveal()).valid
        [event] = recorder.of_type(ApiKeyRotated)
        assert event.old_key_valid_until == until  # type: ignore[attr-defined]

    def test_rotation_never_extends(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """An old key expiring before the grace ends keeps its own expiry; the new key inherits it."""
        old_id, old_key = issue(engine, service, expires=timedelta(minutes=10))
        with Session(engine) as session:
            rotated = service.rotate(session, ORG, old_id, actor=HOST, grace=timedelta(days=1))
            old = service.get(session, ORG, old_id, actor=HOST)
            session.commit()
        assert old.expires_at == clock() + timedelta(minutes=10)
        assert old.replaced_at == clock()
        assert rotated.api_key.expires_at == clock() + timedelta(minutes=10)
        clock.advance(minutes=10)
        assert verify(engine, service, old_key).reason == "expired"

    def test_rotate_zero_grace(self, engine: sa.Engine, service: ApiKeyService) -> None:
        """With no grace the old key stops at once."""
        old_id, old_key = issue(engine, service)
        with Session(engine) as session:
            service.rotate(session, ORG, old_id, actor=HOST, grace=timedelta(0))
            session.commit()
        assert verify(engine, service, old_key).reason == "expired"

    def test_rotate_refusals(self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock) -> None:
        """Revoked, expired and already-rotated keys cannot be rotated."""
        revoked_id, _ = issue(engine, service)
        expired_id, _ = issue(engine, service, expires=timedelta(seconds=1))
        rotated_id, _ = issue(engine, service)
        with Session(engine) as session:
            service.revoke(session, ORG, revoked_id, actor=HOST)
            service.rotate(session, ORG, rotated_id, actor=HOST)
            clock.advance(seconds=1)
            for key_id in (revoked_id, expired_id, rotated_id):
                with pytest.raises(InvalidInputError):
                    service.rotate(session, ORG, key_id, actor=HOST)


class TestCache:
    @pytest.fixture
    def cached(self, membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
        return ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(seconds=30))

    def test_hit_runs_no_query(self, sqlite_engine: sa.Engine, cached: ApiKeyService) -> None:
        """A cached verification runs no statement at all."""
        _, key = issue(sqlite_engine, cached)
        with sqlite_engine.connect() as connection:
            assert cached.verify(connection, key).valid
            with sqlite_trace(connection) as statements:
                assert cached.verify(connection, key).valid
        assert statements == []

    def test_expiry_checked_on_every_hit(
        self, engine: sa.Engine, cached: ApiKeyService, clock: FrozenClock
    ) -> None:
        """A cached key is expired from its expiry instant, whatever the cache's time to live."""
        _, key = issue(engine, cached, expires=timedelta(seconds=10))
        assert verify(engine, cached, key).valid
        clock.advance(seconds=10)
        assert verify(engine, cached, key).reason == "expired"

    def test_revoke_evicts_at_once(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """Revoking in this process makes the next verification see it, without waiting for the TTL."""
        key_id, key = issue(engine, cached)
        assert verify(engine, cached, key).valid
        with Session(engine) as session:
            cached.revoke(session, ORG, key_id, actor=HOST)
            session.commit()
        assert verify(engine, cached, key).reason == "revoked"

    def test_rotate_and_delete_evict(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """Rotating with no grace and deleting evict the key from the cache too."""
        rotated_id, rotated_key = issue(engine, cached)
        deleted_id, deleted_key = issue(engine, cached)
        assert verify(engine, cached, rotated_key).valid
        assert verify(engine, cached, deleted_key).valid
        with Session(engine) as session:
            cached.rotate(session, ORG, rotated_id, actor=HOST, grace=timedelta(0))
            cached.delete(session, ORG, deleted_id, actor=HOST)
            session.commit()
        assert verify(engine, cached, rotated_key).reason == "expired"
        assert verify(engine, cached, deleted_key).reason == "unknown"

    def test_rolled_back_revoke(self, engine: sa.Engine, cached: ApiKeyService) -> None:
        """A revocation that is rolled back leaves the key valid (evicting early is harmless)."""
        key_id, key = issue(engine, cached)
        assert verify(engine, cached, key).valid
        with Session(engine) as session:
            cached.revoke(session, ORG, key_id, actor=HOST)
            session.rollback()
        assert verify(engine, cached, key).valid

    def test_refill_during_revocation_is_evicted_on_commit(
        self, engine: sa.Engine, cached: ApiKeyService
    ) -> None:
        """A verification between an uncommitted revocation and its commit cannot keep a stale entry."""
        key_id, key = issue(engine, cached)
        # Used once already, so the verification below has no last_used_at to write (the row is locked).
        assert verify(engine, cached, key).valid
        with Session(engine) as revoking:
            cached.revoke(revoking, ORG, key_id, actor=HOST)
            revoking.flush()
            assert verify(engine, cached, key).valid
            revoking.commit()
        assert verify(engine, cached, key).reason == "revoked"

    def test_ttl_bounds_staleness(
        self,
        sqlite_engine: sa.Engine,
        cached: ApiKeyService,
        membership: MembershipService,
        clock: FrozenClock,
    ) -> None:
        """A revocation by another process is seen once the entry's time to live has run out."""
        key_id, key = issue(sqlite_engine, cached)
        assert verify(sqlite_engine, cached, key).valid
        other_process = ApiKeyService(membership=membership, clock=clock, events=EventDispatcher())
        with Session(sqlite_engine) as session:
            other_process.revoke(session, ORG, key_id, actor=HOST)
            session.commit()
        assert verify(sqlite_engine, cached, key).valid
        clock.advance(seconds=30)
        assert verify(sqlite_engine, cached, key).reason == "revoked"

    def test_bounded(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """The cache keeps at most cache_size entries, keyed by digest and never by plaintext."""
        service = ApiKeyService(
            membership=membership, clock=clock, cache_ttl=timedelta(minutes=1), cache_size=2
        )
        keys = [issue(sqlite_engine, service)[1] for _ in range(3)]
        for key in keys:
            assert verify(sqlite_engine, service, key).valid
        cache = service._cache
        assert cache is not None
        assert len(cache) == 2
        assert all(stored.startswith("sha256$") for stored in cache._entries)
        assert not any(key in cache._entries for key in keys)

    def test_services_built_per_request_do_not_pile_up(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """Cached services built and dropped repeatedly leave nothing on the dispatcher and are freed."""
        events = EventDispatcher()
        before = len(events._listeners)
        survivors = []
        for _ in range(20):
            service = ApiKeyService(
                membership=membership, clock=clock, events=events, cache_ttl=timedelta(seconds=30)
            )
            survivors.append(weakref.ref(service))
            del service
        gc.collect()
        assert [ref for ref in survivors if ref() is not None] == []
        assert len(events._listeners) == before
        assert len(events.caches) == 0

    def test_live_service_still_evicts_after_others_are_freed(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """Dropping other services on the same dispatcher leaves a live service's eviction working."""
        events = EventDispatcher()
        live = ApiKeyService(
            membership=membership, clock=clock, events=events, cache_ttl=timedelta(minutes=1)
        )
        ApiKeyService(membership=membership, clock=clock, events=events, cache_ttl=timedelta(minutes=1))
        gc.collect()
        key_id, key = issue(sqlite_engine, live)
        assert verify(sqlite_engine, live, key).valid
        other_process = ApiKeyService(membership=membership, clock=clock, events=EventDispatcher())
        with Session(sqlite_engine) as session:
            other_process.revoke(session, ORG, key_id, actor=HOST)
            session.commit()
        assert verify(sqlite_engine, live, key).valid  # still cached: the revocation was elsewhere
        events.invalidator.invalidate([CacheKey.api_key(ORG, key_id)])
        assert verify(sqlite_engine, live, key).reason == "revoked"


class TestVerifyCached:
    """``verify_cached`` answers from memory alone, and only when no database work is due."""

    @pytest.fixture
    def cached(self, membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
        return ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(seconds=30))

    def test_malformed_is_refused_even_without_cache(self, service: ApiKeyService) -> None:
        """A malformed key is refused from memory, with or without a cache."""
        assert service.verify_cached("not-a-key") == ApiKeyVerification(valid=False, reason="malformed")

    def test_without_cache_the_database_must_answer(
        self, sqlite_engine: sa.Engine, service: ApiKeyService
    ) -> None:
        """With the cache off, a well-formed key is never answered from memory."""
        _, key = issue(sqlite_engine, service)
        assert verify(sqlite_engine, service, key).valid
        assert service.verify_cached(key) is None

    def test_answers_a_hit_like_verify(self, sqlite_engine: sa.Engine, cached: ApiKeyService) -> None:
        """After one verification the memory answer equals verify's; another organization gets unknown."""
        _, key = issue(sqlite_engine, cached)
        assert cached.verify_cached(key) is None, "not cached before its first verification"
        first = verify(sqlite_engine, cached, key)
        assert cached.verify_cached(key) == first
        assert cached.verify_cached(key, organization_id=OTHER_ORG) == ApiKeyVerification(
            valid=False, reason="unknown"
        )

    def test_expiry_and_revocation(
        self, sqlite_engine: sa.Engine, cached: ApiKeyService, clock: FrozenClock
    ) -> None:
        """Expiry is checked at every call, and a revocation in this process empties the entry at once."""
        _, expiring = issue(sqlite_engine, cached, expires=timedelta(seconds=10))
        revoked_id, revoked = issue(sqlite_engine, cached)
        assert verify(sqlite_engine, cached, expiring).valid
        assert verify(sqlite_engine, cached, revoked).valid
        with Session(sqlite_engine) as session:
            cached.revoke(session, ORG, revoked_id, actor=HOST)
            session.commit()
        assert cached.verify_cached(revoked) is None
        clock.advance(seconds=10)
        assert cached.verify_cached(expiring) == ApiKeyVerification(valid=False, reason="expired")

    def test_a_due_last_used_write_goes_to_the_database(
        self, sqlite_engine: sa.Engine, cached: ApiKeyService, clock: FrozenClock
    ) -> None:
        """When ``last_used_at`` is due for its write, the memory answer steps aside for ``verify``."""
        _, key = issue(sqlite_engine, cached)
        assert verify(sqlite_engine, cached, key).valid
        clock.advance(seconds=20)
        assert cached.verify_cached(key) is not None
        clock.advance(seconds=41)
        assert cached.verify_cached(key) is None
        assert verify(sqlite_engine, cached, key).valid
        assert cached.verify_cached(key) is not None


class TestResultReuse:
    def test_changed_expiry_is_reported(
        self, engine: sa.Engine, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """A key whose expiry changes (rotated out) reports the new expiry, not a result built before."""
        key_id, key = issue(engine, service)
        assert verify(engine, service, key).expires_at is None
        with Session(engine) as session:
            service.rotate(session, ORG, key_id, actor=HOST, grace=timedelta(hours=1))
            session.commit()
        assert verify(engine, service, key).expires_at == clock() + timedelta(hours=1)

    def test_results_are_shared_and_bounded(self, sqlite_engine: sa.Engine, service: ApiKeyService) -> None:
        """Verifying one key twice hands out equal results, and the kept results stay within their bound."""
        _, key = issue(sqlite_engine, service)
        first, second = verify(sqlite_engine, service, key), verify(sqlite_engine, service, key)
        assert first == second
        assert len(service._results) <= _MAX_RESULTS


class TestAsync:
    @pytest.mark.anyio
    async def test_run_sync(self, async_engine: AsyncEngine, service: ApiKeyService) -> None:
        """Async callers issue and verify through AsyncSession.run_sync, on aiosqlite and psycopg async."""
        async with AsyncSession(async_engine) as session:
            issued = await session.run_sync(service.issue, ORG, "async", actor=HOST, scopes=["a:read"])
            await session.commit()
        async with AsyncSession(async_engine) as session:
            for _ in range(3):
                result = await session.run_sync(service.verify, issued.reveal())
                assert (result.key_id, result.scopes) == (issued.id, ("a:read",))
            unknown = await session.run_sync(service.verify, service.format.generate())
            await session.commit()
        assert unknown.reason == "unknown"
