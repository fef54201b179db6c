"""tenantkit's demo: create and migrate an embedded SQLite database, then show what was created.

Run it with ``make demo`` (or ``python examples/demo.py [path-to-sqlite-file]``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

import tenantkit


def main(path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    tenantkit.upgrade(engine)
    print(f"database   {path}")
    print(f"revision   {tenantkit.current_revision(engine)} (head {tenantkit.head_revision()})")
    inspector = sa.inspect(engine)
    for table in tenantkit.metadata.sorted_tables:
        columns = ", ".join(column["name"] for column in inspector.get_columns(table.name))
        print(f"table      {table.name}: {columns}")
        for index in inspector.get_indexes(table.name):
            unique = "unique " if index["unique"] else ""
            print(f"  {unique}index {index['name']} on {', '.join(map(str, index['column_names']))}")
    show_membership(engine)
    engine.dispose()


def show_membership(engine: sa.Engine) -> None:
    """Found an organization, add members, and watch the rules refuse what they must."""
    members = tenantkit.MembershipService()
    members.events.subscribe(
        lambda event: print(
            f"  event    {type(event).__name__} "
            f"{event.model_dump(mode='json', exclude={'organization_id', 'occurred_at'})}"
        )
    )
    print("membership")
    with tenantkit.transaction(engine) as session:
        # The host's signup flow makes the creator the first OWNER, atomically with its own rows.
        members.add(session, "org_acme", "alice", tenantkit.Role.OWNER, actor=tenantkit.HOST)
        members.add(session, "org_acme", "bob", tenantkit.Role.ADMIN, actor="alice")
        members.add(session, "org_acme", "carol", actor="bob")
    refusals = [
        (
            "bob makes carol OWNER",
            lambda s: members.change_role(s, "org_acme", "carol", "OWNER", actor="bob"),
        ),
        ("bob removes alice", lambda s: members.remove(s, "org_acme", "alice", actor="bob")),
        ("alice leaves", lambda s: members.leave(s, "org_acme", actor="alice")),
    ]
    for label, attempt in refusals:
        try:
            with tenantkit.transaction(engine) as session:
                attempt(session)
        except tenantkit.TenantKitError as error:
            print(f"  refused  {label}: [{error.code}] {error}")
    with tenantkit.transaction(engine) as session:
        members.transfer_ownership(session, "org_acme", "bob", actor="alice")
        for member in members.list_members(session, "org_acme").items:
            print(f"  member   {member.user_id:<6} {member.role.value}")
        role = members.get_role(session, "org_acme", "carol")
        print(f"  carol may invite: {members.can(role, tenantkit.Action.INVITE_MEMBERS)}")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(Path(directory) / "tenantkit-demo.sqlite3")
