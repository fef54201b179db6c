"""The request-path recipes of the docs run as printed, given the names their pages assume.

``tests/test_docs_code.py`` checks that every block parses and imports what exists; these blocks are also run:
each is found by a line it contains, executed with the few names its page defines earlier (an engine, a
membership service, a presented key…), and its effect checked.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import flask
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.orm import Session

from tenantkit import HOST, ApiKeyService, ApiKeySettings, ApiKeyVerification, MembershipService, TenantKit
from tenantkit.fastapi import TenantKitFastAPI
from tenantkit.flask import TenantKitFlask

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def block(page: str, containing: str) -> str:
    """The one ``python`` block of ``docs/<page>`` that contains ``containing``."""
    found: list[str] = [code for code in BLOCK.findall((DOCS / page).read_text()) if containing in code]
    assert len(found) == 1, (page, containing, len(found))
    return found[0]


def run(code: str, **names: Any) -> dict[str, Any]:
    """Execute ``code`` with ``names`` defined, and return its namespace."""
    namespace: dict[str, Any] = {"__name__": "docs_recipe", **names}
    exec(compile(code, "<docs>", "exec"), namespace)  # noqa: S102  the docs' own code, as a user runs it
    return namespace


def issued_key(engine: sa.Engine, keys: ApiKeyService) -> str:
    with Session(engine) as session:
        key = keys.issue(session, "org_1", "ci", actor=HOST).reveal()
        session.commit()
    return key


def test_begin_verification_then_complete_on_a_connection(sqlite_engine: sa.Engine) -> None:
    """The api-keys page's recipe verifies a key memory cannot answer on a connection opened for it."""
    keys = ApiKeyService(membership=MembershipService())
    presented = issued_key(sqlite_engine, keys)
    namespace = run(
        block("api-keys.md", "keys.begin_verification(presented)"),
        keys=keys,
        engine=sqlite_engine,
        presented=presented,
    )
    answer = namespace["answer"]
    assert isinstance(answer, ApiKeyVerification)
    assert answer.valid
    assert namespace["wrote"] is True  # the first use writes last_used_at, and the recipe committed it


def test_the_negative_cache_recipe_builds_a_service_that_remembers_refusals(sqlite_engine: sa.Engine) -> None:
    """The negative-cache line builds a service whose made-up keys are answered from memory afterwards."""
    keys = run(
        block("api-keys.md", "negative_cache_ttl=timedelta(seconds=5)"),
        ApiKeyService=ApiKeyService,
        membership=MembershipService(),
        timedelta=timedelta,
    )["keys"]
    made_up = keys.format.generate()
    with Session(sqlite_engine) as session:
        assert keys.verify(session, made_up).reason == "unknown"
    assert keys.verify_cached(made_up) is not None  # now from memory


def test_the_metrics_recipe_counts_a_kits_verifications() -> None:
    """The metrics block wires a CountingMetrics into a kit; its snapshot starts empty and then counts."""
    namespace = run(block("api-keys.md", "metrics = CountingMetrics()"), TenantKit=TenantKit)
    namespace["kit"].api_keys.verify_cached("not a key")
    assert namespace["metrics"].snapshot() == {("malformed", "format"): 1}


def test_the_prometheus_recipe_forwards_each_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prometheus-client class calls its counter's ``labels(outcome, source).inc()``.

    prometheus-client is not a dependency: a stand-in module with its ``Counter`` shape records the calls.
    """
    counted: list[tuple[str, ...]] = []

    class Counter:
        def __init__(self, name: str, documentation: str, labelnames: list[str]) -> None:
            assert labelnames == ["outcome", "source"]

        def labels(self, *values: str) -> Any:
            return types.SimpleNamespace(inc=lambda: counted.append(values))

    monkeypatch.setitem(sys.modules, "prometheus_client", types.SimpleNamespace(Counter=Counter))
    namespace = run(block("api-keys.md", "class PrometheusMetrics"))
    kit = TenantKit(metrics=namespace["PrometheusMetrics"]())
    kit.api_keys.verify_cached("not a key")
    assert counted == [("malformed", "format")]


def test_the_fastapi_engine_recipe_builds_an_adapter_on_the_engine(sqlite_engine: sa.Engine) -> None:
    """The FastAPI page's "give it the engine" block: deferred writes, both caches, database=engine."""

    def get_session() -> None:
        raise AssertionError("an API-key request must not open the host's session")

    namespace = run(
        block("fastapi.md", "# made-up keys, in memory"),
        TenantKit=TenantKit,
        ApiKeySettings=ApiKeySettings,
        timedelta=timedelta,
        TenantKitFastAPI=TenantKitFastAPI,
        FastAPI=FastAPI,
        get_session=get_session,
        get_current_user=lambda: "alice",
        engine=sqlite_engine,
    )
    kit: TenantKit = namespace["kit"]
    assert kit.api_keys.last_used_writes == "deferred"
    assert isinstance(namespace["app"], FastAPI)
    assert namespace["tk"]._database is sqlite_engine


def test_the_flask_engine_recipe_builds_an_extension_on_the_engine(sqlite_engine: sa.Engine) -> None:
    """The Flask page's block: the extension answers keys on the engine, never through ``db.session``."""
    app = flask.Flask(__name__)

    class Db:
        @property
        def session(self) -> Callable[[], None]:
            raise AssertionError("an API-key request must not open the host's session")

    namespace = run(
        block("flask.md", "database=engine, app=app)"),
        TenantKit=TenantKit,
        ApiKeySettings=ApiKeySettings,
        timedelta=timedelta,
        TenantKitFlask=TenantKitFlask,
        db=Db(),
        current_user=lambda: "alice",
        engine=sqlite_engine,
        app=app,
    )
    tk: TenantKitFlask = namespace["tk"]
    key = issued_key(sqlite_engine, tk.kit.api_keys)

    @app.get("/reports")
    @tk.require_api_key()
    def reports() -> dict[str, bool]:
        return {"ok": True}

    try:
        assert app.test_client().get("/reports", headers={"X-API-Key": key}).status_code == 200
        assert tk.kit.api_keys.pending_last_used == 1  # deferred, for the writer thread
    finally:
        tk.close()
