"""What a policy verified about a member, stored on the membership: attributes, with when and by what.

Attributes are a small, flat JSON object of scalars (``{"credential_type": "MD", "npi": "1234567893",
"licence_state": "CA", "licence_number": "A12345"}``): tenantkit stores, validates the shape of, and lists
them, and never interprets them. ``expires_at`` (when the verification lapses, a licence's expiry) is kept in
a column of its own, so that "lapsing before" is one indexed-by-organization query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict

from tenantkit._errors import InvalidInputError
from tenantkit._validation import check_name

AttributeValue = Union[str, int, float, bool, None]  # noqa: UP007  a runtime alias: pydantic reads it
"""One attribute's value: a JSON scalar."""

MAX_ATTRIBUTES = 50
"""The most attributes one membership (or one set of requirements) may hold."""
MAX_ATTRIBUTE_TEXT = 500
"""The longest text value of an attribute."""

_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


class MemberAttributes(BaseModel):
    """What was verified about a member, by what, when, and until when.

    Attributes:
        values: The verified attributes, name to scalar (``credential_type``, ``npi``, ``licence_state``…).
        verified_at: When the policy verified them (aware UTC).
        verified_by: What verified them: the policy's or registry's name (``"nppes"``, ``"manual:alice"``).
        expires_at: When the verification lapses (a licence's expiry), or ``None`` if it does not.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    values: dict[str, AttributeValue]
    verified_at: datetime
    verified_by: str
    expires_at: datetime | None = None


def check_attribute_values(values: object, field: str = "attributes") -> dict[str, AttributeValue]:
    """Return ``values`` as a plain dict if it is a small flat mapping of lower-case names to JSON scalars.

    Raises:
        InvalidInputError: Not a mapping, too many entries, a malformed name, or a value that is not a
            bounded scalar (nested objects and lists are refused: attributes are listed, not queried).
    """
    if not isinstance(values, Mapping):
        raise InvalidInputError(field, f"must be a mapping of names to values, got {type(values).__name__}")
    if len(values) > MAX_ATTRIBUTES:
        raise InvalidInputError(field, f"may hold at most {MAX_ATTRIBUTES} entries")
    checked: dict[str, AttributeValue] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidInputError(field, f"{key!r} is not a name of lower-case letters, digits and _")
        checked[key] = check_scalar(value, f"{field}.{key}")
    return checked


def check_scalar(value: object, field: str) -> AttributeValue:
    """``value`` if it is ``None``, a bool, a finite number or a short printable string."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInputError(field, "must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_ATTRIBUTE_TEXT or not value.isprintable():
            raise InvalidInputError(
                field, f"must be printable text of at most {MAX_ATTRIBUTE_TEXT} characters"
            )
        return value
    raise InvalidInputError(field, f"must be text, a number, a bool or null, not {type(value).__name__}")


def check_aware(value: object, field: str) -> datetime:
    """``value`` as UTC if it is a timezone-aware datetime."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(field, "must be a timezone-aware datetime")
    return value.astimezone(timezone.utc)


def make_attributes(
    values: object, *, verified_by: object, verified_at: datetime, expires_at: object = None
) -> MemberAttributes:
    """Validated :class:`MemberAttributes` (``InvalidInputError`` on a malformed part)."""
    return MemberAttributes(
        values=check_attribute_values(values),
        verified_at=check_aware(verified_at, "verified_at"),
        verified_by=check_name(verified_by, "verified_by"),
        expires_at=None if expires_at is None else check_aware(expires_at, "expires_at"),
    )


def attributes_to_row(attributes: MemberAttributes) -> dict[str, Any]:
    """The column values that store ``attributes``."""
    return {
        "attributes": {
            "values": dict(attributes.values),
            "verified_at": attributes.verified_at.isoformat(),
            "verified_by": attributes.verified_by,
        },
        "credential_expires_at": attributes.expires_at,
    }


def attributes_from_row(stored: Any, expires_at: datetime | None) -> MemberAttributes | None:
    """The attributes a membership row stores, or ``None`` when nothing was verified."""
    if not stored:
        return None
    return MemberAttributes(
        values=dict(stored.get("values") or {}),
        verified_at=datetime.fromisoformat(stored["verified_at"]),
        verified_by=stored["verified_by"],
        expires_at=expires_at,
    )
