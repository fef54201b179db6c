"""``TenantKit``: the services wired together with one clock, one permission table and one event bus."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tenantkit._clock import Clock, system_clock
from tenantkit._errors import ConfigurationError
from tenantkit._events import Event, EventDispatcher
from tenantkit._metrics import VerificationMetrics
from tenantkit._session import transaction
from tenantkit._settings import (
    ApiKeySettings,
    AuditSettings,
    BusSettings,
    DatabaseSettings,
    HttpSettings,
    InvitationSettings,
    OrganizationDefaults,
    TenantKitSettings,
    WebhookSettings,
)
from tenantkit.api_keys._service import ApiKeyService
from tenantkit.audit._service import AuditService
from tenantkit.bus._base import InvalidationBus
from tenantkit.bus._build import bus_from_settings
from tenantkit.departments._service import DepartmentService
from tenantkit.domains._dns import TxtResolver
from tenantkit.domains._service import DomainService
from tenantkit.invitations._requirements import AcceptPolicy
from tenantkit.invitations._service import InvitationService
from tenantkit.members._roles import RoleService
from tenantkit.members._service import MembershipService
from tenantkit.organizations._service import OrganizationService
from tenantkit.roles._authorizer import Authorizer
from tenantkit.roles._policy import Permissions
from tenantkit.sso._service import SsoService

if TYPE_CHECKING:
    from tenantkit.webhooks._service import WebhookService

E = TypeVar("E", bound=Event)


class TenantKit:
    """Membership, API keys, invitations and the audit log, configured once for an application.

    ::

        kit = TenantKit(
            api_keys=ApiKeySettings(prefix="tk_live_", cache_ttl=timedelta(seconds=30)),
            invitations=InvitationSettings(secret_keys=[os.environ["TENANTKIT_INVITATION_SECRET"]]),
        )
        with kit.transaction(engine) as session:
            kit.members.add(session, "org_1", "user_1", Role.OWNER, actor=HOST)
            issued = kit.api_keys.issue(session, "org_1", "CI", actor="user_1")

    Every service shares the kit's clock, permission table and event dispatcher, so one
    :meth:`subscribe` hears every event. Each feature takes one settings object, which reaches every option
    of its service; a section left out keeps its defaults. :meth:`from_settings` takes the whole
    :class:`TenantKitSettings` at once, and :meth:`from_env` reads it from the environment as the CLI does.

    Args:
        api_keys: How keys are issued, stored and verified (prefix, hasher, peppers, cache, ...).
        invitations: How invitations are signed and bounded. Without a signing key
            (``InvitationSettings(secret_keys=[...])``) :attr:`invitations` is unavailable and raises
            :class:`ConfigurationError`.
        database: The PostgreSQL schema that holds tenantkit's tables (pass the same to
            :func:`tenantkit.upgrade`).
        audit: The audit log: on by default (one row per change, in the change's transaction); the hash
            chain off. ``AuditSettings(enabled=False)`` writes none.
        http: What the web adapters believe about requests: trusted proxies, the request id header.
        organizations: The host's settings model for organizations, and the deployment's defaults of the
            settings tenantkit honours (each a ceiling an organization may only tighten).
        webhooks: Webhooks: off until ``WebhookSettings(secret_keys=[...])`` gives a key that encrypts
            signing secrets; then :attr:`webhooks` queues every event its endpoints want (needs the
            ``tenantkit[webhooks]`` extra).
        clock: Where the current time comes from (inject a :class:`tenantkit.testing.FrozenClock` in tests).
        permissions: The permission table (the default one when omitted), with the host's permission
            registry and deployment-wide custom roles when it declares them.
        metrics: Told of every API-key verification's outcome and source (:mod:`tenantkit.metrics`), and of
            the bus's events when it has ``bus_event``.
        accept_policy: The host's :class:`~tenantkit.invitations.AcceptPolicy` for invitations that carry
            requirements (a licence, say); without one, invitations cannot carry requirements.
        authorizer: An external policy engine that answers every permission question
            (:class:`~tenantkit.roles.Authorizer`); tenantkit's permission table when omitted.
        permission_cache_ttl: How long a member's effective permissions (rank plus custom role) are reused
            for checks their rank alone does not answer; ``None`` reads them every time.
        bus: The cross-process invalidation bus (off by default): built here as :attr:`bus`, started by the
            FastAPI lifespan or the Flask adapter (or by ``kit.bus.start()``).
        dns_resolver: How :attr:`domains` looks up TXT records (dnspython on the system's nameservers when
            omitted; ``tenantkit.domains.DnsPythonResolver(["10.0.0.2"])`` for others).

    Raises:
        ConfigurationError: An option is unusable.
    """

    def __init__(
        self,
        *,
        api_keys: ApiKeySettings | None = None,
        invitations: InvitationSettings | None = None,
        database: DatabaseSettings | None = None,
        audit: AuditSettings | None = None,
        http: HttpSettings | None = None,
        organizations: OrganizationDefaults | None = None,
        webhooks: WebhookSettings | None = None,
        clock: Clock = system_clock,
        permissions: Permissions | None = None,
        metrics: VerificationMetrics | None = None,
        accept_policy: AcceptPolicy | None = None,
        authorizer: Authorizer | None = None,
        permission_cache_ttl: timedelta | None = timedelta(seconds=5),
        bus: BusSettings | None = None,
        dns_resolver: TxtResolver | None = None,
    ) -> None:
        # A section left out (None) takes TenantKitSettings' default for it.
        sections = {
            "api_keys": api_keys,
            "invitations": invitations,
            "database": database,
            "audit": audit,
            "http": http,
            "organizations": organizations,
            "bus": bus,
            "webhooks": webhooks,
        }
        settings = TenantKitSettings(**{name: value for name, value in sections.items() if value is not None})
        self.settings: TenantKitSettings = settings
        """Every setting the kit was built from, secrets hidden in ``repr``."""
        events = EventDispatcher()
        self.members: MembershipService = MembershipService(
            permissions=permissions,
            clock=clock,
            events=events,
            schema=settings.database.schema_name,
            authorizer=authorizer,
            permission_cache_ttl=permission_cache_ttl,
        )
        self.audit: AuditService = AuditService(
            membership=self.members, clock=clock, events=events, **settings.audit.service_options()
        )
        """The audit log: written as every service records its events, read with ``list_events``."""
        self.organizations: OrganizationService = OrganizationService(
            membership=self.members,
            audit=self.audit,
            defaults=settings.organizations,
            clock=clock,
            events=events,
            invitation_default_ttl=settings.invitations.default_ttl,
            invitation_max_ttl=settings.invitations.max_ttl,
        )
        """Each organization's settings and the policy they set; deleting an organization's or user's data."""
        self.members.policies = self.organizations  # ``members.add`` without a role: the default role
        self.roles: RoleService = RoleService(self.members)
        """The organization's own custom roles: list, create, edit, delete (with ``reassign_to=``)."""
        self.api_keys: ApiKeyService = ApiKeyService(
            membership=self.members,
            clock=clock,
            events=events,
            metrics=metrics,
            policies=self.organizations,
            **settings.api_keys.service_options(),
        )
        self._invitations: InvitationService | None = None
        if settings.invitations.enabled:
            self._invitations = InvitationService(
                membership=self.members,
                clock=clock,
                events=events,
                policies=self.organizations,
                accept_policy=accept_policy,
                **settings.invitations.service_options(),
            )
        self.departments: DepartmentService = DepartmentService(membership=self.members)
        """Departments: named groups of members inside an organization."""
        self.domains: DomainService = DomainService(
            membership=self.members, resolver=dns_resolver, policies=self.organizations
        )
        """The organizations' email domains: claimed, verified by DNS TXT, held by one organization."""
        self.sso: SsoService = SsoService(
            membership=self.members, domains=self.domains, organizations=self.organizations
        )
        """SSO connections, home-realm discovery, the SSO login policy and ``require_sso`` enforcement."""
        if self._invitations is not None:
            self._invitations.domains = self.domains  # links held to verified domains, by setting
        self.bus: InvalidationBus | None = bus_from_settings(settings, events, clock=clock, metrics=metrics)
        """The cross-process invalidation bus (:mod:`tenantkit.bus`), not yet started; ``None`` when off."""
        self._webhooks: WebhookService | None = None
        if settings.webhooks.enabled:
            from tenantkit._metrics import WebhookMetrics
            from tenantkit.webhooks._service import WebhookService

            self._webhooks = WebhookService(
                membership=self.members,
                settings=settings.webhooks,
                clock=clock,
                events=events,
                metrics=metrics if isinstance(metrics, WebhookMetrics) else None,
            )

    @classmethod
    def from_settings(
        cls,
        settings: TenantKitSettings,
        *,
        clock: Clock = system_clock,
        permissions: Permissions | None = None,
        metrics: VerificationMetrics | None = None,
        accept_policy: AcceptPolicy | None = None,
        authorizer: Authorizer | None = None,
        dns_resolver: TxtResolver | None = None,
    ) -> TenantKit:
        """A kit configured by ``settings``, one section per feature (and ``dns_resolver`` for domains)."""
        return cls(
            api_keys=settings.api_keys,
            invitations=settings.invitations,
            database=settings.database,
            audit=settings.audit,
            http=settings.http,
            organizations=settings.organizations,
            bus=settings.bus,
            webhooks=settings.webhooks,
            clock=clock,
            permissions=permissions,
            metrics=metrics,
            accept_policy=accept_policy,
            authorizer=authorizer,
            dns_resolver=dns_resolver,
        )

    @classmethod
    def from_env(
        cls,
        *,
        env_file: str | Path | None = ".env",
        clock: Clock = system_clock,
        permissions: Permissions | None = None,
        metrics: VerificationMetrics | None = None,
        authorizer: Authorizer | None = None,
    ) -> TenantKit:
        """A kit configured from ``TENANTKIT_*`` environment variables and ``.env``, as the CLI is.

        See :meth:`TenantKitSettings.from_env` and the configuration page for the variables.

        Raises:
            InvalidSettingError: A variable is unusable; the error names it.
        """
        return cls.from_settings(
            TenantKitSettings.from_env(env_file=env_file),
            clock=clock,
            permissions=permissions,
            metrics=metrics,
            authorizer=authorizer,
        )

    @property
    def invitations(self) -> InvitationService:
        """The invitation service.

        Raises:
            ConfigurationError: The kit was built without an invitation signing key.
        """
        if self._invitations is None:
            raise ConfigurationError(
                "invitations need a signing key: TenantKit(invitations=InvitationSettings(secret_keys=[...]))"
                " or TENANTKIT_INVITATION_SECRET"
            )
        return self._invitations

    @property
    def webhooks(self) -> WebhookService:
        """The webhook service: endpoints, the outbox, the worker.

        Raises:
            ConfigurationError: The kit was built without a webhook key.
        """
        if self._webhooks is None:
            raise ConfigurationError(
                "webhooks need a key to encrypt signing secrets: "
                "TenantKit(webhooks=WebhookSettings(secret_keys=[...])) or TENANTKIT_WEBHOOK_SECRET_KEYS"
            )
        return self._webhooks

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
        return (
            f"TenantKit(api_keys={self.api_keys!r}, invitations={'on' if self._invitations else 'off'}, "
            f"audit={self.audit!r}, webhooks={'on' if self._webhooks else 'off'})"
        )
