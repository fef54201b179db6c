"""A sync host needs no greenlet: ``pip install "tenantkit[fastapi]"`` leaves it out, as SQLAlchemy does.

The dev extra installs ``[async]`` (and with it greenlet), so these tests take it away again: in a
subprocess whose import machinery refuses ``greenlet``, and in-process by hiding SQLAlchemy's asyncio
extension. ``.ci/wheels`` checks the same on real installs of each extra.
"""

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit.fastapi import TenantKitFastAPI

INSTALL_CHECK = Path(__file__).with_name("install_check.py")


def test_sync_hosts_import_and_serve_without_greenlet(tmp_path: Path) -> None:
    """Without greenlet every sync module imports, the CLI migrates, and each framework serves a key."""
    completed = subprocess.run(
        [
            sys.executable,
            str(INSTALL_CHECK),
            "--extras",
            "fastapi,flask,starlette",
            "--database",
            str(tmp_path / "no-greenlet.sqlite3"),
            "--migrate",
            "--refuse",
            "greenlet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok: import tenantkit.fastapi" in completed.stdout
    assert "ok: FastAPI (sync session) serves an API-key-protected request" in completed.stdout
    assert "ok: Flask serves an API-key-protected request" in completed.stdout
    assert "ok: Starlette (sync engine) authenticates an API key before routing" in completed.stdout


def test_the_install_check_fails_loudly_when_a_module_is_missing(tmp_path: Path) -> None:
    """The check exits non-zero and names the step when an extra's module cannot be imported."""
    completed = subprocess.run(
        [
            sys.executable,
            str(INSTALL_CHECK),
            "--extras",
            "async",
            "--database",
            str(tmp_path / "x.sqlite3"),
            "--refuse",
            "greenlet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    # SQLAlchemy 2.1 needs greenlet to import its asyncio extension; 2.0 (Python 3.10) imports it and fails
    # at greenlet itself. Either way the failed step is named, with the missing module.
    assert "install check FAILED [async]: import " in completed.stderr
    assert "greenlet" in completed.stderr


@pytest.fixture
def without_asyncio_extension(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import sqlalchemy.ext.asyncio`` fail, as it does where greenlet is missing."""
    monkeypatch.setitem(sys.modules, "sqlalchemy.ext.asyncio", None)


@pytest.mark.usefixtures("without_asyncio_extension")
class TestWithoutTheAsyncioExtension:
    def test_a_sync_session_runs_without_it(self, sqlite_engine: sa.Engine) -> None:
        """A ``Session`` goes to the thread pool without SQLAlchemy's asyncio extension being imported."""
        with Session(sqlite_engine) as session:
            answer = asyncio.run(TenantKitFastAPI.run(session, lambda given: given is session))
        assert answer is True

    def test_an_async_session_names_the_async_extra(self) -> None:
        """Anything but a ``Session`` needs the extension; without it the error names ``tenantkit[async]``."""

        class StandInAsyncSession:
            """What a host's async session dependency yields, where the extension cannot be imported."""

        stand_in: Any = StandInAsyncSession()
        with pytest.raises(ModuleNotFoundError, match=r'pip install "tenantkit\[async\]"') as caught:
            asyncio.run(TenantKitFastAPI.run(stand_in, lambda session: session))
        assert "StandInAsyncSession" in str(caught.value)
        assert "greenlet" in str(caught.value)
