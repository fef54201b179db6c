"""Signing secrets at rest: encrypted with the deployment's webhook keys, oldest first, as invitation keys.

A webhook secret must be sent to the receiver in the clear once (at creation and rotation) and then be
usable by the sender for every delivery, so unlike API keys it cannot be stored as a digest. It is stored
encrypted with Fernet (AES-128-CBC and HMAC-SHA256, from the ``cryptography`` package), under a key derived
(HKDF-SHA256, a salt of its own) from each configured key. The newest configured key encrypts; every key
decrypts, so a key is rotated in by appending it and rotated out, once :meth:`SecretBox.rotate` re-encrypted
the rows, by removing it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tenantkit._errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

__all__ = ["SecretBox"]

_INFO = b"tenantkit.webhook-secret.v1"
_MIN_KEY_LENGTH = 16


def _cryptography() -> Any:
    try:
        from cryptography import fernet
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ModuleNotFoundError:  # pragma: no cover - only without the extra
        raise ConfigurationError(
            "webhooks need the cryptography package: pip install 'tenantkit[webhooks]'"
        ) from None
    return fernet, hashes, HKDF


class SecretBox:
    """Encrypts and decrypts webhook signing secrets with a list of keys, oldest first.

    Args:
        keys: The configured webhook keys, oldest first (16 characters or more each).

    Raises:
        ConfigurationError: No key, a key too short, or ``cryptography`` not installed.
    """

    __slots__ = ("_fernet",)

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes):
            raise ConfigurationError("webhook secret_keys must be a list of keys, oldest first, not one key")
        raw = [key.encode("utf-8") if isinstance(key, str) else key for key in keys]
        if not raw:
            raise ConfigurationError("webhooks need at least one key to encrypt signing secrets")
        if any(len(key) < _MIN_KEY_LENGTH for key in raw):
            raise ConfigurationError(f"every webhook key must have {_MIN_KEY_LENGTH} characters or more")
        fernet, hashes, hkdf = _cryptography()
        derived = [
            fernet.Fernet(
                base64.urlsafe_b64encode(
                    hkdf(algorithm=hashes.SHA256(), length=32, salt=_INFO, info=_INFO).derive(key)
                )
            )
            for key in raw
        ]
        # MultiFernet encrypts with its first key: the newest, the last configured.
        self._fernet: MultiFernet = fernet.MultiFernet(list(reversed(derived)))

    def encrypt(self, secret: str) -> str:
        """``secret`` encrypted with the newest key, as text for the ``secret`` column."""
        return self._fernet.encrypt(secret.encode("ascii")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The secret ``stored`` holds, whichever configured key encrypted it.

        Raises:
            ConfigurationError: No configured key decrypts it (the key that did was removed too early).
        """
        fernet, _, _ = _cryptography()
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("ascii")
        except fernet.InvalidToken:
            raise ConfigurationError(
                "a webhook secret was encrypted with a key that is no longer configured; "
                "put the old key back (oldest first) and rotate"
            ) from None

    def rotate(self, stored: str) -> str:
        """``stored`` re-encrypted with the newest key."""
        return self._fernet.rotate(stored.encode("ascii")).decode("ascii")

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"
