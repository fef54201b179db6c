"""The sender never reaches the host's network: hostile URLs and DNS answers, a silent listener, TLS by name.

Every hostile case points at :class:`SilentListener` on 127.0.0.1 (or at an address that would be as bad),
and the listener must see no connection, neither at registration nor when the worker delivers. The name
cases use a real DNS server on 127.0.0.1 (dnslib), including a name whose second answer changes.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
import trustme
from standardwebhooks import Webhook

from tenantkit import HOST, Role, TenantKit, WebhookSettings
from tenantkit.errors import UnsafeWebhookUrlError
from tenantkit.tables import webhook_deliveries, webhook_endpoints
from tenantkit.testing import FrozenClock
from tenantkit.webhooks import AddressPolicy, resolve_target
from tests.webhook_servers import DnsServer, Receiver, Reply, SilentListener, dns_resolver, static_resolver

ORG = "org_ssrf"
GOOD = "127.0.0.2"  # the one address the tests' policy allows: a legitimate receiver listens there

# (URL with {port} for the silent listener, DNS answers {name: [[first answer], [later answers]]})
HOSTILE: list[tuple[str, dict[str, list[list[str]]]]] = [
    ("http://127.0.0.1:{port}/", {}),
    ("http://127.1:{port}/", {}),
    ("http://2130706433:{port}/", {}),
    ("http://0177.0.0.1:{port}/", {}),
    ("http://0x7f000001:{port}/", {}),
    ("http://0x7f.0.0.1:{port}/", {}),
    ("http://017700000001:{port}/", {}),
    ("http://[::ffff:127.0.0.1]:{port}/", {}),
    ("http://[::ffff:7f00:1]:{port}/", {}),
    ("http://[::1]:{port}/", {}),
    ("http://[::]:{port}/", {}),
    ("http://0.0.0.0:{port}/", {}),
    ("http://0:{port}/", {}),
    ("http://10.0.0.1:{port}/", {}),
    ("http://172.16.5.4:{port}/", {}),
    ("http://192.168.1.1:{port}/", {}),
    ("http://169.254.169.254/latest/meta-data/", {}),
    ("http://100.64.0.1:{port}/", {}),
    ("http://224.0.0.1:{port}/", {}),
    ("http://255.255.255.255:{port}/", {}),
    ("http://[fe80::1]:{port}/", {}),
    ("http://[fc00::1]:{port}/", {}),
    ("http://[64:ff9b::7f00:1]:{port}/", {}),
    ("http://[2002:7f00:1::1]:{port}/", {}),
    ("http://user:pass@example.com:{port}/", {}),
    ("ftp://example.com:{port}/", {}),
    ("file:///etc/passwd", {}),
    ("http://loopback.test:{port}/", {"loopback.test": [["127.0.0.1"]]}),
    ("http://private.test:{port}/", {"private.test": [["10.0.0.5"]]}),
    ("http://mixed.test:{port}/", {"mixed.test": [[GOOD, "127.0.0.1"]]}),
    ("http://six.test:{port}/", {"six.test": [["::1"]]}),
    ("http://mapped.test:{port}/", {"mapped.test": [["::ffff:127.0.0.1"]]}),
    ("http://nowhere.test:{port}/", {}),
]


@pytest.fixture
def listener() -> Iterator[SilentListener]:
    with SilentListener() as silent:
        yield silent


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def make_kit(resolver: object, *, allow_http: bool = True) -> TenantKit:
    kit = TenantKit(
        webhooks=WebhookSettings(
            secret_keys=["webhook-encryption-key-0001"],
            allow_http=allow_http,
            allow_networks=[f"{GOOD}/32"],
            timeout="2s",
            lease="10s",
        ),
        clock=FrozenClock(datetime.now(timezone.utc)),
    )
    kit.webhooks.resolver = resolver  # type: ignore[assignment]
    return kit


@pytest.mark.parametrize(("url", "answers"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_a_hostile_url_is_refused_and_never_connected_to(
    sqlite_engine: sa.Engine,
    listener: SilentListener,
    dns: DnsServer,
    url: str,
    answers: dict[str, list[list[str]]],
) -> None:
    """Registration refuses the URL, and a delivery to it (its row written past the checks) sends nothing."""
    for name, turns in answers.items():
        dns.answer(name, *turns)
    kit = make_kit(dns_resolver(dns))
    hostile = url.format(port=listener.port)
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        with pytest.raises(UnsafeWebhookUrlError):
            kit.webhooks.create_endpoint(session, ORG, hostile, ["member.added"], actor="alice")
        good = kit.webhooks.create_endpoint(
            session, ORG, f"http://{GOOD}:9/", ["member.added"], actor="alice"
        )
    with kit.transaction(sqlite_engine) as session:
        # As if the URL had passed at registration: the delivery checks it again.
        session.execute(
            sa.update(webhook_endpoints).values(url=hostile).where(webhook_endpoints.c.id == good.endpoint.id)
        )
        kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")

    report = kit.webhooks.deliver_due(sqlite_engine)

    assert report.retrying == 1
    assert listener.connections == 0
    with sqlite_engine.connect() as connection:
        error = connection.execute(sa.select(webhook_deliveries.c.last_error)).scalar_one()
    assert "refused" in error


def test_a_name_whose_second_answer_changes_is_connected_to_where_it_was_checked(
    sqlite_engine: sa.Engine, listener: SilentListener, dns: DnsServer
) -> None:
    """DNS rebinding: each check resolves once and connects to the address it checked, never looking again.

    The name answers the allowed address first, then 127.0.0.1 (where the silent listener is): the delivery
    that resolved the allowed address reaches the receiver there; the next one, resolving 127.0.0.1, is
    refused; the listener sees nothing.
    """
    with Receiver(GOOD) as receiver:
        dns.answer("rebind.test", [GOOD], [GOOD], ["127.0.0.1"])
        kit = make_kit(dns_resolver(dns))
        with kit.transaction(sqlite_engine) as session:
            kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            kit.webhooks.create_endpoint(
                session, ORG, f"http://rebind.test:{receiver.port}/hook", ["member.added"], actor="alice"
            )  # first answer
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        assert kit.webhooks.deliver_due(sqlite_engine).succeeded == 1  # second answer: still GOOD
        with kit.transaction(sqlite_engine) as session:
            session.execute(
                sa.update(webhook_endpoints).values(url=f"http://rebind.test:{listener.port}/hook")
            )
            kit.members.add(session, ORG, "carol", Role.MEMBER, actor="alice")
        assert kit.webhooks.deliver_due(sqlite_engine).retrying == 1  # third answer: 127.0.0.1, refused

    assert len(receiver.received) == 1
    assert receiver.received[0].headers["host"] == f"rebind.test:{receiver.port}"
    assert dns.queries("rebind.test") == 3
    assert listener.connections == 0


def test_a_redirect_to_a_private_address_is_not_followed(
    sqlite_engine: sa.Engine, listener: SilentListener
) -> None:
    """A receiver answering 302 to 127.0.0.1 gets a failed attempt; the redirect's target sees nothing."""
    with Receiver(GOOD, default=Reply(302, {"Location": f"http://127.0.0.1:{listener.port}/"})) as receiver:
        kit = make_kit(static_resolver({}))
        with kit.transaction(sqlite_engine) as session:
            kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            kit.webhooks.create_endpoint(session, ORG, receiver.url(), ["member.added"], actor="alice")
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        assert kit.webhooks.deliver_due(sqlite_engine).retrying == 1
    assert len(receiver.received) == 1
    assert listener.connections == 0


def test_https_only_by_default() -> None:
    """Without allow_http, an http:// URL is refused even to an allowed address."""
    with pytest.raises(UnsafeWebhookUrlError, match="https"):
        resolve_target(f"http://{GOOD}/", AddressPolicy.build(allow_networks=[f"{GOOD}/32"]))
    target = resolve_target(
        "https://hooks.example/x?y=1", AddressPolicy(), static_resolver({"hooks.example": ["93.184.216.34"]})
    )
    assert (target.connect_url, target.host_header) == ("https://93.184.216.34:443/x?y=1", "hooks.example")


class TestTls:
    @pytest.fixture
    def ca(self) -> trustme.CA:
        return trustme.CA()

    def deliver(
        self, engine: sa.Engine, ca: trustme.CA, name: str, receiver: Receiver
    ) -> tuple[TenantKit, str]:
        kit = make_kit(static_resolver({name: [GOOD]}), allow_http=False)
        client_context = ssl.create_default_context()
        ca.configure_trust(client_context)
        kit.webhooks.verify = client_context
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
            created = kit.webhooks.create_endpoint(
                session, ORG, f"https://{name}:{receiver.port}/hook", ["member.added"], actor="alice"
            )
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        return kit, created.reveal()

    def test_the_certificate_is_verified_for_the_name_at_the_checked_address(
        self, sqlite_engine: sa.Engine, ca: trustme.CA
    ) -> None:
        """The sender connects to the checked address and verifies the receiver's certificate for the name."""
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("receiver.test").configure_cert(server_context)
        with Receiver(GOOD, tls=server_context) as receiver:
            kit, secret = self.deliver(sqlite_engine, ca, "receiver.test", receiver)
            assert kit.webhooks.deliver_due(sqlite_engine).succeeded == 1
        assert Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)

    def test_a_certificate_for_another_name_is_refused(
        self, sqlite_engine: sa.Engine, ca: trustme.CA
    ) -> None:
        """A certificate valid for another name fails the attempt; nothing is sent."""
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("someone-else.test").configure_cert(server_context)
        with Receiver(GOOD, tls=server_context) as receiver:
            kit, _ = self.deliver(sqlite_engine, ca, "receiver.test", receiver)
            assert kit.webhooks.deliver_due(sqlite_engine).retrying == 1
        assert receiver.received == []
        with sqlite_engine.connect() as connection:
            error = connection.execute(sa.select(webhook_deliveries.c.last_error)).scalar_one()
        assert "certificate" in error.lower() or "hostname" in error.lower()
