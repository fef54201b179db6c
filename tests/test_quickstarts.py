"""The complete services of the FastAPI and Flask guides run exactly as printed, and stay short."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenantkit import Role

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Lines of code, not counting blank ones, after `ruff format`: the whole service, the host's own session and
# current-user dependencies included.
LIMITS = {"fastapi": 25, "flask": 25}


def quickstart(guide: str) -> str:
    """The Python block that follows the page's ``<!-- quickstart: ... -->`` marker, as printed."""
    page = (DOCS / f"{guide}.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- quickstart: {guide}\b[^>]*-->\n```python\n(.*?)^```$", page, re.DOTALL | re.M)
    assert match is not None, f"docs/{guide}.md has no quick-start block after its marker"
    return match.group(1)


def load(code: str, path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``code`` as a module, the way ``uvicorn app:app`` or ``flask --app app`` would."""
    path.write_text(code, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", database_url)
    spec = importlib.util.spec_from_file_location(f"tenantkit_quickstart_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.sqlite3'}"


@pytest.mark.parametrize("guide", ["fastapi", "flask"])
def test_the_quickstart_is_formatted_short_and_self_contained(guide: str) -> None:
    """The block is what `ruff format` prints, within its line budget, and needs no testing helper."""
    code = quickstart(guide)
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--diff", "--stdin-filename", f"{guide}_app.py", "-"],
        input=code,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines_of_code = [line for line in code.splitlines() if line.strip()]
    assert len(lines_of_code) <= LIMITS[guide]
    assert "tenantkit.testing" not in code


def issue_key(module: ModuleType, organization_id: str) -> str:
    """Issue a key with the scope the key-protected route needs, through the service."""
    with Session(module.engine) as session:
        issued = module.tk.kit.api_keys.issue(
            session, organization_id, "CI", actor="alice", scopes=["reports:read"]
        )
        session.commit()
    key: str = issued.reveal()
    return key


def add_member(module: ModuleType, organization_id: str, user_id: str) -> None:
    with Session(module.engine) as session:
        module.tk.kit.members.add(session, organization_id, user_id, Role.MEMBER, actor="alice")
        session.commit()


@pytest.fixture
def fastapi_app(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load(quickstart("fastapi"), tmp_path / "fastapi_app.py", database_url, monkeypatch)
    yield module
    module.engine.dispose()


@pytest.fixture
def flask_app(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = load(quickstart("flask"), tmp_path / "flask_app.py", database_url, monkeypatch)
    yield module
    module.engine.dispose()


def test_the_fastapi_quickstart_protects_its_routes(fastapi_app: ModuleType) -> None:
    """Start-up migrates; the creator is OWNER; keys and roles guard their routes with 401 and 403."""
    with TestClient(fastapi_app.app) as client:  # runs the lifespan: the migration
        created = client.post("/organizations/acme", headers={"X-User": "alice"})
        assert created.status_code == 201
        key = issue_key(fastapi_app, "acme")
        add_member(fastapi_app, "acme", "bob")

        reports = client.get("/reports", headers={"Authorization": f"Bearer {key}"})
        assert (reports.status_code, reports.json()) == (200, {"organization_id": "acme"})
        anonymous = client.get("/reports")
        assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "invalid_api_key")

        owner = client.get("/organizations/acme/settings", headers={"X-User": "alice"})
        assert (owner.status_code, owner.json()) == (200, {"role": "OWNER"})
        member = client.get("/organizations/acme/settings", headers={"X-User": "bob"})
        assert (member.status_code, member.json()["error"]["code"]) == (403, "permission_denied")
        stranger = client.get("/organizations/acme/settings", headers={"X-User": "eve"})
        assert stranger.status_code == 403


def test_the_flask_quickstart_protects_its_routes(flask_app: ModuleType) -> None:
    """Start-up migrates; the creator is OWNER; keys and roles guard their routes with 401 and 403."""
    client = flask_app.app.test_client()
    created = client.post("/organizations/acme", headers={"X-User": "alice"})
    assert (created.status_code, created.json["role"]) == (201, "OWNER")
    key = issue_key(flask_app, "acme")
    add_member(flask_app, "acme", "bob")

    reports = client.get("/reports", headers={"Authorization": f"Bearer {key}"})
    assert (reports.status_code, reports.json) == (200, {"organization_id": "acme"})
    anonymous = client.get("/reports")
    assert (anonymous.status_code, anonymous.json["error"]["code"]) == (401, "invalid_api_key")

    owner = client.get("/organizations/acme/settings", headers={"X-User": "alice"})
    assert (owner.status_code, owner.json) == (200, {"role": "OWNER"})
    member = client.get("/organizations/acme/settings", headers={"X-User": "bob"})
    assert (member.status_code, member.json["error"]["code"]) == (403, "permission_denied")
    stranger = client.get("/organizations/acme/settings", headers={"X-User": "eve"})
    assert stranger.status_code == 403
