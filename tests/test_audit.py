"""The audit log: one row per recorded change, in the change's own transaction; read, kept and erased.

Every test that runs SQL whose spelling differs per dialect (the target filter, the chain head's lock, the
purge, the redaction of a JSON field) runs on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from tenantkit import HOST, Actor, AuditSettings, InvitationSettings, Role, TenantKit
from tenantkit.audit import CSV_COLUMNS, AuditEvent, AuditService, AuditTarget, RequestContext, audit_context
from tenantkit.audit._model import event_from_row, time_ordered_id
from tenantkit.errors import AuditChainBrokenError, InvalidInputError, PermissionDeniedError
from tenantkit.events import EVENT_TYPES, EventDispatcher, MemberAdded
from tenantkit.members import make_attributes
from tenantkit.tables import audit_chain_heads, audit_events
from tenantkit.testing import FrozenClock
from tests.domain_changes import DOMAIN_AND_SSO_EVENTS, every_domain_and_sso_change

ORG = "org_1"
OTHER = "org_2"
SECRET = "audit-suite-invitation-secret-0123456789"
CONTEXT = RequestContext(ip_address="203.0.113.7", user_agent="Mozilla/5.0 (audit suite)", request_id="req_1")


def audit_kit(clock: FrozenClock, *, chain: bool = False, enabled: bool = True) -> TenantKit:
    return TenantKit(
        invitations=InvitationSettings(secret_keys=[SECRET]),
        audit=AuditSettings(chain=chain, enabled=enabled),
        clock=clock,
    )


def stored(bind: sa.Engine | Session, organization_id: str | None = None) -> list[AuditEvent]:
    """Every audit row (of one organization), in the order written (row ids are time-ordered)."""
    query = sa.select(audit_events).order_by(audit_events.c.id)
    if organization_id is not None:
        query = query.where(audit_events.c.organization_id == organization_id)
    if isinstance(bind, Session):
        return [event_from_row(row) for row in bind.execute(query)]
    with bind.connect() as connection:
        return [event_from_row(row) for row in connection.execute(query)]


def summary(event: AuditEvent) -> tuple[Any, ...]:
    return (
        event.type,
        str(Actor(event.actor.kind, event.actor.id)),  # type: ignore[arg-type]
        [(target.type, target.id) for target in event.targets],
        event.data,
    )


class NewRows:
    """The rows written since the last call, read in the change's own transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.seen = 0

    def __call__(self) -> list[tuple[Any, ...]]:
        rows = stored(self.session)
        fresh, self.seen = rows[self.seen :], len(rows)
        return [summary(event) for event in fresh]


class TestEveryChangeIsRecorded:
    def test_each_mutating_call_writes_its_row(  # noqa: PLR0915  one scripted session, a step per call
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Every mutating call of every service writes exactly one row naming its actor, targets and change
        (an acceptance two, both the accepting user's); a call that changes nothing writes none."""
        kit = audit_kit(clock)
        with kit.transaction(engine) as s, audit_context(CONTEXT):
            new = NewRows(s)
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            assert new() == [
                (
                    "member.added",
                    "host",
                    [("member", "alice")],
                    {"user_id": "alice", "role": "OWNER", "custom_role": None},
                )
            ]
            kit.members.add(s, ORG, "bob", actor="alice")
            kit.members.add(s, ORG, "carol", Role.ADMIN, actor="alice")
            assert [row[1:3] for row in new()] == [
                ("alice", [("member", "bob")]),
                ("alice", [("member", "carol")]),
            ]
            kit.members.change_role(s, ORG, "bob", Role.ADMIN, actor="alice")
            assert new() == [
                (
                    "member.role_changed",
                    "alice",
                    [("member", "bob")],
                    {
                        "user_id": "bob",
                        "old_role": "MEMBER",
                        "new_role": "ADMIN",
                        "old_custom_role": None,
                        "new_custom_role": None,
                    },
                )
            ]
            kit.members.change_role(s, ORG, "bob", Role.ADMIN, actor="alice")
            assert new() == []
            kit.members.transfer_ownership(s, ORG, "bob", actor="alice")
            assert new() == [
                (
                    "member.ownership_transferred",
                    "alice",
                    [("member", "alice"), ("member", "bob")],
                    {
                        "from_user_id": "alice",
                        "to_user_id": "bob",
                        "from_user_new_role": "ADMIN",
                        "from_user_new_custom_role": None,
                    },
                )
            ]
            kit.members.remove(s, ORG, "carol", actor="bob")
            kit.members.leave(s, ORG, actor="alice")
            assert new() == [
                (
                    "member.removed",
                    "bob",
                    [("member", "carol")],
                    {"user_id": "carol", "role": "ADMIN", "left": False},
                ),
                (
                    "member.removed",
                    "alice",
                    [("member", "alice")],
                    {"user_id": "alice", "role": "ADMIN", "left": True},
                ),
            ]

            kit.roles.create(s, ORG, "billing", name="Billing", rank=Role.MEMBER, actor="bob")
            kit.roles.update(s, ORG, "billing", name="Billing team", actor="bob")
            kit.roles.update(s, ORG, "billing", name="Billing team", actor="bob")
            kit.roles.delete(s, ORG, "billing", actor="bob")
            role = [("role", "billing")]
            rows = new()
            assert [row[:3] for row in rows] == [
                ("role.created", "bob", role),
                ("role.updated", "bob", role),
                ("role.deleted", "bob", role),
            ]
            assert rows[1][3] == {"role_key": "billing", "changed": ["name"], "added": [], "removed": []}

            issued = kit.api_keys.issue(s, ORG, "CI", actor="bob", scopes=["reports:read"])
            data = {"key_id": issued.id, "name": "CI", "start": issued.start, "scopes": ["reports:read"]}
            assert new() == [("api_key.issued", "bob", [("api_key", issued.id)], data)]
            rotated = kit.api_keys.rotate(s, ORG, issued.id, actor="bob", grace=timedelta(hours=1))
            ((kind, actor, targets, change),) = new()
            assert (kind, actor, targets) == (
                "api_key.rotated",
                "bob",
                [("api_key", issued.id), ("api_key", rotated.id)],
            )
            assert change["old_key_valid_until"] == "2030-01-01T01:00:00Z"
            kit.api_keys.set_credits(s, ORG, rotated.id, 7, actor="bob")
            kit.api_keys.add_credits(s, ORG, rotated.id, 3, actor="bob")
            credits = [("api_key", rotated.id)]
            assert new() == [
                (
                    "api_key.credits_changed",
                    "bob",
                    credits,
                    {"key_id": rotated.id, "operation": "set", "amount": 7, "remaining": 7},
                ),
                (
                    "api_key.credits_changed",
                    "bob",
                    credits,
                    {"key_id": rotated.id, "operation": "add", "amount": 3, "remaining": 10},
                ),
            ]
            kit.api_keys.revoke(s, ORG, rotated.id, actor="bob")
            kit.api_keys.revoke(s, ORG, rotated.id, actor="bob")
            kit.api_keys.delete(s, ORG, issued.id, actor="bob")
            assert [row[:3] for row in new()] == [
                ("api_key.revoked", "bob", [("api_key", rotated.id)]),
                ("api_key.deleted", "bob", [("api_key", issued.id)]),
            ]

            email = kit.invitations.create_email_invitation(s, ORG, "eve@example.com", actor="bob")
            kit.invitations.resend(s, ORG, email.invitation.id, actor="bob")
            kit.invitations.mark_sent(s, ORG, email.invitation.id, actor="bob")
            kit.invitations.mark_sent(s, ORG, email.invitation.id, actor="bob")
            kit.invitations.revoke(s, ORG, email.invitation.id, actor="bob")
            invitation = [("invitation", email.invitation.id)]
            rows = new()
            assert [row[:3] for row in rows] == [
                ("invitation.created", "bob", invitation),
                ("invitation.resent", "bob", invitation),
                ("invitation.marked_sent", "bob", invitation),
                ("invitation.revoked", "bob", invitation),
            ]
            assert rows[0][3]["email"] == "eve@example.com"
            assert rows[2][3] == {"invitation_id": email.invitation.id, "sent": True}

            link = kit.invitations.create_link_invitation(s, ORG, ["example.com"], actor="bob")
            new()
            kit.invitations.accept(
                s,
                link.token.get_secret_value(),
                user_id="nora",
                email="nora@example.com",
                email_verified=True,
            )
            assert [row[:3] for row in new()] == [
                ("member.added", "nora", [("member", "nora")]),
                ("invitation.accepted", "nora", [("invitation", link.invitation.id), ("member", "nora")]),
            ]
            verified = make_attributes({"npi": "1234567893"}, verified_by="nppes", verified_at=clock())
            kit.members.record_attributes(s, ORG, "nora", verified, actor=HOST)
            kit.members.suspend(s, ORG, "nora", actor=HOST, reason="licence lapsed")
            kit.members.resume(s, ORG, "nora", actor=HOST)
            assert new() == [
                (
                    "member.attributes_recorded",
                    "host",
                    [("member", "nora")],
                    {
                        "user_id": "nora",
                        "verified_by": "nppes",
                        "expires_at": None,
                        "attribute_names": ["npi"],
                    },
                ),
                (
                    "member.suspended",
                    "host",
                    [("member", "nora")],
                    {"user_id": "nora", "role": "MEMBER", "reason": "licence lapsed"},
                ),
                ("member.resumed", "host", [("member", "nora")], {"user_id": "nora", "role": "MEMBER"}),
            ]
            ward = kit.departments.create(s, ORG, "Ward 1", actor=HOST)
            kit.departments.update(s, ORG, ward.id, actor=HOST, description="Night shift")
            kit.departments.add_member(s, ORG, ward.id, "nora", actor=HOST)
            kit.departments.remove_member(s, ORG, ward.id, "nora", actor=HOST)
            kit.departments.delete(s, ORG, ward.id, actor=HOST)
            department = [("department", ward.id)]
            assert [row[:3] for row in new()] == [
                ("department.created", "host", department),
                ("department.updated", "host", department),
                ("department.member_added", "host", [*department, ("member", "nora")]),
                ("department.member_removed", "host", [*department, ("member", "nora")]),
                ("department.deleted", "host", department),
            ]
            result = kit.audit.redact(s, user_id="bob")
            assert new() == [
                (
                    "audit.personal_data_redacted",
                    "host",
                    [("user", "bob")],
                    {
                        "subject": "user",
                        "subject_user_id": "bob",
                        "fields": ["ip_address", "user_agent"],
                        "rows": result.rows,
                    },
                )
            ]
            kit.organizations.update_settings(s, ORG, {"require_sso": True}, expected_version=0, actor=HOST)
            assert new() == [
                (
                    "organization.settings_changed",
                    "host",
                    [("organization", ORG)],
                    {"settings_version": 1, "changed_keys": ["require_sso"]},
                )
            ]
            every_domain_and_sso_change(s, kit.members, ORG, HOST)
            assert [row[0] for row in new()] == DOMAIN_AND_SSO_EVENTS
        everything = stored(engine, ORG)
        with kit.transaction(engine) as s, audit_context(CONTEXT):
            kit.members.add(s, "org_2", "zed", Role.OWNER, actor=HOST)
            kit.members.add(s, "org_2", "yan", actor=HOST)
            new = NewRows(s)
            new()
            kit.organizations.erase_user(s, "yan")
            assert new() == [
                (
                    "organization.user_data_erased",
                    "host",
                    [("user", "yan")],
                    {"subject_user_id": "yan", "rows": {"team_members": 1}},
                )
            ]
            kit.organizations.delete_organization(s, "org_2", actor="zed")
            ((kind, actor, targets, change),) = new()
            assert (kind, actor, targets) == ("organization.data_deleted", "zed", [("organization", "org_2")])
            assert change["audit"] == "kept"
            assert change["rows"]["team_members"] == 1
        every_type = {event.type for event in stored(engine)}
        # Webhook management's events have their scripted session in test_webhooks (every change audited).
        core = {
            name for name, cls in EVENT_TYPES.items() if not cls.__module__.startswith("tenantkit.webhooks")
        }
        assert every_type == core, "a new event type needs a step here"
        assert result.rows == sum(1 for event in everything if event.actor.id == "bob") == 15
        for event in everything:
            assert event.organization_id == ORG
            assert event.occurred_at == clock()
            expected = RequestContext(request_id="req_1") if event.actor.id == "bob" else CONTEXT
            assert event.context == expected, event

    def test_a_refused_call_writes_nothing(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """A call that raises (a MEMBER adding someone) leaves no row, even before the caller rolls back."""
        kit = audit_kit(clock)
        with kit.transaction(engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            kit.members.add(s, ORG, "mia", actor="alice")
            with pytest.raises(PermissionDeniedError):
                kit.members.add(s, ORG, "zed", actor="mia")
            assert [event.data["user_id"] for event in stored(s)] == ["alice", "mia"]

    def test_verification_writes_nothing(self, sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
        """Verifying a key (once per request) is not audited, even when it writes the key's last use."""
        kit = audit_kit(clock)
        with kit.transaction(sqlite_engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            issued = kit.api_keys.issue(s, ORG, "CI", actor="alice")
        with kit.transaction(sqlite_engine) as s:
            assert kit.api_keys.verify(s, issued.reveal()).valid
        assert [event.type for event in stored(sqlite_engine)] == ["member.added", "api_key.issued"]


class TestTheTransactionDecides:
    def test_a_rollback_leaves_no_row(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """A rolled-back transaction produces no audit row."""
        kit = audit_kit(clock, chain=True)
        with Session(engine) as session:
            kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            assert len(stored(session)) == 1
            session.rollback()
        assert stored(engine) == []
        with engine.connect() as connection:
            assert connection.execute(sa.select(audit_chain_heads)).all() == []

    def test_a_rolled_back_savepoint_takes_only_its_rows(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """A savepoint rolled back inside a committed transaction leaves the rows of what committed, and the
        chain still verifies (its head went back with the savepoint)."""
        kit = audit_kit(clock, chain=True)
        with Session(engine) as session:
            kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            savepoint = session.begin_nested()
            kit.members.add(session, ORG, "bob", actor="alice")
            savepoint.rollback()
            kit.members.add(session, ORG, "carol", actor="alice")
            session.commit()
        assert [(event.data["user_id"], event.sequence) for event in stored(engine)] == [
            ("alice", 1),
            ("carol", 2),
        ]
        with Session(engine) as session:
            assert kit.audit.verify(session).ok

    def test_off_writes_nothing_and_other_subscribers_still_hear(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """With the audit log off, no row is written; a record-time subscriber (an outbox) still runs."""
        kit = audit_kit(clock, enabled=False)
        heard: list[str] = []
        kit.events.on_record(lambda _session, event: heard.append(event.event_type))
        with kit.transaction(sqlite_engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            assert kit.audit.list_events(s, ORG, actor=HOST).items == []
        assert heard == ["member.added"]
        assert stored(sqlite_engine) == []

    def test_a_service_built_by_hand_is_audited_by_a_service_on_its_dispatcher(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Outside a kit, ``AuditService`` on the services' dispatcher writes; ``close()`` stops it."""
        kit = audit_kit(clock, enabled=False)
        audit = AuditService(membership=kit.members, clock=clock)
        with kit.transaction(sqlite_engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            audit.close()
            kit.members.add(s, ORG, "bob", actor="alice")
        assert [event.data["user_id"] for event in stored(sqlite_engine)] == ["alice"]


class TestRequestContext:
    def test_nested_blocks_fill_in_what_the_inner_leaves_out(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """An inner ``audit_context`` overrides the fields it gives and keeps the rest; outside, none."""
        kit = audit_kit(clock)
        with kit.transaction(sqlite_engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            with audit_context(CONTEXT):
                kit.members.add(s, ORG, "bob", actor="alice")
                with audit_context(request_id="job_7") as inner:
                    assert inner == CONTEXT.model_copy(update={"request_id": "job_7"})
                    kit.members.add(s, ORG, "carol", actor="alice")
            kit.audit.write(
                s,
                MemberAdded(
                    organization_id=ORG, actor=HOST, occurred_at=clock(), user_id="dan", role="MEMBER"
                ),
                CONTEXT,
            )
        contexts = [event.context for event in stored(sqlite_engine)]
        assert contexts == [
            RequestContext(),
            CONTEXT,
            CONTEXT.model_copy(update={"request_id": "job_7"}),
            CONTEXT,
        ]

    def test_a_context_and_fields_together_are_refused(self) -> None:
        """``audit_context`` takes a context or its fields, not both; a bad field is invalid input."""
        with pytest.raises(TypeError), audit_context(CONTEXT, request_id="x"):
            pass
        with pytest.raises(InvalidInputError) as error, audit_context(ip_address="not-an-ip"):
            pass
        assert error.value.field == "ip_address"


def seed_log(kit: TenantKit, engine: sa.Engine, clock: FrozenClock) -> dict[str, str]:
    """org_1: alice OWNER, bob ADMIN, mia MEMBER, a key, each change a minute apart; org_2: mallory."""
    with kit.transaction(engine) as s:
        kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
        clock.advance(minutes=1)
        kit.members.add(s, ORG, "bob", Role.ADMIN, actor="alice")
        clock.advance(minutes=1)
        kit.members.add(s, ORG, "mia", actor="bob")
        clock.advance(minutes=1)
        key = kit.api_keys.issue(s, ORG, "CI", actor="bob")
        clock.advance(minutes=1)
        kit.members.change_role(s, ORG, "mia", Role.ADMIN, actor="alice")
        kit.members.add(s, OTHER, "mallory", Role.OWNER, actor=HOST)
    return {"key": key.id}


class TestListing:
    def test_filters(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Newest first; by who acted, event type, target and time window, always within one organization."""
        kit = audit_kit(clock)
        start = clock()
        ids = seed_log(kit, engine, clock)
        with Session(engine) as s:

            def types(**filters: Any) -> list[str]:
                return [event.type for event in kit.audit.list_events(s, ORG, actor="alice", **filters).items]

            assert types() == [
                "member.role_changed",
                "api_key.issued",
                "member.added",
                "member.added",
                "member.added",
            ]
            assert types(performed_by="bob") == ["api_key.issued", "member.added"]
            assert types(performed_by=HOST) == ["member.added"]
            assert types(event_types=["api_key.issued", MemberAdded]) == [
                "api_key.issued",
                "member.added",
                "member.added",
                "member.added",
            ]
            assert types(target=("member", "mia")) == ["member.role_changed", "member.added"]
            assert types(target=AuditTarget(type="api_key", id=ids["key"])) == ["api_key.issued"]
            assert types(target=("member", "mallory")) == []
            window = {"since": start + timedelta(minutes=1), "until": start + timedelta(minutes=3)}
            assert types(**window) == ["member.added", "member.added"]

    def test_pages_never_repeat_or_skip(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Walking the pages gives every row once, newest first, rows of one instant in the order written."""
        kit = audit_kit(clock)
        with kit.transaction(engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            for index in range(6):
                kit.members.add(s, ORG, f"user_{index}", actor="alice")
        seen: list[str] = []
        cursor = None
        with Session(engine) as s:
            while True:
                page = kit.audit.list_events(s, ORG, actor=HOST, limit=2, cursor=cursor)
                seen += [event.data["user_id"] for event in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        assert seen == [*(f"user_{index}" for index in reversed(range(6))), "alice"]

    def test_reading_needs_audit_read_in_that_organization(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """OWNER and ADMIN read the log; a MEMBER, a stranger and another organization's OWNER may not."""
        kit = audit_kit(clock)
        seed_log(kit, engine, clock)
        with kit.transaction(engine) as s:
            kit.members.add(s, ORG, "max", actor="alice")
        with Session(engine) as s:
            assert len(kit.audit.list_events(s, ORG, actor="bob").items) == 6
            for refused in ("max", "nobody", "mallory"):
                with pytest.raises(PermissionDeniedError):
                    kit.audit.list_events(s, ORG, actor=refused)
            assert [
                event.organization_id for event in kit.audit.list_events(s, OTHER, actor="mallory").items
            ] == [OTHER]

    @pytest.mark.parametrize(
        ("filters", "field"),
        [
            ({"since": datetime(2030, 1, 1)}, "since"),  # noqa: DTZ001  the naive datetime under test
            ({"event_types": ["member.exploded"]}, "event_types"),
            ({"event_types": "member.added"}, "event_types"),
            ({"event_types": []}, "event_types"),
            ({"target": ("member", "")}, "target"),
            ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
            ({"limit": 0}, "limit"),
            (
                {
                    "since": datetime(2030, 2, 1, tzinfo=timezone.utc),
                    "until": datetime(2030, 1, 1, tzinfo=timezone.utc),
                },
                "until",
            ),
        ],
    )
    def test_bad_filters_are_invalid_input(
        self, sqlite_engine: sa.Engine, clock: FrozenClock, filters: dict[str, Any], field: str
    ) -> None:
        """A naive time, an unknown type, a bare string, an empty id, a bad cursor: ``InvalidInputError``."""
        kit = audit_kit(clock)
        with Session(sqlite_engine) as s, pytest.raises(InvalidInputError) as error:
            kit.audit.list_events(s, ORG, actor=HOST, **filters)
        assert error.value.field == field


def insert_rows(engine: sa.Engine, count: int, *, user_agent: str | None = None) -> None:
    """``count`` unchained rows, a second apart from 2029-01-01, inserted directly."""
    start = datetime(2029, 1, 1, tzinfo=timezone.utc)
    rows = [
        {
            "id": time_ordered_id(),
            "organization_id": ORG if index % 2 else OTHER,
            "occurred_at": start + timedelta(seconds=index),
            "event_type": "member.added",
            "event_version": 1,
            "actor_kind": "host",
            "actor_id": None,
            "targets": [{"type": "member", "id": f"user_{index}"}],
            "data": {"user_id": f"user_{index}", "role": "MEMBER"},
            "ip_address": None,
            "user_agent": user_agent,
            "request_id": None,
        }
        for index in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(audit_events.insert(), rows)


class TestExport:
    def test_jsonl_is_every_event_oldest_first_across_pages(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """JSON Lines: one ``AuditEvent`` per line as ``model_dump(mode="json")`` has it, pages joined."""
        insert_rows(sqlite_engine, 1001)
        kit = audit_kit(clock)
        out = io.StringIO()
        progress: list[int] = []
        with Session(sqlite_engine) as s:
            assert kit.audit.export(s, out, progress=progress.append) == 1001
            events = list(kit.audit.iter_events(s))
            assert kit.audit.count(s, organization_id=ORG) == 500
        lines = out.getvalue().splitlines()
        assert progress == [1000, 1]
        assert [json.loads(line) for line in lines] == [event.model_dump(mode="json") for event in events]
        assert [event.data["user_id"] for event in events] == [f"user_{index}" for index in range(1001)]

    def test_filters_and_csv(self, sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
        """CSV has a header and one row per event; a cell a spreadsheet would run as a formula is quoted."""
        insert_rows(sqlite_engine, 4, user_agent='=HYPERLINK("https://evil.example")')
        kit = audit_kit(clock)
        out = io.StringIO()
        with Session(sqlite_engine) as s:
            since = datetime(2029, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
            assert kit.audit.export(s, out, export_format="csv", organization_id=ORG, since=since) == 2
        header, *rows = csv.reader(io.StringIO(out.getvalue()))
        assert header == list(CSV_COLUMNS)
        assert [(row[5], row[6], row[10]) for row in rows] == [
            ("host", "", '\'=HYPERLINK("https://evil.example")')
        ] * 2
        assert json.loads(rows[0][7]) == [{"type": "member", "id": "user_1"}]

    @pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
    def test_every_formula_start_is_neutralized(
        self, sqlite_engine: sa.Engine, clock: FrozenClock, start: str
    ) -> None:
        """Each character OWASP lists as starting a spreadsheet formula gets a leading ``'`` in CSV (the CLI
        and the pages write through the same function); JSON Lines keeps the value as it is."""
        value = start + "SUM(A1:A9)"
        insert_rows(sqlite_engine, 2, user_agent=value)
        kit = audit_kit(clock)
        out = io.StringIO()
        with Session(sqlite_engine) as s:
            kit.audit.export(s, out, export_format="csv", organization_id=ORG)
            lines = io.StringIO()
            kit.audit.export(s, lines, organization_id=ORG)
        _, row = csv.reader(io.StringIO(out.getvalue(), newline=""))
        assert row[CSV_COLUMNS.index("user_agent")] == "'" + value
        assert json.loads(lines.getvalue())["context"]["user_agent"] == value

    @pytest.mark.parametrize("line_break", ["\r", "\n", "\r\n"])
    def test_a_line_break_cannot_start_a_row_of_its_own(
        self, sqlite_engine: sa.Engine, clock: FrozenClock, line_break: str
    ) -> None:
        """A cell holding a line break is quoted: it stays one cell of one row, so what follows the break
        never becomes a (formula) cell of a row of its own; rows end with CRLF."""
        value = f'Mozilla{line_break}=HYPERLINK("https://evil.example")'
        insert_rows(sqlite_engine, 2, user_agent=value)
        out = io.StringIO()
        with Session(sqlite_engine) as s:
            audit_kit(clock).audit.export(s, out, export_format="csv", organization_id=ORG)
        assert out.getvalue().endswith("\r\n")
        header, *rows = csv.reader(io.StringIO(out.getvalue(), newline=""))
        assert len(rows) == 1
        assert rows[0][CSV_COLUMNS.index("user_agent")] == value
        assert len(rows[0]) == len(header)

    def test_event_types_filter_the_export_and_the_count(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """``event_types`` keeps the types named (dotted names or classes) in the export, the iterations and
        the count alike; an unknown type is refused before anything is written."""
        kit = audit_kit(clock)
        with kit.transaction(sqlite_engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            kit.members.add(s, ORG, "bob", actor=HOST)
            kit.members.remove(s, ORG, "bob", actor=HOST)
        out = io.StringIO()
        with Session(sqlite_engine) as s:
            written = kit.audit.export(s, out, organization_id=ORG, event_types=iter([MemberAdded]))
            assert written == 2
            assert [json.loads(line)["type"] for line in out.getvalue().splitlines()] == ["member.added"] * 2
            removed = ["member.removed"]
            assert kit.audit.count(s, organization_id=ORG, event_types=removed) == 1
            events = kit.audit.iter_events(s, organization_id=ORG, event_types=removed)
            assert [event.type for event in events] == removed
            refused = io.StringIO()
            with pytest.raises(InvalidInputError) as raised:
                kit.audit.export(s, refused, export_format="csv", event_types=["member.eaten"])
            assert raised.value.field == "event_types"
            assert refused.getvalue() == ""

    def test_an_actor_needs_audit_read_in_the_organization(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """With ``actor``, the export is the member's: ``audit:read`` is checked before anything is written,
        and an organization must be named."""
        kit = audit_kit(clock)
        with kit.transaction(sqlite_engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            kit.members.add(s, ORG, "bob", actor=HOST)
        with Session(sqlite_engine) as s:
            out = io.StringIO()
            with pytest.raises(PermissionDeniedError):
                kit.audit.export(s, out, export_format="csv", organization_id=ORG, actor="bob")
            assert out.getvalue() == ""
            with pytest.raises(InvalidInputError) as raised:
                kit.audit.export(s, out, actor="alice")
            assert raised.value.field == "organization_id"
            assert kit.audit.export(s, out, organization_id=ORG, actor="alice") == 2

    def test_an_unknown_format_is_refused(self, sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
        """Only ``jsonl`` and ``csv`` exist."""
        with Session(sqlite_engine) as s, pytest.raises(InvalidInputError):
            audit_kit(clock).audit.export(s, io.StringIO(), export_format="xml")  # type: ignore[arg-type]


class TestPurge:
    def test_old_rows_go_in_bounded_batches_and_chains_keep_verifying(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Rows older than the age go, a batch per transaction; a chain is cut from its oldest end only and
        still verifies from its new anchor; a dry run counts and deletes nothing."""
        insert_rows(engine, 5)  # 2029: unchained, all due
        kit = audit_kit(clock, chain=True)
        with kit.transaction(engine) as s:
            for index in range(4):
                kit.members.add(s, ORG, f"old_{index}", Role.OWNER, actor=HOST)
        clock.advance(days=200)
        with kit.transaction(engine) as s:
            kit.members.add(s, ORG, "young", actor=HOST)
        clock.set(datetime(2030, 1, 2, tzinfo=timezone.utc))  # an old row written after a young one
        with kit.transaction(engine) as s:
            kit.members.add(s, ORG, "late", actor=HOST)
        clock.set(datetime(2030, 7, 20, tzinfo=timezone.utc))

        dry = kit.audit.purge(engine, older_than=timedelta(days=100), batch_size=2, dry_run=True)
        assert (dry.rows, dry.batches, len(stored(engine))) == (9, 0, 11)
        result = kit.audit.purge(engine, older_than=timedelta(days=100), batch_size=2)
        assert (result.rows, result.batches) == (9, 5)  # 5 unchained in 3 batches, 4 chained in 2
        assert [(event.data["user_id"], event.sequence) for event in stored(engine)] == [
            ("young", 5),
            ("late", 6),
        ]
        with Session(engine) as s:
            report = kit.audit.verify(s)
        assert report.ok, report
        assert (report.heads[0].anchor_sequence, report.heads[0].sequence) == (4, 6)
        assert kit.audit.purge(engine, older_than=timedelta(days=100)).rows == 0

    def test_one_organization_and_bad_arguments(self, sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
        """``organization_id`` limits the purge; a non-positive age or batch size is invalid input."""
        insert_rows(sqlite_engine, 6)
        kit = audit_kit(clock)
        assert kit.audit.purge(sqlite_engine, older_than=timedelta(days=1), organization_id=ORG).rows == 3
        assert {event.organization_id for event in stored(sqlite_engine)} == {OTHER}
        for arguments in ({"older_than": timedelta(0)}, {"older_than": timedelta(days=1), "batch_size": 0}):
            with pytest.raises(InvalidInputError):
                kit.audit.purge(sqlite_engine, **arguments)


class TestRedaction:
    def test_a_users_context_and_an_address_go_and_the_chain_still_verifies(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Redacting a user clears the IP and user agent of the rows they acted in (others keep theirs);
        redacting an address clears it from invitation rows; each is audited; the chain verifies."""
        kit = audit_kit(clock, chain=True)
        with kit.transaction(engine) as s, audit_context(CONTEXT):
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
            kit.invitations.create_email_invitation(s, ORG, "eve@example.com", actor="alice")
            kit.members.add(s, OTHER, "alice", Role.OWNER, actor=HOST)
            kit.api_keys.issue(s, OTHER, "CI", actor="alice")
        with kit.transaction(engine) as s:
            assert kit.audit.redact(s, user_id="alice").organizations == (ORG, OTHER)
            assert kit.audit.redact(s, email="Eve@Example.com", organization_id=ORG).rows == 1
        events = stored(engine)
        by_type = [(event.type, event.context.ip_address, event.redacted_at is not None) for event in events]
        assert by_type == [
            ("member.added", CONTEXT.ip_address, False),
            ("invitation.created", None, True),
            ("member.added", CONTEXT.ip_address, False),
            ("api_key.issued", None, True),
            ("audit.personal_data_redacted", None, False),
            ("audit.personal_data_redacted", None, False),
            ("audit.personal_data_redacted", None, False),
        ]
        assert events[1].data["email"] is None
        assert events[1].context.request_id == CONTEXT.request_id
        assert events[6].data == {
            "subject": "email",
            "subject_user_id": None,
            "fields": ["data.email"],
            "rows": 1,
        }
        with Session(engine) as s:
            assert kit.audit.verify(s).ok
        with engine.begin() as connection:  # putting an erased address back is tampering
            connection.execute(
                audit_events.update()
                .where(audit_events.c.id == events[3].id)
                .values(ip_address="198.51.100.1")
            )
        with Session(engine) as s:
            (link,) = kit.audit.verify(s).broken
        assert (link.organization_id, link.event_id, link.reason) == (
            OTHER,
            events[3].id,
            "a personal field was changed: ip_address does not match its seal",
        )

    def test_neither_or_both_subjects_are_refused(self, sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
        """Redaction names one person: a user id or an address."""
        kit = audit_kit(clock)
        with Session(sqlite_engine) as s:
            for arguments in ({}, {"user_id": "a", "email": "a@example.com"}):
                with pytest.raises(InvalidInputError):
                    kit.audit.redact(s, **arguments)


def tamper(connection: sa.Connection, organization_id: str, sequence: int, **values: Any) -> str:
    """Change (or, with no values, delete) the row at ``sequence`` of the organization's chain."""
    where = (audit_events.c.organization_id == organization_id, audit_events.c.chain_seq == sequence)
    event_id = str(connection.execute(sa.select(audit_events.c.id).where(*where)).scalar_one())
    statement = audit_events.update().values(**values) if values else audit_events.delete()
    connection.execute(statement.where(*where))
    return event_id


class TestTheChain:
    def test_each_kind_of_tampering_is_found_at_its_first_broken_link(
        self, engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """A changed row, a removed one, the newest removed, a row moved elsewhere: each chain reports the
        first link that breaks; the untouched chain verifies."""
        kit = audit_kit(clock, chain=True)
        organizations = ["changed", "middle_gone", "newest_gone", "moved", "intact"]
        with kit.transaction(engine) as s:
            for organization in organizations:
                for user in ("a", "b", "c"):
                    kit.members.add(s, organization, user, Role.OWNER, actor=HOST)
        with engine.begin() as connection:
            changed = tamper(connection, "changed", 2, data={"user_id": "b", "role": "MEMBER"})
            tamper(connection, "middle_gone", 2)
            tamper(connection, "newest_gone", 3)
            moved = tamper(connection, "moved", 2, occurred_at=clock() - timedelta(days=1))
        with Session(engine) as s:
            report = kit.audit.verify(s)
            assert kit.audit.verify(s, organization_id="intact").ok
        assert (report.organizations, report.ok) == (5, False)
        assert [
            (link.organization_id, link.sequence, link.event_id, link.reason) for link in report.broken
        ] == [
            ("changed", 2, changed, "the row's content was changed after it was written"),
            ("middle_gone", 2, None, "position 2 is missing (the next row is at 3)"),
            ("moved", 2, moved, "the row's content was changed after it was written"),
            ("newest_gone", 3, None, "the chain ends at position 2 but its head says 3"),
        ]
        with pytest.raises(AuditChainBrokenError) as error:
            report.raise_if_broken()
        assert error.value.to_dict()["organization_id"] == "changed"

    def test_chained_rows_without_a_head_are_reported(
        self, sqlite_engine: sa.Engine, clock: FrozenClock
    ) -> None:
        """Deleting an organization's chain head leaves its rows unverifiable: reported, not skipped."""
        kit = audit_kit(clock, chain=True)
        with kit.transaction(sqlite_engine) as s:
            kit.members.add(s, ORG, "alice", Role.OWNER, actor=HOST)
        with sqlite_engine.begin() as connection:
            connection.execute(audit_chain_heads.delete())
        with Session(sqlite_engine) as s:
            (link,) = kit.audit.verify(s).broken
        assert (link.organization_id, link.reason) == (ORG, "chained rows but no chain head")


def test_row_ids_are_uuid7_in_the_order_made() -> None:
    """Row ids are version-7 UUIDs whose text sorts in creation order, even within one millisecond."""
    made = [time_ordered_id() for _ in range(5000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert {uuid.UUID(value).version for value in made} == {7}


def test_every_event_type_names_a_target() -> None:
    """Each event type carries at least one field the audit log turns into a target."""
    from tenantkit.audit._model import TARGET_FIELDS

    untargeted = [
        name
        for name, cls in EVENT_TYPES.items()
        if not set(cls.payload_fields) & set(TARGET_FIELDS) and not hasattr(cls, "audit_targets")
    ]
    assert untargeted == []


def test_no_secret_reaches_the_log(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """After issuing, rotating, inviting, resending and accepting (keys under every hasher), a dump of every
    column of every audit row holds no key, token, accept URL or digest."""
    from tests.test_event_payloads import run_every_change, stored_digests

    shown = run_every_change(sqlite_engine, clock, EventDispatcher())
    with sqlite_engine.connect() as connection:
        dump = json.dumps([list(row) for row in connection.execute(sa.select(audit_events))], default=str)
    digests = stored_digests(sqlite_engine)
    assert len(shown) == 23  # 19, and the two webhook secrets with and without their prefix
    assert len(digests) >= 6
    assert json.loads(dump), "the session wrote audit rows"
    assert sorted(secret for secret in shown | digests if secret in dump) == []


@pytest.mark.anyio
async def test_an_async_session_writes_the_row_with_the_context(async_engine: AsyncEngine) -> None:
    """Through ``AsyncSession.run_sync`` the row is written in the same transaction, and the context set
    around the ``await`` reaches it (the context variable crosses into the greenlet)."""
    kit = TenantKit()
    async with AsyncSession(async_engine) as session:
        with audit_context(CONTEXT):
            await session.run_sync(lambda sync: kit.members.add(sync, ORG, "alice", Role.OWNER, actor=HOST))
        await session.commit()
    async with AsyncSession(async_engine) as session:
        page = await session.run_sync(lambda sync: kit.audit.list_events(sync, ORG, actor=HOST))
    assert [(event.type, event.context) for event in page.items] == [("member.added", CONTEXT)]
