"""The policy an organization's settings set: the deployment's ceilings, which a document may only tighten.

Properties over any deployment and any document: the policy in force is never looser than the deployment's
on any setting, a document the write path accepts is in force exactly as chosen, and a document it refuses
names a setting that tightening had to clamp.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantkit import OrganizationDefaults, Role, SettingsDocument
from tenantkit.errors import InvalidSettingError, PolicyLimitError
from tenantkit.organizations import OrganizationPolicy
from tenantkit.organizations._document import covers

DAYS = st.integers(min_value=1, max_value=400).map(lambda days: timedelta(days=days))
DOMAINS = st.lists(
    st.sampled_from(
        ["example.com", "*.example.com", "a.example.com", "*.a.example.com", "other.org", "*.other.org"]
    ),
    min_size=1,
    max_size=3,
    unique=True,
).map(tuple)
NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


@st.composite
def deployments(draw: st.DrawFn) -> OrganizationPolicy:
    maximum = draw(DAYS)
    defaults = OrganizationDefaults(
        default_role=draw(st.sampled_from(["ADMIN", "MEMBER"])),
        link_domains=draw(st.none() | DOMAINS),
        api_key_max_lifetime=draw(st.none() | DAYS),
        api_keys_must_expire=draw(st.booleans()),
        require_sso=draw(st.booleans()),
    )
    default = draw(st.integers(min_value=1, max_value=maximum.days).map(lambda days: timedelta(days=days)))
    return OrganizationPolicy.deployment(defaults, invitation_default_ttl=default, invitation_max_ttl=maximum)


documents = st.builds(
    SettingsDocument,
    default_role=st.none() | st.sampled_from(["ADMIN", "MEMBER", "nurse"]),
    invitation_default_ttl=st.none() | DAYS,
    invitation_max_ttl=st.none() | DAYS,
    link_invitation_domains=st.none() | DOMAINS,
    api_key_max_lifetime=st.none() | DAYS,
    api_keys_must_expire=st.none() | st.booleans(),
    require_sso=st.none() | st.booleans(),
    link_invitations_verified_domains_only=st.none() | st.booleans(),
    auto_join=st.none() | st.booleans(),
)


def no_looser(policy: OrganizationPolicy, ceiling: OrganizationPolicy) -> None:
    assert policy.default_role.rank <= ceiling.default_role.rank
    assert policy.invitation_max_ttl <= ceiling.invitation_max_ttl
    assert policy.invitation_default_ttl <= policy.invitation_max_ttl
    if ceiling.link_domains is not None:
        assert policy.link_domains is not None
        assert all(covers(ceiling.link_domains, domain) for domain in policy.link_domains)
    if ceiling.api_key_max_lifetime is not None:
        assert policy.api_key_max_lifetime is not None
        assert policy.api_key_max_lifetime <= ceiling.api_key_max_lifetime
    assert policy.api_keys_must_expire >= ceiling.api_keys_must_expire
    assert policy.require_sso >= ceiling.require_sso
    assert policy.link_verified_domains_only >= ceiling.link_verified_domains_only


@given(deployments(), documents)
def test_the_policy_in_force_is_never_looser_than_the_deployment(
    ceiling: OrganizationPolicy, document: SettingsDocument
) -> None:
    """Whatever a document holds (even one stored before the ceiling was lowered), tightening clamps it."""
    no_looser(ceiling.tightened_by(document), ceiling)


@given(deployments(), documents)
def test_an_accepted_document_is_in_force_as_chosen(
    ceiling: OrganizationPolicy, document: SettingsDocument
) -> None:
    """A document with nothing refused gets every choice it made; a refused one names clamped settings."""
    refused = ceiling.looser_settings(document)
    policy = ceiling.tightened_by(document)
    if not refused:
        if document.default_role == "nurse":
            assert (policy.default_role, policy.default_custom_role) == (ceiling.default_role, "nurse")
        elif document.default_role is not None:
            assert policy.default_role.value == document.default_role
            assert policy.default_custom_role is None
        for key in ("invitation_max_ttl", "invitation_default_ttl", "api_key_max_lifetime"):
            if getattr(document, key) is not None:
                assert getattr(policy, key) == getattr(document, key)
        if document.link_invitation_domains is not None:
            assert policy.link_domains == document.link_invitation_domains
    # Auto-join is the organization's opt-in, not a ceiling: in force exactly as chosen, off by default.
    assert policy.auto_join is bool(document.auto_join)
    for error in refused:
        assert isinstance(error, PolicyLimitError)
        assert getattr(document, error.field) is not None


@given(deployments(), documents)
def test_tightening_twice_changes_nothing(ceiling: OrganizationPolicy, document: SettingsDocument) -> None:
    """Tightening is idempotent: the policy in force is a fixed point."""
    once = ceiling.tightened_by(document)
    assert once.tightened_by(document) == once


@given(deployments(), st.none() | DAYS)
def test_a_key_is_refused_exactly_when_the_policy_says(
    ceiling: OrganizationPolicy, lifetime: timedelta | None
) -> None:
    """A key without expiry passes only where keys need not expire; one expiring only within the maximum."""
    expires_at = None if lifetime is None else NOW + lifetime
    should_refuse = (
        ceiling.api_keys_must_expire
        if lifetime is None
        else ceiling.api_key_max_lifetime is not None and lifetime > ceiling.api_key_max_lifetime
    )
    if should_refuse:
        with pytest.raises(PolicyLimitError):
            ceiling.check_key_expiry(expires_at, NOW)
    else:
        ceiling.check_key_expiry(expires_at, NOW)


class TestCovers:
    @pytest.mark.parametrize(
        ("allowed", "domain", "covered"),
        [
            (("example.com",), "example.com", True),
            (("example.com",), "a.example.com", False),
            (("*.example.com",), "a.example.com", True),
            (("*.example.com",), "*.a.example.com", True),
            (("*.example.com",), "*.example.com", True),
            (("*.example.com",), "example.com", False),
            (("a.example.com",), "*.a.example.com", False),
        ],
    )
    def test_a_pattern_is_covered_when_it_lets_in_nobody_new(
        self, allowed: tuple[str, ...], domain: str, covered: bool
    ) -> None:
        """A wildcard is covered only by a wildcard at or above it; a name by itself or a wildcard above."""
        assert covers(allowed, domain) is covered


class TestTheDocumentModel:
    def test_unknown_keys_are_refused(self) -> None:
        """The base model forbids keys it does not declare."""
        with pytest.raises(ValueError, match="Extra inputs"):
            SettingsDocument.model_validate({"nope": 1})

    def test_owner_is_never_a_default_role(self) -> None:
        """New members never become OWNER by default."""
        with pytest.raises(ValueError, match="default_role"):
            SettingsDocument(default_role="OWNER")

    def test_a_deployment_model_must_derive_from_the_base(self) -> None:
        """``OrganizationDefaults(document=...)`` takes a ``SettingsDocument`` subclass or its import path."""
        with pytest.raises(InvalidSettingError):
            OrganizationDefaults(document=dict)
        assert (
            OrganizationDefaults(document="tenantkit.organizations:SettingsDocument").document
            is SettingsDocument
        )

    def test_the_default_role_is_a_rank_or_a_role_key(self) -> None:
        """``default_role`` is a rank's name in any case, or a custom role's key as it is spelled."""
        assert SettingsDocument(default_role="member").default_role == Role.MEMBER.value
        assert SettingsDocument(default_role=Role.ADMIN).default_role == Role.ADMIN.value
        assert SettingsDocument(default_role=" nurse ").default_role == "nurse"

    @pytest.mark.parametrize("value", ["Nurse", "charge nurse", "", "x" * 65, "-nurse"])
    def test_a_default_role_that_is_no_role_key_is_refused(self, value: str) -> None:
        """A value that is neither a rank nor shaped like a role key is refused when the document is built."""
        with pytest.raises(ValueError, match="default_role"):
            SettingsDocument(default_role=value)

    def test_a_custom_default_stays_within_the_ceiling_rank(self) -> None:
        """A custom role's key is kept as the default beside the ceiling's rank, which bounds it; a rank
        chosen afterwards replaces it."""
        ceiling = OrganizationPolicy(default_role=Role.ADMIN)
        policy = ceiling.tightened_by(SettingsDocument(default_role="nurse"))
        assert (policy.default_role, policy.default_custom_role) == (Role.ADMIN, "nurse")
        assert ceiling.looser_settings(SettingsDocument(default_role="nurse")) == []
        assert policy.as_dict()["default_custom_role"] == "nurse"
        again = policy.tightened_by(SettingsDocument(default_role="MEMBER"))
        assert (again.default_role, again.default_custom_role) == (Role.MEMBER, None)
