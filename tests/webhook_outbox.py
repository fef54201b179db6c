"""Due deliveries written straight into the webhook outbox, and the environment of a ``tenantkit webhooks
work`` process that drains them to a local receiver.

The worker tests (``tests/test_webhooks_workers.py``) and the webhook benchmark
(``benchmarks/bench_webhooks.py``) both start from these; this module needs nothing of pytest, so the
benchmark imports it too.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from tenantkit.tables import webhook_deliveries, webhook_endpoints, webhook_messages
from tenantkit.webhooks._secrets import SecretBox
from tenantkit.webhooks._signing import generate_secret

ROOT = Path(__file__).resolve().parent.parent


def seed_due_deliveries(engine: sa.Engine, url: str, deliveries: int, *, key: str) -> None:
    """An enabled endpoint of ``org`` at ``url`` (its signing secret encrypted with ``key``) and
    ``deliveries`` due messages to it, written straight into the outbox."""
    now = datetime.now(timezone.utc)
    with engine.begin() as connection:
        connection.execute(
            webhook_endpoints.insert().values(
                id="ep1",
                organization_id="org",
                url=url,
                description="",
                event_types=["member.added"],
                enabled=True,
                secret=SecretBox([key]).encrypt(generate_secret()),
                created_at=now,
                updated_at=now,
            )
        )
        ids = [f"msg_{index:05d}_{uuid.uuid4().hex[:6]}" for index in range(deliveries)]
        connection.execute(
            webhook_messages.insert(),
            [
                {
                    "id": i,
                    "organization_id": "org",
                    "event_type": "member.added",
                    "body": "{}",
                    "created_at": now,
                }
                for i in ids
            ],
        )
        connection.execute(
            webhook_deliveries.insert(),
            [
                {
                    "id": str(uuid.uuid4()),
                    "organization_id": "org",
                    "message_id": i,
                    "endpoint_id": "ep1",
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i in ids
            ],
        )


def worker_environment(engine: sa.Engine, key: str) -> dict[str, str]:
    """The environment of a worker process on ``engine``'s database that decrypts with ``key`` and may post
    over plain HTTP to 127.0.0.1 (where the receivers listen), with the audit log off; this checkout's
    ``src`` comes first on its path."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path]),
        "TENANTKIT_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "TENANTKIT_WEBHOOK_SECRET_KEYS": key,
        "TENANTKIT_WEBHOOK_ALLOW_HTTP": "true",
        "TENANTKIT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
        "TENANTKIT_AUDIT_ENABLED": "false",
    }
