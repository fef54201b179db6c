"""Invitations that require something of the invitee, and the host's accept policy that decides.

An invitation may carry **requirements**: a small JSON object whose meaning is the host's
(``{"credential_types": ["MD", "DO"], "npi_required": true, "licence_states": ["CA"]}``). tenantkit
stores and shows them, and hands them, with the **claims** the host presents for the accepting user, to
the host's :class:`AcceptPolicy` inside :meth:`~tenantkit.InvitationService.accept`: in its transaction,
while the invitation's row is locked. The policy answers with an :class:`Approval` (what it verified,
stored on the new membership as :class:`~tenantkit.members.MemberAttributes`) or a :class:`Denial`
(raised as :class:`~tenantkit.errors.AcceptanceDeniedError`; nothing changes).

A policy decides from what it is given: it must not call a network service (a licence registry) while the
row lock is held. A host that verifies online does so before calling ``accept()`` and presents the result
as claims.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from tenantkit._errors import ConfigurationError, InvalidInputError
from tenantkit.members._attributes import AttributeValue
from tenantkit.roles._policy import Role

MAX_REQUIREMENTS_BYTES = 4096
"""The largest requirements object, as compact JSON."""
MAX_CLAIMS_BYTES = 16384
"""The largest set of claims a host may present, as compact JSON."""

Requirements = Mapping[str, Any]
"""An invitation's requirements: a JSON object, interpreted by the host's :class:`AcceptPolicy`."""


@dataclass(frozen=True)
class AcceptContext:
    """What an :class:`AcceptPolicy` decides on.

    Attributes:
        organization_id: The organization the invitation is into.
        invitation_id: The invitation.
        role: The role it offers.
        requirements: Its requirements (validated by the policy when the invitation was created).
        user_id: The accepting user.
        email: The user's verified address, in canonical form.
        claims: What the host presents for the user: from its identity provider's token, or from a check it
            ran before calling ``accept()`` (a licence registry). Never read from the request body by
            tenantkit's adapters.
        now: The service clock's current time: the moment the decision is taken.
    """

    organization_id: str
    invitation_id: str
    role: Role
    requirements: Requirements
    user_id: str
    email: str
    claims: Mapping[str, Any]
    now: datetime


@dataclass(frozen=True)
class Approval:
    """The policy's yes, with what it verified; stored on the membership.

    Attributes:
        verified_by: What verified it (``"tenantkit.credentials.LicencePolicy"``, ``"nppes"``).
        attributes: The verified attributes to store (flat, scalars only).
        expires_at: When the verification lapses (a licence's expiry), or ``None``.
    """

    verified_by: str
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Denial:
    """The policy's no: ``reason`` is shown to the invitee, ``requirement`` names what failed."""

    reason: str
    requirement: str | None = None


@runtime_checkable
class AcceptPolicy(Protocol):
    """The host's rule for invitations that carry requirements.

    ``validate`` runs when such an invitation is created: it returns the requirements to store (normalized)
    or raises :class:`~tenantkit.InvalidInputError`. ``decide`` runs when one is accepted, inside the
    acceptance's transaction and row lock; it must be quick and must not do network I/O. An exception it
    raises propagates and changes nothing.
    """

    def validate(self, requirements: Requirements) -> Requirements:
        """Check and normalize an invitation's requirements (raise ``InvalidInputError`` to refuse them)."""
        ...

    def decide(self, context: AcceptContext) -> Approval | Denial:
        """Approve (with what was verified) or deny an acceptance."""
        ...


def check_json_object(value: object, field_name: str, max_bytes: int) -> dict[str, Any]:
    """``value`` as a dict if it is a JSON object (string keys, JSON values) no larger than ``max_bytes``."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(field_name, f"must be an object, got {type(value).__name__}")
    try:
        encoded = json.dumps(value, separators=(",", ":"), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(field_name, f"must hold JSON values only ({error})") from None
    if len(encoded.encode("utf-8")) > max_bytes:
        raise InvalidInputError(field_name, f"must be at most {max_bytes} bytes as JSON")
    decoded: dict[str, Any] = json.loads(encoded)
    return decoded


def check_requirements(policy: AcceptPolicy | None, requirements: object) -> dict[str, Any] | None:
    """The requirements to store on a new invitation (``None`` for none), validated by ``policy``.

    Raises:
        InvalidInputError: Not a small JSON object, empty, or refused by the policy.
        ConfigurationError: Requirements are given but no accept policy is configured (nobody would check
            them: the invitation would admit anyone).
    """
    if requirements is None:
        return None
    checked = check_json_object(requirements, "requirements", MAX_REQUIREMENTS_BYTES)
    if not checked:
        raise InvalidInputError("requirements", "must not be empty; leave it out for none")
    if policy is None:
        raise ConfigurationError(
            "an invitation with requirements needs an accept policy: "
            "TenantKit(accept_policy=...) or InvitationService(accept_policy=...)"
        )
    validated = policy.validate(checked)
    return check_json_object(validated, "requirements", MAX_REQUIREMENTS_BYTES)
