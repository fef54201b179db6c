"""Hypothesis strategies shared by the test suite. Append yours in a section of its own."""

from __future__ import annotations

import base64
import json
import string
from datetime import timezone
from typing import Any

from hypothesis import strategies as st

from tenantkit import Role
from tenantkit._pagination import Keyset
from tenantkit.api_keys._service import _KEYS_ORDER
from tenantkit.audit._service import _NEWEST_FIRST as _AUDIT_ORDER
from tenantkit.invitations._service import _PENDING_ORDER
from tenantkit.members._service import _MEMBERS_ORDER, _ORGANIZATIONS_ORDER

# -- membership -----------------------------------------------------------------------------------------

roles = st.sampled_from(list(Role))
"""Any role."""

role_names = roles.flatmap(lambda role: st.sampled_from([role.value, role.value.lower(), role]))
"""A role as the library accepts it: the enum, or its name in any case."""

identifiers = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=1, max_size=40
)
"""Valid opaque ids: printable, non-empty, no surrounding whitespace."""

bad_identifiers = st.one_of(
    st.just(""),
    st.just(" padded "),
    st.just("tab\there"),
    st.text(min_size=256, max_size=300, alphabet="x"),
    st.integers(),
    st.none(),
)
"""Values every id parameter must refuse with InvalidInputError."""

bad_role_names = st.text(max_size=20).filter(lambda text: text.strip().upper() not in {r.value for r in Role})
"""Strings that name no role."""

# -- invitations: addresses, domains, tokens ------------------------------------------------------------

_ascii_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)
_unicode_labels = st.sampled_from(
    ["bücher", "münchen", "straße", "δοκιμή", "пример", "例え", "café", "ñandú"]
)
top_level_domains = st.sampled_from(["com", "org", "net", "io", "de", "example", "xn--p1ai"])

domain_labels = st.one_of(_ascii_labels, _unicode_labels)
"""One domain label: ASCII (LDH) or internationalized."""

domains = st.builds(
    lambda labels, tld: ".".join([*labels, tld]),
    st.lists(domain_labels, min_size=1, max_size=3),
    top_level_domains,
)
"""A registrable-looking domain name in lower case, possibly with Unicode labels (U-labels)."""

local_parts = st.from_regex(r"[a-z0-9]([a-z0-9._+-]{0,15}[a-z0-9])?", fullmatch=True).filter(
    lambda local: ".." not in local
)
"""The local part of an email address, in lower case."""


@st.composite
def randomly_cased(draw: st.DrawFn, text: str) -> str:
    """``text`` with each character's case chosen at random."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(char.upper() if flip else char for char, flip in zip(text, flips, strict=True))


@st.composite
def domain_spellings(draw: st.DrawFn, domain: str) -> str:
    """Another spelling of ``domain``: U-labels or IDNA A-labels, any case, maybe a trailing dot."""
    import idna

    form = draw(st.sampled_from(["unicode", "ascii"]))
    text = idna.encode(domain, uts46=True).decode("ascii") if form == "ascii" else domain
    if form == "unicode" and any(ord(char) > 127 for char in text):
        # Upper-casing some Unicode letters (ß → SS) changes the name; keep Unicode labels' case.
        return text + draw(st.sampled_from(["", "."]))
    return draw(randomly_cased(text)) + draw(st.sampled_from(["", "."]))


@st.composite
def token_edits(draw: st.DrawFn, token: str) -> str:
    """``token`` changed in one place: a character replaced, inserted or removed, or it is cut short."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
    kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    index = draw(st.integers(0, len(token) - 1))
    if kind == "replace":
        char = draw(st.sampled_from(alphabet).filter(lambda c: c != token[index]))
        return token[:index] + char + token[index + 1 :]
    if kind == "insert":
        return token[:index] + draw(st.sampled_from(alphabet)) + token[index:]
    if kind == "delete":
        return token[:index] + token[index + 1 :]
    return token[:index]


# -- API keys -------------------------------------------------------------------------------------------


@st.composite
def api_key_edits(draw: st.DrawFn, key: str) -> str:
    """``key`` damaged once: one character replaced, cut short, extended, or a letter's case changed."""
    kind = draw(st.sampled_from(["replace", "truncate", "extend", "case", "whole_case"]))
    if kind == "replace":
        index = draw(st.integers(0, len(key) - 1))
        char = draw(st.characters().filter(lambda c: c != key[index]))
        return key[:index] + char + key[index + 1 :]
    if kind == "truncate":
        return key[: draw(st.integers(0, len(key) - 1))]
    if kind == "extend":
        return key + draw(st.text(min_size=1, max_size=8))
    if kind == "case":
        letters = [index for index, char in enumerate(key) if char.isalpha()]
        index = draw(st.sampled_from(letters))
        return key[:index] + key[index].swapcase() + key[index + 1 :]
    return draw(st.sampled_from([key.upper(), key.lower(), key.swapcase()]))


junk_api_keys = st.one_of(
    st.text(max_size=80),
    st.binary(max_size=80),
    st.text(
        alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=49, max_size=49
    ).map(lambda body: "tk_live_" + body),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
)
"""Anything a client might send as an API key that was never issued: text, bytes, other objects, and strings
shaped like a key (right prefix, alphabet and length) with a random checksum."""

# -- pagination cursors ---------------------------------------------------------------------------------


def listing_keysets() -> list[Keyset]:
    """The sort key of every listing tenantkit has: members, organizations of a user, keys, invitations and
    the audit log."""
    return [_MEMBERS_ORDER, _ORGANIZATIONS_ORDER, _KEYS_ORDER, _PENDING_ORDER, _AUDIT_ORDER]


utc_timestamps = st.datetimes(timezones=st.just(timezone.utc))
"""Aware UTC datetimes over Python's whole range, microseconds included."""

stored_ids = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
"""Any id a row can hold (a NUL is the one character PostgreSQL text refuses); also odd adopted ids."""


def sort_keys(keyset: Keyset) -> st.SearchStrategy[tuple[Any, ...]]:
    """A valid sort key of ``keyset``'s listing: a timestamp or an id per column."""
    parts = [stored_ids if column.type.python_type is str else utc_timestamps for column in keyset.columns]
    return st.tuples(*parts)


@st.composite
def valid_cursors(draw: st.DrawFn, keyset: Keyset) -> str:
    """A cursor the library writes for ``keyset``'s listing, for some valid sort key."""
    return keyset.encode(draw(sort_keys(keyset)))


_CURSOR_ALPHABET = string.ascii_letters + string.digits + "-_"


@st.composite
def mutated_cursors(draw: st.DrawFn, keyset: Keyset) -> str:
    """A valid cursor changed by one edit: a character replaced, dropped or added, padding, other alphabet."""
    cursor = draw(valid_cursors(keyset))
    edit = draw(st.sampled_from(["replace", "drop", "insert", "pad", "alphabet", "truncate"]))
    position = draw(st.integers(0, len(cursor) - 1))
    char = draw(st.sampled_from(_CURSOR_ALPHABET + "+/=. \x00é"))
    if edit == "replace":
        return cursor[:position] + char + cursor[position + 1 :]
    if edit == "drop":
        return cursor[:position] + cursor[position + 1 :]
    if edit == "insert":
        return cursor[:position] + char + cursor[position:]
    if edit == "pad":
        return cursor + "=" * draw(st.integers(1, 3))
    if edit == "alphabet":
        return cursor.replace("-", "+").replace("_", "/") + "A-_"[position % 3]
    return cursor[:position]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


hostile_texts = st.one_of(
    st.text(max_size=20),  # any code point: lone surrogates and NUL included
    st.sampled_from(
        [
            "\ud800",
            "a\x00b",
            "2026-01-01T00:00:00",  # naive
            "2026-01-01T00:00:00-05:00",  # not UTC
            "9999-12-31T23:59:59-14:00",  # overflows on conversion to UTC
            "0001-01-01T00:00:00+14:00",  # underflows on conversion to UTC
            "2026-13-45T99:00:00+00:00",
            "x" * 3000,
        ]
    ),
)


@st.composite
def arbitrary_cursors(draw: st.DrawFn) -> str:
    """Cursors made by hand: JSON arrays of hostile text, with or without a listing name, or any bytes."""
    names = [keyset.listing for keyset in listing_keysets()]
    shape = draw(st.sampled_from(["array", "named", "json", "bytes", "text"]))
    if shape == "array":
        return _b64(json.dumps(draw(st.lists(hostile_texts, min_size=1, max_size=3))).encode())
    if shape == "named":
        values = draw(st.lists(hostile_texts, min_size=1, max_size=3))
        return _b64(json.dumps([draw(st.sampled_from(names)), *values]).encode())
    if shape == "json":
        value = draw(st.recursive(st.none() | st.integers() | st.text(), st.lists, max_leaves=5))
        return _b64(json.dumps(value).encode())
    if shape == "bytes":
        return _b64(draw(st.binary(max_size=60)))
    # Raw text stays UTF-8 so that it can travel in a URL; the JSON shapes above carry the surrogates.
    return draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))


def cursors(keyset: Keyset | None = None) -> st.SearchStrategy[str]:
    """Cursors of every kind: valid for ``keyset`` (or any listing), mutated, or made by hand."""
    keysets = [keyset] if keyset is not None else listing_keysets()
    chosen = st.sampled_from(keysets)
    return st.one_of(chosen.flatmap(valid_cursors), chosen.flatmap(mutated_cursors), arbitrary_cursors())
