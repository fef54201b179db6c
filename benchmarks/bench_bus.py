"""Revocation across processes: verifications per second and revocation lag, bus off / poll / NOTIFY / Redis.

On a throwaway PostgreSQL database, ``--apps`` application processes (plain ``spawn`` processes, each a
:class:`~tenantkit.TenantKit` with a ``--ttl`` verification cache) verify ``--keys`` keys round-robin at full
speed, while this process revokes ``--revocations`` of them one after the other. For each bus it prints:

* verifications per second, all application processes together, and the share the cache answered;
* the **acceptance lag**: for each revoked key and application process, how long after the revocation
  committed that process still accepted the key (0 when it never did), p50 / p99 / max;
* the **delivery lag**: how long after the commit that process's bus applied the revocation (not for "off").

Then, in this process alone, a cached verification (``verify_cached``, a hit) with a bus subscribed next to
the same without one and next to the floor of a hit: check the format, SHA-256, a dict lookup.

With the bus off the lag is the cache's time to live; with a bus, the bus's latency (the poller's: its
interval). Run::

    .venv/bin/python benchmarks/bench_bus.py
    .venv/bin/python benchmarks/bench_bus.py --buses off,postgres --apps 2 --ttl 2
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, ApiKeySettings, BusSettings, TenantKit
from tenantkit.api_keys._format import KeyFormat
from tenantkit.bus import Delivery

ORG = "org_bench"


def bus_settings(name: str, url: str, redis_url: str, channel: str, interval: float) -> BusSettings:
    if name == "off":
        return BusSettings()
    if name == "redis":
        return BusSettings(backend="redis", url=redis_url, channel=channel)
    return BusSettings(backend=name, url=url, channel=channel, poll_interval=interval)


def app_process(  # noqa: C901  one loop that counts, drops refused keys and stops on time
    url: str,
    settings: dict[str, Any],
    keys: list[tuple[str, str]],
    ttl: float,
    duration: float,
    ready: Any,
    start: Any,
    results: Any,
) -> None:
    """Verify ``keys`` round-robin for ``duration`` seconds; report counts, last acceptances and deliveries.

    A key once refused is dropped from the rotation, as a client that got a 401 stops sending it: the rate
    is that of the valid keys' traffic.
    """
    kit = TenantKit(
        api_keys=ApiKeySettings(prefix="tk_test_", cache_ttl=timedelta(seconds=ttl), track_last_used=False),
        bus=BusSettings(**settings),
    )
    engine = sa.create_engine(url, pool_size=2)
    delivered: dict[str, float] = {}
    if kit.bus is not None:

        def note(delivery: Delivery) -> None:
            now = time.time()
            for key in delivery.keys:
                if key.kind == "api_key":
                    delivered.setdefault(key.id, now)

        kit.bus.on_delivery(note)
        kit.bus.start()
    plaintexts = [key for _id, key in keys]
    ids = [key_id for key_id, _key in keys]
    last_valid = [0.0] * len(keys)
    refused = [False] * len(keys)
    verified = hits = 0
    ready.put(True)
    start.wait()
    start_time = time.time()
    deadline = start_time + duration
    verify_cached, count = kit.api_keys.verify_cached, len(keys)
    index = 0
    while True:
        if refused[index]:
            index = (index + 1) % count
            if index == 0 and time.time() >= deadline:
                break
            continue
        key = plaintexts[index]
        answer = verify_cached(key)
        if answer is None:
            with tenantkit.transaction(engine) as session:
                answer = kit.api_keys.verify(session, key)
        else:
            hits += 1
        now = time.time()
        if answer.valid:
            last_valid[index] = now
        else:
            refused[index] = True
        verified += 1
        index = (index + 1) % count
        if index == 0 and now >= deadline:
            break
    elapsed = time.time() - start_time
    if kit.bus is not None:
        kit.bus.stop()
    engine.dispose()
    results.put(
        {
            "rate": verified / elapsed,
            "hits": hits / verified,
            "last_valid": dict(zip(ids, last_valid, strict=True)),
            "delivered": delivered,
        }
    )


def percentiles(values: list[float]) -> str:
    if not values:
        return "          -"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered) * 1000:8.1f} {p99 * 1000:8.1f} {ordered[-1] * 1000:8.1f}"


def run_bus(name: str, arguments: argparse.Namespace, url: str, keys: list[tuple[str, str]]) -> str:
    channel = f"tenantkit_bench_{uuid.uuid4().hex[:8]}"
    settings = bus_settings(name, url, arguments.redis_url, channel, arguments.poll_interval)
    fields = {
        field: getattr(settings, field).get_secret_value() if field == "url" else getattr(settings, field)
        for field in settings.model_fields_set
    }
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    start = context.Event()
    results = context.Queue()
    duration = arguments.warmup + arguments.revocations * arguments.spacing + arguments.ttl + 0.5
    processes = [
        context.Process(
            target=app_process,
            args=(url, fields, keys, arguments.ttl, duration, ready, start, results),
        )
        for _ in range(arguments.apps)
    ]
    for process in processes:
        process.start()
    revoker = TenantKit(bus=settings)
    if revoker.bus is not None:
        revoker.bus.start()
    for _ in processes:
        ready.get(timeout=120)  # every application process started and subscribed
    start.set()
    time.sleep(arguments.warmup)
    committed: dict[str, float] = {}
    for key_id, _key in keys[: arguments.revocations]:
        with tenantkit.transaction(revoker_engine(url)) as session:
            revoker.api_keys.revoke(session, ORG, key_id, actor=HOST)
        committed[key_id] = time.time()
        time.sleep(arguments.spacing)
    reports = [results.get(timeout=duration + 60) for _ in processes]
    for process in processes:
        process.join(30)
    if revoker.bus is not None:
        revoker.bus.stop()
    acceptance = [
        max(0.0, report["last_valid"][key_id] - at) for report in reports for key_id, at in committed.items()
    ]
    delivery = [
        report["delivered"][key_id] - at
        for report in reports
        for key_id, at in committed.items()
        if key_id in report["delivered"]
    ]
    missing = len(committed) * len(reports) - len(delivery) if name != "off" else 0
    rate = sum(report["rate"] for report in reports)
    hits = statistics.mean(report["hits"] for report in reports)
    line = f"{name:<9} {rate:>10,.0f} {hits:>6.1%}  {percentiles(acceptance)}   {percentiles(delivery)}"
    return line + (f"   ({missing} not delivered)" if missing else "")


_ENGINES: dict[str, sa.Engine] = {}


def revoker_engine(url: str) -> sa.Engine:
    if url not in _ENGINES:
        _ENGINES[url] = sa.create_engine(url)
    return _ENGINES[url]


def cached_hit(  # noqa: C901  three runners and their interleaved rounds, side by side
    arguments: argparse.Namespace, url: str, keys: list[tuple[str, str]]
) -> list[str]:
    """``verify_cached`` hits with a bus subscribed, without one, and the floor, batches interleaved."""
    plaintexts = [key for _id, key in keys]
    engine = revoker_engine(url)
    kits = {
        "no bus": TenantKit(api_keys=ApiKeySettings(prefix="tk_test_", cache_ttl=timedelta(hours=1))),
        "postgres": TenantKit(
            api_keys=ApiKeySettings(prefix="tk_test_", cache_ttl=timedelta(hours=1)),
            bus=BusSettings(backend="postgres", url=url, channel=f"tenantkit_bench_{uuid.uuid4().hex[:8]}"),
        ),
    }
    for kit in kits.values():
        if kit.bus is not None:
            kit.bus.start()
        with tenantkit.transaction(engine) as session:
            for key in plaintexts:
                assert kit.api_keys.verify(session, key).valid
    key_format = KeyFormat("tk_test_")
    table = {"sha256$" + hashlib.sha256(key.encode()).hexdigest(): key for key in plaintexts}

    def floor(n: int) -> None:
        check, get, sha256 = key_format.check, table.get, hashlib.sha256
        for i in range(n):
            key = plaintexts[i % len(plaintexts)]
            if check(key):
                get("sha256$" + sha256(key.encode()).hexdigest())

    def hits(kit: TenantKit) -> Any:
        def run(n: int) -> None:
            verify_cached = kit.api_keys.verify_cached
            for i in range(n):
                assert verify_cached(plaintexts[i % len(plaintexts)]) is not None

        return run

    runners = {"floor": floor, **{name: hits(kit) for name, kit in kits.items()}}
    timings: dict[str, list[float]] = {name: [] for name in runners}
    batch = 20_000
    for _ in range(arguments.rounds):
        for name, run in runners.items():
            began = time.perf_counter()
            run(batch)
            timings[name].append((time.perf_counter() - began) / batch)
    lines = []
    for name, values in timings.items():
        median = statistics.median(values)
        ratio = statistics.median(v / f for v, f in zip(values, timings["floor"], strict=True))
        lines.append(f"{name:<22} {median * 1e6:7.2f} µs  {1 / median:>10,.0f}/s  {ratio:5.2f}x the floor")
    for kit in kits.values():
        if kit.bus is not None:
            kit.bus.stop()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--buses", default="off,poll,postgres,redis")
    parser.add_argument("--apps", type=int, default=4, help="application processes")
    parser.add_argument("--keys", type=int, default=50, help="keys each application verifies round-robin")
    parser.add_argument("--revocations", type=int, default=20)
    parser.add_argument("--spacing", type=float, default=0.05, help="seconds between two revocations")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of verifying before revoking")
    parser.add_argument("--ttl", type=float, default=2.0, help="the verification cache's time to live")
    parser.add_argument("--poll-interval", type=float, default=0.1, help="the poll bus's interval")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of the cached-hit comparison")
    arguments = parser.parse_args()

    server = sa.engine.make_url(arguments.postgres_url)
    name = f"tenantkit_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        tenantkit.upgrade(url)
        kit = TenantKit(api_keys=ApiKeySettings(prefix="tk_test_"))
        print(
            f"{arguments.apps} application processes, {arguments.keys} keys each round-robin, "
            f"{arguments.revocations} revocations {arguments.spacing * 1000:.0f} ms apart, "
            f"cache TTL {arguments.ttl:g} s, poll interval {arguments.poll_interval:g} s; lags in ms"
        )
        print(
            f"{'bus':<9} {'verif./s':>10} {'hits':>6}  {'accepted after revoke':>26}   "
            f"{'delivered after commit':>26}"
        )
        print(
            f"{'':<9} {'':>10} {'':>6}  {'p50':>8} {'p99':>8} {'max':>8}   {'p50':>8} {'p99':>8} {'max':>8}"
        )
        for bus in arguments.buses.split(","):
            with tenantkit.transaction(revoker_engine(url)) as session:
                keys = [
                    (issued.id, issued.reveal())
                    for issued in (
                        kit.api_keys.issue(session, ORG, f"bench {index}", actor=HOST)
                        for index in range(arguments.keys)
                    )
                ]
            print(run_bus(bus, arguments, url, keys), flush=True)
        print()
        print("cached verification (verify_cached hits), one process:")
        for line in cached_hit(arguments, url, keys[arguments.revocations :]):
            print("  " + line)
    finally:
        for engine in _ENGINES.values():
            engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


if __name__ == "__main__":
    main()
