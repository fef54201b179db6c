"""Where a revision sits in tenantkit's chain, read from the script directory rather than written in a test:
the tests of one revision then hold whichever revisions are chained before or after it."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from tenantkit._migrations import alembic_config


def revision_before(revision: str) -> str:
    """The revision ``revision`` follows (its ``down_revision``)."""
    previous = ScriptDirectory.from_config(alembic_config()).get_revision(revision).down_revision
    assert isinstance(previous, str), f"{revision} follows no single revision"
    return previous
