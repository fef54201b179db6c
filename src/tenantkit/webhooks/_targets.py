"""Where a webhook may go: the URL checks, the sender's own name resolution, and the address it connects to.

The sender never lets an HTTP library resolve a name. :func:`resolve_target` parses the URL, resolves the host
itself (through an injectable :data:`Resolver`), refuses it unless *every* address it resolves to is globally
routable, and returns the :class:`Target`: the checked address the sender connects to, with the name kept for
the ``Host`` header and for TLS (SNI and certificate verification). There is no second lookup between the
check and the connection, so a name whose answers change (DNS rebinding) cannot slip a private address in.

Refused (unless a host's :class:`AddressPolicy` allows a name or a network explicitly):

* loopback, private (RFC 1918, ``fc00::/7``), link-local (``169.254/16``, ``fe80::/10``), shared/CGNAT
  (``100.64/10``), multicast, unspecified (``0.0.0.0``, ``::``), documentation, benchmarking and reserved
  ranges: every address Python's :mod:`ipaddress` does not call global, and a fixed list beside it so the
  answer does not depend on the Python version;
* IPv6 forms that carry an IPv4 address (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``, 6to4, Teredo);
* a host written as a number in any other spelling than a dotted quad (``2130706433``, ``0177.0.0.1``,
  ``0x7f.1``, ``127.1``): resolvers read these as addresses, differently from one another;
* URLs that are not ``https`` (``http`` only when allowed), carry credentials, or do not parse.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import idna

from tenantkit._errors import UnsafeWebhookUrlError

if TYPE_CHECKING:
    from tenantkit._settings import WebhookSettings

__all__ = [
    "MAX_URL_LENGTH",
    "AddressPolicy",
    "IPAddress",
    "Resolver",
    "Target",
    "address_refusal",
    "check_url",
    "resolve_target",
    "system_resolver",
]

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]
"""Resolves ``(host, port)`` to the addresses (as text) a connection could go to."""

_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x20\x7f]")

# Beside ``not is_global``: ranges some Python versions call global, or that are never a receiver.
_REFUSED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "an unspecified or 'this network' address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (CGNAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("::ffff:0:0/96", "an IPv4-mapped address"),
        ("64:ff9b::/96", "a NAT64 address carrying an IPv4 address"),
        ("64:ff9b:1::/48", "a NAT64 address carrying an IPv4 address"),
        ("100::/64", "a discard-only address"),
        ("2001::/32", "a Teredo address carrying an IPv4 address"),
        ("2001:db8::/32", "a documentation address"),
        ("2002::/16", "a 6to4 address carrying an IPv4 address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer for ``host`` (``getaddrinfo``), each address once, in its order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AddressPolicy:
    """What the sender may reach beyond globally routable HTTPS: set by the host, never by a tenant.

    Attributes:
        allow_http: Accept ``http://`` URLs (development only).
        allow_hosts: Names accepted whatever they resolve to (still resolved once, and connected to there).
        allow_networks: Addresses accepted although not globally routable.
    """

    allow_http: bool = False
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())

    @classmethod
    def build(
        cls, *, allow_http: bool = False, allow_hosts: Iterable[str] = (), allow_networks: Iterable[str] = ()
    ) -> AddressPolicy:
        """A policy from plain values (``allow_networks=["127.0.0.1/32"]``)."""
        return cls(
            allow_http=allow_http,
            allow_hosts=frozenset(host.lower().rstrip(".") for host in allow_hosts),
            allow_networks=tuple(ipaddress.ip_network(network, strict=False) for network in allow_networks),
        )

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> AddressPolicy:
        """The policy ``settings`` describe."""
        return cls.build(
            allow_http=settings.allow_http,
            allow_hosts=settings.allow_hosts,
            allow_networks=settings.allow_networks,
        )

    def allows_address(self, address: IPAddress) -> bool:
        """Whether ``address`` is in one of :attr:`allow_networks`."""
        return any(
            address.version == network.version and address in network for network in self.allow_networks
        )


@dataclass(frozen=True)
class Target:
    """A checked URL: the address to connect to, and the name to present there.

    Attributes:
        scheme: ``https`` (or ``http`` when allowed).
        host: The host as the URL names it (IDNA A-labels, lower case), for ``Host`` and TLS.
        port: The port.
        target: The path and query to request.
        address: The resolved, checked address the sender connects to.
    """

    scheme: str
    host: str
    port: int
    target: str
    address: IPAddress

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the name (what the HTTP client connects to)."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{host}:{self.port}{self.target}"

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the name (and the port when it is not the scheme's default)."""
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def address_refusal(address: IPAddress, policy: AddressPolicy | None = None) -> str | None:
    """Why the sender must not connect to ``address`` (``None``: it may)."""
    if policy is not None and policy.allows_address(address):
        return None
    for network, reason in _REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if address.is_multicast:
        return "a multicast address"
    if not address.is_global:
        return "an address that is not globally routable"
    return None


@dataclass(frozen=True)
class _Parsed:
    scheme: str
    host: str
    port: int
    target: str
    literal: IPAddress | None


def _refuse(reason: str) -> UnsafeWebhookUrlError:
    return UnsafeWebhookUrlError(reason)


def _parse(url: object, policy: AddressPolicy) -> _Parsed:  # noqa: C901, PLR0912  one check per line
    if not isinstance(url, str) or not url:
        raise _refuse("it must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"it is longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(url) or (not url.isascii() and not url.isprintable()):
        raise _refuse("it holds spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _refuse(f"it does not parse ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _refuse("only https:// URLs are sent to")
    if scheme == "http" and not policy.allow_http:
        raise _refuse("only https:// URLs are sent to (http:// is allowed in development only)")
    if "@" in parts.netloc:
        raise _refuse("it must not carry credentials (user:password@)")
    raw_host = parts.hostname
    if not raw_host:
        raise _refuse("it names no host")
    literal: IPAddress | None = None
    if parts.netloc.split(":")[0].startswith("[") or ":" in raw_host:
        if "%" in raw_host:
            raise _refuse("an IPv6 zone id is not allowed")
        try:
            literal = ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise _refuse("its IPv6 address does not parse") from None
        host = str(literal)
    else:
        host = raw_host.rstrip(".")
        labels = host.split(".")
        if _NUMERIC_LABEL.fullmatch(labels[-1]):
            try:
                literal = ipaddress.IPv4Address(host)
            except ValueError:
                raise _refuse(
                    "its host is a number in another form than a dotted quad (decimal, octal, hex or short)"
                ) from None
        else:
            try:
                host = idna.encode(host, uts46=True).decode("ascii").lower()
            except (idna.IDNAError, UnicodeError):
                raise _refuse("its host is not a valid name") from None
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 0 < port < 65536:
        raise _refuse("its port is out of range")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return _Parsed(scheme, host, port, target, literal)


def check_url(url: object, policy: AddressPolicy) -> str:
    """The URL if its form is acceptable (scheme, host, no credentials, no numeric tricks); not resolved.

    Raises:
        UnsafeWebhookUrlError: The URL is refused.
    """
    parsed = _parse(url, policy)
    if parsed.literal is not None:
        reason = address_refusal(parsed.literal, policy)
        if reason is not None:
            raise _refuse(f"its host is {reason}")
    return str(url)


def resolve_target(url: object, policy: AddressPolicy, resolver: Resolver = system_resolver) -> Target:
    """Check ``url``, resolve its host once, check every address, and return where to connect.

    Args:
        url: The endpoint's URL.
        policy: What the host allows beyond globally routable HTTPS.
        resolver: Resolves a host and port to addresses (the system's by default; tests inject one).

    Raises:
        UnsafeWebhookUrlError: The URL, or one of the addresses its host resolves to, is refused, or the
            host does not resolve.
    """
    parsed = _parse(url, policy)
    if parsed.literal is not None:
        addresses: list[IPAddress] = [parsed.literal]
    else:
        try:
            answers = resolver(parsed.host, parsed.port)
        except Exception as error:  # any resolver's failure (socket.gaierror, a DNS library's timeout)
            raise _refuse(f"its host does not resolve ({type(error).__name__})") from None
        addresses = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(str(answer).partition("%")[0]))
            except ValueError:
                raise _refuse("its host resolves to something that is not an address") from None
        if not addresses:
            raise _refuse("its host resolves to no address")
    if parsed.literal is not None or parsed.host not in policy.allow_hosts:
        for address in addresses:
            reason = address_refusal(address, policy)
            if reason is not None:
                where = "is" if parsed.literal is not None else f"resolves to {address}, which is"
                raise _refuse(f"its host {where} {reason}")
    return Target(parsed.scheme, parsed.host, parsed.port, parsed.target, addresses[0])
