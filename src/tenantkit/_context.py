"""Request context: the client's address, user agent and request id, and how a change carries them.

Three parts, none of them tied to a web framework:

* :class:`RequestContext`, the three values, checked and bounded.
* :func:`client_address`, the one reading of a client address behind proxies: the peer of the connection,
  unless that peer is one of the host's trusted proxies (:class:`TrustedProxies`, from
  ``HttpSettings.trusted_proxies``, the one setting every feature that needs a client address shares); then
  ``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the first address that is not one
  is the client. A raw ``X-Forwarded-For`` is never believed: any client can send one.
  :func:`context_from_request` builds a context from a request's headers and peer this way; both adapters
  call it.
* :func:`audit_context`, a context manager that sets the context of every change made inside it, in a
  context variable. A context variable rather than a ``context=`` argument on every service method: the
  context reaches every service (and those later features add) without each declaring a parameter, the
  adapters set it once per request, and a host's own code sets it around any call. It follows the call
  into FastAPI's thread pool and through ``AsyncSession.run_sync`` (both copy the context); a thread of the
  host's own starts without it (use ``contextvars.copy_context().run``, or enter the block in the thread).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from tenantkit._errors import InvalidInputError
from tenantkit._validation import MAX_IDENTIFIER_LENGTH

__all__ = [
    "FORWARDED_FOR_HEADER",
    "MAX_USER_AGENT_LENGTH",
    "RequestContext",
    "TrustedProxies",
    "audit_context",
    "client_address",
    "context_from_request",
    "current_context",
    "parse_ip_address",
]

FORWARDED_FOR_HEADER = "X-Forwarded-For"
MAX_USER_AGENT_LENGTH = 512
"""A longer user agent is cut to this many characters (browsers send 100 to 300)."""

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip_address(text: str) -> _Address | None:
    """``text`` as an IP address (an IPv4-mapped IPv6 address as the IPv4 one), or ``None`` if it is none.

    A zone (``fe80::1%eth0``) is dropped; a port is not accepted here (see :func:`_hop_address`).
    """
    try:
        address = ipaddress.ip_address(text.strip().partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class RequestContext(BaseModel):
    """Where a change came from: the client's IP address, its user agent, and the request's id.

    Every field is optional. The IP address is normalized (``::ffff:10.0.0.1`` becomes ``10.0.0.1``); a user
    agent longer than :data:`MAX_USER_AGENT_LENGTH` is cut and its control characters replaced; a request id
    is an opaque id like any other (at most 255 printable characters).

    Raises:
        InvalidInputError: A value is not an IP address, or not a usable request id.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid")

    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    def __init__(self, /, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            first = error.errors(include_input=False, include_url=False)[0]
            field = str(first["loc"][0]) if first["loc"] else "context"
            raise InvalidInputError(field, str(first["msg"]).removeprefix("Value error, ")) from None

    @field_validator("ip_address")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = parse_ip_address(value)
        if address is None:
            raise ValueError("is not an IP address")
        return str(address)

    @field_validator("user_agent")
    @classmethod
    def _bound_user_agent(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = "".join(char if char.isprintable() else "?" for char in value.strip())
        return cleaned[:MAX_USER_AGENT_LENGTH] or None

    @field_validator("request_id")
    @classmethod
    def _check_request_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if (
            not value
            or len(value) > MAX_IDENTIFIER_LENGTH
            or value != value.strip()
            or not value.isprintable()
        ):
            raise ValueError(f"must be 1 to {MAX_IDENTIFIER_LENGTH} printable characters")
        return value

    def merged_over(self, outer: RequestContext | None) -> RequestContext:
        """This context, with each field it leaves out taken from ``outer``."""
        if outer is None:
            return self
        return RequestContext(
            ip_address=self.ip_address if self.ip_address is not None else outer.ip_address,
            user_agent=self.user_agent if self.user_agent is not None else outer.user_agent,
            request_id=self.request_id if self.request_id is not None else outer.request_id,
        )


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` the host believes: addresses and networks (``10.0.0.0/8``).

    Empty (the default) believes no proxy: the client is the connection's peer.

    Raises:
        ValueError: An entry is neither an IP address nor a network (``TrustedProxies.parse``).
    """

    __slots__ = ("networks",)

    def __init__(self, networks: Iterable[_Network] = ()) -> None:
        self.networks: tuple[_Network, ...] = tuple(networks)

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        """The proxies named by ``entries`` (``"10.0.0.0/8"``, ``"192.0.2.7"``, ``"::1"``)."""
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is neither an IP address nor a network such as 10.0.0.0/8"
                ) from None
        return cls(networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        return any(address.version == network.version and address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(network) for network in self.networks]!r})"


def _hop_address(hop: str) -> _Address | None:
    """One ``X-Forwarded-For`` entry as an address: ``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:80``."""
    text = hop.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    return parse_ip_address(text)


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: TrustedProxies) -> str | None:
    """The client's IP address: the peer, or, behind trusted proxies, the first untrusted forwarded hop.

    ``forwarded_for`` holds every ``X-Forwarded-For`` header of the request, in order (each a comma-separated
    list, oldest hop first). The list is read from the right, the end the nearest proxy wrote: each trusted
    proxy is skipped, and the first address that is not one is the client. An entry that is not an address
    ends the walk at the last proxy that was trusted, since whatever came before it is the client's to
    invent. When every hop is trusted, the leftmost is the client.

    Args:
        peer: The connection's peer address (ASGI ``client``, WSGI ``REMOTE_ADDR``); ``None`` when unknown.
        forwarded_for: The ``X-Forwarded-For`` header values.
        trusted: The host's trusted proxies.

    Returns:
        The address as text, or ``None`` when the peer is not an IP address (a Unix socket, a test client).
    """
    current = parse_ip_address(peer) if peer is not None else None
    if current is None:
        return None
    if current not in trusted:
        return str(current)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _hop_address(hop)
        if address is None:
            break
        current = address
        if address not in trusted:
            break
    return str(current)


class Headers(Protocol):
    """Request headers as both frameworks offer them: looked up by name, case-insensitively."""

    def get(self, key: str, /) -> str | None: ...

    def getlist(self, key: str, /) -> list[str]: ...


def context_from_request(
    headers: Headers, peer: str | None, *, trusted: TrustedProxies, request_id_header: str | None
) -> RequestContext:
    """The context of a request: its client address (see :func:`client_address`), user agent and request id.

    Values a client sends are bounded rather than refused, so a request is never turned away for its
    context: a request id that is not a usable id is left out.

    Args:
        headers: The request's headers.
        peer: The connection's peer address.
        trusted: The host's trusted proxies.
        request_id_header: The header carrying the request id (``X-Request-ID``), or ``None`` for none.
    """
    request_id = None
    if request_id_header:
        value = (headers.get(request_id_header) or "").strip()
        if value and len(value) <= MAX_IDENTIFIER_LENGTH and value.isprintable():
            request_id = value
    return RequestContext(
        ip_address=client_address(peer, headers.getlist(FORWARDED_FOR_HEADER), trusted),
        user_agent=headers.get("User-Agent"),
        request_id=request_id,
    )


_CURRENT: ContextVar[RequestContext | None] = ContextVar("tenantkit_request_context", default=None)


def current_context() -> RequestContext | None:
    """The context set by the innermost :func:`audit_context` block around this call, if any."""
    return _CURRENT.get()


@contextmanager
def audit_context(
    context: RequestContext | None = None,
    /,
    *,
    ip_address: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> Iterator[RequestContext]:
    """Record every change made inside the block with this request context (IP address, user agent, id).

    ::

        with audit_context(ip_address="203.0.113.7", request_id="req_42"):
            kit.members.change_role(session, "org_1", "bob", Role.ADMIN, actor="alice")

    Give a :class:`RequestContext` or its fields. A field left out is taken from an enclosing block, so a
    host can add its own request id inside the block an adapter opened for the request.

    Yields:
        The context in force inside the block.

    Raises:
        InvalidInputError: A field is malformed (see :class:`RequestContext`).
        TypeError: Both a context and fields were given.
    """
    fields = {"ip_address": ip_address, "user_agent": user_agent, "request_id": request_id}
    if context is None:
        context = RequestContext(**{name: value for name, value in fields.items() if value is not None})
    elif any(value is not None for value in fields.values()):
        raise TypeError("audit_context: give a RequestContext or its fields, not both")
    effective = context.merged_over(_CURRENT.get())
    token = _CURRENT.set(effective)
    try:
        yield effective
    finally:
        _CURRENT.reset(token)
