"""Events name who acted: the audit log and webhooks copy ``actor``, so it is each change's performer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import tenantkit
from tenantkit import HOST, ActorKind, ApiKeyService, InvitationService, MembershipService, Role, RoleService
from tenantkit.audit import AuditService
from tenantkit.departments import DepartmentService
from tenantkit.events import Event, InvitationAccepted, MemberAdded
from tenantkit.members import make_attributes
from tenantkit.organizations import OrganizationService
from tenantkit.testing import EventRecorder, FrozenClock
from tests.domain_changes import every_domain_and_sso_change

ORG = "org_1"


@pytest.fixture
def membership(clock: FrozenClock) -> MembershipService:
    return MembershipService(clock=clock)


@pytest.fixture
def recorder(membership: MembershipService) -> EventRecorder:
    recorder = EventRecorder()
    membership.events.subscribe(recorder)
    return recorder


def actors(recorder: EventRecorder) -> list[tuple[str, str | None]]:
    """Each event's class and acting user, ``None`` where the host acted."""
    assert all(
        event.actor.user_id is not None or event.actor == HOST or event.actor.kind is ActorKind.SYSTEM
        for event in recorder.events
    )
    return [(type(event).__name__, event.actor.user_id) for event in recorder.events]


def test_a_member_who_joins_through_an_invitation_is_the_actor_of_both_events(
    engine: sa.Engine, membership: MembershipService, recorder: EventRecorder, clock: FrozenClock
) -> None:
    """Accepting records ``MemberAdded`` and ``InvitationAccepted`` with the joining user as actor."""
    invites = InvitationService(membership=membership, secret_keys=["k" * 32], clock=clock)
    with tenantkit.transaction(engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        link = invites.create_link_invitation(session, ORG, ["example.com"], actor="alice")
    recorder.clear()
    with tenantkit.transaction(engine) as session:
        invites.accept(
            session,
            link.token.get_secret_value(),
            user_id="nora",
            email="nora@example.com",
            email_verified=True,
        )
    assert actors(recorder) == [("MemberAdded", "nora"), ("InvitationAccepted", "nora")]
    added = recorder.of_type(MemberAdded)[0]
    accepted = recorder.of_type(InvitationAccepted)[0]
    assert isinstance(added, MemberAdded)
    assert isinstance(accepted, InvitationAccepted)
    assert (added.user_id, added.role) == ("nora", Role.MEMBER)
    assert accepted.user_id == "nora"


def test_every_event_names_its_performer(
    engine: sa.Engine, membership: MembershipService, recorder: EventRecorder, clock: FrozenClock
) -> None:
    """Each service call records the actor it was given (``None`` for the host), for every kind of event."""
    keys = ApiKeyService(membership=membership, clock=clock)
    invites = InvitationService(membership=membership, secret_keys=["k" * 32], clock=clock)
    audit = AuditService(membership=membership, clock=clock)  # the erasure of an address is the host's
    with tenantkit.transaction(engine) as session:
        membership.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        membership.add(session, ORG, "adam", Role.ADMIN, actor="alice")
        membership.add(session, ORG, "mia", Role.MEMBER, actor="adam")
        membership.add(session, ORG, "max", Role.MEMBER, actor="adam")
        membership.change_role(session, ORG, "mia", Role.ADMIN, actor="alice")
        membership.remove(session, ORG, "max", actor="mia")
        membership.leave(session, ORG, actor="mia")
        membership.transfer_ownership(session, ORG, "adam", actor="alice")
        membership.transfer_ownership(session, ORG, "alice", actor=HOST, from_user_id="adam")
        key = keys.issue(session, ORG, "CI", actor="alice")
        keys.set_credits(session, ORG, key.id, 10, actor="adam")
        rotated = keys.rotate(session, ORG, key.id, actor="adam")
        keys.revoke(session, ORG, rotated.id, actor="alice")
        keys.delete(session, ORG, key.id, actor="adam")
        invitation = invites.create_email_invitation(session, ORG, "eve@example.com", actor="adam")
        invites.resend(session, ORG, invitation.invitation.id, actor="alice")
        invites.mark_sent(session, ORG, invitation.invitation.id, actor="adam")
        invites.revoke(session, ORG, invitation.invitation.id, actor=HOST)
        link = invites.create_link_invitation(session, ORG, ["example.com"], actor=HOST)
        invites.accept(
            session,
            link.token.get_secret_value(),
            user_id="nora",
            email="nora@example.com",
            email_verified=True,
        )
        verified = make_attributes({"npi": "1234567893"}, verified_by="nppes", verified_at=clock())
        membership.record_attributes(session, ORG, "nora", verified, actor="adam")
        membership.suspend(session, ORG, "nora", actor="adam")
        membership.resume(session, ORG, "nora", actor=HOST)
        departments = DepartmentService(membership=membership)
        ward = departments.create(session, ORG, "Ward 1", actor="alice")
        departments.update(session, ORG, ward.id, actor="adam", name="Ward 2")
        departments.add_member(session, ORG, ward.id, "nora", actor="adam")
        departments.remove_member(session, ORG, ward.id, "nora", actor=HOST)
        departments.delete(session, ORG, ward.id, actor="alice")
        audit.redact(session, email="eve@example.com")
        organizations = OrganizationService(membership=membership, audit=audit, clock=clock)
        organizations.update_settings(session, ORG, {"require_sso": True}, expected_version=0, actor="alice")
        organizations.erase_user(session, "nora")  # the erasure of a person is the host's
        membership.add(session, "org_gone", "gil", Role.OWNER, actor=HOST)
        organizations.delete_organization(session, "org_gone", actor="gil")
        roles = RoleService(membership)
        roles.create(session, ORG, "scribe", name="Scribe", rank=Role.MEMBER, actor="alice")
        roles.update(session, ORG, "scribe", name="Scribes", actor=HOST)
        roles.delete(session, ORG, "scribe", actor="alice")
        every_domain_and_sso_change(session, membership, ORG, "adam")
    assert actors(recorder) == [
        ("MemberAdded", None),
        ("MemberAdded", "alice"),
        ("MemberAdded", "adam"),
        ("MemberAdded", "adam"),
        ("MemberRoleChanged", "alice"),
        ("MemberRemoved", "mia"),
        ("MemberRemoved", "mia"),
        ("OwnershipTransferred", "alice"),
        ("OwnershipTransferred", None),
        ("ApiKeyIssued", "alice"),
        ("ApiKeyCreditsChanged", "adam"),
        ("ApiKeyRotated", "adam"),
        ("ApiKeyRevoked", "alice"),
        ("ApiKeyDeleted", "adam"),
        ("InvitationCreated", "adam"),
        ("InvitationResent", "alice"),
        ("InvitationMarkedSent", "adam"),
        ("InvitationRevoked", None),
        ("InvitationCreated", None),
        ("MemberAdded", "nora"),
        ("InvitationAccepted", "nora"),
        ("MemberAttributesRecorded", "adam"),
        ("MemberSuspended", "adam"),
        ("MemberResumed", None),
        ("DepartmentCreated", "alice"),
        ("DepartmentUpdated", "adam"),
        ("DepartmentMemberAdded", "adam"),
        ("DepartmentMemberRemoved", None),
        ("DepartmentDeleted", "alice"),
        ("PersonalDataRedacted", None),
        ("OrganizationSettingsChanged", "alice"),
        ("UserDataErased", None),
        ("MemberAdded", None),
        ("OrganizationDataDeleted", "gil"),
        ("RoleCreated", "alice"),
        ("RoleUpdated", None),
        ("RoleDeleted", "alice"),
        ("DomainAdded", "adam"),
        ("DomainVerified", "adam"),
        ("DomainFailed", None),  # the system's re-check
        ("DomainRemoved", "adam"),
        ("SsoConnectionCreated", "adam"),
        ("SsoConnectionUpdated", "adam"),
        ("SsoConnectionDeleted", "adam"),
    ]
    # Every kind of event tenantkit defines was seen above: a new one must be added to this test.
    # Webhook management's events name their performer in test_webhooks (every change audited).
    core = {cls for cls in Event.__subclasses__() if not cls.__module__.startswith("tenantkit.webhooks")}
    assert {type(event) for event in recorder.events} == core
