"""Settings: a frozen, validated object per feature, and the one loader that reads them from the environment.

Each feature's options live in a frozen model validated once, when it is built (argon2-cffi's ``Parameters``
is the model): :class:`ApiKeySettings`, :class:`InvitationSettings`, :class:`DatabaseSettings`,
:class:`AuditSettings`, :class:`HttpSettings` and :class:`BusSettings`, composed by
:class:`TenantKitSettings`.
:meth:`TenantKitSettings.from_env` reads them from ``TENANTKIT_*``
environment variables and a ``.env`` file; ``TenantKit`` and the ``tenantkit`` command line both call it,
so one environment configures the application and the CLI alike. :data:`ENVIRONMENT_VARIABLES` lists every
variable; the CLI's ``--help`` and the configuration docs are checked against it.

An unusable value raises :class:`~tenantkit.errors.InvalidSettingError` naming the variable (or the field),
never repeating the value: it may be a secret. Secrets are :class:`pydantic.SecretStr`, hidden in ``repr``.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

import sqlalchemy as sa
from argon2 import Parameters, PasswordHasher, profiles
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from tenantkit._addresses import PUBLIC_EMAIL_DOMAINS, normalize_domains, normalize_public_domains
from tenantkit._context import TrustedProxies
from tenantkit._errors import ConfigurationError, InvalidInputError, InvalidSettingError
from tenantkit._validation import DEFAULT_CHANNEL, check_channel, check_schema_name, parse_duration
from tenantkit.api_keys._format import DEFAULT_PREFIX, check_prefix
from tenantkit.api_keys._hashers import HASHERS, build_peppers, choose_hasher

_MIN_INVITATION_KEY_LENGTH = 16

ARGON2_PROFILES: Mapping[str, Parameters] = {
    "RFC_9106_LOW_MEMORY": profiles.RFC_9106_LOW_MEMORY,
    "RFC_9106_HIGH_MEMORY": profiles.RFC_9106_HIGH_MEMORY,
    "CHEAPEST": profiles.CHEAPEST,
}
"""argon2-cffi's parameter profiles by name; ``CHEAPEST`` is for tests only."""

Argon2Profile = Literal["RFC_9106_LOW_MEMORY", "RFC_9106_HIGH_MEMORY", "CHEAPEST"]
Hasher = Literal["sha256", "hmac-sha256", "argon2id"]
if set(get_args(Hasher)) != set(HASHERS):
    raise RuntimeError("ApiKeySettings.hasher must list the hashers _hashers.HASHERS defines")


def _duration(value: object) -> object:
    # "90s", "15m", "12h", "7d" as the CLI spells durations; anything else goes on to pydantic, which takes
    # a timedelta, a number of seconds or ISO 8601 ("PT12H").
    if isinstance(value, str):
        if value.strip().isdigit():
            return timedelta(seconds=int(value))
        duration = parse_duration(value)
        if duration is not None:
            return duration
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A ``timedelta``, also given as ``90s``, ``15m``, ``12h``, ``7d``, seconds or ISO 8601."""


def _reason(error: Any) -> str:
    message = str(error.get("msg", "invalid value"))
    # Our own checks raise ValueError; pydantic prefixes their message.
    return message.removeprefix("Value error, ")


def _first_error(error: ValidationError) -> tuple[str, str]:
    first = error.errors(include_input=False, include_url=False)[0]
    # The field alone: pydantic appends the union member or dict key (argon2_profile.literal[...]),
    # which names no setting.
    location = str(first["loc"][0]) if first["loc"] else ""
    return location, _reason(first)


class _Settings(BaseModel):
    """Frozen, forbids unknown fields, validates defaults too, and fails with ``InvalidSettingError``."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            location, reason = _first_error(error)
            raise InvalidSettingError(location or type(self).__name__, reason) from None


def _configuration(check: Any, *arguments: Any) -> Any:
    """Run one of the services' own checks, turning its error into the ``ValueError`` pydantic reports."""
    try:
        return check(*arguments)
    except (ConfigurationError, InvalidInputError) as error:
        raise ValueError(getattr(error, "reason", error.message)) from None


class ApiKeySettings(_Settings):
    """How this deployment issues, stores and verifies API keys.

    Attributes:
        prefix: The key prefix, such as ``tk_live_`` or ``tk_test_``.
        peppers: Server secrets for HMAC-SHA256 digests, version name to secret (16 bytes or more).
        current_pepper: The version new digests use (needed when several peppers are configured).
        hasher: ``sha256``, ``hmac-sha256`` or ``argon2id`` for keys issued from now on; by default
            ``hmac-sha256`` when peppers are configured, else ``sha256``. Keys stored otherwise still verify.
        argon2_profile: argon2-cffi's parameters for ``argon2id``: a profile name (``CHEAPEST`` in tests
            only) or an :class:`argon2.Parameters` of your own.
        last_used_interval: ``last_used_at`` is written at most once per key per interval.
        track_last_used: ``False`` makes verification read-only.
        rotation_grace: How long a rotated-out key keeps working, at most.
        last_used_writes: ``inline`` writes ``last_used_at`` in the verifying transaction; ``deferred``
            records the use in memory and writes it later, many keys in one statement, so a verification
            never waits for a write (the adapters flush every few seconds and at shutdown when given an
            engine; see :meth:`~tenantkit.ApiKeyService.flush_last_used`).
        last_used_buffer_size: Keys whose deferred use may wait at most; beyond, a use is written inline.
        cache_ttl: Turns on the in-process verification cache, trusting an entry this long.
        cache_size: Entries the verification cache keeps at most.
        negative_cache_ttl: Turns on the cache of well-formed keys that match no key, trusting an entry
            this long (a few seconds): a flood of made-up keys then costs one lookup per distinct key.
        negative_cache_size: Entries the negative cache keeps at most.
        rate_limit_storage: Where keys with rate limits are counted: ``memory://`` (the default, this
            process alone) or a Redis URL (``redis://host:6379/0``, ``tenantkit[redis]``) shared by every
            process. A secret: a Redis URL may hold a password.
        rate_limit_unavailable: When that Redis does not answer: ``"allow"`` (the default: let the request
            through, log a warning) or ``"refuse"`` (503 ``rate_limiter_unavailable``).
    """

    prefix: str = DEFAULT_PREFIX
    peppers: dict[str, SecretStr] = Field(default_factory=dict)
    current_pepper: str | None = None
    hasher: Hasher | None = None
    argon2_profile: Argon2Profile | Parameters = "RFC_9106_LOW_MEMORY"
    last_used_interval: Duration = Field(default=timedelta(seconds=60), ge=timedelta(0))
    track_last_used: bool = True
    rotation_grace: Duration = Field(default=timedelta(hours=24), ge=timedelta(0))
    last_used_writes: Literal["inline", "deferred"] = "inline"
    last_used_buffer_size: int = Field(default=10_000, ge=1)
    cache_ttl: Duration | None = Field(default=None, gt=timedelta(0))
    cache_size: int = Field(default=10_000, ge=1)
    negative_cache_ttl: Duration | None = Field(default=None, gt=timedelta(0))
    negative_cache_size: int = Field(default=10_000, ge=1)
    rate_limit_storage: SecretStr | None = None
    rate_limit_unavailable: Literal["allow", "refuse"] = "allow"

    if TYPE_CHECKING:
        # The signature callers see: the inputs each field accepts (plain strings for secrets, "30s" for
        # durations), where the field annotations above say what is stored.
        def __init__(
            self,
            *,
            prefix: str = ...,
            peppers: Mapping[str, str | SecretStr] = ...,
            current_pepper: str | None = ...,
            hasher: Hasher | None = ...,
            argon2_profile: Argon2Profile | Parameters = ...,
            last_used_interval: timedelta | str | float = ...,
            track_last_used: bool = ...,
            rotation_grace: timedelta | str | float = ...,
            last_used_writes: Literal["inline", "deferred"] = ...,
            last_used_buffer_size: int = ...,
            cache_ttl: timedelta | str | float | None = ...,
            cache_size: int = ...,
            negative_cache_ttl: timedelta | str | float | None = ...,
            negative_cache_size: int = ...,
            rate_limit_storage: str | SecretStr | None = ...,
            rate_limit_unavailable: Literal["allow", "refuse"] = ...,
        ) -> None: ...

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        return str(_configuration(check_prefix, value))

    @field_validator("peppers")
    @classmethod
    def _check_peppers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        # Versions and secrets alone; which one is current is checked with current_pepper.
        _configuration(build_peppers, cls._raw(value), next(iter(value), None))
        return value

    @field_validator("current_pepper")
    @classmethod
    def _check_current_pepper(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "peppers" in info.data:
            _configuration(build_peppers, cls._raw(info.data["peppers"]), value)
        return value

    @field_validator("hasher")
    @classmethod
    def _check_hasher(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "peppers" in info.data and "current_pepper" in info.data:
            peppers = build_peppers(cls._raw(info.data["peppers"]), info.data["current_pepper"])
            _configuration(choose_hasher, value, peppers)
        return value

    @staticmethod
    def _raw(peppers: Mapping[str, SecretStr]) -> dict[str, str]:
        return {version: secret.get_secret_value() for version, secret in peppers.items()}

    @property
    def argon2_parameters(self) -> Parameters:
        """The argon2id parameters :attr:`argon2_profile` names (or is)."""
        if isinstance(self.argon2_profile, Parameters):
            return self.argon2_profile
        return ARGON2_PROFILES[self.argon2_profile]

    def service_options(self) -> dict[str, Any]:
        """These settings as the keyword arguments of :class:`~tenantkit.ApiKeyService`."""
        return {
            "prefix": self.prefix,
            "hasher": self.hasher,
            "peppers": self._raw(self.peppers) or None,
            "current_pepper": self.current_pepper,
            "argon2_hasher": PasswordHasher.from_parameters(self.argon2_parameters),
            "last_used_interval": self.last_used_interval,
            "track_last_used": self.track_last_used,
            "rotation_grace": self.rotation_grace,
            "last_used_writes": self.last_used_writes,
            "last_used_buffer_size": self.last_used_buffer_size,
            "cache_ttl": self.cache_ttl,
            "cache_size": self.cache_size,
            "negative_cache_ttl": self.negative_cache_ttl,
            "negative_cache_size": self.negative_cache_size,
            "rate_limiter": self._rate_limiter(),
        }

    def _rate_limiter(self) -> Any:
        if self.rate_limit_storage is None and self.rate_limit_unavailable == "allow":
            return None  # made in memory on first need
        from tenantkit.api_keys._limits import RateLimiter

        storage = (
            "memory://" if self.rate_limit_storage is None else self.rate_limit_storage.get_secret_value()
        )
        return RateLimiter(storage, on_unavailable=self.rate_limit_unavailable)


class InvitationSettings(_Settings):
    """How invitations are signed, linked and bounded.

    Invitations are on when :attr:`secret_keys` holds at least one key.

    Attributes:
        secret_keys: Keys that sign tokens, oldest first (16 characters or more each); the newest signs.
        accept_url_template: The accept page, with ``{token}`` where the token goes.
        default_ttl: How long an invitation is valid when the caller gives no lifetime.
        max_ttl: The longest validity allowed.
        public_email_domains: Public mailbox providers that link invitations refuse as allowed domains.
        allow_public_email_domains: Accept public providers as allowed domains anyway.
    """

    secret_keys: tuple[SecretStr, ...] = ()
    accept_url_template: str | None = None
    default_ttl: Duration = Field(default=timedelta(days=7), gt=timedelta(0))
    max_ttl: Duration = Field(default=timedelta(days=30), gt=timedelta(0))
    public_email_domains: frozenset[str] = PUBLIC_EMAIL_DOMAINS
    allow_public_email_domains: bool = False

    if TYPE_CHECKING:
        # The signature callers see (see ApiKeySettings): plain strings for keys, "7d" for durations.
        def __init__(
            self,
            *,
            secret_keys: Sequence[str | SecretStr] = ...,
            accept_url_template: str | None = ...,
            default_ttl: timedelta | str | float = ...,
            max_ttl: timedelta | str | float = ...,
            public_email_domains: Collection[str] = ...,
            allow_public_email_domains: bool = ...,
        ) -> None: ...

    @field_validator("secret_keys")
    @classmethod
    def _check_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(key.get_secret_value()) < _MIN_INVITATION_KEY_LENGTH for key in value):
            raise ValueError(f"every signing key must have {_MIN_INVITATION_KEY_LENGTH} characters or more")
        return value

    @field_validator("accept_url_template")
    @classmethod
    def _check_template(cls, value: str | None) -> str | None:
        if value is not None and "{token}" not in value:
            raise ValueError("must contain {token} where the token goes")
        return value

    @field_validator("max_ttl")
    @classmethod
    def _check_max_ttl(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        default = info.data.get("default_ttl")
        if default is not None and default > value:
            raise ValueError("must not be shorter than the default lifetime (default_ttl)")
        return value

    @field_validator("public_email_domains")
    @classmethod
    def _check_domains(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(_configuration(normalize_public_domains, value))

    @property
    def enabled(self) -> bool:
        """Whether invitations are on (a signing key is configured)."""
        return bool(self.secret_keys)

    def service_options(self) -> dict[str, Any]:
        """These settings as the keyword arguments of :class:`~tenantkit.InvitationService`."""
        return {
            "secret_keys": [key.get_secret_value() for key in self.secret_keys],
            "accept_url_template": self.accept_url_template,
            "default_ttl": self.default_ttl,
            "max_ttl": self.max_ttl,
            "public_email_domains": self.public_email_domains,
            "allow_public_domains": self.allow_public_email_domains,
        }


class DatabaseSettings(_Settings):
    """Where tenantkit's tables are.

    Attributes:
        url: The SQLAlchemy URL (the CLI's ``--url``; the application builds its own engine). A secret: it may
            hold a password.
        schema_name: The PostgreSQL schema that holds tenantkit's tables and ``role`` type. ``None`` (the
            default) is the connection's default schema (``public``), as before.
    """

    url: SecretStr | None = None
    schema_name: str | None = None

    if TYPE_CHECKING:
        # The signature callers see (see ApiKeySettings): the URL as a plain string.
        def __init__(self, *, url: str | SecretStr | None = ..., schema_name: str | None = ...) -> None: ...

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                sa.engine.make_url(value.get_secret_value())
            except sa.exc.ArgumentError:
                raise ValueError(
                    "is not a SQLAlchemy database URL (dialect://user:password@host/name)"
                ) from None
        return value

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str | None) -> str | None:
        return _configuration(check_schema_name, value)  # type: ignore[no-any-return]

    @property
    def safe_url(self) -> str | None:
        """:attr:`url` with its password hidden, fit for logs and messages."""
        if self.url is None:
            return None
        return sa.engine.make_url(self.url.get_secret_value()).render_as_string(hide_password=True)


def _comma_separated(value: object) -> object:
    # The environment spells a list as "a, b, c".
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


class AuditSettings(_Settings):
    """Whether and how changes are written to the audit log (``audit_events``).

    Attributes:
        enabled: Write one audit row per recorded event, in the change's transaction (on by default). Off,
            nothing is written; the rows already there can still be read, exported and purged.
        chain: Chain each organization's rows by hash (tamper evidence, ``tenantkit audit verify``). It
            costs a lock on the organization's chain head per change.
        retention: How long rows are kept by ``tenantkit audit purge`` when it is given no ``--older-than``
            (``None``: the command needs ``--older-than``). Nothing is purged on its own.
    """

    enabled: bool = True
    chain: bool = False
    retention: Duration | None = Field(default=None, gt=timedelta(0))

    if TYPE_CHECKING:
        # The signature callers see (see ApiKeySettings): "365d" for the retention.
        def __init__(
            self,
            *,
            enabled: bool = ...,
            chain: bool = ...,
            retention: timedelta | str | float | None = ...,
        ) -> None: ...

    def service_options(self) -> dict[str, Any]:
        """These settings as the keyword arguments of :class:`~tenantkit.audit.AuditService`."""
        return {"enabled": self.enabled, "chain": self.chain}


_MAX_DOCUMENT_BYTES = 1024 * 1024


def _import_document(value: object) -> object:
    # "package.module:ClassName" (or "package.module.ClassName"), as TENANTKIT_ORGANIZATION_SETTINGS_MODEL
    # spells it; a class is taken as it is.
    if not isinstance(value, str):
        return value
    module_name, separator, attribute = value.partition(":")
    if not separator:
        module_name, _, attribute = value.rpartition(".")
    if not module_name or not attribute:
        raise ValueError("must name a class as package.module:ClassName")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import {value!r}: {error}") from None


class OrganizationDefaults(_Settings):
    """The deployment's organization settings: the host's settings model, and the defaults that are ceilings.

    Each honoured setting here is both the value an organization gets until it chooses its own and the
    loosest it may choose: an organization's settings document may only tighten it (a shorter API-key
    lifetime, fewer link domains, expiry required where the deployment does not require it). Invitation
    lifetimes take their default and ceiling from :class:`InvitationSettings` (``default_ttl``, ``max_ttl``).

    Attributes:
        document: The host's settings model: a subclass of
            :class:`~tenantkit.organizations.SettingsDocument` (tenantkit's own fields plus the host's), or
            its import path (``myapp.settings:ClinicSettings``). ``None``: tenantkit's own fields alone.
        max_document_bytes: The largest a stored document may be, as compact JSON (16 KiB by default).
        default_role: The rank new members get when an invitation names none (``MEMBER``); an organization
            may choose a rank at most this high.
        link_domains: The domains link invitations may allow at most (``None``: any domain the invitation
            rules accept); an organization may choose some of them.
        api_key_max_lifetime: The longest lifetime an API key may be issued with (``None``: unbounded).
            When set, every key must expire within it.
        api_keys_must_expire: Refuse API keys without an expiry.
        require_sso: Members must sign in through single sign-on (enforced by :mod:`tenantkit.sso` for
            actors that state how they signed in).
    """

    document: Annotated[Any, BeforeValidator(_import_document)] = None
    max_document_bytes: int = Field(default=16 * 1024, ge=256, le=_MAX_DOCUMENT_BYTES)
    default_role: Literal["ADMIN", "MEMBER"] = "MEMBER"
    link_domains: Annotated[tuple[str, ...] | None, BeforeValidator(_comma_separated)] = None
    api_key_max_lifetime: Duration | None = Field(default=None, gt=timedelta(0))
    api_keys_must_expire: bool = False
    require_sso: bool = False

    if TYPE_CHECKING:
        # The signature callers see (see ApiKeySettings).
        def __init__(
            self,
            *,
            document: type[Any] | str | None = ...,
            max_document_bytes: int = ...,
            default_role: Literal["ADMIN", "MEMBER"] = ...,
            link_domains: Sequence[str] | str | None = ...,
            api_key_max_lifetime: timedelta | str | float | None = ...,
            api_keys_must_expire: bool = ...,
            require_sso: bool = ...,
        ) -> None: ...

    @field_validator("document")
    @classmethod
    def _check_document(cls, value: object) -> object:
        # Imported here: the document module imports this one.
        from tenantkit.organizations._document import SettingsDocument

        if value is None:
            return SettingsDocument
        if not (isinstance(value, type) and issubclass(value, SettingsDocument)):
            raise ValueError("must be a subclass of tenantkit.organizations.SettingsDocument")
        return value

    @field_validator("link_domains")
    @classmethod
    def _check_link_domains(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        return tuple(
            _configuration(
                lambda domains: normalize_domains(domains, public_domains=frozenset(), allow_public=True),
                value,
            )
        )


class HttpSettings(_Settings):
    """What the web adapters believe about a request: which proxies may name the client, and the request id.

    One setting for every feature that needs a client's address (the audit log today), so that they all
    agree on who the client is.

    Attributes:
        trusted_proxies: Addresses or networks (``10.0.0.0/8``) of the proxies in front of the application.
            ``X-Forwarded-For`` is believed only as far as these proxies wrote it; empty (the default)
            believes no proxy, and the client is the connection's peer.
        request_id_header: The request header holding the request's id (``X-Request-ID``); ``None`` reads
            none.
        client_certificate_header: The header in which the TLS-terminating proxy forwards the SHA-256
            thumbprint of the client's certificate (``X-Client-Cert-SHA256``), for API keys bound to a
            certificate. Believed only from a peer among ``trusted_proxies``; ``None`` (the default) reads
            none, and certificate-bound keys are refused.
    """

    trusted_proxies: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)] = ()
    request_id_header: str | None = "X-Request-ID"
    client_certificate_header: str | None = None

    if TYPE_CHECKING:
        # The signature callers see (see ApiKeySettings).
        def __init__(
            self,
            *,
            trusted_proxies: Sequence[str] | str = ...,
            request_id_header: str | None = ...,
            client_certificate_header: str | None = ...,
        ) -> None: ...

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(network) for network in TrustedProxies.parse(value).networks)

    @field_validator("request_id_header", "client_certificate_header")
    @classmethod
    def _check_header(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_NAME.fullmatch(value):
            raise ValueError("must be a header name such as X-Request-ID")
        return value

    @property
    def proxies(self) -> TrustedProxies:
        """:attr:`trusted_proxies` as the networks the adapters match a peer against."""
        return TrustedProxies.parse(self.trusted_proxies)


BusBackend = Literal["postgres", "redis", "poll"]


def _off_is_none(value: object) -> object:
    # The environment says TENANTKIT_BUS=off (or leaves it out) for no bus.
    if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
        return None
    return value


class BusSettings(_Settings):
    """The cross-process invalidation bus: how a revocation in one process reaches the caches of the others.

    Off by default: each process's caches then trust an entry for their whole time to live. See
    :mod:`tenantkit.bus` and the "Running many instances" page for the choice and its measured lag.

    Attributes:
        backend: ``postgres`` (``LISTEN``/``NOTIFY``), ``redis`` (pub/sub, the ``tenantkit[redis]`` extra),
            ``poll`` (a change log in the database, any dialect; needs revision 0008), or ``None`` for none.
        url: The bus's server: a PostgreSQL URL (never through a transaction-mode PgBouncer), a Redis URL,
            or the database to poll. ``postgres`` and ``poll`` default to :attr:`DatabaseSettings.url`;
            ``redis`` needs it. A secret: it may hold a password.
        channel: The ``NOTIFY`` or Redis channel every process of the deployment shares.
        poll_interval: ``poll`` only: the time between two reads of the change log, and so the lag bound.
        max_commit_delay: ``poll`` only: how long an id taken by a transaction that has not committed yet is
            waited for before the poller clears its caches instead.
        retention: ``poll`` only: how long change-log rows are kept.
        probe_timeout: How long starting the bus waits to connect and hear its own probe.
        reconnect_max_delay: The longest wait between two connection attempts.
    """

    backend: Annotated[BusBackend | None, BeforeValidator(_off_is_none)] = None
    url: SecretStr | None = None
    channel: str = DEFAULT_CHANNEL
    poll_interval: Duration = Field(default=timedelta(seconds=1), gt=timedelta(0))
    max_commit_delay: Duration = Field(default=timedelta(seconds=30), gt=timedelta(0))
    retention: Duration = Field(default=timedelta(hours=1), gt=timedelta(0))
    probe_timeout: Duration = Field(default=timedelta(seconds=5), gt=timedelta(0))
    reconnect_max_delay: Duration = Field(default=timedelta(seconds=5), gt=timedelta(0))

    if TYPE_CHECKING:
        # The signature callers see (see ApiKeySettings): the URL as a plain string, durations as "30s".
        def __init__(
            self,
            *,
            backend: BusBackend | str | None = ...,
            url: str | SecretStr | None = ...,
            channel: str = ...,
            poll_interval: timedelta | str | float = ...,
            max_commit_delay: timedelta | str | float = ...,
            retention: timedelta | str | float = ...,
            probe_timeout: timedelta | str | float = ...,
            reconnect_max_delay: timedelta | str | float = ...,
        ) -> None: ...

    @field_validator("channel")
    @classmethod
    def _check_channel(cls, value: str) -> str:
        return check_channel(value)

    @property
    def enabled(self) -> bool:
        """Whether a backend is chosen."""
        return self.backend is not None


_MIN_WEBHOOK_KEY_LENGTH = 16


class WebhookSettings(_Settings):
    """How webhooks are signed, stored, sent and retried, and where the sender may connect.

    Webhooks are on when :attr:`secret_keys` holds at least one key.

    Attributes:
        secret_keys: Keys that encrypt each endpoint's signing secret at rest, oldest first (16 characters
            or more each); the newest encrypts, every one decrypts, so a key is rotated in by appending it.
        timeout: How long one delivery attempt may take (connect, send, read) before it counts as failed.
        lease: How long a worker holds the deliveries it claimed; a worker that dies loses its claim when the
            lease ends and another worker sends them. Longer than :attr:`timeout`.
        rotation_grace: How long the previous signing secret still signs after a rotation (both signatures
            are sent during the grace).
        disable_after: An endpoint failing continuously this long is disabled.
        allow_http: Send to ``http://`` URLs too (development only): HTTPS alone by default.
        allow_hosts: Host names the sender may reach whatever they resolve to (development, tests).
        allow_networks: Addresses or networks (``127.0.0.1/32``) the sender may reach although they are not
            globally routable (development, tests, an internal receiver you mean to reach).
    """

    secret_keys: tuple[SecretStr, ...] = ()
    timeout: Duration = Field(default=timedelta(seconds=15), gt=timedelta(0))
    lease: Duration = Field(default=timedelta(seconds=60), gt=timedelta(0))
    rotation_grace: Duration = Field(default=timedelta(hours=24), ge=timedelta(0))
    disable_after: Duration = Field(default=timedelta(days=5), gt=timedelta(0))
    allow_http: bool = False
    allow_hosts: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)] = ()
    allow_networks: Annotated[tuple[str, ...], BeforeValidator(_comma_separated)] = ()

    if TYPE_CHECKING:
        # The signature callers see (see ApiKeySettings): plain strings for keys, "15s" for durations.
        def __init__(
            self,
            *,
            secret_keys: Sequence[str | SecretStr] = ...,
            timeout: timedelta | str | float = ...,
            lease: timedelta | str | float = ...,
            rotation_grace: timedelta | str | float = ...,
            disable_after: timedelta | str | float = ...,
            allow_http: bool = ...,
            allow_hosts: Sequence[str] | str = ...,
            allow_networks: Sequence[str] | str = ...,
        ) -> None: ...

    @field_validator("secret_keys")
    @classmethod
    def _check_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(key.get_secret_value()) < _MIN_WEBHOOK_KEY_LENGTH for key in value):
            raise ValueError(f"every webhook key must have {_MIN_WEBHOOK_KEY_LENGTH} characters or more")
        return value

    @field_validator("lease")
    @classmethod
    def _check_lease(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        timeout = info.data.get("timeout")
        if timeout is not None and value <= timeout + timedelta(seconds=1):
            raise ValueError("must be longer than the timeout by more than a second")
        return value

    @field_validator("allow_hosts")
    @classmethod
    def _check_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        hosts = tuple(host.strip().lower().rstrip(".") for host in value)
        if any(not host or "/" in host or ":" in host for host in hosts):
            raise ValueError("must be host names such as localhost (networks go in allow_networks)")
        return hosts

    @field_validator("allow_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(str(ipaddress.ip_network(network.strip(), strict=False)) for network in value)
        except ValueError:
            raise ValueError("must be addresses or networks such as 127.0.0.1/32 or fd00::/8") from None

    @property
    def enabled(self) -> bool:
        """Whether webhooks are on (an encryption key is configured)."""
        return bool(self.secret_keys)


@dataclass(frozen=True)
class EnvironmentVariable:
    """One ``TENANTKIT_*`` variable: its name, what it sets, and whether it holds a secret."""

    name: str
    help: str
    secret: bool = False


class _Environment(BaseSettings):
    """The raw ``TENANTKIT_*`` values, as strings; :meth:`TenantKitSettings.from_env` composes them."""

    model_config: ClassVar[SettingsConfigDict] = SettingsConfigDict(
        env_prefix="TENANTKIT_", env_file=".env", env_ignore_empty=True, extra="ignore", case_sensitive=False
    )

    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the database; the CLI's --url (password hidden in output)."
    )
    database_schema: str | None = Field(
        None, description="PostgreSQL schema for tenantkit's tables and role type (default: public)."
    )
    api_key_prefix: str | None = Field(None, description=f"Prefix of issued keys (default {DEFAULT_PREFIX}).")
    api_key_hasher: str | None = Field(
        None, description="sha256, hmac-sha256 or argon2id (default: hmac-sha256 with a pepper, else sha256)."
    )
    api_key_pepper: SecretStr | None = Field(None, description="The current HMAC pepper (16+ bytes).")
    api_key_pepper_version: str | None = Field(None, description="The current pepper's version (default 1).")
    api_key_old_peppers: SecretStr | None = Field(
        None, description="Older peppers keys may be stored under: version:secret pairs, comma-separated."
    )
    api_key_argon2_profile: str | None = Field(
        None,
        description="argon2id parameters: RFC_9106_LOW_MEMORY (default), RFC_9106_HIGH_MEMORY, CHEAPEST.",
    )
    api_key_cache_ttl: str | None = Field(
        None, description="Turns on the in-process verification cache for this long (e.g. 30s; default off)."
    )
    api_key_negative_cache_ttl: str | None = Field(
        None,
        description="Turns on the cache of unknown well-formed keys for this long (e.g. 5s; default off).",
    )
    api_key_last_used_interval: str | None = Field(
        None, description="last_used_at is written at most once per interval (default 60s)."
    )
    api_key_last_used_writes: str | None = Field(
        None, description="inline (default) or deferred: last_used_at written behind the request."
    )
    api_key_rotation_grace: str | None = Field(
        None, description="How long a rotated-out key keeps working (default 24h)."
    )
    invitation_secret: SecretStr | None = Field(
        None, description="Invitation signing keys, comma-separated, oldest first (16+ characters each)."
    )
    invitation_accept_url: str | None = Field(
        None, description="Accept page with {token}, e.g. https://app.example.com/invite?token={token}."
    )
    invitation_default_ttl: str | None = Field(None, description="Default invitation lifetime (default 7d).")
    invitation_max_ttl: str | None = Field(None, description="Longest invitation lifetime (default 30d).")
    invitation_allow_public_domains: str | None = Field(
        None, description="true to accept gmail.com and other public providers as link domains."
    )
    audit_enabled: str | None = Field(None, description="false to write no audit rows (default true).")
    audit_chain: str | None = Field(
        None, description="true to chain each organization's audit rows by hash (default false)."
    )
    audit_retention: str | None = Field(
        None, description="How long tenantkit audit purge keeps rows without --older-than (e.g. 365d)."
    )
    organization_settings_model: str | None = Field(
        None, description="The host's settings model for organizations, as package.module:ClassName."
    )
    trusted_proxies: str | None = Field(
        None, description="Proxies whose X-Forwarded-For is believed: addresses or networks, comma-separated."
    )
    request_id_header: str | None = Field(
        None, description="The header holding a request's id for the audit log (default X-Request-ID)."
    )
    bus: str | None = Field(
        None, description="The invalidation bus: postgres, redis, poll or off (default off)."
    )
    bus_url: SecretStr | None = Field(
        None, description="The bus's server (Redis URL; postgres and poll default to the database URL)."
    )
    bus_channel: str | None = Field(
        None, description=f"The bus's NOTIFY or Redis channel (default {DEFAULT_CHANNEL})."
    )
    bus_poll_interval: str | None = Field(
        None, description="How often the poll bus reads its change log (default 1s)."
    )
    webhook_secret_keys: SecretStr | None = Field(
        None, description="Keys encrypting webhook signing secrets, comma-separated, oldest first (16+ each)."
    )
    webhook_timeout: str | None = Field(
        None, description="How long one webhook attempt may take (default 15s)."
    )
    webhook_lease: str | None = Field(
        None, description="How long a worker holds claimed deliveries, beyond the timeout (default 60s)."
    )
    webhook_rotation_grace: str | None = Field(
        None, description="How long the previous webhook secret still signs after a rotation (default 24h)."
    )
    webhook_allow_http: str | None = Field(
        None, description="true to send webhooks to http:// URLs too (development only; default false)."
    )
    webhook_allow_hosts: str | None = Field(
        None, description="Host names webhooks may reach whatever they resolve to, comma-separated (dev)."
    )
    webhook_allow_networks: str | None = Field(
        None, description="Private addresses or networks webhooks may reach, comma-separated (dev, tests)."
    )
    client_certificate_header: str | None = Field(
        None,
        description="The header a trusted TLS proxy puts the client certificate's SHA-256 in (default none).",
    )
    api_key_rate_limit_storage: SecretStr | None = Field(
        None, description="Where API key rate limits count: memory:// (default) or a redis:// URL."
    )
    api_key_rate_limit_unavailable: str | None = Field(
        None, description="allow (default) or refuse requests of rate-limited keys while Redis is down."
    )

    # Where each variable goes: (section, field) of TenantKitSettings; the peppers are composed by hand.
    TARGETS: ClassVar[Mapping[str, tuple[str, str]]] = {
        "database_url": ("database", "url"),
        "database_schema": ("database", "schema_name"),
        "api_key_prefix": ("api_keys", "prefix"),
        "api_key_hasher": ("api_keys", "hasher"),
        "api_key_pepper": ("api_keys", "peppers"),
        "api_key_pepper_version": ("api_keys", "current_pepper"),
        "api_key_old_peppers": ("api_keys", "peppers"),
        "api_key_argon2_profile": ("api_keys", "argon2_profile"),
        "api_key_cache_ttl": ("api_keys", "cache_ttl"),
        "api_key_negative_cache_ttl": ("api_keys", "negative_cache_ttl"),
        "api_key_last_used_interval": ("api_keys", "last_used_interval"),
        "api_key_last_used_writes": ("api_keys", "last_used_writes"),
        "api_key_rotation_grace": ("api_keys", "rotation_grace"),
        "invitation_secret": ("invitations", "secret_keys"),
        "invitation_accept_url": ("invitations", "accept_url_template"),
        "invitation_default_ttl": ("invitations", "default_ttl"),
        "invitation_max_ttl": ("invitations", "max_ttl"),
        "invitation_allow_public_domains": ("invitations", "allow_public_email_domains"),
        "audit_enabled": ("audit", "enabled"),
        "audit_chain": ("audit", "chain"),
        "audit_retention": ("audit", "retention"),
        "organization_settings_model": ("organizations", "document"),
        "trusted_proxies": ("http", "trusted_proxies"),
        "request_id_header": ("http", "request_id_header"),
        "bus": ("bus", "backend"),
        "bus_url": ("bus", "url"),
        "bus_channel": ("bus", "channel"),
        "bus_poll_interval": ("bus", "poll_interval"),
        "webhook_secret_keys": ("webhooks", "secret_keys"),
        "webhook_timeout": ("webhooks", "timeout"),
        "webhook_lease": ("webhooks", "lease"),
        "webhook_rotation_grace": ("webhooks", "rotation_grace"),
        "webhook_allow_http": ("webhooks", "allow_http"),
        "webhook_allow_hosts": ("webhooks", "allow_hosts"),
        "webhook_allow_networks": ("webhooks", "allow_networks"),
        "client_certificate_header": ("http", "client_certificate_header"),
        "api_key_rate_limit_storage": ("api_keys", "rate_limit_storage"),
        "api_key_rate_limit_unavailable": ("api_keys", "rate_limit_unavailable"),
    }


def _variable(field: str) -> str:
    return f"TENANTKIT_{field.upper()}"


ENVIRONMENT_VARIABLES: tuple[EnvironmentVariable, ...] = tuple(
    EnvironmentVariable(
        _variable(name),
        info.description or "",
        secret=info.annotation is not None and "SecretStr" in str(info.annotation),
    )
    for name, info in _Environment.model_fields.items()
)
"""Every variable :meth:`TenantKitSettings.from_env` reads, in documentation order."""


def _split_old_peppers(raw: str) -> dict[str, str]:
    peppers: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in raw.split(","))):
        version, separator, secret = pair.partition(":")
        if not separator:
            raise InvalidSettingError(
                _variable("api_key_old_peppers"), "holds version:secret pairs, comma-separated"
            )
        peppers[version.strip()] = secret
    return peppers


def _compose(environment: _Environment) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {
        "api_keys": {},
        "invitations": {},
        "database": {},
        "audit": {},
        "http": {},
        "organizations": {},
        "bus": {},
        "webhooks": {},
    }
    for name, (section, field) in _Environment.TARGETS.items():
        value = getattr(environment, name)
        if value is None or field in ("peppers", "current_pepper", "secret_keys"):
            continue
        sections[section][field] = value
    old = environment.api_key_old_peppers
    peppers = _split_old_peppers(old.get_secret_value()) if old is not None else {}
    if environment.api_key_pepper is not None:
        current = environment.api_key_pepper_version or "1"
        peppers[current] = environment.api_key_pepper.get_secret_value()
        sections["api_keys"]["current_pepper"] = current
    elif peppers:
        raise InvalidSettingError(
            _variable("api_key_old_peppers"), "is set but TENANTKIT_API_KEY_PEPPER is not"
        )
    if peppers:
        sections["api_keys"]["peppers"] = peppers
    if environment.invitation_secret is not None:
        raw = environment.invitation_secret.get_secret_value()
        sections["invitations"]["secret_keys"] = tuple(key.strip() for key in raw.split(",") if key.strip())
    if environment.webhook_secret_keys is not None:
        raw = environment.webhook_secret_keys.get_secret_value()
        sections["webhooks"]["secret_keys"] = tuple(key.strip() for key in raw.split(",") if key.strip())
    return sections


def _variable_of(location: str) -> str:
    """The environment variable behind a settings location such as ``api_keys.prefix``."""
    section, _, field = location.partition(".")
    field = field.split(".", 1)[0]
    if (section, field) == ("api_keys", "peppers"):
        return _variable("api_key_pepper")
    for name, target in _Environment.TARGETS.items():
        if target == (section, field):
            return _variable(name)
    return location


class TenantKitSettings(_Settings):
    """Every tenantkit setting, one frozen object per feature.

    ::

        settings = TenantKitSettings(
            api_keys=ApiKeySettings(prefix="tk_test_", hasher="argon2id", argon2_profile="CHEAPEST"),
            invitations=InvitationSettings(secret_keys=[os.environ["INVITATION_KEY"]]),
        )
        kit = TenantKit.from_settings(settings)   # or TenantKit.from_env()

    Attributes:
        api_keys: API key settings.
        invitations: Invitation settings (off without a signing key).
        database: The database URL (for the CLI) and the PostgreSQL schema.
        audit: The audit log (on by default; the hash chain off).
        http: Trusted proxies and the request id header, for the web adapters.
        organizations: The host's settings model and the deployment's defaults (ceilings) of the settings
            tenantkit honours per organization.
        bus: The cross-process invalidation bus (off by default).
        webhooks: Webhooks (off without an encryption key).
    """

    api_keys: ApiKeySettings = Field(default_factory=ApiKeySettings)
    invitations: InvitationSettings = Field(default_factory=InvitationSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    organizations: OrganizationDefaults = Field(default_factory=OrganizationDefaults)
    bus: BusSettings = Field(default_factory=BusSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    def __init__(self, /, **sections: Any) -> None:
        # Each section given as a mapping is built here, so that an error names its place in the whole
        # (``api_keys.prefix``), which pydantic's nested validation of these models would not say.
        models: dict[str, type[_Settings]] = {
            "api_keys": ApiKeySettings,
            "invitations": InvitationSettings,
            "database": DatabaseSettings,
            "audit": AuditSettings,
            "http": HttpSettings,
            "organizations": OrganizationDefaults,
            "bus": BusSettings,
            "webhooks": WebhookSettings,
        }
        for section, model in models.items():
            values = sections.get(section)
            if isinstance(values, Mapping):
                try:
                    sections[section] = model(**values)
                except InvalidSettingError as error:
                    raise InvalidSettingError(f"{section}.{error.setting}", error.reason) from None
        super().__init__(**sections)

    @classmethod
    def from_env(cls, *, env_file: str | Path | None = ".env") -> TenantKitSettings:
        """Read the settings from ``TENANTKIT_*`` environment variables and ``env_file``.

        Variables set in the environment win over the file; a missing file is no error. The variables are
        listed in :data:`ENVIRONMENT_VARIABLES` (and in ``tenantkit --help``).

        Args:
            env_file: The dotenv file to read as well; ``None`` reads the environment alone.

        Raises:
            InvalidSettingError: A variable is unusable; the error names it (never its value).
        """
        try:
            environment = _Environment(_env_file=env_file)  # type: ignore[call-arg]
        except ValidationError as error:
            location, reason = _first_error(error)
            raise InvalidSettingError(_variable(location), reason) from None
        try:
            return cls(**_compose(environment))
        except InvalidSettingError as error:
            raise InvalidSettingError(_variable_of(error.setting), error.reason) from None

    @classmethod
    def for_tests(cls, **sections: Any) -> TenantKitSettings:
        """Settings for test suites: ``tk_test_`` keys and argon2-cffi's cheapest profile.

        Keyword arguments replace whole sections (``invitations=InvitationSettings(...)``).
        """
        sections.setdefault("api_keys", ApiKeySettings(prefix="tk_test_", argon2_profile="CHEAPEST"))
        return cls(**sections)


def environment_help() -> str:
    """The list of variables for ``--help``: one per line, name and purpose (click keeps ``\\b`` blocks)."""
    lines = ["\b", "Environment variables (also read from ./.env):"]
    for variable in ENVIRONMENT_VARIABLES:
        lines += [f"  {variable.name}", f"      {variable.help}"]
    return "\n".join(lines)
