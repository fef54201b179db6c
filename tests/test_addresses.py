"""Email and domain normalization and matching: properties over generated names, cases and IDNA forms."""

from __future__ import annotations

import idna
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tenantkit import PUBLIC_EMAIL_DOMAINS, InvalidInputError
from tenantkit._addresses import (
    domain_allowed,
    email_domain,
    normalize_domain,
    normalize_domains,
    normalize_email,
)
from tenantkit.errors import PublicEmailDomainError
from tests.strategies import domain_labels, domain_spellings, domains, local_parts, randomly_cased


def allowed(entries: list[str], allow_public: bool = True) -> tuple[str, ...]:
    return normalize_domains(entries, public_domains=PUBLIC_EMAIL_DOMAINS, allow_public=allow_public)


class TestNormalizeEmail:
    @given(local=local_parts, domain=domains, data=st.data())
    def test_case_and_idna_form_do_not_matter(self, local: str, domain: str, data: st.DataObject) -> None:
        """Any casing of the local part and any spelling of the domain normalize to one address."""
        spelled = data.draw(domain_spellings(domain)).rstrip(".")
        variant = f"{data.draw(randomly_cased(local))}@{spelled}"
        assert normalize_email(variant) == normalize_email(f"{local}@{domain}")

    @given(local=local_parts, domain=domains)
    def test_is_idempotent_and_ascii_domain(self, local: str, domain: str) -> None:
        """Normalizing twice changes nothing, and the domain is in lower-case A-labels."""
        once = normalize_email(f"{local}@{domain}")
        assert normalize_email(once) == once
        assert email_domain(once) == idna.encode(domain, uts46=True).decode("ascii").lower()

    def test_documented_example(self) -> None:
        """The docs' example: Jo.Smith@Bücher.Example.COM becomes jo.smith@xn--bcher-kva.example.com."""
        assert normalize_email("Jo.Smith@Bücher.Example.COM") == "jo.smith@xn--bcher-kva.example.com"

    def test_plus_tags_are_kept(self) -> None:
        """Provider-specific aliases are not folded: jo+x@ and jo@ stay different."""
        assert normalize_email("jo+x@example.com") != normalize_email("jo@example.com")

    @pytest.mark.parametrize(
        "value", ["", "jo", "jo@", "@example.com", "jo@@example.com", "jo@localhost", 42]
    )
    def test_invalid_addresses_are_refused(self, value: object) -> None:
        """Non-addresses are InvalidInputError."""
        with pytest.raises(InvalidInputError):
            normalize_email(value)


class TestNormalizeDomains:
    @given(domain=domains, data=st.data())
    def test_spellings_normalize_to_one(self, domain: str, data: st.DataObject) -> None:
        """Every spelling of a domain normalizes to one lower-case A-label form without a trailing dot."""
        expected = idna.encode(domain, uts46=True).decode("ascii")
        assert normalize_domain(data.draw(domain_spellings(domain))) == expected

    @given(domain=domains, data=st.data())
    def test_duplicates_collapse(self, domain: str, data: st.DataObject) -> None:
        """Several spellings of one domain become one entry."""
        spellings = data.draw(st.lists(domain_spellings(domain), min_size=1, max_size=4))
        assert len(allowed(spellings)) == 1

    def test_public_providers_are_refused_unless_allowed(self) -> None:
        """Every listed public provider is refused by default and accepted when allowed."""
        for provider in sorted(PUBLIC_EMAIL_DOMAINS):
            with pytest.raises(PublicEmailDomainError):
                allowed([provider.upper()], allow_public=False)
            assert allowed([provider]) == (provider,)

    @pytest.mark.parametrize(
        "value", ["com", "*.com", "exa mple.com", "*", "*.*.example.com", "", ".", "a@b.com"]
    )
    def test_non_domains_are_refused(self, value: str) -> None:
        """Single labels, spaces, stray wildcards and addresses are not domains."""
        with pytest.raises(InvalidInputError):
            normalize_domain(value)


class TestDomainMatching:
    @given(domain=domains, data=st.data())
    def test_own_domain_matches_in_any_spelling(self, domain: str, data: st.DataObject) -> None:
        """An address at the allowed domain matches whatever spelling either side used."""
        entries = allowed([data.draw(domain_spellings(domain))])
        address = normalize_email("someone@" + data.draw(domain_spellings(domain)).rstrip("."))
        assert domain_allowed(email_domain(address), entries)

    @given(domain=domains, label=domain_labels)
    def test_look_alikes_do_not_match(self, domain: str, label: str) -> None:
        """Prefixes (evilexample.com), suffixes (example.com.evil.org) and subdomains fail an exact entry."""
        entries = allowed([domain])
        for look_alike in (label + domain, f"{domain}.{label}.org", f"{label}.{domain}"):
            address = normalize_email("someone@" + look_alike)
            assert not domain_allowed(email_domain(address), entries), look_alike

    @given(domain=domains, label=domain_labels)
    def test_wildcard_matches_subdomains_only(self, domain: str, label: str) -> None:
        """``*.domain`` admits label.domain, not domain itself nor labeldomain."""
        entries = allowed(["*." + domain])
        assert domain_allowed(email_domain(normalize_email(f"a@{label}.{domain}")), entries)
        assert not domain_allowed(email_domain(normalize_email(f"a@{domain}")), entries)
        assert not domain_allowed(email_domain(normalize_email(f"a@{label}{domain}")), entries)

    @given(first=domains, second=domains)
    def test_different_domains_do_not_match(self, first: str, second: str) -> None:
        """Two domains that normalize differently never admit each other's addresses."""
        a, b = normalize_domain(first), normalize_domain(second)
        assume(a != b)
        assert not domain_allowed(email_domain(normalize_email("x@" + first)), (b,))
