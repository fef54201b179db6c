"""Webhook management over HTTP, on both adapters: the routes of the ``webhooks`` feature.

The work is the webhook service's (tested on every database in ``test_webhooks.py``); here the HTTP shape is
checked on SQLite: paths, statuses, bodies, the permission checks the service makes, and that a signing
secret is shown in the answer to ``create`` and ``rotate-secret`` only, marked ``Cache-Control: no-store``,
and is the secret a real delivery to a receiver on 127.0.0.1 verifies with (``standardwebhooks``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook, WebhookVerificationError

from tenantkit import HOST, Role, TenantKit
from tenantkit.tables import audit_events, webhook_endpoints
from tenantkit.testing import FrozenClock
from tests.http_apps import ADAPTERS, BUILDERS, HttpClient, Reply, make_kit, make_webhook_kit
from tests.webhook_servers import Receiver

ORG = "org_1"
BASE = f"/tk/organizations/{ORG}"
ENDPOINTS = f"{BASE}/webhook-endpoints"
ALICE = {"X-User": "alice"}  # OWNER
BOB = {"X-User": "bob"}  # ADMIN
CAROL = {"X-User": "carol"}  # MEMBER
MALLORY = {"X-User": "mallory"}  # OWNER of another organization


@dataclass
class App:
    """One application on one adapter, the kit behind it, its database and everything it answered."""

    client: HttpClient
    kit: TenantKit
    engine: sa.Engine
    clock: FrozenClock
    answers: list[Reply]

    def call(self, method: str, path: str, headers: dict[str, str], json: object = None) -> Reply:
        reply = self.client.request(method, path, json=json, headers=headers)
        self.answers.append(reply)
        return reply


@pytest.fixture(params=ADAPTERS)
def app(request: pytest.FixtureRequest, sqlite_engine: sa.Engine) -> App:
    """The app on each adapter, webhooks on; org_1: alice OWNER, bob ADMIN, carol MEMBER; org_2: mallory.

    The clock starts at the real time: the reference verifier refuses timestamps five minutes off.
    """
    clock = FrozenClock(datetime.now(timezone.utc))
    kit = make_webhook_kit(clock=clock)
    with kit.transaction(sqlite_engine) as session:
        kit.members.add(session, ORG, "alice", Role.OWNER, actor=HOST)
        kit.members.add(session, ORG, "bob", Role.ADMIN, actor=HOST)
        kit.members.add(session, ORG, "carol", Role.MEMBER, actor=HOST)
        kit.members.add(session, "org_2", "mallory", Role.OWNER, actor=HOST)
    return App(BUILDERS[request.param](kit, sqlite_engine), kit, sqlite_engine, clock, [])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def create(
    app: App, url: str, event_types: list[str] | None = None, headers: dict[str, str] = ALICE
) -> Reply:
    body = {"url": url, "event_types": event_types or ["member.added"], "description": "CRM sync"}
    return app.call("POST", ENDPOINTS, headers, body)


def error(reply: Reply) -> tuple[int, str]:
    return reply.status, reply.json["error"]["code"]


class TestTheSecretIsShownOnce:
    def test_create_answers_201_with_the_secret_not_to_be_stored(self, app: App, receiver: Receiver) -> None:
        """``POST .../webhook-endpoints`` answers 201 with the endpoint and its ``whsec_`` secret, marked
        ``Cache-Control: no-store``; a delivery to the receiver verifies with exactly that secret."""
        reply = create(app, receiver.url())
        assert reply.status == 201, reply
        assert reply.headers["Cache-Control"] == "no-store"
        secret = reply.json["secret"]
        assert secret.startswith("whsec_")
        endpoint = reply.json["endpoint"]
        assert (endpoint["url"], endpoint["event_types"], endpoint["enabled"]) == (
            receiver.url(),
            ["member.added"],
            True,
        )
        assert (endpoint["created_by"], endpoint["description"]) == ("alice", "CRM sync")
        assert "secret" not in endpoint

        with app.kit.transaction(app.engine) as session:
            app.kit.members.add(session, ORG, "dave", Role.MEMBER, actor="alice")
        assert app.kit.webhooks.deliver_due(app.engine).succeeded == 1
        (received,) = receiver.received
        event = Webhook(secret).verify(received.body, received.headers)
        assert (event["type"], event["data"]) == (
            "member.added",
            {"user_id": "dave", "role": "MEMBER", "custom_role": None},
        )

    def test_no_other_answer_nor_any_row_holds_the_secret(self, app: App) -> None:
        """Listing, reading, changing the endpoint and reading the audit log never show the secret again;
        the endpoint's row holds it encrypted and the audit log not at all."""
        reply = create(app, "http://127.0.0.1:9/hook")
        secret, endpoint_id = reply.json["secret"], reply.json["endpoint"]["id"]
        one = f"{ENDPOINTS}/{endpoint_id}"
        app.call("GET", ENDPOINTS, ALICE)
        app.call("GET", one, ALICE)
        app.call("PATCH", one, ALICE, {"description": "renamed"})
        app.call("POST", f"{one}/disable", ALICE)
        app.call("POST", f"{one}/enable", ALICE)
        app.call("POST", f"{one}/test", ALICE)
        app.call("GET", f"{one}/deliveries", ALICE)
        app.call("GET", f"{BASE}/audit-events?limit=100", ALICE)
        later = app.answers[1:]
        assert all(answer.status < 300 for answer in later), later
        assert all(secret not in json.dumps(answer.json) for answer in later)
        assert all("Cache-Control" not in answer.headers for answer in later)
        with app.engine.connect() as connection:
            stored = connection.execute(sa.select(webhook_endpoints.c.secret)).scalar_one()
            logged = connection.execute(sa.select(audit_events)).all()
        assert secret not in stored
        assert secret.removeprefix("whsec_") not in stored
        assert all(secret.removeprefix("whsec_") not in repr(row) for row in logged)

    def test_rotation_shows_the_new_secret_once_and_both_sign_during_the_grace(
        self, app: App, receiver: Receiver
    ) -> None:
        """``rotate-secret`` answers the new secret (``no-store``); during the grace a delivery verifies
        with the old and the new secret; rotated with ``grace_seconds: 0`` only the newest verifies."""
        created = create(app, receiver.url())
        endpoint_id, old = created.json["endpoint"]["id"], created.json["secret"]
        rotate = f"{ENDPOINTS}/{endpoint_id}/rotate-secret"

        reply = app.call("POST", rotate, BOB)  # no body: the settings' grace
        assert (reply.status, reply.headers["Cache-Control"]) == (200, "no-store")
        new = reply.json["secret"]
        assert new.startswith("whsec_")
        assert new != old
        assert reply.json["endpoint"]["previous_secret_expires_at"] is not None
        app.call("POST", f"{ENDPOINTS}/{endpoint_id}/test", ALICE)
        app.kit.webhooks.deliver_due(app.engine)
        received = receiver.received[-1]
        Webhook(old).verify(received.body, received.headers)
        Webhook(new).verify(received.body, received.headers)

        reply = app.call("POST", rotate, ALICE, {"grace_seconds": 0})
        newest = reply.json["secret"]
        assert reply.json["endpoint"]["previous_secret_expires_at"] is None
        app.call("POST", f"{ENDPOINTS}/{endpoint_id}/test", ALICE)
        app.kit.webhooks.deliver_due(app.engine)
        received = receiver.received[-1]
        Webhook(newest).verify(received.body, received.headers)
        for stale in (old, new):
            with pytest.raises(WebhookVerificationError):
                Webhook(stale).verify(received.body, received.headers)


class TestManagement:
    def test_list_get_update_enable_disable_delete(self, app: App) -> None:
        """The endpoint's life over HTTP: listed and read (never a secret), changed field by field,
        disabled by hand and enabled again, deleted (answered with what it was, then 404)."""
        first = create(app, "http://127.0.0.1:9/one").json["endpoint"]["id"]
        app.clock.advance(seconds=1)
        second = create(app, "http://127.0.0.1:9/two", headers=BOB).json["endpoint"]["id"]

        page = app.call("GET", f"{ENDPOINTS}?limit=1", BOB).json
        assert [item["id"] for item in page["items"]] == [first]
        rest = app.call("GET", f"{ENDPOINTS}?cursor={page['next_cursor']}", BOB).json
        assert [item["id"] for item in rest["items"]] == [second]

        one = f"{ENDPOINTS}/{first}"
        assert app.call("GET", one, BOB).json["url"] == "http://127.0.0.1:9/one"
        updated = app.call("PATCH", one, ALICE, {"event_types": ["api_key.revoked", "member.removed"]})
        assert updated.status == 200
        assert (updated.json["event_types"], updated.json["url"], updated.json["description"]) == (
            ["api_key.revoked", "member.removed"],
            "http://127.0.0.1:9/one",
            "CRM sync",
        )

        disabled = app.call("POST", f"{one}/disable", ALICE)
        assert (disabled.status, disabled.json["enabled"], disabled.json["disabled_reason"]) == (
            200,
            False,
            "manual",
        )
        enabled = app.call("POST", f"{one}/enable", ALICE)
        assert (enabled.json["enabled"], enabled.json["disabled_reason"]) == (True, None)

        deleted = app.call("DELETE", one, ALICE)
        assert (deleted.status, deleted.json["id"]) == (200, first)
        assert error(app.call("GET", one, ALICE)) == (404, "webhook_endpoint_not_found")
        assert [item["id"] for item in app.call("GET", ENDPOINTS, ALICE).json["items"]] == [second]

    def test_test_event_deliveries_resend_and_recover(self, app: App, receiver: Receiver) -> None:
        """``test`` queues a ``webhook.test`` delivery (202); the endpoint's and the message's deliveries
        list it once sent; ``resend`` queues it again with the same ``webhook-id``; ``recover`` counts what
        failed for good since a time."""
        endpoint_id = create(app, receiver.url()).json["endpoint"]["id"]
        one = f"{ENDPOINTS}/{endpoint_id}"

        queued = app.call("POST", f"{one}/test", ALICE)
        assert (queued.status, queued.json["event_type"], queued.json["status"]) == (
            202,
            "webhook.test",
            "pending",
        )
        message_id = queued.json["message_id"]
        app.kit.webhooks.deliver_due(app.engine)
        assert receiver.ids() == [message_id]

        (delivery,) = app.call("GET", f"{one}/deliveries", BOB).json["items"]
        assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
            "succeeded",
            1,
            200,
        )
        by_message = app.call("GET", f"{BASE}/webhook-messages/{message_id}/deliveries", BOB).json["items"]
        assert [item["id"] for item in by_message] == [delivery["id"]]

        resent = app.call("POST", f"{BASE}/webhook-messages/{message_id}/resend", ALICE)
        assert resent.status == 202
        assert [(item["message_id"], item["status"]) for item in resent.json["deliveries"]] == [
            (message_id, "pending")
        ]
        app.kit.webhooks.deliver_due(app.engine)
        assert receiver.ids() == [message_id, message_id]

        since = (app.clock() - timedelta(hours=1)).isoformat()
        recovered = app.call("POST", f"{one}/recover", ALICE, {"since": since})
        assert (recovered.status, recovered.json) == (202, {"recovered": 0})

    def test_every_change_is_in_the_audit_log(self, app: App) -> None:
        """Creating, changing and deleting an endpoint over HTTP are audit events, naming who did them."""
        endpoint_id = create(app, "http://127.0.0.1:9/hook").json["endpoint"]["id"]
        app.call("PATCH", f"{ENDPOINTS}/{endpoint_id}", ALICE, {"description": "renamed"})
        app.call("DELETE", f"{ENDPOINTS}/{endpoint_id}", BOB)
        page = app.call(
            "GET",
            f"{BASE}/audit-events?event_types=webhook_endpoint.created,"
            "webhook_endpoint.updated,webhook_endpoint.deleted",
            ALICE,
        ).json
        assert [(item["type"], item["actor"]["id"]) for item in page["items"]] == [
            ("webhook_endpoint.deleted", "bob"),
            ("webhook_endpoint.updated", "alice"),
            ("webhook_endpoint.created", "alice"),
        ]


class TestPermissions:
    def test_a_member_may_neither_read_nor_manage(self, app: App) -> None:
        """``webhooks:read`` and ``webhooks:manage`` are OWNER's and ADMIN's: a MEMBER gets 403 naming the
        permission, for reads and for every change, and nothing is changed."""
        endpoint_id = create(app, "http://127.0.0.1:9/hook").json["endpoint"]["id"]
        one = f"{ENDPOINTS}/{endpoint_id}"
        reads = [("GET", ENDPOINTS, None), ("GET", one, None), ("GET", f"{one}/deliveries", None)]
        changes = [
            ("POST", ENDPOINTS, {"url": "http://127.0.0.1:9/x", "event_types": ["member.added"]}),
            ("PATCH", one, {"description": "mine now"}),
            ("POST", f"{one}/disable", None),
            ("POST", f"{one}/enable", None),
            ("POST", f"{one}/rotate-secret", None),
            ("POST", f"{one}/test", None),
            ("POST", f"{one}/recover", {"since": "2030-01-01T00:00:00Z"}),
            ("DELETE", one, None),
        ]
        for method, path, body in reads + changes:
            reply = app.call(method, path, CAROL, body)
            assert error(reply) == (403, "permission_denied"), (method, path, reply)
            expected = "webhooks:read" if (method, path, body) in reads else "webhooks:manage"
            assert reply.json["error"]["action"] == expected
            assert "secret" not in reply.json
        endpoint = app.call("GET", one, ALICE).json
        assert (endpoint["enabled"], endpoint["description"]) == (True, "CRM sync")
        assert len(app.call("GET", ENDPOINTS, ALICE).json["items"]) == 1

    def test_another_organizations_owner_sees_nothing(self, app: App) -> None:
        """mallory, OWNER elsewhere, is no member here: 403 on org_1's endpoints, and her own
        organization's endpoint list does not hold them."""
        endpoint_id = create(app, "http://127.0.0.1:9/hook").json["endpoint"]["id"]
        assert error(app.call("GET", f"{ENDPOINTS}/{endpoint_id}", MALLORY)) == (403, "permission_denied")
        own = "/tk/organizations/org_2/webhook-endpoints"
        assert app.call("GET", own, MALLORY).json["items"] == []
        assert error(app.call("GET", f"{own}/{endpoint_id}", MALLORY)) == (404, "webhook_endpoint_not_found")


class TestRefusals:
    @pytest.mark.parametrize(
        ("body", "code", "field"),
        [
            ({"url": "http://127.0.0.1:9/x", "event_types": []}, "invalid_input", "event_types"),
            (
                {"url": "http://127.0.0.1:9/x", "event_types": ["member.exploded"]},
                "invalid_input",
                "event_types",
            ),
            ({"url": "http://127.0.0.1:9/x"}, "invalid_input", "event_types"),
            ({"url": "https://10.0.0.1/x", "event_types": ["member.added"]}, "unsafe_webhook_url", None),
            ({"url": "http://169.254.169.254/", "event_types": ["member.added"]}, "unsafe_webhook_url", None),
            ({"url": "x", "event_types": ["member.added"], "secret": "mine"}, "invalid_input", "secret"),
        ],
    )
    def test_a_bad_endpoint_is_422_and_not_created(
        self, app: App, body: dict[str, Any], code: str, field: str | None
    ) -> None:
        """No event type, an unknown one, a URL the sender must never reach, a field of our own choosing:
        422 with the error's code, and no endpoint."""
        reply = app.call("POST", ENDPOINTS, ALICE, body)
        assert error(reply) == (422, code), reply
        if field is not None:
            assert reply.json["error"]["field"] == field
        assert app.call("GET", ENDPOINTS, ALICE).json["items"] == []

    def test_recover_needs_an_aware_time(self, app: App) -> None:
        """``since`` without a zone is 422 naming ``since``."""
        endpoint_id = create(app, "http://127.0.0.1:9/hook").json["endpoint"]["id"]
        reply = app.call(
            "POST", f"{ENDPOINTS}/{endpoint_id}/recover", ALICE, {"since": "2030-01-01T00:00:00"}
        )
        assert (error(reply), reply.json["error"]["field"]) == ((422, "invalid_input"), "since")

    def test_unknown_endpoints_and_messages_are_404(self, app: App) -> None:
        """An endpoint or message the organization does not have: 404 with the webhook error's code."""
        assert error(app.call("POST", f"{ENDPOINTS}/nope/test", ALICE)) == (404, "webhook_endpoint_not_found")
        assert error(app.call("POST", f"{BASE}/webhook-messages/nope/resend", ALICE)) == (
            404,
            "webhook_message_not_found",
        )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_without_webhook_settings_there_are_no_webhook_routes(adapter: str, sqlite_engine: sa.Engine) -> None:
    """A kit without ``WebhookSettings(secret_keys=...)`` mounts no webhook route: the framework's 404."""
    client = BUILDERS[adapter](make_kit(), sqlite_engine)
    assert client.request("GET", ENDPOINTS, headers=ALICE).status == 404
