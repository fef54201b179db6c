"""A ready accept policy for professional licences: credential types, an NPI, licence states and expiry.

:class:`LicencePolicy` checks, offline, the claims a host presents against an invitation's
:class:`LicenceRequirements`. It calls no registry: a host that verifies a licence or an NPI online (NPPES,
a state board) does so before ``accept()`` and presents what it verified, naming itself in
``verified_by``; or it wraps this policy in its own.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tenantkit._errors import InvalidInputError
from tenantkit.credentials._npi import is_valid_npi
from tenantkit.invitations._requirements import AcceptContext, Approval, Denial, Requirements
from tenantkit.members._attributes import AttributeValue

_CREDENTIAL = re.compile(r"[A-Z][A-Z0-9-]{0,15}")
_STATE = re.compile(r"[A-Z]{2}")


def _upper_codes(values: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ValueError(f"must be a list of {what}")
    codes: list[str] = []
    for value in values:
        if not isinstance(value, str) or not pattern.fullmatch(value.strip().upper()):
            raise ValueError(f"{value!r} is not a {what}")
        codes.append(value.strip().upper())
    return tuple(dict.fromkeys(codes))


class LicenceRequirements(BaseModel):
    """What an invitation requires of a licensed professional (stored on it as JSON).

    Attributes:
        credential_types: Accepted credentials (``MD``, ``DO``, ``RN``, ``NP``…); empty accepts any, but one
            must be presented.
        npi_required: An NPI with a valid check digit must be presented.
        licence_states: States (two letters) where the licence must be held; empty: any state. Giving
            states requires a licence.
        licence_required: A licence (state, number and expiry) must be presented.
        min_validity_days: The licence must stay valid at least this many days after acceptance.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid", frozen=True)

    credential_types: tuple[str, ...] = ()
    npi_required: bool = False
    licence_states: tuple[str, ...] = ()
    licence_required: bool = False
    min_validity_days: int = Field(default=0, ge=0, le=3650)

    @field_validator("credential_types", mode="before")
    @classmethod
    def _credentials(cls, value: Any) -> tuple[str, ...]:
        return _upper_codes(value, _CREDENTIAL, "credential type (MD, DO, RN…)")

    @field_validator("licence_states", mode="before")
    @classmethod
    def _states(cls, value: Any) -> tuple[str, ...]:
        return _upper_codes(value, _STATE, "two-letter state code")

    @property
    def needs_licence(self) -> bool:
        """Whether a licence must be presented."""
        return self.licence_required or bool(self.licence_states)


class LicenceClaims(BaseModel):
    """What a host presents for an invitee: the credential, NPI and licence it vouches for.

    Attributes:
        credential_type: ``MD``, ``RN``…
        npi: The ten-digit NPI.
        licence_state: The state of the licence (two letters).
        licence_number: The licence's number at that state's board.
        licence_expires_at: When the licence expires (aware).
        verified_by: Who verified these claims (``"nppes"``, ``"state-board:CA"``); stored as the
            membership's ``verified_by``.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="ignore", frozen=True)

    credential_type: str | None = Field(default=None, max_length=16)
    npi: str | None = Field(default=None, max_length=10)
    licence_state: str | None = Field(default=None, max_length=2)
    licence_number: str | None = Field(default=None, min_length=1, max_length=64)
    licence_expires_at: datetime | None = None
    verified_by: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("credential_type", "licence_state", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("licence_expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ValueError("must carry a timezone")
        return value


class LicencePolicy:
    """An :class:`~tenantkit.invitations.AcceptPolicy` for :class:`LicenceRequirements`, offline.

    ::

        kit = TenantKit(invitations=..., accept_policy=LicencePolicy())
        kit.invitations.create_email_invitation(
            session, "general-hospital", "dr.lee@example.org", actor="admin",
            requirements={"credential_types": ["MD", "DO"], "npi_required": True, "licence_states": ["CA"]},
        )
        # later, with what the host verified (at NPPES, say) before accepting:
        kit.invitations.accept(session, token, user_id=..., email=..., email_verified=True,
                               claims={"credential_type": "MD", "npi": "1234567893", ...})

    Approval stores ``credential_type``, ``npi``, ``licence_state`` and ``licence_number`` as the member's
    attributes and the licence's expiry as their ``expires_at`` (so the member is listed by
    ``kit.members.list_lapsing``).

    Args:
        name: The ``verified_by`` recorded when the claims name no verifier of their own.
    """

    def __init__(self, *, name: str = "tenantkit.credentials.LicencePolicy") -> None:
        self.name = name

    def validate(self, requirements: Requirements) -> Requirements:
        """Parse ``requirements`` as :class:`LicenceRequirements` and return their normalized JSON form.

        Raises:
            InvalidInputError: An unknown key or a malformed value (the error names it).
        """
        try:
            parsed = LicenceRequirements.model_validate(dict(requirements))
        except ValidationError as error:
            first = error.errors()[0]
            location = ".".join(str(part) for part in first["loc"])
            raise InvalidInputError(
                f"requirements.{location}" if location else "requirements", first["msg"]
            ) from None
        return parsed.model_dump(mode="json")

    def decide(self, context: AcceptContext) -> Approval | Denial:
        """Approve when the claims meet every requirement, else deny naming the first one that fails."""
        required = LicenceRequirements.model_validate(dict(context.requirements))
        try:
            claims = LicenceClaims.model_validate(dict(context.claims))
        except ValidationError as error:
            first = error.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            return Denial(f"the presented {field or 'claims'} are malformed: {first['msg']}", field)
        denial = self._first_unmet(required, claims, context.now)
        if denial is not None:
            return denial
        attributes: dict[str, AttributeValue] = {"credential_type": claims.credential_type}
        if claims.npi is not None:
            attributes["npi"] = claims.npi
        if claims.licence_number is not None:
            attributes["licence_state"] = claims.licence_state
            attributes["licence_number"] = claims.licence_number
        return Approval(
            verified_by=claims.verified_by or self.name,
            attributes=attributes,
            expires_at=claims.licence_expires_at if claims.licence_number is not None else None,
        )

    @staticmethod
    def _first_unmet(  # noqa: PLR0911  one return per requirement, in the order documented
        required: LicenceRequirements, claims: LicenceClaims, now: datetime
    ) -> Denial | None:
        if claims.credential_type is None:
            return Denial("no credential type was presented", "credential_type")
        if required.credential_types and claims.credential_type not in required.credential_types:
            wanted = ", ".join(required.credential_types)
            return Denial(f"credential {claims.credential_type} is not one of {wanted}", "credential_type")
        if required.npi_required and claims.npi is None:
            return Denial("an NPI is required", "npi")
        if claims.npi is not None and not is_valid_npi(claims.npi):
            return Denial("the NPI is not valid (its check digit is wrong)", "npi")
        if not required.needs_licence:
            return None
        if claims.licence_number is None or claims.licence_state is None:
            return Denial("a licence (state and number) is required", "licence")
        if required.licence_states and claims.licence_state not in required.licence_states:
            wanted = ", ".join(required.licence_states)
            return Denial(f"a licence in {claims.licence_state} is not one of {wanted}", "licence_state")
        if claims.licence_expires_at is None:
            return Denial("the licence's expiry is required", "licence_expires_at")
        if claims.licence_expires_at <= now + timedelta(days=required.min_validity_days):
            return Denial("the licence has expired or lapses too soon", "licence_expires_at")
        return None
