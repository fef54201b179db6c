"""Webhooks end to end on every database: a real receiver on 127.0.0.1, verified with ``standardwebhooks``.

The kit's clock starts at the real time (the reference verifier refuses timestamps more than five minutes
off) and is moved forward to reach retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook, WebhookVerificationError

from tenantkit import HOST, AuditSettings, InvitationSettings, Role, TenantKit, WebhookSettings
from tenantkit.errors import (
    ConfigurationError,
    InvalidInputError,
    PermissionDeniedError,
    UnsafeWebhookUrlError,
    WebhookEndpointNotFoundError,
    WebhookMessageNotFoundError,
)
from tenantkit.metrics import CountingMetrics
from tenantkit.tables import audit_events, webhook_deliveries, webhook_endpoints, webhook_messages
from tenantkit.testing import FrozenClock
from tenantkit.webhooks import RETRY_SCHEDULE, WebhookEndpointDisabled
from tests.webhook_servers import Receiver, Reply

ORG = "org_hooks"
KEY = "webhook-encryption-key-0001"


def settings(**overrides: object) -> WebhookSettings:
    values: dict[str, object] = {
        "secret_keys": [KEY],
        "allow_http": True,
        "allow_networks": ["127.0.0.1/32"],
        "timeout": "2s",
        "lease": "10s",
    }
    values.update(overrides)
    return WebhookSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def now_clock() -> FrozenClock:
    """A clock frozen at the real current time."""
    return FrozenClock(datetime.now(timezone.utc))


@pytest.fixture
def kit(now_clock: FrozenClock) -> TenantKit:
    return TenantKit(webhooks=settings(), clock=now_clock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def owner_and_endpoint(
    kit: TenantKit, engine: sa.Engine, url: str, event_types: list[str] | None = None
) -> tuple[str, str]:
    with kit.transaction(engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        created = kit.webhooks.create_endpoint(
            session, ORG, url, event_types or ["member.added", "member.role_changed"], actor="alice"
        )
    return created.endpoint.id, created.reveal()


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


class TestDelivery:
    def test_every_committed_event_arrives_once_signed_and_verifiable(
        self, engine: sa.Engine, kit: TenantKit, receiver: Receiver
    ) -> None:
        """Each committed event an endpoint wants reaches the receiver once, verified by standardwebhooks."""
        _, secret = owner_and_endpoint(kit, engine, receiver.url())
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
            kit.members.change_role(session, ORG, "bob", Role.ADMIN, actor="alice")
        with kit.transaction(engine) as session:
            kit.members.remove(session, ORG, "bob", actor="alice")  # not subscribed

        report = kit.webhooks.deliver_due(engine)

        assert (report.claimed, report.succeeded) == (2, 2)
        verified = [Webhook(secret).verify(request.body, request.headers) for request in receiver.received]
        by_type = {payload["type"]: payload for payload in verified}  # webhooks promise no order
        assert sorted(by_type) == ["member.added", "member.role_changed"]
        assert by_type["member.added"]["data"] == {"user_id": "bob", "role": "MEMBER", "custom_role": None}
        assert by_type["member.added"]["organization_id"] == ORG
        assert len(set(receiver.ids())) == 2
        assert kit.webhooks.deliver_due(engine).claimed == 0

    def test_a_rolled_back_transaction_sends_nothing(
        self, engine: sa.Engine, kit: TenantKit, receiver: Receiver
    ) -> None:
        """A change rolled back (whole, or its savepoint) leaves no message and sends nothing."""
        owner_and_endpoint(kit, engine, receiver.url())
        session = kit.transaction(engine).__enter__()
        kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        session.rollback()
        session.close()
        with kit.transaction(engine) as session:
            savepoint = session.begin_nested()
            kit.members.add(session, ORG, "carol", Role.MEMBER, actor="alice")
            savepoint.rollback()
            kit.members.add(session, ORG, "dave", Role.MEMBER, actor="alice")

        kit.webhooks.deliver_due(engine)

        assert count(engine, webhook_messages) == 1
        assert [json.loads(request.body)["data"]["user_id"] for request in receiver.received] == ["dave"]

    def test_webhooks_work_with_the_audit_log_off(
        self, engine: sa.Engine, now_clock: FrozenClock, receiver: Receiver
    ) -> None:
        """The outbox is its own subscriber: with the audit log off, events are still delivered."""
        kit = TenantKit(webhooks=settings(), audit=AuditSettings(enabled=False), clock=now_clock)
        owner_and_endpoint(kit, engine, receiver.url())
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")

        assert kit.webhooks.deliver_due(engine).succeeded == 1
        assert count(engine, audit_events) == 0

    def test_payloads_never_carry_a_token_or_accept_url(
        self, engine: sa.Engine, now_clock: FrozenClock, receiver: Receiver
    ) -> None:
        """An invitation's message holds its allow-listed fields only: no token, no accept URL."""
        kit = TenantKit(
            webhooks=settings(),
            invitations=InvitationSettings(
                secret_keys=["invitation-signing-key-01"], accept_url_template="https://app/i?t={token}"
            ),
            clock=now_clock,
        )
        owner_and_endpoint(kit, engine, receiver.url(), ["invitation.created"])
        with kit.transaction(engine) as session:
            created = kit.invitations.create_email_invitation(
                session, ORG, "bob@example.com", Role.MEMBER, actor="alice"
            )
        kit.webhooks.deliver_due(engine)

        body = receiver.received[0].body.decode()
        assert created.token.get_secret_value() not in body
        assert "accept_url" not in body
        assert "https://app/" not in body
        assert set(json.loads(body)["data"]) == {
            "invitation_id",
            "email",
            "allowed_domains",
            "role",
            "custom_role",
            "expires_at",
        }


class TestRetries:
    def test_500_then_200_is_delivered_on_the_retry_with_the_same_id(
        self, engine: sa.Engine, kit: TenantKit, now_clock: FrozenClock, receiver: Receiver
    ) -> None:
        """A 500 reschedules at the schedule's first step (5 s, jittered); the retry carries the same id."""
        owner_and_endpoint(kit, engine, receiver.url())
        receiver.replies = [Reply(500)]
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")

        assert kit.webhooks.deliver_due(engine).retrying == 1
        assert kit.webhooks.deliver_due(engine).claimed == 0  # not due before its time
        now_clock.advance(RETRY_SCHEDULE[0] * 1.3)
        assert kit.webhooks.deliver_due(engine).succeeded == 1

        assert len(receiver.ids()) == 2
        assert len(set(receiver.ids())) == 1
        with kit.transaction(engine) as session:
            message_id = receiver.ids()[0]
            page = kit.webhooks.list_deliveries(session, ORG, actor="alice", message_id=message_id)
        (delivery,) = page.items
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 2, 200)

    def test_retry_after_reschedules_and_a_redirect_is_a_failure(
        self, engine: sa.Engine, kit: TenantKit, now_clock: FrozenClock, receiver: Receiver
    ) -> None:
        """429 with Retry-After waits that long; a 302 is never followed and counts as a failed attempt."""
        owner_and_endpoint(kit, engine, receiver.url())
        receiver.replies = [Reply(429, {"Retry-After": "120"}), Reply(302, {"Location": "http://10.0.0.1/"})]
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")

        kit.webhooks.deliver_due(engine)
        now_clock.advance(seconds=100)
        assert kit.webhooks.deliver_due(engine).claimed == 0
        now_clock.advance(seconds=21)
        assert kit.webhooks.deliver_due(engine).retrying == 1

        assert [request.path for request in receiver.received] == ["/hook", "/hook"]
        with engine.connect() as connection:
            error = connection.execute(sa.select(webhook_deliveries.c.last_error)).scalar_one()
        assert "redirects are not followed" in error

    def test_410_disables_the_endpoint_at_once(
        self, engine: sa.Engine, kit: TenantKit, receiver: Receiver
    ) -> None:
        """An HTTP 410 fails the delivery for good and disables the endpoint, recorded as an event."""
        endpoint_id, _ = owner_and_endpoint(kit, engine, receiver.url())
        receiver.default = Reply(410)
        heard: list[WebhookEndpointDisabled] = []
        kit.subscribe(heard.append, WebhookEndpointDisabled)
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")

        assert kit.webhooks.deliver_due(engine).failed == 1

        with kit.transaction(engine) as session:
            endpoint = kit.webhooks.get_endpoint(session, ORG, endpoint_id, actor="alice")
            kit.members.add(session, ORG, "carol", Role.MEMBER, actor="alice")
        assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
        assert [event.reason for event in heard] == ["gone"]
        assert count(engine, webhook_messages) == 1  # nothing queued for a disabled endpoint

    def test_five_days_of_failure_disable_the_endpoint_and_recover_requeues(
        self, engine: sa.Engine, kit: TenantKit, now_clock: FrozenClock, receiver: Receiver
    ) -> None:
        """Continuous failure for 5 days disables the endpoint; enabled again, recover resends what failed."""
        endpoint_id, _ = owner_and_endpoint(kit, engine, receiver.url())
        start = now_clock()
        receiver.default = Reply(503)
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        for step in (timedelta(0), *RETRY_SCHEDULE):
            now_clock.advance(step * 1.3)
            kit.webhooks.deliver_due(engine)
        with kit.transaction(engine) as session:
            endpoint = kit.webhooks.get_endpoint(session, ORG, endpoint_id, actor="alice")
        assert len(receiver.received) == 8
        assert endpoint.enabled  # 8 attempts span about 33 hours: failing, not yet 5 days
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "carol", Role.MEMBER, actor="alice")
        now_clock.set(start + timedelta(days=5, seconds=1))
        kit.webhooks.deliver_due(engine)
        with kit.transaction(engine) as session:
            endpoint = kit.webhooks.get_endpoint(session, ORG, endpoint_id, actor="alice")
        assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")

        receiver.default = Reply(200)
        with kit.transaction(engine) as session:
            kit.webhooks.enable_endpoint(session, ORG, endpoint_id, actor="alice")
            requeued = kit.webhooks.recover(session, ORG, endpoint_id, since=start, actor="alice")
        assert requeued == 2
        assert kit.webhooks.deliver_due(engine).succeeded == 2

    def test_resend_and_test_event(self, engine: sa.Engine, kit: TenantKit, receiver: Receiver) -> None:
        """Resend queues a delivered message again (same webhook-id); a test event goes to one endpoint."""
        endpoint_id, secret = owner_and_endpoint(kit, engine, receiver.url())
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        kit.webhooks.deliver_due(engine)
        message_id = receiver.ids()[0]
        with kit.transaction(engine) as session:
            resent = kit.webhooks.resend(session, ORG, message_id, actor="alice")
            test = kit.webhooks.send_test(session, ORG, endpoint_id, actor="alice")
            with pytest.raises(WebhookMessageNotFoundError):
                kit.webhooks.resend(session, ORG, "msg_nope", actor="alice")
        kit.webhooks.deliver_due(engine)

        assert [delivery.message_id for delivery in resent] == [message_id]
        assert sorted(receiver.ids()) == sorted([message_id, message_id, test.message_id])
        (tested,) = [request for request in receiver.received if request.webhook_id == test.message_id]
        assert Webhook(secret).verify(tested.body, tested.headers)["type"] == "webhook.test"


class TestSecrets:
    def test_rotation_signs_with_both_during_the_grace_then_only_the_new(
        self, engine: sa.Engine, kit: TenantKit, now_clock: FrozenClock, receiver: Receiver
    ) -> None:
        """During the grace both secrets verify; after it only the new one does."""
        endpoint_id, old = owner_and_endpoint(kit, engine, receiver.url())
        with kit.transaction(engine) as session:
            new = kit.webhooks.rotate_secret(
                session, ORG, endpoint_id, actor="alice", grace=timedelta(hours=1)
            ).reveal()
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        kit.webhooks.deliver_due(engine)
        during = receiver.received[-1]
        assert Webhook(old).verify(during.body, during.headers)
        assert Webhook(new).verify(during.body, during.headers)

        now_clock.advance(hours=1, seconds=1)
        with kit.transaction(engine) as session:
            kit.members.change_role(session, ORG, "bob", Role.ADMIN, actor="alice")
        kit.webhooks.deliver_due(engine)
        after = receiver.received[-1]
        # The attempt's timestamp is an hour ahead of the real clock, which standardwebhooks refuses (5 min
        # tolerance), so the signatures are checked with the reference verifier's own sign().
        timestamp = datetime.fromtimestamp(int(after.headers["webhook-timestamp"]), timezone.utc)
        signatures = after.headers["webhook-signature"].split(" ")
        assert signatures == [Webhook(new).sign(after.webhook_id, timestamp, after.body.decode())]
        assert Webhook(old).sign(after.webhook_id, timestamp, after.body.decode()) not in signatures
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(during.body, {**during.headers, "webhook-signature": signatures[0]})

    def test_secrets_are_encrypted_at_rest_and_never_listed(
        self, engine: sa.Engine, kit: TenantKit, receiver: Receiver
    ) -> None:
        """The row holds the secret encrypted; listings and reprs never show it; a wrong key refuses."""
        _, secret = owner_and_endpoint(kit, engine, receiver.url())
        with engine.connect() as connection:
            stored = connection.execute(sa.select(webhook_endpoints.c.secret)).scalar_one()
        assert secret not in stored
        assert secret.removeprefix("whsec_") not in stored
        with kit.transaction(engine) as session:
            page = kit.webhooks.list_endpoints(session, ORG, actor="alice")
        assert secret not in repr(page)
        assert secret not in page.model_dump_json()
        assert kit.webhooks.decrypt(stored) == secret
        rotated_in = TenantKit(webhooks=settings(secret_keys=[KEY, "a-newer-webhook-key-0002"]))
        assert rotated_in.webhooks.decrypt(stored) == secret
        with pytest.raises(ConfigurationError):
            TenantKit(webhooks=settings(secret_keys=["some-other-key-entirely"])).webhooks.decrypt(stored)


class TestManagement:
    def test_permissions_scoping_and_bad_input(
        self, engine: sa.Engine, kit: TenantKit, receiver: Receiver
    ) -> None:
        """MEMBERs may not manage or read webhooks; another organization sees nothing; bad input is typed."""
        endpoint_id, _ = owner_and_endpoint(kit, engine, receiver.url())
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "mallory", Role.MEMBER, actor="alice")
            kit.members.add(session, "org_other", "eve", Role.OWNER, actor=HOST)
        with kit.transaction(engine) as session:
            with pytest.raises(PermissionDeniedError):
                kit.webhooks.list_endpoints(session, ORG, actor="mallory")
            with pytest.raises(PermissionDeniedError):
                kit.webhooks.create_endpoint(session, ORG, receiver.url(), ["member.added"], actor="mallory")
            with pytest.raises(WebhookEndpointNotFoundError):
                kit.webhooks.get_endpoint(session, "org_other", endpoint_id, actor="eve")
            assert kit.webhooks.list_endpoints(session, "org_other", actor="eve").items == []
            with pytest.raises(InvalidInputError, match="at least one"):
                kit.webhooks.create_endpoint(session, ORG, receiver.url(), [], actor="alice")
            with pytest.raises(InvalidInputError, match="unknown event type"):
                kit.webhooks.create_endpoint(session, ORG, receiver.url(), ["member.nope"], actor="alice")
            with pytest.raises(UnsafeWebhookUrlError):
                kit.webhooks.update_endpoint(session, ORG, endpoint_id, url="http://10.1.2.3/", actor="alice")

    def test_every_change_is_audited(self, engine: sa.Engine, kit: TenantKit, receiver: Receiver) -> None:
        """Create, update, disable, enable, rotate, test and delete each leave an audit row."""
        endpoint_id, _ = owner_and_endpoint(kit, engine, receiver.url())
        with kit.transaction(engine) as session:
            kit.webhooks.update_endpoint(session, ORG, endpoint_id, description="CRM sync", actor="alice")
            kit.webhooks.disable_endpoint(session, ORG, endpoint_id, actor="alice")
            kit.webhooks.enable_endpoint(session, ORG, endpoint_id, actor="alice")
            kit.webhooks.rotate_secret(session, ORG, endpoint_id, actor="alice")
            kit.webhooks.send_test(session, ORG, endpoint_id, actor="alice")
            kit.webhooks.delete_endpoint(session, ORG, endpoint_id, actor="alice")
        with kit.transaction(engine) as session:
            types = [event.type for event in kit.audit.list_events(session, ORG, actor="alice").items]
        assert types[:7] == [
            "webhook_endpoint.deleted",
            "webhook_endpoint.test_sent",
            "webhook_endpoint.secret_rotated",
            "webhook_endpoint.enabled",
            "webhook_endpoint.disabled",
            "webhook_endpoint.updated",
            "webhook_endpoint.created",
        ]
        assert count(engine, webhook_deliveries) == 0

    def test_health_and_metrics(self, engine: sa.Engine, now_clock: FrozenClock, receiver: Receiver) -> None:
        """The outbox's depth and oldest due age are readable, and reported to the metrics hook."""
        metrics = CountingMetrics()
        kit = TenantKit(webhooks=settings(), clock=now_clock, metrics=metrics)
        owner_and_endpoint(kit, engine, receiver.url())
        with kit.transaction(engine) as session:
            kit.members.add(session, ORG, "bob", Role.MEMBER, actor="alice")
        now_clock.advance(seconds=30)
        with engine.connect() as connection:
            health = kit.webhooks.health(connection)
        assert (health.depth, health.due) == (1, 1)
        assert health.oldest_due_age_seconds == pytest.approx(30, abs=1)

        kit.webhooks.deliver_due(engine)

        assert metrics.deliveries() == {"succeeded": 1}
        assert metrics.outbox == (0, None)
