"""A hospital on tenantkit, end to end: a permission registry, the deployment-wide roles ``physician`` and
``nurse``, departments, licence-checked invitations, and the nightly suspension of a lapsed licence.
Runs on a temporary SQLite file and prints each step.

    python examples/hospital.py [path/to/file.sqlite3]

Who holds what:

* the medical director is OWNER, the head of cardiology ADMIN (members, invitations, departments);
* ``nurse`` and ``physician`` are custom roles inside the MEMBER rank: a nurse reads records, a physician
  reads records and signs orders. ``records:read`` is also given to ADMIN and OWNER;
* ``orders:sign`` belongs to no rank. By the escalation rule nobody can grant what they do not hold, so no
  administrator can make a physician: physicians come only through the host's own credentialing flow
  (``actor=HOST``), which invites with the physician's licence requirements.

``run(engine)`` is the walk-through on any migrated engine (the tests run it on SQLite, PostgreSQL and
MariaDB); the docs' "The healthcare example end to end" (docs/roles.md) tells the same story.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import (
    HOST,
    CustomRole,
    InvitationSettings,
    PermissionRegistry,
    Permissions,
    Role,
    TenantKit,
)
from tenantkit.credentials import LicencePolicy, is_valid_npi
from tenantkit.errors import (
    AcceptanceDeniedError,
    PermissionDeniedError,
    PermissionEscalationError,
    UnknownPermissionError,
)
from tenantkit.members import make_attributes
from tenantkit.testing import FrozenClock

HOSPITAL = "st-elsewhere"

REGISTRY = PermissionRegistry(
    {
        "records:read": "Read patient records",
        "orders:sign": "Sign medication orders",
    }
)
PERMISSIONS = Permissions(
    registry=REGISTRY,
    roles=[  # deployment-wide: the same two roles in every hospital on this deployment
        CustomRole(
            key="physician",
            name="Physician",
            rank=Role.MEMBER,
            permissions=frozenset({"records:read", "orders:sign"}),
        ),
        CustomRole(key="nurse", name="Nurse", rank=Role.MEMBER, permissions=frozenset({"records:read"})),
    ],
).with_actions("records:read", Role.ADMIN)  # ADMIN and OWNER read records too

# What each invitation requires, checked by LicencePolicy when it is accepted.
PHYSICIAN = {"credential_types": ["MD", "DO"], "npi_required": True, "licence_states": ["CA"]}
NURSE = {"credential_types": ["RN", "NP"], "licence_required": True}


def build_kit(clock: FrozenClock) -> TenantKit:
    """The hospital deployment's kit: its roles, the licence policy and a signing key for invitations."""
    return TenantKit(
        permissions=PERMISSIONS,
        invitations=InvitationSettings(secret_keys=["hospital-example-signing-key-0123456789"]),
        clock=clock,
        accept_policy=LicencePolicy(),
    )


def lee_claims(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    """What the host verified for Dr Lee (at NPPES and the medical board), presented as claims."""
    claims = {
        "credential_type": "MD",
        "npi": "1234567893",
        "licence_state": "CA",
        "licence_number": "A123456",
        "licence_expires_at": (clock() + timedelta(days=400)).isoformat(),
        "verified_by": "nppes+ca-medical-board",
    }
    return {**claims, **overrides}


def allowed(kit: TenantKit, engine: sa.Engine, user: str, action: str) -> str:
    """``yes``, or ``no`` with the refusal's code: what the product's own route would ask."""
    try:
        with kit.transaction(engine) as session:
            kit.members.authorize(session, HOSPITAL, user, action)
    except PermissionDeniedError as error:
        return f"no ({error.code})"
    return "yes"


def run(engine: sa.Engine, say: Callable[[str], None] = print) -> None:  # noqa: PLR0915  one story, in order
    """The walk-through on ``engine`` (already migrated), each step in its own transaction."""
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=timezone.utc))
    kit = build_kit(clock)

    @contextmanager
    def step() -> Iterator[Session]:
        with kit.transaction(engine) as session:
            yield session

    # 1. The hospital, its head of cardiology and two departments.
    with step() as session:
        kit.members.add(session, HOSPITAL, "director", Role.OWNER, actor=HOST)
        kit.members.add(session, HOSPITAL, "head-cardio", Role.ADMIN, actor="director")
        cardiology = kit.departments.create(session, HOSPITAL, "Cardiology", actor="head-cardio")
        emergency = kit.departments.create(session, HOSPITAL, "Emergency", actor="head-cardio")
        roles = kit.roles.list_roles(session, HOSPITAL, actor="head-cardio")
    say(
        "roles "
        + ", ".join(
            f"{role.key} ({role.rank.value}: {', '.join(sorted(role.permissions))})" for role in roles
        )
    )
    say("departments " + ", ".join(d.name for d in (cardiology, emergency)))

    # 2. The head of cardiology invites a nurse (it reads records itself, so it may grant the nurse role),
    #    but cannot invite a physician: it does not hold orders:sign. Nothing is written.
    with step() as session:
        nurse = kit.invitations.create_email_invitation(
            session, HOSPITAL, "nina@example.org", "nurse", actor="head-cardio", requirements=NURSE
        )
    try:
        with step() as session:
            kit.invitations.create_email_invitation(
                session,
                HOSPITAL,
                "dr.lee@example.org",
                "physician",
                actor="head-cardio",
                requirements=PHYSICIAN,
            )
    except PermissionEscalationError as error:
        say(f"head-cardio may not invite a physician ({error.code}, missing {', '.join(error.missing)})")

    # 3. The credentialing office (the host's own flow) invites the physician, licence-checked.
    with step() as session:
        physician = kit.invitations.create_email_invitation(
            session, HOSPITAL, "dr.lee@example.org", "physician", actor=HOST, requirements=PHYSICIAN
        )
    say(f"invited dr.lee@example.org as {physician.invitation.role.value}/{physician.invitation.custom_role}")

    # 4. The host verifies the NPI and licence (at NPPES and the state board, before accept(), outside the
    #    transaction) and presents what it verified as claims. A licence from the wrong state: denied.
    say(f"npi 1234567893 valid: {is_valid_npi('1234567893')}")
    try:
        with step() as session:
            kit.invitations.accept(
                session,
                physician.token.get_secret_value(),
                user_id="lee",
                email="dr.lee@example.org",
                email_verified=True,
                claims=lee_claims(clock, licence_state="NV"),
            )
    except AcceptanceDeniedError as error:
        say(f"denied ({error.code}, {error.requirement}): {error.reason}")

    # 5. With the right licence both are admitted, with their roles and verified licences, and put in wards.
    with step() as session:
        kit.invitations.accept(
            session,
            physician.token.get_secret_value(),
            user_id="lee",
            email="dr.lee@example.org",
            email_verified=True,
            claims=lee_claims(clock),
        )
        kit.invitations.accept(
            session,
            nurse.token.get_secret_value(),
            user_id="nina",
            email="nina@example.org",
            email_verified=True,
            claims={
                "credential_type": "RN",
                "licence_state": "CA",
                "licence_number": "RN-998",
                "licence_expires_at": (clock() + timedelta(days=20)).isoformat(),
                "verified_by": "ca-nursing-board",
            },
        )
        kit.departments.add_member(session, HOSPITAL, cardiology.id, "lee", actor="head-cardio")
        kit.departments.add_member(session, HOSPITAL, emergency.id, "nina", actor="head-cardio")

    with step() as session:
        for member in kit.members.list_members(session, HOSPITAL, actor="director").items:
            values = member.attributes.values if member.attributes else {}
            departments = [
                d.name for d in kit.departments.departments_of(session, HOSPITAL, member.user_id, actor=HOST)
            ]
            role = member.role.value + (f"/{member.custom_role}" if member.custom_role else "")
            credential = values.get("credential_type", "-")
            say(f"  {member.user_id:<12} {role:<16} {credential:<3} {departments}")

    # 6. What each may do: the product's own routes ask authorize() (or the adapters' permission(...)).
    def may(user: str, action: str) -> str:
        return allowed(kit, engine, user, action)

    for user, action in [("lee", "orders:sign"), ("nina", "records:read"), ("nina", "orders:sign")]:
        say(f"{user} {action}: {may(user, action)}")
    say(f"head-cardio records:read: {may('head-cardio', 'records:read')}")
    try:
        may("lee", "order:sign")
    except UnknownPermissionError as error:
        say(f"a typo is refused ({error.code})")

    # 7. A month later the nightly job suspends whoever's licence has lapsed.
    clock.advance(days=30)
    with step() as session:
        lapsed = kit.members.list_lapsing(session, HOSPITAL, clock(), actor=HOST).items
        for member in lapsed:
            kit.members.suspend(session, HOSPITAL, member.user_id, actor=HOST, reason="licence lapsed")
    say(f"suspended {[member.user_id for member in lapsed]}")
    say(f"nina records:read: {may('nina', 'records:read')}")

    # 8. Nina renews; the host verifies the new licence and records it, then the head of cardiology resumes
    #    her, with her role as it was.
    with step() as session:
        renewed = make_attributes(
            {"credential_type": "RN", "licence_state": "CA", "licence_number": "RN-998"},
            verified_by="ca-nursing-board",
            verified_at=clock(),
            expires_at=clock() + timedelta(days=730),
        )
        kit.members.record_attributes(session, HOSPITAL, "nina", renewed, actor=HOST)
        resumed = kit.members.resume(session, HOSPITAL, "nina", actor="head-cardio")
    reads = may("nina", "records:read")
    say(f"nina resumed as {resumed.role.value}/{resumed.custom_role}; records:read: {reads}")
    with step() as session:
        events = [
            event.type for event in reversed(kit.audit.list_events(session, HOSPITAL, actor=HOST).items)
        ]
    say("audit " + ", ".join(events[-3:]))


def main(path: Path) -> None:
    """Migrate a SQLite file at ``path`` and run the walk-through on it."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        print("migrated to", tenantkit.upgrade(engine).to_revision)
        run(engine)
    finally:
        engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(Path(directory) / "hospital.sqlite3")
