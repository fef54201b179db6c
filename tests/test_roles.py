"""Roles and the permission table; the documentation's copy of the table matches the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given

from tenantkit import DEFAULT_PERMISSIONS, Action, InvalidInputError, PermissionDeniedError, Permissions, Role
from tests.strategies import bad_role_names, role_names, roles

DOC = Path(__file__).resolve().parent.parent / "docs" / "membership.md"
TABLE = re.compile(r"<!-- permission-table:start -->\n(.*?)\n<!-- permission-table:end -->", re.S)


def render_permission_table(table: dict[str, list[str]]) -> str:
    """The Markdown table of ``Permissions.as_table()``: one row per action, one column per role."""
    columns = list(table)
    actions = sorted({action for allowed in table.values() for action in allowed})
    lines = [
        "| Action | " + " | ".join(columns) + " |",
        "| --- | " + " | ".join(":---:" for _ in columns) + " |",
    ]
    for action in actions:
        cells = ["✓" if action in table[role] else "—" for role in columns]
        lines.append(f"| `{action}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


class TestRole:
    @given(role=roles, other=roles)
    def test_grant_follows_rank(self, role: Role, other: Role) -> None:
        """A role grants exactly the roles whose rank is not above its own."""
        assert Permissions().can_grant(role, other) == (other.rank <= role.rank)

    def test_only_owner_makes_owner(self) -> None:
        """OWNER is the only role that may grant OWNER."""
        assert [role for role in Role if Permissions().can_grant(role, Role.OWNER)] == [Role.OWNER]

    def test_ranks_are_ordered(self) -> None:
        """OWNER outranks ADMIN, which outranks MEMBER."""
        assert Role.OWNER.rank > Role.ADMIN.rank > Role.MEMBER.rank

    @given(name=role_names)
    def test_parse_accepts_any_case(self, name: Role | str) -> None:
        """A role parses from the enum or from its name in any case."""
        assert Role.parse(name).value == str(name).upper()

    @given(name=bad_role_names)
    def test_parse_refuses_unknown(self, name: str) -> None:
        """A name that is no role raises InvalidInputError naming the field."""
        with pytest.raises(InvalidInputError) as caught:
            Role.parse(name)
        assert caught.value.field == "role"


class TestPermissions:
    def test_default_table(self) -> None:
        """MEMBER reads; ADMIN manages members, keys and invitations; OWNER also deletes and transfers."""
        table = Permissions()
        assert table.actions(Role.MEMBER) == {"members:read", "api_keys:read", "departments:read"}
        assert table.can(Role.ADMIN, Action.MANAGE_DEPARTMENTS)
        assert not table.can(Role.MEMBER, Action.MANAGE_DEPARTMENTS)
        assert table.can(Role.ADMIN, Action.REMOVE_MEMBERS)
        assert not table.can(Role.ADMIN, Action.TRANSFER_OWNERSHIP)
        assert table.actions(Role.OWNER) == set(DEFAULT_PERMISSIONS[Role.OWNER])
        assert table.actions(Role.MEMBER) < table.actions(Role.ADMIN) < table.actions(Role.OWNER)

    def test_non_member_may_nothing(self) -> None:
        """``None`` (not a member) is refused every action."""
        table = Permissions()
        assert not any(table.can(None, action) for action in Action)
        with pytest.raises(PermissionDeniedError):
            table.require(None, Action.READ_MEMBERS)

    def test_custom_actions_extend_upwards_without_mutating(self) -> None:
        """``with_actions`` grants the role and those above it, and leaves the original table unchanged."""
        base = Permissions()
        extended = base.with_actions("reports:export", Role.ADMIN)
        assert [extended.can(role, "reports:export") for role in Role] == [True, True, False]
        assert not base.can(Role.OWNER, "reports:export")

    @pytest.mark.parametrize("action", ["", "   ", None, 3])
    def test_bad_action(self, action: object) -> None:
        """An empty or non-string action is bad input, not a silent "no"."""
        with pytest.raises(InvalidInputError):
            Permissions().can(Role.OWNER, action)  # type: ignore[arg-type]


class TestDocumentation:
    def test_doc_table_matches_code(self) -> None:
        """docs/membership.md shows exactly the default permission table."""
        match = TABLE.search(DOC.read_text(encoding="utf-8"))
        assert match is not None, "permission table markers missing from docs/membership.md"
        expected = render_permission_table(Permissions().as_table())
        assert match.group(1) == expected, f"regenerate the table in docs/membership.md:\n{expected}"

    def test_renderer_shows_changes(self) -> None:
        """A table that differs renders differently, so the check above can fail."""
        changed = Permissions().with_actions("reports:export", Role.MEMBER).as_table()
        assert render_permission_table(changed) != render_permission_table(Permissions().as_table())
