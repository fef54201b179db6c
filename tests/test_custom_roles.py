"""Custom roles and the permission registry: the escalation rule on every path that grants, role definitions,
deleting roles, the Authorizer hook and the permission cache. Database tests run on SQLite, PostgreSQL and
MariaDB (the ``engine`` fixture).

The hospital below: ``records:read`` is held by ADMIN and OWNER; ``orders:sign`` by nobody's rank, so only
the host (or a member who already holds it through a role) can hand it out.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tenantkit import (
    HOST,
    AccessRequest,
    Action,
    CustomRole,
    EffectivePermissions,
    PermissionRegistry,
    Permissions,
    Role,
    TenantKit,
)
from tenantkit._invalidation import CacheKey
from tenantkit.errors import (
    InvalidInputError,
    InviterNoLongerAllowedError,
    PermissionDeniedError,
    PermissionEscalationError,
    RoleEscalationError,
    RoleExistsError,
    RoleInUseError,
    RoleNotFoundError,
    UnknownPermissionError,
    UnknownRoleError,
)
from tenantkit.events import MemberRoleChanged, RoleDeleted
from tenantkit.invitations import InvitationSettings
from tenantkit.roles._store import PermissionCache
from tenantkit.tables import custom_roles, team_members
from tenantkit.testing import EventRecorder, FrozenClock

ORG = "org_1"
REGISTRY = PermissionRegistry({"records:read": "Read patient records", "orders:sign": "Sign orders"})
PHYSICIAN = CustomRole(
    key="physician",
    name="Physician",
    rank=Role.MEMBER,
    permissions=frozenset({"records:read", "orders:sign"}),
)
NURSE = CustomRole(key="nurse", name="Nurse", rank=Role.MEMBER, permissions=frozenset({"records:read"}))
POLICY = Permissions(registry=REGISTRY, roles=[PHYSICIAN, NURSE]).with_actions("records:read", Role.ADMIN)


def hospital_kit(clock: FrozenClock, permissions: Permissions = POLICY, **options: object) -> TenantKit:
    return TenantKit(
        clock=clock,
        permissions=permissions,
        invitations=InvitationSettings(secret_keys=["s" * 32]),
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
def kit(clock: FrozenClock) -> TenantKit:
    return hospital_kit(clock)


@pytest.fixture
def hospital(engine: sa.Engine, kit: TenantKit) -> sa.Engine:
    """ORG with OWNER ``owner``, ADMIN ``admin``, MEMBER ``member``, and a stored role ``charge_nurse``
    (MEMBER rank, may invite, reads records) held by ``charge``."""
    with kit.transaction(engine) as s:
        kit.members.add(s, ORG, "owner", Role.OWNER, actor=HOST)
        kit.members.add(s, ORG, "admin", Role.ADMIN, actor="owner")
        kit.members.add(s, ORG, "member", actor="owner")
        kit.roles.create(
            s,
            ORG,
            "charge_nurse",
            name="Charge nurse",
            rank=Role.MEMBER,
            permissions=["members:invite", "records:read"],
            actor="owner",
        )
        kit.members.add(s, ORG, "charge", "charge_nurse", actor="owner")
    return engine


def rows(engine: sa.Engine) -> list[tuple[str, str, str | None]]:
    """Every membership of ORG as (user, rank, custom role), by user."""
    with engine.connect() as connection:
        result = connection.execute(
            sa.select(team_members.c.user_id, team_members.c.role, team_members.c.custom_role)
            .where(team_members.c.organization_id == ORG)
            .order_by(team_members.c.user_id)
        )
        return [(user, str(getattr(rank, "value", rank)), custom) for user, rank, custom in result]


class TestRegistry:
    def test_built_in_actions_are_always_declared(self) -> None:
        """A registry holds every ``Action`` plus the host's names, with their descriptions."""
        assert {action.value for action in Action} <= REGISTRY.names
        assert "orders:sign" in REGISTRY
        assert REGISTRY.describe("orders:sign") == "Sign orders"

    @pytest.mark.parametrize("name", ["Orders:Sign", "orders", "orders sign", "", ":read", "a:" + "b" * 100])
    def test_malformed_names_are_refused(self, name: str) -> None:
        """A permission is lower-case words joined by ``:``; anything else is refused when declared."""
        with pytest.raises(InvalidInputError):
            PermissionRegistry([name])

    def test_a_typo_is_refused_by_every_check(self) -> None:
        """With a registry, ``can``, ``require`` and ``with_actions`` refuse an undeclared name."""
        for call in (
            lambda: POLICY.can(Role.OWNER, "orders:sing"),
            lambda: POLICY.require(Role.OWNER, "orders:sing"),
            lambda: POLICY.with_actions("orders:sing", Role.ADMIN),
        ):
            with pytest.raises(UnknownPermissionError) as refused:
                call()
            assert refused.value.permission == "orders:sing"

    def test_without_a_registry_checks_stay_lenient(self) -> None:
        """Without a declared registry an unknown action is simply not held (as before registries existed)."""
        assert Permissions().can(Role.OWNER, "reports:export") is False

    def test_the_table_must_use_declared_names(self) -> None:
        """A table naming an undeclared permission is refused when the policy is built."""
        with pytest.raises(UnknownPermissionError):
            Permissions({Role.OWNER: ["orders:sing"]}, registry=REGISTRY)

    def test_roles_manage_is_the_owners_unless_the_host_widens_it(self) -> None:
        """``roles:manage`` is OWNER-only by default; ``with_actions`` gives it to ADMIN."""
        assert [POLICY.can(role, Action.MANAGE_ROLES) for role in Role] == [True, False, False]
        widened = POLICY.with_actions(Action.MANAGE_ROLES, Role.ADMIN)
        assert [widened.can(role, Action.MANAGE_ROLES) for role in Role] == [True, True, False]
        assert widened.roles == POLICY.roles


class TestRoleDefinitions:
    @pytest.mark.parametrize("action", [Action.DELETE_ORGANIZATION, Action.TRANSFER_OWNERSHIP])
    def test_owner_only_actions_cannot_be_in_a_custom_role(self, action: Action) -> None:
        """Deleting or handing over the organization stays the OWNER rank's: no custom role may carry it."""
        role = CustomRole(key="deputy", name="Deputy", rank=Role.ADMIN, permissions=frozenset({action.value}))
        with pytest.raises(InvalidInputError, match="OWNER"):
            Permissions(roles=[role])

    def test_a_custom_role_never_sits_in_owner(self) -> None:
        """A custom role's rank is ADMIN or MEMBER."""
        with pytest.raises(ValueError, match="never OWNER"):
            CustomRole(key="boss", name="Boss", rank=Role.OWNER)

    @pytest.mark.parametrize("key", ["Physician", "owner", "admin", "1st", "a b", "x" * 65])
    def test_keys_are_stable_slugs_and_not_rank_names(self, key: str) -> None:
        """A key is a lower-case slug and never a rank's name (which would make "admin" ambiguous)."""
        with pytest.raises(ValueError, match="a role key is"):
            CustomRole(key=key, name="X", rank=Role.MEMBER)

    def test_deployment_roles_are_checked_against_the_registry(self) -> None:
        """A deployment-wide role naming an undeclared permission is refused at configuration time."""
        typo = CustomRole(
            key="scribe", name="Scribe", rank=Role.MEMBER, permissions=frozenset({"recrods:read"})
        )
        with pytest.raises(UnknownPermissionError):
            Permissions(registry=REGISTRY, roles=[typo])

    def test_effective_permissions_are_the_rank_plus_the_role(self) -> None:
        """A physician holds MEMBER's actions and the role's own, and nothing of ADMIN's."""
        held = POLICY.effective(Role.MEMBER, PHYSICIAN)
        assert held.permissions == POLICY.actions(Role.MEMBER) | {"records:read", "orders:sign"}
        assert not held.allows(Action.INVITE_MEMBERS)
        assert held.label == "MEMBER/physician"


class TestTheEscalationRule:
    def test_the_rule_names_what_the_actor_lacks(self) -> None:
        """``require_may_grant`` refuses permissions the actor lacks, listing them; the host passes."""
        admin = POLICY.effective(Role.ADMIN)
        with pytest.raises(PermissionEscalationError) as refused:
            POLICY.require_may_grant(admin, POLICY.effective(Role.MEMBER, PHYSICIAN))
        assert refused.value.missing == ("orders:sign",)
        assert isinstance(refused.value, RoleEscalationError)
        POLICY.require_may_grant(admin, POLICY.effective(Role.MEMBER, NURSE))
        POLICY.require_may_grant(None, POLICY.effective(Role.OWNER))
        with pytest.raises(RoleEscalationError):
            POLICY.require_may_grant(admin, POLICY.effective(Role.OWNER))

    def test_adding_a_member_with_a_role_the_actor_cannot_grant_writes_nothing(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """An ADMIN adds a nurse (it reads records) but not a physician (it cannot sign orders)."""
        with kit.transaction(hospital) as s:
            kit.members.add(s, ORG, "nina", "nurse", actor="admin")
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.members.add(s, ORG, "paul", "physician", actor="admin")
        with kit.transaction(hospital) as s:
            kit.members.add(s, ORG, "hank", "physician", actor=HOST)
        assert ("nina", "MEMBER", "nurse") in rows(hospital)
        assert ("hank", "MEMBER", "physician") in rows(hospital)
        assert "paul" not in [user for user, _, _ in rows(hospital)]

    def test_a_custom_role_grants_no_more_than_it_holds(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """A charge nurse (MEMBER rank, may invite) adds nurses, never physicians, never an ADMIN."""
        with kit.transaction(hospital) as s:
            kit.members.add(s, ORG, "nina", "nurse", actor="charge")
        for role, error in (("physician", PermissionEscalationError), (Role.ADMIN, RoleEscalationError)):
            with pytest.raises(error), kit.transaction(hospital) as s:
                kit.members.add(s, ORG, "x", role, actor="charge")

    def test_changing_a_role_follows_the_same_rule(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """Promoting to a role carrying an ungranted permission is refused; taking a custom role away (back to
        the rank) is allowed within the rank rules."""
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.members.change_role(s, ORG, "member", "physician", actor="admin")
        with kit.transaction(hospital) as s:
            changed = kit.members.change_role(s, ORG, "member", "nurse", actor="admin")
            assert (changed.role, changed.custom_role) == (Role.MEMBER, "nurse")
            kit.members.change_role(s, ORG, "charge", Role.MEMBER, actor="admin")
        assert ("charge", "MEMBER", None) in rows(hospital)

    def test_no_one_gives_themself_a_role_they_could_not_grant(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """An ADMIN cannot make itself a physician; the charge nurse cannot step up to ADMIN."""
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.members.change_role(s, ORG, "admin", "physician", actor="admin")

    def test_an_invitation_offers_only_what_the_inviter_holds(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """Email and link invitations to a role with an ungranted permission are refused; the host may."""
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.invitations.create_email_invitation(s, ORG, "p@example.com", "physician", actor="admin")
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.invitations.create_link_invitation(s, ORG, ["example.com"], "physician", actor="charge")
        with kit.transaction(hospital) as s:
            created = kit.invitations.create_email_invitation(
                s, ORG, "p@example.com", "physician", actor=HOST
            )
        assert created.invitation.custom_role == "physician"

    def test_accepting_rechecks_the_inviter_against_the_role_as_it_is_now(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """A charge nurse invites a nurse; once the charge nurse role no longer reads records, accepting the
        invitation is refused and nobody joins. Accepted in time, the invitee holds the custom role."""
        with kit.transaction(hospital) as s:
            first = kit.invitations.create_email_invitation(s, ORG, "n1@example.com", "nurse", actor="charge")
            second = kit.invitations.create_email_invitation(
                s, ORG, "n2@example.com", "nurse", actor="charge"
            )
            accepted = kit.invitations.accept(
                s, first.token.get_secret_value(), user_id="n1", email="n1@example.com", email_verified=True
            )
        assert accepted.invitation_custom_role == "nurse"
        assert ("n1", "MEMBER", "nurse") in rows(hospital)
        with kit.transaction(hospital) as s:
            kit.roles.update(s, ORG, "charge_nurse", permissions=["members:invite"], actor="owner")
        with pytest.raises(InviterNoLongerAllowedError, match="records:read"), kit.transaction(hospital) as s:
            kit.invitations.accept(
                s, second.token.get_secret_value(), user_id="n2", email="n2@example.com", email_verified=True
            )
        assert "n2" not in [user for user, _, _ in rows(hospital)]

    def test_transfer_demotes_only_to_a_role_the_owner_could_grant(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """Handing over and stepping down to a physician is a grant to oneself: refused, nothing changed;
        stepping down to a nurse is fine, and the new OWNER holds no custom role."""
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.members.transfer_ownership(s, ORG, "charge", actor="owner", demote_to="physician")
        with kit.transaction(hospital) as s:
            new_owner = kit.members.transfer_ownership(s, ORG, "charge", actor="owner", demote_to="nurse")
        assert (new_owner.role, new_owner.custom_role) == (Role.OWNER, None)
        assert ("charge", "OWNER", None) in rows(hospital)
        assert ("owner", "MEMBER", "nurse") in rows(hospital)

    def test_api_key_scopes_are_grants_once_a_registry_exists(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """An ADMIN may mint a key scoped ``records:read`` but not ``orders:sign``, nor an undeclared scope; a
        lead who holds ``orders:sign`` may, and a plain ADMIN may not rotate that key (rotating re-grants)."""
        with kit.transaction(hospital) as s:
            kit.api_keys.issue(s, ORG, "ehr", actor="admin", scopes=["records:read"])
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.api_keys.issue(s, ORG, "orders", actor="admin", scopes=["orders:sign"])
        with pytest.raises(UnknownPermissionError), kit.transaction(hospital) as s:
            kit.api_keys.issue(s, ORG, "typo", actor="admin", scopes=["records:raed"])
        with kit.transaction(hospital) as s:
            kit.roles.create(
                s, ORG, "lead", name="Lead", rank=Role.ADMIN, permissions=["orders:sign"], actor=HOST
            )
            kit.members.add(s, ORG, "lead1", "lead", actor=HOST)
            issued = kit.api_keys.issue(s, ORG, "orders", actor="lead1", scopes=["orders:sign"])
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.api_keys.rotate(s, ORG, issued.id, actor="admin")
        with kit.transaction(hospital) as s:
            kit.api_keys.rotate(s, ORG, issued.id, actor="lead1")

    def test_without_a_registry_scopes_stay_free_form(self, engine: sa.Engine, clock: FrozenClock) -> None:
        """Scopes of a kit without a declared registry are labels, as before: no permission check on them."""
        kit = hospital_kit(clock, Permissions())
        with kit.transaction(engine) as s:
            kit.members.add(s, ORG, "owner", Role.OWNER, actor=HOST)
            kit.api_keys.issue(s, ORG, "ci", actor="owner", scopes=["anything:goes"])


class TestManagingRoles:
    def test_only_roles_manage_holders_define_roles(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """An ADMIN may not define roles unless the host gives ADMIN ``roles:manage``."""
        with pytest.raises(PermissionDeniedError), kit.transaction(hospital) as s:
            kit.roles.create(s, ORG, "scribe", name="Scribe", rank=Role.MEMBER, actor="admin")
        widened = hospital_kit(FrozenClock(kit.clock()), POLICY.with_actions(Action.MANAGE_ROLES, Role.ADMIN))
        with widened.transaction(hospital) as s:
            widened.roles.create(s, ORG, "scribe", name="Scribe", rank=Role.MEMBER, actor="admin")
        with pytest.raises(PermissionEscalationError), widened.transaction(hospital) as s:
            widened.roles.create(
                s, ORG, "signer", name="Signer", rank=Role.MEMBER, permissions=["orders:sign"], actor="admin"
            )

    def test_definitions_are_validated(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """Unknown or OWNER-only permissions, an OWNER rank, or a taken key are refused, writing nothing."""
        attempts: list[tuple[type[Exception], dict[str, object]]] = [
            (UnknownPermissionError, {"key": "a", "rank": "MEMBER", "permissions": ["records:raed"]}),
            (InvalidInputError, {"key": "b", "rank": "MEMBER", "permissions": ["organization:delete"]}),
            (InvalidInputError, {"key": "c", "rank": "OWNER"}),
            (RoleExistsError, {"key": "nurse", "rank": "MEMBER"}),
            (RoleExistsError, {"key": "charge_nurse", "rank": "MEMBER"}),
        ]
        for error, fields in attempts:
            with pytest.raises(error), kit.transaction(hospital) as s:
                kit.roles.create(s, ORG, name="X", actor="owner", **fields)  # type: ignore[arg-type]
        with hospital.connect() as connection:
            assert connection.execute(sa.select(custom_roles.c.key)).scalars().all() == ["charge_nurse"]

    def test_editing_a_role_you_hold_is_a_grant_to_yourself(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """With ``roles:manage`` through its own role, the holder may remove permissions from that role but
        not add one it lacks; renaming keeps the key."""
        manager = CustomRole(
            key="manager",
            name="Manager",
            rank=Role.ADMIN,
            permissions=frozenset({"roles:manage", "records:read"}),
        )
        policy = Permissions(registry=REGISTRY, roles=[PHYSICIAN, NURSE, manager]).with_actions(
            "records:read", Role.ADMIN
        )
        managing = hospital_kit(FrozenClock(kit.clock()), policy)
        with managing.transaction(hospital) as s:
            managing.members.add(s, ORG, "boss", "manager", actor=HOST)
            managing.roles.create(
                s, ORG, "ward", name="Ward", rank=Role.ADMIN, permissions=["records:read"], actor="boss"
            )
            managing.members.change_role(s, ORG, "boss", "ward", actor="owner")
        # boss now holds "ward" (ADMIN + records:read) and has lost roles:manage: it cannot edit anything.
        with pytest.raises(PermissionDeniedError), managing.transaction(hospital) as s:
            managing.roles.update(s, ORG, "ward", permissions=["records:read", "orders:sign"], actor="boss")
        with managing.transaction(hospital) as s:
            managing.roles.update(s, ORG, "ward", permissions=["records:read", "roles:manage"], actor="owner")
        with pytest.raises(PermissionEscalationError), managing.transaction(hospital) as s:
            managing.roles.update(s, ORG, "ward", permissions=["roles:manage", "orders:sign"], actor="boss")
        with managing.transaction(hospital) as s:
            renamed = managing.roles.update(
                s, ORG, "ward", name="Ward lead", permissions=["roles:manage"], actor="boss"
            )
        assert (renamed.key, renamed.name, renamed.permissions) == (
            "ward",
            "Ward lead",
            frozenset({"roles:manage"}),
        )

    def test_deployment_roles_are_read_only_here(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """Deployment-wide roles are listed with the organization's, but edited only in the host's code."""
        with kit.transaction(hospital) as s:
            listed = kit.roles.list_roles(s, ORG, actor="member")
            with pytest.raises(InvalidInputError, match="deployment-wide"):
                kit.roles.update(s, ORG, "nurse", name="RN", actor="owner")
            with pytest.raises(RoleNotFoundError):
                kit.roles.get(s, ORG, "ghost", actor="member")
        assert [(role.key, role.deployment_wide) for role in listed] == [
            ("nurse", True),
            ("physician", True),
            ("charge_nurse", False),
        ]

    def test_unknown_roles_are_refused_when_assigning(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """A name that is neither a rank nor a role of this organization is an ``UnknownRoleError``."""
        with pytest.raises(UnknownRoleError), kit.transaction(hospital) as s:
            kit.members.add(s, ORG, "x", "surgeon", actor="owner")
        with pytest.raises(UnknownRoleError), kit.transaction(hospital) as s:
            kit.members.add(s, "org_2", "x", "charge_nurse", actor=HOST)

    def test_member_listings_show_the_custom_role(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """Members list with their custom role, and can be filtered by it."""
        with kit.transaction(hospital) as s:
            page = kit.members.list_members(s, ORG, actor="member", custom_role="charge_nurse")
        assert [(member.user_id, member.role, member.custom_role) for member in page.items] == [
            ("charge", Role.MEMBER, "charge_nurse")
        ]


class TestDeletingRoles:
    def test_a_held_role_is_refused_with_the_count(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """Deleting a role that one member holds and one pending invitation offers is refused with both
        counts; nothing changes."""
        with kit.transaction(hospital) as s:
            kit.invitations.create_email_invitation(s, ORG, "c@example.com", "charge_nurse", actor="owner")
        with pytest.raises(RoleInUseError) as refused, kit.transaction(hospital) as s:
            kit.roles.delete(s, ORG, "charge_nurse", actor="owner")
        assert (refused.value.members, refused.value.invitations) == (1, 1)
        assert ("charge", "MEMBER", "charge_nurse") in rows(hospital)

    def test_reassign_moves_holders_and_invitations_in_one_transaction(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """With ``reassign_to``, holders and pending invitations move to the new role (each holder's change
        recorded), the role goes, and no membership is deleted."""
        recorder = EventRecorder()
        kit.subscribe(recorder)
        with kit.transaction(hospital) as s:
            invited = kit.invitations.create_email_invitation(
                s, ORG, "c@example.com", "charge_nurse", actor="owner"
            )
            moved = kit.roles.delete(s, ORG, "charge_nurse", actor="owner", reassign_to="nurse")
            invitation = kit.invitations.get(s, ORG, invited.invitation.id, actor="owner")
        assert moved == 1
        assert ("charge", "MEMBER", "nurse") in rows(hospital)
        assert len(rows(hospital)) == 4
        assert invitation.custom_role == "nurse"
        changed = [event for event in recorder.events if isinstance(event, MemberRoleChanged)]
        assert [(e.user_id, e.old_custom_role, e.new_custom_role) for e in changed] == [
            ("charge", "charge_nurse", "nurse")
        ]
        assert [e.reassigned_to for e in recorder.events if isinstance(e, RoleDeleted)] == ["nurse"]

    def test_reassigning_is_a_grant_too(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """Reassigning holders to a role the actor could not grant is refused, leaving the role in place."""
        with pytest.raises(PermissionEscalationError), kit.transaction(hospital) as s:
            kit.roles.delete(s, ORG, "charge_nurse", actor="owner", reassign_to="physician")
        with pytest.raises(InvalidInputError), kit.transaction(hospital) as s:
            kit.roles.delete(s, ORG, "charge_nurse", actor="owner", reassign_to="charge_nurse")
        assert ("charge", "MEMBER", "charge_nurse") in rows(hospital)

    def test_an_unused_role_is_deleted(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """A role nobody holds goes at once; deleting it again is ``RoleNotFoundError``."""
        with kit.transaction(hospital) as s:
            kit.members.change_role(s, ORG, "charge", Role.MEMBER, actor="owner")
            assert kit.roles.delete(s, ORG, "charge_nurse", actor="owner") == 0
        with pytest.raises(RoleNotFoundError), kit.transaction(hospital) as s:
            kit.roles.delete(s, ORG, "charge_nurse", actor="owner")


class TestPermissionChecks:
    def test_custom_permissions_authorize_their_holders(self, hospital: sa.Engine, kit: TenantKit) -> None:
        """A physician may sign orders; a nurse, an ADMIN and an OWNER may not; a typo is refused."""
        with kit.transaction(hospital) as s:
            kit.members.add(s, ORG, "doc", "physician", actor=HOST)
            assert kit.members.authorize(s, ORG, "doc", "orders:sign") is Role.MEMBER
            assert kit.members.authorize(s, ORG, "charge", "records:read") is Role.MEMBER
            for user in ("admin", "owner", "member"):
                with pytest.raises(PermissionDeniedError):
                    kit.members.authorize(s, ORG, user, "orders:sign")
            with pytest.raises(UnknownPermissionError):
                kit.members.authorize(s, ORG, "doc", "orders:sing")

    def test_editing_a_role_evicts_its_holders_cached_permissions(
        self, hospital: sa.Engine, kit: TenantKit
    ) -> None:
        """A permission removed from a role stops authorizing its holders at once in this process."""
        with kit.transaction(hospital) as s:
            assert kit.members.authorize(s, ORG, "charge", "records:read") is Role.MEMBER
            kit.roles.update(s, ORG, "charge_nurse", permissions=["members:invite"], actor="owner")
        with kit.transaction(hospital) as s, pytest.raises(PermissionDeniedError):
            kit.members.authorize(s, ORG, "charge", "records:read")

    def test_the_cache_lives_for_its_ttl(self, hospital: sa.Engine, clock: FrozenClock) -> None:
        """Another process's change reaches a cached answer within the TTL; with no TTL, at once."""
        writer = hospital_kit(clock)
        cached = hospital_kit(clock, permission_cache_ttl=timedelta(hours=1))
        uncached = hospital_kit(clock, permission_cache_ttl=None)
        with cached.transaction(hospital) as s:
            cached.members.authorize(s, ORG, "charge", "records:read")
        with writer.transaction(hospital) as s:
            writer.roles.update(s, ORG, "charge_nurse", permissions=["members:invite"], actor="owner")
        with cached.transaction(hospital) as s:
            assert cached.members.authorize(s, ORG, "charge", "records:read") is Role.MEMBER
            with pytest.raises(PermissionDeniedError):
                uncached.members.authorize(s, ORG, "charge", "records:read")
        cached.events.caches.clear()
        with cached.transaction(hospital) as s, pytest.raises(PermissionDeniedError):
            cached.members.authorize(s, ORG, "charge", "records:read")


class TestAuthorizer:
    def test_an_external_engine_decides_with_what_tenantkit_knows(
        self, hospital: sa.Engine, clock: FrozenClock
    ) -> None:
        """The authorizer is asked with the actor, action, organization, resource and membership; its
        "deny" is a ``PermissionDeniedError``, its "allow" lets a change through."""
        asked: list[AccessRequest] = []

        class OnlyWeekdays:
            def authorize(self, request: AccessRequest) -> bool:
                asked.append(request)
                return request.actor.user_id != "admin"

        kit = hospital_kit(clock, authorizer=OnlyWeekdays())
        with kit.transaction(hospital) as s:
            kit.members.remove(s, ORG, "member", actor="owner")
            with pytest.raises(PermissionDeniedError):
                kit.members.authorize(s, ORG, "admin", Action.READ_MEMBERS)
        removal = asked[0]
        assert (removal.action, removal.organization_id, removal.resource) == (
            "members:remove",
            ORG,
            "member:member",
        )
        assert isinstance(removal.membership, EffectivePermissions)
        assert removal.membership.rank is Role.OWNER

    def test_an_authorizer_cannot_admit_a_non_member_or_widen_grants(
        self, hospital: sa.Engine, clock: FrozenClock
    ) -> None:
        """Even an authorizer that allows everything lets no stranger act, and no member grant more than it
        holds: the escalation rule stays tenantkit's."""

        class AllowAll:
            def authorize(self, request: AccessRequest) -> bool:
                return True

        kit = hospital_kit(clock, authorizer=AllowAll())
        with kit.transaction(hospital) as s:
            with pytest.raises(PermissionDeniedError):
                kit.members.authorize(s, ORG, "stranger", Action.READ_MEMBERS)
            assert kit.members.authorize(s, ORG, "member", Action.REMOVE_MEMBERS) is Role.MEMBER
            with pytest.raises(PermissionEscalationError):
                kit.members.add(s, ORG, "p", "physician", actor="admin")


class TestPermissionCache:
    def test_entries_are_per_schema_and_evicted_by_member_or_role(self) -> None:
        """One organization id in two schemas is two entries; a member's key evicts both, a role's key
        evicts its holders only, and an entry ages out after the TTL."""
        cache = PermissionCache(ttl=60)
        nurse = POLICY.effective(Role.MEMBER, NURSE)
        cache.put(ORG, "ann", nurse, "tenant_a")
        cache.put(ORG, "ann", None, "tenant_b")
        cache.put(ORG, "bob", POLICY.effective(Role.ADMIN), "tenant_a")
        assert cache.get(ORG, "ann", "tenant_a") == (True, nurse)
        assert cache.get(ORG, "ann", "tenant_b") == (True, None)

        cache.invalidate([CacheKey.role(ORG, "nurse")])
        assert cache.get(ORG, "ann", "tenant_a") == (False, None)
        assert cache.get(ORG, "bob", "tenant_a")[0]

        cache.put(ORG, "ann", nurse, "tenant_a")
        cache.invalidate([CacheKey.member(ORG, "ann")])
        assert cache.get(ORG, "ann", "tenant_a") == (False, None)
        assert cache.get(ORG, "ann", "tenant_b") == (False, None)

        expired = PermissionCache(ttl=-1)
        expired.put(ORG, "ann", nurse)
        assert expired.get(ORG, "ann") == (False, None)
