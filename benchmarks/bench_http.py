"""What API-key authentication costs an HTTP endpoint: the example apps under real servers, over loopback.

In one run, for FastAPI (``examples/fastapi_app.py`` under uvicorn, one worker) and Flask
(``examples/flask_app.py`` under gunicorn, one sync worker), each on every database chosen, with the
verification caches off and then on, and for 1 and 4 client connections, it prints the requests per second
and the p50/p99 latency of four endpoints that answer the same small constant JSON:

* ``/bench/open``: no dependency at all, the floor;
* ``/bench/session``: the host's session dependency (opened, not used);
* ``/bench/query``: the host's session and one indexed query (the ``(organization_id, user_id)`` unique
  index of ``team_members``), as a tenant-scoped endpoint makes it;
* ``/bench/api-key``: the adapter's API-key check with the scope ``reports:read``, as the examples build
  it: ``database=engine`` (a cache hit opens no session and no connection), ``last_used_writes="deferred"``.

With the caches off every request is a cache miss (one lookup on a connection of the engine); with them on
(``cache_ttl`` and ``negative_cache_ttl``) every request is a hit. The ratios are the issue's goals: a hit
serves at least 0.9x the requests of the no-auth endpoint, a miss at least 0.91x those of the session +
query endpoint (at most 1.1x its cost). "Auth adds" is the difference in seconds per request
(``1/rate``), "CPU" the server process's own CPU time per request (its threads' ``schedstat``; the
database server's work is not in it). A flood of well-formed keys that match nothing (valid checksums, from
``KeyFormat.generate``, cycled from a pool) is sent with the negative cache off and on, counting the
database lookups per request through the kit's metrics hook (``CountingMetrics``, on ``/bench/metrics``).
A last section times, in this process and without any server, what a cache hit costs inside each
framework (the app called directly: ASGI for FastAPI, WSGI for Flask) and the verification itself.

Databases: ``--sqlite`` (a temporary file, the default), ``--postgres``, ``--postgres-schema`` (tenantkit's
tables in a schema of their own), ``--postgres-async`` (an ``AsyncEngine`` and ``AsyncSession`` on psycopg;
FastAPI only); ``--all`` runs every one. PostgreSQL is the server at ``--postgres-url`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), on which a throwaway database is created and
dropped at the end.

The load comes from this process: one thread per connection, each a keep-alive HTTP/1.1 socket sending a
prepared request and reading the answer (a few µs per request, where an HTTP client library costs more than
the endpoints it measures). Rounds of ``--round-seconds`` go to the endpoints in turn, the order rotating
each round, so load drifts hit all alike; a rate is the median of its rounds, a ratio the median of the
paired ratios of the rounds, a latency a percentile of every request. Bounded: ``--budget`` seconds
(default 170) sets the rounds' length for everything chosen (at least 0.1 s; fewer rounds, at least 3, when
the budget cannot afford ``--rounds`` of those), start-up limits are 60 s, and the servers are always
terminated. Loopback only. Client and servers share the machine's cores, so absolute figures say as
much about the machine as about tenantkit; ratios carry over better. Run::

    .venv/bin/python benchmarks/bench_http.py                 # SQLite, FastAPI and Flask: about 3 minutes
    .venv/bin/python benchmarks/bench_http.py --all           # every database, the same budget
    .venv/bin/python benchmarks/bench_http.py --postgres-async --frameworks fastapi --budget 60
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import importlib.metadata
import importlib.util
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx2
import sqlalchemy as sa
from starlette.requests import Request  # at module level: FastAPI resolves the annotations by name

from tenantkit import ApiKeyService, ApiKeyVerification, InvalidApiKeyError, MembershipService, require_scopes
from tenantkit._http import api_key_from_scope
from tenantkit.metrics import CountingMetrics
from tenantkit.tables import team_members

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BODY: dict[str, object] = {"organization_id": "acme", "key": "CI", "reports": ["2030-q1", "2030-q2"]}
"""What every measured endpoint answers: what the examples' ``/api/reports`` answers."""

ENDPOINTS = {
    "open": ("no auth", "/bench/open"),
    "session": ("session only", "/bench/session"),
    "query": ("session + query", "/bench/query"),
    "key": ("API key", "/bench/api-key"),
}
BACKEND_ENDPOINTS = {
    "mounted": ("mounted no auth", "/bench/mounted/open"),
    "backend": ("ApiKeyBackend", "/bench/backend/api-key"),
}
"""FastAPI only: the pure ASGI backend (Starlette's ``AuthenticationMiddleware`` and ``requires``) on a
mounted app, beside the same mounted app without it, so that both pay the same ``Mount``."""
KEY_ENDPOINTS = ("key", "backend")
"""The endpoints that verify the key."""
HIT_FLOOR = 0.9
MISS_FLOOR = 1 / 1.1
SCHEMA = "tenantkit_bench"
STARTUP_SECONDS = 60
FRESH_KEYS = 30_000
"""Made-up keys of the flood that never repeats one (more than a run's requests to that endpoint)."""
OVERHEAD_SECONDS = 5.5
"""Start-up, set-up and warm-up of one server, as the budget counts it."""
MIN_ROUND_SECONDS = 0.1
IN_PROCESS_SECONDS = 12.0
"""The in-process section, as the budget counts it."""


# -- the apps, as the servers build them (configured through BENCH_* variables) ---------------------------


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _options(metrics: CountingMetrics) -> dict[str, Any]:
    cache = os.environ.get("BENCH_CACHE") == "on"
    ttl = float(os.environ.get("BENCH_CACHE_TTL", "30"))
    negative_ttl = float(os.environ.get("BENCH_NEGATIVE_CACHE_TTL", "30"))
    return {
        "schema": os.environ.get("BENCH_SCHEMA") or None,
        "api_key_cache_ttl": timedelta(seconds=ttl) if cache else None,
        "negative_cache_ttl": timedelta(seconds=negative_ttl) if cache else None,
        "metrics": metrics,
    }


def _member_query() -> sa.Select[tuple[Any]]:
    query = sa.select(team_members.c.role).where(
        team_members.c.organization_id == "acme", team_members.c.user_id == "alice"
    )
    schema = os.environ.get("BENCH_SCHEMA")
    if schema:
        query = query.execution_options(schema_translate_map={None: schema})
    return query


def fastapi_factory() -> Any:
    """The FastAPI example plus the benchmark's routes (run by ``uvicorn --factory``)."""
    from fastapi import Depends, FastAPI
    from starlette.authentication import requires

    from tenantkit.starlette import ApiKeyBackend

    metrics = CountingMetrics()
    app: FastAPI = _example("fastapi_app").create_app(
        os.environ["BENCH_DATABASE_URL"],
        async_engine=os.environ.get("BENCH_ASYNC") == "on",
        **_options(metrics),
    )
    tk = app.state.tenantkit
    get_session = app.state.get_session
    query = _member_query()
    key_dependency = Depends(tk.api_key("reports:read"))

    # The same async handler for the floor and the key: neither takes a thread-pool hop of its own.
    @app.get("/bench/open")
    async def bench_open() -> dict[str, object]:
        return BODY

    @app.get("/bench/api-key", dependencies=[key_dependency])
    async def bench_api_key() -> dict[str, object]:
        return BODY

    @app.get("/bench/session", dependencies=[Depends(get_session)])
    async def bench_session() -> dict[str, object]:
        return BODY

    # The session and one indexed query, as a host writes it: a sync handler on a Session (FastAPI runs it
    # in the thread pool), an async one awaiting an AsyncSession.
    if os.environ.get("BENCH_ASYNC") == "on":

        @app.get("/bench/query")
        async def bench_query_async(session: Any = Depends(get_session)) -> dict[str, object]:
            assert (await session.execute(query)).scalar_one() is not None
            return BODY

    else:

        @app.get("/bench/query")
        def bench_query(session: Any = Depends(get_session)) -> dict[str, object]:
            assert session.execute(query).scalar_one() is not None
            return BODY

    @app.get("/bench/metrics")
    async def bench_metrics() -> dict[str, int]:
        return _counts(metrics)

    # The key checked before routing, by tenantkit.starlette's backend, on an app of its own; its floor is
    # the same app mounted without the middleware.
    @requires("reports:read")
    async def bench_backend(request: Request) -> dict[str, object]:
        return BODY

    backend = ApiKeyBackend(tk.kit, database=app.state.engine)
    mounted, guarded = FastAPI(), FastAPI(middleware=[backend.middleware()])
    mounted.get("/open")(bench_open)
    guarded.get("/api-key")(bench_backend)
    app.mount("/bench/mounted", mounted)
    app.mount("/bench/backend", guarded)
    return app


def flask_factory() -> Any:
    """The Flask example plus the benchmark's routes (run by gunicorn as ``bench_http:flask_factory()``)."""
    from flask import Flask

    from tenantkit.flask import TenantKitFlask

    metrics = CountingMetrics()
    app: Flask = _example("flask_app").create_app(os.environ["BENCH_DATABASE_URL"], **_options(metrics))
    tk: TenantKitFlask = app.extensions["tenantkit"]
    query = _member_query()

    @app.get("/bench/open")
    def bench_open() -> dict[str, object]:
        return BODY

    @app.get("/bench/api-key")
    @tk.require_api_key("reports:read")
    def bench_api_key() -> dict[str, object]:
        return BODY

    @app.get("/bench/session")
    def bench_session() -> dict[str, object]:
        tk.session()
        return BODY

    @app.get("/bench/query")
    def bench_query() -> dict[str, object]:
        assert tk.session().execute(query).scalar_one() is not None
        return BODY

    @app.get("/bench/metrics")
    def bench_metrics() -> dict[str, int]:
        return _counts(metrics)

    return app


def _counts(metrics: CountingMetrics) -> dict[str, int]:
    return {
        source: metrics.total(source=source) for source in ("format", "cache", "negative_cache", "database")
    }


# -- the servers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One server configuration: a framework on a database."""

    framework: str  # "fastapi" or "flask"
    database: str  # "sqlite", "postgres", "postgres-schema", "postgres-async"
    url: str
    schema: str | None = None
    async_engine: bool = False

    @property
    def title(self) -> str:
        server = "uvicorn, 1 worker" if self.framework == "fastapi" else "gunicorn, 1 sync worker"
        framework = "FastAPI" if self.framework == "fastapi" else "Flask"
        where = {
            "sqlite": "SQLite file",
            "postgres": "PostgreSQL",
            "postgres-schema": f"PostgreSQL, tenantkit's tables in schema {self.schema}",
            "postgres-async": "PostgreSQL, AsyncEngine + AsyncSession (psycopg)",
        }[self.database]
        return f"{framework} ({server}) on {where}"

    @property
    def endpoints(self) -> dict[str, tuple[str, str]]:
        """What is measured on this target: name to (label, path)."""
        return ENDPOINTS | BACKEND_ENDPOINTS if self.framework == "fastapi" else ENDPOINTS


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_snapshot(pids: Sequence[int]) -> dict[tuple[int, int], int]:
    """CPU time each thread of ``pids`` has run so far, in nanoseconds (``/proc/<pid>/task/*/schedstat``)."""
    ran = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                ran[pid, int(task.name)] = int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return ran


def cpu_between(before: dict[tuple[int, int], int], after: dict[tuple[int, int], int]) -> tuple[int, int]:
    """CPU run between two snapshots: by every thread, and by those other than each process's main thread
    (a thread pool's). A thread that ended in between is left out; one that began counts in full."""
    total = side = 0
    for (pid, tid), ran in after.items():
        spent = ran - before.get((pid, tid), 0)
        total += spent
        if tid != pid:
            side += spent
    return total, side


@dataclass
class Server:
    port: int
    pids: list[int]


@contextmanager
def serve(target: Target, cache: bool, ttl: float, negative_ttl: float, directory: Path) -> Iterator[Server]:
    """Run ``target``'s app on a free loopback port until the block ends; always terminated."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("TENANTKIT_", "BENCH_"))}
    env.update(
        {
            "BENCH_DATABASE_URL": target.url,
            "BENCH_SCHEMA": target.schema or "",
            "BENCH_ASYNC": "on" if target.async_engine else "off",
            "BENCH_CACHE": "on" if cache else "off",
            "BENCH_CACHE_TTL": str(ttl),
            "BENCH_NEGATIVE_CACHE_TTL": str(negative_ttl),
            "PYTHONPATH": str(Path(__file__).resolve().parent),
        }
    )
    if target.framework == "fastapi":
        command = [
            *(sys.executable, "-m", "uvicorn", "--factory", "bench_http:fastapi_factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"),
        ]
    else:
        command = [
            *(sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync"),
            *("--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--no-control-socket"),
            "bench_http:flask_factory()",
        ]
    # In a directory of its own, so that no .env of the caller's configures the app.
    process = subprocess.Popen(command, env=env, cwd=directory, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command[2]} exited with {process.returncode}")
            try:
                httpx2.get(f"http://127.0.0.1:{port}/bench/open", timeout=2, trust_env=False)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{command[2]} did not start within {STARTUP_SECONDS} s") from None
                time.sleep(0.1)
        yield Server(port=port, pids=[process.pid, *children(process.pid)])
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group of the server this function started
            process.wait()


# -- the load ------------------------------------------------------------------------------------------


def prepared(port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Link:
    """One keep-alive HTTP/1.1 connection: sends prepared requests, reads each answer, reconnects on close."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buffer = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def get(self, request: bytes) -> int:
        """Send ``request``; the answer's status (a connection the server closed is opened again once)."""
        reused = self.sock is not None
        sock = self.sock or self.connect()
        try:
            sock.sendall(request)
            return self._answer(sock)
        except ConnectionError:
            self.close()
            if not reused:
                raise
            return self.get(request)

    def _answer(self, sock: socket.socket) -> int:
        buffer = self.buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed before an answer")
            buffer += chunk
        head = buffer[:end].decode("latin-1").lower()
        length, close = 0, False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value:
                close = True
        while len(buffer) < end + 4 + length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed in the middle of an answer")
            buffer += chunk
        self.buffer = buffer[end + 4 + length :]
        if close:
            self.close()
        return int(head[9:12])


@dataclass
class Sample:
    """What one endpoint measured over its rounds."""

    rates: list[float] = field(default_factory=list)
    latencies_ns: list[int] = field(default_factory=list)
    requests: int = 0
    cpu_ns: int = 0
    side_ns: int = 0  # of that, threads other than the main one

    def add(self, other: Sample) -> None:
        self.rates += other.rates
        self.latencies_ns += other.latencies_ns
        self.requests += other.requests
        self.cpu_ns += other.cpu_ns
        self.side_ns += other.side_ns

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def percentile_ms(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6

    @property
    def cpu_us(self) -> float:
        return self.cpu_ns / self.requests / 1e3

    @property
    def side_us(self) -> float:
        return self.side_ns / self.requests / 1e3


def drive(server: Server, requests: Sequence[bytes], connections: int, seconds: float, expect: int) -> Sample:
    """Send ``requests`` (cycled) over ``connections`` keep-alive sockets for ``seconds``."""
    start_line = threading.Barrier(connections + 1)
    deadline = [0.0]
    latencies: list[list[int]] = [[] for _ in range(connections)]
    ends = [0.0] * connections
    failures: list[str] = []

    def worker(index: int) -> None:
        link = Link(server.port)
        link.connect()
        mine = latencies[index]
        position = index
        count = len(requests)
        clock = time.perf_counter_ns
        try:
            start_line.wait()
            stop = deadline[0]
            while time.perf_counter() < stop:
                before = clock()
                status = link.get(requests[position % count])
                mine.append(clock() - before)
                position += connections  # the connections never send the same request together
                if status != expect:
                    failures.append(f"status {status}")
                    break
        except OSError as error:
            failures.append(repr(error))
        finally:
            ends[index] = time.perf_counter()
            link.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(connections)]
    for thread in threads:
        thread.start()
    cpu_before = cpu_snapshot(server.pids)
    started = time.perf_counter()
    deadline[0] = started + seconds
    start_line.wait()
    for thread in threads:
        thread.join()
    cpu_total, cpu_side = cpu_between(cpu_before, cpu_snapshot(server.pids))
    if failures:
        raise SystemExit(f"{len(failures)} request(s) failed, e.g. {failures[0]}")
    done = sum(len(mine) for mine in latencies)
    return Sample(
        rates=[done / (max(ends) - started)],
        latencies_ns=[value for mine in latencies for value in mine],
        requests=done,
        cpu_ns=cpu_total,
        side_ns=cpu_side,
    )


# -- one server configuration ------------------------------------------------------------------------------


@dataclass
class Measured:
    """The figures of one target with one cache setting."""

    samples: dict[tuple[int, str], Sample]  # (connections, endpoint)
    paired: dict[tuple[int, str, str], list[float]]  # (connections, endpoint, baseline): per-round ratios
    lookups_per_key_request: float
    floods: dict[str, tuple[Sample, float]]  # pool of made-up keys: the sample, lookups per request


def metrics_of(server: Server) -> dict[str, int]:
    answer = httpx2.get(f"http://127.0.0.1:{server.port}/bench/metrics", timeout=10, trust_env=False)
    answer.raise_for_status()
    counts: dict[str, int] = answer.json()
    return counts


def issue_key(server: Server) -> str:
    with httpx2.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=30, trust_env=False) as client:
        owner = {"X-User": "alice"}
        created = client.post("/organizations", headers=owner, json={"organization_id": "acme"})
        if created.status_code not in (201, 409):
            raise SystemExit(f"creating the organization answered {created.status_code}: {created.text}")
        issued = client.post(
            "/tenantkit/organizations/acme/api-keys",
            headers=owner,
            json={"name": "CI", "scopes": ["reports:read"]},
        )
        issued.raise_for_status()
        key: str = issued.json()["key"]
        return key


def measure(
    server: Server,
    endpoints: dict[str, tuple[str, str]],
    connections: Sequence[int],
    rounds: int,
    seconds: float,
    floods: dict[str, Sequence[str]],
) -> Measured:
    """Every endpoint at every connection count, rounds interleaved; then each flood."""
    key = issue_key(server)
    # The same request to every endpoint, key included: the difference is what the endpoint does with it.
    requests = {
        name: [prepared(server.port, path, {"Authorization": f"Bearer {key}"})]
        for name, (_, path) in endpoints.items()
    }
    most = max(connections)
    for name in endpoints:
        drive(server, requests[name], most, 0.3, 200)
    samples: dict[tuple[int, str], Sample] = {}
    paired: dict[tuple[int, str, str], list[float]] = {}
    before = metrics_of(server)
    names = list(endpoints)
    for count in connections:
        for round_number in range(rounds):
            order = names[round_number % len(names) :] + names[: round_number % len(names)]
            rates = {}
            for name in order:
                sample = drive(server, requests[name], count, seconds, 200)
                samples.setdefault((count, name), Sample()).add(sample)
                rates[name] = sample.rates[0]
            for name in names:
                for baseline in names:
                    paired.setdefault((count, name, baseline), []).append(rates[name] / rates[baseline])
    after = metrics_of(server)
    key_requests = sum(
        samples[count, name].requests for count in connections for name in KEY_ENDPOINTS if name in endpoints
    )
    flooded = {}
    for label, junk in floods.items():
        flood = [
            prepared(server.port, ENDPOINTS["key"][1], {"Authorization": f"Bearer {value}"}) for value in junk
        ]
        if len(junk) < 1000:
            drive(server, flood, most, 0.3, 401)  # the steady state: every key of the pool seen once
        start = metrics_of(server)
        sample = Sample()
        for round_number in range(rounds):
            # Each round begins further into the pool: a pool larger than the run never repeats a key.
            offset = round_number * len(flood) // rounds
            sample.add(drive(server, flood[offset:] + flood[:offset], most, seconds, 401))
        flooded[label] = (sample, (metrics_of(server)["database"] - start["database"]) / sample.requests)
    lookups = (after["database"] - before["database"]) / key_requests
    return Measured(samples, paired, lookups, flooded)


# -- reporting -------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    title: str
    check: str
    connections: int
    ratio: float
    floor: float

    @property
    def met(self) -> bool:
        return self.ratio >= self.floor


def report(target: Target, off: Measured, on: Measured, connections: Sequence[int]) -> list[Verdict]:
    """Print one target's table, ratios and floods; return the goals' verdicts."""
    print(f"\n{target.title}")
    header = "".join(
        f"   --------- {count} conn{'s' if count > 1 else ''} ---------" for count in connections
    )
    print(f"{'':<24}{header}")
    columns = "".join(f"  {'r/s':>6} {'p50 ms':>6} {'p99 ms':>6} {'CPU µs':>6}" for _ in connections)
    print(f"{'endpoint':<16}{'caches':<8}{columns}")
    for measured, cache, key_label in ((off, "off", "API key, miss"), (on, "on", "API key, hit")):
        for name, (label, _) in target.endpoints.items():
            cells = "".join(
                f"  {sample.rate:>6.0f} {sample.percentile_ms(0.5):>6.2f} {sample.percentile_ms(0.99):>6.2f}"
                f" {sample.cpu_us:>6.0f}"
                for sample in (measured.samples[count, name] for count in connections)
            )
            outcome = key_label.split(", ")[1]
            shown = {"key": key_label, "backend": f"backend, {outcome}"}.get(name, label)
            print(f"{shown:<16}{cache:<8}{cells}")
    verdicts: list[Verdict] = []

    def ratio_line(
        label: str, measured: Measured, baseline: str, floor: float | None, endpoint: str = "key"
    ) -> None:
        values = [statistics.median(measured.paired[count, endpoint, baseline]) for count in connections]
        cpu = [
            measured.samples[count, baseline].cpu_us / measured.samples[count, endpoint].cpu_us
            for count in connections
        ]
        cells = "".join(
            f"  {value:>5.2f}x ({by_cpu:.2f}x)" for value, by_cpu in zip(values, cpu, strict=True)
        )
        goal = ""
        if floor is not None:
            marks = ", ".join(
                f"{count}: {'met' if value >= floor else 'MISSED'}"
                for count, value in zip(connections, values, strict=True)
            )
            goal = f"  goal ≥ {floor:.2f}x ({marks})"
            verdicts.extend(
                Verdict(target.title, label, count, value, floor)
                for count, value in zip(connections, values, strict=True)
            )
        print(f"  {label:<30}{cells}{goal}")

    def added_line(label: str, measured: Measured, baseline: str, endpoint: str = "key") -> None:
        cells = []
        for count in connections:
            key, base = measured.samples[count, endpoint], measured.samples[count, baseline]
            wall = (1 / key.rate - 1 / base.rate) * 1e6
            cells.append(f"  {wall:>+6.0f} µs (CPU {key.cpu_us - base.cpu_us:>+4.0f})")
        print(f"  {label:<30}{''.join(cells)}")

    counts = "".join(f"  {f'{count} conn{chr(115) if count > 1 else chr(32)}':>15}" for count in connections)
    print(f"  {'requests/s (server CPU) ratio':<30}{counts}")
    ratio_line("hit / no auth", on, "open", HIT_FLOOR)
    ratio_line("hit / session only", on, "session", None)
    ratio_line("miss / session + query", off, "query", MISS_FLOOR)
    ratio_line("miss / session only", off, "session", None)
    ratio_line("miss / no auth", off, "open", None)
    added_line("auth adds, hit vs no auth", on, "open")
    added_line("auth adds, miss vs sess.+query", off, "query")
    if "backend" in target.endpoints:
        ratio_line("ApiKeyBackend hit / mounted", on, "mounted", HIT_FLOOR, "backend")
        ratio_line("ApiKeyBackend miss / sess.+qu.", off, "query", MISS_FLOOR, "backend")
        added_line("ApiKeyBackend adds, hit", on, "mounted", "backend")
    print(
        f"  database lookups per API-key request: {off.lookups_per_key_request:.2f} caches off,"
        f" {on.lookups_per_key_request:.3f} caches on"
    )
    side = ", ".join(
        f"{off.samples[count, 'key'].side_us:.0f} / {on.samples[count, 'key'].side_us:.0f} µs ({count} conns)"
        for count in connections
    )
    print(f"  server CPU off the main thread (a thread pool) per API-key request, miss / hit: {side}")
    print(f"  floods of made-up well-formed keys (each answered 401), {max(connections)} conns:")
    for cache, measured in (("off", off), ("on", on)):
        for label, (sample, lookups) in measured.floods.items():
            p50, p99 = sample.percentile_ms(0.5), sample.percentile_ms(0.99)
            print(
                f"    negative cache {cache:<3} {label:<26} {sample.rate:>6.0f} r/s  p50 {p50:5.2f} ms"
                f"  p99 {p99:5.2f} ms  {lookups:.3f} lookups/request"
            )
    return verdicts


# -- in process: what a hit costs inside each framework, without a server -----------------------------------


def _per_call_us(calls: dict[str, Callable[[], object]], count: int, rounds: int = 7) -> dict[str, float]:
    """CPU µs per call of each of ``calls``, in alternating rounds (this process's CPU time: the steadier
    figure on a shared machine); the median of the rounds."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.process_time()
            for _ in range(count):
                call()
            times[name].append((time.process_time() - start) / count * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def _wsgi_call(app: Any, path: str, authorization: str | None) -> Callable[[], object]:
    """Call the WSGI app for one GET of ``path``, as gunicorn would, without a socket."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.input": None, "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.input_terminated": True,
        "wsgi.file_wrapper": None, "SCRIPT_NAME": "", "RAW_URI": path, "SERVER_SOFTWARE": "gunicorn",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "HTTP_HOST": "127.0.0.1:8000",
        "gunicorn.socket": None,
    }  # fmt: skip
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization

    def call() -> object:
        statuses: list[str] = []
        body = b"".join(app.wsgi_app(dict(environ), lambda status, _headers: statuses.append(status)))
        assert statuses[0].startswith("200"), statuses
        return body

    return call


async def _asgi_costs(apps: dict[str, tuple[Any, str]], authorization: str) -> dict[str, float]:
    """Per-call µs of each ``name: (app, path)``, in alternating rounds, every app's lifespan running."""

    async def call(app: Any, path: str) -> None:
        headers = [(b"host", b"127.0.0.1"), (b"authorization", authorization.encode())]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
            "state": {},
        }  # fmt: skip
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
        assert statuses == [200], statuses

    times: dict[str, list[float]] = {name: [] for name in apps}
    async with AsyncExitStack() as stack:
        for app in {id(app): app for app, _ in apps.values()}.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for app, path in apps.values():
            await call(app, path)  # the first is a miss, which fills the cache
        for _ in range(7):
            for name, (app, path) in apps.items():
                start = time.process_time()
                for _ in range(1000):
                    await call(app, path)
                times[name].append((time.process_time() - start) / 1000 * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def in_process() -> None:
    """Time a cache hit inside FastAPI (ASGI) and Flask (WSGI) next to the no-auth endpoint, and verify()."""
    # Removed at exit after the Flask app's last_used_at writer has flushed (atexit runs last-in first-out).
    directory = Path(tempfile.mkdtemp(prefix="tenantkit-bench-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    names = {"BENCH_DATABASE_URL": f"sqlite:///{directory / 'in-process.sqlite3'}", "BENCH_CACHE": "on"}
    os.environ.update(names)
    try:
        fastapi = fastapi_factory()
        flask = flask_factory()
    finally:
        for name in names:
            os.environ.pop(name, None)
    client = flask.test_client()
    owner = {"X-User": "alice"}
    client.post("/organizations", headers=owner, json={"organization_id": "acme"})
    issued = client.post(
        "/tenantkit/organizations/acme/api-keys",
        headers=owner,
        json={"name": "CI", "scopes": ["reports:read"]},
    )
    key: str = issued.get_json()["key"]
    wsgi = {
        "open": _wsgi_call(flask, "/bench/open", f"Bearer {key}"),
        "key": _wsgi_call(flask, "/bench/api-key", f"Bearer {key}"),
    }
    flask_costs = _per_call_us(wsgi, 1000)
    costs = asyncio.run(_asgi_costs(_fastapi_variants(fastapi), f"Bearer {key}"))
    api_keys = fastapi.state.tenantkit.kit.api_keys
    verification = _per_call_us({"hit": lambda: api_keys.begin_verification(key)}, 20000)["hit"]
    flask.extensions["example_engine"].dispose()
    print(
        "\nIn process, CPU per call, no server and no socket (the apps called directly; SQLite; cache hits):"
    )
    for name, floor, with_key in (
        ("FastAPI (ASGI)", costs["open"], costs["key"]),
        ("Flask (WSGI)", flask_costs["open"], flask_costs["key"]),
    ):
        print(
            f"  {name:<15} no auth {floor:6.1f} µs   API key {with_key:6.1f} µs"
            f"   auth adds {with_key - floor:5.1f} µs   ratio {floor / with_key:.2f}x"
        )
    base = costs["small open"]
    print(
        f"  FastAPI, an app of four routes: no auth {base:.1f} µs; one empty async dependency"
        f" {costs['small empty'] - base:+.1f} µs; the key check in one dependency (no security-scheme"
        f" sub-dependencies) {costs['small no schemes'] - base:+.1f} µs;"
        f" tk.api_key {costs['small key'] - base:+.1f} µs"
    )
    print(f"  the verification itself (begin_verification, a cache hit): {verification:.2f} µs")


def _fastapi_variants(example: Any) -> dict[str, tuple[Any, str]]:
    """The example's two endpoints; on an app of four routes: no auth, an empty dependency, the key check
    without its security-scheme sub-dependencies, ``tk.api_key``."""
    from fastapi import Depends, FastAPI

    small = FastAPI()

    async def nothing() -> None:
        return None

    async def answer() -> dict[str, object]:
        return BODY

    api_keys = example.state.tenantkit.kit.api_keys

    async def without_schemes(request: Request) -> ApiKeyVerification:
        # tk.api_key's check on a hit, without its two security-scheme sub-dependencies.
        presented = api_key_from_scope(request.scope)
        if presented is None:
            raise InvalidApiKeyError("missing")
        known = api_keys.begin_verification(presented)
        assert type(known) is ApiKeyVerification
        require_scopes(known, ("reports:read",))
        return known

    small.get("/open")(answer)
    small.get("/empty", dependencies=[Depends(nothing)])(answer)
    small.get("/no-schemes", dependencies=[Depends(without_schemes)])(answer)
    small.get("/key", dependencies=[Depends(example.state.tenantkit.api_key("reports:read"))])(answer)
    return {
        "open": (example, "/bench/open"),
        "key": (example, "/bench/api-key"),
        "small open": (small, "/open"),
        "small empty": (small, "/empty"),
        "small no schemes": (small, "/no-schemes"),
        "small key": (small, "/key"),
    }


# -- the run ---------------------------------------------------------------------------------------------


@contextmanager
def throwaway_database(url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``url``, dropped at the end; its URL."""
    name = f"tenantkit_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        raise SystemExit(
            f"PostgreSQL at {sa.make_url(url).render_as_string()} is unavailable: {error}"
        ) from None
    try:
        yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def versions() -> str:
    names = ("tenantkit", "fastapi", "starlette", "uvicorn", "flask", "gunicorn", "sqlalchemy", "psycopg")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file (the default)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, tenantkit's tables in public")
    parser.add_argument(
        "--postgres-schema", action="store_true", help=f"PostgreSQL, tables in schema {SCHEMA}"
    )
    parser.add_argument(
        "--postgres-async", action="store_true", help="PostgreSQL, AsyncEngine (FastAPI only)"
    )
    parser.add_argument("--all", action="store_true", help="every database above")
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="server to use"
    )
    parser.add_argument("--frameworks", default="fastapi,flask", help="comma-separated: fastapi, flask")
    parser.add_argument("--connections", default="1,4", help="comma-separated client connection counts")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per endpoint (medians reported)")
    parser.add_argument(
        "--budget", type=float, default=170, help="seconds for the whole run (sets rounds' length)"
    )
    parser.add_argument("--round-seconds", type=float, help="length of a round (overrides --budget)")
    parser.add_argument("--cache-ttl", type=float, default=30.0, help="verification cache TTL when on")
    parser.add_argument("--negative-cache-ttl", type=float, default=30.0, help="negative cache TTL when on")
    parser.add_argument("--flood-keys", type=int, default=100, help="made-up keys the flood cycles through")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process timing")
    arguments = parser.parse_args()
    arguments.frameworks = [name.strip() for name in arguments.frameworks.split(",") if name.strip()]
    arguments.connections = [int(value) for value in arguments.connections.split(",")]
    if not set(arguments.frameworks) <= {"fastapi", "flask"} or not arguments.frameworks:
        parser.error("--frameworks: fastapi, flask or both")
    if not (
        1 <= arguments.rounds <= 50
        and all(1 <= count <= 32 for count in arguments.connections)
        and 10 <= arguments.budget <= 3600
        and 1 <= arguments.flood_keys <= 100_000
        and (arguments.round_seconds is None or 0.05 <= arguments.round_seconds <= 30)
    ):
        parser.error("keep it bounded: rounds 1-50, connections 1-32, budget 10-3600 s, round 0.05-30 s")
    return arguments


def targets(arguments: argparse.Namespace, directory: Path, postgres: Callable[[], str]) -> list[Target]:
    chosen = [
        name
        for name in ("sqlite", "postgres", "postgres-schema", "postgres-async")
        if arguments.all or getattr(arguments, name.replace("-", "_"))
    ] or ["sqlite"]
    found = []
    for framework in arguments.frameworks:
        for database in chosen:
            if database == "postgres-async" and framework != "fastapi":
                continue
            if database == "sqlite":
                found.append(Target(framework, database, f"sqlite:///{directory / f'{framework}.sqlite3'}"))
            else:
                found.append(
                    Target(
                        framework,
                        database,
                        postgres(),
                        schema=SCHEMA if database == "postgres-schema" else None,
                        async_engine=database == "postgres-async",
                    )
                )
    return found


def plan(arguments: argparse.Namespace, per_round: int, seconds_left: float) -> tuple[int, float]:
    """Rounds and their length so that ``per_round`` measurements a round fit in ``seconds_left``.

    Rounds are at least 0.1 s (a few hundred requests); when the budget cannot afford ``--rounds`` of
    those, fewer rounds (at least 3) are made.
    """
    if arguments.round_seconds is not None:
        return arguments.rounds, float(arguments.round_seconds)
    seconds = seconds_left / (per_round * arguments.rounds)
    if seconds >= MIN_ROUND_SECONDS:
        return arguments.rounds, seconds
    rounds = max(3, int(seconds_left / (per_round * MIN_ROUND_SECONDS)))
    return min(rounds, arguments.rounds), MIN_ROUND_SECONDS


def main() -> None:
    arguments = parse_arguments()
    started = time.monotonic()
    junk_format = ApiKeyService(membership=MembershipService()).format
    pool = [junk_format.generate() for _ in range(arguments.flood_keys)]
    fresh = [junk_format.generate() for _ in range(FRESH_KEYS)]
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        postgres_url: list[str] = []

        def postgres() -> str:
            if not postgres_url:
                postgres_url.append(stack.enter_context(throwaway_database(arguments.postgres_url)))
            return postgres_url[0]

        chosen = targets(arguments, directory, postgres)
        servers = 2 * len(chosen)
        # Per server, every endpoint at every connection count; the pool flood; the fresh flood, caches on.
        per_round = sum(2 * (len(arguments.connections) * len(target.endpoints) + 1) + 1 for target in chosen)
        fixed = servers * OVERHEAD_SECONDS + (0 if arguments.no_in_process else IN_PROCESS_SECONDS)
        rounds, seconds = plan(arguments, per_round, arguments.budget - fixed)
        print(
            f"{platform.machine()}, {os.cpu_count()} CPUs ({_cpu_model()}),"
            f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; {versions()}"
        )
        print(
            f"{len(chosen)} target(s) x caches off/on; {rounds} rounds of {seconds:.2f} s per"
            " endpoint and connection count; client threads and servers share this machine's CPUs"
        )
        verdicts = []
        for target in chosen:
            measured = []
            for cache in (False, True):
                with serve(
                    target, cache, arguments.cache_ttl, arguments.negative_cache_ttl, directory
                ) as server:
                    floods: dict[str, Sequence[str]] = {f"{len(pool)} keys, cycled": pool}
                    if cache:
                        floods["a new key every request"] = fresh
                    measured.append(
                        measure(server, target.endpoints, arguments.connections, rounds, seconds, floods)
                    )
            verdicts += report(target, measured[0], measured[1], arguments.connections)
        if not arguments.no_in_process:
            in_process()
    missed = [verdict for verdict in verdicts if not verdict.met]
    print(f"\n{len(verdicts) - len(missed)} of {len(verdicts)} goal checks met", end="")
    print(":" if missed else ".")
    for verdict in missed:
        print(
            f"  MISSED {verdict.title}, {verdict.connections} conns:"
            f" {verdict.check} {verdict.ratio:.2f}x < {verdict.floor:.2f}x"
        )
    print(f"({time.monotonic() - started:.0f} s)")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
