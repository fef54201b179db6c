"""The invalidation bus in one process: its messages, its gap rule, the poller's change log, its settings.

What crosses processes is proven with real processes in ``test_bus_processes.py``; here each rule is pinned
down where it can be driven step by step: the payload holds ids only, a skipped sequence number clears, the
poller applies a row that commits late and clears for one that never does, a rolled-back change writes no row.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, ApiKeySettings, BusSettings, CacheKey, Role, TenantKit, TenantKitSettings
from tenantkit.bus import BusHealth, Delivery, InvalidationBus, PollingBus
from tenantkit.bus._base import MAX_PAYLOAD, encode_clear, encode_keys, split_keys
from tenantkit.errors import ConfigurationError, InvalidSettingError
from tenantkit.events import EventDispatcher
from tenantkit.metrics import CountingMetrics
from tenantkit.tables import cache_invalidations

ORG = "org_1"


class RecordingCache:
    """A stand-in cache that writes down what it is told to forget."""

    def __init__(self) -> None:
        self.invalidated: list[CacheKey] = []
        self.clears = 0

    def invalidate(self, keys: Collection[CacheKey]) -> None:
        self.invalidated.extend(keys)

    def clear(self) -> None:
        self.clears += 1


class LoopBus(InvalidationBus):
    """A bus over an in-memory list: what it sends, the test hands to another bus's ``_handle``."""

    backend = "loop"

    def __init__(self, events: EventDispatcher, *, hears_itself: bool = True, **options: Any) -> None:
        super().__init__(events, probe_timeout=0.5, **options)
        self.sent: list[str] = []
        self.hears_itself = hears_itself
        self._incoming: list[str] = []
        self._arrived = threading.Condition()

    def _connect_listener(self) -> object:
        return self

    def _receive(self, handle: Any, timeout: float) -> Iterable[str]:
        with self._arrived:
            self._arrived.wait_for(lambda: bool(self._incoming), timeout)
            arrived, self._incoming = self._incoming, []
        return arrived

    def _close_listener(self, handle: Any) -> None:
        pass

    def _connect_publisher(self) -> object:
        return self

    def _deliver(self, handle: Any, payload: str) -> None:
        self.sent.append(payload)
        if self.hears_itself:
            with self._arrived:
                self._incoming.append(payload)
                self._arrived.notify_all()

    def _close_publisher(self, handle: Any) -> None:
        pass


@pytest.fixture
def cache() -> RecordingCache:
    return RecordingCache()


@pytest.fixture
def events(cache: RecordingCache) -> EventDispatcher:
    dispatcher = EventDispatcher()
    dispatcher.caches.register(cache)
    return dispatcher


class TestMessages:
    def test_a_message_names_kinds_organizations_and_ids_only(self) -> None:
        """The payload is the cache keys (kind, organization, id) with an origin and a sequence number."""
        key = CacheKey.api_key(ORG, "key_1")
        assert json.loads(encode_keys("me", 7, keys=[key])) == {
            "v": 1,
            "o": "me",
            "s": 7,
            "k": [["api_key", ORG, "key_1"]],
        }
        assert json.loads(encode_clear("me", 8)) == {"v": 1, "o": "me", "s": 8, "c": 1}

    def test_many_keys_are_split_under_the_notify_limit(self) -> None:
        """Thousands of keys become several messages, each under PostgreSQL's 8000-byte payload limit."""
        keys = [CacheKey.member(ORG, f"user_{index:05}") for index in range(2000)]
        batches = list(split_keys(keys))
        assert len(batches) > 1
        assert [key for batch in batches for key in batch] == keys
        assert all(len(encode_keys("o" * 32, 10**9, keys=batch).encode()) < MAX_PAYLOAD for batch in batches)

    def test_the_committing_process_sends_no_digest_or_key(self, sqlite_engine: sa.Engine) -> None:
        """Issuing and revoking a key sends its id; neither the key nor its digest is in any message."""
        kit = TenantKit(api_keys=ApiKeySettings(prefix="tk_test_", cache_ttl=timedelta(minutes=5)))
        bus = LoopBus(kit.events, hears_itself=False)
        with kit.transaction(sqlite_engine) as session:
            issued = kit.api_keys.issue(session, ORG, "ci", actor=HOST)
            kit.api_keys.revoke(session, ORG, issued.id, actor=HOST)
        with sqlite_engine.connect() as connection:
            digest = connection.execute(sa.text("SELECT hashed_key FROM api_keys")).scalar_one()
        assert len(bus.sent) == 1
        assert issued.id in bus.sent[0]
        assert issued.reveal() not in bus.sent[0]
        assert digest not in bus.sent[0]


class TestApplying:
    def test_another_process_keys_are_evicted_here(
        self, events: EventDispatcher, cache: RecordingCache
    ) -> None:
        """A message of another origin evicts its keys and is reported as a delivery."""
        bus = LoopBus(events)
        deliveries: list[Delivery] = []
        bus.on_delivery(deliveries.append)
        key = CacheKey.api_key(ORG, "k1")
        bus._handle(encode_keys("other", 1, keys=[key]))
        assert cache.invalidated == [key]
        assert deliveries == [Delivery((key,), False, "message")]
        assert bus.health().received == 1

    def test_a_skipped_sequence_number_clears_every_cache(
        self, events: EventDispatcher, cache: RecordingCache
    ) -> None:
        """Message 3 after message 1 of the same origin: message 2 was missed, so everything is forgotten."""
        metrics = CountingMetrics()
        bus = LoopBus(events, metrics=metrics)
        bus._handle(encode_keys("other", 1, keys=[CacheKey.api_key(ORG, "k1")]))
        bus._handle(encode_keys("other", 3, keys=[CacheKey.api_key(ORG, "k3")]))
        assert cache.clears == 1
        assert (bus.health().gaps, bus.health().clears) == (1, 1)
        assert (metrics.bus_total("gap"), metrics.bus_total("cleared"), metrics.bus_total("received")) == (
            1,
            1,
            2,
        )
        bus._handle(encode_keys("other", 4, keys=[CacheKey.api_key(ORG, "k4")]))
        assert cache.clears == 1

    def test_unreadable_or_newer_messages_are_never_trusted(
        self, events: EventDispatcher, cache: RecordingCache
    ) -> None:
        """Junk on the channel is ignored; a message of a newer format clears rather than guess."""
        bus = LoopBus(events)
        bus._handle("not json")
        assert cache.clears == 0
        bus._handle(json.dumps({"v": 99, "o": "other", "s": 1}))
        assert cache.clears == 1

    def test_clear_asks_every_process(self, events: EventDispatcher, cache: RecordingCache) -> None:
        """``clear()`` clears here and sends a message that clears there."""
        bus = LoopBus(events, hears_itself=False)
        bus.clear()
        assert cache.clears == 1
        other_cache = RecordingCache()
        other = EventDispatcher()
        other.caches.register(other_cache)
        LoopBus(other)._handle(bus.sent[0])
        assert other_cache.clears == 1


class TestLifecycle:
    def test_start_clears_probes_and_reports_health(
        self, events: EventDispatcher, cache: RecordingCache
    ) -> None:
        """Started, the bus is connected, has cleared what predates it, and heard its own probe."""
        metrics = CountingMetrics()
        bus = LoopBus(events, metrics=metrics)
        with bus:
            health = bus.health()
            assert health.healthy
            assert (health.clears, cache.clears) == (1, 1)
            assert health.last_message_at is not None
            assert health.to_dict()["healthy"] is True
            assert metrics.bus_total("connected") == 1
        assert not bus.health().running
        assert not bus.health().connected

    def test_a_bus_that_never_hears_itself_refuses_to_start(self, events: EventDispatcher) -> None:
        """Subscribed but deaf (a transaction-mode PgBouncer does this to LISTEN): ConfigurationError."""
        bus = LoopBus(events, hears_itself=False)
        with pytest.raises(ConfigurationError, match="never heard"):
            bus.start()
        assert not bus.health().running

    def test_it_takes_the_dispatchers_place(self, events: EventDispatcher) -> None:
        """Built on a dispatcher, the bus is what its commits announce to."""
        bus = LoopBus(events)
        assert events.invalidator is bus
        assert isinstance(bus.health(), BusHealth)


@pytest.fixture
def poller_kit(engine: sa.Engine) -> Iterator[tuple[TenantKit, PollingBus]]:
    kit = TenantKit(api_keys=ApiKeySettings(prefix="tk_test_", cache_ttl=timedelta(minutes=5)))
    bus = PollingBus(kit.events, engine, max_commit_delay=60)
    bus._connect_listener()
    yield kit, bus
    bus.close()


def _rows(engine: sa.Engine) -> list[tuple[str, str, str]]:
    table = cache_invalidations
    with engine.connect() as connection:
        query = sa.select(table.c.kind, table.c.organization_id, table.c.subject_id).order_by(table.c.id)
        return [tuple(row) for row in connection.execute(query)]


class TestPollingBus:
    def test_changes_write_their_rows_in_their_transaction(
        self, engine: sa.Engine, poller_kit: tuple[TenantKit, PollingBus]
    ) -> None:
        """A committed change leaves one row per cache key; a rolled-back one leaves none."""
        kit, _bus = poller_kit
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            issued = kit.api_keys.issue(session, ORG, "ci", actor=HOST)

        def revoke_then_fail() -> None:
            with kit.transaction(engine) as session:
                kit.api_keys.revoke(session, ORG, issued.id, actor=HOST)
                raise RuntimeError("the host's own work failed")

        with pytest.raises(RuntimeError):
            revoke_then_fail()
        assert _rows(engine) == [("member", ORG, "alice"), ("new_api_key", ORG, issued.id)]

    def test_a_poll_applies_what_other_processes_wrote(
        self, engine: sa.Engine, poller_kit: tuple[TenantKit, PollingBus]
    ) -> None:
        """A revocation written through another kit is evicted here by the next poll."""
        _kit, bus = poller_kit
        writer = TenantKit()
        PollingBus(writer.events, engine)
        deliveries: list[Delivery] = []
        bus.on_delivery(deliveries.append)
        with writer.transaction(engine) as session:
            issued = writer.api_keys.issue(session, ORG, "ci", actor=HOST)
            writer.api_keys.revoke(session, ORG, issued.id, actor=HOST)
        assert bus._poll() == 2
        assert deliveries[-1].keys == (CacheKey.new_api_key(ORG, issued.id), CacheKey.api_key(ORG, issued.id))
        assert bus._poll() == 0

    @pytest.mark.postgres_only
    def test_a_late_commit_is_applied_and_a_lost_id_clears(
        self, postgres_engine: sa.Engine, cache: RecordingCache
    ) -> None:
        """An id taken by a transaction that commits after a later id is read when it commits; an id whose
        transaction rolled back is given up after ``max_commit_delay`` with a clear."""
        events = EventDispatcher()
        events.caches.register(cache)
        bus = PollingBus(events, postgres_engine, max_commit_delay=0.2)
        bus._connect_listener()
        row = {"organization_id": ORG, "created_at": tenantkit.system_clock()}
        with postgres_engine.connect() as slow, postgres_engine.connect() as lost:
            slow.execute(cache_invalidations.insert(), {**row, "kind": "api_key", "subject_id": "late"})
            lost.execute(cache_invalidations.insert(), {**row, "kind": "api_key", "subject_id": "never"})
            with postgres_engine.begin() as fast:
                fast.execute(cache_invalidations.insert(), {**row, "kind": "api_key", "subject_id": "early"})
            assert bus._poll() == 1
            assert cache.invalidated == [CacheKey.api_key(ORG, "early")]
            slow.commit()
            lost.rollback()
        assert bus._poll() == 1
        assert cache.invalidated[-1] == CacheKey.api_key(ORG, "late")
        assert cache.clears == 0
        threading.Event().wait(0.3)
        bus._poll()
        assert (cache.clears, bus.health().gaps) == (1, 1)
        bus.close()


class TestSettings:
    def test_the_kit_builds_the_bus_the_settings_choose(self, tmp_path: Any) -> None:
        """``TenantKit(bus=BusSettings(...))`` builds the bus on the kit's dispatcher, not started."""
        url = f"sqlite:///{tmp_path / 'bus.sqlite3'}"
        kit = TenantKit(bus=BusSettings(backend="poll", url=url, poll_interval="2s"))
        assert isinstance(kit.bus, PollingBus)
        assert kit.events.invalidator is kit.bus
        assert (kit.bus.interval, kit.bus.running) == (2.0, False)
        assert TenantKit().bus is None

    def test_the_environment_chooses_the_bus(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``TENANTKIT_BUS`` and friends fill :class:`BusSettings`; ``off`` is no bus."""
        monkeypatch.setenv("TENANTKIT_BUS", "redis")
        monkeypatch.setenv("TENANTKIT_BUS_URL", "redis://:hunter2pass@cache:6379/0")
        monkeypatch.setenv("TENANTKIT_BUS_CHANNEL", "app_invalidation")
        settings = TenantKitSettings.from_env(env_file=None)
        assert (settings.bus.backend, settings.bus.channel) == ("redis", "app_invalidation")
        assert "hunter2pass" not in repr(settings)
        monkeypatch.setenv("TENANTKIT_BUS", "off")
        assert TenantKitSettings.from_env(env_file=None).bus.backend is None

    def test_unusable_settings_are_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bad backend or channel names its setting; a Redis bus without a URL is a configuration error."""
        with pytest.raises(InvalidSettingError) as raised:
            BusSettings(channel="Not A Channel")
        assert raised.value.setting == "channel"
        monkeypatch.setenv("TENANTKIT_BUS", "carrier-pigeon")
        with pytest.raises(InvalidSettingError) as from_env:
            TenantKitSettings.from_env(env_file=None)
        assert from_env.value.setting == "TENANTKIT_BUS"
        with pytest.raises(ConfigurationError, match="needs a URL"):
            TenantKit(bus=BusSettings(backend="redis"))
        with pytest.raises(ConfigurationError, match="needs a URL"):
            TenantKit(bus=BusSettings(backend="postgres"))


class TestAdapters:
    def test_the_fastapi_lifespan_starts_and_stops_the_bus(self, sqlite_engine: sa.Engine) -> None:
        """The example's app starts ``kit.bus`` before the first request, reports it, and stops it after."""
        from fastapi.testclient import TestClient

        from tests.test_examples import load_example

        url = sqlite_engine.url.render_as_string(hide_password=False)
        app = load_example("fastapi_app").create_app(url, bus=BusSettings(backend="poll", url=url))
        kit = app.state.tenantkit.kit
        with TestClient(app) as client:
            body = client.get("/health").json()
            assert body["bus"]["healthy"] is True
            assert body["bus"]["backend"] == "poll"
        assert not kit.bus.running

    def test_the_starlette_backend_lifespan_starts_and_stops_the_bus(self, sqlite_engine: sa.Engine) -> None:
        """``ApiKeyBackend(kit, ...).lifespan()`` runs the kit's bus for as long as the app serves."""
        from starlette.applications import Starlette
        from starlette.testclient import TestClient

        from tenantkit.starlette import ApiKeyBackend

        url = sqlite_engine.url.render_as_string(hide_password=False)
        kit = TenantKit(bus=BusSettings(backend="poll", url=url))
        backend = ApiKeyBackend(kit, database=sqlite_engine)
        app = Starlette(middleware=[backend.middleware()], lifespan=backend.lifespan())
        assert kit.bus is not None
        with TestClient(app):
            assert kit.bus.running
        assert not kit.bus.running
        assert ApiKeyBackend(kit.api_keys, database=sqlite_engine).bus is None

    def test_flask_starts_the_bus_at_the_first_request_and_close_stops_it(
        self, sqlite_engine: sa.Engine
    ) -> None:
        """The Flask adapter starts ``kit.bus`` at the first request of the process; ``close()`` stops it."""
        from flask import Flask
        from sqlalchemy.orm import Session

        from tenantkit.flask import TenantKitFlask

        url = sqlite_engine.url.render_as_string(hide_password=False)
        kit = TenantKit(bus=BusSettings(backend="poll", url=url))
        assert kit.bus is not None
        app = Flask(__name__)
        app.get("/ping")(lambda: "pong")
        tk = TenantKitFlask(kit, session=lambda: Session(sqlite_engine), app=app)
        assert not kit.bus.running
        assert app.test_client().get("/ping").text == "pong"
        assert kit.bus.health().healthy
        tk.close()
        assert not kit.bus.running
