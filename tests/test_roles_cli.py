"""``tenantkit roles``: create, list, edit and delete custom roles; members take them; ``--policy`` brings the
host's registry and deployment-wide roles; refusals exit 4 with the error's code."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from tenantkit import HOST, CustomRole, PermissionRegistry, Permissions, Role, TenantKit
from tenantkit._cli import main

POLICY = Permissions(
    registry=PermissionRegistry(["orders:sign"]),
    roles=[
        CustomRole(
            key="physician", name="Physician", rank=Role.MEMBER, permissions=frozenset({"orders:sign"})
        )
    ],
)
SPEC = f"{__name__}:POLICY"


@pytest.fixture
def seeded(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    """org_1 with OWNER alice and ADMIN bob, named to every command through TENANTKIT_DATABASE_URL."""
    monkeypatch.setenv("TENANTKIT_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    kit = TenantKit()
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, "org_1", "bob", Role.ADMIN, actor=HOST)
    return sqlite_engine


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


class TestRolesCommands:
    def test_create_list_assign_edit_and_delete(self, seeded: sa.Engine) -> None:
        """A role made on the command line is listed, assigned with ``members set-role``, shown inside its
        rank by ``members list``, renamed, and deleted with ``--reassign-to``."""
        created = run(
            "roles",
            "create",
            "org_1",
            "scribe",
            "--name",
            "Scribe",
            "--rank",
            "member",
            "--permission",
            "members:read",
        )
        assert created.exit_code == 0, created.output
        assert created.stdout == "created role scribe (MEMBER) in org_1\n"
        listing = json.loads(run("roles", "list", "org_1", "--json").stdout)
        assert [(role["key"], role["rank"]) for role in listing] == [("scribe", "MEMBER")]

        assert run("members", "set-role", "org_1", "bob", "scribe", "--as", "alice").exit_code == 0
        rows = [line.split() for line in run("members", "list", "org_1").stdout.splitlines()]
        assert ["org_1", "bob", "MEMBER/scribe"] in rows

        assert run("roles", "edit", "org_1", "scribe", "--name", "Scribe team").exit_code == 0
        refused = run("roles", "delete", "org_1", "scribe")
        assert refused.exit_code == 4
        assert "role_in_use" in refused.stderr
        deleted = run("roles", "delete", "org_1", "scribe", "--reassign-to", "member", "--json")
        assert json.loads(deleted.stdout) == {"key": "scribe", "reassigned_members": 1}

    def test_the_policy_brings_the_hosts_registry_and_roles(self, seeded: sa.Engine) -> None:
        """With ``--policy``, deployment-wide roles are listed and assignable, and a grant the actor cannot
        make is refused (exit 4, ``permission_escalation``); without it, host permissions are unknown."""
        listing = run("roles", "list", "org_1", "--policy", SPEC)
        assert "physician" in listing.stdout
        assert "deployment" in listing.stdout
        unknown = run(
            "roles",
            "create",
            "org_1",
            "signer",
            "--name",
            "S",
            "--rank",
            "MEMBER",
            "--permission",
            "orders:sign",
        )
        assert unknown.exit_code == 2
        assert "unknown permission 'orders:sign'" in unknown.stderr
        escalation = run(
            "members", "add", "org_1", "doc", "--role", "physician", "--as", "bob", "--policy", SPEC
        )
        assert escalation.exit_code == 4
        assert "permission_escalation" in escalation.stderr
        assert run("members", "add", "org_1", "doc", "--role", "physician", "--policy", SPEC).exit_code == 0

    def test_a_bad_policy_spec_is_a_usage_error(self, seeded: sa.Engine) -> None:
        """A spec that is not MODULE:ATTRIBUTE, or names no Permissions, exits 2 saying why."""
        for spec in ("nocolon", "tenantkit:__version__", "no_such_module_xyz:P"):
            result = run("roles", "list", "org_1", "--policy", spec)
            assert result.exit_code == 2, result.output
            assert "policy" in result.stderr
