"""Deferred ``last_used_at``: a verification records the use, a flush writes it, at most once per interval.

With ``last_used_writes="deferred"`` no verification writes: the use waits in a bounded buffer until
``flush_last_used`` (or a :class:`LastUsedWriter`, or an adapter's lifespan) writes every pending key in one
conditional ``UPDATE`` per batch. The database tests take the ``engine`` fixture: SQLite, PostgreSQL and
MariaDB. (No ``from __future__ import annotations``: FastAPI reads the route's annotations at runtime.)
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated, Any

import flask
import httpx2
import pytest
import sqlalchemy as sa
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, ApiKeySettings, ApiKeyVerification, MembershipService, TenantKit
from tenantkit.api_keys import LastUsedWriter, PendingVerification
from tenantkit.api_keys._last_used import FLUSH_BATCH
from tenantkit.errors import ConfigurationError
from tenantkit.events import EventDispatcher
from tenantkit.fastapi import TenantKitFastAPI
from tenantkit.flask import TenantKitFlask
from tenantkit.tables import api_keys
from tenantkit.testing import FrozenClock

ORG = "org_1"
INTERVAL = timedelta(seconds=60)


def deferred_service(clock: FrozenClock, **options: Any) -> ApiKeyService:
    """A service of its own (its own dispatcher: a process of its own) writing ``last_used_at`` deferred."""
    membership = MembershipService(clock=clock, events=EventDispatcher())
    return ApiKeyService(
        membership=membership,
        clock=clock,
        last_used_writes="deferred",
        last_used_interval=INTERVAL,
        **options,
    )


def issue(engine: sa.Engine, service: ApiKeyService, count: int = 1) -> list[tuple[str, str]]:
    """Issue ``count`` keys as the host in one transaction; their (id, plaintext)."""
    with Session(engine) as session:
        issued = [service.issue(session, ORG, f"key {n}", actor=HOST) for n in range(count)]
        session.commit()
    return [(key.id, key.reveal()) for key in issued]


def verify(engine: sa.Engine, service: ApiKeyService, key: str) -> tuple[ApiKeyVerification, bool]:
    with engine.connect() as connection:
        result = service.verify_and_report(connection, key)
        connection.commit()
    return result


def flush(engine: sa.Engine, service: ApiKeyService) -> int:
    with engine.begin() as connection:
        return service.flush_last_used(connection)


def last_used(engine: sa.Engine) -> dict[str, datetime | None]:
    """Every key's stored ``last_used_at``, by id."""
    with engine.connect() as connection:
        return dict(connection.execute(sa.select(api_keys.c.id, api_keys.c.last_used_at)).all())


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """Every statement SQLAlchemy sends (the listener also turns the raw fast path off, on purpose)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.lstrip().upper())

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def updates(seen: list[str]) -> list[str]:
    return [statement for statement in seen if statement.startswith("UPDATE")]


class TestRecordAndFlush:
    def test_a_verification_records_the_use_and_writes_nothing(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """A valid key due a write is recorded in memory: no UPDATE, nothing to commit, nothing stored yet."""
        service = deferred_service(clock)
        [(key_id, key)] = issue(engine, service)
        with statements(engine) as seen:
            result, wrote = verify(engine, service, key)
        assert result.valid
        assert wrote is False
        assert updates(seen) == []
        assert any(statement.startswith("SELECT") for statement in seen)  # the lookup did run
        assert service.pending_last_used == 1
        assert last_used(engine)[key_id] is None

    def test_a_flush_writes_each_key_once_with_its_first_due_use(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Pending keys are written in one UPDATE, each with its first use; a key never used stays NULL."""
        service = deferred_service(clock)
        (first_id, first), (second_id, second), (unused_id, _) = issue(engine, service, 3)
        start = clock()
        verify(engine, service, first)
        clock.advance(seconds=1)
        verify(engine, service, second)
        clock.advance(seconds=1)
        verify(engine, service, first)  # still NULL in the database: due again, but already pending
        assert service.pending_last_used == 2
        with statements(engine) as seen:
            assert flush(engine, service) == 2
        assert len(updates(seen)) == 1
        assert last_used(engine) == {
            first_id: start,
            second_id: start + timedelta(seconds=1),
            unused_id: None,
        }
        assert service.pending_last_used == 0
        with statements(engine) as seen:
            assert flush(engine, service) == 0
        assert seen == []  # nothing pending: no statement at all

    def test_at_most_once_per_interval_across_processes(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Two services sharing a database write a key once per interval: the later flush's UPDATE is
        conditional on the stored value, whichever order they flush in."""
        here, there = deferred_service(clock), deferred_service(clock)
        [(key_id, key)] = issue(engine, here)
        start = clock()
        verify(engine, here, key)
        clock.advance(seconds=10)
        verify(engine, there, key)  # the database still says NULL: there records its own use
        assert flush(engine, there) == 1
        assert flush(engine, here) == 0  # its use (10 s earlier) is within the interval of the stored one
        assert last_used(engine)[key_id] == start + timedelta(seconds=10)
        clock.advance(INTERVAL - timedelta(seconds=1))  # 59 s after the stored use: not due
        verify(engine, here, key)
        assert here.pending_last_used == 0
        clock.advance(seconds=1)  # exactly one interval: not yet due either (strictly older only)
        verify(engine, here, key)
        assert here.pending_last_used == 0
        clock.advance(microseconds=1)
        verify(engine, here, key)
        assert flush(engine, here) == 1
        assert last_used(engine)[key_id] == start + timedelta(seconds=10) + INTERVAL + timedelta(
            microseconds=1
        )

    def test_more_keys_than_a_batch_are_written_in_several_statements(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Over FLUSH_BATCH pending keys take one UPDATE per batch, each key with its own use time."""
        service = deferred_service(clock)
        keys = issue(engine, service, FLUSH_BATCH + 1)
        used_at: dict[str, datetime | None] = {}
        with engine.connect() as connection:
            for key_id, key in keys:
                clock.advance(milliseconds=1)
                assert service.verify(connection, key).valid
                used_at[key_id] = clock()
        assert service.pending_last_used == FLUSH_BATCH + 1
        with statements(engine) as seen:
            assert flush(engine, service) == FLUSH_BATCH + 1
        assert len(updates(seen)) == 2
        assert last_used(engine) == used_at
        assert service.pending_last_used == 0

    def test_a_failed_flush_keeps_the_uses_pending(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """A flush whose UPDATE fails raises and loses nothing: the next flush writes the same first uses,
        even for a key used again while the failing flush ran."""
        service = deferred_service(clock)
        (first_id, first), (second_id, second) = issue(engine, service, 2)
        start = clock()
        verify(engine, service, first)
        used_during_flush: list[str] = []

        def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith("UPDATE"):
                if not used_during_flush:
                    used_during_flush.append(first_id)
                    clock.advance(seconds=5)
                    verify(engine, service, first)  # recorded anew: the flush took the pending use
                raise RuntimeError("the database went away")

        sa.event.listen(engine, "before_cursor_execute", fail)
        try:
            with pytest.raises(RuntimeError, match="went away"):
                flush(engine, service)
        finally:
            sa.event.remove(engine, "before_cursor_execute", fail)
        assert used_during_flush == [first_id]
        assert service.pending_last_used == 1
        clock.advance(seconds=5)
        verify(engine, service, first)  # a later use of a pending key keeps the first
        verify(engine, service, second)
        assert flush(engine, service) == 2
        assert last_used(engine) == {first_id: start, second_id: start + timedelta(seconds=10)}

    def test_a_full_buffer_writes_inline(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Beyond last_used_buffer_size pending keys, a verification writes in its own transaction."""
        service = deferred_service(clock, last_used_buffer_size=1)
        (first_id, first), (second_id, second) = issue(engine, service, 2)
        assert verify(engine, service, first)[1] is False
        with statements(engine) as seen:
            result, wrote = verify(engine, service, second)
        assert result.valid
        assert wrote is True
        assert len(updates(seen)) == 1
        assert last_used(engine) == {first_id: None, second_id: clock()}
        assert service.pending_last_used == 1

    def test_inline_is_the_default_and_never_buffers(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Without last_used_writes="deferred" a due write lands in the verifying transaction as before."""
        service = ApiKeyService(membership=MembershipService(clock=clock), clock=clock)
        [(key_id, key)] = issue(engine, service)
        assert verify(engine, service, key)[1] is True
        assert service.pending_last_used == 0
        assert flush(engine, service) == 0
        assert last_used(engine)[key_id] == clock()


class TestCacheHit:
    def test_a_hit_due_a_write_records_it_without_a_connection(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """A cached key due a last_used_at write is answered from memory: the use is recorded, not written."""
        service = deferred_service(clock, cache_ttl=timedelta(hours=1))
        [(key_id, key)] = issue(engine, service)
        verify(engine, service, key)  # the miss: cached, use recorded
        assert flush(engine, service) == 1
        clock.advance(seconds=30)
        answer = service.begin_verification(key)
        assert type(answer) is ApiKeyVerification  # not due: memory alone
        assert service.pending_last_used == 0
        clock.advance(INTERVAL)
        answer = service.begin_verification(key)
        assert type(answer) is ApiKeyVerification
        assert answer.valid
        assert service.pending_last_used == 1
        assert service.begin_verification(key) == answer  # recorded once, not again
        assert service.pending_last_used == 1
        assert flush(engine, service) == 1
        assert last_used(engine)[key_id] == clock()

    def test_a_hit_with_the_buffer_full_only_writes(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """With the buffer full a due hit asks for a connection, where it writes and looks nothing up."""
        service = deferred_service(clock, cache_ttl=timedelta(hours=1), last_used_buffer_size=1)
        (cached_id, cached), (_, other) = issue(engine, service, 2)
        verify(engine, service, cached)
        flush(engine, service)
        clock.advance(INTERVAL * 2)
        verify(engine, service, other)  # fills the buffer
        answer = service.begin_verification(cached)
        assert isinstance(answer, PendingVerification)
        with statements(engine) as seen, engine.connect() as connection:
            result, wrote = answer.complete_and_report(connection)
            connection.commit()
        assert result.valid
        assert wrote is True
        assert len(seen) == 1
        assert updates(seen) == seen
        assert last_used(engine)[cached_id] == clock()


class TestLastUsedWriter:
    def test_the_thread_writes_within_its_period(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """A running writer flushes a recorded use by itself, one period later, on its own transaction."""
        service = deferred_service(clock)
        [(key_id, key)] = issue(engine, service)
        with LastUsedWriter(service.flush_last_used, engine, every=timedelta(milliseconds=50)):
            verify(engine, service, key)
            deadline = time.monotonic() + 10
            while last_used(engine)[key_id] is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert last_used(engine)[key_id] == clock()
            assert service.pending_last_used == 0

    def test_stop_writes_what_is_pending(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """stop() ends the thread and writes the uses still pending, however long the period."""
        service = deferred_service(clock)
        [(key_id, key)] = issue(engine, service)
        writer = LastUsedWriter(service.flush_last_used, engine, every=timedelta(hours=1))
        writer.start()
        verify(engine, service, key)
        writer.stop()
        assert last_used(engine)[key_id] == clock()
        assert service.pending_last_used == 0

    def test_a_writer_needs_a_positive_period_and_starts_once(self, sqlite_engine: sa.Engine) -> None:
        """A zero period is refused; a second start() is an error, not a second thread."""
        service = deferred_service(FrozenClock())
        with pytest.raises(ValueError, match="positive"):
            LastUsedWriter(service.flush_last_used, sqlite_engine, every=timedelta(0))
        with (
            LastUsedWriter(service.flush_last_used, sqlite_engine) as writer,
            pytest.raises(RuntimeError, match="already started"),
        ):
            writer.start()


def rejecting_session() -> Any:
    """The host's session: with ``database=`` the API-key path must never ask for it."""
    raise AssertionError("the host's session was opened")


class TestAdapters:
    @staticmethod
    def fastapi_app(kit: TenantKit, engine: sa.Engine, flush_every: timedelta) -> FastAPI:
        tk = TenantKitFastAPI(kit, session=rejecting_session, database=engine)
        app = FastAPI(lifespan=tk.lifespan(flush_every=flush_every))
        tk.install(app)

        @app.get("/reports")
        async def reports(key: Annotated[ApiKeyVerification, Depends(tk.api_key())]) -> dict[str, Any]:
            return {"organization_id": key.organization_id}

        return app

    @pytest.mark.anyio
    async def test_the_fastapi_lifespan_flushes_every_period(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """With database= the lifespan writes the recorded uses every flush_every while serving."""
        kit = TenantKit(clock=clock, api_keys=ApiKeySettings(last_used_writes="deferred"))
        [(key_id, key)] = issue(engine, kit.api_keys)
        app = self.fastapi_app(kit, engine, timedelta(milliseconds=50))
        transport = httpx2.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx2.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            deadline = time.monotonic() + 10
            while last_used(engine)[key_id] is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert last_used(engine)[key_id] == clock()
            assert kit.api_keys.pending_last_used == 0

    @pytest.mark.anyio
    async def test_the_fastapi_lifespan_flushes_at_shutdown(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Whatever is pending when the application stops is written before the lifespan ends."""
        kit = TenantKit(clock=clock, api_keys=ApiKeySettings(last_used_writes="deferred"))
        [(key_id, key)] = issue(engine, kit.api_keys)
        app = self.fastapi_app(kit, engine, timedelta(hours=1))
        transport = httpx2.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
                assert (await client.get("/reports", headers={"X-API-Key": key})).status_code == 200
            assert kit.api_keys.pending_last_used == 1
            assert last_used(engine)[key_id] is None
        assert last_used(engine)[key_id] == clock()
        assert kit.api_keys.pending_last_used == 0

    def test_the_flask_writer_starts_at_the_first_recorded_use(
        self, engine: sa.Engine, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No thread until a use is recorded; then it writes every flush_every, and at its stop."""
        at_exit: list[Any] = []
        monkeypatch.setattr("tenantkit.flask.atexit.register", at_exit.append)
        kit = TenantKit(clock=clock, api_keys=ApiKeySettings(last_used_writes="deferred"))
        (first_id, first), (second_id, second) = issue(engine, kit.api_keys, 2)
        app = flask.Flask(__name__)
        tk = TenantKitFlask(
            kit, session=rejecting_session, database=engine, flush_every=timedelta(milliseconds=50), app=app
        )

        @app.get("/reports")
        @tk.require_api_key()
        def reports() -> dict[str, Any]:
            return {"ok": True}

        client = app.test_client()
        threads = writer_threads()
        assert client.get("/reports", headers={"X-API-Key": "tk_not_a_key"}).status_code == 401
        assert writer_threads() == threads  # nothing recorded, no thread
        try:
            assert client.get("/reports", headers={"X-API-Key": first}).status_code == 200
            assert writer_threads() == threads + 1
            assert len(at_exit) == 1  # the writer's last write is registered for exit
            deadline = time.monotonic() + 10
            while last_used(engine)[first_id] is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert last_used(engine)[first_id] == clock()
            assert client.get("/reports", headers={"X-API-Key": second}).status_code == 200
        finally:
            for stop in at_exit:
                stop()
        assert writer_threads() == threads
        assert last_used(engine)[second_id] == clock()
        assert tk.flush_last_used() == 0

    def test_flask_flush_last_used_writes_now(
        self, engine: sa.Engine, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """TenantKitFlask.flush_last_used() writes the pending uses on its database and says how many."""
        at_exit: list[Any] = []
        monkeypatch.setattr("tenantkit.flask.atexit.register", at_exit.append)
        kit = TenantKit(clock=clock, api_keys=ApiKeySettings(last_used_writes="deferred"))
        [(key_id, key)] = issue(engine, kit.api_keys)
        app = flask.Flask(__name__)
        tk = TenantKitFlask(
            kit, session=rejecting_session, database=engine, flush_every=timedelta(hours=1), app=app
        )

        @app.get("/reports")
        @tk.require_api_key()
        def reports() -> dict[str, Any]:
            return {"ok": True}

        try:
            assert app.test_client().get("/reports", headers={"X-API-Key": key}).status_code == 200
            assert last_used(engine)[key_id] is None
            assert tk.flush_last_used() == 1
            assert last_used(engine)[key_id] == clock()
        finally:
            for stop in at_exit:
                stop()


class TestNobodyToWrite:
    def test_flask_refuses_deferred_writes_without_an_engine(self, clock: FrozenClock) -> None:
        """Deferred uses with nothing to write them would pile up and be lost: the extension refuses."""
        kit = TenantKit(clock=clock, api_keys=ApiKeySettings(last_used_writes="deferred"))
        with pytest.raises(ConfigurationError, match="database=engine"):
            TenantKitFlask(kit, session=rejecting_session)

    @pytest.mark.anyio
    async def test_the_fastapi_lifespan_refuses_deferred_writes_without_an_engine(
        self, clock: FrozenClock
    ) -> None:
        """A lifespan with neither the adapter's database nor an engine of its own fails at start-up."""
        kit = TenantKit(clock=clock, api_keys=ApiKeySettings(last_used_writes="deferred"))
        tk = TenantKitFastAPI(kit, session=rejecting_session)
        app = FastAPI(lifespan=tk.lifespan())
        with pytest.raises(ConfigurationError, match="database=engine"):
            async with app.router.lifespan_context(app):
                pass  # pragma: no cover  start-up must fail

    def test_flask_close_stops_the_writer_after_writing(
        self, engine: sa.Engine, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """close() writes what is pending, ends the writer thread, and takes its exit hook back."""
        at_exit: list[Any] = []
        monkeypatch.setattr("tenantkit.flask.atexit.register", at_exit.append)
        kit = TenantKit(clock=clock, api_keys=ApiKeySettings(last_used_writes="deferred"))
        [(key_id, key)] = issue(engine, kit.api_keys)
        app = flask.Flask(__name__)
        tk = TenantKitFlask(
            kit, session=rejecting_session, database=engine, flush_every=timedelta(hours=1), app=app
        )

        @app.get("/reports")
        @tk.require_api_key()
        def reports() -> dict[str, Any]:
            return {"ok": True}

        threads = writer_threads()
        assert app.test_client().get("/reports", headers={"X-API-Key": key}).status_code == 200
        assert writer_threads() == threads + 1
        tk.close()
        assert writer_threads() == threads
        assert last_used(engine)[key_id] == clock()
        tk.close()  # a second close is harmless


def writer_threads() -> int:
    """How many LastUsedWriter threads are alive in this process."""
    return sum(thread.name == "tenantkit-last-used" and thread.is_alive() for thread in threading.enumerate())
