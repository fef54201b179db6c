"""Email addresses and domains, normalized once so that every comparison is a plain string equality.

The canonical form of an email address is ``local@domain`` where

* the domain is lower case, without a trailing dot, in IDNA A-labels (``bücher.example`` becomes
  ``xn--bcher-kva.example``), as email-validator and the idna package produce it;
* the local part is lower-cased. RFC 5321 lets a mail server treat ``Jo`` and ``jo`` as different
  mailboxes, but no mainstream provider does, and the earlier implementation's case-sensitive comparison
  locked people out of invitations sent to ``Jo.Smith@...``. Provider-specific aliasing (dots or ``+tags``
  at Gmail) is *not* folded: ``jo+x@`` and ``jo@`` are different addresses, because only the provider knows
  whether they reach the same person.

An allowed domain of a link invitation is canonicalized the same way. ``example.com`` admits exactly
addresses ``…@example.com``; ``*.example.com`` admits addresses at any subdomain of ``example.com`` (at
any depth) but not at ``example.com`` itself — list both to admit both. Matching compares whole labels, so
``evilexample.com`` and ``example.com.evil.org`` never match ``example.com``.
"""

from __future__ import annotations

from collections.abc import Iterable

import email_validator
import idna

from tenantkit._errors import InvalidInputError, PublicEmailDomainError

MAX_DOMAINS = 50
"""The most allowed domains one link invitation may carry."""

WILDCARD_PREFIX = "*."

PUBLIC_EMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "aim.com",
        "aol.com",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "googlemail.com",
        "hey.com",
        "hotmail.co.uk",
        "hotmail.com",
        "hotmail.fr",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "outlook.com",
        "pm.me",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "tutanota.com",
        "web.de",
        "yahoo.co.uk",
        "yahoo.com",
        "yahoo.fr",
        "yandex.com",
        "yandex.ru",
        "zoho.com",
    }
)
"""Public mailbox providers: anyone can open an address there, so they make no sense as allowed domains.

Link invitations refuse them (:class:`~tenantkit.errors.PublicEmailDomainError`) unless the service is built
with ``allow_public_domains=True``; pass ``public_email_domains=`` to use a list of your own.
"""


def normalize_email(value: object, field: str = "email") -> str:
    """Return the canonical form of an email address (see the module docstring).

    Raises:
        InvalidInputError: ``value`` is not a syntactically valid address.
    """
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {type(value).__name__}")
    try:
        result = email_validator.validate_email(value.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        raise InvalidInputError(field, f"is not a valid email address: {error}") from None
    domain = result.ascii_domain.lower().rstrip(".")
    return f"{result.local_part.lower()}@{domain}"


def email_domain(canonical_email: str) -> str:
    """The domain of an address already in canonical form."""
    return canonical_email.rpartition("@")[2]


def normalize_domain(value: object, field: str = "allowed_domains") -> str:
    """Return one allowed domain in canonical form: ``example.com`` or ``*.example.com``.

    Raises:
        InvalidInputError: ``value`` is not a domain name of at least two labels.
    """
    if not isinstance(value, str):
        raise InvalidInputError(field, f"each domain must be a string, got {type(value).__name__}")
    text = value.strip()
    wildcard = text.startswith(WILDCARD_PREFIX)
    if wildcard:
        text = text[len(WILDCARD_PREFIX) :]
    if text.endswith("."):
        text = text[:-1]
    if not text or "@" in text or "*" in text:
        raise InvalidInputError(field, f"{value!r} is not a domain name")
    try:
        ascii_domain = idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidInputError(field, f"{value!r} is not a valid domain name: {error}") from None
    if ascii_domain.count(".") < 1:
        # A single label is a top-level domain (or a host name): never an organization's mail domain.
        raise InvalidInputError(field, f"{value!r} must have at least two labels, like example.com")
    return WILDCARD_PREFIX + ascii_domain if wildcard else ascii_domain


def normalize_domains(
    values: Iterable[object],
    *,
    public_domains: frozenset[str],
    allow_public: bool,
    field: str = "allowed_domains",
) -> tuple[str, ...]:
    """Canonicalize a list of allowed domains: normalized, without duplicates, in the order given.

    Raises:
        InvalidInputError: The list is empty, too long, or holds something that is not a domain.
        PublicEmailDomainError: A domain (or the parent of a ``*.`` entry) is a public mailbox provider.
    """
    if isinstance(values, str | bytes):
        raise InvalidInputError(field, "must be a list of domains, not a single string")
    seen: dict[str, None] = {}
    for value in values:
        domain = normalize_domain(value, field)
        base = domain.removeprefix(WILDCARD_PREFIX)
        if not allow_public and base in public_domains:
            raise PublicEmailDomainError(base)
        seen.setdefault(domain, None)
    if not seen:
        raise InvalidInputError(field, "must name at least one domain")
    if len(seen) > MAX_DOMAINS:
        raise InvalidInputError(field, f"must name at most {MAX_DOMAINS} domains")
    return tuple(seen)


def domain_allowed(domain: str, allowed: Iterable[str]) -> bool:
    """Whether the canonical ``domain`` is one of ``allowed`` (canonical entries), label by label."""
    for entry in allowed:
        if entry.startswith(WILDCARD_PREFIX):
            if domain.endswith("." + entry[len(WILDCARD_PREFIX) :]):
                return True
        elif domain == entry:
            return True
    return False


def normalize_public_domains(values: Iterable[str]) -> frozenset[str]:
    """A host-given list of public providers, canonicalized so it compares with canonical domains."""
    return frozenset(normalize_domain(value, "public_email_domains") for value in values)
