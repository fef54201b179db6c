"""A real DNS server on 127.0.0.1 (UDP, dnslib) whose TXT answers the test sets, and a server that never
answers (for timeouts)."""

from __future__ import annotations

import socket
import threading
from typing import Any

from dnslib import QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _TxtResolver(BaseResolver):  # type: ignore[misc]  # dnslib has no type hints
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.nxdomain: set[str] = set()
        self.lock = threading.Lock()

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            if name in self.nxdomain:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            values = list(self.records.get(name, ()))
        if QTYPE[request.q.qtype] == "TXT":
            for value in values:
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(value), ttl=0))
        return reply


class TxtDnsServer:
    """Serves ``txt(name, *values)`` records; names marked ``nxdomain`` answer NXDOMAIN; others NOERROR."""

    def __init__(self) -> None:
        self.resolver = _TxtResolver()
        self.server = DNSServer(
            self.resolver, address="127.0.0.1", port=0, logger=DNSLogger(log="-request,-reply,-truncated")
        )
        self.port: int = self.server.server.server_address[1]

    def txt(self, name: str, *values: str) -> None:
        with self.resolver.lock:
            self.resolver.records[name.lower()] = list(values)

    def mark_nxdomain(self, name: str) -> None:
        with self.resolver.lock:
            self.resolver.nxdomain.add(name.lower())

    def __enter__(self) -> TxtDnsServer:
        self.server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.server.server.server_close()


class SilentDnsServer:
    """A UDP socket on 127.0.0.1 that reads nothing and answers nothing: every lookup times out."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]

    def __enter__(self) -> SilentDnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
