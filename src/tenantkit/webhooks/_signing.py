"""Standard Webhooks (v1) signing: ``whsec_`` secrets and the ``webhook-*`` headers of a delivery.

A secret is ``whsec_`` followed by the base64 of 32 random bytes. A delivery carries

* ``webhook-id``: the message id, the same on every retry (receivers deduplicate on it);
* ``webhook-timestamp``: the attempt's time, whole seconds since the epoch;
* ``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(secret, ``"{id}.{timestamp}.{body}"``)), one per valid
  secret separated by spaces (two during a rotation's grace, the newest first).

Any Standard Webhooks verifier (the ``standardwebhooks`` package, Svix's libraries) checks them; the tests
prove ours with the reference one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from tenantkit._errors import InvalidInputError

__all__ = ["SECRET_PREFIX", "generate_secret", "sign", "signature_header", "webhook_headers"]

SECRET_PREFIX = "whsec_"  # noqa: S105  the Standard Webhooks prefix, not a secret
_SECRET_BYTES = 32


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise InvalidInputError("secret", f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("secret", "is not base64 after its prefix") from None
    if len(key) < 24:
        raise InvalidInputError("secret", "holds fewer than 24 bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one delivery under ``secret``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, the newest first, space-separated."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets_)


def webhook_headers(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of a delivery attempt: the three Standard Webhooks headers and the content type."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, message_id, timestamp, body),
        "content-type": "application/json",
        "user-agent": "tenantkit-webhooks/1",
    }
