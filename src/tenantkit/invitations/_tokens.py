"""Invitation tokens: random, signed, timestamped; the database keeps only a digest of their secret.

A token is an itsdangerous ``URLSafeTimedSerializer`` payload ``[organization_id, invitation_id, secret]``
signed with a salt used for nothing else. Forged, tampered, unknown-key and stale tokens fail the signature
check, which needs no database. The ``secret`` (256 random bits) is what the row's ``token`` column holds a
digest of: ``sha256:<hex>``. Resending an invitation draws a new secret, so the old token, though still
correctly signed, no longer matches the row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from tenantkit._clock import Clock
from tenantkit._errors import ConfigurationError, InvalidInvitationTokenError

SALT = "tenantkit.invitation-token.v1"
DIGEST_PREFIX = "sha256:"
MAX_TOKEN_LENGTH = 2048


class _ClockSigner(TimestampSigner):
    # itsdangerous reads time.time(); the service's injected clock must decide what "stale" means, or a
    # FrozenClock in the host's tests would see every token as signed in the future.
    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


@dataclass(frozen=True)
class TokenContents:
    """What a verified token says: where the row is, and the secret whose digest it must hold."""

    organization_id: str
    invitation_id: str
    secret: str = field(repr=False)


def digest(secret: str) -> str:
    """The tagged digest of a token secret, as stored in the ``token`` column."""
    return DIGEST_PREFIX + hashlib.sha256(secret.encode("ascii")).hexdigest()


def digest_matches(stored: str, secret: str) -> bool:
    """Constant-time comparison of a stored digest with the digest of ``secret``."""
    return hmac.compare_digest(stored.encode("ascii"), digest(secret).encode("ascii"))


class TokenCodec:
    """Issues and verifies invitation tokens.

    Args:
        secret_keys: Signing keys, oldest first. The newest signs; all verify, so a key can be rotated in
            by appending it and rotated out (invalidating its tokens) by removing it.
        max_age: Tokens older than this are refused without a database query.
        clock: The current time.
    """

    def __init__(self, secret_keys: Sequence[str | bytes], *, max_age: timedelta, clock: Clock) -> None:
        if isinstance(secret_keys, str | bytes):
            raise ConfigurationError("secret_keys must be a list of keys, oldest first, not a single key")
        keys = list(secret_keys)
        if not keys:
            raise ConfigurationError("secret_keys must hold at least one key to sign invitation tokens")
        if any(not isinstance(key, str | bytes) or len(key) < 16 for key in keys):
            raise ConfigurationError("every invitation secret key must be a str or bytes of 16+ characters")
        as_bytes = [key.encode("utf-8") if isinstance(key, str) else key for key in keys]
        self._max_age = int(max_age.total_seconds())
        self._serializer = URLSafeTimedSerializer(
            as_bytes, salt=SALT, signer=_ClockSigner, signer_kwargs={"clock": clock}
        )

    def issue(self, organization_id: str, invitation_id: str) -> tuple[str, str]:
        """A new token for the invitation, and the digest to store for it."""
        secret = secrets.token_urlsafe(32)
        token = self._serializer.dumps([organization_id, invitation_id, secret])
        return token, digest(secret)

    def read(self, token: object) -> TokenContents:
        """Verify ``token`` (signature, key, age) and return its contents. Touches no database.

        Raises:
            InvalidInvitationTokenError: The token is malformed, forged, tampered with or stale.
        """
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidInvitationTokenError()
        if not _canonical(token):
            raise InvalidInvitationTokenError()
        try:
            payload = self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired:
            raise InvalidInvitationTokenError("the invitation token is too old; ask for a new one") from None
        except (BadData, ValueError, UnicodeError):
            raise InvalidInvitationTokenError() from None
        if (
            not isinstance(payload, list)
            or len(payload) != 3
            or not all(isinstance(part, str) and part for part in payload)
        ):
            raise InvalidInvitationTokenError()
        return TokenContents(payload[0], payload[1], payload[2])


def _canonical(token: str) -> bool:
    # Unpadded base64 leaves a few unused bits in the last character of each part, so a decoder alone would
    # accept several spellings of one token. Only the spelling we issued is accepted: any edit is refused.
    parts = token.removeprefix(".").split(".")
    if len(parts) != 3:
        return False
    try:
        return all(part and base64_encode(base64_decode(part)).decode("ascii") == part for part in parts)
    except (BadData, ValueError, UnicodeError):
        return False
