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
