"""Actors are typed by kind, and a service call acts only as the kinds it can authorize today."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

import tenantkit
from tenantkit import HOST, Actor, ActorKind, ApiKeyService, InvalidInputError, MembershipService, Role
from tenantkit.events import MemberAdded
from tenantkit.testing import EventRecorder, FrozenClock

ORG = "org_1"
ids = st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=40)


class TestKinds:
    @given(ids)
    def test_each_kind_carries_its_id(self, ident: str) -> None:
        """Every factory gives its kind and id; only a user actor has a ``user_id``."""
        made = {
            ActorKind.USER: Actor.user(ident),
            ActorKind.API_KEY: Actor.api_key(ident),
            ActorKind.IDENTITY_PROVIDER: Actor.identity_provider(ident),
            ActorKind.SYSTEM: Actor.system(ident),
        }
        for kind, actor in made.items():
            assert (actor.kind, actor.id) == (kind, ident)
            assert actor.to_payload() == {"kind": kind.value, "id": ident}
            assert actor.user_id == (ident if kind is ActorKind.USER else None)
            assert not actor.is_host

    def test_host_and_system(self) -> None:
        """The host has no id and is the only host; the system may act unnamed."""
        assert (HOST.kind, HOST.id, HOST.user_id, HOST.is_host, str(HOST)) == (
            ActorKind.HOST,
            None,
            None,
            True,
            "host",
        )
        assert Actor("host") == HOST  # type: ignore[arg-type]  # the kind is read from its name too
        assert str(Actor.system()) == "system"
        assert str(Actor.api_key("key_1")) == "api_key:key_1"
        assert str(Actor.user("alice")) == "alice"

    @pytest.mark.parametrize(
        ("kind", "ident"),
        [("user", None), ("api_key", ""), ("identity_provider", " x"), ("host", "h"), ("robot", "r")],
    )
    def test_malformed_actors_are_refused(self, kind: str, ident: str | None) -> None:
        """A kind that needs an id lacks one, the host is given one, or the kind is unknown."""
        with pytest.raises(InvalidInputError) as raised:
            Actor(kind, ident)  # type: ignore[arg-type]
        assert raised.value.field == "actor"


@pytest.mark.parametrize(
    "actor",
    [Actor.api_key("key_1"), Actor.identity_provider("conn_1"), Actor.system("job")],
    ids=str,
)
def test_service_calls_refuse_kinds_they_cannot_authorize(
    sqlite_engine: sa.Engine, clock: FrozenClock, actor: Actor
) -> None:
    """No actor but a user or the host passes a service's checks yet, and the refusal changes nothing."""
    membership = MembershipService(clock=clock)
    keys = ApiKeyService(membership=membership, clock=clock)
    recorder = EventRecorder()
    membership.events.subscribe(recorder)
    with tenantkit.transaction(sqlite_engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
    recorder.clear()
    with tenantkit.transaction(sqlite_engine) as session:
        with pytest.raises(InvalidInputError, match="acts as a user or the host"):
            membership.add(session, ORG, "mallory", Role.OWNER, actor=actor)
        with pytest.raises(InvalidInputError, match="acts as a user or the host"):
            keys.issue(session, ORG, "ci", actor=actor)
        assert membership.get_role(session, ORG, "mallory") is None
    assert recorder.events == []


def test_events_carry_the_typed_actor(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """An event names its performer by kind: the host as ``host``, a user by id."""
    membership = MembershipService(clock=clock)
    recorder = EventRecorder()
    membership.events.subscribe(recorder)
    with tenantkit.transaction(sqlite_engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        membership.add(session, ORG, "bob", Role.MEMBER, actor="alice")
    host_added, user_added = recorder.of_type(MemberAdded)
    assert (host_added.actor, user_added.actor) == (HOST, Actor.user("alice"))
    assert host_added.to_payload()["actor"] == {"kind": "host", "id": None}
    assert user_added.to_payload()["actor"] == {"kind": "user", "id": "alice"}
