"""Where a revision sits in tenantkit's chain, read from the script directory rather than written in a test:
the tests of one revision then hold whichever revisions are chained before or after it.

Also what every revision's tests start from: :func:`database_at` (a database migrated to a revision, holding
one owner) and :func:`upgrade_ddl` (the statements of one revision's offline SQL, which each test then
holds to what that revision may do on a live database)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic.script import ScriptDirectory

import tenantkit
from tenantkit._migrations import alembic_config

# The four columns team_members has at every revision, rather than the kit's table: that one describes the
# newest schema, and the owner is written into older ones.
_MEMBERS = sa.table(
    "team_members", sa.column("id"), sa.column("organization_id"), sa.column("user_id"), sa.column("role")
)
_TRANSACTION_CONTROL = re.compile(r"(BEGIN|COMMIT|START TRANSACTION)\b")


def revision_before(revision: str) -> str:
    """The revision ``revision`` follows (its ``down_revision``)."""
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(revision).down_revision
    assert isinstance(previous, str), f"{revision} follows no single revision"
    return previous


@contextmanager
def database_at(url: sa.URL, revision: str, *, owner: bool = True) -> Iterator[sa.Engine]:
    """An engine on the (empty) database at ``url`` upgraded to ``revision``, disposed on leaving.

    It holds one member written straight into ``team_members``, ``alice``, the OWNER of ``org_1`` (the rows
    a revision must leave untouched), unless ``owner`` is false."""
    engine = sa.create_engine(url)
    try:
        tenantkit.upgrade(engine, revision)
        if owner:
            with engine.begin() as connection:
                connection.execute(
                    _MEMBERS.insert().values(id="m1", organization_id="org_1", user_id="alice", role="OWNER")
                )
        yield engine
    finally:
        engine.dispose()


def upgrade_ddl(dialect: str, revision: str) -> list[str]:
    """The statements of the offline SQL that upgrades a ``dialect`` database to ``revision`` from the one
    before it: without comments, transaction control and the update of ``tenantkit_alembic_version``, which
    is checked to be there exactly once (the upgrade is one step)."""
    script = tenantkit.offline_sql(dialect, revision_before(revision), revision)
    # Comments go line by line, before the split: a statement that follows ``-- Running upgrade ...`` is
    # in the same chunk as the comment, and must be checked like every other.
    uncommented = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("--"))
    statements = [statement.strip() for statement in uncommented.split(";") if statement.strip()]
    ddl = [statement for statement in statements if not _TRANSACTION_CONTROL.match(statement)]
    version_updates = [statement for statement in ddl if "tenantkit_alembic_version" in statement]
    assert len(version_updates) == 1, version_updates
    assert version_updates[0].startswith("UPDATE tenantkit_alembic_version "), version_updates[0]
    return [statement for statement in ddl if statement not in version_updates]
