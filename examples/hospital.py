"""A hospital on tenantkit: departments, physician and nurse invitations checked against a licence, and the
nightly suspension of lapsed licences. Runs on a temporary SQLite file and prints each step.

    python examples/hospital.py [path/to/file.sqlite3]

Roles: today's ranks carry it. The medical director is OWNER, department heads are ADMIN (they manage
members and departments), physicians and nurses are MEMBER, told apart by the credential their invitation
verified (``attributes.values["credential_type"]``). When custom roles land (``physician`` and ``nurse``
inside the MEMBER rank, with permissions such as ``orders:sign``), the invitation below names the custom role
as well; the licence check does not change.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import tenantkit
from tenantkit import HOST, InvitationSettings, Role, TenantKit
from tenantkit.credentials import LicencePolicy, is_valid_npi
from tenantkit.errors import AcceptanceDeniedError, MemberSuspendedError
from tenantkit.members import make_attributes
from tenantkit.testing import FrozenClock

HOSPITAL = "st-elsewhere"
PHYSICIAN = {"credential_types": ["MD", "DO"], "npi_required": True, "licence_states": ["CA"]}
NURSE = {"credential_types": ["RN", "NP"], "licence_required": True}


def main(path: Path) -> None:  # noqa: PLR0915  one walk-through, step by step, as the docs tell it
    engine = sa.create_engine(f"sqlite:///{path}")
    clock = FrozenClock(datetime(2030, 1, 1, tzinfo=timezone.utc))
    kit = TenantKit(
        invitations=InvitationSettings(secret_keys=["hospital-example-signing-key-0123456789"]),
        clock=clock,
        accept_policy=LicencePolicy(),
    )
    print("migrated to", tenantkit.upgrade(engine).to_revision)

    @contextmanager
    def step() -> Iterator[Session]:
        with kit.transaction(engine) as session:
            yield session

    with step() as session:
        kit.members.add(session, HOSPITAL, "director", Role.OWNER, actor=HOST)
        kit.members.add(session, HOSPITAL, "head-cardio", Role.ADMIN, actor="director")
        cardiology = kit.departments.create(session, HOSPITAL, "Cardiology", actor="head-cardio")
        emergency = kit.departments.create(session, HOSPITAL, "Emergency", actor="head-cardio")
    print("departments", ", ".join(d.name for d in (cardiology, emergency)))

    # A department head invites a physician; the invitation requires an MD/DO licensed in California.
    with step() as session:
        physician = kit.invitations.create_email_invitation(
            session, HOSPITAL, "dr.lee@example.org", actor="head-cardio", requirements=PHYSICIAN
        )
        nurse = kit.invitations.create_email_invitation(
            session, HOSPITAL, "nina@example.org", actor="head-cardio", requirements=NURSE
        )

    # The host verifies the NPI and licence (at NPPES and the state board, before accept(), outside the
    # transaction) and presents what it verified as claims. First without the licence: denied.
    def lee_claims(**overrides: Any) -> dict[str, Any]:
        claims = {
            "credential_type": "MD",
            "npi": "1234567893",
            "licence_state": "CA",
            "licence_number": "A123456",
            "licence_expires_at": (clock() + timedelta(days=400)).isoformat(),
            "verified_by": "nppes+ca-medical-board",
        }
        return {**claims, **overrides}

    print("npi 1234567893 valid:", is_valid_npi("1234567893"))
    try:
        with step() as session:
            kit.invitations.accept(
                session,
                physician.token.get_secret_value(),
                user_id="lee",
                email="dr.lee@example.org",
                email_verified=True,
                claims=lee_claims(licence_state="NV"),
            )
    except AcceptanceDeniedError as error:
        print(f"denied ({error.code}, {error.requirement}): {error.reason}")

    with step() as session:
        kit.invitations.accept(
            session,
            physician.token.get_secret_value(),
            user_id="lee",
            email="dr.lee@example.org",
            email_verified=True,
            claims=lee_claims(),
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
            credential = values.get("credential_type", "-")
            print(f"  {member.user_id:<12} {member.role.value:<6} {credential:<3} {departments}")

    # A month later the nightly job suspends whoever's licence has lapsed.
    clock.advance(days=30)
    with step() as session:
        lapsed = kit.members.list_lapsing(session, HOSPITAL, clock(), actor=HOST).items
        for member in lapsed:
            kit.members.suspend(session, HOSPITAL, member.user_id, actor=HOST, reason="licence lapsed")
    print("suspended", [member.user_id for member in lapsed])
    try:
        with step() as session:
            kit.members.authorize(session, HOSPITAL, "nina", "members:read")
    except MemberSuspendedError as error:
        print(f"nina refused ({error.code})")

    # Nina renews; the host verifies the new licence and records it, then a department head resumes her.
    with step() as session:
        renewed = make_attributes(
            {"credential_type": "RN", "licence_state": "CA", "licence_number": "RN-998"},
            verified_by="ca-nursing-board",
            verified_at=clock(),
            expires_at=clock() + timedelta(days=730),
        )
        kit.members.record_attributes(session, HOSPITAL, "nina", renewed, actor=HOST)
        kit.members.resume(session, HOSPITAL, "nina", actor="head-cardio")
        print("nina resumed, role", kit.members.get_role(session, HOSPITAL, "nina"))
        events = [
            event.type for event in reversed(kit.audit.list_events(session, HOSPITAL, actor=HOST).items)
        ]
    print("audit", ", ".join(events[-3:]))
    engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(Path(directory) / "hospital.sqlite3")
