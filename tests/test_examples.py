"""The runnable examples work: the apps in process and under uvicorn, the demo, the webhook receiver and the
hospital."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx2
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# status, JSON body, headers
Answer = tuple[int, Any, dict[str, str]]
Call = Callable[..., Answer]


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tenantkit_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def user(user_id: str, email: str | None = None) -> dict[str, str]:
    headers = {"X-User": user_id}
    if email is not None:
        headers.update({"X-Email": email, "X-Email-Verified": "true"})
    return headers


def exercise(call: Call) -> None:
    """The walk-through of the examples' docstrings, with the answers each step must give."""
    signup = {**user("alice"), "X-Request-ID": "req-signup"}
    status, body, _ = call("POST", "/organizations", signup, {"organization_id": "acme"})
    assert (status, body["role"]) == (201, "OWNER")
    status, _, _ = call("POST", "/organizations", user("eve"), {"organization_id": "acme"})
    assert status == 409, "an existing organization cannot be claimed again"
    status, body, _ = call("POST", "/organizations", {}, {"organization_id": "other"})
    assert status == 401, "the identity stand-in refuses anonymous users"
    assert "X-User" in body["detail"]

    status, body, _ = call(
        "POST",
        "/tenantkit/organizations/acme/api-keys",
        user("alice"),
        {"name": "CI", "scopes": ["reports:read"]},
    )
    assert status == 201
    key = body["key"]
    status, body, _ = call("GET", "/api/reports", {"Authorization": f"Bearer {key}"})
    assert (status, body["organization_id"], body["key"]) == (200, "acme", "CI")
    status, body, headers = call("GET", "/api/reports", {})
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")
    assert "www-authenticate" in {name.lower() for name in headers}

    status, body, _ = call(
        "POST", "/tenantkit/organizations/acme/invitations", user("alice"), {"email": "bob@acme.example"}
    )
    assert status == 201
    token = body["token"]
    status, body, _ = call(
        "POST", "/tenantkit/invitations/accept", user("bob", "bob@acme.example"), {"token": token}
    )
    assert (status, body["role"]) == (200, "MEMBER")

    status, body, _ = call("GET", "/organizations/acme/billing", user("alice"))
    assert (status, body["your_role"]) == (200, "OWNER")
    status, body, _ = call("GET", "/organizations/acme/billing", user("bob"))
    assert (status, body["error"]["code"]) == (403, "permission_denied")
    status, body, _ = call("GET", "/tenantkit/organizations/acme/members", user("bob"))
    assert status == 200
    assert [(member["user_id"], member["role"]) for member in body["items"]] == [
        ("alice", "OWNER"),
        ("bob", "MEMBER"),
    ]

    status, body, _ = call("GET", "/tenantkit/organizations/acme/audit-events", user("alice"))
    assert status == 200
    logged = {(item["type"], item["actor"]["id"], item["context"]["request_id"]) for item in body["items"]}
    assert logged == {
        ("member.added", None, "req-signup"),
        ("api_key.issued", "alice", None),
        ("invitation.created", "alice", None),
        ("member.added", "bob", None),
        ("invitation.accepted", "bob", None),
    }
    status, body, _ = call("GET", "/tenantkit/organizations/acme/audit-events", user("bob"))
    assert (status, body["error"]["code"]) == (403, "permission_denied")

    status, body, _ = call(
        "PATCH", "/tenantkit/organizations/acme/members/bob", user("alice"), {"role": "billing_clerk"}
    )
    assert (status, body["role"], body["custom_role"]) == (200, "MEMBER", "billing_clerk")
    status, body, _ = call("GET", "/organizations/acme/billing", user("bob"))
    assert (status, body["your_role"]) == (200, "MEMBER")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'example.sqlite3'}"


class TestFastAPIExample:
    def test_walk_through(self, database_url: str) -> None:
        """The FastAPI example answers every step of its docstring's walk-through as documented."""
        app = load_example("fastapi_app").create_app(database_url)
        with TestClient(app) as client:

            def call(method: str, path: str, headers: dict[str, str], body: object = None) -> Answer:
                response = client.request(method, path, headers=headers, json=body)
                return response.status_code, response.json(), dict(response.headers)

            exercise(call)
            assert client.get("/openapi.json").status_code == 200

    def test_walk_through_on_an_async_engine(self, tmp_path: Path) -> None:
        """With ``async_engine=True`` (an AsyncEngine, an AsyncSession per request) the walk-through holds."""
        url = f"sqlite+aiosqlite:///{tmp_path / 'example.sqlite3'}"
        with TestClient(load_example("fastapi_app").create_app(url, async_engine=True)) as client:

            def call(method: str, path: str, headers: dict[str, str], body: object = None) -> Answer:
                response = client.request(method, path, headers=headers, json=body)
                return response.status_code, response.json(), dict(response.headers)

            exercise(call)

    def test_migrates_on_start_and_restarts_on_the_same_file(self, database_url: str) -> None:
        """Building the app migrates the file; building it again on the same file keeps the data."""
        module = load_example("fastapi_app")
        with TestClient(module.create_app(database_url)) as client:
            assert (
                client.post(
                    "/organizations", headers=user("alice"), json={"organization_id": "acme"}
                ).status_code
                == 201
            )
        with TestClient(module.create_app(database_url)) as client:
            assert client.get("/organizations/acme/billing", headers=user("alice")).status_code == 200


class TestFlaskExample:
    def test_walk_through(self, database_url: str, request: pytest.FixtureRequest) -> None:
        """The Flask example answers every step of its docstring's walk-through, like the FastAPI one."""
        app = load_example("flask_app").create_app(database_url)
        request.addfinalizer(app.extensions["example_engine"].dispose)
        client = app.test_client()

        def call(method: str, path: str, headers: dict[str, str], body: object = None) -> Answer:
            response = client.open(path, method=method, headers=headers, json=body)
            return response.status_code, response.get_json(), dict(response.headers)

        exercise(call)

    def test_the_pages_are_mounted(self, database_url: str, request: pytest.FixtureRequest) -> None:
        """The example mounts the drop-in pages: signed in through its stand-in, alice sees acme's team."""
        app = load_example("flask_app").create_app(database_url)
        request.addfinalizer(app.extensions["example_engine"].dispose)
        client = app.test_client()
        created = client.post("/organizations", headers={"X-User": "alice"}, json={"organization_id": "acme"})
        assert created.status_code == 201
        signed_in = client.get("/example-sign-in?user=alice&email=alice@acme.example")
        assert signed_in.status_code == 303
        team = client.get(signed_in.headers["Location"])
        assert team.status_code == 200
        assert "Team of acme" in team.get_data(as_text=True)
        assert team.headers["Cache-Control"] == "no-store"


class TestPagesExample:
    """``examples/pages_app.py``: the drop-in pages on a seeded database (``make screenshots`` serves it)."""

    @pytest.fixture
    def client(self, database_url: str) -> Iterator[TestClient]:
        app = load_example("pages_app").create_app(database_url)
        with TestClient(app) as client:
            yield client
        app.state.engine.dispose()

    def test_alice_signs_in_and_sees_the_seeded_team(self, client: TestClient) -> None:
        """The stand-in sign-in leads to acme's team page, listing every seeded member with their role."""
        home = client.get("/")
        assert "/example-sign-in?user=alice" in home.text
        team = client.get("/example-sign-in?user=alice&email=alice@acme.example")
        assert team.status_code == 200
        assert str(team.url).endswith("/account/organizations/acme/team")
        assert "Team of acme" in team.text
        for member, role in (
            ("alice", "OWNER"),
            ("bob", "ADMIN"),
            ("carol", "MEMBER"),
            ("dave", "billing_clerk"),
        ):
            assert member in team.text
            assert role in team.text
        assert team.headers["Cache-Control"] == "no-store"

    def test_every_seeded_page_shows_its_rows(self, client: TestClient) -> None:
        """The seed fills each page the screenshots show: the invitation, keys, role, endpoint, domains."""
        client.get("/example-sign-in?user=alice&email=alice@acme.example")
        expected = {
            "invitations": "erin@acme.example",
            "api-keys": "CI deploy",
            "audit": "member.added",
            "roles": "Billing clerk",
            "webhooks": "http://127.0.0.1:8001/",
            "domains": "acme.io",
        }
        for page, text in expected.items():
            answer = client.get(f"/account/organizations/acme/{page}")
            assert answer.status_code == 200, page
            assert text in answer.text, page
        assert "Acme Okta" in client.get("/account/organizations/acme/domains").text

    def test_the_audit_log_downloads_what_it_shows(self, client: TestClient) -> None:
        """The audit page's CSV link downloads the seeded events of acme as an attachment."""
        client.get("/example-sign-in?user=alice&email=alice@acme.example")
        page = client.get("/account/organizations/acme/audit?event_types=member.added")
        assert 'hx-boost="false"' in page.text
        answer = client.get("/account/organizations/acme/audit/export?format=csv&event_types=member.added")
        assert answer.status_code == 200
        assert answer.headers["Content-Disposition"].startswith('attachment; filename="audit-acme-')
        rows = answer.text.splitlines()
        assert rows[0].startswith("id,organization_id,")
        assert len(rows) - 1 == page.text.count('<th scope="row">member.added</th>') == 4

    def test_a_restart_keeps_the_database_as_it_is(self, database_url: str) -> None:
        """A second start on the same file seeds nothing again (the seed would fail on existing members)."""
        example = load_example("pages_app")
        engine = sa.create_engine(database_url)
        try:
            example.create_app(database_url).state.engine.dispose()
            assert example.seed(example.make_kit(), engine) is False
        finally:
            engine.dispose()

    def test_signed_out_visitors_are_refused(self, client: TestClient) -> None:
        """Without the stand-in cookie the pages answer 401: the example's hook decides who is signed in."""
        assert client.get("/account/organizations/acme/team").status_code == 401


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def serve_example(name: str, database_url: str, ready_path: str) -> Iterator[str]:
    """``examples/<name>.py`` under uvicorn in a subprocess on a free loopback port; always terminated."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--database", database_url, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"the example exited early ({process.returncode}):\n{output}")
            try:
                httpx2.get(f"{base_url}{ready_path}", timeout=1, trust_env=False)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("the example did not start listening within 60 s")
                time.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def fastapi_server(database_url: str) -> Iterator[str]:
    """The FastAPI example under uvicorn on a free loopback port."""
    yield from serve_example("fastapi_app", database_url, "/openapi.json")


@pytest.fixture
def starlette_server(database_url: str) -> Iterator[str]:
    """The Starlette example under uvicorn on a free loopback port."""
    yield from serve_example("starlette_app", database_url, "/health")


class TestFastAPIOverASocket:
    def test_uvicorn_serves_the_example(self, fastapi_server: str) -> None:
        """Under uvicorn on 127.0.0.1 the example creates an owner, issues a key and guards its route."""
        with httpx2.Client(base_url=fastapi_server, timeout=10, trust_env=False) as client:
            created = client.post("/organizations", headers=user("alice"), json={"organization_id": "acme"})
            assert created.status_code == 201
            issued = client.post(
                "/tenantkit/organizations/acme/api-keys",
                headers=user("alice"),
                json={"name": "CI", "scopes": ["reports:read"]},
            )
            assert issued.status_code == 201
            key = issued.json()["key"]
            allowed = client.get("/api/reports", headers={"Authorization": f"Bearer {key}"})
            assert allowed.status_code == 200
            assert allowed.json()["organization_id"] == "acme"
            refused = client.get("/api/reports")
            assert refused.status_code == 401
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert refused.json()["error"]["code"] == "invalid_api_key"


def issue_key_with_the_cli(database_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """``tenantkit keys issue … acme CI --scope reports:read``, as the Starlette example says; the key."""
    from tenantkit._cli import main

    capsys.readouterr()
    main(
        ["keys", "issue", "--url", database_url, "acme", "CI", "--scope", "reports:read", "--json"],
        standalone_mode=False,
    )
    key: str = json.loads(capsys.readouterr().out)["key"]
    return key


def exercise_starlette(call: Call, key: str) -> None:
    """The Starlette example's walk-through, with the answers each step must give."""
    status, body, _ = call("GET", "/api/me", {"Authorization": f"Bearer {key}"})
    assert (status, body["key"], body["organization_id"]) == (200, "CI", "acme")
    assert body["scopes"] == ["authenticated", "reports:read"]
    status, body, _ = call("GET", "/api/reports", {"X-API-Key": key})
    assert (status, body["organization_id"]) == (200, "acme")
    status, _, _ = call("GET", "/api/exports", {"Authorization": f"Bearer {key}"})
    assert status == 403, "a scope the key does not carry"
    status, body, headers = call("GET", "/api/reports", {"Authorization": "Bearer tk_live_nope"})
    assert (status, body["error"]["code"], body["error"]["reason"]) == (401, "invalid_api_key", "malformed")
    assert headers["www-authenticate"].startswith("Bearer")
    status, body, _ = call("GET", "/health", {})
    assert (status, body) == (200, {"status": "ok"})
    status, _, _ = call("GET", "/api/reports", {})
    assert status == 403, "no key: unauthenticated, and requires() refuses"


def starlette_answer(response: Any) -> Answer:
    """Status, JSON body (``None`` for Starlette's plain-text 403) and lower-cased headers."""
    json_body = response.headers.get("content-type") == "application/json"
    headers = {name.lower(): value for name, value in response.headers.items()}
    return response.status_code, response.json() if json_body else None, headers


def key_last_used(database_url: str) -> object:
    import tenantkit

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.select(tenantkit.tables.api_keys.c.last_used_at)).scalar_one()
    finally:
        engine.dispose()


class TestPagesExampleOverASocket:
    def test_python_runs_it_under_uvicorn(self, database_url: str) -> None:
        """``python examples/pages_app.py`` serves the sign-in list and, signed in, the team page."""
        for base_url in serve_example("pages_app", database_url, "/"):
            with httpx2.Client(base_url=base_url, timeout=10, trust_env=False) as client:
                assert "Sign in as alice" in client.get("/").text
                team = client.get("/example-sign-in?user=bob&email=bob@acme.example", follow_redirects=True)
                assert team.status_code == 200
                assert "Team of acme" in team.text


class TestStarletteExample:
    def test_walk_through(self, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        """The Starlette example answers its docstring's walk-through; the key's use is written at the end."""
        app = load_example("starlette_app").create_app(database_url, flush_every=timedelta(hours=1))
        key = issue_key_with_the_cli(database_url, capsys)
        with TestClient(app) as client:

            def call(method: str, path: str, headers: dict[str, str], body: object = None) -> Answer:
                return starlette_answer(client.request(method, path, headers=headers))

            exercise_starlette(call, key)
            assert key_last_used(database_url) is None, "deferred: not written during the request"
        assert key_last_used(database_url) is not None

    def test_uvicorn_serves_the_example(
        self, starlette_server: str, database_url: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Under uvicorn on 127.0.0.1, ``python examples/starlette_app.py`` answers the same walk-through."""
        key = issue_key_with_the_cli(database_url, capsys)
        with httpx2.Client(base_url=starlette_server, timeout=10, trust_env=False) as client:

            def call(method: str, path: str, headers: dict[str, str], body: object = None) -> Answer:
                return starlette_answer(client.request(method, path, headers=headers))

            exercise_starlette(call, key)


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What ``examples/demo.py`` prints, run once in a subprocess with warnings as errors."""
    path = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    finished = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / "demo.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    return finished.stdout


class TestDemo:
    def test_summary_shows_every_step(self, output: str) -> None:
        """The demo migrates, verifies a key, lists the three members and shows the revoked key failing."""
        assert re.search(r"revisions\s+0001, 0002, 0003", output)
        assert "valid=True organization=acme" in output
        assert re.search(r"alice\s+OWNER\n\s+bob\s+ADMIN\n\s+carol\s+MEMBER\n", output)
        assert "valid=False reason=revoked" in output

    def test_refusals_show_their_error_codes(self, output: str) -> None:
        """The wrong-domain acceptance, the escalation and the MEMBER's key issuance are refused by code."""
        assert "refused: domain_not_allowed" in output
        assert "refused: role_escalation" in output
        assert "refused: permission_denied" in output
        assert "refused: last_owner" in output

    def test_events_are_listed(self, output: str) -> None:
        """The events delivered after commit are printed, the refused attempts adding none."""
        events = output.split("Events delivered after commit", 1)[1].split("The audit log", 1)[0]
        assert events.count("member.added") == 3
        assert events.count("invitation.accepted") == 2
        assert "api_key.revoked" in events
        assert "role_escalation" not in events

    def test_the_audit_log_is_read_back(self, output: str) -> None:
        """The audit log lists the newest changes first; the revocation names its client and request."""
        audit = output.split("The audit log, newest first", 1)[1]
        assert re.search(r"api_key\.revoked\s+by alice\s+from 203\.0\.113\.7\s+request req-8", audit)
        assert audit.count("member.added") + audit.count("invitation.accepted") == 3

    def test_no_secret_is_printed_in_full(self, output: str) -> None:
        """Keys appear only as their first characters, and no invitation token appears at all."""
        assert re.search(r"tk_live_\w{4}…", output)
        assert not re.search(r"tk_live_\w{20,}", output)
        assert "token" not in output.lower()


@contextmanager
def wsgi_server(app: Callable[..., Any]) -> Iterator[str]:
    """``app`` served by the standard library's WSGI server on a free loopback port, in a thread."""

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def signed_post(url: str, secret: str, body: bytes, message_id: str = "msg_crafted") -> httpx2.Response:
    """POST ``body`` as tenantkit signs a delivery (its own ``sign``), stamped now."""
    from tenantkit.webhooks import sign

    timestamp = int(time.time())
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }
    return httpx2.post(url, content=body, headers=headers, timeout=10, trust_env=False)


class TestWebhookReceiverExample:
    def test_it_verifies_a_real_delivery_from_the_worker_and_handles_it_once(
        self, sqlite_engine: Any
    ) -> None:
        """tenantkit's worker delivers a ``member.added`` to the example receiver, which verifies it with
        ``standardwebhooks`` and handles it; a resend (same ``webhook-id``) is answered 2xx, handled once."""
        from tenantkit import HOST, Role, TenantKit, WebhookSettings

        kit = TenantKit(
            webhooks=WebhookSettings(
                secret_keys=["example-test-webhook-key-0001"],
                allow_http=True,
                allow_networks=["127.0.0.1/32"],
                timeout="5s",
                lease="20s",
            )
        )
        handled: list[tuple[str, dict[str, Any]]] = []
        holder: dict[str, Any] = {}
        with wsgi_server(lambda environ, start: holder["app"](environ, start)) as url:
            with kit.transaction(sqlite_engine) as session:
                kit.members.add(session, "acme", "alice", Role.OWNER, actor=HOST)
                created = kit.webhooks.create_endpoint(session, "acme", url, ["member.added"], actor="alice")
            holder["app"] = load_example("webhook_receiver").create_app(
                created.reveal(), lambda webhook_id, event: handled.append((webhook_id, event))
            )
            with kit.transaction(sqlite_engine) as session:
                kit.members.add(session, "acme", "bob", Role.MEMBER, actor="alice")

            assert kit.webhooks.deliver_due(sqlite_engine).succeeded == 1
            ((message_id, event),) = handled
            assert (event["type"], event["organization_id"], event["data"]) == (
                "member.added",
                "acme",
                {"user_id": "bob", "role": "MEMBER", "custom_role": None},
            )
            with kit.transaction(sqlite_engine) as session:
                kit.webhooks.resend(session, "acme", message_id, actor="alice")
            assert kit.webhooks.deliver_due(sqlite_engine).succeeded == 1
            assert [webhook_id for webhook_id, _ in handled] == [message_id]
            assert holder["app"].seen == {message_id}

    def test_it_refuses_what_the_secret_did_not_sign(self) -> None:
        """Signed by tenantkit's ``sign`` with the endpoint's secret: 200 and handled. The body altered
        after signing, another secret, no signature, or not a POST: refused, and nothing more handled."""
        from tenantkit.webhooks import generate_secret, sign

        secret = generate_secret()
        handled: list[str] = []
        receiver = load_example("webhook_receiver").create_app(
            secret, lambda webhook_id, _: handled.append(webhook_id)
        )
        body = json.dumps({"type": "webhook.test", "organization_id": "acme", "data": {}}).encode()
        with wsgi_server(receiver) as url:
            assert signed_post(url, secret, body, "msg_1").status_code == 200
            timestamp = int(time.time())
            altered = httpx2.post(
                url,
                content=body.replace(b"acme", b"evil"),
                headers={
                    "webhook-id": "msg_2",
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign(secret, "msg_2", timestamp, body),
                },
                timeout=10,
                trust_env=False,
            )
            assert altered.status_code == 401
            assert signed_post(url, generate_secret(), body, "msg_3").status_code == 401
            assert httpx2.post(url, content=body, timeout=10, trust_env=False).status_code == 401
            assert httpx2.get(url, timeout=10, trust_env=False).status_code == 405
        assert handled == ["msg_1"]


class TestFlaskExampleWithWebhooks:
    def test_the_blueprint_registers_an_endpoint_and_the_receiver_example_verifies_it(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
    ) -> None:
        """With ``TENANTKIT_WEBHOOK_*`` set, the Flask example serves the webhook routes: alice registers
        the receiver example (the secret shown once, ``no-store``); the key she then issues reaches it,
        verified, without the key in the payload."""
        monkeypatch.setenv("TENANTKIT_WEBHOOK_SECRET_KEYS", "example-only-webhook-key-0123456789")
        monkeypatch.setenv("TENANTKIT_WEBHOOK_ALLOW_HTTP", "true")
        monkeypatch.setenv("TENANTKIT_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")
        app = load_example("flask_app").create_app(database_url)
        engine = app.extensions["example_engine"]
        request.addfinalizer(engine.dispose)
        client = app.test_client()
        handled: list[dict[str, Any]] = []
        holder: dict[str, Any] = {}
        with wsgi_server(lambda environ, start: holder["app"](environ, start)) as url:
            assert (
                client.post(
                    "/organizations", headers=user("alice"), json={"organization_id": "acme"}
                ).status_code
                == 201
            )
            created = client.post(
                "/tenantkit/organizations/acme/webhook-endpoints",
                headers=user("alice"),
                json={"url": url, "event_types": ["member.added", "api_key.issued"]},
            )
            assert (created.status_code, created.headers["Cache-Control"]) == (201, "no-store")
            secret = created.get_json()["secret"]
            holder["app"] = load_example("webhook_receiver").create_app(
                secret, lambda _, event: handled.append(event)
            )
            issued = client.post(
                "/tenantkit/organizations/acme/api-keys", headers=user("alice"), json={"name": "CI"}
            ).get_json()

            kit = app.extensions["tenantkit"].kit
            assert kit.webhooks.deliver_due(engine).succeeded == 1
        ((event),) = handled
        assert (event["type"], event["actor"]) == ("api_key.issued", {"kind": "user", "id": "alice"})
        assert issued["key"] not in json.dumps(event)
        endpoint_id = created.get_json()["endpoint"]["id"]
        deliveries = client.get(
            f"/tenantkit/organizations/acme/webhook-endpoints/{endpoint_id}/deliveries", headers=user("alice")
        ).get_json()["items"]
        assert [(item["event_type"], item["status"]) for item in deliveries] == [
            ("api_key.issued", "succeeded")
        ]


@pytest.fixture(scope="module")
def hospital_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What ``examples/hospital.py`` prints, run once in a subprocess with warnings as errors."""
    path = tmp_path_factory.mktemp("hospital") / "hospital.sqlite3"
    finished = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / "hospital.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == ""
    return finished.stdout


class TestHospitalExample:
    """``examples/hospital.py``: registry, physician and nurse roles, departments, licences, suspension."""

    def test_the_roles_are_declared_in_the_registry(self, hospital_output: str) -> None:
        """The deployment-wide roles sit inside MEMBER with the registry's permissions."""
        assert "roles nurse (MEMBER: records:read), physician (MEMBER: orders:sign, records:read)" in (
            hospital_output
        )
        assert "departments Cardiology, Emergency" in hospital_output

    def test_no_administrator_makes_a_physician(self, hospital_output: str) -> None:
        """The head of cardiology cannot offer a role signing orders it cannot sign; the host's flow can."""
        assert "head-cardio may not invite a physician (permission_escalation, missing orders:sign)" in (
            hospital_output
        )
        assert "invited dr.lee@example.org as MEMBER/physician" in hospital_output

    def test_the_licence_check_denies_then_admits_with_the_role(self, hospital_output: str) -> None:
        """The physician licensed in the wrong state is denied by code and requirement, then admitted as a
        physician; the nurse as a nurse; each in a department with the credential verified."""
        assert "denied (acceptance_denied, licence_state)" in hospital_output
        assert "lee          MEMBER/physician MD  ['Cardiology']" in hospital_output
        assert "nina         MEMBER/nurse     RN  ['Emergency']" in hospital_output

    def test_the_roles_answer_permission_checks(self, hospital_output: str) -> None:
        """A physician signs orders, a nurse reads records but signs nothing, ADMIN reads records through
        the table, and a misspelt permission is refused rather than quietly denied."""
        assert "lee orders:sign: yes" in hospital_output
        assert "nina records:read: yes" in hospital_output
        assert "nina orders:sign: no (permission_denied)" in hospital_output
        assert "head-cardio records:read: yes" in hospital_output
        assert "a typo is refused (unknown_permission)" in hospital_output

    def test_the_lapsed_licence_is_suspended_and_resumed_after_renewal(self, hospital_output: str) -> None:
        """The nurse whose licence lapsed is suspended and refused, then resumed with her role once a renewal
        is recorded."""
        assert "suspended ['nina']" in hospital_output
        assert "nina records:read: no (member_suspended)" in hospital_output
        assert "nina resumed as MEMBER/nurse; records:read: yes" in hospital_output
        assert "audit member.suspended, member.attributes_recorded, member.resumed" in hospital_output

    def test_the_same_story_on_every_database(self, engine: sa.Engine, hospital_output: str) -> None:
        """``run(engine)`` on SQLite, PostgreSQL and MariaDB prints exactly what the script prints."""
        lines: list[str] = []
        load_example("hospital").run(engine, lines.append)
        assert lines == hospital_output.splitlines()[1:]
