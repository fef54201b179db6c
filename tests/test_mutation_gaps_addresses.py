"""Email addresses and allowed domains, pinned where mutation testing found gaps (issue 18 §6).

Each test names the behaviour it pins; ``make mutation`` shows which injected bug it catches.
"""

from __future__ import annotations

import pytest

from tenantkit import PUBLIC_EMAIL_DOMAINS, InvalidInputError
from tenantkit._addresses import (
    MAX_DOMAINS,
    domain_allowed,
    email_domain,
    normalize_domain,
    normalize_domains,
    normalize_email,
    normalize_public_domains,
)
from tenantkit.errors import PublicEmailDomainError


def _allowed(entries: object, *, allow_public: bool = False) -> tuple[str, ...]:
    return normalize_domains(entries, public_domains=PUBLIC_EMAIL_DOMAINS, allow_public=allow_public)  # type: ignore[arg-type]


class TestEmail:
    def test_surrounding_whitespace_and_a_trailing_dot_are_dropped(self) -> None:
        """' Jo@Example.COM. ' is jo@example.com."""
        assert normalize_email("  Jo@Example.COM  ") == "jo@example.com"

    def test_the_error_names_the_field(self) -> None:
        """A bad address is reported against the field the caller names."""
        with pytest.raises(InvalidInputError) as refused:
            normalize_email("not an address", "invitee")
        assert refused.value.field == "invitee"
        with pytest.raises(InvalidInputError) as refused:
            normalize_email(None, "invitee")
        assert refused.value.field == "invitee"

    def test_email_domain_is_what_follows_the_last_at(self) -> None:
        """The domain of a canonical address is the text after its last '@'."""
        assert email_domain('"a@b"@example.com') == "example.com"
        assert email_domain("jo@sub.example.com") == "sub.example.com"


class TestDomain:
    @pytest.mark.parametrize(
        ("value", "canonical"),
        [
            ("Example.COM", "example.com"),
            (" example.com. ", "example.com"),
            ("*.Example.com", "*.example.com"),
            ("*.bücher.example", "*.xn--bcher-kva.example"),
            ("a.b.c.example", "a.b.c.example"),
        ],
    )
    def test_canonical_forms(self, value: str, canonical: str) -> None:
        """Domains are trimmed, lower-cased, IDNA-encoded; a leading '*.' is kept as the wildcard."""
        assert normalize_domain(value) == canonical

    @pytest.mark.parametrize(
        "value", ["", ".", "*.", "com", "*.com", "jo@example.com", "ex*ample.com", "*.*.a.com", 5]
    )
    def test_non_domains_and_single_labels_are_refused(self, value: object) -> None:
        """Empty text, one label (also after '*.'), an '@', a '*' not leading, or a non-string is refused."""
        with pytest.raises(InvalidInputError) as refused:
            normalize_domain(value, "domains")
        assert refused.value.field == "domains"

    @pytest.mark.parametrize("value", ["jo@example.com", "ex*ample.com", "*.*.example.com"])
    def test_an_at_sign_or_inner_star_is_refused_as_not_a_domain(self, value: str) -> None:
        """An address, or a '*' other than a leading '*.', gets the plain 'is not a domain name' message."""
        with pytest.raises(InvalidInputError, match=r"is not a domain name$"):
            normalize_domain(value)


class TestDomainLists:
    def test_order_is_kept_and_duplicates_collapse(self) -> None:
        """The list keeps the order given, each canonical domain once."""
        assert _allowed(["B.example", "a.example", "b.example.", "*.a.example"]) == (
            "b.example",
            "a.example",
            "*.a.example",
        )

    def test_up_to_max_domains_are_accepted_and_one_more_refused(self) -> None:
        """A link invitation names at most MAX_DOMAINS (50) distinct domains."""
        assert MAX_DOMAINS == 50
        fifty = [f"d{number}.example" for number in range(50)]
        assert len(_allowed(fifty)) == 50
        assert len(_allowed([*fifty, "d0.example"])) == 50
        with pytest.raises(InvalidInputError, match="at most 50"):
            _allowed([*fifty, "d50.example"])

    @pytest.mark.parametrize("values", [[], "example.com", b"example.com"])
    def test_an_empty_list_or_a_bare_string_is_refused(self, values: object) -> None:
        """An empty list, or a single string instead of a list, is invalid input."""
        with pytest.raises(InvalidInputError):
            _allowed(values)

    def test_public_providers_and_their_wildcards_are_refused_unless_allowed(self) -> None:
        """gmail.com and *.gmail.com are refused as allowed domains, unless public domains are allowed."""
        for entry in ("gmail.com", "*.gmail.com", "GMail.com."):
            with pytest.raises(PublicEmailDomainError):
                _allowed([entry])
            assert _allowed([entry], allow_public=True) == (normalize_domain(entry),)
        assert _allowed(["mail.gmail.com"]) == ("mail.gmail.com",)

    def test_a_host_list_of_public_domains_is_canonicalized(self) -> None:
        """Host-given public domains are compared in canonical form."""
        assert normalize_public_domains(["Bücher.Example.", "corp.example"]) == frozenset(
            {"xn--bcher-kva.example", "corp.example"}
        )

    def test_a_bad_host_list_of_public_domains_names_its_setting(self) -> None:
        """A non-domain in the host's public_email_domains is reported against that setting."""
        with pytest.raises(InvalidInputError) as refused:
            normalize_public_domains(["example.com", "com"])
        assert refused.value.field == "public_email_domains"


class TestMatching:
    def test_exact_entries_match_only_themselves(self) -> None:
        """example.com admits example.com, not a subdomain of it."""
        assert domain_allowed("example.com", ["other.example", "example.com"]) is True
        assert domain_allowed("sub.example.com", ["example.com"]) is False
        assert domain_allowed("example.com", []) is False

    def test_wildcards_match_subdomains_at_any_depth_only(self) -> None:
        """*.example.com admits a.example.com and a.b.example.com, not example.com nor badexample.com."""
        entries = ["*.example.com"]
        assert domain_allowed("a.example.com", entries) is True
        assert domain_allowed("a.b.example.com", entries) is True
        assert domain_allowed("example.com", entries) is False
        assert domain_allowed("badexample.com", entries) is False
        assert domain_allowed("a.example.com", ["x.example", "*.example.com"]) is True
