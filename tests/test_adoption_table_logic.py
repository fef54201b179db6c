"""Adoption refuses tables carrying triggers, rules or row-level-security policies, unless told otherwise.

Such logic, left by the tool that created the origin schema, can rewrite tenantkit's writes: a trigger that
undoes ``revoked_at`` would make ``revoke()`` report success while the key keeps working. Adoption lists
every one in a :class:`TableLogicError` and changes nothing; ``allow_table_logic=True`` (``db adopt
--allow-table-logic``) adopts anyway with a :class:`TableLogicWarning`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import tenantkit
from tenantkit._cli import main
from tenantkit.errors import SchemaConflictError, TableLogicError, TableLogicWarning
from tests.databases import ThrowawayDatabase
from tests.test_origin_document import apply_origin, rows_of, schema_of

# One statement per dialect that installs a harmless trigger on api_keys, named "audit_keys".
TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER audit_keys AFTER UPDATE ON api_keys BEGIN SELECT 1; END",
    ],
    "postgresql": [
        "CREATE FUNCTION audit_keys() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER audit_keys BEFORE UPDATE ON api_keys FOR EACH ROW EXECUTE FUNCTION audit_keys()",
    ],
    "mysql": [
        "CREATE TRIGGER audit_keys BEFORE UPDATE ON api_keys FOR EACH ROW SET NEW.name = NEW.name",
    ],
}

# PostgreSQL's other kinds of table logic, each with the line adoption reports for it.
PG_LOGIC = {
    "rule": (
        ["CREATE RULE keep_members AS ON DELETE TO team_members DO INSTEAD NOTHING"],
        ["rule keep_members on team_members"],
    ),
    "policy": (
        ["CREATE POLICY own_rows ON invitations USING (true)"],
        ["row-level-security policy own_rows on invitations"],
    ),
    "row-level security": (
        ["ALTER TABLE invitations ENABLE ROW LEVEL SECURITY"],
        ["row-level security enabled on invitations"],
    ),
}


@pytest.fixture
def fresh_engine(fresh_database: ThrowawayDatabase) -> Iterator[sa.Engine]:
    """An engine on an empty database of ``fresh_database``'s dialect, holding the origin schema."""
    engine = sa.create_engine(fresh_database.url)
    apply_origin(engine)
    yield engine
    engine.dispose()


def run_statements(engine: sa.Engine, statements: list[str]) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.exec_driver_sql(statement)


def assert_unchanged(engine: sa.Engine, schema: object, rows: object) -> None:
    assert schema_of(engine) == schema
    assert rows_of(engine) == rows
    assert tenantkit.current_revision(engine) is None


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql", "mariadb"], indirect=True)
class TestTriggers:
    def test_a_trigger_is_refused_and_nothing_changes(self, fresh_engine: sa.Engine) -> None:
        """A trigger on a table to adopt is a ``TableLogicError`` naming it; the database stays as it was."""
        run_statements(fresh_engine, TRIGGER[fresh_engine.dialect.name])
        schema, rows = schema_of(fresh_engine), rows_of(fresh_engine)

        with pytest.raises(TableLogicError) as info:
            tenantkit.adopt(fresh_engine)

        assert info.value.conflicts == ("trigger audit_keys on api_keys",)
        assert info.value.code == "table_logic"
        assert "trigger audit_keys on api_keys" in info.value.message
        assert isinstance(info.value, SchemaConflictError)
        assert_unchanged(fresh_engine, schema, rows)

    def test_upgrade_refuses_it_too(self, fresh_engine: sa.Engine) -> None:
        """``upgrade`` adopts by itself, so it refuses the same tables, leaving no tenantkit table behind."""
        run_statements(fresh_engine, TRIGGER[fresh_engine.dialect.name])
        schema, rows = schema_of(fresh_engine), rows_of(fresh_engine)
        with pytest.raises(TableLogicError):
            tenantkit.upgrade(fresh_engine)
        assert_unchanged(fresh_engine, schema, rows)

    def test_allowing_table_logic_adopts_with_a_warning(self, fresh_engine: sa.Engine) -> None:
        """With ``allow_table_logic=True`` the tables are adopted and a warning names the trigger."""
        run_statements(fresh_engine, TRIGGER[fresh_engine.dialect.name])
        with pytest.warns(TableLogicWarning, match="trigger audit_keys on api_keys"):
            result = tenantkit.adopt(fresh_engine, allow_table_logic=True)
        assert result.adopted
        assert tenantkit.current_revision(fresh_engine) == "0001"

    def test_the_cli_refuses_with_exit_4_and_allows_with_the_flag(
        self, fresh_engine: sa.Engine, fresh_database: ThrowawayDatabase
    ) -> None:
        """``db adopt`` exits 4 naming the trigger; ``--allow-table-logic`` adopts and warns on stderr."""
        run_statements(fresh_engine, TRIGGER[fresh_engine.dialect.name])
        url = fresh_database.url.render_as_string(hide_password=False)

        refused = CliRunner().invoke(main, ["db", "adopt", "--url", url])
        assert refused.exit_code == 4, refused.output
        assert refused.stderr.splitlines()[-1].startswith("error [table_logic]: ")
        assert "trigger audit_keys on api_keys" in refused.stderr
        assert tenantkit.current_revision(fresh_engine) is None

        allowed = CliRunner().invoke(main, ["db", "adopt", "--url", url, "--allow-table-logic"])
        assert allowed.exit_code == 0, allowed.output
        assert "warning: " in allowed.stderr
        assert "trigger audit_keys on api_keys" in allowed.stderr
        assert tenantkit.current_revision(fresh_engine) == "0001"


@pytest.mark.parametrize("fresh_database", ["postgresql"], indirect=True)
class TestPostgresql:
    @pytest.mark.parametrize("kind", list(PG_LOGIC))
    def test_each_kind_of_table_logic_is_refused(self, fresh_engine: sa.Engine, kind: str) -> None:
        """A rule, a row-level-security policy, or row-level security switched on is refused by name."""
        statements, expected = PG_LOGIC[kind]
        run_statements(fresh_engine, statements)
        schema, rows = schema_of(fresh_engine), rows_of(fresh_engine)
        with pytest.raises(TableLogicError) as info:
            tenantkit.adopt(fresh_engine)
        assert list(info.value.conflicts) == expected
        assert_unchanged(fresh_engine, schema, rows)

    def test_every_piece_is_listed_at_once(self, fresh_engine: sa.Engine) -> None:
        """One error lists all of them, table by table, so one round of clean-up suffices."""
        run_statements(
            fresh_engine,
            TRIGGER["postgresql"] + [s for statements, _ in PG_LOGIC.values() for s in statements],
        )
        with pytest.raises(TableLogicError) as info:
            tenantkit.adopt(fresh_engine)
        assert info.value.conflicts == (
            "rule keep_members on team_members",
            "trigger audit_keys on api_keys",
            "row-level security enabled on invitations",
            "row-level-security policy own_rows on invitations",
        )

    def test_allowed_logic_is_all_in_the_warning(self, fresh_engine: sa.Engine) -> None:
        """The warning of an allowed adoption names every piece too."""
        run_statements(fresh_engine, [s for statements, _ in PG_LOGIC.values() for s in statements])
        with pytest.warns(TableLogicWarning) as caught:
            assert tenantkit.adopt(fresh_engine, allow_table_logic=True).adopted
        message = str(caught[0].message)
        assert all(line in message for _, lines in PG_LOGIC.values() for line in lines)
