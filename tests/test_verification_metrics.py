"""Verification metrics: one ``verification(outcome, source)`` call per verification, whatever answered it.

The outcome is ``valid`` or the refusal's reason; the source is what answered: ``format`` (the format check
alone), ``cache``, ``negative_cache`` or ``database``. Every entry point (verify, verify_and_report,
authenticate, begin_verification and its completion, verify_cached) counts each verification exactly once.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, InvalidApiKeyError, MembershipService, TenantKit, TenantKitSettings
from tenantkit.api_keys import PendingVerification
from tenantkit.events import EventDispatcher
from tenantkit.metrics import OUTCOMES, SOURCES, CountingMetrics, Outcome, Source, VerificationMetrics
from tenantkit.testing import FrozenClock

ORG = "org_1"
OTHER_ORG = "org_2"


def metered_service(clock: FrozenClock, metrics: VerificationMetrics | None, **options: Any) -> ApiKeyService:
    membership = MembershipService(clock=clock, events=EventDispatcher())
    return ApiKeyService(membership=membership, clock=clock, metrics=metrics, **options)


def issue(engine: sa.Engine, service: ApiKeyService, **kwargs: Any) -> tuple[str, str]:
    with Session(engine) as session:
        issued = service.issue(session, ORG, "ci", actor=HOST, **kwargs)
        session.commit()
    return issued.id, issued.reveal()


def counted(metrics: CountingMetrics, step: Callable[[], object]) -> dict[tuple[Outcome, Source], int]:
    """What ``step`` added to the counts."""
    before = Counter(metrics.snapshot())
    step()
    return dict(Counter(metrics.snapshot()) - before)


class TestEachVerificationCountedOnce:
    def test_every_outcome_and_source(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Each kind of verification adds exactly one count: its outcome, and the source that answered."""
        metrics = CountingMetrics()
        service = metered_service(
            clock, metrics, cache_ttl=timedelta(days=1), negative_cache_ttl=timedelta(seconds=5)
        )
        uncached = metered_service(clock, metrics)
        _, valid = issue(engine, service, expires=timedelta(hours=1))
        revoked_id, revoked = issue(engine, service)
        with Session(engine) as session:
            service.revoke(session, ORG, revoked_id, actor=HOST)
            session.commit()
        made_up = service.format.generate()

        def verify(on: ApiKeyService, key: str, **kwargs: Any) -> Callable[[], object]:
            def run() -> object:
                with Session(engine) as session:
                    result = on.verify(session, key, **kwargs)
                    session.commit()
                return result

            return run

        def later(delta: timedelta, step: Callable[[], object]) -> Callable[[], object]:
            return lambda: (clock.advance(delta), step())

        steps: list[tuple[str, Callable[[], object], tuple[Outcome, Source]]] = [
            ("malformed", verify(service, "tk_live_nonsense"), ("malformed", "format")),
            ("not a string", verify(service, 42), ("malformed", "format")),  # type: ignore[arg-type]
            ("made up, first", verify(service, made_up), ("unknown", "database")),
            ("made up, again", verify(service, made_up), ("unknown", "negative_cache")),
            ("valid, miss", verify(service, valid), ("valid", "database")),
            ("valid, hit", verify(service, valid), ("valid", "cache")),
            ("other org, hit", verify(service, valid, organization_id=OTHER_ORG), ("unknown", "cache")),
            ("other org, miss", verify(uncached, valid, organization_id=OTHER_ORG), ("unknown", "database")),
            ("revoked", verify(service, revoked), ("revoked", "database")),
            ("write due on a hit", later(timedelta(minutes=5), verify(service, valid)), ("valid", "cache")),
            ("expired, hit", later(timedelta(hours=1), verify(service, valid)), ("expired", "cache")),
            ("expired, miss", verify(uncached, valid), ("expired", "database")),
        ]
        for name, step, expected in steps:
            assert counted(metrics, step) == {expected: 1}, name
        assert metrics.total() == len(steps)

    def test_every_entry_point_counts_once(self, sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
        """authenticate (even when it raises), verify_and_report, begin/complete and verify_cached count one
        each; verify_cached that must defer to the database counts nothing (the verification is not done)."""
        metrics = CountingMetrics()
        service = metered_service(clock, metrics, cache_ttl=timedelta(hours=1))
        _, key = issue(sqlite_engine, service)
        made_up = service.format.generate()

        def authenticate_refused() -> None:
            with Session(sqlite_engine) as session, pytest.raises(InvalidApiKeyError):
                service.authenticate(session, made_up)

        def begin_then_complete() -> None:
            answer = service.begin_verification(made_up)
            assert isinstance(answer, PendingVerification)
            with sqlite_engine.connect() as connection:
                answer.complete(connection)

        def report() -> None:
            with Session(sqlite_engine) as session:
                service.verify_and_report(session, key)
                session.commit()

        assert counted(metrics, lambda: service.verify_cached(key)) == {}  # not cached yet: not verified
        assert counted(metrics, authenticate_refused) == {("unknown", "database"): 1}
        assert counted(metrics, begin_then_complete) == {("unknown", "database"): 1}
        assert counted(metrics, report) == {("valid", "database"): 1}
        assert counted(metrics, lambda: service.verify_cached(key)) == {("valid", "cache"): 1}
        assert counted(metrics, lambda: service.begin_verification("junk")) == {("malformed", "format"): 1}

    def test_the_kit_hands_its_metrics_to_the_service(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """TenantKit(metrics=...) counts the verifications of kit.api_keys."""
        metrics = CountingMetrics()
        kit = TenantKit(clock=clock, metrics=metrics)
        assert kit.api_keys.metrics is metrics
        with Session(sqlite_engine) as session:
            kit.api_keys.verify(session, kit.api_keys.format.generate())
        assert metrics.snapshot() == {("unknown", "database"): 1}

    def test_the_settings_constructors_take_metrics_too(
        self, clock: FrozenClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """TenantKit.from_settings(...) and TenantKit.from_env(...) wire metrics= like the constructor."""
        metrics = CountingMetrics()
        assert TenantKit.from_settings(TenantKitSettings(), metrics=metrics).api_keys.metrics is metrics
        monkeypatch.chdir(tmp_path)
        assert TenantKit.from_env(env_file=None, metrics=metrics).api_keys.metrics is metrics

    def test_any_object_with_the_method_will_do(self, clock: FrozenClock) -> None:
        """A host's own recorder (prometheus, OpenTelemetry…) gets the calls; it fits the protocol."""
        calls: list[tuple[str, str]] = []

        class Recorder:
            def verification(self, outcome: Outcome, source: Source) -> None:
                calls.append((outcome, source))

        recorder = Recorder()
        assert isinstance(recorder, VerificationMetrics)
        assert isinstance(CountingMetrics(), VerificationMetrics)
        metered_service(clock, recorder).begin_verification("tk_live_bad")
        assert calls == [("malformed", "format")]


class TestCountingMetrics:
    def test_total_filters_by_outcome_and_source(self) -> None:
        """total() sums the counts matching the given outcome and/or source; neither given, all of them."""
        metrics = CountingMetrics()
        for outcome, source, times in [
            ("valid", "cache", 3),
            ("valid", "database", 2),
            ("unknown", "negative_cache", 5),
            ("unknown", "database", 1),
            ("malformed", "format", 7),
        ]:
            for _ in range(times):
                metrics.verification(outcome, source)  # type: ignore[arg-type]
        assert metrics.total() == 18
        assert metrics.total(outcome="valid") == 5
        assert metrics.total(source="database") == 3
        assert metrics.total(outcome="unknown", source="database") == 1
        assert metrics.total(outcome="revoked") == 0
        assert metrics.total(outcome="malformed", source="cache") == 0
        assert metrics.snapshot()[("unknown", "negative_cache")] == 5
        assert "valid" in repr(metrics)

    def test_outcomes_and_sources_are_the_documented_ones(self) -> None:
        """The names a dashboard is built on."""
        assert OUTCOMES == (
            "valid",
            "malformed",
            "unknown",
            "expired",
            "revoked",
            "subject_inactive",
            "address_not_allowed",
            "certificate_mismatch",
            "rate_limited",
            "usage_exceeded",
        )
        assert SOURCES == ("format", "cache", "negative_cache", "database")

    @pytest.fixture
    def busy_switching(self) -> Iterator[None]:
        """Switch threads as often as the interpreter allows, so that a lost update would show."""
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            yield
        finally:
            sys.setswitchinterval(interval)

    @pytest.mark.usefixtures("busy_switching")
    def test_threads_hammering_one_instance_lose_no_count(self) -> None:
        """Eight threads counting at once add up exactly."""
        metrics = CountingMetrics()
        per_thread = 25_000
        start = threading.Barrier(8)

        def hammer(outcome: Outcome) -> None:
            start.wait()
            for _ in range(per_thread):
                metrics.verification(outcome, "cache")

        threads = [threading.Thread(target=hammer, args=(OUTCOMES[n % 2],)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert metrics.total() == 8 * per_thread
        assert metrics.snapshot() == {
            ("valid", "cache"): 4 * per_thread,
            ("malformed", "cache"): 4 * per_thread,
        }

    def test_a_count_waits_for_a_reader_of_the_counts(self) -> None:
        """Counting and reading exclude each other (the hammering above seldom catches a lost update under
        the GIL; this does every time): a count made while the counts are held lands once they are let go."""
        metrics = CountingMetrics()
        with metrics._lock:
            counting = threading.Thread(target=metrics.verification, args=("valid", "cache"))
            counting.start()
            counting.join(timeout=0.05)
            assert counting.is_alive()
        counting.join()
        assert metrics.snapshot() == {("valid", "cache"): 1}

    @pytest.mark.usefixtures("busy_switching")
    def test_threads_verifying_from_the_cache_are_each_counted(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Concurrent cache hits on one service are counted one each."""
        metrics = CountingMetrics()
        service = metered_service(clock, metrics, cache_ttl=timedelta(hours=1), track_last_used=False)
        _, key = issue(sqlite_engine, service)
        with sqlite_engine.connect() as connection:
            service.verify(connection, key)
        per_thread = 2_000

        def hit() -> None:
            for _ in range(per_thread):
                assert service.verify_cached(key) is not None

        threads = [threading.Thread(target=hit) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert metrics.snapshot() == {("valid", "database"): 1, ("valid", "cache"): 4 * per_thread}


def test_without_metrics_verification_is_unchanged(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """metrics=None (the default) is no hook at all: every kind of verification answers as usual."""
    service = metered_service(
        clock, None, cache_ttl=timedelta(hours=1), negative_cache_ttl=timedelta(seconds=5)
    )
    assert service.metrics is None
    assert TenantKit().api_keys.metrics is None
    _, key = issue(sqlite_engine, service)
    made_up = service.format.generate()
    with Session(sqlite_engine) as session:
        reasons = [service.verify(session, candidate).reason for candidate in ("bad", made_up, key)]
        session.commit()
    assert reasons == ["malformed", "unknown", None]
    assert service.verify_cached(made_up) is not None  # the negative cache
    assert service.verify_cached(key) is not None  # the cache
