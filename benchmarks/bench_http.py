"""What API-key authentication costs an HTTP endpoint: the FastAPI example under uvicorn, over loopback.

The FastAPI example (``examples/fastapi_app.py``) runs under uvicorn on 127.0.0.1 in a subprocess, on a
temporary SQLite file, with two extra routes that answer exactly what ``/api/reports`` answers but without
the API-key dependency: ``/bench/open`` (nothing else: the floor) and ``/bench/session`` (with the example's
own session dependency, which the API-key check needs and which most tenant-scoped endpoints open anyway).
Keep-alive ``httpx2`` clients send rounds of requests to each endpoint in turn, so load drifts hit all
alike; the script prints requests per second (median of the rounds) and the ratios, once with the
verification cache off (every request looks the key up in the database) and once with it on
(``TenantKit(api_keys=ApiKeySettings(cache_ttl=...))``).

Bounded: ``--rounds`` x ``--requests`` per endpoint and configuration (default 5 x 2,000), a 30-second
start-up limit, and the servers are always terminated. Loopback only. Client and server share the machine,
so absolute figures say as much about the machine as about tenantkit; the ratio is the result. Run::

    .venv/bin/python benchmarks/bench_http.py
    .venv/bin/python benchmarks/bench_http.py --rounds 3 --requests 1000 --threads 4
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fastapi_app.py"


def app_factory() -> Any:
    """The example app plus the unauthenticated twin of ``/api/reports`` (run by uvicorn ``--factory``)."""
    spec = importlib.util.spec_from_file_location("fastapi_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    ttl = os.environ.get("BENCH_CACHE_TTL_SECONDS")
    app: FastAPI = example.create_app(
        os.environ["BENCH_DATABASE_URL"],
        api_key_cache_ttl=timedelta(seconds=float(ttl)) if ttl else None,
    )

    @app.get("/bench/open")
    def open_reports() -> dict[str, object]:
        return {"organization_id": "acme", "key": "CI", "reports": ["2030-q1", "2030-q2"]}

    @app.get("/bench/session", dependencies=[Depends(session_dependency(app))])
    def reports_with_session() -> dict[str, object]:
        return {"organization_id": "acme", "key": "CI", "reports": ["2030-q1", "2030-q2"]}

    return app


def session_dependency(app: Any) -> Any:
    """The example's session dependency, found under the API-key dependency of ``/api/reports``."""
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path == "/api/reports":
            pending = list(route.dependant.dependencies)
            while pending:
                dependant = pending.pop()
                if dependant.name == "session":
                    return dependant.call
                pending.extend(dependant.dependencies)
    raise SystemExit("the example's /api/reports no longer depends on a session")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def server(database_url: str, cache_ttl: float | None) -> Iterator[str]:
    """Run the app under uvicorn on a free loopback port until the block ends."""
    port = free_port()
    env = {**os.environ, "BENCH_DATABASE_URL": database_url, "PYTHONPATH": str(Path(__file__).parent)}
    env.pop("BENCH_CACHE_TTL_SECONDS", None)
    if cache_ttl is not None:
        env["BENCH_CACHE_TTL_SECONDS"] = str(cache_ttl)
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench_http:app_factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise SystemExit(f"uvicorn exited with {process.returncode}")
            try:
                httpx2.get(f"{base_url}/bench/open", timeout=1, trust_env=False)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("uvicorn did not start within 30 s") from None
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def drive(base_url: str, path: str, headers: dict[str, str], requests: int, threads: int) -> float:
    """Send ``requests`` GETs (split over ``threads`` keep-alive clients); return requests per second."""
    failures: list[int] = []

    def worker(count: int) -> None:
        with httpx2.Client(base_url=base_url, headers=headers, timeout=10, trust_env=False) as client:
            for _ in range(count):
                status = client.get(path).status_code
                if status != 200:
                    failures.append(status)

    shares = [requests // threads + (1 if index < requests % threads else 0) for index in range(threads)]
    workers = [threading.Thread(target=worker, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"{len(failures)} requests to {path} failed, e.g. status {failures[0]}")
    return requests / elapsed


def measure(base_url: str, rounds: int, requests: int, threads: int) -> dict[str, float]:
    """Median requests per second of each endpoint, rounds interleaved."""
    with httpx2.Client(base_url=base_url, timeout=10, trust_env=False) as client:
        owner = {"X-User": "alice"}
        created = client.post("/organizations", headers=owner, json={"organization_id": "acme"})
        if created.status_code not in (201, 409):
            raise SystemExit(f"creating the organization answered {created.status_code}")
        issued = client.post(
            "/tenantkit/organizations/acme/api-keys",
            headers=owner,
            json={"name": "CI", "scopes": ["reports:read"]},
        )
        issued.raise_for_status()
        key = issued.json()["key"]
    endpoints = {
        "open": ("/bench/open", {}),
        "session": ("/bench/session", {}),
        "api_key": ("/api/reports", {"Authorization": f"Bearer {key}"}),
    }
    for path, headers in endpoints.values():
        drive(base_url, path, headers, min(requests, 500), threads)
    rates: dict[str, list[float]] = {name: [] for name in endpoints}
    for _ in range(rounds):
        for name, (path, headers) in endpoints.items():
            rates[name].append(drive(base_url, path, headers, requests, threads))
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per endpoint (median reported)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--threads", type=int, default=1, help="concurrent keep-alive clients")
    parser.add_argument("--cache-ttl", type=float, default=30.0, help="cache TTL in seconds when on")
    arguments = parser.parse_args()
    if not (
        1 <= arguments.rounds <= 50 and 1 <= arguments.requests <= 50_000 and 1 <= arguments.threads <= 32
    ):
        parser.error("keep it bounded: rounds 1-50, requests 1-50,000, threads 1-32")

    print(
        f"FastAPI example under uvicorn on 127.0.0.1, SQLite file; {arguments.threads} keep-alive client(s), "
        f"{arguments.rounds} rounds x {arguments.requests} requests per endpoint; medians"
    )
    print(
        f"{'verification cache':<20} {'no auth':>12} {'session only':>14} {'API key':>12}"
        f" {'vs no auth':>11} {'vs session':>11} {'added vs session':>17}"
    )
    with tempfile.TemporaryDirectory() as directory:
        for label, ttl in (("off", None), (f"on ({arguments.cache_ttl:g} s TTL)", arguments.cache_ttl)):
            database_url = f"sqlite:///{Path(directory) / f'bench-{label.split()[0]}.sqlite3'}"
            with server(database_url, ttl) as base_url:
                rps = measure(base_url, arguments.rounds, arguments.requests, arguments.threads)
            added_us = (1 / rps["api_key"] - 1 / rps["session"]) * 1e6
            print(
                f"{label:<20} {rps['open']:>8.0f} r/s {rps['session']:>10.0f} r/s {rps['api_key']:>8.0f} r/s"
                f" {rps['api_key'] / rps['open']:>10.2f}x {rps['api_key'] / rps['session']:>10.2f}x"
                f" {added_us:>14.0f} µs"
            )


if __name__ == "__main__":
    main()
