"""The offline NPI check: ten ASCII digits whose last is the Luhn digit over ``80840`` and the first nine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenantkit import InvalidInputError
from tenantkit.credentials import check_npi, is_valid_npi, npi_check_digit

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


def reference_luhn_valid(number: str) -> bool:
    """The textbook Luhn test, written independently of tenantkit's: double every second digit from the
    right, subtract 9 from doubles above 9, and the sum is a multiple of ten."""
    digits = [int(character) for character in number]
    for index in range(len(digits) - 2, -1, -2):
        digits[index] = digits[index] * 2 - 9 if digits[index] * 2 > 9 else digits[index] * 2
    return sum(digits) % 10 == 0


def test_the_cms_example_is_valid() -> None:
    """CMS's published example, 123456789 with check digit 3, is valid; other last digits are not."""
    assert npi_check_digit("123456789") == "3"
    assert is_valid_npi("1234567893")
    assert [digit for digit in "0123456789" if is_valid_npi("123456789" + digit)] == ["3"]


@given(nine_digits)
def test_the_check_digit_completes_a_valid_npi(first_nine: str) -> None:
    """For any nine digits, appending the computed check digit gives a valid NPI."""
    assert is_valid_npi(first_nine + npi_check_digit(first_nine))


@given(nine_digits, st.sampled_from("0123456789"))
def test_validity_is_luhn_with_the_80840_prefix(first_nine: str, last: str) -> None:
    """An NPI is valid exactly when ``80840`` followed by it passes an independent Luhn test."""
    assert is_valid_npi(first_nine + last) is reference_luhn_valid("80840" + first_nine + last)


@given(nine_digits, st.integers(0, 9), st.integers(1, 9))
def test_any_single_digit_typo_is_caught(first_nine: str, position: int, shift: int) -> None:
    """Changing any one digit of a valid NPI makes it invalid (Luhn's guarantee)."""
    valid = first_nine + npi_check_digit(first_nine)
    typo = valid[:position] + str((int(valid[position]) + shift) % 10) + valid[position + 1 :]
    assert not is_valid_npi(typo)


@given(st.one_of(st.text(max_size=12), st.integers(), st.none(), st.binary(max_size=10)))
def test_anything_but_ten_ascii_digits_is_invalid(value: object) -> None:
    """Wrong lengths, letters, other scripts' digits and non-strings are never valid, and never raise."""
    if isinstance(value, str) and len(value) == 10 and value.isascii() and value.isdigit():
        return
    assert is_valid_npi(value) is False
    with pytest.raises(InvalidInputError):
        check_npi(value)


def test_other_scripts_digits_are_refused() -> None:
    """Arabic-Indic digits pass ``str.isdigit`` but are no NPI."""
    assert not is_valid_npi("١٢٣٤٥٦٧٨٩٣")


def test_check_npi_names_a_wrong_check_digit() -> None:
    """``check_npi`` returns a valid NPI and explains a wrong check digit."""
    assert check_npi("1234567893") == "1234567893"
    with pytest.raises(InvalidInputError, match="check digit"):
        check_npi("1234567890")
    with pytest.raises(InvalidInputError):
        npi_check_digit("12345678")
