"""The host-Alembic recipe of ``docs/migrations.md``, run as printed with the real ``alembic`` command.

The test copies the page's ``env.py`` into a scratch host project (one table, one revision) and runs
``alembic`` in a subprocess against each database, as a host's deploy step would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import alembic
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import tenantkit
from tests.databases import ThrowawayDatabase

DOCS = Path(__file__).resolve().parent.parent / "docs" / "migrations.md"
MARKER = "<!-- host-env-py:"
TENANTKIT_TABLES = {"team_members", "api_keys", "invitations", "invitation_acceptances"}


def documented_env_py() -> str:
    """The ``env.py`` the migrations page prints: the python block right after the ``host-env-py`` marker."""
    text = DOCS.read_text()
    found = re.search(re.escape(MARKER) + r"[^\n]*\n```python\n(.*?)\n```", text, re.DOTALL)
    assert found is not None, f"no python block after {MARKER} in {DOCS}"
    return found.group(1) + "\n"


def host_project(root: Path, url: str) -> Path:
    """A scratch host project: ``myapp.models`` with one table, its Alembic history, the documented env.py."""
    (root / "myapp").mkdir()
    (root / "myapp" / "__init__.py").write_text("")
    (root / "myapp" / "models.py").write_text(
        textwrap.dedent(
            """
            import sqlalchemy as sa

            metadata = sa.MetaData()
            widgets = sa.Table("widgets", metadata, sa.Column("id", sa.Integer, primary_key=True))
            """
        )
    )
    scripts = root / "migrations"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(documented_env_py())
    template = Path(alembic.__file__).parent / "templates" / "generic" / "script.py.mako"
    (scripts / "script.py.mako").write_text(template.read_text())
    (scripts / "versions" / "h1_widgets.py").write_text(
        textwrap.dedent(
            """
            import sqlalchemy as sa
            from alembic import op

            revision = "h1"
            down_revision = None
            branch_labels = None
            depends_on = None

            def upgrade():
                op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))

            def downgrade():
                op.drop_table("widgets")
            """
        )
    )
    ini = root / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {scripts}\nsqlalchemy.url = {url}\n")
    return ini


def alembic_cli(ini: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``alembic`` command line on the scratch project, as a deploy step would."""
    environment = {**os.environ, "PYTHONPATH": str(ini.parent)}
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), *args],
        cwd=ini.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tables(engine: sa.Engine) -> set[str]:
    """The tables the database holds."""
    with engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def host_revision(engine: sa.Engine) -> str | None:
    """The host's own Alembic revision."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


@pytest.mark.parametrize("fresh_database", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_documented_env_py_migrates_host_and_tenantkit_only_on_upgrade(
    tmp_path: Path, fresh_database: ThrowawayDatabase
) -> None:
    """``alembic upgrade`` makes both schemas; --sql, autogenerate, check and downgrade leave tenantkit's."""
    url = fresh_database.url.render_as_string(hide_password=False)
    ini = host_project(tmp_path, url)
    engine = sa.create_engine(fresh_database.url)
    try:
        offline = alembic_cli(ini, "upgrade", "head", "--sql")
        assert offline.returncode == 0, offline.stderr
        assert "widgets" in offline.stdout
        assert "team_members" not in offline.stdout
        assert tables(engine) == set()

        upgraded = alembic_cli(ini, "upgrade", "head")
        assert upgraded.returncode == 0, upgraded.stderr
        assert {"widgets", "alembic_version"} | TENANTKIT_TABLES <= tables(engine)
        assert host_revision(engine) == "h1"
        assert tenantkit.current_revision(engine) == tenantkit.head_revision()

        # With tenantkit's tables gone, the host's other commands must not bring them back.
        tenantkit.downgrade(engine, "base")
        generated = alembic_cli(ini, "revision", "--autogenerate", "-m", "probe")
        assert generated.returncode == 0, generated.stderr
        (revision_file,) = (ini.parent / "migrations" / "versions").glob("*probe*.py")
        proposed = revision_file.read_text()
        assert not TENANTKIT_TABLES & set(re.findall(r"[a-z_]+", proposed))
        assert tenantkit.VERSION_TABLE not in proposed
        revision_file.unlink()
        checked = alembic_cli(ini, "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert alembic_cli(ini, "current").returncode == 0
        assert tenantkit.current_revision(engine) is None
        assert not TENANTKIT_TABLES & tables(engine)

        # The host is at head already: the upgrade still migrates (and commits) tenantkit's tables.
        again = alembic_cli(ini, "upgrade", "head")
        assert again.returncode == 0, again.stderr
        assert tenantkit.current_revision(engine) == tenantkit.head_revision()

        downgraded = alembic_cli(ini, "downgrade", "base")
        assert downgraded.returncode == 0, downgraded.stderr
        assert "widgets" not in tables(engine)
        assert host_revision(engine) is None
        assert tables(engine) >= TENANTKIT_TABLES
        assert tenantkit.current_revision(engine) == tenantkit.head_revision()
    finally:
        engine.dispose()


def test_is_alembic_upgrade_outside_an_env_py_is_a_configuration_error() -> None:
    """Asked outside a running Alembic environment, the helper says where to call it."""
    with pytest.raises(tenantkit.ConfigurationError, match=r"env\.py"):
        tenantkit.is_alembic_upgrade()


def test_documented_env_py_called_from_code(
    tmp_path: Path, fresh_database: ThrowawayDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``alembic.command.upgrade()`` from code migrates tenantkit too; ``command.check()`` does not."""
    url = fresh_database.url.render_as_string(hide_password=False)
    ini = host_project(tmp_path, url)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "myapp", raising=False)
    monkeypatch.delitem(sys.modules, "myapp.models", raising=False)
    config = Config(str(ini))
    engine = sa.create_engine(fresh_database.url)
    try:
        command.upgrade(config, "head")
        assert host_revision(engine) == "h1"
        assert tenantkit.current_revision(engine) == tenantkit.head_revision()
        tenantkit.downgrade(engine, "base")
        command.check(config)
        command.stamp(config, "h1")
        assert tenantkit.current_revision(engine) is None
    finally:
        engine.dispose()
        sys.modules.pop("myapp.models", None)
        sys.modules.pop("myapp", None)
