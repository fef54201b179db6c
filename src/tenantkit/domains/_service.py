"""Verified domains: an organization claims a domain, proves it owns it by a DNS TXT record, and holds it.

A domain is verified for at most one organization at a time (a unique index on ``verified_domain``, so two
organizations racing leave exactly one verified). The token is shown once, when the domain is added; only
its SHA-256 digest is stored, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantkit._actor import HOST, Actor, ActorKind, as_actor
from tenantkit._addresses import (
    PUBLIC_EMAIL_DOMAINS,
    email_domain,
    normalize_domain,
    normalize_email,
    normalize_public_domains,
)
from tenantkit._clock import Clock
from tenantkit._db import begin_write, typed_concurrency_errors
from tenantkit._errors import (
    AlreadyMemberError,
    AutoJoinRefusedError,
    ConfigurationError,
    DnsLookupError,
    DomainExistsError,
    DomainNotFoundError,
    DomainTakenError,
    DomainVerificationExpiredError,
    DomainVerificationFailedError,
    InvalidInputError,
    PermissionDeniedError,
    PublicEmailDomainError,
)
from tenantkit._events import DomainAdded, DomainFailed, DomainRemoved, DomainVerified, EventDispatcher
from tenantkit._tables import new_id, organization_domains
from tenantkit._validation import check_identifier
from tenantkit.domains._dns import DnsPythonResolver, TxtAnswer, TxtResolver
from tenantkit.members._service import Member, MembershipService
from tenantkit.organizations._document import PolicySource
from tenantkit.roles._policy import Action

__all__ = [
    "RECORD_PREFIX",
    "TOKEN_PREFIX",
    "AddedDomain",
    "AutoJoin",
    "DomainService",
    "DomainStatus",
    "DomainStrategy",
    "OrganizationDomain",
    "RecheckResult",
]

RECORD_PREFIX = "_tenantkit-verification"
"""The label the TXT record sits under: ``_tenantkit-verification.example.com`` (configurable)."""
TOKEN_PREFIX = "tenantkit-domain-verification="  # noqa: S105  a label, not a secret
"""What the TXT record's value starts with; the token follows."""

DomainStatus = Literal["pending", "verified", "failed"]
DomainStrategy = Literal["dns_txt", "manual"]
_STRATEGIES = ("dns_txt", "manual")
_T = organization_domains


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class OrganizationDomain(BaseModel):
    """A domain an organization claims, and where its verification stands (never its token).

    Attributes:
        id: The domain row's id.
        organization_id: The claiming organization.
        domain: The domain, IDNA-encoded and lower case (``xn--bcher-kva.example``).
        status: ``pending``, ``verified`` or ``failed``.
        strategy: ``dns_txt`` (a TXT record proves it) or ``manual`` (the host confirms it).
        record_name: The name the TXT record must be published at (``None`` for ``manual``).
        created_at: When it was claimed (its pending window starts here).
        verified_at: When it was last verified.
        last_checked_at: When its record was last looked up.
        failed_at: When it last became ``failed``.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    domain: str
    status: DomainStatus
    strategy: DomainStrategy
    record_name: str | None
    created_at: datetime
    verified_at: datetime | None
    last_checked_at: datetime | None
    failed_at: datetime | None


@dataclass(frozen=True)
class AddedDomain:
    """A newly claimed domain and, for ``dns_txt``, the TXT record to publish: shown once, never stored.

    Attributes:
        domain: The claimed domain (``pending``).
        record_name: Where to publish the record.
        record_value: The record's value, carrying the token (``None`` for ``manual``).
    """

    domain: OrganizationDomain
    record_name: str | None
    record_value: SecretStr | None


@dataclass(frozen=True)
class AutoJoin:
    """A user joined an organization through its verified domain (or was a member already).

    Attributes:
        member: The membership.
        created: Whether it was created just now (``False``: the user was a member; their role stands).
    """

    member: Member
    created: bool


@dataclass(frozen=True)
class RecheckResult:
    """What a re-check of one verified domain found: still verified, downgraded, or not answered."""

    domain: OrganizationDomain
    outcome: Literal["verified", "downgraded", "unanswered"]


class DomainService:
    """An organization's email domains: claim, verify by DNS TXT (or by the host), list, remove, re-check.

    Args:
        membership: The membership service (permissions, clock, events, schema).
        resolver: How TXT records are looked up; a :class:`~tenantkit.domains.DnsPythonResolver` on the
            system's nameservers when omitted (built on first use, so dnspython is needed only to verify).
        record_prefix: The label the TXT record is published under.
        pending_ttl: How long a claimed domain may stay pending (30 days); past it, verification is refused
            and :meth:`expire_pending` marks it failed.
        public_email_domains: Public mailbox providers, refused as organization domains.
        cover_subdomains: Whether a verified ``example.com`` also covers ``eu.example.com`` for SSO and
            discovery (off: each subdomain is a domain of its own).
        clock: Where the current time comes from (the membership service's by default).
        events: The dispatcher (the membership service's by default).
        policies: Each organization's settings policy (``kit.organizations``): whether it turned
            ``auto_join`` on. Without it, no organization auto-joins.
    """

    def __init__(
        self,
        *,
        membership: MembershipService,
        resolver: TxtResolver | None = None,
        record_prefix: str = RECORD_PREFIX,
        pending_ttl: timedelta = timedelta(days=30),
        public_email_domains: Iterable[str] = PUBLIC_EMAIL_DOMAINS,
        cover_subdomains: bool = False,
        clock: Clock | None = None,
        events: EventDispatcher | None = None,
        policies: PolicySource | None = None,
    ) -> None:
        if resolver is not None and not isinstance(resolver, TxtResolver):
            raise ConfigurationError("resolver must have a txt(name) method")
        if pending_ttl <= timedelta(0):
            raise ConfigurationError("pending_ttl must be positive")
        if not record_prefix.startswith("_") or "." in record_prefix.strip("."):
            raise ConfigurationError("record_prefix must be one label starting with '_'")
        self.membership = membership
        self._resolver = resolver
        self.record_prefix = record_prefix
        self.pending_ttl = pending_ttl
        self.public_email_domains: frozenset[str] = normalize_public_domains(public_email_domains)
        self.cover_subdomains = cover_subdomains
        self.clock: Clock = clock or membership.clock
        self.events: EventDispatcher = events or membership.events
        self.policies = policies

    @property
    def resolver(self) -> TxtResolver:
        """The resolver in use (the system's, through dnspython, unless one was given)."""
        if self._resolver is None:
            self._resolver = DnsPythonResolver()
        return self._resolver

    @property
    def _options(self) -> Mapping[str, Any]:
        return self.membership.execution_options

    def record_name(self, domain: str) -> str:
        """The name the TXT record of ``domain`` (canonical) is published at."""
        return f"{self.record_prefix}.{domain}"

    def _model(self, row: Any) -> OrganizationDomain:
        return OrganizationDomain(
            id=row.id,
            organization_id=row.organization_id,
            domain=row.domain,
            status=row.status,
            strategy=row.strategy,
            record_name=self.record_name(row.domain) if row.strategy == "dns_txt" else None,
            created_at=row.created_at,
            verified_at=row.verified_at,
            last_checked_at=row.last_checked_at,
            failed_at=row.failed_at,
        )

    def _canonical(self, domain: object) -> str:
        canonical = normalize_domain(domain, "domain")
        if canonical.startswith("*."):
            raise InvalidInputError("domain", "claim the domain itself, without '*.'")
        if canonical in self.public_email_domains:
            raise PublicEmailDomainError(canonical)
        return canonical

    def _row(
        self, session: Session | Connection, organization_id: str, domain: str, *, lock: bool = False
    ) -> Any:
        query = sa.select(_T).where(_T.c.organization_id == organization_id, _T.c.domain == domain)
        if lock:
            query = query.with_for_update()
        row = session.execute(query, execution_options=self._options).first()
        if row is None:
            raise DomainNotFoundError(organization_id, domain)
        return row

    def _holder(self, session: Session | Connection, domain: str) -> str | None:
        return session.execute(
            sa.select(_T.c.organization_id).where(_T.c.verified_domain == domain),
            execution_options=self._options,
        ).scalar_one_or_none()

    # -- claims ------------------------------------------------------------------------------------------

    def add(
        self,
        session: Session,
        organization_id: str,
        domain: str,
        *,
        actor: Actor | str,
        strategy: DomainStrategy = "dns_txt",
    ) -> AddedDomain:
        """Claim ``domain`` for the organization, pending until verified.

        A failed claim of the same domain is renewed (a new token and pending window).

        Args:
            session: The caller's session.
            organization_id: The organization.
            domain: The domain (Unicode or IDNA; normalized as invitations do).
            actor: Who claims: needs ``domains:manage``; ``manual`` claims are the host's alone.
            strategy: ``dns_txt`` (default) or ``manual`` (the host confirms with :meth:`confirm`).

        Returns:
            The claim and, for ``dns_txt``, the TXT record to publish (shown this once).

        Raises:
            InvalidInputError: A malformed id or domain, or an unknown strategy.
            PublicEmailDomainError: The domain is a public mailbox provider.
            DomainExistsError: The organization already claims it (pending or verified).
            DomainTakenError: It is verified for another organization.
            PermissionDeniedError: The actor may not manage domains.
        """
        check_identifier(organization_id, "organization_id")
        if strategy not in _STRATEGIES:
            raise InvalidInputError("strategy", f"must be one of {', '.join(_STRATEGIES)}")
        canonical = self._canonical(domain)
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_DOMAINS)
        if strategy == "manual" and not acting.is_host:
            raise PermissionDeniedError("domains:manage", None, "only the host verifies domains manually")
        with typed_concurrency_errors(organization_id):
            begin_write(session.connection(), _T, self._options)
            holder = self._holder(session, canonical)
            if holder is not None and holder != organization_id:
                raise DomainTakenError(canonical)
            token = secrets.token_urlsafe(24) if strategy == "dns_txt" else None
            now = self.clock()
            values: dict[str, Any] = {
                "status": "pending",
                "strategy": strategy,
                "token_digest": _digest(token) if token is not None else None,
                "verified_domain": None,
                "created_at": now,
                "updated_at": now,
                "verified_at": None,
                "last_checked_at": None,
                "failed_at": None,
            }
            existing = session.execute(
                sa.select(_T.c.id, _T.c.status)
                .where(_T.c.organization_id == organization_id, _T.c.domain == canonical)
                .with_for_update(),
                execution_options=self._options,
            ).first()
            if existing is not None and existing.status != "failed":
                raise DomainExistsError(organization_id, canonical)
            if existing is not None:
                domain_id = existing.id
                session.execute(
                    sa.update(_T).where(_T.c.id == domain_id).values(**values),
                    execution_options=self._options,
                )
            else:
                domain_id = new_id()
                try:
                    with session.begin_nested():
                        session.execute(
                            sa.insert(_T).values(
                                id=domain_id, organization_id=organization_id, domain=canonical, **values
                            ),
                            execution_options=self._options,
                        )
                except sa.exc.IntegrityError:
                    raise DomainExistsError(organization_id, canonical) from None
            self.events.record(
                session,
                DomainAdded(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    domain_id=domain_id,
                    domain=canonical,
                    strategy=strategy,
                ),
            )
            added = self._model(self._row(session, organization_id, canonical))
        return AddedDomain(
            domain=added,
            record_name=added.record_name,
            record_value=SecretStr(TOKEN_PREFIX + token) if token is not None else None,
        )

    def list_domains(
        self, session: Session | Connection, organization_id: str, *, actor: Actor | str
    ) -> list[OrganizationDomain]:
        """The organization's domains, by domain name (``domains:manage``, or the host)."""
        check_identifier(organization_id, "organization_id")
        self.membership.authorize(session, organization_id, actor, Action.MANAGE_DOMAINS)
        rows = session.execute(
            sa.select(_T).where(_T.c.organization_id == organization_id).order_by(_T.c.domain),
            execution_options=self._options,
        )
        return [self._model(row) for row in rows]

    def get(
        self, session: Session | Connection, organization_id: str, domain: str, *, actor: Actor | str
    ) -> OrganizationDomain:
        """One of the organization's domains.

        Raises:
            DomainNotFoundError: The organization claims no such domain.
        """
        check_identifier(organization_id, "organization_id")
        canonical = normalize_domain(domain, "domain")
        self.membership.authorize(session, organization_id, actor, Action.MANAGE_DOMAINS)
        return self._model(self._row(session, organization_id, canonical))

    def remove(
        self, session: Session, organization_id: str, domain: str, *, actor: Actor | str
    ) -> OrganizationDomain:
        """Give up a domain (whatever its status); SSO logins of its addresses are refused from now on.

        Raises:
            DomainNotFoundError: The organization claims no such domain.
            PermissionDeniedError: The actor may not manage domains.
        """
        check_identifier(organization_id, "organization_id")
        canonical = normalize_domain(domain, "domain")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_DOMAINS)
        with typed_concurrency_errors(organization_id):
            row = self._row(session, organization_id, canonical, lock=True)
            session.execute(sa.delete(_T).where(_T.c.id == row.id), execution_options=self._options)
            self.events.record(
                session,
                DomainRemoved(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=self.clock(),
                    domain_id=row.id,
                    domain=canonical,
                ),
            )
        return self._model(row)

    # -- verification ------------------------------------------------------------------------------------

    def _lookup(self, row: Any) -> str | None:
        """``None`` when the TXT record proves the claim, else the reason it does not."""
        answer: TxtAnswer = self.resolver.txt(self.record_name(row.domain))
        if not answer.exists:
            return "nxdomain"
        tokens = [value[len(TOKEN_PREFIX) :] for value in answer.values if value.startswith(TOKEN_PREFIX)]
        if not tokens:
            return "no_record"
        stored = str(row.token_digest or "")
        matched = False
        for token in tokens:
            matched |= hmac.compare_digest(_digest(token.strip()), stored)
        return None if matched else "token_mismatch"

    _REASONS: ClassVar[Mapping[str, str]] = {
        "nxdomain": "the name {name} does not exist (NXDOMAIN)",
        "no_record": "no TXT record starting with 'tenantkit-domain-verification=' at {name}",
        "token_mismatch": "the TXT record at {name} carries another token",
    }

    def verify(
        self, session: Session, organization_id: str, domain: str, *, actor: Actor | str
    ) -> OrganizationDomain:
        """Look up the domain's TXT record and, when it carries the domain's token, mark it verified.

        A failed check changes nothing (the domain stays as it was) and raises. Verifying a domain already
        verified checks the record again and refreshes ``last_checked_at``.

        Raises:
            DomainNotFoundError: The organization claims no such domain.
            DomainVerificationExpiredError: It stayed pending past ``pending_ttl``; add it again.
            DomainVerificationFailedError: No record, another token, NXDOMAIN, or a ``manual`` domain.
            DnsLookupError: The lookup timed out or no nameserver answered.
            DomainTakenError: Another organization verified it first.
            PermissionDeniedError: The actor may not manage domains.
            ConcurrentUpdateError: A concurrent transaction deadlocked with this one; retry.
        """
        check_identifier(organization_id, "organization_id")
        canonical = normalize_domain(domain, "domain")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_DOMAINS)
        row = self._row(session, organization_id, canonical)
        now = self.clock()
        if row.strategy == "manual":
            raise DomainVerificationFailedError(canonical, "manual", "the host confirms this domain")
        if row.verified_at is None and row.created_at + self.pending_ttl <= now:
            raise DomainVerificationExpiredError(canonical)
        if (holder := self._holder(session, canonical)) is not None and holder != organization_id:
            raise DomainTakenError(canonical)
        reason = self._lookup(row)
        if reason is not None:
            name = self.record_name(canonical)
            raise DomainVerificationFailedError(canonical, reason, self._REASONS[reason].format(name=name))
        return self._mark_verified(session, row, acting, now)

    def confirm(
        self, session: Session, organization_id: str, domain: str, *, actor: Actor | str
    ) -> OrganizationDomain:
        """Mark a domain verified on the host's word (a ``manual`` domain, or any the host vouches for).

        Raises:
            PermissionDeniedError: The actor is not the host.
            DomainNotFoundError: The organization claims no such domain.
            DomainTakenError: It is verified for another organization.
        """
        check_identifier(organization_id, "organization_id")
        canonical = normalize_domain(domain, "domain")
        acting = as_actor(actor)
        if not acting.is_host:
            raise PermissionDeniedError("domains:manage", None, "only the host confirms a domain")
        row = self._row(session, organization_id, canonical)
        return self._mark_verified(session, row, acting, self.clock())

    def _mark_verified(self, session: Session, row: Any, acting: Actor, now: datetime) -> OrganizationDomain:
        organization_id = row.organization_id
        with typed_concurrency_errors(organization_id):
            try:
                with session.begin_nested():
                    session.execute(
                        sa.update(_T)
                        .where(_T.c.id == row.id)
                        .values(
                            status="verified",
                            verified_domain=row.domain,
                            verified_at=now if row.status != "verified" else row.verified_at,
                            last_checked_at=now,
                            failed_at=None,
                            updated_at=now,
                        ),
                        execution_options=self._options,
                    )
            except sa.exc.IntegrityError:
                raise DomainTakenError(row.domain) from None
            if row.status != "verified":
                self.events.record(
                    session,
                    DomainVerified(
                        organization_id=organization_id,
                        actor=acting,
                        occurred_at=now,
                        domain_id=row.id,
                        domain=row.domain,
                        strategy=row.strategy,
                    ),
                )
            return self._model(self._row(session, organization_id, row.domain))

    def _fail(self, session: Session, row: Any, reason: str, actor: Actor, now: datetime) -> None:
        session.execute(
            sa.update(_T)
            .where(_T.c.id == row.id)
            .values(
                status="failed", verified_domain=None, failed_at=now, last_checked_at=now, updated_at=now
            ),
            execution_options=self._options,
        )
        self.events.record(
            session,
            DomainFailed(
                organization_id=row.organization_id,
                actor=actor,
                occurred_at=now,
                domain_id=row.id,
                domain=row.domain,
                reason=reason,
                was_verified=row.status == "verified",
            ),
        )

    def expire_pending(self, session: Session) -> int:
        """Mark every domain pending past ``pending_ttl`` failed (audited, as the system); return how many.

        A scheduled job's call, across organizations: it reads nothing but the rows it fails.
        """
        now = self.clock()
        rows = session.execute(
            sa.select(_T)
            .where(_T.c.status == "pending", _T.c.created_at <= now - self.pending_ttl)
            .with_for_update(),
            execution_options=self._options,
        ).all()
        for row in rows:
            self._fail(session, row, "expired", Actor(ActorKind.SYSTEM, "domains.expiry"), now)
        return len(rows)

    def recheck(self, session: Session, organization_id: str, domain: str) -> RecheckResult:
        """Look up a verified DNS domain's record again; downgrade it to failed (audited) if it is gone.

        Takes no actor: a scheduled job's question, recorded as the system. A lookup that gets no answer
        (a timeout) changes nothing and reports ``unanswered``; a ``manual`` or unverified domain is left
        as it is and reported as found.

        Raises:
            DomainNotFoundError: The organization claims no such domain.
        """
        check_identifier(organization_id, "organization_id")
        canonical = normalize_domain(domain, "domain")
        row = self._row(session, organization_id, canonical)
        if row.status != "verified" or row.strategy != "dns_txt":
            return RecheckResult(self._model(row), "verified" if row.status == "verified" else "unanswered")
        now = self.clock()
        try:
            reason = self._lookup(row)
        except DnsLookupError:
            return RecheckResult(self._model(row), "unanswered")
        with typed_concurrency_errors(organization_id):
            if reason is None:
                session.execute(
                    sa.update(_T).where(_T.c.id == row.id).values(last_checked_at=now),
                    execution_options=self._options,
                )
                return RecheckResult(self._model(self._row(session, organization_id, canonical)), "verified")
            self._fail(session, row, reason, Actor(ActorKind.SYSTEM, "domains.recheck"), now)
        return RecheckResult(self._model(self._row(session, organization_id, canonical)), "downgraded")

    # -- questions other features ask ---------------------------------------------------------------------

    def candidates(self, domain: str) -> tuple[str, ...]:
        """The verified domains that would cover the canonical ``domain``: itself, and its parents when
        ``cover_subdomains`` is on (down to two labels)."""
        if not self.cover_subdomains:
            return (domain,)
        labels = domain.split(".")
        return tuple(".".join(labels[i:]) for i in range(len(labels) - 1))

    def verified_in(self, session: Session | Connection, organization_id: str, domain: str) -> bool:
        """Whether the canonical ``domain`` is (covered by) a verified domain of the organization."""
        found = session.execute(
            sa.select(_T.c.id).where(
                _T.c.organization_id == organization_id,
                _T.c.verified_domain.in_(self.candidates(domain)),
            ),
            execution_options=self._options,
        ).first()
        return found is not None

    # -- auto-join ---------------------------------------------------------------------------------------

    def _auto_joins(self, session: Session | Connection, organization_id: str) -> bool:
        return self.policies is not None and self.policies.policy(session, organization_id).auto_join

    def joinable(self, session: Session | Connection, *, email: str, email_verified: bool) -> list[str]:
        """The organizations a user could join through their email's domain: to offer them, as Clerk's
        suggestions do (their ``auto_join`` setting is on and the domain is verified for them).

        A read across organizations on behalf of the user, whose verified email is the authority: nothing
        is answered for an unverified email. At most one organization holds a verified domain, so the list
        has at most one entry per domain the email is covered by (one, unless subdomains are covered).

        Raises:
            InvalidInputError: ``email`` is not an email address.
        """
        domain = email_domain(normalize_email(email))
        if email_verified is not True:
            return []
        holders = session.execute(
            sa.select(_T.c.organization_id)
            .where(_T.c.verified_domain.in_(self.candidates(domain)))
            .order_by(_T.c.organization_id),
            execution_options=self._options,
        ).scalars()
        return [
            organization for organization in dict.fromkeys(holders) if self._auto_joins(session, organization)
        ]

    def auto_join(
        self, session: Session, organization_id: str, *, user_id: str, email: str, email_verified: bool
    ) -> AutoJoin:
        """Make the user a member with the organization's default role, on the strength of a verified email
        in a verified domain of it, where the organization turned ``auto_join`` on.

        The joining user acts (their verified domain is the authority), so the ``member.added`` event and
        its audit row name them. A user who is a member already keeps the role they have.

        Raises:
            AutoJoinRefusedError: ``auto_join`` is off, the email is unverified, or its domain is not a
                verified domain of the organization (``reason``). Nothing was changed.
            InvalidInputError: A malformed id or email.
            UnknownRoleError: The organization's default role is a custom role that no longer exists.
        """
        check_identifier(organization_id, "organization_id")
        check_identifier(user_id, "user_id")
        domain = email_domain(normalize_email(email))
        if not self._auto_joins(session, organization_id):
            raise AutoJoinRefusedError(
                "auto_join_off", "the organization does not let its domains' users join"
            )
        if email_verified is not True:
            raise AutoJoinRefusedError("email_unverified", "the identity provider did not verify the email")
        if not self.verified_in(session, organization_id, domain):
            raise AutoJoinRefusedError(
                "domain_not_verified", f"{domain!r} is not a verified domain of the organization"
            )
        with typed_concurrency_errors(organization_id):
            role, custom = self.membership.resolve_default_role(session, organization_id)
            try:
                self.membership._admit(
                    session,
                    organization_id,
                    user_id,
                    role,
                    Actor.user(user_id),
                    custom_role=None if custom is None else custom.key,
                )
            except AlreadyMemberError:
                created = False
            else:
                created = True
        return AutoJoin(
            member=self.membership.get(session, organization_id, user_id, actor=HOST), created=created
        )
