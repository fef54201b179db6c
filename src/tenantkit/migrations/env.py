"""Alembic environment for tenantkit's own migration history.

It runs only through :mod:`tenantkit._migrations`, which passes the connection (online) or the dialect
(offline) in ``config.attributes``. The version table is tenantkit's own, and only tenantkit's tables are
compared, so a host's tables and its own Alembic history are never touched.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from tenantkit._tables import is_tenantkit_object
from tenantkit.tables import VERSION_TABLE, metadata


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return is_tenantkit_object(obj, name, type_)  # type: ignore[arg-type]


def _run() -> None:
    config = context.config
    common: dict[str, Any] = {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "include_object": _include_object,
        "compare_type": True,
        "render_as_batch": True,
        # tenantkit._migrations passes a callback to learn which revisions actually ran.
        "on_version_apply": config.attributes.get("on_version_apply"),
    }
    if context.is_offline_mode():
        context.configure(
            dialect_name=config.attributes["dialect_name"],
            literal_binds=True,
            transactional_ddl=config.attributes.get("transactional_ddl"),
            **common,
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    connection = config.attributes["connection"]
    context.configure(connection=connection, transaction_per_migration=False, **common)
    with context.begin_transaction():
        context.run_migrations()


_run()
