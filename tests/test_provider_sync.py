"""Provider membership sync: Clerk and WorkOS membership events applied as the connection's identity-provider
actor, audited, with a declared role mapping, idempotent on the event id, in order per member, never making
or demoting an OWNER and never removing the last one (the refusal reported), authority per connection."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import WebhookVerificationError

from tenantkit import HOST, Role, TenantKit
from tenantkit.errors import ConfigurationError, InvalidInputError, LastOwnerError
from tenantkit.sso import MembershipSync, ProviderMembershipEvent, RoleAuthority
from tenantkit.tables import sso_member_sync
from tenantkit.testing import FrozenClock
from tenantkit.webhooks import generate_secret, sign
from tests.test_examples import load_example

ORG = "org_1"
ROLES = {"org:admin": "ADMIN", "org:member": "MEMBER", "org:nurse": "nurse"}
T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def set_up(kit: TenantKit, engine: sa.Engine, authority: RoleAuthority = "tenantkit") -> MembershipSync:
    """org_1: alice OWNER, a custom role ``nurse``, and a Clerk connection with ``authority``."""
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.roles.create(session, ORG, "nurse", name="Nurse", rank=Role.MEMBER, actor=HOST)
        connection = kit.sso.create_connection(
            session,
            ORG,
            provider="clerk",
            protocol="oidc",
            provider_connection_id="org_clerk_1",
            name="Clerk",
            role_authority=authority,
            actor=HOST,
        )
    return kit.sso.membership_sync(connection.id, roles=ROLES, provider_organization_id="org_clerk_1")


def event(
    event_id: str, action: str, user: str = "dave", role: str | None = "org:member", minutes: int = 0
) -> ProviderMembershipEvent:
    return ProviderMembershipEvent.model_validate(
        {
            "event_id": event_id,
            "action": action,
            "occurred_at": T0 + timedelta(minutes=minutes),
            "user_id": user,
            "provider_organization_id": "org_clerk_1",
            "provider_role": role,
        }
    )


def apply(
    kit: TenantKit, engine: sa.Engine, sync: MembershipSync, *events: ProviderMembershipEvent
) -> list[Any]:
    results = []
    for one in events:
        with kit.transaction(engine) as session:
            results.append(sync.apply(session, one))
    return results


def role_of(kit: TenantKit, engine: sa.Engine, user: str) -> str | None:
    with kit.transaction(engine) as session:
        member = kit.members.get_role(session, ORG, user)
        if member is None:
            return None
        got = kit.members.get(session, ORG, user, actor=HOST)
        return got.custom_role or got.role.value


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return TenantKit(clock=clock)


def test_created_updated_deleted_as_the_identity_provider_audited(kit: TenantKit, engine: sa.Engine) -> None:
    """With the provider authoritative: created as MEMBER, updated to the custom ``nurse``, deleted; each
    change's audit row names the connection's identity-provider actor."""
    sync = set_up(kit, engine, "provider")
    outcomes = apply(
        kit,
        engine,
        sync,
        event("e1", "created"),
        event("e2", "updated", role="org:nurse", minutes=1),
    )
    assert [result.outcome for result in outcomes] == ["created", "role_changed"]
    assert role_of(kit, engine, "dave") == "nurse"
    (removed,) = apply(kit, engine, sync, event("e3", "deleted", minutes=2))
    assert (removed.outcome, removed.member) == ("removed", None)
    with kit.transaction(engine) as session:
        audited = kit.audit.list_events(
            session, ORG, actor=HOST, event_types=["member.added", "member.role_changed", "member.removed"]
        )
    by_provider = [row.type for row in audited.items if row.actor.kind == "identity_provider"]
    assert by_provider == ["member.removed", "member.role_changed", "member.added"]
    assert {row.actor.id for row in audited.items if row.actor.kind == "identity_provider"} == {
        sync.connection_id
    }


def test_idempotent_on_the_event_id_and_in_order_per_member(kit: TenantKit, engine: sa.Engine) -> None:
    """A redelivered event is a duplicate; an older one (even one never seen) is stale: neither changes a
    thing, and another member's order is its own."""
    sync = set_up(kit, engine, "provider")
    apply(
        kit,
        engine,
        sync,
        event("e1", "created", minutes=0),
        event("e3", "updated", role="org:admin", minutes=5),
    )
    again, older, other = apply(
        kit,
        engine,
        sync,
        event("e3", "updated", role="org:admin", minutes=5),
        event("e2", "updated", role="org:member", minutes=3),
        event("e0", "created", user="erin", minutes=-10),
    )
    assert (again.outcome, older.outcome, other.outcome) == ("duplicate", "stale", "created")
    assert role_of(kit, engine, "dave") == "ADMIN"
    with engine.connect() as connection:
        rows = connection.execute(sa.select(sso_member_sync.c.user_id, sso_member_sync.c.last_event_id)).all()
    assert sorted(rows) == [("dave", "e3"), ("erin", "e0")]


def test_tenantkit_authoritative_applies_the_role_only_on_creation(
    kit: TenantKit, sqlite_engine: sa.Engine
) -> None:
    """By default a provider's later role is not applied, and a member removed locally is not brought back
    by an update (a deletion still applies)."""
    sync = set_up(kit, sqlite_engine)
    created, updated = apply(
        kit, sqlite_engine, sync, event("e1", "created", role="org:admin"), event("e2", "updated", minutes=1)
    )
    assert (created.outcome, updated.outcome, updated.reason) == (
        "created",
        "unchanged",
        "tenantkit_authoritative",
    )
    assert role_of(kit, sqlite_engine, "dave") == "ADMIN"
    with kit.transaction(sqlite_engine) as session:
        kit.members.remove(session, ORG, "dave", actor="alice")
    (back,) = apply(kit, sqlite_engine, sync, event("e3", "updated", minutes=2))
    assert (back.outcome, back.reason) == ("unchanged", "not_a_member")
    assert role_of(kit, sqlite_engine, "dave") is None


def test_an_owner_stays_an_owner_and_the_last_owner_stays(kit: TenantKit, engine: sa.Engine) -> None:
    """The provider may not demote an OWNER, nor delete the last one: refused, reported, nothing changed."""
    sync = set_up(kit, engine, "provider")
    demote, delete = apply(
        kit,
        engine,
        sync,
        event("e1", "updated", user="alice", role="org:member"),
        event("e2", "deleted", user="alice", minutes=1),
    )
    assert (demote.outcome, demote.reason) == ("refused", "owner_kept")
    assert (delete.outcome, delete.reason) == ("refused", "last_owner")
    assert isinstance(delete.refusal, LastOwnerError)
    assert role_of(kit, engine, "alice") == "OWNER"
    (again,) = apply(kit, engine, sync, event("e2", "deleted", user="alice", minutes=1))
    assert again.outcome == "duplicate"


def test_unmapped_roles_and_other_organizations(kit: TenantKit, sqlite_engine: sa.Engine) -> None:
    """A provider role outside the mapping is refused (no member made); an event of another provider
    organization is refused before anything is read; a mapping to OWNER or none at all is refused."""
    sync = set_up(kit, sqlite_engine, "provider")
    (unmapped,) = apply(kit, sqlite_engine, sync, event("e1", "created", role="org:billing"))
    assert (unmapped.outcome, unmapped.reason, unmapped.member) == ("refused", "unmapped_role", None)
    stray = event("e2", "created").model_copy(update={"provider_organization_id": "org_clerk_2"})
    with kit.transaction(sqlite_engine) as session, pytest.raises(InvalidInputError):
        sync.apply(session, stray)
    with pytest.raises(ConfigurationError, match="OWNER"):
        kit.sso.membership_sync(sync.connection_id, roles={"org:admin": "owner"})
    with pytest.raises(ConfigurationError):
        kit.sso.membership_sync(sync.connection_id, roles={})


@settings(max_examples=25, deadline=None)
@given(
    order=st.permutations(range(4)),
    authority=st.sampled_from(["tenantkit", "provider"]),
    redeliver=st.lists(st.integers(0, 3), max_size=3),
)
def test_any_delivery_order_ends_as_the_newest_event_says(
    order: list[int], authority: RoleAuthority, redeliver: list[int], sqlite_engine: sa.Engine
) -> None:
    """However the provider orders and repeats four events of one member, the outcome is the one of the
    events applied in time order, up to the newest delivered first (stale ones are skipped)."""
    from tests.databases import delete_all_rows

    delete_all_rows(sqlite_engine)
    kit = TenantKit()
    sync = set_up(kit, sqlite_engine, authority)
    events = [
        event("e0", "created", role="org:member", minutes=0),
        event("e1", "updated", role="org:admin", minutes=1),
        event("e2", "updated", role="org:nurse", minutes=2),
        event("e3", "deleted", minutes=3),
    ]
    delivered = [events[index] for index in [*order, *redeliver]]
    apply(kit, sqlite_engine, sync, *delivered)
    # Replay the applied ones (each newer than every one before it) against the rules, by hand.
    expected: str | None = None
    newest = -1
    for index in [*order, *redeliver]:
        if index <= newest:
            continue
        newest = index
        one = events[index]
        if one.action == "deleted":
            expected = None
        elif expected is None:
            if one.action == "created" or authority == "provider":
                expected = ROLES[str(one.provider_role)]
        elif authority == "provider":
            expected = ROLES[str(one.provider_role)]
    assert role_of(kit, sqlite_engine, "dave") == expected


def test_the_clerk_example_verifies_and_applies_the_recorded_payloads(sqlite_engine: sa.Engine) -> None:
    """``examples/clerk_sync.py``: the recorded Clerk deliveries, signed as Svix signs them, verify with
    ``standardwebhooks`` and end as Clerk says (created ADMIN, nurse, removed; a late redelivery is stale);
    a tampered body is refused by the verifier before anything is read."""
    example = load_example("clerk_sync")
    kit = TenantKit()
    sync = example.set_up(kit, sqlite_engine)
    now = int(datetime.now(timezone.utc).timestamp())
    results = example.replay(kit, sqlite_engine, sync, now=now)
    assert [result.outcome for result in results] == ["created", "role_changed", "removed", "stale"]
    secret = generate_secret()
    body = json.dumps(json.loads(example.RECORDED.read_text())[0]["body"]).encode()
    headers = {
        "svix-id": "msg_1",
        "svix-timestamp": str(now),
        "svix-signature": sign(secret, "msg_1", now, body),
    }
    with kit.transaction(sqlite_engine) as session, pytest.raises(WebhookVerificationError):
        example.receive(sync, session, secret, headers, body.replace(b"org:admin", b"org:owner"))


def test_workos_events_parse() -> None:
    """A WorkOS ``organization_membership.updated`` event becomes the same neutral event."""
    parsed = ProviderMembershipEvent.from_workos(
        {
            "id": "event_01HXYZ",
            "event": "organization_membership.updated",
            "data": {
                "id": "om_01",
                "user_id": "user_01",
                "organization_id": "org_01",
                "status": "active",
                "role": {"slug": "admin"},
                "updated_at": "2030-01-01T00:00:00.000Z",
            },
            "created_at": "2030-01-01T00:00:01.000Z",
        }
    )
    assert (parsed.event_id, parsed.action, parsed.user_id, parsed.provider_role) == (
        "event_01HXYZ",
        "updated",
        "user_01",
        "admin",
    )
    assert parsed.occurred_at == T0
    with pytest.raises(InvalidInputError):
        ProviderMembershipEvent.from_clerk({"type": "user.created", "data": {}}, event_id="msg_1")
