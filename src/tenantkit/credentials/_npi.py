"""The National Provider Identifier's check digit, offline.

An NPI is ten digits whose last is a Luhn check digit computed over the first nine prefixed with ``80840``
(the health-industry prefix of ISO 7812), as CMS's "NPI check digit" note specifies. A valid check digit
says the number was not mistyped, not that it was issued or belongs to this person: that is the NPPES
registry's answer, which the host asks before calling ``accept()``.
"""

from __future__ import annotations

from tenantkit._errors import InvalidInputError

_PREFIX = "80840"


def _luhn_sum(digits: str) -> int:
    """The Luhn sum of ``digits``, doubling every second digit from the right (the check digit is last)."""
    total = 0
    for position, character in enumerate(reversed(digits)):
        digit = ord(character) - 48
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total


def npi_check_digit(first_nine: str) -> str:
    """The check digit that completes the nine digits ``first_nine`` into an NPI.

    Raises:
        InvalidInputError: ``first_nine`` is not nine ASCII digits.
    """
    if not isinstance(first_nine, str) or len(first_nine) != 9 or not _ascii_digits(first_nine):
        raise InvalidInputError("npi", "the first part of an NPI is nine digits")
    total = _luhn_sum(_PREFIX + first_nine + "0")
    return str((10 - total % 10) % 10)


def is_valid_npi(value: object) -> bool:
    """Whether ``value`` is a string of ten ASCII digits whose last is the NPI check digit."""
    if not isinstance(value, str) or len(value) != 10 or not _ascii_digits(value):
        return False
    return _luhn_sum(_PREFIX + value) % 10 == 0


def check_npi(value: object, field: str = "npi") -> str:
    """``value`` if it is a valid NPI.

    Raises:
        InvalidInputError: It is not ten digits, or its check digit is wrong.
    """
    if not isinstance(value, str) or len(value) != 10 or not _ascii_digits(value):
        raise InvalidInputError(field, "an NPI is ten digits")
    if not is_valid_npi(value):
        raise InvalidInputError(field, "the NPI's check digit is wrong (mistyped?)")
    return value


def _ascii_digits(text: str) -> bool:
    # str.isdigit() accepts other scripts' digits ("١٢٣"); an NPI is ASCII.
    return text.isascii() and text.isdigit()
