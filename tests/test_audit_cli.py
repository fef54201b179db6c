"""``tenantkit audit``: list, export, purge, verify and redact from the command line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, AuditSettings, Role, TenantKit
from tenantkit._cli import main
from tenantkit.audit import audit_context
from tenantkit.tables import audit_events

ORG = "org_1"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TENANTKIT_AUDIT_ENABLED", "TENANTKIT_AUDIT_CHAIN", "TENANTKIT_AUDIT_RETENTION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def url(sqlite_engine: sa.Engine) -> str:
    """A database with a chained log: alice (OWNER, by the host), bob (by alice from 203.0.113.7)."""
    kit = TenantKit(audit=AuditSettings(chain=True))
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        with audit_context(ip_address="203.0.113.7", user_agent="=cmd|' /C calc'!A0"):
            kit.members.add(session, ORG, "bob", actor="alice")
    return sqlite_engine.url.render_as_string(hide_password=False)


def run(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["audit", *args[:1], "--url", url, *args[1:]], env=env)


def test_list_prints_the_log_newest_first(url: str) -> None:
    """``list`` prints a table (``--json`` the page); filters and ``--as`` work as in the library."""
    result = run(url, "list", ORG)
    assert result.exit_code == 0, result.output
    header, first, second = result.stdout.splitlines()
    assert header.split() == ["OCCURRED", "TYPE", "ACTOR", "TARGETS", "IP", "CHANGE"]
    assert first.split()[1:6] == ["member.added", "user:alice", "member:bob", "203.0.113.7", "user_id=bob,"]
    assert second.split()[1:5] == ["member.added", "host", "member:alice", "-"]
    page = json.loads(run(url, "list", ORG, "--json", "--actor", "host", "--type", "member.added").stdout)
    assert [item["data"]["user_id"] for item in page["items"]] == ["alice"]
    assert len(json.loads(run(url, "list", ORG, "--json", "--target", "member:bob").stdout)["items"]) == 1
    refused = run(url, "list", ORG, "--as", "bob")
    assert refused.exit_code == 4
    assert "permission_denied" in refused.stderr
    assert run(url, "list", ORG, "--target", "bob").exit_code == 2


def test_export_writes_jsonl_or_csv(url: str, tmp_path: Path) -> None:
    """``export`` writes every row oldest first to stdout or ``--output``; CSV quotes formula-like cells."""
    result = run(url, "export")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["data"]["user_id"] for line in lines] == ["alice", "bob"]
    assert "exported 2 audit event(s)" in result.stderr
    scripted = run(url, "export", "--json")
    assert json.loads(scripted.stderr) == {"exported": 2}
    assert scripted.stdout == result.stdout
    target = tmp_path / "audit.csv"
    assert (
        run(url, "export", "--format", "csv", "--output", str(target), "--since", "2000-01-01").exit_code == 0
    )
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [row["user_agent"] for row in rows] == ["", "'=cmd|' /C calc'!A0"]


def test_export_keeps_the_event_types_named(url: str) -> None:
    """``export --type`` keeps only those types (repeatable); an unknown type is refused, nothing written."""
    kept = run(url, "export", "--type", "member.added", "--type", "member.removed")
    assert kept.exit_code == 0, kept.output
    assert [json.loads(line)["type"] for line in kept.stdout.splitlines()] == ["member.added"] * 2
    assert run(url, "export", "--type", "member.removed").stdout == ""
    refused = run(url, "export", "--format", "csv", "--type", "member.eaten")
    assert refused.exit_code == 2
    assert "unknown event type" in refused.stderr
    assert refused.stdout == ""


def test_verify_passes_then_names_the_broken_link(url: str, sqlite_engine: sa.Engine) -> None:
    """``verify`` exits 0 with each chain's head; after tampering it exits 1 naming where the chain breaks."""
    ok = run(url, "verify", "--json")
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert (report["rows"], report["heads"][0]["sequence"], report["broken"]) == (2, 2, [])
    with sqlite_engine.begin() as connection:
        connection.execute(
            audit_events.update().where(audit_events.c.chain_seq == 1).values(actor_kind="system")
        )
    broken = run(url, "verify")
    assert broken.exit_code == 1
    assert f"BROKEN {ORG} at position 1" in broken.stdout


def test_purge_needs_an_age_and_a_dry_run_deletes_nothing(url: str) -> None:
    """``purge`` takes ``--older-than`` or ``TENANTKIT_AUDIT_RETENTION``; ``--dry-run`` only counts."""
    missing = run(url, "purge")
    assert missing.exit_code == 2
    assert "--older-than" in missing.stderr
    assert run(url, "purge", "--older-than", "0d").exit_code == 2
    # The rows were written just now (the system clock): a year's retention keeps both.
    dry = json.loads(run(url, "purge", "--json", "--dry-run", "--older-than", "365d").stdout)
    assert (dry["rows"], dry["dry_run"]) == (0, True)
    kept = run(url, "purge", env={"TENANTKIT_AUDIT_RETENTION": "365d"})
    assert kept.exit_code == 0, kept.output
    assert "deleted 0 audit row(s)" in kept.stdout


def test_redact_erases_a_users_context(url: str) -> None:
    """``redact --user`` clears the rows the user acted in and records the erasure; the chain verifies."""
    result = run(url, "redact", "--user", "alice", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"rows": 1, "organizations": [ORG]}
    page = json.loads(run(url, "list", ORG, "--json").stdout)
    assert [item["type"] for item in page["items"]] == [
        "audit.personal_data_redacted",
        "member.added",
        "member.added",
    ]
    assert page["items"][1]["context"]["ip_address"] is None
    assert run(url, "verify").exit_code == 0
    assert run(url, "redact").exit_code == 2
