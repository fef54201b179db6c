"""tenantkit's demo: the library's main job, end to end, on an embedded SQLite database.

Run it with ``make demo`` (or ``python examples/demo.py [path-to-sqlite-file]``; without a path it works in a
temporary directory and leaves nothing behind). Each step is its own transaction, as each would be its own
request in a web app; the events tenantkit delivers after each commit are printed at the end, and the audit
log it wrote inside each transaction is read back.

No secret is printed in full: keys show their first characters, invitation tokens not at all.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, InvitationSettings, Role, TenantKit, TenantKitError
from tenantkit.audit import audit_context
from tenantkit.events import Event

# A demo-only signing key; a real deployment keeps its own in a secret store.
INVITATION_SECRET = "demo-only-invitation-signing-key"


def step(title: str) -> None:
    print(f"\n== {title}")


def line(label: str, text: str) -> None:
    print(f"   {label:<16} {text}")


def refused(label: str, attempt: Callable[[], object]) -> None:
    """Run ``attempt``, which must fail, and show the refusal with its stable error code."""
    try:
        attempt()
    except TenantKitError as error:
        line(label, f"refused: {error.code} ({error.message})")
    else:
        raise AssertionError(f"{label}: expected a refusal")


def describe(event: Event) -> str:
    """One line per event, from its payload: what every consumer (audit log, webhooks) would store."""
    payload = event.to_payload()
    fields = []
    for name, value in payload["data"].items():
        if value in (None, []):
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value))
        elif name.endswith(("_at", "_until")):
            value = f"{value[:16]}Z"  # to the minute
        elif name.endswith("_id") and len(str(value)) == 36:
            value = f"{str(value)[:8]}…"  # a UUID; the first characters are enough to tell them apart
        fields.append(f"{name}={value}")
    actor = payload["actor"]
    return f"{payload['type']:<20} by {actor['id'] or actor['kind']:<8} {' '.join(fields)}"


def main(path: Path) -> None:  # noqa: PLR0915  a walkthrough, read top to bottom as the docs tell it
    print(f"tenantkit {tenantkit.__version__} demo on {path}")
    engine = sa.create_engine(f"sqlite:///{path}")
    kit = TenantKit(invitations=InvitationSettings(secret_keys=[INVITATION_SECRET]))
    delivered: list[Event] = []
    kit.subscribe(delivered.append)
    org = "acme"

    step("1. Migrate")
    result = tenantkit.upgrade(engine)
    line("revisions", f"{', '.join(result.applied) or 'none needed'} (head {tenantkit.head_revision()})")
    line("tables", ", ".join(table.name for table in tenantkit.tables.metadata.sorted_tables))

    step("2. The organization's first owner")
    with kit.transaction(engine) as session:
        # Your sign-up flow acts as the host: nobody is a member yet who could add alice.
        owner = kit.members.add(session, org, "alice", Role.OWNER, actor=HOST)
    line("added", f"{owner.user_id} is {owner.role} of {org} (the host acting)")

    step("3. An API key, issued once and verified on every request")
    with kit.transaction(engine) as session:
        issued = kit.api_keys.issue(session, org, "CI deploys", actor="alice", scopes=["reports:read"])
    key = issued.reveal()  # the plaintext exists only here; the database holds a digest
    line("issued", f"{issued.api_key.name!r} {issued.start}… scopes {', '.join(issued.api_key.scopes)}")
    with kit.transaction(engine) as session:
        verified = kit.api_keys.verify(session, key)
    line("verified", f"valid={verified.valid} organization={verified.organization_id} key={verified.name!r}")

    step("4. Invitations")
    with kit.transaction(engine) as session:
        by_email = kit.invitations.create_email_invitation(
            session, org, "bob@acme.example", Role.ADMIN, actor="alice"
        )
        by_link = kit.invitations.create_link_invitation(
            session, org, ["acme.example"], Role.MEMBER, actor="alice", max_uses=10
        )
    line(
        "by email",
        f"bob@acme.example as {by_email.invitation.role}, expires {by_email.invitation.expires_at:%Y-%m-%d}",
    )
    line(
        "by link",
        f"anyone at acme.example as {by_link.invitation.role}, up to {by_link.invitation.max_uses} people",
    )

    step("5. Acceptances (the identity provider vouches for each address)")
    with kit.transaction(engine) as session:
        accepted = kit.invitations.accept(
            session,
            by_email.token.get_secret_value(),
            user_id="bob",
            email="bob@acme.example",
            email_verified=True,
        )
    line("bob", f"accepted the email invitation: now {accepted.role}")
    with kit.transaction(engine) as session:
        accepted = kit.invitations.accept(
            session,
            by_link.token.get_secret_value(),
            user_id="carol",
            email="carol@acme.example",
            email_verified=True,
        )
    line("carol", f"accepted the link as carol@acme.example: now {accepted.role}")

    def mallory_accepts() -> object:
        with kit.transaction(engine) as session:
            return kit.invitations.accept(
                session,
                by_link.token.get_secret_value(),
                user_id="mallory",
                email="mallory@elsewhere.example",
                email_verified=True,
            )

    refused("mallory", mallory_accepts)

    step("6. Members")
    with kit.transaction(engine) as session:
        members = kit.members.list_members(session, org, actor="alice").items
    for member in members:
        line(member.user_id, str(member.role))

    step("7. Forbidden actions")

    def bob_makes_carol_owner() -> object:
        with kit.transaction(engine) as session:
            return kit.members.change_role(session, org, "carol", Role.OWNER, actor="bob")

    def carol_issues_a_key() -> object:
        with kit.transaction(engine) as session:
            return kit.api_keys.issue(session, org, "carol's key", actor="carol")

    def alice_leaves() -> object:
        with kit.transaction(engine) as session:
            return kit.members.leave(session, org, actor="alice")

    refused("bob → OWNER", bob_makes_carol_owner)
    refused("carol → key", carol_issues_a_key)
    refused("alice leaves", alice_leaves)

    step("8. Revoking the key")
    # What a web adapter does for each request: the audit row of this change names the client.
    with kit.transaction(engine) as session, audit_context(ip_address="203.0.113.7", request_id="req-8"):
        kit.api_keys.revoke(session, org, issued.id, actor="alice")
    with kit.transaction(engine) as session:
        verified = kit.api_keys.verify(session, key)
    line("verified", f"valid={verified.valid} reason={verified.reason}")

    step(f"9. Events delivered after commit ({len(delivered)}; refused attempts rolled back and sent none)")
    for event in delivered:
        print(f"   {describe(event)}")

    step("10. The audit log, newest first (written in each change's own transaction)")
    with kit.transaction(engine) as session:
        page = kit.audit.list_events(session, org, actor="alice", limit=4)
    for audited in page.items:
        actor = audited.actor.id or audited.actor.kind
        client = audited.context.ip_address or "-"
        request = audited.context.request_id or "-"
        print(f"   {audited.type:<20} by {actor:<8} from {client:<12} request {request}")
    engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(Path(directory) / "tenantkit-demo.sqlite3")
