"""The OIDC example (examples/oidc_sso.py) end to end against a stub issuer serving on 127.0.0.1: discovery,
the authorization code flow with PKCE, state and nonce, the ID token's validation, tenantkit's SSO login
policy, JIT, and ``require_sso`` enforced on the signed-in user."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import tenantkit
from tenantkit import HOST, ActorKind, Role, TenantKit
from tests.oidc_stub import Account, StubIssuer, stub_issuer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "oidc_sso.py"
ORG = "st-marys"
CLIENT_ID = "tenant=example.com&product=app"  # a Polis-style client id: the connection's own id
APP = "https://testserver"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tenantkit_example_oidc_sso", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


oidc_sso = load_example()


@dataclass
class World:
    kit: TenantKit
    engine: sa.Engine
    issuer: StubIssuer
    client: TestClient
    connection_id: str

    def role_of(self, user_id: str) -> Role | None:
        with self.kit.transaction(self.engine) as session:
            return self.kit.members.get_role(session, ORG, user_id)

    def user_id(self, subject: str) -> str:
        return str(oidc_sso.user_id_for(self.issuer.url, subject))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """St Mary's (OWNER olivia) has example.com verified and pending.example pending, and an enabled,
    enforcing, JIT OIDC connection through Polis; the issuer knows nora, an account asserting a
    pending.example address, and one whose email it did not verify."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'oidc.sqlite3'}")
    tenantkit.upgrade(engine)
    kit = TenantKit()
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "olivia", Role.OWNER, actor=HOST)
        kit.domains.add(session, ORG, "example.com", actor=HOST, strategy="manual")
        kit.domains.confirm(session, ORG, "example.com", actor=HOST)
        kit.domains.add(session, ORG, "pending.example", actor=HOST)
        connection = kit.sso.create_connection(
            session, ORG, provider="polis", protocol="oidc", provider_connection_id=CLIENT_ID,
            name="St Mary's Okta (through Polis)", jit=True, enforce=True, actor=HOST,
        )  # fmt: skip
    issuer = StubIssuer(
        clients={CLIENT_ID: "dummy"},
        redirect_uris=(f"{APP}/callback",),
        accounts={
            "nora@example.com": Account("nora"),
            "eve@example.com": Account("eve", email="eve@pending.example"),
            "ursula@example.com": Account("ursula", email_verified=False),
        },
    )
    with stub_issuer(issuer), httpx.Client(timeout=10.0) as http:
        config = oidc_sso.OidcConfig(
            issuer=issuer.url,
            redirect_uri=f"{APP}/callback",
            client_secret="dummy",
            session_secret="test-only-session-secret-0123456789",
        )
        app = oidc_sso.create_app(kit, engine, config, http)
        with TestClient(app, base_url=APP, follow_redirects=False) as client:
            yield World(kit, engine, issuer, client, connection.id)
    engine.dispose()


def sign_in(world: World, email: str) -> Any:
    """The browser's walk, each redirect followed by hand: the app's login, the issuer's authorize (over the
    socket), the app's callback. Answers the callback's response."""
    started = world.client.get("/login", params={"email": email})
    assert started.status_code == 303, started.text
    authorize = started.headers["location"]
    assert authorize.startswith(f"{world.issuer.url}/authorize?")
    with httpx.Client(follow_redirects=False) as browser:
        at_issuer = browser.get(authorize)
    assert at_issuer.status_code == 302, at_issuer.text
    back = at_issuer.headers["location"]
    assert back.startswith(f"{APP}/callback?")
    return world.client.get(back)


def test_a_verified_domain_email_signs_in_and_is_created_by_jit(world: World) -> None:
    """nora@example.com signs in through the issuer: the callback sets the session and sends her to her
    organization, where JIT made her a MEMBER (as the connection's identity-provider actor, audited)."""
    answer = sign_in(world, "nora@example.com")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/organizations/{ORG}/members"
    nora = world.user_id("nora")
    assert world.role_of(nora) is Role.MEMBER
    listed = world.client.get(answer.headers["location"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["me"] == nora
    assert {m["user_id"]: m["role"] for m in listed.json()["members"]} == {"olivia": "OWNER", nora: "MEMBER"}
    with world.kit.transaction(world.engine) as session:
        events = world.kit.audit.list_events(session, ORG, actor=HOST).items
    added_by = {(e.actor.kind, e.actor.id) for e in events if e.type == "member.added"}
    assert added_by == {("host", None), (ActorKind.IDENTITY_PROVIDER.value, world.connection_id)}


def test_a_later_login_keeps_the_role_the_organization_gave(world: World) -> None:
    """An OWNER promotes nora to ADMIN after her first login; her next SSO login leaves her an ADMIN."""
    assert sign_in(world, "nora@example.com").status_code == 303
    nora = world.user_id("nora")
    with world.kit.transaction(world.engine) as session:
        world.kit.members.change_role(session, ORG, nora, Role.ADMIN, actor="olivia")
    assert sign_in(world, "nora@example.com").status_code == 303
    assert world.role_of(nora) is Role.ADMIN


@pytest.mark.parametrize(
    ("email", "reason"),
    [("eve@example.com", "domain_not_verified"), ("ursula@example.com", "email_unverified")],
)
def test_the_policy_refuses_what_the_provider_asserts_outside_verified_emails(
    world: World, email: str, reason: str
) -> None:
    """The issuer authenticates them, but tenantkit refuses an asserted email of a pending (unverified)
    domain, and an email the provider did not verify: 403 with the reason, no session, no membership."""
    answer = sign_in(world, email)
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"] == {"code": "sso_login_refused", "reason": reason}
    assert "session" not in answer.cookies
    assert world.role_of(world.user_id(email.split("@")[0])) is None


def test_an_email_without_a_connection_is_not_sent_to_the_issuer(world: World) -> None:
    """Home-realm discovery finds no connection for pending.example or an unknown domain: the password
    login takes over (409), and nothing reaches the issuer."""
    for email in ("nora@pending.example", "someone@unknown.example"):
        assert world.client.get("/login", params={"email": email}).status_code == 409
    assert world.issuer.codes == {}


@pytest.mark.parametrize(
    "misbehaviour", ["tampered", "foreign_key", "wrong_nonce", "wrong_audience", "expired"]
)
def test_an_id_token_that_does_not_validate_is_refused(world: World, misbehaviour: Any) -> None:
    """A token whose payload was changed after signing, one signed by a key not in the issuer's JWKS, one
    carrying another login's nonce, another client's audience, or expired: 401, and nobody joins."""
    world.issuer.misbehave = misbehaviour
    answer = sign_in(world, "nora@example.com")
    assert answer.status_code == 401, answer.text
    assert world.issuer.tokens_issued == 1
    assert world.role_of(world.user_id("nora")) is None
    assert world.client.get(f"/organizations/{ORG}/members").status_code == 401


def test_a_callback_of_another_login_is_refused(world: World) -> None:
    """A callback whose state is not the one of this browser's login, or without a login in progress, is
    refused before any code is exchanged."""
    started = world.client.get("/login", params={"email": "nora@example.com"})
    with httpx.Client(follow_redirects=False) as browser:
        back = browser.get(started.headers["location"]).headers["location"]
    forged = back.replace("state=", "state=x")
    assert world.client.get(forged).status_code == 400
    world.client.cookies.clear()
    assert world.client.get(back).status_code == 400
    assert world.issuer.tokens_issued == 0


def test_require_sso_accepts_the_connection_and_refuses_once_it_is_disabled(world: World) -> None:
    """With require_sso on, nora's SSO session may read the members; once the connection is disabled the
    same session is refused (sso_required), and a forged session cookie is no session at all."""
    with world.kit.transaction(world.engine) as session:
        world.kit.organizations.update_settings(
            session, ORG, {"require_sso": True}, expected_version=0, actor=HOST
        )
    assert sign_in(world, "nora@example.com").status_code == 303
    members = f"/organizations/{ORG}/members"
    assert world.client.get(members).status_code == 200
    with world.kit.transaction(world.engine) as session:
        world.kit.sso.update_connection(session, ORG, world.connection_id, enabled=False, actor=HOST)
    refused = world.client.get(members)
    assert refused.status_code == 403
    assert refused.json()["detail"] == {"code": "sso_required"}
    world.client.cookies.clear()
    world.client.cookies.set("session", "eyJ1c2VyX2lkIjoib2xpdmlhIn0.forged.signature")
    assert world.client.get(members).status_code == 401
