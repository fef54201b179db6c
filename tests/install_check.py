"""Check an installed tenantkit as a new user meets it: the modules an extra offers import, and work.

Run by ``.ci/wheels`` with the Python of a fresh virtual environment that holds only the wheel and the
named extras (so nothing from the source tree or the dev extra helps), and by the test suite with a module
refused (``--refuse greenlet``) to prove a sync host needs no greenlet. It needs nothing but the standard
library and what the extras install: the FastAPI app is driven as a bare ASGI callable (no test client is
installed with ``[fastapi]`` or ``[starlette]``), the Flask app through Flask's own ``test_client()``. With
``[webhooks]`` the worker delivers one message to a standard-library receiver on 127.0.0.1, whose signature is
checked against the specification; without it, webhook settings must be refused naming the extra.

Usage::

    python install_check.py --extras fastapi,async --database /tmp/x.sqlite3 [--migrate] [--refuse greenlet]

Every step prints one line; the first failure exits non-zero with a message naming the step.
"""

import argparse
import asyncio
import importlib
import importlib.abc
import importlib.machinery
import json
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KNOWN_EXTRAS = (
    "fastapi",
    "flask",
    "starlette",
    "postgres",
    "mysql",
    "async",
    "webhooks",
    "limits",
    "redis",
    "ui",
)
ORGANIZATION = "org_install_check"
SCOPE = "reports:read"

# The public modules each extra makes importable, beside the core's (always checked).
CORE_MODULES = (
    "tenantkit",
    "tenantkit.errors",
    "tenantkit.events",
    "tenantkit.tables",
    "tenantkit.testing",
    "tenantkit.webhooks",  # importable without its extra: only sending and the secrets at rest need it
    "tenantkit._cli",
)
EXTRA_MODULES = {
    "fastapi": ("tenantkit.fastapi",),
    "flask": ("tenantkit.flask",),
    "starlette": ("tenantkit.starlette",),
    "postgres": ("psycopg",),
    "mysql": ("pymysql",),
    "async": ("sqlalchemy.ext.asyncio", "aiosqlite", "greenlet"),
    "limits": ("limits", "limits.strategies"),
    "redis": ("redis",),
    "webhooks": ("httpx", "cryptography.fernet"),
    "ui": ("tenantkit.ui", "jinja2", "babel"),
}
WEBHOOK_ENVIRONMENT = {
    "TENANTKIT_WEBHOOK_SECRET_KEYS": "install-check-webhook-key-0001",
    # The receiver is on 127.0.0.1 over HTTP, which the sender refuses unless the host allows it.
    "TENANTKIT_WEBHOOK_ALLOW_HTTP": "true",
    "TENANTKIT_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
}


class InstallCheckFailed(Exception):
    """One step of the check failed; the message says which and why."""


class RefusingFinder(importlib.abc.MetaPathFinder):
    """Makes the named top-level modules unimportable, as if they were not installed."""

    def __init__(self, refused: Sequence[str]) -> None:
        self.refused = frozenset(refused)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.refused:
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (refused by install_check)", name=fullname
            )
        return None


@contextmanager
def step(description: str) -> Iterator[None]:
    """Run one step; any exception becomes an :class:`InstallCheckFailed` naming it."""
    try:
        yield
    except InstallCheckFailed:
        raise
    except BaseException as error:
        raise InstallCheckFailed(f"{description}: {type(error).__name__}: {error}") from error
    print(f"ok: {description}", flush=True)


def import_modules(extras: Sequence[str]) -> None:
    for name in CORE_MODULES + tuple(module for extra in extras for module in EXTRA_MODULES[extra]):
        with step(f"import {name}"):
            importlib.import_module(name)
    tenantkit = sys.modules["tenantkit"]
    package = Path(tenantkit.__file__ or "?").parent
    print(f"tenantkit {tenantkit.__version__} from {package}", flush=True)
    with step("the package is marked typed (py.typed)"):
        if not (package / "py.typed").is_file():
            raise InstallCheckFailed(f"{package} has no py.typed: type checkers would ignore its annotations")


def migrate(url: str) -> None:
    from tenantkit._cli import main

    with step(f"tenantkit db upgrade --url {url}"):
        main(["db", "upgrade", "--url", url], standalone_mode=False)


def issue_key(url: str) -> str:
    """Seed one organization with an owner and a scoped key; return the key's plaintext."""
    import sqlalchemy as sa

    import tenantkit

    kit = tenantkit.TenantKit()
    engine = sa.create_engine(url)
    try:
        with step("issue an API key"), tenantkit.transaction(engine) as session:
            kit.members.add(session, ORGANIZATION, "user_owner", tenantkit.Role.OWNER, actor=tenantkit.HOST)
            issued = kit.api_keys.issue(
                session, ORGANIZATION, "install check", actor=tenantkit.HOST, scopes=[SCOPE]
            )
    finally:
        engine.dispose()
    return issued.reveal()


def call_asgi(app: Callable[..., Any], path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Send one GET to an ASGI app and return its status and JSON body."""
    messages: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(message for message in messages if message["type"] == "http.response.start")
    body = b"".join(
        message.get("body", b"") for message in messages if message["type"] == "http.response.body"
    )
    return start["status"], json.loads(body)


def expect_protected(
    status_and_body: Callable[[dict[str, str]], tuple[int, dict[str, Any]]],
    key: str,
    refused: dict[str, str] | None = None,
) -> None:
    """The route answers the key with its organization, and a request without one (or ``refused``) 401."""
    status, body = status_and_body({"Authorization": f"Bearer {key}"})
    if status != 200 or body.get("organization_id") != ORGANIZATION:
        raise InstallCheckFailed(f"with a valid key: expected 200 and the organization, got {status} {body}")
    status, body = status_and_body(refused or {})
    if status != 401 or body.get("error", {}).get("code") != "invalid_api_key":
        raise InstallCheckFailed(f"without a valid key: expected 401 invalid_api_key, got {status} {body}")


def serve_fastapi(url: str, key: str, *, session_kind: str) -> None:
    # No ``from __future__ import annotations`` in this file: FastAPI reads the route's annotations at
    # run time, and they name types imported here, in the function.
    from collections.abc import AsyncIterator
    from typing import Annotated

    import sqlalchemy as sa
    from fastapi import Depends, FastAPI
    from sqlalchemy.orm import Session

    from tenantkit import ApiKeyVerification, TenantKit
    from tenantkit.fastapi import TenantKitFastAPI

    disposers: list[Callable[[], Any]] = []
    if session_kind == "sync":
        engine = sa.create_engine(url)
        disposers.append(engine.dispose)

        def get_session() -> Iterator[Session]:
            with Session(engine) as session:
                yield session

        dependency: Callable[..., Any] = get_session
    else:
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

        async_engine = create_async_engine(url.replace("sqlite://", "sqlite+aiosqlite://", 1))

        async def get_async_session() -> AsyncIterator[AsyncSession]:
            async with AsyncSession(async_engine) as session:
                yield session

        dependency = get_async_session
        disposers.append(lambda: asyncio.run(async_engine.dispose()))

    tk = TenantKitFastAPI(TenantKit(), session=dependency)
    app = FastAPI()
    tk.install(app)

    @app.get("/reports")
    def reports(verified: Annotated[ApiKeyVerification, Depends(tk.api_key(SCOPE))]) -> dict[str, str | None]:
        return {"organization_id": verified.organization_id}

    try:
        with step(f"FastAPI ({session_kind} session) serves an API-key-protected request"):
            expect_protected(lambda headers: call_asgi(app, "/reports", headers), key)
    finally:
        for dispose in disposers:
            dispose()


def serve_flask(url: str, key: str) -> None:
    import sqlalchemy as sa
    from flask import Flask
    from sqlalchemy.orm import Session

    from tenantkit import TenantKit
    from tenantkit.flask import TenantKitFlask, current_api_key

    engine = sa.create_engine(url)
    sessions: list[Session] = []

    def get_session() -> Session:
        session = Session(engine)
        sessions.append(session)
        return session

    app = Flask(__name__)
    tk = TenantKitFlask(TenantKit(), session=get_session)
    tk.init_app(app)

    @app.get("/reports")
    @tk.require_api_key(SCOPE)
    def reports() -> dict[str, str | None]:
        return {"organization_id": current_api_key().organization_id}

    def get(headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        response = app.test_client().get("/reports", headers=headers)
        return response.status_code, response.get_json()

    try:
        with step("Flask serves an API-key-protected request"):
            expect_protected(get, key)
    finally:
        for session in sessions:
            session.close()
        engine.dispose()


def serve_starlette(url: str, key: str, *, engine_kind: str) -> None:
    import sqlalchemy as sa
    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tenantkit import TenantKit
    from tenantkit.starlette import ApiKeyBackend, ApiKeyUser

    if engine_kind == "sync":
        engine: Any = sa.create_engine(url)
        dispose: Callable[[], None] = engine.dispose
    else:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(url.replace("sqlite://", "sqlite+aiosqlite://", 1))

        def dispose() -> None:
            asyncio.run(engine.dispose())

    @requires(SCOPE)
    async def reports(request: Request) -> JSONResponse:
        user: ApiKeyUser = request.user  # what requires() let through
        return JSONResponse({"organization_id": user.organization_id})

    backend = ApiKeyBackend(TenantKit(), database=engine)
    app = Starlette(routes=[Route("/reports", reports)], middleware=[backend.middleware()])
    # A request without a key goes on unauthenticated (requires() answers 403); a refused key is the 401.
    malformed = {"Authorization": "Bearer tk_live_not-a-key"}
    try:
        with step(f"Starlette ({engine_kind} engine) authenticates an API key before routing"):
            expect_protected(lambda headers: call_asgi(app, "/reports", headers), key, malformed)
    finally:
        dispose()


def verify_async(url: str, key: str) -> None:
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from tenantkit import TenantKit

    kit = TenantKit()

    async def verify() -> str | None:
        engine = create_async_engine(url.replace("sqlite://", "sqlite+aiosqlite://", 1))
        try:
            async with AsyncSession(engine) as session:
                verified = await session.run_sync(kit.api_keys.verify, key)
                return verified.organization_id
        finally:
            await engine.dispose()

    with step("AsyncSession.run_sync verifies the key on aiosqlite"):
        organization = asyncio.run(verify())
        if organization != ORGANIZATION:
            raise InstallCheckFailed(f"verified the key for {organization!r}, not {ORGANIZATION!r}")


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A real HTTP server on 127.0.0.1 answering 204 to every POST; yields its URL and what it received."""
    import http.server
    import threading

    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            received.append(({name.lower(): value for name, value in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def expect_signed(secret: str, headers: dict[str, str], body: bytes) -> None:
    """The delivery carries a Standard Webhooks v1 signature of ``id.timestamp.body`` under ``secret``.

    Computed here from the specification with the standard library, not with tenantkit's own code.
    """
    import base64
    import hashlib
    import hmac

    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if not any(hmac.compare_digest(expected, given) for given in headers["webhook-signature"].split()):
        raise InstallCheckFailed(f"the delivery's signature does not verify: {headers['webhook-signature']}")


def deliver_webhook(url: str) -> None:
    """Register an endpoint, queue a message, and let ``tenantkit webhooks work --once`` deliver it."""
    import os

    import sqlalchemy as sa

    import tenantkit
    from tenantkit._cli import main

    os.environ.update(WEBHOOK_ENVIRONMENT)  # read by the kit below and by the CLI, as a host would set them
    kit = tenantkit.TenantKit.from_env()
    engine = sa.create_engine(url)
    try:
        with webhook_receiver() as (hook_url, received):
            with step("create a webhook endpoint"), tenantkit.transaction(engine) as session:
                created = kit.webhooks.create_endpoint(
                    session, ORGANIZATION, hook_url, ["member.added"], actor=tenantkit.HOST
                )
            with step("queue a webhook message with a change"), tenantkit.transaction(engine) as session:
                kit.members.add(
                    session, ORGANIZATION, "user_hooked", tenantkit.Role.MEMBER, actor=tenantkit.HOST
                )
            with step(f"tenantkit webhooks work --once --url {url} delivers it, signed"):
                main(["webhooks", "work", "--once", "--url", url], standalone_mode=False)
                if len(received) != 1:
                    raise InstallCheckFailed(f"the receiver got {len(received)} deliveries, not 1")
                headers, body = received[0]
                expect_signed(created.reveal(), headers, body)
                event = json.loads(body)
                if (event["type"], event["data"]["user_id"]) != ("member.added", "user_hooked"):
                    raise InstallCheckFailed(f"the delivery is not the change made: {event}")
    finally:
        engine.dispose()


def refuse_webhooks_without_the_extra() -> None:
    """Without ``cryptography`` a kit with webhook settings is refused, naming the extra to install."""
    import importlib.util

    import tenantkit

    try:
        installed = importlib.util.find_spec("cryptography") is not None
    except ModuleNotFoundError:  # refused (--refuse cryptography): as good as not installed
        installed = False
    if installed:
        print(
            "note: cryptography is installed all the same; the refusal without it is not checked", flush=True
        )
        return
    with step("webhooks without the extra are refused, naming tenantkit[webhooks]"):
        try:
            tenantkit.TenantKit(
                webhooks=tenantkit.WebhookSettings(
                    secret_keys=[WEBHOOK_ENVIRONMENT["TENANTKIT_WEBHOOK_SECRET_KEYS"]]
                )
            )
        except tenantkit.TenantKitError as error:
            if "tenantkit[webhooks]" not in str(error):
                raise InstallCheckFailed(f"the refusal does not name the extra: {error}") from error
        else:
            raise InstallCheckFailed("a kit with webhooks was built without cryptography installed")


def render_pages(url: str) -> None:
    """The pages' files came with the wheel (templates, the catalog template), and a host catalog written
    here translates the accept page, dates in the viewer's zone: Babel and tzdata work without the tree."""
    import tempfile
    from importlib import resources

    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from tenantkit import TenantKit
    from tenantkit._http import Principal
    from tenantkit.ui import PageRequest, PageSite

    with step("the wheel ships the pages' catalog template"):
        template = resources.files("tenantkit.ui").joinpath("locale").joinpath("tenantkit.pot")
        if 'msgid "Invitation"' not in template.read_text(encoding="utf-8"):
            raise InstallCheckFailed("tenantkit/ui/locale/tenantkit.pot is missing or lacks its messages")
    with tempfile.TemporaryDirectory() as directory, step("the accept page renders in a host's language"):
        catalog = Path(directory, "de", "LC_MESSAGES")
        catalog.mkdir(parents=True)
        (catalog / "tenantkit.po").write_text('msgid "Invitation"\nmsgstr "Einladung"\n', encoding="utf-8")
        site = PageSite(TenantKit(), secret_key="install-check-pages-key", translations=[directory])
        route = next(route for route in site.routes() if route.name == "accept")
        request = PageRequest("GET", "/invitations/accept", {}, {}, {}, {}, None, "http://testserver", "de")
        principal = Principal(user_id="u", time_zone="America/New_York")
        engine = sa.create_engine(url)
        try:
            with Session(engine) as session:
                answer = site.handle(session, route, request, principal)
        finally:
            engine.dispose()
        body = answer.body.decode()
        if answer.status != 200 or '<html lang="de">' not in body or "<h1>Einladung</h1>" not in body:
            raise InstallCheckFailed(f"the accept page was not rendered in German ({answer.status})")


def run(extras: Sequence[str], database: str, *, migrate_first: bool) -> None:
    url = f"sqlite:///{database}"
    import_modules(extras)
    if migrate_first:
        migrate(url)
    key = issue_key(url)
    if "fastapi" in extras:
        serve_fastapi(url, key, session_kind="sync")
        if "async" in extras:
            serve_fastapi(url, key, session_kind="async")
    if "flask" in extras:
        serve_flask(url, key)
    if "starlette" in extras:
        serve_starlette(url, key, engine_kind="sync")
        if "async" in extras:
            serve_starlette(url, key, engine_kind="async")
    if "async" in extras:
        verify_async(url, key)
    if "ui" in extras:
        render_pages(url)
    if "webhooks" in extras:
        deliver_webhook(url)
    else:
        refuse_webhooks_without_the_extra()


def parse_extras(text: str) -> list[str]:
    extras = [extra.strip() for extra in text.split(",") if extra.strip()]
    unknown = sorted(set(extras) - set(KNOWN_EXTRAS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown extra(s) {unknown}; known: {', '.join(KNOWN_EXTRAS)}")
    return extras


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", type=parse_extras, default=[], help="comma-separated extras installed")
    parser.add_argument("--database", required=True, help="path of an SQLite file (created if missing)")
    parser.add_argument("--migrate", action="store_true", help="run `tenantkit db upgrade` in-process first")
    parser.add_argument("--refuse", action="append", default=[], help="a module to make unimportable")
    arguments = parser.parse_args(argv)
    if arguments.refuse:
        sys.meta_path.insert(0, RefusingFinder(arguments.refuse))
    label = ",".join(arguments.extras) or "no extra"
    try:
        run(arguments.extras, arguments.database, migrate_first=arguments.migrate)
    except InstallCheckFailed as failure:
        print(f"install check FAILED [{label}]: {failure}", file=sys.stderr, flush=True)
        return 1
    print(f"install check passed [{label}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
