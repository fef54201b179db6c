"""A receiver of tenantkit's webhooks: verify each delivery's signature, handle each message once.

This is your customer's side (or your own, for a test endpoint): a plain WSGI app, so any WSGI server runs
it, and in Flask, Django or FastAPI the steps are the same. Run it with the secret the endpoint's creation
showed (``whsec_...``, shown once)::

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py --port 8001   # http://127.0.0.1:8001/

and register ``http://127.0.0.1:8001/`` as an endpoint, for example with ``examples/flask_app.py`` (its
docstring shows how; a sender reaches 127.0.0.1 over HTTP only when the host allows it, for development).

Every delivery carries ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (Standard Webhooks
v1). The receiver:

1. verifies the signature over the raw body with the reference library, ``standardwebhooks`` (which also
   refuses timestamps more than five minutes off, so a recorded delivery cannot be replayed later);
2. deduplicates on ``webhook-id``: delivery is at least once, and a retry carries the same id;
3. answers 2xx quickly (any other answer, or a timeout, is retried; 410 Gone disables the endpoint).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from standardwebhooks import Webhook, WebhookVerificationError

__all__ = ["MAX_BODY", "Receiver", "create_app"]

logger = logging.getLogger("webhook_receiver")

MAX_BODY = 1024 * 1024
"""The largest body read (tenantkit's payloads are a few hundred bytes)."""

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Handler = Callable[[str, dict[str, Any]], None]


def log_event(webhook_id: str, event: dict[str, Any]) -> None:
    """The default handler: log what happened (put your own work here, or queue it)."""
    logger.info("%s %s in %s: %s", webhook_id, event["type"], event["organization_id"], event["data"])


class Receiver:
    """The WSGI app: verifies with ``secret``, hands each new message to ``handle`` once.

    ``seen`` remembers handled ``webhook-id`` values in memory, which is enough for one process; with several
    processes keep them in your database under a unique key, in the transaction that does the work.
    """

    def __init__(self, secret: str, handle: Handler = log_event) -> None:
        self.webhook = Webhook(secret)
        self.handle = handle
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":
            return _answer(start_response, "405 Method Not Allowed", {"error": "POST only"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return _answer(start_response, "413 Content Too Large", {"error": "body too large"})
        body = environ["wsgi.input"].read(length)
        # The three headers, as WSGI names them (HTTP_WEBHOOK_ID, ...); verify() reads them by their own name.
        headers = {
            name: environ.get("HTTP_" + name.upper().replace("-", "_"), "")
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        }
        try:
            event = self.webhook.verify(body, headers)  # the raw body: never a re-serialized copy
        except WebhookVerificationError as error:
            logger.warning("refused a delivery: %s", error)
            return _answer(start_response, "401 Unauthorized", {"error": "signature not verified"})
        webhook_id = headers["webhook-id"]
        with self._lock:
            duplicate = webhook_id in self.seen
            self.seen.add(webhook_id)
        if not duplicate:
            try:
                self.handle(webhook_id, event)
            except Exception:
                with self._lock:
                    self.seen.discard(webhook_id)  # not handled: let the retry try again
                raise
        return _answer(start_response, "200 OK", {"received": webhook_id, "duplicate": duplicate})


def _answer(start_response: StartResponse, status: str, body: dict[str, object]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def create_app(secret: str, handle: Handler = log_event) -> Receiver:
    """The receiver for the endpoint whose signing secret is ``secret``."""
    return Receiver(secret, handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    arguments = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET")
    if not secret:
        parser.error("set WEBHOOK_SECRET to the endpoint's whsec_ secret")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The standard library's development server; in production use a WSGI server (gunicorn, uWSGI, ...).
    with make_server("127.0.0.1", arguments.port, create_app(secret)) as server:
        print(f"receiving webhooks on http://127.0.0.1:{arguments.port}/", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
