"""Hypothesis strategies shared by the test suite. Append yours in a section of its own."""

from __future__ import annotations

from hypothesis import strategies as st

from tenantkit import Role

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
