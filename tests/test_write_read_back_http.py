"""Over HTTP, a revocation the database did not keep is a 503 ``write_not_applied``, never a 200."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tenantkit.tables import api_keys
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, HttpClient
from tests.test_http_contract import BASE, BOB, assert_error, build, issue_key


@pytest.fixture
def undone_revocations(sqlite_engine: sa.Engine) -> Iterator[sa.Engine]:
    """A trigger on the shared SQLite database that writes ``revoked_at`` back to what it was."""
    with sqlite_engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER tenantkit_test_http_undo AFTER UPDATE OF revoked_at ON api_keys "
            "BEGIN UPDATE api_keys SET revoked_at = OLD.revoked_at WHERE id = OLD.id; END"
        )
    try:
        yield sqlite_engine
    finally:
        with sqlite_engine.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER tenantkit_test_http_undo")


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_undone_revocation_answers_503_and_changes_nothing(
    adapter: str, clock: FrozenClock, undone_revocations: sa.Engine
) -> None:
    """The adapter answers the typed error with its code and rolls back; the key is as it was."""
    client: HttpClient = build(adapter, clock, undone_revocations)
    issued = issue_key(client)
    key_id, key = issued.json["api_key"]["id"], issued.json["key"]

    reply = client.request("POST", f"{BASE}/api-keys/{key_id}/revoke", headers=BOB)

    assert_error(reply, 503, "write_not_applied")
    assert reply.json["error"]["columns"] == ["revoked_at"]
    assert key not in str(reply.json)
    with undone_revocations.connect() as connection:
        revoked_at = connection.execute(
            sa.select(api_keys.c.revoked_at).where(api_keys.c.id == key_id)
        ).scalar()
    assert revoked_at is None
