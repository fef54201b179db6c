"""Usage credits, rate limits and bound keys (revision 0010): what a verification checks beyond the row.

Credits are spent by one conditional UPDATE in a transaction of its own; rate limits count in memory or on
Redis (the shared server under a fresh prefix per run, and a private ``redis-server`` that the test stops);
bindings compare the client the adapters read under the trusted-proxy setting.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import (
    HOST,
    ApiKeyService,
    CustomRole,
    MembershipService,
    PermissionRegistry,
    Permissions,
    Role,
)
from tenantkit._http import complete_on_engine
from tenantkit.api_keys import ApiKeyLimits, ApiKeySubject, ClientInfo, PendingVerification, RateLimiter
from tenantkit.api_keys._limits import constraints_for
from tenantkit.errors import InvalidInputError, RateLimiterUnavailableError
from tenantkit.events import EventDispatcher
from tenantkit.testing import FrozenClock
from tests.databases import IN_CI, unavailable

ORG = "org_1"
THUMBPRINT = hashlib.sha256(b"a client certificate").hexdigest()
REDIS_URL = "redis://127.0.0.1:6379/0"

heavy = pytest.mark.concurrency


@pytest.fixture
def membership(clock: FrozenClock) -> MembershipService:
    return MembershipService(clock=clock, events=EventDispatcher())


@pytest.fixture
def service(membership: MembershipService, clock: FrozenClock) -> ApiKeyService:
    return ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(minutes=5))


def owner(engine: sa.Engine, membership: MembershipService, *users: tuple[str, Role]) -> None:
    with tenantkit.transaction(engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        for user, role in users:
            membership.add(session, ORG, user, role, actor=HOST)


def issue(engine: sa.Engine, service: ApiKeyService, **options: object) -> tuple[str, str]:
    with tenantkit.transaction(engine) as session:
        issued = service.issue(session, ORG, "device", actor="alice", **options)  # type: ignore[arg-type]
    return issued.id, issued.reveal()


def verify(
    engine: sa.Engine, service: ApiKeyService, key: str, **options: object
) -> tenantkit.ApiKeyVerification:
    with Session(engine) as session:
        verified, wrote = service.verify_and_report(session, key, **options)  # type: ignore[arg-type]
        if wrote:
            session.commit()
    return verified


def remaining(engine: sa.Engine, key_id: str) -> int | None:
    with engine.connect() as connection:
        left: int | None = connection.execute(
            sa.select(tenantkit.tables.api_keys.c.credits_remaining).where(
                tenantkit.tables.api_keys.c.id == key_id
            )
        ).scalar_one()
    return left


class TestCredits:
    def test_each_verification_spends_and_the_last_one_says_what_is_left(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """A key with 3 credits verifies 3 times (cached or not), then answers ``usage_exceeded`` with 0."""
        owner(engine, membership)
        key_id, key = issue(engine, service, limits=ApiKeyLimits(credits=3))

        answers = [verify(engine, service, key) for _ in range(4)]

        assert [answer.credits_remaining for answer in answers[:3]] == [2, 1, 0]
        assert all(answer.valid for answer in answers[:3])
        assert (answers[3].valid, answers[3].reason, answers[3].credits_remaining) == (
            False,
            "usage_exceeded",
            0,
        )
        assert answers[3].retry_after is None  # never refilled
        assert remaining(engine, key_id) == 0

    def test_the_cost_is_the_callers_and_zero_only_checks(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """``cost=5`` spends five; a cost above what is left refuses and spends nothing; ``cost=0`` checks."""
        owner(engine, membership)
        key_id, key = issue(engine, service, limits={"credits": 7})

        assert verify(engine, service, key, cost=5).credits_remaining == 2
        refused = verify(engine, service, key, cost=3)
        assert (refused.reason, refused.credits_remaining) == ("usage_exceeded", 2)
        assert verify(engine, service, key, cost=0).credits_remaining == 2
        assert remaining(engine, key_id) == 2
        with pytest.raises(InvalidInputError):
            verify(engine, service, key, cost=-1)

    def test_the_spend_is_committed_on_its_own_whatever_the_caller_does(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """The decrement is committed in its own transaction: a caller that rolls back keeps it spent (the
        documented policy: a request that fails afterwards is not refunded by itself)."""
        if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
            pytest.skip("in-memory SQLite spends on the caller's connection")
        owner(engine, membership)
        key_id, key = issue(engine, service, limits=ApiKeyLimits(credits=2))

        with Session(engine) as session:
            assert service.verify(session, key).credits_remaining == 1
            session.rollback()

        assert remaining(engine, key_id) == 1

    def test_admins_set_and_add_credits_atomically(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """``set_credits`` gives an unlimited key a limit; ``add_credits`` adds in SQL and floors at zero."""
        owner(engine, membership, ("mia", Role.MEMBER))
        key_id, key = issue(engine, service)
        with tenantkit.transaction(engine) as session, pytest.raises(InvalidInputError):
            service.add_credits(session, ORG, key_id, 5, actor="alice")
        assert verify(engine, service, key).credits_remaining is None  # unlimited, cached
        with tenantkit.transaction(engine) as session:
            assert service.set_credits(session, ORG, key_id, 1, actor="alice").limits is not None
        assert verify(engine, service, key).credits_remaining == 0  # the cache entry was evicted
        assert verify(engine, service, key).reason == "usage_exceeded"
        with tenantkit.transaction(engine) as session:
            service.add_credits(session, ORG, key_id, 4, actor="alice")
            key_after = service.add_credits(session, ORG, key_id, -1, actor="alice")
        assert key_after.limits is not None
        assert key_after.limits.credits == 3
        with tenantkit.transaction(engine) as session:
            assert service.add_credits(session, ORG, key_id, -100, actor=HOST).limits.credits == 0  # type: ignore[union-attr]
        with tenantkit.transaction(engine) as session, pytest.raises(tenantkit.PermissionDeniedError):
            service.set_credits(session, ORG, key_id, 100, actor="mia")

    def test_refill_happens_at_the_period_boundary(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """A key refilled to 2 per day is exhausted until midnight UTC, then full again (lazily)."""
        owner(engine, membership)
        clock.set(datetime(2030, 1, 1, 22, 0, tzinfo=timezone.utc))
        key_id, key = issue(engine, service, limits=ApiKeyLimits(refill_amount=2, refill_period="day"))

        assert [verify(engine, service, key).credits_remaining for _ in range(2)] == [1, 0]
        refused = verify(engine, service, key)
        assert (refused.reason, refused.retry_after) == ("usage_exceeded", 2 * 3600)
        clock.set(datetime(2030, 1, 1, 23, 59, 59, 999999, tzinfo=timezone.utc))
        assert verify(engine, service, key).reason == "usage_exceeded"

        clock.set(datetime(2030, 1, 2, 0, 0, tzinfo=timezone.utc))
        answers = [verify(engine, service, key) for _ in range(3)]
        assert [(answer.valid, answer.credits_remaining) for answer in answers] == [
            (True, 1),
            (True, 0),
            (False, 0),
        ]
        assert remaining(engine, key_id) == 0

    def test_monthly_refill(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService, clock: FrozenClock
    ) -> None:
        """A monthly refill resets on the 1st (UTC), not 30 days later."""
        owner(engine, membership)
        clock.set(datetime(2030, 2, 27, tzinfo=timezone.utc))
        _, key = issue(engine, service, limits=ApiKeyLimits(refill_amount=1, refill_period="month"))
        assert verify(engine, service, key).valid
        assert verify(engine, service, key).retry_after == 2 * 24 * 3600
        clock.set(datetime(2030, 3, 1, tzinfo=timezone.utc))
        assert verify(engine, service, key).valid

    @heavy
    def test_fifty_threads_spend_twenty_credits_exactly_once_each(
        self, server_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """50 threads verify a key with 20 credits at once: exactly 20 are accepted, none twice, 0 left."""
        service = ApiKeyService(membership=membership, clock=clock, cache_ttl=timedelta(minutes=5))
        owner(server_engine, membership)
        key_id, key = issue(server_engine, service, limits=ApiKeyLimits(credits=20))
        # As the adapters' database= verifies: one connection each, which the spending uses too.
        engine = sa.create_engine(server_engine.url, pool_size=50, max_overflow=0)
        barrier = threading.Barrier(50)
        answers: list[tenantkit.ApiKeyVerification] = []
        lock = threading.Lock()

        def worker() -> None:
            barrier.wait()
            pending = service.begin_verification(key)
            assert isinstance(pending, PendingVerification)
            answer = complete_on_engine(pending, engine)
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=worker) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        accepted = [answer for answer in answers if answer.valid]
        assert len(accepted) == 20
        assert sorted(answer.credits_remaining or 0 for answer in accepted) == list(range(20))
        assert {answer.reason for answer in answers if not answer.valid} == {"usage_exceeded"}
        assert remaining(server_engine, key_id) == 0
        engine.dispose()


class TestOneColumn:
    """A verification reads one column of revision 0010, ``constraints``: ``NULL`` for a key without limits,
    and otherwise everything the guard needs, written with the columns it summarizes."""

    def test_the_lookup_reads_constraints_and_no_other_new_column(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """The verify lookup selects ``constraints`` and none of the other six columns of 0010 (the credits
        left come back from the spending UPDATE, the subject from ``constraints``)."""
        owner(engine, membership)
        _, key = issue(engine, service, subject=ApiKeySubject.device("SN-1"), limits={"credits": 3})
        seen: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            seen.append(statement)

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            verified = verify(engine, service, key)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        assert (verified.subject_type, verified.subject_id, verified.credits_remaining) == (
            "device",
            "SN-1",
            2,
        )
        lookup = next(statement for statement in seen if "hashed_key" in statement and "SELECT" in statement)
        selected = lookup.split("FROM")[0]
        assert "constraints" in selected
        others = ("subject_type", "subject_id", "credits_remaining", "refill_amount", "refill_period")
        assert not [column for column in (*others, "credits_refilled_at") if column in selected]

    def test_constraints_agree_with_the_key_at_every_write(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """Issue, rotation and ``set_credits`` store ``constraints_for(subject, limits)`` of the key as
        listed: SQL ``NULL`` for a plain key, the subject for a device key, and ``credits`` once a key has
        them."""
        owner(engine, membership)
        plain, _ = issue(engine, service)
        device, _ = issue(engine, service, subject=ApiKeySubject.device("SN-2"))
        metered, _ = issue(engine, service, limits={"credits": 5, "rate_limits": ["10/minute"]})
        with tenantkit.transaction(engine) as session:
            rotated = service.rotate(session, ORG, metered, actor="alice").id
            service.set_credits(session, ORG, device, 7, actor="alice")

        table = tenantkit.tables.api_keys
        with tenantkit.transaction(engine) as session:
            for key_id in (plain, device, metered, rotated):
                key = service.get(session, ORG, key_id, actor="alice")
                stored = session.execute(
                    sa.select(table.c.constraints, table.c.constraints.is_(None)).where(table.c.id == key_id)
                ).one()
                assert stored[0] == constraints_for(key.subject, key.limits)
                assert bool(stored[1]) == (key_id == plain)  # SQL NULL, not JSON null
        assert constraints_for(ApiKeySubject.device("SN-2"), ApiKeyLimits(credits=7)) == {
            "subject_type": "device",
            "subject_id": "SN-2",
            "credits": True,
        }


class TestRateLimits:
    def test_memory_limits_refuse_with_when_to_retry(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """``3/minute``: three pass, the fourth is ``rate_limited`` with ``retry_after`` and the state,
        another key has its own counter (keyed by key id)."""
        service = ApiKeyService(
            membership=membership, clock=clock, cache_ttl=timedelta(minutes=5), rate_limiter=RateLimiter()
        )
        owner(sqlite_engine, membership)
        _, key = issue(sqlite_engine, service, limits=ApiKeyLimits(rate_limits=["3/minute", "100/hour"]))
        _, other = issue(sqlite_engine, service, limits=ApiKeyLimits(rate_limits=["3/minute"]))

        answers = [verify(sqlite_engine, service, key) for _ in range(4)]

        assert [answer.valid for answer in answers] == [True, True, True, False]
        refused = answers[3]
        assert refused.reason == "rate_limited"
        assert refused.retry_after is not None
        assert 1 <= refused.retry_after <= 60
        assert [
            (state.policy, state.limit, state.window, state.remaining) for state in refused.rate_limits
        ] == [("3 per 1 minute", 3, 60, 0)]
        assert verify(sqlite_engine, service, other).valid

    def test_a_rate_limited_key_spends_no_credit(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """Rate limits are checked before credits: a refused request costs nothing."""
        service = ApiKeyService(membership=membership, clock=clock, rate_limiter=RateLimiter())
        owner(sqlite_engine, membership)
        key_id, key = issue(sqlite_engine, service, limits=ApiKeyLimits(credits=10, rate_limits=["1/minute"]))
        assert verify(sqlite_engine, service, key).valid
        assert verify(sqlite_engine, service, key).reason == "rate_limited"
        assert remaining(sqlite_engine, key_id) == 9

    @heavy
    def test_the_shared_redis_counts_for_every_service(
        self, sqlite_engine: sa.Engine, membership: MembershipService, clock: FrozenClock
    ) -> None:
        """Two services (two "processes") on one Redis share a key's counter, under a fresh key prefix."""
        prefix = f"tenantkit-test-{uuid.uuid4().hex}"
        limiters = [RateLimiter(REDIS_URL, key_prefix=prefix) for _ in range(2)]
        try:
            limiters[0].hit("probe", ())
            import redis

            redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
        except Exception as error:  # any failure to reach the server
            unavailable(f"Redis at {REDIS_URL} is unreachable: {error}")
        services = [
            ApiKeyService(membership=membership, clock=clock, rate_limiter=limiter) for limiter in limiters
        ]
        owner(sqlite_engine, membership)
        _, key = issue(sqlite_engine, services[0], limits=ApiKeyLimits(rate_limits=["4/minute"]))
        try:
            answers = [verify(sqlite_engine, services[n % 2], key).valid for n in range(6)]
            assert answers == [True, True, True, True, False, False]
        finally:
            limiters[0].reset()


def no_session() -> None:
    """A session dependency the adapters never call: they verify on their own ``database=``."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``redis-server`` of this test alone on a free port (never the shared one), stopped by the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
        raise AssertionError  # unreachable: unavailable() skips or fails
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        process.terminate()
        process.wait(timeout=10)


@heavy
class TestRedisGoesAway:
    @pytest.mark.parametrize("mode", ["allow", "refuse"])
    def test_the_chosen_fail_mode_and_never_a_500(
        self,
        sqlite_engine: sa.Engine,
        membership: MembershipService,
        clock: FrozenClock,
        private_redis: tuple[str, subprocess.Popen[bytes]],
        mode: str,
    ) -> None:
        """With Redis stopped mid-test, ``allow`` lets requests through and ``refuse`` answers 503
        ``rate_limiter_unavailable``; over HTTP neither is a 500."""
        from fastapi import Depends, FastAPI
        from fastapi.testclient import TestClient

        from tenantkit.fastapi import TenantKitFastAPI

        url, process = private_redis
        limiter = RateLimiter(url, on_unavailable=mode, timeout=0.2)  # type: ignore[arg-type]
        kit = tenantkit.TenantKit(clock=clock)
        kit.api_keys.rate_limiter = limiter
        owner(sqlite_engine, kit.members)
        _, key = issue(sqlite_engine, kit.api_keys, limits=ApiKeyLimits(rate_limits=["2/minute"]))
        tk = TenantKitFastAPI(kit, session=no_session, database=sqlite_engine)
        app = FastAPI()
        tk.install(app)
        any_key = tk.api_key()

        @app.get("/reports")
        def reports(verified: tenantkit.ApiKeyVerification = Depends(any_key)) -> dict[str, str]:
            return {"key": verified.key_id or ""}

        client = TestClient(app)
        headers = {"Authorization": f"Bearer {key}"}
        assert [client.get("/reports", headers=headers).status_code for _ in range(3)] == [200, 200, 429]

        process.terminate()
        process.wait(timeout=10)

        statuses = [client.get("/reports", headers=headers).status_code for _ in range(2)]
        assert statuses == ([200, 200] if mode == "allow" else [503, 503])
        if mode == "refuse":
            body = client.get("/reports", headers=headers).json()
            assert body["error"]["code"] == "rate_limiter_unavailable"
            with Session(sqlite_engine) as session, pytest.raises(RateLimiterUnavailableError):
                kit.api_keys.verify(session, key)
        assert limiter.unavailable_count >= 2


class TestHttpAnswers:
    def test_429_carries_retry_after_and_the_ratelimit_headers(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """FastAPI and Flask answer a rate-limited key 429 with the stable body, ``Retry-After`` and the
        draft's ``RateLimit-Policy``/``RateLimit``; exhausted credits are 429 ``usage_exceeded``."""
        import flask
        from fastapi import Depends, FastAPI
        from fastapi.testclient import TestClient

        from tenantkit.fastapi import TenantKitFastAPI
        from tenantkit.flask import TenantKitFlask

        kit = tenantkit.TenantKit(clock=clock)
        owner(sqlite_engine, kit.members)
        _, limited = issue(sqlite_engine, kit.api_keys, limits=ApiKeyLimits(rate_limits=["1/minute"]))
        _, metered = issue(sqlite_engine, kit.api_keys, limits=ApiKeyLimits(credits=1))

        tk = TenantKitFastAPI(kit, session=no_session, database=sqlite_engine)
        api = FastAPI()
        tk.install(api)
        any_key = tk.api_key()

        @api.get("/r")
        def fastapi_view(verified: tenantkit.ApiKeyVerification = Depends(any_key)) -> dict[str, str]:
            return {}

        app = flask.Flask("t")
        tkf = TenantKitFlask(kit, session=lambda: Session(sqlite_engine), database=sqlite_engine)
        tkf.init_app(app)

        @app.get("/r")
        @tkf.require_api_key()
        def flask_view() -> dict[str, str]:
            return {}

        fastapi_client = TestClient(api)
        flask_client = app.test_client()
        assert fastapi_client.get("/r", headers={"X-API-Key": limited}).status_code == 200
        for response in (
            fastapi_client.get("/r", headers={"X-API-Key": limited}),
            flask_client.get("/r", headers={"X-API-Key": limited}),
        ):
            assert response.status_code == 429
            body: Any = response.json() if callable(response.json) else response.json
            assert body["error"]["code"] == "rate_limited"
            assert body["error"]["reason"] == "rate_limited"
            assert 1 <= int(response.headers["Retry-After"]) <= 60
            assert response.headers["RateLimit-Policy"] == '"1 per 1 minute";q=1;w=60'
            assert response.headers["RateLimit"].startswith('"1 per 1 minute";r=0;t=')

        assert fastapi_client.get("/r", headers={"X-API-Key": metered}).status_code == 200
        exhausted = flask_client.get("/r", headers={"X-API-Key": metered})
        assert exhausted.status_code == 429
        assert exhausted.json is not None
        assert exhausted.json["error"] == {
            "code": "usage_exceeded",
            "message": "the API key has used its credits (0 left)",
            "reason": "usage_exceeded",
            "remaining": 0,
            "retry_after": None,
        }
        assert "Retry-After" not in exhausted.headers


class TestSubjects:
    def test_subjects_are_listed_and_revoked_and_carried_in_the_result(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """A device key says its serial; keys are listed and revoked by subject."""
        owner(engine, membership, ("bob", Role.ADMIN))
        device = ApiKeySubject.device("SN-4711")
        pump, pump_key = issue(engine, service, subject=device)
        spare, _ = issue(engine, service, subject=device)
        plain, _ = issue(engine, service)
        bobs, _ = issue(engine, service, subject=ApiKeySubject.user("bob"))

        verified = verify(engine, service, pump_key)
        assert (verified.subject_type, verified.subject_id) == ("device", "SN-4711")
        with tenantkit.transaction(engine) as session:
            listed = service.list_keys(session, ORG, actor="alice", subject=device).items
            assert {key.id for key in listed} == {pump, spare}
            assert [
                key.id
                for key in service.list_keys(session, ORG, actor="alice", subject=ApiKeySubject()).items
            ] == [plain]
            assert {key.id for key in service.list_keys(session, ORG, actor="alice").items} == {
                pump,
                spare,
                plain,
                bobs,
            }
            assert set(service.revoke_subject(session, ORG, device, actor="alice")) == {pump, spare}
        assert verify(engine, service, pump_key).reason == "revoked"

    def test_a_users_key_follows_the_users_membership(
        self, engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """A key for bob keeps only the permission scopes bob's role holds, narrows at once when bob is
        demoted, and stops (``subject_inactive``) when bob is removed — cached or not."""
        owner(engine, membership, ("bob", Role.ADMIN))
        _, key = issue(
            engine, service, subject={"type": "user", "id": "bob"}, scopes=["api_keys:manage", "reports:read"]
        )
        assert verify(engine, service, key).scopes == ("api_keys:manage", "reports:read")

        with tenantkit.transaction(engine) as session:
            membership.change_role(session, ORG, "bob", Role.MEMBER, actor="alice")
        assert verify(engine, service, key).scopes == ("reports:read",)

        with tenantkit.transaction(engine) as session:
            membership.remove(session, ORG, "bob", actor="alice")
        assert verify(engine, service, key).reason == "subject_inactive"

    def test_a_users_key_follows_the_users_custom_role_and_suspension(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """With a registry and a custom role, a key for bob keeps a scope bob holds only through his custom
        role, loses it when the role is taken away, and stops while bob is suspended."""
        policy = Permissions(
            registry=PermissionRegistry(["orders:sign"]),
            roles=[
                CustomRole(
                    key="signer", name="Signer", rank=Role.MEMBER, permissions=frozenset({"orders:sign"})
                )
            ],
        ).with_actions("orders:sign", Role.OWNER)
        membership = MembershipService(permissions=policy, clock=clock, permission_cache_ttl=None)
        service = ApiKeyService(membership=membership, clock=clock)
        owner(engine, membership)
        with tenantkit.transaction(engine) as session:
            membership.add(session, ORG, "bob", "signer", actor="alice")
        _, key = issue(engine, service, subject={"type": "user", "id": "bob"}, scopes=["orders:sign"])
        assert verify(engine, service, key).scopes == ("orders:sign",)

        with tenantkit.transaction(engine) as session:
            membership.suspend(session, ORG, "bob", actor="alice")
        assert verify(engine, service, key).reason == "subject_inactive"
        with tenantkit.transaction(engine) as session:
            membership.resume(session, ORG, "bob", actor="alice")
            membership.change_role(session, ORG, "bob", Role.MEMBER, actor="alice")
        assert verify(engine, service, key).scopes == ()

    def test_a_user_subject_must_be_a_member(
        self, sqlite_engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """A key for a non-member, a subject without an id, or bad limits are refused before any write."""
        owner(sqlite_engine, membership)
        with tenantkit.transaction(sqlite_engine) as session:
            with pytest.raises(InvalidInputError, match="not a member"):
                service.issue(session, ORG, "k", actor="alice", subject=ApiKeySubject.user("nobody"))
            with pytest.raises(InvalidInputError):
                service.issue(session, ORG, "k", actor="alice", subject={"type": "device"})
            with pytest.raises(InvalidInputError):
                service.issue(session, ORG, "k", actor="alice", limits={"allowed_cidrs": ["10.0.0.300/8"]})
            with pytest.raises(InvalidInputError):
                service.issue(session, ORG, "k", actor="alice", limits={"rate_limits": ["often"]})


BINDINGS = pytest.mark.parametrize(
    ("cidrs", "inside", "outside"),
    [
        (["192.0.2.0/24"], "192.0.2.77", "198.51.100.1"),
        (["2001:db8:1::/48"], "2001:db8:1::5", "2001:db8:2::5"),
    ],
    ids=["ipv4", "ipv6"],
)


class TestBindings:
    @BINDINGS
    def test_networks_accept_inside_and_refuse_outside(
        self,
        sqlite_engine: sa.Engine,
        membership: MembershipService,
        service: ApiKeyService,
        cidrs: list[str],
        inside: str,
        outside: str,
    ) -> None:
        """A key bound to a network verifies from inside it, is refused from outside and without a client —
        from the cache as from the database."""
        owner(sqlite_engine, membership)
        _, key = issue(sqlite_engine, service, limits=ApiKeyLimits(allowed_cidrs=cidrs))
        for _ in range(2):
            assert verify(sqlite_engine, service, key, client=ClientInfo(address=inside)).valid
            assert verify(sqlite_engine, service, key, client=ClientInfo(address=outside)).reason == (
                "address_not_allowed"
            )
            assert verify(sqlite_engine, service, key).reason == "address_not_allowed"

    def test_certificate_thumbprints_compare_in_any_spelling(
        self, sqlite_engine: sa.Engine, membership: MembershipService, service: ApiKeyService
    ) -> None:
        """The bound thumbprint matches in hex, colon-hex and base64url; another certificate is refused."""
        import base64

        owner(sqlite_engine, membership)
        _, key = issue(sqlite_engine, service, limits=ApiKeyLimits(certificate_sha256=THUMBPRINT.upper()))
        raw = bytes.fromhex(THUMBPRINT)
        for spelling in (
            THUMBPRINT,
            ":".join(f"{byte:02X}" for byte in raw),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
        ):
            assert verify(
                sqlite_engine, service, key, client=ClientInfo(certificate_thumbprint=spelling)
            ).valid
        other = hashlib.sha256(b"another").hexdigest()
        assert verify(
            sqlite_engine, service, key, client=ClientInfo(certificate_thumbprint=other)
        ).reason == ("certificate_mismatch")
        assert verify(sqlite_engine, service, key).reason == "certificate_mismatch"

    @BINDINGS
    def test_over_http_only_a_trusted_proxy_names_the_client(
        self, sqlite_engine: sa.Engine, clock: FrozenClock, cidrs: list[str], inside: str, outside: str
    ) -> None:
        """Behind the trusted proxy, ``X-Forwarded-For`` and the certificate header are believed; the same
        headers from an untrusted peer are ignored (its own address counts, and no certificate)."""
        from fastapi import Depends, FastAPI
        from fastapi.testclient import TestClient

        from tenantkit.fastapi import TenantKitFastAPI

        kit = tenantkit.TenantKit(
            clock=clock,
            http=tenantkit.HttpSettings(
                trusted_proxies=["127.0.0.1", "::1"], client_certificate_header="X-Client-Cert-SHA256"
            ),
        )
        owner(sqlite_engine, kit.members)
        _, network_key = issue(sqlite_engine, kit.api_keys, limits=ApiKeyLimits(allowed_cidrs=cidrs))
        _, cert_key = issue(sqlite_engine, kit.api_keys, limits=ApiKeyLimits(certificate_sha256=THUMBPRINT))
        tk = TenantKitFastAPI(kit, session=no_session, database=sqlite_engine)
        app = FastAPI()
        tk.install(app)
        any_key = tk.api_key()

        @app.get("/r")
        def view(verified: tenantkit.ApiKeyVerification = Depends(any_key)) -> dict[str, str]:
            return {}

        def status(peer: str, key: str, **headers: str) -> tuple[int, str | None]:
            response = TestClient(app, client=(peer, 5000)).get("/r", headers={"X-API-Key": key, **headers})
            return response.status_code, response.json().get("error", {}).get("reason")

        proxy, stranger = "127.0.0.1", "203.0.113.9"
        assert status(proxy, network_key, **{"X-Forwarded-For": inside}) == (200, None)
        assert status(proxy, network_key, **{"X-Forwarded-For": outside}) == (401, "address_not_allowed")
        # An untrusted peer cannot claim an address inside the network, nor a certificate.
        assert status(stranger, network_key, **{"X-Forwarded-For": inside}) == (401, "address_not_allowed")
        certificate = {"X-Client-Cert-SHA256": THUMBPRINT}
        assert status(proxy, cert_key, **certificate) == (200, None)
        assert status(stranger, cert_key, **certificate) == (401, "certificate_mismatch")


def test_the_shared_redis_is_reachable_under_ci() -> None:
    """Under CI the Redis tests must not skip: the server is part of the machine."""
    if not IN_CI:
        pytest.skip("only checked under CI=true")
    import redis

    assert redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()


def test_the_fastapi_examples_metered_device_route(tmp_path: Any) -> None:
    """The FastAPI example's ``/api/telemetry`` spends one credit of a device key per reading, then 429s."""
    import importlib.util
    from pathlib import Path

    from fastapi.testclient import TestClient

    path = Path(__file__).parent.parent / "examples" / "fastapi_app.py"
    spec = importlib.util.spec_from_file_location("fastapi_app_limits", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    url = f"sqlite:///{tmp_path / 'example.sqlite3'}"
    app = module.create_app(url)
    with TestClient(app) as client:
        assert client.post("/organizations", headers={"X-User": "alice"}, json={"organization_id": "acme"})
        engine = sa.create_engine(url)
        kit = tenantkit.TenantKit()
        with tenantkit.transaction(engine) as session:
            issued = kit.api_keys.issue(
                session,
                "acme",
                "pump 4711",
                actor="alice",
                scopes=["telemetry:write"],
                subject=ApiKeySubject.device("SN-4711"),
                limits=ApiKeyLimits(credits=2),
            )
        engine.dispose()
        headers = {"Authorization": f"Bearer {issued.reveal()}"}
        answers = [client.post("/api/telemetry", headers=headers) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[1].json() == {"device": "SN-4711", "credits_remaining": 0}
    assert answers[2].json()["error"]["code"] == "usage_exceeded"
