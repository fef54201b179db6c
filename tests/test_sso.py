"""SSO connections and policy: the login policy table, JIT that never changes an existing role, home-realm
discovery of one shape and cost, and the one enforcement of an organization's ``require_sso`` setting."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

import tenantkit
from tenantkit import HOST, Actor, Authentication, Role, TenantKit
from tenantkit.errors import (
    InvalidInputError,
    RoleEscalationError,
    SsoLoginRefusedError,
    SsoRequiredError,
)
from tenantkit.events import MemberAdded, SsoConnectionCreated
from tenantkit.testing import FrozenClock
from tests.databases import delete_all_rows

ORG, OTHER = "org_1", "org_2"


@dataclass
class World:
    """A kit with org_1 (example.com and bücher.example verified, pending.example pending; an enabled JIT
    connection and a disabled one) and org_2 (other.example verified; one connection)."""

    kit: TenantKit
    engine: sa.Engine
    conn: str
    disabled: str
    other: str


def build(engine: sa.Engine, clock: FrozenClock, org: str = ORG, other_org: str = OTHER) -> World:
    kit = TenantKit(clock=clock)
    with kit.transaction(engine) as s:
        kit.members.add(s, org, "alice", Role.OWNER, actor=HOST)
        kit.members.add(s, other_org, "olga", Role.OWNER, actor=HOST)
        for owner, domain in ((org, "example.com"), (org, "Bücher.example"), (other_org, "other.example")):
            kit.domains.add(s, owner, domain, actor=HOST, strategy="manual")
            kit.domains.confirm(s, owner, domain, actor=HOST)
        kit.domains.add(s, org, "pending.example", actor=HOST)
        sso = kit.sso
        conn = sso.create_connection(
            s,
            org,
            provider="polis",
            provider_connection_id=f"{org}-okta",
            actor="alice",
            jit=True,
            protocol="oidc",
            name="Okta",
        ).id
        disabled = sso.create_connection(
            s,
            org,
            provider="workos",
            provider_connection_id=f"{org}-w",
            actor="alice",
            enabled=False,
            jit=True,
            protocol="oidc",
            name="Okta",
        ).id
        other = sso.create_connection(
            s,
            other_org,
            provider="polis",
            provider_connection_id=f"{other_org}-okta",
            actor="olga",
            jit=True,
            protocol="oidc",
            name="Okta",
        ).id
    return World(kit, engine, conn, disabled, other)


@pytest.fixture
def world(engine: sa.Engine, clock: FrozenClock) -> World:
    """The two organizations of :class:`World` on each database."""
    return build(engine, clock)


CYRILLIC_A = "\u0430"
# (connection, email, email_verified, refusal reason or None when accepted)
POLICY = [
    ("conn", "nora@example.com", True, None),
    ("conn", "Nora@EXAMPLE.COM", True, None),
    ("conn", "nora@bücher.example", True, None),
    ("conn", "nora@BÜCHER.example", True, None),
    ("conn", "nora@xn--bcher-kva.example", True, None),
    ("other", "nora@other.example", True, None),
    ("conn", "nora@example.com", False, "email_unverified"),
    ("conn", "nora@EXAMPLE.com", False, "email_unverified"),
    ("disabled", "nora@example.com", True, "connection_disabled"),
    ("conn", "nora@other.example", True, "domain_not_verified"),
    ("other", "nora@example.com", True, "domain_not_verified"),
    ("conn", "nora@pending.example", True, "domain_not_verified"),
    ("conn", "nora@eu.example.com", True, "domain_not_verified"),
    ("conn", "nora@examp1e.com", True, "domain_not_verified"),
    ("conn", f"nora@ex{CYRILLIC_A}mple.com", True, "domain_not_verified"),
    ("conn", "nora@example.com.evil.example", True, "domain_not_verified"),
    ("conn", "nora@evilexample.com", True, "domain_not_verified"),
    ("conn", "nora@bucher.example", True, "domain_not_verified"),
    ("conn", "nora@example.co", True, "domain_not_verified"),
    ("conn", "nora@gmail.com", True, "domain_not_verified"),
    ("conn", "nora@ExAmPlE.cOm", True, None),
]


@pytest.mark.parametrize(("which", "email", "email_verified", "reason"), POLICY)
def test_the_login_policy(
    world: World, which: str, email: str, email_verified: bool, reason: str | None
) -> None:
    """Only a verified email of a verified domain of the connection's own organization, through an enabled
    connection, is accepted: lookalikes, homographs, subdomains, other organizations' domains are not."""
    connection = getattr(world, which)
    with world.kit.transaction(world.engine) as s:
        if reason is None:
            login = world.kit.sso.check_sso_login(
                s, connection, email=email, email_verified=email_verified, user_id="nora"
            )
            assert login.created
            assert login.member.role is Role.MEMBER
            assert login.actor.authenticated_by == Authentication.sso(connection)
        else:
            with pytest.raises(SsoLoginRefusedError) as refused:
                world.kit.sso.check_sso_login(
                    s, connection, email=email, email_verified=email_verified, user_id="nora"
                )
            assert refused.value.reason == reason
            assert (
                world.kit.members.get_role(s, world.kit.sso._row(s, None, connection).organization_id, "nora")
                is None
            )


def test_policy_table_size() -> None:
    """The table holds at least 20 cases, refusals and acceptances both."""
    assert len(POLICY) >= 20
    assert {reason is None for *_, reason in POLICY} == {True, False}


def test_a_subdomain_is_covered_only_when_the_host_allows(
    sqlite_engine: sa.Engine, clock: FrozenClock
) -> None:
    """With ``cover_subdomains`` a verified example.com accepts eu.example.com; without, it does not."""
    world = build(sqlite_engine, clock)
    world.kit.domains.cover_subdomains = True
    with world.kit.transaction(sqlite_engine) as s:
        login = world.kit.sso.check_sso_login(
            s, world.conn, email="nora@eu.example.com", email_verified=True, user_id="nora"
        )
    assert login.created


def test_without_jit_a_non_member_is_refused(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """JIT off: a verified email of a verified domain that is not a member is refused, not added."""
    world = build(sqlite_engine, clock)
    with world.kit.transaction(sqlite_engine) as s:
        world.kit.sso.update_connection(s, ORG, world.conn, actor="alice", jit=False)
        with pytest.raises(SsoLoginRefusedError) as refused:
            world.kit.sso.check_sso_login(
                s, world.conn, email="n@example.com", email_verified=True, user_id="n"
            )
    assert refused.value.reason == "not_a_member"


def test_connection_policy_bounds(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """JIT never makes an OWNER; an ADMIN may not set a default role above its own grant; events recorded."""
    world = build(sqlite_engine, clock)
    created: list[SsoConnectionCreated] = []
    world.kit.subscribe(created.append, SsoConnectionCreated)
    with world.kit.transaction(sqlite_engine) as s:
        world.kit.members.add(s, ORG, "adam", Role.ADMIN, actor="alice")
        with pytest.raises(InvalidInputError):
            world.kit.sso.create_connection(
                s,
                ORG,
                provider="clerk",
                protocol="oidc",
                provider_connection_id="c1",
                name="C",
                actor="alice",
                default_role=Role.OWNER,
            )
        with pytest.raises(InvalidInputError):
            world.kit.sso.create_connection(
                s,
                ORG,
                provider="okta",  # type: ignore[arg-type]
                protocol="oidc",
                provider_connection_id="c1",
                name="C",
                actor="alice",
            )
        world.kit.sso.create_connection(
            s,
            ORG,
            provider="clerk",
            protocol="oidc",
            provider_connection_id="c2",
            name="C",
            actor="adam",
            default_role=Role.ADMIN,
        )
    assert [event.default_role for event in created] == ["ADMIN"]


ROLES = st.sampled_from([Role.OWNER, Role.ADMIN, Role.MEMBER])


@settings(max_examples=15)
@given(
    start=ROLES,
    logins=st.lists(
        st.tuples(
            st.sampled_from(["conn", "other_conn"]), st.sampled_from([Role.ADMIN, Role.MEMBER]), st.booleans()
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_a_login_never_lowers_or_raises_an_existing_role(
    engine: sa.Engine, clock: FrozenClock, start: Role, logins: list[tuple[str, Role, bool]]
) -> None:
    """Whatever the connections' default roles and JIT flags between logins, a member keeps their role."""
    delete_all_rows(engine)  # each example starts from empty tables
    suffix = uuid.uuid4().hex[:8]
    org = f"org_{suffix}"
    world = build(engine, clock, org, f"other_{suffix}")
    kit = world.kit
    with kit.transaction(engine) as s:
        second = kit.sso.create_connection(
            s,
            org,
            provider="auth0",
            protocol="saml",
            provider_connection_id=f"{org}-a0",
            name="A0",
            actor="alice",
            jit=True,
        ).id
        kit.members.add(s, org, "mel", start, actor=HOST)
    by_name = {"conn": world.conn, "other_conn": second}
    for name, default_role, jit in logins:
        with kit.transaction(engine) as s:
            kit.sso.update_connection(s, org, by_name[name], actor=HOST, default_role=default_role, jit=jit)
            login = kit.sso.check_sso_login(
                s, by_name[name], email="mel@example.com", email_verified=True, user_id="mel"
            )
            assert not login.created
            assert kit.members.get(s, org, "mel", actor=HOST).role is start


def test_jit_is_the_identity_providers_act(sqlite_engine: sa.Engine, clock: FrozenClock) -> None:
    """A JIT membership is recorded as MemberAdded by the connection's identity-provider actor."""
    world = build(sqlite_engine, clock)
    added: list[MemberAdded] = []
    world.kit.subscribe(added.append, MemberAdded)
    with world.kit.transaction(sqlite_engine) as s:
        world.kit.sso.check_sso_login(s, world.conn, email="n@example.com", email_verified=True, user_id="n")
    assert [(event.user_id, event.actor) for event in added] == [("n", Actor.identity_provider(world.conn))]


def test_require_sso_refuses_a_non_sso_actor_in_that_organization_only(world: World) -> None:
    """With require_sso on in org_1, an actor that signed in by password (or through another organization's
    or a disabled connection) is refused there, on reads and changes; through org_1's connection it acts;
    an actor that states nothing keeps working (backward compatible); org_2 is unaffected."""
    kit = world.kit
    password = Actor.user("alice", authenticated_by=Authentication.password())
    with kit.transaction(world.engine) as s:
        kit.organizations.update_settings(s, ORG, {"require_sso": True}, expected_version=0, actor=HOST)
        kit.members.add(s, OTHER, "alice", Role.OWNER, actor=HOST)
    with kit.transaction(world.engine) as s:
        for wrong in (
            password,
            Actor.user("alice", authenticated_by=Authentication.sso(world.other)),
            Actor.user("alice", authenticated_by=Authentication.sso(world.disabled)),
        ):
            with pytest.raises(SsoRequiredError):
                kit.members.list_members(s, ORG, actor=wrong)
            with pytest.raises(SsoRequiredError):
                kit.members.add(s, ORG, "bob", actor=wrong)
            with pytest.raises(SsoRequiredError):  # a change decided on locked rows asks it too
                kit.members.change_role(s, ORG, "alice", Role.OWNER, actor=wrong)
        through_sso = Actor.user("alice", authenticated_by=Authentication.sso(world.conn))
        kit.members.add(s, ORG, "bob", actor=through_sso)
        kit.members.add(s, ORG, "carl", actor="alice")
        kit.members.add(s, OTHER, "bob", actor=password)


def test_sso_required_for_the_login_page(world: World) -> None:
    """An enforcing connection requires SSO for its verified domains only; the setting for every email."""
    kit = world.kit
    with kit.transaction(world.engine) as s:
        assert not kit.sso.sso_required(s, ORG, "n@example.com")
        kit.sso.update_connection(s, ORG, world.conn, actor="alice", enforce=True)
        assert kit.sso.sso_required(s, ORG, "n@example.com")
        assert not kit.sso.sso_required(s, ORG, "n@elsewhere.example")
        kit.organizations.update_settings(s, OTHER, {"require_sso": True}, expected_version=0, actor=HOST)
        assert kit.sso.sso_required(s, OTHER, "n@elsewhere.example")


def test_discovery_answers_every_email_in_one_shape_and_cost(world: World) -> None:
    """Known and unknown domains get the same answer type after the same number of statements."""
    kit = world.kit
    counts: list[int] = []
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append("x")

    sa.event.listen(world.engine, "before_cursor_execute", count)
    try:
        answers = []
        for email in ("n@example.com", "n@unknown.example", "n@pending.example", "n@other.example"):
            with world.engine.connect() as connection:
                statements.clear()
                answers.append(kit.sso.discover(connection, email))
                counts.append(len(statements))
    finally:
        sa.event.remove(world.engine, "before_cursor_execute", count)
    assert len(set(counts)) == 1, counts
    assert [answer.sso for answer in answers] == ["available", "none", "none", "available"]
    assert answers[0].connection_id == world.conn
    assert type(answers[0]) is type(answers[1])
    with world.engine.connect() as connection, pytest.raises(InvalidInputError):
        kit.sso.discover(connection, "not an email")


def test_an_admin_cannot_grant_past_its_rank_through_jit(
    sqlite_engine: sa.Engine, clock: FrozenClock
) -> None:
    """A MEMBER holding no sso:manage may not create connections at all."""
    world = build(sqlite_engine, clock)
    with world.kit.transaction(sqlite_engine) as s:
        world.kit.members.add(s, ORG, "mia", actor="alice")
        with pytest.raises((RoleEscalationError, tenantkit.errors.PermissionDeniedError)):
            world.kit.sso.create_connection(
                s, ORG, provider="custom", protocol="saml", provider_connection_id="x", name="X", actor="mia"
            )
