"""``tenantkit members suspend|resume|lapsing`` and ``tenantkit departments``, as the host or ``--as``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, TenantKit, transaction
from tenantkit._cli import main
from tenantkit.members import make_attributes


@pytest.fixture
def url(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> str:
    value = sqlite_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TENANTKIT_DATABASE_URL", value)
    return value


@pytest.fixture
def seeded(url: str, sqlite_engine: sa.Engine) -> TenantKit:
    """alice OWNER of org_1; nina MEMBER whose licence lapsed yesterday; ned MEMBER with none."""
    kit = TenantKit()
    now = datetime.now(timezone.utc)
    with transaction(sqlite_engine) as session:
        kit.members.add(session, "org_1", "alice", "OWNER", actor=HOST)
        kit.members.add(session, "org_1", "nina", actor=HOST)
        kit.members.add(session, "org_1", "ned", actor=HOST)
        attributes = make_attributes(
            {"credential_type": "RN"},
            verified_by="board",
            verified_at=now,
            expires_at=now - timedelta(days=1),
        )
        kit.members.record_attributes(session, "org_1", "nina", attributes, actor=HOST)
    return kit


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_lapsing_suspend_resume(seeded: TenantKit) -> None:
    """The lapsed member is listed, suspended (then no longer listed) and resumed; a MEMBER cannot suspend."""
    listed = run("members", "lapsing", "org_1", "--json")
    assert listed.exit_code == 0, listed.output
    assert [item["user_id"] for item in json.loads(listed.stdout)["items"]] == ["nina"]
    assert run("members", "lapsing", "org_1", "--within", "soon").exit_code == 2
    refused = run("members", "suspend", "org_1", "nina", "--as", "ned")
    assert refused.exit_code == 4
    suspended = run("members", "suspend", "org_1", "nina", "--reason", "licence expired", "--json")
    assert suspended.exit_code == 0
    assert json.loads(suspended.stdout)["suspension_reason"] == "licence expired"
    assert json.loads(run("members", "lapsing", "org_1", "--json").stdout)["items"] == []
    table = run("members", "lapsing", "org_1", "--include-suspended")
    assert "nina" in table.stdout
    assert "yes" in table.stdout
    resumed = run("members", "resume", "org_1", "nina")
    assert resumed.exit_code == 0
    assert resumed.stdout == "resumed nina in org_1\n"


def test_departments_commands(seeded: TenantKit) -> None:
    """Create, list, add, list members, remove and delete; a MEMBER may not create."""
    created = run("departments", "create", "org_1", "Cardiology", "--json")
    assert created.exit_code == 0, created.output
    department = json.loads(created.stdout)["id"]
    assert run("departments", "create", "org_1", "Oncology", "--as", "ned").exit_code == 4
    assert "Cardiology" in run("departments", "list", "org_1").stdout
    assert run("departments", "add", "org_1", department, "nina").exit_code == 0
    members = json.loads(run("departments", "members", "org_1", department, "--json").stdout)
    assert [item["user_id"] for item in members["items"]] == ["nina"]
    assert run("departments", "remove", "org_1", department, "nina").exit_code == 0
    assert run("departments", "remove", "org_1", department, "nina").exit_code == 4
    assert run("departments", "delete", "org_1", department).exit_code == 0
