"""Real servers for the webhook tests, all on 127.0.0.x: a receiver, a listener that must stay silent, DNS.

* :class:`Receiver` is a threaded HTTP(S) server that records every request (its ``webhook-id``, headers,
  body and arrival time) and answers from a script of responses (``500`` then ``200``, a redirect, a
  ``Retry-After``, a slow answer).
* :class:`SilentListener` accepts TCP connections and counts them: the SSRF tests point hostile URLs at it,
  and it must count none.
* :class:`DnsServer` is a real DNS server (dnslib) whose answers per name the test sets, including a list
  of answers given in turn (a name whose second answer changes); :func:`dns_resolver` resolves through it
  with dnspython, as the webhook sender's injectable resolver.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.resolver
from dnslib import AAAA, QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    webhook_id: str
    headers: dict[str, str]
    body: bytes
    at: float
    path: str


@dataclass
class Reply:
    """What the receiver answers: a status, headers, and a pause before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Receiver:
    """A real HTTP server on ``host``; ``replies`` are used in turn, then ``default`` for every request."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        tls: ssl.SSLContext | None = None,
        default: Reply | None = None,
        replies: Sequence[Reply] = (),
    ) -> None:
        self.received: list[Received] = []
        self.started: list[str] = []
        self.default = default or Reply()
        self.replies = list(replies)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                webhook_id = self.headers.get("webhook-id", "")
                with receiver._lock:
                    receiver.started.append(webhook_id)
                    reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if reply.delay:
                    time.sleep(reply.delay)
                with receiver._lock:
                    receiver.received.append(
                        Received(webhook_id, dict(self.headers.items()), body, time.monotonic(), self.path)
                    )
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook", *, scheme: str = "http", host: str | None = None) -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def ids(self) -> list[str]:
        with self._lock:
            return [request.webhook_id for request in self.received]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentListener:
    """A TCP listener on 127.0.0.1 that counts the connections made to it (there must be none)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, 0))
        self.socket.listen(16)
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            connection.close()

    def __enter__(self) -> SilentListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


class _ScriptedResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.queries: list[str] = []
        self.lock = threading.Lock()

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append(f"{name}/{qtype}")
            turns = self.answers.get(name)
            if not turns:
                return reply
            addresses = turns.pop(0) if len(turns) > 1 and qtype == "A" else turns[0]
        for address in addresses:
            if ":" in address and qtype == "AAAA":
                reply.add_answer(
                    RR(name, QTYPE.AAAA, rdata=AAAA(list(ipaddress.ip_address(address).packed)), ttl=0)
                )
            elif ":" not in address and qtype == "A":
                reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=0))
        return reply


class DnsServer:
    """A real DNS server on 127.0.0.1 (UDP); ``answers[name]`` is a list of answers, given in turn, the last
    one repeated."""

    def __init__(self) -> None:
        self.resolver = _ScriptedResolver({})
        self.server = DNSServer(
            self.resolver, address="127.0.0.1", port=0, logger=DNSLogger(log="-request,-reply,-truncated")
        )
        self.port = self.server.server.server_address[1]

    def answer(self, name: str, *turns: list[str]) -> None:
        with self.resolver.lock:
            self.resolver.answers[name.lower()] = [list(turn) for turn in turns]

    def queries(self, name: str) -> int:
        with self.resolver.lock:
            return sum(1 for query in self.resolver.queries if query == f"{name.lower()}/A")

    def __enter__(self) -> DnsServer:
        self.server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.server.server.server_close()


def dns_resolver(server: DnsServer) -> Callable[[str, int], list[str]]:
    """A webhook resolver that asks ``server`` (A then AAAA) through dnspython, uncached."""

    def resolve(host: str, port: int) -> list[str]:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = server.port
        resolver.lifetime = 2.0
        addresses: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                addresses += [record.to_text() for record in resolver.resolve(host, kind)]
            except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
                continue
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
        return addresses

    return resolve


def static_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A resolver answering from ``table`` (unknown names fail as the system's resolver would)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "no such name")
        return list(table[host])

    return resolve


@contextmanager
def started(*servers: Any) -> Iterator[None]:
    """Run every server for the block."""
    entered = []
    try:
        for server in servers:
            entered.append(server.__enter__())
        yield
    finally:
        for server in reversed(servers[: len(entered)]):
            server.__exit__(None, None, None)
