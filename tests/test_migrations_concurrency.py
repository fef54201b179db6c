"""Several app instances starting at once: real processes race to upgrade one fresh database.

Each worker is a separate Python process (the ``spawn`` start method, so nothing is inherited but the
arguments), released together by a barrier, calling :func:`tenantkit.upgrade` on the same URL.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

import tenantkit
from tenantkit import _migrations
from tests.databases import ThrowawayDatabase

WORKERS = 5
pytestmark = pytest.mark.concurrency


def _upgrade_worker(url: str, barrier: Any, results: Any, index: int) -> None:
    """Wait for every sibling, then upgrade; report what this process applied (or how it failed)."""
    try:
        barrier.wait(timeout=120)
        outcome = tenantkit.upgrade(url, lock_timeout=120)
        results.put((index, "ok", list(outcome.applied), outcome.from_revision))
    except BaseException as exc:  # report everything: the parent asserts on it
        results.put((index, "error", f"{type(exc).__name__}: {exc}", None))


def _run_workers(url: str, count: int) -> list[tuple[int, str, Any, Any]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    results = context.Queue()
    processes = [
        context.Process(target=_upgrade_worker, args=(url, barrier, results, index)) for index in range(count)
    ]
    for process in processes:
        process.start()
    outcomes = []
    try:
        for _ in range(count):
            outcomes.append(results.get(timeout=240))
    except queue_module.Empty:
        pytest.fail(f"only {len(outcomes)} of {count} workers reported: {outcomes}")
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
    return sorted(outcomes)


def _all_revisions() -> list[str]:
    script = ScriptDirectory.from_config(_migrations.alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


class TestConcurrentStarts:
    @pytest.mark.parametrize("fresh_database", ["postgresql", "mariadb", "sqlite"], indirect=True)
    def test_instances_starting_together_migrate_exactly_once(
        self, fresh_database: ThrowawayDatabase
    ) -> None:
        """All workers succeed, exactly one of them applies the revisions, and one version row results."""
        url = fresh_database.url.render_as_string(hide_password=False)

        outcomes = _run_workers(url, WORKERS)

        errors = [outcome for outcome in outcomes if outcome[1] != "ok"]
        assert errors == []
        workers_that_migrated = [outcome for outcome in outcomes if outcome[2]]
        assert len(workers_that_migrated) == 1
        assert workers_that_migrated[0][2] == _all_revisions()
        # The late ones re-read the version table under the lock and found the head already there.
        late = [outcome for outcome in outcomes if not outcome[2]]
        assert {outcome[3] for outcome in late} == {tenantkit.head_revision()}

        engine = sa.create_engine(fresh_database.url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    sa.text(f"SELECT version_num FROM {tenantkit.tables.VERSION_TABLE}")
                ).all()
                assert rows == [(tenantkit.head_revision(),)]
                assert {"team_members", "api_keys", "invitations"} <= set(
                    sa.inspect(connection).get_table_names()
                )
        finally:
            engine.dispose()
