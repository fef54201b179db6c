"""The round-two pages' Python blocks run as printed, in page order, and do what the page says they do.

``tests/test_docs_code.py`` only checks that a block parses and names what exists. Here each page of
:data:`PAGES` is walked as a reader uses it: its blocks are executed one after the other in one namespace,
which starts with only the names the page assumes (an ``engine`` on a migrated SQLite file, a ``session``,
an organization with an owner, a signing ``secret``…), and after each block the effect its text claims is
checked (a role exists, a setting changed, a refusal raised the documented error code…). A bare expression
is observed as a REPL would show it, so ``kit.sso.discover(...)  # RealmDiscovery(sso="required", …)`` is
checked against the value it printed.

A block that cannot run offline is listed in :data:`NOT_RUNNABLE` with the reason; a walk refuses to pass a
block that is neither run nor listed, and :func:`test_every_page_is_walked_and_every_listed_block_exists`
keeps the list and the walks honest, so a block added to one of these pages cannot escape being run.
"""

from __future__ import annotations

import ast
import json
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit import HOST, InvitationSettings, Role, TenantKit
from tenantkit.credentials import LicencePolicy
from tenantkit.errors import InvalidInputError, PermissionDeniedError, PermissionEscalationError
from tests.dns_txt_server import TxtDnsServer
from tests.test_docs_code import BLOCK

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

PAGES = (
    "roles.md",
    "organization-settings.md",
    "requirements.md",
    "departments.md",
    "usage-limits.md",
    "bound-keys.md",
    "webhooks.md",
    "domains-and-sso.md",
    "pages.md",
)
"""The pages walked here: every Python block of each is run, or listed in :data:`NOT_RUNNABLE`."""

NOT_RUNNABLE: dict[tuple[str, str], str] = {}
"""``(page, a line of the block)`` → why the block is not run here. Empty while every block runs."""

SECRET = "docs-recipes-signing-key-0123456789abcdef"


@dataclass(frozen=True)
class Block:
    """One ``python`` block of a page: where it starts, and its code."""

    page: str
    line: int
    code: str

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def page_blocks(page: str, text: str | None = None) -> list[Block]:
    """The ``python`` blocks of ``docs/<page>`` (or of ``text``) in order, as test_docs_code finds them."""
    text = (DOCS / page).read_text(encoding="utf-8") if text is None else text
    return [
        Block(page, text.count("\n", 0, match.start()) + 2, match.group(1)) for match in BLOCK.finditer(text)
    ]


def not_runnable(block: Block) -> str | None:
    """The reason ``block`` is listed as not runnable, or ``None`` when it must run."""
    reasons = [why for (page, line), why in NOT_RUNNABLE.items() if page == block.page and line in block.code]
    assert len(reasons) <= 1, (block.where, reasons)
    return reasons[0] if reasons else None


def execute(block: Block, namespace: dict[str, Any]) -> list[Any]:
    """Run ``block`` in ``namespace`` as a REPL would, and return the values its bare expressions showed.

    Each top-level statement is compiled in ``single`` mode, which hands every expression statement's value
    to ``sys.displayhook`` (inside ``with`` and ``for`` bodies too): the code is the page's, untouched.
    """
    shown: list[Any] = []
    previous = sys.displayhook
    sys.displayhook = shown.append
    try:
        for statement in ast.parse(block.code, filename=block.where).body:
            code = compile(ast.Interactive(body=[statement]), block.where, "single")
            exec(code, namespace)  # noqa: S102  the docs' own code, run as a reader runs it
    finally:
        sys.displayhook = previous
    return shown


class Walk:
    """A reader going down one page: each block run in order, in one namespace."""

    def __init__(self, page: str, text: str | None = None, **names: Any) -> None:
        self.page = page
        self.blocks = page_blocks(page, text)
        self.position = 0
        self.namespace: dict[str, Any] = {"__name__": "docs_recipe", **names}
        self.shown: list[Any] = []

    def _pass_not_runnable(self) -> None:
        while self.position < len(self.blocks) and not_runnable(self.blocks[self.position]) is not None:
            self.position += 1

    def run(self, containing: str, **names: Any) -> dict[str, Any]:
        """Run the page's next block, which must contain ``containing``, after defining ``names``.

        ``names`` are what the page assumes at that point (a ``session``, the host's request body…).
        Returns the namespace; the values the block's bare expressions showed are in :attr:`shown`.
        """
        self._pass_not_runnable()
        assert self.position < len(self.blocks), f"docs/{self.page} has no block left for {containing!r}"
        block = self.blocks[self.position]
        assert containing in block.code, (
            f"{block.where} is neither run by this walk nor listed in NOT_RUNNABLE"
            f" (the walk expected the block containing {containing!r})"
        )
        self.position += 1
        self.namespace.update(names)
        self.shown = execute(block, self.namespace)
        return self.namespace

    def raises(self, error: type[Exception], containing: str, **names: Any) -> Any:
        """Run the next block (as :meth:`run`), which the page says ends in ``error``; return the error."""
        with pytest.raises(error) as caught:
            self.run(containing, **names)
        return caught.value

    def __getitem__(self, name: str) -> Any:
        return self.namespace[name]

    def done(self) -> None:
        """Every block of the page was run, or is listed as not runnable."""
        self._pass_not_runnable()
        left = [block.where for block in self.blocks[self.position :]]
        assert left == [], f"blocks neither run nor listed in NOT_RUNNABLE: {left}"


WALKED: dict[str, str] = {}
"""Each page of :data:`PAGES` → the test that walks it (filled by :func:`walks`)."""


def walks(page: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a test as the walk of ``page``."""

    def register(test: Callable[..., None]) -> Callable[..., None]:
        assert page not in WALKED, (page, WALKED[page])
        WALKED[page] = test.__name__
        return test

    return register


def example(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The module ``examples/<name>.py``, importable as ``name`` during the test (as if on the path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[Session]:
    """The test's own unit of work, beside the page's (setting the scene, reading the effect back)."""
    with TenantKit().transaction(engine) as session:
        yield session


def test_a_block_neither_run_nor_listed_stops_the_walk() -> None:
    """A walk that expects one block but meets another (a block added above it) fails, naming the newcomer."""
    text = "```python\nx = 1\n```\n\ntext\n\n```python\ny = x + 1\n```\n"
    walk = Walk("made-up.md", text)

    walk.run("x = 1")
    with pytest.raises(AssertionError, match=r"made-up\.md:8 is neither run"):
        walk.run("z = ")

    unfinished = Walk("made-up.md", text)
    unfinished.run("x = 1")
    with pytest.raises(AssertionError, match=r"made-up\.md:8"):
        unfinished.done()


def test_a_block_listed_as_not_runnable_is_passed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listed block is neither run nor required: the walk goes on to the next block and can finish."""
    text = "```python\nraise SystemExit('needs a real IdP')\n```\n\n```python\ny = 2\n```\n"
    monkeypatch.setitem(NOT_RUNNABLE, ("made-up.md", "needs a real IdP"), "no IdP offline")
    walk = Walk("made-up.md", text)

    walk.run("y = 2")
    walk.done()
    assert walk["y"] == 2


def test_bare_expressions_are_shown_as_a_repl_shows_them() -> None:
    """The values of a block's expression statements are observed, those inside a ``with`` body included."""
    walk = Walk(
        "made-up.md", "```python\nfrom contextlib import nullcontext\nwith nullcontext():\n    2 + 3\n```\n"
    )
    walk.run("2 + 3")
    assert walk.shown == [5]


def test_every_page_is_walked_and_every_listed_block_exists() -> None:
    """Each page has its walk (which runs every block not listed), and each listed block is on its page."""
    assert sorted(WALKED) == sorted(PAGES)
    for page, line in NOT_RUNNABLE:
        assert page in PAGES, page
        assert len([block for block in page_blocks(page) if line in block.code]) == 1, (page, line)
    assert sum(len(page_blocks(page)) for page in PAGES) >= 32  # the pattern finds the pages' code


# -- roles.md --------------------------------------------------------------------------------------------


@walks("roles.md")
def test_the_roles_page_runs_as_printed(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Declared roles, an organization's own role created, edited, held, deleted with reassignment; the
    hospital's kit and its refused physician invitation; an external authorizer deciding."""
    hospital = example("hospital", monkeypatch)
    walk = Walk("roles.md", engine=sqlite_engine)

    walk.run("registry = PermissionRegistry(")
    kit: TenantKit = walk["kit"]
    assert kit.permissions.can(Role.ADMIN, "records:read")
    assert not kit.permissions.can(Role.OWNER, "orders:sign")
    with transaction(sqlite_engine) as session:
        kit.members.add(session, "org_1", "user_owner", Role.OWNER, actor=HOST)

    walk.run('kit.roles.create(session, "org_1", "charge_nurse"')
    roles = walk.shown[-1]  # the last line, list_roles
    assert [role.key for role in roles] == ["nurse", "physician", "charge_nurse"]  # deployment-wide first
    assert roles[-1].name == "Charge nurse (ward 3)"
    with transaction(sqlite_engine) as session:
        nina = kit.members.get(session, "org_1", "user_nina", actor=HOST)
    assert (nina.role, nina.custom_role) == (Role.MEMBER, "charge_nurse")

    walk.run('reassign_to="nurse"')
    assert walk["moved"] == 1
    with transaction(sqlite_engine) as session:
        assert kit.members.get(session, "org_1", "user_nina", actor=HOST).custom_role == "nurse"
        assert [role.key for role in kit.roles.list_roles(session, "org_1", actor=HOST)] == [
            "nurse",
            "physician",
        ]

    walk.run("accept_policy=LicencePolicy(),", secret=SECRET)
    kit = walk["kit"]
    assert isinstance(kit.invitations.accept_policy, LicencePolicy)
    with transaction(sqlite_engine) as session:
        kit.members.add(session, "st-elsewhere", "director", Role.OWNER, actor=HOST)
        kit.members.add(session, "st-elsewhere", "head-cardio", Role.ADMIN, actor="director")

    with kit.transaction(sqlite_engine) as session:
        refused = walk.raises(
            PermissionEscalationError,
            '"nina@example.org", "nurse"',
            session=session,
            NURSE=hospital.NURSE,
            PHYSICIAN=hospital.PHYSICIAN,
        )
        assert (refused.code, refused.missing) == ("permission_escalation", ("orders:sign",))
        pending = kit.invitations.list_pending(session, "st-elsewhere", actor=HOST).items
        assert [(invitation.email, invitation.custom_role) for invitation in pending] == [
            ("nina@example.org", "nurse")
        ]

    asked: list[dict[str, Any]] = []

    class OpaClient:
        """The host's policy engine: here it lets nobody read the member list."""

        def check(self, request: dict[str, Any]) -> bool:
            asked.append(request)
            return bool(request["action"] != "members:read")

    walk.run("class OpaAuthorizer", opa_client=OpaClient())
    kit = walk["kit"]
    with kit.transaction(sqlite_engine) as session:
        kit.members.authorize(session, "org_1", "user_owner", "members:invite")
        with pytest.raises(PermissionDeniedError):
            kit.members.authorize(session, "org_1", "user_owner", "members:read")
    assert asked[-1] == {"user": "user_owner", "action": "members:read", "org": "org_1", "resource": None}
    walk.done()


# -- organization-settings.md ----------------------------------------------------------------------------


@walks("organization-settings.md")
def test_the_organization_settings_page_runs_as_printed(  # noqa: PLR0915  one page, in order
    sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host's settings model and a ceiling; a versioned write; a custom role as the default role; an
    organization's data deleted with the rows counted; one user's data erased."""
    hospital = example("hospital", monkeypatch)
    walk = Walk("organization-settings.md", engine=sqlite_engine)

    walk.run("class ClinicSettings(SettingsDocument)")
    kit: TenantKit = walk["kit"]
    assert kit.settings.organizations.document is walk["ClinicSettings"]
    assert kit.settings.organizations.api_key_max_lifetime == timedelta(days=365)
    with transaction(sqlite_engine) as session:
        kit.members.add(session, "org_1", "olivia", Role.OWNER, actor=HOST)

    walk.run("kit.organizations.update_settings(")
    current = walk["current"]
    assert current.version == 0
    assert isinstance(current.document, walk["ClinicSettings"])
    with transaction(sqlite_engine) as session:
        stored = kit.organizations.get_settings(session, "org_1", actor=HOST)
    assert stored.version == 1
    document = stored.document.model_dump()
    assert document["appointment_reminders"] is False
    assert document["invitation_max_ttl"] == timedelta(days=3)
    assert document["report_timezone"] == "UTC"
    assert set(stored.explicit_keys) == {"appointment_reminders", "invitation_max_ttl"}

    hospital_kit = TenantKit(permissions=hospital.PERMISSIONS)  # the roles page's kit: it has a nurse
    with transaction(sqlite_engine) as session:
        hospital_kit.members.add(session, "st-elsewhere", "director", Role.OWNER, actor=HOST)
        hospital_kit.members.add(session, "st-elsewhere", "head-cardio", Role.ADMIN, actor="director")
    with hospital_kit.transaction(sqlite_engine) as session:
        walk.run('{"default_role": "nurse"}', kit=hospital_kit, session=session)
        nina = hospital_kit.members.get(session, "st-elsewhere", "nina", actor=HOST)
    assert (nina.role, nina.custom_role) == (Role.MEMBER, "nurse")

    # org_1 as the comment counts it: three members, two keys, four invitations.
    inviting = TenantKit(invitations=InvitationSettings(secret_keys=[SECRET]))
    with transaction(sqlite_engine) as session:
        for user in ("bob", "carol"):
            kit.members.add(session, "org_1", user, Role.MEMBER, actor="olivia")
        for name in ("ci", "backup"):
            kit.api_keys.issue(session, "org_1", name, actor="olivia", expires=timedelta(days=30))
        for address in ("d@example.com", "e@example.com", "f@example.com", "g@example.com"):
            inviting.invitations.create_email_invitation(session, "org_1", address, "MEMBER", actor="olivia")
    walk.run("kit.organizations.delete_organization(", kit=kit)
    result = walk["result"]
    assert result.audit == "kept"
    assert {table: result.rows[table] for table in ("team_members", "api_keys", "invitations")} == {
        "team_members": 3,
        "api_keys": 2,
        "invitations": 4,
    }
    with transaction(sqlite_engine) as session:
        assert kit.members.list_members(session, "org_1", actor=HOST).items == []

    with transaction(sqlite_engine) as session:
        kit.members.add(session, "org_2", "olga", Role.OWNER, actor=HOST)
        kit.members.add(session, "org_2", "user_42", Role.ADMIN, actor="olga")
        inviting.invitations.create_email_invitation(
            session, "org_2", "ada@example.com", "MEMBER", actor="olga"
        )
    walk.run('kit.organizations.erase_user(session, "user_42"')
    erased = walk["result"]
    assert erased.organizations == ("org_2",)
    assert erased.rows["team_members"] == 1
    assert erased.rows["invitations"] >= 1
    with transaction(sqlite_engine) as session:
        assert [
            member.user_id for member in kit.members.list_members(session, "org_2", actor=HOST).items
        ] == ["olga"]
        assert inviting.invitations.list_pending(session, "org_2", actor=HOST).items == []
    walk.done()


# -- requirements.md -------------------------------------------------------------------------------------


@walks("requirements.md")
def test_the_requirements_page_runs_as_printed(  # noqa: PLR0915  one page, in order
    sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A licence policy configured; a physician invited with requirements and admitted on the host's claims,
    the licence stored as attributes; the lapsed suspended; a policy of one's own approving and denying."""
    from tenantkit.errors import AcceptanceDeniedError
    from tenantkit.members import make_attributes

    hospital = example("hospital", monkeypatch)
    walk = Walk("requirements.md", engine=sqlite_engine, permissions=hospital.PERMISSIONS, secret=SECRET)

    walk.run("accept_policy=LicencePolicy(),")
    kit: TenantKit = walk["kit"]
    with transaction(sqlite_engine) as session:
        kit.members.add(session, "st-elsewhere", "director", Role.OWNER, actor=HOST)

    with kit.transaction(sqlite_engine) as session:
        walk.run('"dr.lee@example.org", "physician", actor=HOST', session=session)
    invited = walk.shown[-1]
    assert invited.invitation.custom_role == "physician"
    requirements = invited.invitation.requirements
    assert requirements is not None
    assert {key: requirements[key] for key in ("credential_types", "npi_required", "licence_states")} == {
        "credential_types": ["MD", "DO"],
        "npi_required": True,
        "licence_states": ["CA"],
    }

    with kit.transaction(sqlite_engine) as session:
        walk.run("kit.invitations.accept(", session=session, token=invited.token.get_secret_value())
        lee = kit.members.get(session, "st-elsewhere", "lee", actor=HOST)
    assert (lee.role, lee.custom_role) == (Role.MEMBER, "physician")
    assert lee.attributes is not None
    assert lee.attributes.verified_by == "nppes+ca-medical-board"
    assert lee.attributes.values["npi"] == "1234567893"
    assert lee.attributes.values["licence_state"] == "CA"

    with kit.transaction(sqlite_engine) as session:  # nina's licence ran out yesterday
        kit.members.add(session, "st-elsewhere", "nina", "nurse", actor="director")
        yesterday = kit.clock() - timedelta(days=1)
        lapsed_licence = make_attributes(
            {"credential_type": "RN"}, verified_by="board", verified_at=yesterday, expires_at=yesterday
        )
        kit.members.record_attributes(session, "st-elsewhere", "nina", lapsed_licence, actor=HOST)
    with kit.transaction(sqlite_engine) as session:
        walk.run("kit.members.list_lapsing(", session=session, org="st-elsewhere", timedelta=timedelta)
        nina = kit.members.get(session, "st-elsewhere", "nina", actor=HOST)
    assert [member.user_id for member in walk["lapsed"]] == ["nina"]
    assert [member.user_id for member in walk["soon"].items] == ["nina"]  # lee's licence runs to 2031
    assert nina.suspended
    assert nina.suspension_reason == "licence lapsed"

    walk.run("class BadgePolicy")
    badges = TenantKit(
        invitations=InvitationSettings(secret_keys=[SECRET]), accept_policy=walk["BadgePolicy"]()
    )
    with badges.transaction(sqlite_engine) as session:
        badges.members.add(session, "site", "guard", Role.OWNER, actor=HOST)
        with pytest.raises(InvalidInputError, match="only badge_level"):
            badges.invitations.create_email_invitation(
                session, "site", "x@example.org", "MEMBER", actor=HOST, requirements={"colour": "red"}
            )
        badge = badges.invitations.create_email_invitation(
            session, "site", "vic@example.org", "MEMBER", actor=HOST, requirements={"badge_level": 3}
        )

    def accept(level: int) -> None:
        with badges.transaction(sqlite_engine) as session:
            badges.invitations.accept(
                session,
                badge.token.get_secret_value(),
                user_id="vic",
                email="vic@example.org",
                email_verified=True,
                claims={"badge_level": level},
            )

    with pytest.raises(AcceptanceDeniedError) as denied:
        accept(2)
    assert (denied.value.reason, denied.value.requirement) == ("badge level too low", "badge_level")
    accept(3)
    with transaction(sqlite_engine) as session:
        vic = badges.members.get(session, "site", "vic", actor=HOST)
    assert vic.attributes is not None
    assert (vic.attributes.verified_by, vic.attributes.values) == ("badge-office", {"badge_level": 3})
    walk.done()


# -- departments.md --------------------------------------------------------------------------------------


@walks("departments.md")
def test_the_departments_page_runs_as_printed(sqlite_engine: sa.Engine) -> None:
    """A department created by an ADMIN, a member put in it, listed by a MEMBER, and found by member."""
    kit = TenantKit()
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, "st-elsewhere", "director", Role.OWNER, actor=HOST)
        kit.members.add(session, "st-elsewhere", "head-cardio", Role.ADMIN, actor="director")
        for user in ("lee", "nina"):
            kit.members.add(session, "st-elsewhere", user, Role.MEMBER, actor="head-cardio")
    walk = Walk("departments.md", kit=kit)

    with kit.transaction(sqlite_engine) as session:
        walk.run('kit.departments.create(session, "st-elsewhere", "Cardiology"', session=session)
    in_cardiology, lee_is_in = walk.shown[-2:]
    assert [member.user_id for member in in_cardiology.items] == ["lee"]
    assert [department.name for department in lee_is_in] == ["Cardiology"]
    assert walk["cardiology"].id == lee_is_in[0].id
    walk.done()


# -- usage-limits.md -------------------------------------------------------------------------------------


@walks("usage-limits.md")
def test_the_usage_limits_page_runs_as_printed(sqlite_engine: sa.Engine) -> None:
    """A key with credits, a monthly refill and two rate limits, spending a credit per verification; the
    rate limiter swapped for one in Redis that lets requests through while Redis is down."""
    kit = TenantKit()
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
    walk = Walk("usage-limits.md", kit=kit)

    with kit.transaction(sqlite_engine) as session:
        walk.run("limits=ApiKeyLimits(", session=session)
    issued = walk["issued"]
    limits = issued.api_key.limits
    assert (limits.credits, limits.refill_amount, limits.refill_period) == (1000, 1000, "month")
    assert limits.rate_limits == ("100 per 1 minute", "5000 per 1 day")
    with kit.transaction(sqlite_engine) as session:
        answer = kit.api_keys.verify(session, issued.reveal())
    assert (answer.valid, answer.credits_remaining) == (True, 999)

    walk.run('RateLimiter("memory://")')  # builds both limiters; neither connects until a key is counted
    limiter = kit.api_keys.rate_limiter
    assert limiter is not None
    assert limiter.on_unavailable == "allow"
    assert "redis" in type(limiter._storage).__name__.lower()
    walk.done()


# -- bound-keys.md ---------------------------------------------------------------------------------------


@walks("bound-keys.md")
def test_the_bound_keys_page_runs_as_printed(sqlite_engine: sa.Engine) -> None:
    """A pump's key usable only from its networks with its certificate; keys listed and revoked by
    device; a kit believing a certificate header from its proxy."""
    from tenantkit.api_keys import ClientInfo

    kit = TenantKit()
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
    walk = Walk("bound-keys.md", kit=kit)

    with kit.transaction(sqlite_engine) as session:
        walk.run("pump = kit.api_keys.issue(", session=session)
    pump = walk["pump"]
    assert (pump.api_key.subject.type, pump.api_key.subject.id) == ("device", "UDI-(01)00844588003288")
    thumbprint = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

    def verify(address: str, certificate: str | None) -> Any:
        with kit.transaction(sqlite_engine) as session:
            client = ClientInfo(address=address, certificate_thumbprint=certificate)
            return kit.api_keys.verify(session, pump.reveal(), client=client)

    assert verify("10.20.1.7", thumbprint).valid
    assert verify("2001:db8:20::7", thumbprint).valid
    assert verify("10.30.1.7", thumbprint).reason == "address_not_allowed"
    assert verify("10.20.1.7", None).reason == "certificate_mismatch"

    with kit.transaction(sqlite_engine) as session:
        lost = kit.api_keys.issue(
            session, "org_1", "pump SN-4711", actor="alice", subject=walk["ApiKeySubject"].device("SN-4711")
        )
    with kit.transaction(sqlite_engine) as session:
        walk.run("kit.api_keys.revoke_subject(", session=session)
    listed, revoked = walk.shown
    assert [key.id for key in listed.items] == [lost.id]
    assert revoked == (lost.id,)
    with kit.transaction(sqlite_engine) as session:
        assert kit.api_keys.verify(session, lost.reveal()).reason == "revoked"

    walk.run('client_certificate_header="X-Client-Cert-SHA256"')
    (proxied,) = walk.shown
    assert proxied.settings.http.client_certificate_header == "X-Client-Cert-SHA256"
    assert [str(proxy) for proxy in proxied.settings.http.trusted_proxies] == ["10.0.0.2/32"]
    walk.done()


# -- webhooks.md -----------------------------------------------------------------------------------------

HOOKS_ADDRESS = "93.184.215.14"  # a globally routable address: what hooks.example.com resolves to here


@walks("webhooks.md")
def test_the_webhooks_page_runs_as_printed(sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """An endpoint registered (its secret shown once), a worker round with nothing due, a change queued for
    the endpoint; the receiver verifying a signed delivery, skipping a redelivery, refusing a forgery.

    The endpoint's host is resolved by the operating system; ``getaddrinfo`` answers it here, and nothing
    is sent (no subscribed event is due when the page's worker round runs).
    """
    import time

    from tenantkit.webhooks import generate_secret, sign

    system_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (HOOKS_ADDRESS, port))]
        return system_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("TENANTKIT_WEBHOOK_SECRET_KEYS", generate_secret())
    walk = Walk("webhooks.md", engine=sqlite_engine)

    walk.run("deliver_due(engine, limit=100, service=kit.webhooks)")
    kit: TenantKit = walk["kit"]
    assert walk["secret"].startswith("whsec_")
    endpoint = walk["created"].endpoint
    assert (endpoint.url, endpoint.event_types) == (
        "https://hooks.example.com/tenantkit",
        ("member.added", "api_key.revoked"),
    )
    assert walk.shown[-1].claimed == 0
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, "org_1", "bob", Role.MEMBER, actor=HOST)
    with kit.transaction(sqlite_engine) as session:
        (queued,) = kit.webhooks.list_deliveries(session, "org_1", actor=HOST, endpoint_id=endpoint.id).items
    assert queued.event_type == "member.added"

    seen: set[str] = set()
    handled: list[tuple[str, Any]] = []

    def already_seen(message_id: str) -> bool:
        """The receiver's deduplication: true from the second time a ``webhook-id`` arrives."""
        if message_id in seen:
            return True
        seen.add(message_id)
        return False

    walk.run(
        "def receive(body: bytes, headers: dict[str, str])",
        WHSEC_SECRET=walk["secret"],
        already_seen=already_seen,
        handle=lambda kind, data: handled.append((kind, data)),
    )
    receive = walk["receive"]
    body = json.dumps({"type": "member.added", "data": {"role": "MEMBER", "user_id": "bob"}}).encode()
    now = int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now)}
    headers["webhook-signature"] = sign(walk["secret"], "msg_1", now, body)
    receive(body, headers)
    receive(body, headers)  # the same webhook-id again: handled once
    assert handled == [("member.added", {"role": "MEMBER", "user_id": "bob"})]
    with pytest.raises(PermissionError, match="not from tenantkit"):
        receive(body.replace(b"MEMBER", b"OWNER"), headers)
    walk.done()


# -- domains-and-sso.md ----------------------------------------------------------------------------------


@walks("domains-and-sso.md")
def test_the_domains_and_sso_page_runs_as_printed(  # noqa: PLR0915  one page, in order
    sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A domain claimed and verified over DNS, an SSO connection, a JIT login, home-realm discovery,
    auto-join, the OIDC example's app built, and a Clerk membership event applied.

    The kit's resolver is the injectable one the page names, asking a DNS server on 127.0.0.1 in which the
    test publishes the organization's TXT records.
    """
    import types

    from tenantkit import Actor, Authentication
    from tenantkit.domains import DnsPythonResolver
    from tenantkit.sso import RealmDiscovery

    with TxtDnsServer() as dns:
        kit = TenantKit(dns_resolver=DnsPythonResolver(["127.0.0.1"], port=dns.port, timeout=3))
        with kit.transaction(sqlite_engine) as session:
            kit.members.add(session, "org_1", "alice", Role.OWNER, actor=HOST)
        walk = Walk("domains-and-sso.md", kit=kit, engine=sqlite_engine)

        walk.run('kit.domains.add(session, "org_1", "Example.com"')
        added = walk["added"]
        record_name, record_value = walk.shown
        assert record_name == "_tenantkit-verification.example.com"
        assert record_value.startswith("tenantkit-domain-verification=")
        dns.txt(added.record_name, record_value)  # the organization publishes its record

        walk.run('kit.domains.verify(session, "org_1", "example.com"')
        (verified,) = walk.shown
        assert (verified.domain, verified.status) == ("example.com", "verified")

        walk.run("okta = kit.sso.create_connection(")
        okta = walk["okta"]
        assert (okta.provider, okta.protocol, okta.jit, okta.enforce) == ("polis", "saml", True, True)

        claims = {"email": "nora@example.com", "email_verified": True}
        with kit.transaction(sqlite_engine) as session:
            walk.run(
                "login = kit.sso.check_sso_login(",
                session=session,
                claims=claims,
                user=types.SimpleNamespace(id="nora"),
            )
            assert walk["login"].created
            member, actor = walk.shown
            assert (member.user_id, member.role) == ("nora", Role.MEMBER)
            assert actor == Actor.user("nora", authenticated_by=Authentication.sso(okta.id))

            walk.run('kit.sso.discover(session, "nora@example.com")')
            assert walk.shown == [
                RealmDiscovery(
                    sso="required",
                    connection_id=okta.id,
                    provider="polis",
                    provider_connection_id="tenant=acme&product=app",
                )
            ]

        with kit.transaction(sqlite_engine) as session:  # hospital.org verified, and auto-join on
            token = kit.domains.add(session, "org_1", "hospital.org", actor="alice")
            assert token.record_name is not None
            assert token.record_value is not None
            dns.txt(token.record_name, token.record_value.get_secret_value())
            kit.domains.verify(session, "org_1", "hospital.org", actor="alice")
            kit.organizations.update_settings(
                session, "org_1", {"auto_join": True}, expected_version=0, actor="alice"
            )
        walk.run("kit.domains.joinable(session")
        assert walk.shown == [["org_1"], (True, Role.MEMBER)]

    walk.run("from oidc_sso import OidcConfig, create_app", oidc_sso=example("oidc_sso", monkeypatch))
    paths = {route.path for route in walk["app"].routes}
    assert {"/login", "/callback"} <= paths
    assert walk["engine"].url.drivername == "postgresql+psycopg"  # built, never connected
    walk["engine"].dispose()

    deliveries = json.loads((EXAMPLES / "recorded" / "clerk_organization_membership.json").read_text())
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, "st-marys", "olivia", Role.OWNER, actor=HOST)
        kit.roles.create(session, "st-marys", "nurse", name="Nurse", rank=Role.MEMBER, actor=HOST)
        connection = kit.sso.create_connection(
            session,
            "st-marys",
            provider="clerk",
            protocol="oidc",
            provider_connection_id="org_2m3PzZk0bVc9xN1qLr7tYe5wHsA",
            name="Clerk",
            actor=HOST,
        )
    walk.run(
        "sync = kit.sso.membership_sync(",
        engine=sqlite_engine,
        connection=connection,
        payload=deliveries[0]["body"],
        headers={"svix-id": deliveries[0]["svix-id"]},
    )
    result = walk["result"]
    assert walk.shown == ["created"]
    assert result.member is not None
    with kit.transaction(sqlite_engine) as session:
        assert kit.members.get(session, "st-marys", result.user_id, actor=HOST) == result.member
    walk.done()


# -- pages.md ---------------------------------------------------------------------------------------------


@walks("pages.md")
def test_the_pages_guide_runs_as_printed(  # noqa: PLR0915  one page, in order
    sqlite_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The pages mounted in one line in FastAPI and in Flask serve the team page; with a ``translations``
    directory and ``Europe/Berlin`` they speak German to a German browser, with the dates in Berlin's zone;
    a page of your own, its code and template as printed, is served and its action archives a project."""
    import shutil
    from types import SimpleNamespace

    import flask
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from tenantkit.fastapi import Principal, TenantKitFastAPI
    from tests.host_pages import PERMISSIONS, add_projects, projects, projects_table
    from tests.page_apps import ORGANIZATION, OWNER, OWNER_EMAIL, PAGES_SECRET, make_kit, seed

    kit = make_kit()
    seed(kit, sqlite_engine)
    owner = Principal(user_id=OWNER, email=OWNER_EMAIL, email_verified=True)
    team = f"/account/organizations/{ORGANIZATION}/team"
    german = {"Accept-Language": "de-DE,de;q=0.9"}

    def get_session() -> Iterator[Session]:
        with Session(sqlite_engine) as session:
            yield session

    def flask_session() -> Session:
        if "session" not in flask.g:
            flask.g.session = Session(sqlite_engine)
        session: Session = flask.g.session
        return session

    walk = Walk("pages.md")
    fastapi_app = FastAPI()
    walk.run(
        "tk.pages(secret_key=settings.pages_secret)",
        kit=kit,
        get_session=get_session,
        current_user=lambda: owner,
        settings=SimpleNamespace(pages_secret=PAGES_SECRET),
        app=fastapi_app,
    )
    fastapi_tk = walk["tk"]
    answer: Any = TestClient(fastapi_app).get(team)
    assert answer.status_code == 200, answer.text
    assert f"Team of {ORGANIZATION}" in answer.text

    def flask_host(name: str) -> flask.Flask:
        """A Flask host whose request's session (``flask_session``) is closed with its app context: a
        session left open past the engine's disposal would leave its SQLite connection to the garbage
        collector (a ResourceWarning on Python 3.13, raised in whichever test the collector runs)."""
        app = flask.Flask(name)

        @app.teardown_appcontext
        def close(_: BaseException | None) -> None:
            session = flask.g.pop("session", None)
            if session is not None:
                session.close()

        return app

    flask_app = flask_host("docs_recipe")
    walk.run(
        "tk.pages_blueprint(secret_key=PAGES_SECRET)",
        get_session=flask_session,
        current_user=lambda: owner,
        app=flask_app,
        PAGES_SECRET=PAGES_SECRET,
    )
    flask_tk = walk["tk"]
    answer = flask_app.test_client().get(team)
    assert answer.status_code == 200, answer.text
    assert f"Team of {ORGANIZATION}" in answer.text

    # "With Flask-WTF": its tokens on the forms, a page action accepted with them, refused without.
    wtf_app = flask_host("docs_recipe_wtf")
    wtf_app.config["SECRET_KEY"] = "docs-recipe-flask-secret"
    walk.run("CSRFProtect(app)", tk=flask_tk, app=wtf_app)
    browser = wtf_app.test_client()
    page = browser.get(team).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    assert browser.get_cookie("tenantkit_csrf") is None  # Flask-WTF's secret is in the session
    keys = f"/account/organizations/{ORGANIZATION}/api-keys/issue"
    assert browser.post(keys, data={"csrf_token": token.group(1), "name": "CI"}).status_code == 200
    assert browser.post(keys, data={"csrf_token": "forged", "name": "CI2"}).status_code == 400

    # "With starlette-csrf": the pages' prefix exempted, their own check still on.
    csrf_app = FastAPI()
    walk.run("CSRFMiddleware", tk=fastapi_tk, app=csrf_app, CSRF_SECRET="docs-recipe-csrf-secret")
    browser_fastapi = TestClient(csrf_app)
    page = browser_fastapi.get(team).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    answer = browser_fastapi.post(keys, data={"csrf_token": token.group(1), "name": "CI3"})
    assert answer.status_code == 200, answer.text
    assert browser_fastapi.post(keys, data={"csrf_token": "forged", "name": "CI4"}).status_code == 403

    # The catalogs of "Adding a language", where the recipe looks for them: ./translations.
    shutil.copytree(ROOT / "tests" / "locale", tmp_path / "translations")
    monkeypatch.chdir(tmp_path)
    translated_fastapi = FastAPI()
    walk.run(
        'tk.pages(secret_key=SECRET, translations=["translations"]',
        tk=fastapi_tk,
        app=translated_fastapi,
        SECRET=PAGES_SECRET,
    )
    translated_flask = flask_host("docs_recipe_translated")
    walk.run(
        'tk.pages_blueprint(secret_key=SECRET, translations=["translations"]',
        tk=flask_tk,
        app=translated_flask,
    )
    for get in (TestClient(translated_fastapi).get, translated_flask.test_client().get):
        answer = get(team, headers=german)
        assert answer.status_code == 200, answer.text
        assert f"Team von {ORGANIZATION}" in answer.text
        assert '<html lang="de">' in answer.text
        assert "MEZ" in answer.text  # the join date, in Berlin's winter time, named in German
        assert f"Team of {ORGANIZATION}" in get(team).text  # a browser asking for no language: English

    # "Pages of your own": the page's code and its template as printed (the template is also the one
    # tests/test_pages_own.py drives through both adapters).
    template = re.search(r"^```html\n(.*?)^```", (DOCS / "pages.md").read_text(), re.DOTALL | re.MULTILINE)
    assert template is not None
    assert template.group(1) == (ROOT / "tests" / "host_pages" / "templates" / "projects.html").read_text()
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "projects.html").write_text(template.group(1))
    own_kit = make_kit(permissions=PERMISSIONS)  # the same organization and owner, the projects' permissions
    with projects_table(sqlite_engine):
        add_projects(sqlite_engine, ORGANIZATION, "Apollo")
        own_app = FastAPI()
        own_tk = TenantKitFastAPI(own_kit, session=get_session, current_user=lambda: owner)
        walk.run("extra_pages=[PROJECTS]", tk=own_tk, app=own_app, projects=projects)
        walk.done()
        client = TestClient(own_app, follow_redirects=False)
        projects_page = client.get(f"/account/organizations/{ORGANIZATION}/projects")
        assert projects_page.status_code == 200, projects_page.text
        assert "Archive Apollo" in projects_page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', projects_page.text)
        assert token is not None
        archived = client.post(
            f"/account/organizations/{ORGANIZATION}/projects/archive",
            data={"csrf_token": token.group(1), "project_id": f"{ORGANIZATION}-p1", "confirmed": "yes"},
        )
        assert archived.status_code == 303, archived.text
        assert "Project Apollo was archived." in client.get(archived.headers["Location"]).text
