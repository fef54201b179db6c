"""Every event type has a stable dotted name and one versioned, allow-listed payload that holds no secret."""

from __future__ import annotations

import gc
import json
import types
import typing
from datetime import datetime, timezone
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, Actor, ApiKeyService, InvitationService, MembershipService, Role, RoleService
from tenantkit.audit import AuditService
from tenantkit.departments import DepartmentService
from tenantkit.events import EVENT_TYPES, Event, EventDispatcher, EventPayload, MemberRoleChanged
from tenantkit.members import make_attributes
from tenantkit.organizations import OrganizationService
from tenantkit.tables import api_keys, invitations
from tenantkit.testing import FrozenClock
from tests.domain_changes import every_domain_and_sso_change

ORG = "org_1"
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
PAYLOAD_KEYS = {"type", "version", "organization_id", "occurred_at", "actor", "data"}


class TestNames:
    def test_every_event_type_has_a_unique_dotted_name(self) -> None:
        """Each event class names itself ``feature.change``, and the registry maps every name to its class."""
        classes = set(Event.__subclasses__())
        assert {cls.event_type for cls in classes} == set(EVENT_TYPES)
        assert all(EVENT_TYPES[cls.event_type] is cls for cls in classes)
        assert all(cls.version == 1 for cls in classes)
        assert {"member.added", "member.role_changed", "api_key.issued", "api_key.revoked"} <= set(
            EVENT_TYPES
        )
        assert "invitation.accepted" in EVENT_TYPES

    def test_the_payload_schema(self) -> None:
        """A payload is the envelope plus the type's allow-listed fields, JSON-ready, roles as names."""
        event = MemberRoleChanged(
            organization_id=ORG,
            actor=Actor.user("alice"),
            occurred_at=NOW,
            user_id="mia",
            old_role=Role.MEMBER,
            new_role="ADMIN",
        )
        assert event.to_payload() == {
            "type": "member.role_changed",
            "version": 1,
            "organization_id": ORG,
            "occurred_at": "2030-01-01T00:00:00Z",
            "actor": {"kind": "user", "id": "alice"},
            "data": {
                "user_id": "mia",
                "old_role": "MEMBER",
                "new_role": "ADMIN",
                "old_custom_role": None,
                "new_custom_role": None,
            },
        }
        assert type(event.old_role) is str


SECRETS = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=24, max_size=40)
"""Secrets longer than any other generated text, so finding one in a payload can only be a leak."""
SIMPLE: dict[object, st.SearchStrategy[Any]] = {
    str: st.text(min_size=1, max_size=20),
    bool: st.booleans(),
    int: st.integers(min_value=0, max_value=10**6),
    datetime: st.datetimes(timezones=st.just(timezone.utc)),
    tuple[str, ...]: st.lists(st.text(min_size=1, max_size=20), max_size=3).map(tuple),
    dict[str, int]: st.dictionaries(st.text(min_size=1, max_size=20), st.integers(min_value=0), max_size=3),
    dict[str, str | bool]: st.dictionaries(
        st.text(min_size=1, max_size=20), st.one_of(st.text(max_size=20), st.booleans()), max_size=3
    ),
    SecretStr: SECRETS.map(SecretStr),
}
ACTORS = st.one_of(
    st.just(HOST),
    st.builds(Actor.user, st.from_regex(r"[a-z]{1,12}", fullmatch=True)),
    st.builds(Actor.api_key, st.uuids().map(str)),
)


def values_for(annotation: object) -> st.SearchStrategy[Any]:
    """Values of a field's type: its simple strategy, or any of its union's members."""
    if annotation in SIMPLE:
        return SIMPLE[annotation]
    assert isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    members = [
        st.none() if member is type(None) else values_for(member) for member in typing.get_args(annotation)
    ]
    return st.one_of(members)


@st.composite
def events(draw: st.DrawFn) -> Event:
    """Any event of any type, with any field values."""
    cls = draw(st.sampled_from(sorted(EVENT_TYPES.values(), key=lambda cls: cls.event_type)))
    fields = {
        name: draw(values_for(field.annotation))
        for name, field in cls.model_fields.items()
        if name not in {"organization_id", "actor", "occurred_at"}
    }
    return cls(organization_id=ORG, actor=draw(ACTORS), occurred_at=NOW, **fields)


@given(events())
def test_any_payload_is_json_of_its_allow_list_and_withholds_every_secret(event: Event) -> None:
    """Whatever an event holds, its payload is the envelope plus exactly its allowed fields, as JSON."""
    payload = event.to_payload()
    assert set(payload) == PAYLOAD_KEYS
    assert set(payload["data"]) == set(event.payload_fields)
    assert payload["actor"] == {"kind": event.actor.kind.value, "id": event.actor.id}
    dumped = json.dumps(payload)
    assert json.loads(dumped) == payload
    for name in event.withheld_fields:
        secret = getattr(event, name)
        if isinstance(secret, SecretStr):
            assert secret.get_secret_value() not in dumped


def define_event(**namespace: object) -> None:
    """Define an event subclass from ``namespace`` (expected to be refused), then forget it."""
    try:
        type("Probe", (Event,), {"__module__": __name__, **namespace})
    finally:
        gc.collect()


class TestDeclarations:
    """A mistaken event class is refused when it is defined, not when its payload first leaks."""

    @pytest.fixture(autouse=True)
    def _registry_unchanged(self) -> object:
        before, names = set(Event.__subclasses__()), dict(EVENT_TYPES)
        yield
        gc.collect()
        assert set(Event.__subclasses__()) == before
        assert dict(EVENT_TYPES) == names

    def test_secret_field_cannot_be_allowed(self) -> None:
        """A ``SecretStr`` field in the allow-list is refused."""
        with pytest.raises(TypeError, match="secret"):
            define_event(
                __annotations__={"event_type": ClassVar[str], "token": SecretStr | None},
                event_type="probe.secret",
                payload_fields=("token",),
            )

    def test_every_field_is_sorted(self) -> None:
        """A field neither allowed nor withheld is refused, so a new field is a decision, not a leak."""
        with pytest.raises(TypeError, match="payload_fields or withheld_fields"):
            define_event(
                __annotations__={"event_type": ClassVar[str], "note": str},
                event_type="probe.unsorted",
            )

    @pytest.mark.parametrize("name", ["member.added", "Member.Added", "member", "member-added.x"])
    def test_names_are_dotted_and_unique(self, name: str) -> None:
        """A taken name, or one that is not ``lower_case.dotted``, is refused."""
        with pytest.raises(TypeError, match=r"event_type|already"):
            define_event(__annotations__={"event_type": ClassVar[str]}, event_type=name)


def run_every_change(engine: sa.Engine, clock: FrozenClock, events: EventDispatcher) -> set[str]:
    """Call every mutating service method once (keys under every hasher); return every secret shown."""
    membership = MembershipService(clock=clock, events=events)
    peppers = {"v1": b"p" * 32}
    services = [
        ApiKeyService(membership=membership, clock=clock),
        ApiKeyService(membership=membership, clock=clock, peppers=peppers),
        ApiKeyService(membership=membership, clock=clock, hasher="argon2id"),
    ]
    invites = InvitationService(
        membership=membership,
        secret_keys=["k" * 32],
        clock=clock,
        accept_url_template="https://app.example.com/invite?token={token}",
    )
    # The audit log writes every event above; erasing an address from it records one more.
    audit = AuditService(membership=membership, clock=clock)
    shown: set[str] = set()
    with tenantkit.transaction(engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        membership.add(session, ORG, "mia", Role.MEMBER, actor="alice")
        membership.change_role(session, ORG, "mia", Role.ADMIN, actor="alice")
        membership.transfer_ownership(session, ORG, "mia", actor="alice")
        membership.remove(session, ORG, "alice", actor="mia")
        roles = RoleService(membership)
        roles.create(session, ORG, "billing", name="Billing", rank=Role.MEMBER, actor="mia")
        roles.update(session, ORG, "billing", description="Invoices", actor="mia")
        roles.delete(session, ORG, "billing", actor="mia")
        for keys in services:
            issued = keys.issue(session, ORG, "CI", actor="mia", scopes=["reports:read"])
            keys.set_credits(session, ORG, issued.id, 5, actor="mia")
            rotated = keys.rotate(session, ORG, issued.id, actor="mia")
            for new in (issued, rotated):
                # The key, and its secret part without the non-secret start that payloads carry.
                shown |= {new.reveal(), new.reveal()[len(new.start) :]}
            keys.revoke(session, ORG, rotated.id, actor="mia")
            keys.delete(session, ORG, issued.id, actor="mia")
        email = invites.create_email_invitation(session, ORG, "eve@example.com", actor="mia")
        resent = invites.resend(session, ORG, email.invitation.id, actor="mia")
        link = invites.create_link_invitation(session, ORG, ["example.com"], actor="mia")
        for created in (email, resent, link):
            assert created.accept_url is not None
            shown |= {created.token.get_secret_value(), created.accept_url.get_secret_value()}
        invites.mark_sent(session, ORG, link.invitation.id, actor="mia")
        invites.revoke(session, ORG, resent.invitation.id, actor="mia")
        invites.accept(
            session,
            link.token.get_secret_value(),
            user_id="nora",
            email="nora@example.com",
            email_verified=True,
        )
        # Suspension, verified attributes and departments (whose attribute values stay out of payloads).
        membership.record_attributes(
            session,
            ORG,
            "nora",
            make_attributes({"npi": "1234567893"}, verified_by="nppes", verified_at=clock()),
            actor="mia",
        )
        membership.suspend(session, ORG, "nora", actor="mia", reason="licence lapsed")
        membership.resume(session, ORG, "nora", actor="mia")
        departments = DepartmentService(membership=membership)
        cardiology = departments.create(session, ORG, "Cardiology", actor="mia")
        departments.update(session, ORG, cardiology.id, actor="mia", name="Cardiac care")
        departments.add_member(session, ORG, cardiology.id, "nora", actor="mia")
        departments.remove_member(session, ORG, cardiology.id, "nora", actor="mia")
        departments.delete(session, ORG, cardiology.id, actor="mia")
        audit.redact(session, email="eve@example.com")
        organizations = OrganizationService(membership=membership, audit=audit, clock=clock)
        organizations.update_settings(session, ORG, {"require_sso": True}, expected_version=0, actor="mia")
        shown.add(every_domain_and_sso_change(session, membership, ORG, "mia"))
        organizations.erase_user(session, "nora")
        membership.add(session, "org_gone", "gil", Role.OWNER, actor=HOST)
        organizations.delete_organization(session, "org_gone", actor="gil")
        shown |= run_every_webhook_change(session, membership, clock)
    return shown


def run_every_webhook_change(session: Session, membership: MembershipService, clock: FrozenClock) -> set[str]:
    """Every webhook management change once; return the signing secrets shown (and their stored forms)."""
    from tenantkit import WebhookSettings
    from tenantkit.webhooks import WebhookService

    hooks = WebhookService(
        membership=membership,
        settings=WebhookSettings(secret_keys=["w" * 32], allow_networks=["127.0.0.1/32"]),
        clock=clock,
    )
    try:
        created = hooks.create_endpoint(session, ORG, "https://127.0.0.1/hook", ["member.added"], actor="mia")
        endpoint = created.endpoint.id
        hooks.update_endpoint(session, ORG, endpoint, description="CRM", actor="mia")
        hooks.disable_endpoint(session, ORG, endpoint, actor="mia")
        hooks.enable_endpoint(session, ORG, endpoint, actor="mia")
        rotated = hooks.rotate_secret(session, ORG, endpoint, actor="mia")
        test = hooks.send_test(session, ORG, endpoint, actor="mia")
        hooks.resend(session, ORG, test.message_id, actor="mia")
        hooks.recover(session, ORG, endpoint, since=clock(), actor="mia")
        hooks.delete_endpoint(session, ORG, endpoint, actor="mia")
    finally:
        hooks.close()
    secrets = {created.reveal(), rotated.reveal()}
    return secrets | {secret.removeprefix("whsec_") for secret in secrets}


def stored_digests(engine: sa.Engine) -> set[str]:
    """Every key and token digest in the database, whole and without its algorithm tag."""
    with Session(engine) as session:
        stored = set(session.scalars(sa.select(api_keys.c.hashed_key)))
        stored |= set(session.scalars(sa.select(invitations.c.token)))
    return stored | {digest.replace(":", "$").rsplit("$", 1)[-1] for digest in stored}


def test_no_payload_holds_a_key_token_digest_or_accept_url(
    sqlite_engine: sa.Engine, clock: FrozenClock
) -> None:
    """After issuing, rotating, inviting and accepting, no payload (recorded or delivered) holds a secret."""
    events = EventDispatcher()
    recorded: list[EventPayload] = []
    delivered: list[EventPayload] = []
    events.on_record(lambda _session, event: recorded.append(event.to_payload()))
    events.subscribe(lambda event: delivered.append(event.to_payload()))
    shown = run_every_change(sqlite_engine, clock, events)
    assert recorded == delivered
    assert {payload["type"] for payload in recorded} == set(EVENT_TYPES)
    for payload in recorded:
        assert set(payload) == PAYLOAD_KEYS
        assert set(payload["data"]) == set(EVENT_TYPES[payload["type"]].payload_fields)
    dumped = json.dumps(recorded)
    digests = stored_digests(sqlite_engine)
    assert len(shown) == 23
    assert len(digests) >= 6
    leaked = sorted(secret for secret in shown | digests if secret in dumped)
    assert leaked == []


def test_every_field_of_every_event_type_has_a_strategy() -> None:
    """The property above can draw every event type: each field's type (or each member of its union) has a
    strategy, checked for every type at once rather than left to the draws to stumble on."""
    for cls in EVENT_TYPES.values():
        for name, field in cls.model_fields.items():
            if name not in {"organization_id", "actor", "occurred_at"}:
                values_for(field.annotation)  # raises for a type without a strategy
