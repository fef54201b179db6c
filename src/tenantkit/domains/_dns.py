"""DNS TXT lookups for domain verification: a small resolver interface, and its dnspython implementation.

dnspython is an optional extra (``pip install tenantkit[domains]``), imported when the first lookup runs. A
host (or a test) may inject any object with a ``txt(name)`` method instead, and point the dnspython resolver
at nameservers of its choosing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tenantkit._errors import ConfigurationError, DnsLookupError

__all__ = ["DnsPythonResolver", "TxtAnswer", "TxtResolver"]


@dataclass(frozen=True, slots=True)
class TxtAnswer:
    """What a TXT lookup found: whether the name exists at all, and its TXT strings (each record joined).

    Attributes:
        exists: ``False`` for NXDOMAIN (the name does not exist); ``True`` when it exists, records or not.
        values: Each TXT record's text, its character-strings concatenated as RFC 7208 reads them.
    """

    exists: bool
    values: tuple[str, ...] = ()


@runtime_checkable
class TxtResolver(Protocol):
    """Looks up the TXT records of a name; raises :class:`~tenantkit.errors.DnsLookupError` on no answer."""

    def txt(self, name: str) -> TxtAnswer:
        """The TXT records at ``name`` (an ASCII, IDNA-encoded name)."""
        ...


class DnsPythonResolver:
    """A :class:`TxtResolver` on dnspython: the system's nameservers, or those given.

    Args:
        nameservers: The nameservers' IP addresses (``None``: the system's resolver configuration).
        port: Their port (53).
        timeout: The longest a lookup may take in all, in seconds, retries included.

    Raises:
        ConfigurationError: dnspython is not installed (``pip install tenantkit[domains]``), or ``timeout``
            is not positive.
    """

    def __init__(
        self, nameservers: Sequence[str] | None = None, *, port: int = 53, timeout: float = 5.0
    ) -> None:
        try:
            import dns.resolver
        except ImportError:  # pragma: no cover - the extra is installed in the test environment
            raise ConfigurationError(
                "verifying domains by DNS needs dnspython: pip install 'tenantkit[domains]'"
            ) from None
        if timeout <= 0:
            raise ConfigurationError("timeout must be positive")
        resolver = dns.resolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            if not nameservers:
                raise ConfigurationError("nameservers must name at least one server (None: the system's)")
            resolver.nameservers = list(nameservers)
        resolver.port = port
        resolver.timeout = timeout
        resolver.lifetime = timeout
        self._resolver = resolver

    def txt(self, name: str) -> TxtAnswer:
        """The TXT records at ``name``; NXDOMAIN is an answer (``exists=False``), a timeout an error.

        Raises:
            DnsLookupError: The lookup timed out, or no nameserver answered usefully.
        """
        import dns.exception
        import dns.resolver

        try:
            answer = self._resolver.resolve(name, "TXT", raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return TxtAnswer(exists=False)
        except dns.exception.Timeout:
            raise DnsLookupError(name, "timeout") from None
        except dns.resolver.NoNameservers:
            raise DnsLookupError(name, "no nameserver answered") from None
        except dns.exception.DNSException as error:
            raise DnsLookupError(name, type(error).__name__) from None
        values: list[str] = []
        for record in answer.rrset or ():
            strings: Sequence[bytes] = getattr(record, "strings", ())
            values.append(b"".join(strings).decode("utf-8", errors="replace"))
        return TxtAnswer(exists=True, values=tuple(values))
