"""``TenantKit``: the three services wired together with one clock, one permission table and one event bus."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit._addresses import PUBLIC_EMAIL_DOMAINS
from tenantkit._api_keys import ApiKeyService
from tenantkit._clock import Clock, system_clock
from tenantkit._errors import ConfigurationError
from tenantkit._events import Event, EventDispatcher
from tenantkit._invitations import InvitationService
from tenantkit._key_format import DEFAULT_PREFIX
from tenantkit._membership import MembershipService
from tenantkit._roles import Permissions
from tenantkit._session import transaction
from tenantkit._settings import TenantKitSettings

E = TypeVar("E", bound=Event)


class TenantKit:
    """Membership, API keys and invitations, configured once for an application.

    ::

        kit = TenantKit(invitation_secret_keys=[os.environ["TENANTKIT_INVITATION_SECRET"]])
        with kit.transaction(engine) as session:
            kit.members.add(session, "org_1", "user_1", Role.OWNER, actor=HOST)
            issued = kit.api_keys.issue(session, "org_1", "CI", actor="user_1")

    Every service shares the kit's clock, permission table and event dispatcher, so one
    :meth:`subscribe` hears every event. The options come either from ``settings`` (a
    :class:`TenantKitSettings`, which reaches every option, the hasher included; :meth:`from_env` reads it
    from the environment as the CLI does) or from the keywords below, not both.

    Args:
        settings: Every option, one frozen object per feature.
        invitation_secret_keys: Keys that sign invitation tokens, oldest first (at least 16 characters
            each). Without them :attr:`invitations` is unavailable and raises :class:`ConfigurationError`.
        clock: Where the current time comes from (inject a :class:`tenantkit.testing.FrozenClock` in tests).
        permissions: The permission table (the default one when omitted).
        schema: The PostgreSQL schema that holds tenantkit's tables (the connection's default when
            omitted); pass the same to :func:`tenantkit.upgrade`.
        api_key_prefix: The prefix of this deployment's keys, such as ``tk_live_`` or ``tk_test_``.
        api_key_peppers: Server secrets for HMAC-SHA256 key digests, version to secret.
        api_key_current_pepper: The pepper version new digests use.
        api_key_cache_ttl: Turns on the in-process verification cache, trusting an entry this long.
        api_key_last_used_interval: ``last_used_at`` is written at most once per key per interval.
        api_key_rotation_grace: How long a rotated-out key keeps working, at most.
        invitation_accept_url_template: The accept page, with ``{token}`` where the token goes.
        invitation_default_ttl: How long an invitation is valid by default.
        invitation_max_ttl: The longest validity allowed.
        public_email_domains: Public mailbox providers that link invitations refuse as allowed domains.
        allow_public_email_domains: Accept public providers as allowed domains anyway.

    Raises:
        ConfigurationError: Both ``settings`` and keyword options were given, or an option is unusable.
    """

    def __init__(
        self,
        *,
        settings: TenantKitSettings | None = None,
        invitation_secret_keys: Sequence[str | bytes] | None = None,
        clock: Clock = system_clock,
        permissions: Permissions | None = None,
        schema: str | None = None,
        api_key_prefix: str = DEFAULT_PREFIX,
        api_key_peppers: Mapping[str, bytes | str] | None = None,
        api_key_current_pepper: str | None = None,
        api_key_cache_ttl: timedelta | None = None,
        api_key_last_used_interval: timedelta = timedelta(seconds=60),
        api_key_rotation_grace: timedelta = timedelta(hours=24),
        invitation_accept_url_template: str | None = None,
        invitation_default_ttl: timedelta = timedelta(days=7),
        invitation_max_ttl: timedelta = timedelta(days=30),
        public_email_domains: Iterable[str] = PUBLIC_EMAIL_DOMAINS,
        allow_public_email_domains: bool = False,
    ) -> None:
        api_key_options: dict[str, Any] = {
            "prefix": api_key_prefix,
            "peppers": api_key_peppers,
            "current_pepper": api_key_current_pepper,
            "cache_ttl": api_key_cache_ttl,
            "last_used_interval": api_key_last_used_interval,
            "rotation_grace": api_key_rotation_grace,
        }
        invitation_options: dict[str, Any] = {
            "default_ttl": invitation_default_ttl,
            "max_ttl": invitation_max_ttl,
            "accept_url_template": invitation_accept_url_template,
            "public_email_domains": public_email_domains,
            "allow_public_domains": allow_public_email_domains,
        }
        if settings is not None:
            keywords: dict[str, object] = {
                "invitation_secret_keys": invitation_secret_keys,
                "schema": schema,
                "api_key_prefix": api_key_prefix,
                "api_key_peppers": api_key_peppers,
                "api_key_current_pepper": api_key_current_pepper,
                "api_key_cache_ttl": api_key_cache_ttl,
                "api_key_last_used_interval": api_key_last_used_interval,
                "api_key_rotation_grace": api_key_rotation_grace,
                "invitation_accept_url_template": invitation_accept_url_template,
                "invitation_default_ttl": invitation_default_ttl,
                "invitation_max_ttl": invitation_max_ttl,
                "public_email_domains": public_email_domains,
                "allow_public_email_domains": allow_public_email_domains,
            }
            given = [name for name, value in keywords.items() if value != _KEYWORD_DEFAULTS.get(name)]
            if given:
                raise ConfigurationError(
                    f"give settings or keyword options, not both (settings and {', '.join(given)})"
                )
            api_key_options = settings.api_keys.service_options()
            invitation_options = settings.invitations.service_options()
            invitation_secret_keys = invitation_options.pop("secret_keys") or None
            schema = settings.database.schema_name
        events = EventDispatcher()
        members = MembershipService(permissions=permissions, clock=clock, events=events, schema=schema)
        api_keys = ApiKeyService(membership=members, clock=clock, events=events, **api_key_options)
        invitations = None
        if invitation_secret_keys is not None:
            invitations = InvitationService(
                membership=members,
                secret_keys=invitation_secret_keys,
                clock=clock,
                events=events,
                **invitation_options,
            )
        self._init(members, api_keys, invitations, settings)

    @classmethod
    def from_env(
        cls,
        *,
        env_file: str | Path | None = ".env",
        clock: Clock = system_clock,
        permissions: Permissions | None = None,
    ) -> TenantKit:
        """A kit configured from ``TENANTKIT_*`` environment variables and ``.env``, as the CLI is.

        See :meth:`TenantKitSettings.from_env` and the configuration page for the variables.

        Raises:
            InvalidSettingError: A variable is unusable; the error names it.
        """
        return cls(
            settings=TenantKitSettings.from_env(env_file=env_file), clock=clock, permissions=permissions
        )

    @classmethod
    def from_services(
        cls,
        members: MembershipService,
        api_keys: ApiKeyService,
        invitations: InvitationService | None = None,
    ) -> TenantKit:
        """Assemble a kit from services built by hand; they must share one event dispatcher and clock.

        Raises:
            ConfigurationError: The services do not share the membership service or the dispatcher.
        """
        for service in (api_keys, invitations):
            if service is None:
                continue
            if service.membership is not members:
                raise ConfigurationError(f"{type(service).__name__} uses another membership service")
            if service.events is not members.events:
                raise ConfigurationError(f"{type(service).__name__} uses another event dispatcher")
        kit = cls.__new__(cls)
        kit._init(members, api_keys, invitations)
        return kit

    def _init(
        self,
        members: MembershipService,
        api_keys: ApiKeyService,
        invitations: InvitationService | None,
        settings: TenantKitSettings | None = None,
    ) -> None:
        # The settings the kit was built from; None when built from keywords or from services.
        self.settings: TenantKitSettings | None = settings
        self.members = members
        self.api_keys = api_keys
        self._invitations = invitations

    @property
    def invitations(self) -> InvitationService:
        """The invitation service.

        Raises:
            ConfigurationError: The kit was built without ``invitation_secret_keys``.
        """
        if self._invitations is None:
            raise ConfigurationError("invitations need signing keys: TenantKit(invitation_secret_keys=[...])")
        return self._invitations

    @property
    def events(self) -> EventDispatcher:
        """The dispatcher every service records its events on."""
        return self.members.events

    @property
    def permissions(self) -> Permissions:
        """The permission table every service checks against."""
        return self.members.permissions

    @property
    def clock(self) -> Clock:
        """The clock every service reads."""
        return self.members.clock

    def subscribe(self, listener: Callable[[E], None], *event_types: type[E]) -> Callable[[], None]:
        """Call ``listener`` with each committed event of ``event_types`` (all when none given).

        Returns:
            A function that unsubscribes the listener.
        """
        return self.events.subscribe(listener, *event_types)

    def transaction(self, bind: sa.Engine | sa.Connection) -> AbstractContextManager[Session]:
        """A unit of work for standalone use; see :func:`tenantkit.transaction`."""
        return transaction(bind)

    def __repr__(self) -> str:
        return f"TenantKit(api_keys={self.api_keys!r}, invitations={'on' if self._invitations else 'off'})"


# The keyword options and their defaults, read off the signature, to tell a keyword given alongside
# ``settings`` from one left out.
_KEYWORD_DEFAULTS: dict[str, object] = {
    name: parameter.default
    for name, parameter in inspect.signature(TenantKit.__init__).parameters.items()
    if name not in ("self", "settings", "clock", "permissions")
}
