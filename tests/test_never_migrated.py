"""A database tenantkit never migrated: SchemaOutOfDateError in Python, 503 over HTTP, one CLI line."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx2
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

import tenantkit
from tenantkit._cli import main
from tenantkit.fastapi import TenantKitFastAPI
from tests.databases import ThrowawayDatabase
from tests.http_apps import ADAPTERS, BUILDERS, make_kit

ALL = ["sqlite", "postgresql", "mariadb"]
HINT = "run `tenantkit db upgrade`"


@pytest.fixture
def unmigrated(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """An engine on an empty database that tenantkit never migrated."""
    engine = sa.create_engine(fresh_database.url)
    yield engine
    engine.dispose()


def assert_out_of_date(error: tenantkit.SchemaOutOfDateError) -> None:
    """The error names the missing revision and says what to run."""
    assert error.code == "schema_out_of_date"
    assert error.current is None
    assert error.head == tenantkit.head_revision()
    assert HINT in error.message


@pytest.mark.parametrize("fresh_database", ALL, indirect=True)
class TestServices:
    def test_membership_reads_and_writes(self, unmigrated: sa.Engine) -> None:
        """get_role (the per-request fast path), list and add raise SchemaOutOfDateError."""
        kit = make_kit()
        calls: list[Callable[[Session], object]] = [
            lambda session: kit.members.get_role(session, "org_1", "user_1"),
            lambda session: kit.members.list_members(session, "org_1", actor=tenantkit.HOST),
            lambda session: kit.members.add(session, "org_1", "user_1", "OWNER", actor=tenantkit.HOST),
        ]
        for call in calls:
            with Session(unmigrated) as session, pytest.raises(tenantkit.SchemaOutOfDateError) as info:
                call(session)
            assert_out_of_date(info.value)

    def test_api_key_verification(self, unmigrated: sa.Engine) -> None:
        """A well-formed key verified against a never-migrated database raises, on a session or connection."""
        kit = make_kit()
        key = kit.api_keys.format.generate()
        with Session(unmigrated) as session, pytest.raises(tenantkit.SchemaOutOfDateError) as info:
            kit.api_keys.verify(session, key)
        assert_out_of_date(info.value)
        with unmigrated.connect() as connection, pytest.raises(tenantkit.SchemaOutOfDateError):
            kit.api_keys.authenticate(connection, key)

    def test_invitations(self, unmigrated: sa.Engine) -> None:
        """Listing invitations raises SchemaOutOfDateError."""
        kit = make_kit()
        with Session(unmigrated) as session, pytest.raises(tenantkit.SchemaOutOfDateError) as info:
            kit.invitations.list_pending(session, "org_1", actor=tenantkit.HOST)
        assert_out_of_date(info.value)

    def test_a_database_behind_head_is_out_of_date_too(self, unmigrated: sa.Engine) -> None:
        """At revision 0001, a query on a later column raises SchemaOutOfDateError naming 0001."""
        tenantkit.upgrade(unmigrated, "0001")
        kit = make_kit()
        with Session(unmigrated) as session, pytest.raises(tenantkit.SchemaOutOfDateError) as info:
            kit.api_keys.verify(session, kit.api_keys.format.generate())
        assert info.value.current == "0001"


@pytest.mark.parametrize("fresh_database", ALL, indirect=True)
def test_a_missing_table_at_head_keeps_the_driver_error(unmigrated: sa.Engine) -> None:
    """The version table decides: at head, a table dropped by hand is not reported as a migration issue."""
    tenantkit.upgrade(unmigrated)
    with unmigrated.begin() as connection:
        connection.exec_driver_sql("DROP TABLE team_members")
    with Session(unmigrated) as session, pytest.raises(sa.exc.DBAPIError):
        make_kit().members.get_role(session, "org_1", "user_1")


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("fresh_database", ALL, indirect=True)
def test_http_answers_503_with_a_stable_code(adapter: str, unmigrated: sa.Engine) -> None:
    """Key-protected, role-protected and management routes answer 503 ``schema_out_of_date``."""
    kit = make_kit()
    client = BUILDERS[adapter](kit, unmigrated)
    requests = [
        ("GET", "/whoami-key", {"X-API-Key": kit.api_keys.format.generate()}),
        ("POST", "/orgs/org_1/danger", {"X-User": "user_1"}),
        ("GET", "/tk/organizations/org_1/members", {"X-User": "user_1"}),
    ]
    for method, path, headers in requests:
        reply = client.request(method, path, headers=headers)
        assert reply.status == 503, (path, reply)
        assert reply.json["error"]["code"] == "schema_out_of_date"
        assert HINT in reply.json["error"]["message"]


@pytest.mark.anyio
@pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql"], indirect=True)
async def test_async_fastapi_answers_503(fresh_database: ThrowawayDatabase) -> None:
    """With an ``AsyncSession`` (aiosqlite, psycopg async) the key dependency answers 503 too."""
    assert fresh_database.async_url is not None
    engine = create_async_engine(fresh_database.async_url)
    maker = async_sessionmaker(engine)

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with maker() as session:
            yield session

    kit = make_kit()
    tk = TenantKitFastAPI(kit, session=get_session)
    app = FastAPI()
    tk.install(app)

    @app.get("/key", dependencies=[Depends(tk.api_key())])
    async def key() -> dict[str, str]:
        return {"ok": "never reached"}

    try:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/key", headers={"X-API-Key": kit.api_keys.format.generate()})
    finally:
        await engine.dispose()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "schema_out_of_date"


@pytest.mark.parametrize("fresh_database", ALL, indirect=True)
def test_cli_says_run_db_upgrade_on_one_line(fresh_database: ThrowawayDatabase) -> None:
    """``tenantkit members list`` exits 4 with one ``error [schema_out_of_date]`` line naming the fix."""
    url = fresh_database.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(main, ["members", "list", "org_1", "--url", url])
    assert result.exit_code == 4, result.output
    # Below the "database: <URL>" line every command prints first.
    assert result.stderr.splitlines()[0].startswith("database: ")
    assert result.stderr.splitlines()[1].startswith("error [schema_out_of_date]: ")
    assert HINT in result.stderr
    assert result.stderr.count("\n") == 2
    assert "Traceback" not in result.output
