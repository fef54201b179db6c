"""API keys: issued to an organization once, verified on every request, listed, revoked and rotated;
optionally bound to a user or device, a network or a certificate, and limited by credits and rate limits.

The service is ``kit.api_keys``; this package holds its public names, the ones ``tenantkit`` re-exports and
the rest a host or a test may want::

    from tenantkit.api_keys import ApiKeyService, KeyKind, Sha256Hasher

A service is configured by the hasher's *name* (``ApiKeySettings.hasher``); the hasher classes are here to
show how each stored format is written and checked (``store(key)``, ``matches(stored, key)``).
"""

from tenantkit._settings import ApiKeySettings
from tenantkit.api_keys._cache import RefusalCache
from tenantkit.api_keys._format import KeyKind
from tenantkit.api_keys._hashers import (
    Argon2idHasher,
    DigestHasher,
    HmacSha256Hasher,
    KeyHasher,
    Pepper,
    Sha256Hasher,
)
from tenantkit.api_keys._last_used import LastUsedWriter
from tenantkit.api_keys._limits import (
    ApiKeyClient,
    ApiKeyLimits,
    ApiKeySubject,
    ClientInfo,
    RateLimiter,
    RateLimitState,
)
from tenantkit.api_keys._service import (
    ApiKey,
    ApiKeyService,
    ApiKeyVerification,
    IssuedApiKey,
    PendingVerification,
    check_scopes,
    require_scopes,
)

__all__ = [
    "ApiKey",
    "ApiKeyClient",
    "ApiKeyLimits",
    "ApiKeyService",
    "ApiKeySettings",
    "ApiKeySubject",
    "ApiKeyVerification",
    "Argon2idHasher",
    "ClientInfo",
    "DigestHasher",
    "HmacSha256Hasher",
    "IssuedApiKey",
    "KeyHasher",
    "KeyKind",
    "LastUsedWriter",
    "PendingVerification",
    "Pepper",
    "RateLimitState",
    "RateLimiter",
    "RefusalCache",
    "Sha256Hasher",
    "check_scopes",
    "require_scopes",
]
