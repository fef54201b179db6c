"""Invitations: by email (one person) or by a domain-restricted link, single-use or counted, unforgeable.

How each defect of the earlier implementation's invitation flow (the application whose
``0001_closed_shaman`` migration created these tables) is made impossible:

* *An ADMIN invited someone (or themself) as OWNER*: creation requires ``members:invite`` and
  :meth:`MembershipService.check_grant`; acceptance re-checks, with the same policy
  (:class:`Permissions`), that the inviter still may invite and grant the role.
* *Accepting overwrote an existing member's role*: acceptance only ever inserts a membership
  (:meth:`MembershipService.add`); an existing member keeps their role and the result says so.
* *Links were never used up; removed members rejoined through old links*: every acceptance increments
  ``use_count`` under a row lock and a conditional ``UPDATE … WHERE use_count < max_uses``; each acceptance
  is recorded in ``invitation_acceptances``, so one user comes in through one link at most once.
* *An unverified, typed-in address passed the domain check*: ``email_verified`` must be ``True``.
* *Case-sensitive comparisons*: addresses and domains are compared in canonical form (:mod:`_addresses`).
* *Tokens stored and listed in plaintext*: the ``token`` column holds ``sha256:`` of the token's secret;
  listings never carry it; events carry the accept URL as a ``SecretStr``.
* *An expired invitation blocked a new one*: a new invitation for an address replaces the open one, and
  finished invitations no longer occupy revision 0001's unique (organization_id, email) index.
* *Acceptance was not atomic*: consumption and membership happen in one savepoint.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy.orm import Session

from tenantkit._actor import Actor, as_actor
from tenantkit._addresses import (
    PUBLIC_EMAIL_DOMAINS,
    WILDCARD_PREFIX,
    domain_allowed,
    email_domain,
    normalize_domains,
    normalize_email,
    normalize_public_domains,
)
from tenantkit._clock import Clock, system_clock
from tenantkit._db import begin_write, fetch_page, rowcount, typed_concurrency_errors
from tenantkit._errors import (
    AcceptanceDeniedError,
    AlreadyMemberError,
    ConcurrentUpdateError,
    ConfigurationError,
    DomainNotAllowedError,
    EmailMismatchError,
    InvalidInputError,
    InvalidInvitationTokenError,
    InvitationExhaustedError,
    InvitationExpiredError,
    InvitationNotFoundError,
    InvitationNotPendingError,
    InviterNoLongerAllowedError,
    PolicyLimitError,
    UnknownRoleError,
    UnverifiedEmailError,
)
from tenantkit._events import (
    EventDispatcher,
    InvitationAccepted,
    InvitationCreated,
    InvitationMarkedSent,
    InvitationResent,
    InvitationRevoked,
)
from tenantkit._missing_schema import translate_missing_schema
from tenantkit._pagination import DEFAULT_PAGE_SIZE, Keyset, Page
from tenantkit._tables import invitation_acceptances, invitations, new_id
from tenantkit._validation import check_identifier
from tenantkit._writes import confirm_written
from tenantkit.invitations._requirements import (
    MAX_CLAIMS_BYTES,
    AcceptContext,
    AcceptPolicy,
    Approval,
    Denial,
    check_json_object,
    check_requirements,
)
from tenantkit.invitations._tokens import TokenCodec, TokenContents, digest_matches
from tenantkit.members._attributes import MemberAttributes, make_attributes
from tenantkit.members._service import MembershipService
from tenantkit.organizations._document import OrganizationPolicy, PolicySource
from tenantkit.roles._policy import Action, CustomRole, Role

if TYPE_CHECKING:
    from tenantkit.domains._service import DomainService

MAX_USES_LIMIT = 1_000_000
"""The largest ``max_uses`` a link invitation may have."""


class InvitationStatus(str, enum.Enum):
    """Where an invitation stands. ``EXPIRED`` is derived from the clock; the others are stored."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    EXHAUSTED = "exhausted"
    REVOKED = "revoked"
    REPLACED = "replaced"
    EXPIRED = "expired"

    def __str__(self) -> str:
        return self.value


class Invitation(BaseModel):
    """An invitation as the organization's managers see it. It never holds a token or its digest.

    ``kind`` is ``"email"`` (``email`` is the invited address, in canonical form) or ``"link"``
    (``allowed_domains`` lists who may accept; ``max_uses`` is ``None`` for a link limited only by expiry).
    ``invited_by`` is ``None`` when the host application invited. ``requirements`` is what the accept policy
    checks on acceptance (``None``: nothing).
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    id: str
    organization_id: str
    kind: Literal["email", "link"]
    email: str | None
    allowed_domains: tuple[str, ...]
    role: Role
    requirements: dict[str, Any] | None = None
    status: InvitationStatus
    custom_role: str | None = None
    invited_by: str | None
    sent_via_email: bool
    max_uses: int | None
    use_count: int
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None
    accepted_by: str | None
    revoked_at: datetime | None


class CreatedInvitation(BaseModel):
    """A new (or resent) invitation with its token: the only time the token exists outside its holder.

    ``token`` and ``accept_url`` are :class:`~pydantic.SecretStr`: ``repr`` and logs show ``**********``;
    call ``.get_secret_value()`` to deliver them.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    invitation: Invitation
    token: SecretStr
    accept_url: SecretStr | None


class InvitationPreview(BaseModel):
    """What a "you have been invited" page shows, read by token without consuming the invitation."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    invitation_id: str
    organization_id: str
    kind: Literal["email", "link"]
    role: Role
    invited_by: str | None
    expires_at: datetime
    email: str | None
    allowed_domains: tuple[str, ...]
    uses_left: int | None
    requirements: dict[str, Any] | None = None
    custom_role: str | None = None


class AcceptedInvitation(BaseModel):
    """The outcome of an acceptance.

    ``already_member`` is ``True`` when the user was a member before: nothing changed, ``role`` is the role
    they keep, and the invitation was not consumed.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    invitation_id: str
    organization_id: str
    user_id: str
    role: Role
    already_member: bool
    invitation_role: Role = Field(description="The role the invitation offered.")
    invitation_custom_role: str | None = Field(None, description="The custom role the invitation offered.")


_BY_ID = sa.select(invitations).where(
    invitations.c.organization_id == sa.bindparam("b_organization_id"),
    invitations.c.id == sa.bindparam("b_invitation_id"),
)
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_RETIRE_OPEN_FOR_EMAIL = (
    invitations.update()
    .where(
        invitations.c.organization_id == sa.bindparam("b_organization_id"),
        invitations.c.email == sa.bindparam("address"),
    )
    .values(status=InvitationStatus.REPLACED.value, email=None, updated_at=sa.bindparam("now"))
)
_CONSUME = (
    invitations.update()
    .where(
        invitations.c.organization_id == sa.bindparam("b_organization_id"),
        invitations.c.id == sa.bindparam("b_invitation_id"),
        invitations.c.status == InvitationStatus.PENDING.value,
        sa.or_(invitations.c.max_uses.is_(None), invitations.c.use_count < invitations.c.max_uses),
    )
    .values(
        use_count=invitations.c.use_count + 1,
        status=sa.bindparam("new_status"),
        email=sa.bindparam("new_email"),
        accepted_at=sa.bindparam("now"),
        accepted_by=sa.bindparam("user_id"),
        updated_at=sa.bindparam("now"),
    )
)
_ACCEPTED_BEFORE = sa.select(invitation_acceptances.c.id).where(
    invitation_acceptances.c.organization_id == sa.bindparam("b_organization_id"),
    invitation_acceptances.c.invitation_id == sa.bindparam("b_invitation_id"),
    invitation_acceptances.c.user_id == sa.bindparam("user_id"),
)
_RECORD_ACCEPTANCE = invitation_acceptances.insert()
_UPDATE_BY_ID = invitations.update().where(
    invitations.c.organization_id == sa.bindparam("b_organization_id"),
    invitations.c.id == sa.bindparam("b_invitation_id"),
)
# Open invitations are listed oldest first; the id breaks ties.
_PENDING_ORDER = Keyset("invitations", invitations.c.created_at, invitations.c.id)


class _AlreadyMember(Exception):
    # Raised inside the acceptance savepoint to roll it back when the user turned out to be a member.
    def __init__(self, role: Role) -> None:
        super().__init__(role.value)
        self.role = role


def _check_ttl(value: object, field: str) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise ConfigurationError(f"{field} must be a positive timedelta")
    return value


@translate_missing_schema()
class InvitationService:
    """Create, deliver (through the host), preview, accept and manage invitations.

    Every method takes the caller's ``Session`` first and works inside its transaction: it flushes and
    executes, never commits. Events reach listeners after that transaction commits.

    Args:
        membership: The membership service that checks permissions and adds members.
        secret_keys: Keys that sign tokens, oldest first; the newest signs, all verify (rotation).
        clock: Where the current time comes from.
        events: The event dispatcher (the membership service's when omitted, so one subscription hears
            both ``MemberAdded`` and the invitation events).
        default_ttl: How long an invitation is valid when no ``expires_in`` is given (7 days).
        max_ttl: The longest validity allowed (30 days); also the age beyond which a token is refused
            without a database query.
        accept_url_template: The host's accept page, with ``{token}`` where the token goes, for example
            ``"https://app.example.com/invite?token={token}"``. Events and results then carry the URL.
        public_email_domains: Public mailbox providers refused as allowed domains of links
            (:data:`~tenantkit.PUBLIC_EMAIL_DOMAINS` by default).
        allow_public_domains: Accept public providers as allowed domains anyway.
        policies: Each organization's settings policy (``kit.organizations``): its default role, invitation
            lifetimes and link domains, within this service's ``default_ttl`` and ``max_ttl``. Without it,
            every organization gets this service's own defaults.
        accept_policy: The host's :class:`~tenantkit.invitations.AcceptPolicy`: it validates the
            requirements of new invitations and decides acceptances of invitations that carry some.
            Without one, an invitation cannot carry requirements.
        domains: The organizations' verified domains (``kit.domains``), for organizations whose
            ``link_invitations_verified_domains_only`` setting holds links to them. Without it, such an
            organization's links are refused.

    Raises:
        ConfigurationError: No signing key, a key shorter than 16 characters, a TTL that is not positive, a
            default TTL above the maximum, or an accept URL template without ``{token}``.
    """

    def __init__(
        self,
        *,
        membership: MembershipService,
        secret_keys: Sequence[str | bytes],
        clock: Clock = system_clock,
        events: EventDispatcher | None = None,
        default_ttl: timedelta = timedelta(days=7),
        max_ttl: timedelta = timedelta(days=30),
        accept_url_template: str | None = None,
        public_email_domains: Iterable[str] = PUBLIC_EMAIL_DOMAINS,
        allow_public_domains: bool = False,
        policies: PolicySource | None = None,
        accept_policy: AcceptPolicy | None = None,
        domains: DomainService | None = None,
    ) -> None:
        self.membership = membership
        self.domains: DomainService | None = domains
        if accept_policy is not None and not isinstance(accept_policy, AcceptPolicy):
            raise ConfigurationError("accept_policy must have validate() and decide() (see AcceptPolicy)")
        self.accept_policy: AcceptPolicy | None = accept_policy
        self.clock = clock
        self.events: EventDispatcher = events or membership.events
        self.default_ttl: timedelta = _check_ttl(default_ttl, "default_ttl")
        self.max_ttl: timedelta = _check_ttl(max_ttl, "max_ttl")
        if self.default_ttl > self.max_ttl:
            raise ConfigurationError("default_ttl must not exceed max_ttl")
        if accept_url_template is not None and "{token}" not in accept_url_template:
            raise ConfigurationError("accept_url_template must contain {token}")
        self.accept_url_template = accept_url_template
        try:
            self.public_email_domains: frozenset[str] = normalize_public_domains(public_email_domains)
        except InvalidInputError as error:
            raise ConfigurationError(f"public_email_domains: {error.reason}") from None
        self.allow_public_domains = allow_public_domains
        self._tokens = TokenCodec(secret_keys, max_age=self.max_ttl, clock=clock)
        self.policies = policies
        self._own_policy = OrganizationPolicy(
            invitation_default_ttl=self.default_ttl, invitation_max_ttl=self.max_ttl
        )

    def _policy(self, session: Session, organization_id: str) -> OrganizationPolicy:
        """The organization's policy: its settings within this deployment's ceilings."""
        if self.policies is None:
            return self._own_policy
        return self.policies.policy(session, organization_id)

    # -- creating --------------------------------------------------------------------------------------

    def create_email_invitation(
        self,
        session: Session,
        organization_id: str,
        email: str,
        role: Role | str | None = None,
        *,
        actor: Actor | str,
        expires_in: timedelta | None = None,
        requirements: Mapping[str, Any] | None = None,
    ) -> CreatedInvitation:
        """Invite one person by email address.

        An open invitation to the same address in this organization is replaced: its token stops working.
        Expired, accepted or revoked invitations do not stand in the way.

        Args:
            session: The caller's session.
            organization_id: The organization to invite into.
            email: The invitee's address; validated and stored in canonical form.
            role: The role offered (the organization's default role when omitted, MEMBER unless its
                settings say otherwise); at most the inviter's own.
            actor: Who invites: a user id, an :class:`Actor`, or :data:`~tenantkit.HOST`.
            expires_in: Validity (the organization's default when omitted; at most its maximum).
            requirements: What the invitee must meet, checked by the accept policy on acceptance.

        Returns:
            The invitation with its token (shown once) and accept URL.

        Raises:
            PolicyLimitError: ``expires_in`` is longer than the organization's maximum.
            InvalidInputError: A malformed id, address, role, validity or requirements.
            ConfigurationError: Requirements without an accept policy.
            PermissionDeniedError: The actor may not invite members.
            RoleEscalationError: The role is above the actor's own.
            ConcurrentUpdateError: Another invitation to the same address was created at the same moment
                and the database rolled this transaction back (MySQL/MariaDB deadlock); retry it.
        """
        check_identifier(organization_id, "organization_id")
        address = normalize_email(email)
        acting = as_actor(actor)
        required = check_requirements(self.accept_policy, requirements)
        with typed_concurrency_errors(organization_id):
            policy = self._policy(session, organization_id)
            wanted, custom = self._offered(session, organization_id, acting, role, policy)
            lifetime = policy.invitation_lifetime(expires_in)
            return self._insert(
                session,
                organization_id,
                acting,
                wanted,
                lifetime,
                address=address,
                custom=custom,
                requirements=required,
            )

    def create_link_invitation(
        self,
        session: Session,
        organization_id: str,
        allowed_domains: Iterable[str],
        role: Role | str | None = None,
        *,
        actor: Actor | str,
        max_uses: int | None = None,
        expires_in: timedelta | None = None,
        requirements: Mapping[str, Any] | None = None,
    ) -> CreatedInvitation:
        """Create a shareable link that people with a verified address at an allowed domain may accept.

        Args:
            session: The caller's session.
            organization_id: The organization to invite into.
            allowed_domains: Domains like ``example.com`` (exactly that domain) or ``*.example.com`` (its
                subdomains); normalized to lower-case IDNA A-labels without duplicates.
            role: The role offered (the organization's default role when omitted); at most the inviter's
                own.
            actor: Who invites: a user id, an :class:`Actor`, or :data:`~tenantkit.HOST`.
            max_uses: How many people may accept (``None``: any number until expiry).
            expires_in: Validity (the organization's default when omitted; at most its maximum).
            requirements: What each invitee must meet, checked by the accept policy on acceptance.

        Returns:
            The invitation with its token (shown once) and accept URL.

        Raises:
            InvalidInputError: A malformed id, domain, role, use limit or validity.
            PolicyLimitError: A domain outside the organization's link domains (or, where its settings
                hold links to verified domains, not a verified domain of it), or ``expires_in`` longer
                than its maximum.
            ConfigurationError: Requirements without an accept policy.
            PublicEmailDomainError: A public mailbox provider is among the domains.
            PermissionDeniedError: The actor may not invite members.
            RoleEscalationError: The role is above the actor's own.
        """
        check_identifier(organization_id, "organization_id")
        domains = normalize_domains(
            allowed_domains,
            public_domains=self.public_email_domains,
            allow_public=self.allow_public_domains,
        )
        if max_uses is not None and (
            isinstance(max_uses, bool) or not isinstance(max_uses, int) or not 1 <= max_uses <= MAX_USES_LIMIT
        ):
            raise InvalidInputError("max_uses", f"must be a whole number from 1 to {MAX_USES_LIMIT}, or None")
        acting = as_actor(actor)
        required = check_requirements(self.accept_policy, requirements)
        with typed_concurrency_errors(organization_id):
            policy = self._policy(session, organization_id)
            wanted, custom = self._offered(session, organization_id, acting, role, policy)
            lifetime = policy.invitation_lifetime(expires_in)
            policy.check_link_domains(domains)
            if policy.link_verified_domains_only:
                self._check_verified_domains(session, organization_id, domains)
            return self._insert(
                session,
                organization_id,
                acting,
                wanted,
                lifetime,
                domains=domains,
                max_uses=max_uses,
                custom=custom,
                requirements=required,
            )

    def _covered_by_verified(self, session: Session, organization_id: str, pattern: str) -> bool:
        """Whether every address ``pattern`` lets in is in a verified domain of the organization."""
        if self.domains is None:
            return False
        if pattern.startswith(WILDCARD_PREFIX):
            base = pattern[len(WILDCARD_PREFIX) :]
            return self.domains.cover_subdomains and self.domains.verified_in(session, organization_id, base)
        return self.domains.verified_in(session, organization_id, pattern)

    def _check_verified_domains(self, session: Session, organization_id: str, domains: Iterable[str]) -> None:
        outside = [
            domain for domain in domains if not self._covered_by_verified(session, organization_id, domain)
        ]
        if outside:
            raise PolicyLimitError(
                "allowed_domains",
                "link_invitations_verified_domains_only",
                "the organization's verified domains",
                f"{', '.join(outside)} not verified domains of the organization (its settings hold link "
                "invitations to them)",
            )

    def _offered(
        self,
        session: Session,
        organization_id: str,
        acting: Actor,
        role: Role | str | None,
        policy: OrganizationPolicy,
    ) -> tuple[Role, CustomRole | None]:
        """The rank and custom role an invitation offers, once the escalation rule allowed the inviter to.

        A custom role's row stays share-locked until the transaction ends, so it cannot be deleted under the
        invitation being written (see :mod:`tenantkit.roles._store`).
        """
        membership = self.membership
        if not isinstance(role, Role):
            begin_write(session, invitations, membership.execution_options)
        if role is None:
            wanted, custom = membership.resolve_default_role(session, organization_id, policy)
        else:
            wanted, custom = membership.resolve_role(session, organization_id, role, lock="share")
        held = membership.grant_authority(session, organization_id, acting, Action.INVITE_MEMBERS)
        membership.permissions.require_may_grant(held, membership.permissions.effective(wanted, custom))
        return wanted, custom

    def _insert(
        self,
        session: Session,
        organization_id: str,
        acting: Actor,
        role: Role,
        lifetime: timedelta,
        *,
        address: str | None = None,
        domains: tuple[str, ...] | None = None,
        max_uses: int | None = None,
        requirements: dict[str, Any] | None = None,
        custom: CustomRole | None = None,
    ) -> CreatedInvitation:
        now = self.clock()
        invitation_id = new_id()
        token, token_digest = self._tokens.issue(organization_id, invitation_id)
        values: dict[str, Any] = {
            "id": invitation_id,
            "organization_id": organization_id,
            "email": address,
            "invited_email": address,
            "role": role,
            "token": token_digest,
            "expires": now + lifetime,
            "invited_by": acting.user_id,
            "sent_via_email": False,
            "allowed_domains": list(domains) if domains is not None else None,
            "status": InvitationStatus.PENDING.value,
            "max_uses": 1 if address is not None else max_uses,
            "use_count": 0,
            "requirements": requirements,
            "created_at": now,
            "updated_at": now,
            "custom_role": custom.key if custom is not None else None,
        }
        with typed_concurrency_errors(organization_id):
            # On SQLite, open the caller's transaction (and take the write lock) before the savepoint below.
            begin_write(session, invitations, self.membership.execution_options)
            self._retire_and_insert(session, organization_id, address, values, now)
        row = session.execute(
            _BY_ID,
            {"b_organization_id": organization_id, "b_invitation_id": invitation_id},
            execution_options=self.membership.execution_options,
        ).one()
        invitation = _invitation(row, now)
        accept_url = self._accept_url(token)
        self.events.record(
            session,
            InvitationCreated(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                invitation_id=invitation_id,
                email=address,
                allowed_domains=domains or (),
                role=role,
                expires_at=invitation.expires_at,
                accept_url=accept_url,
                custom_role=invitation.custom_role,
            ),
        )
        return CreatedInvitation(invitation=invitation, token=SecretStr(token), accept_url=accept_url)

    def _retire_and_insert(
        self,
        session: Session,
        organization_id: str,
        address: str | None,
        values: dict[str, Any],
        now: datetime,
    ) -> None:
        for attempt in (1, 2):
            try:
                with session.begin_nested():
                    if address is not None:
                        # The open invitation to this address (there is at most one: the unique index on
                        # (organization_id, email) holds only open ones) gives way to the new one.
                        session.execute(
                            _RETIRE_OPEN_FOR_EMAIL,
                            {"b_organization_id": organization_id, "address": address, "now": now},
                            execution_options=self.membership.execution_options,
                        )
                    session.execute(
                        invitations.insert(), values, execution_options=self.membership.execution_options
                    )
                return
            except sa.exc.IntegrityError:
                # A concurrent invitation to the same address committed between our UPDATE and INSERT;
                # the second attempt replaces it in turn.
                if attempt == 2:
                    raise ConcurrentUpdateError(
                        organization_id, "another invitation to this address was created at the same time"
                    ) from None

    def _accept_url(self, token: str) -> SecretStr | None:
        if self.accept_url_template is None:
            return None
        return SecretStr(self.accept_url_template.replace("{token}", token))

    # -- reading by token ------------------------------------------------------------------------------

    def preview(self, session: Session, token: str) -> InvitationPreview:
        """Describe the invitation behind ``token`` without consuming it.

        Args:
            session: The caller's session.
            token: The token from the accept URL.

        Returns:
            Organization, role, inviter, expiry, and the invited address or allowed domains.

        Raises:
            InvalidInvitationTokenError: The token is forged, tampered with, stale or replaced (refused
                before any database query when the signature does not verify).
            InvitationExpiredError: The invitation expired.
            InvitationNotPendingError: It was accepted, revoked or replaced.
            InvitationExhaustedError: A link used its maximum number of times.
        """
        contents = self._tokens.read(token)
        row = session.execute(
            _BY_ID, _ids(contents), execution_options=self.membership.execution_options
        ).first()
        row = self._verified(row, contents)
        self._check_open(row, self.clock())
        invitation = _invitation(row, self.clock())
        return InvitationPreview(
            invitation_id=invitation.id,
            organization_id=invitation.organization_id,
            kind=invitation.kind,
            role=invitation.role,
            invited_by=invitation.invited_by,
            expires_at=invitation.expires_at,
            email=invitation.email,
            allowed_domains=invitation.allowed_domains,
            uses_left=None if invitation.max_uses is None else invitation.max_uses - invitation.use_count,
            requirements=invitation.requirements,
            custom_role=invitation.custom_role,
        )

    @staticmethod
    def _verified(row: Any, contents: TokenContents) -> Any:
        if row is None or not digest_matches(row.token, contents.secret):
            raise InvalidInvitationTokenError(
                "the invitation token is no longer valid; a newer one may have replaced it"
            )
        return row

    @staticmethod
    def _check_open(row: Any, now: datetime) -> None:
        status = InvitationStatus(row.status)
        if status is InvitationStatus.EXHAUSTED:
            raise InvitationExhaustedError(row.max_uses)
        if status is not InvitationStatus.PENDING:
            raise InvitationNotPendingError(status.value)
        if row.expires <= now:
            raise InvitationExpiredError(row.expires)
        if row.max_uses is not None and row.use_count >= row.max_uses:
            raise InvitationExhaustedError(row.max_uses)

    # -- accepting -------------------------------------------------------------------------------------

    def accept(
        self,
        session: Session,
        token: str,
        *,
        user_id: str,
        email: str,
        email_verified: bool,
        claims: Mapping[str, Any] | None = None,
    ) -> AcceptedInvitation:
        """Accept an invitation: the user becomes a member and the invitation is consumed, together.

        Args:
            session: The caller's session.
            token: The token from the accept URL.
            user_id: The accepting user's id at the identity provider.
            email: The user's email address as the identity provider knows it.
            email_verified: Whether the identity provider verified that address. Must be ``True``.
            claims: What the host presents for the user to an invitation's requirements (a JSON object):
                the accept policy decides on them, and what it verified is stored on the membership.

        Returns:
            Who is now a member with which role; ``already_member`` when nothing changed.

        Raises:
            InvalidInputError: A malformed user id or address.
            UnverifiedEmailError: The address is not verified.
            InvalidInvitationTokenError: The token is forged, tampered with, stale or replaced.
            InvitationExpiredError: The invitation expired.
            InvitationNotPendingError: It was accepted, revoked or replaced, or this user already came in
                through this link once.
            InvitationExhaustedError: A link used its maximum number of times.
            EmailMismatchError: An email invitation was sent to a different address.
            DomainNotAllowedError: The address's domain is not allowed by the link.
            InviterNoLongerAllowedError: The inviter left, or may no longer grant the role.
            AcceptanceDeniedError: The accept policy refused: the requirements are not met. Nothing changed.
            ConfigurationError: The invitation has requirements and no accept policy is configured.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(user_id, "user_id")
        address = normalize_email(email)
        if email_verified is not True:
            raise UnverifiedEmailError()
        presented = {} if claims is None else check_json_object(claims, "claims", MAX_CLAIMS_BYTES)
        contents = self._tokens.read(token)
        ids = _ids(contents)
        # SQLite has no row lock: its write lock serializes concurrent acceptances there, and makes the
        # savepoint below part of the caller's transaction.
        begin_write(session, invitations, self.membership.execution_options)
        # The row lock makes concurrent acceptances of one invitation take turns, each seeing the count
        # the previous one committed. (It is the first read of the transaction on purpose: on MySQL/MariaDB
        # a plain read before it would fix the snapshot the later reads see, before the previous acceptance
        # committed.)
        row = self._verified(
            session.execute(
                _BY_ID_FOR_UPDATE, ids, execution_options=self.membership.execution_options
            ).first(),
            contents,
        )
        now = self.clock()
        self._check_open(row, now)
        organization_id = row.organization_id
        role = Role(row.role)
        # The offered custom role's row is share-locked until this transaction ends, so the role cannot be
        # deleted between this check and the membership written below (a deletion racing this acceptance
        # waits for it, or, holding the role first, is chosen by the database as a deadlock victim or
        # makes this acceptance one: a ConcurrentUpdateError to retry, never a dangling role).
        with typed_concurrency_errors(organization_id):
            custom = self._offered_role(session, organization_id, row.custom_role)
        if row.invited_email is not None:
            if address != row.invited_email:
                raise EmailMismatchError()
        elif not domain_allowed(email_domain(address), row.allowed_domains or ()):
            raise DomainNotAllowedError(email_domain(address))
        elif self._policy(session, organization_id).link_verified_domains_only and (
            self.domains is None
            or not self.domains.verified_in(session, organization_id, email_domain(address))
        ):
            # The domain lost its verification since the link was created: the link no longer lets it in.
            raise DomainNotAllowedError(email_domain(address))
        self._check_inviter(session, organization_id, row.invited_by, role, custom)
        result = {
            "invitation_id": row.id,
            "organization_id": organization_id,
            "user_id": user_id,
            "invitation_role": role,
            "invitation_custom_role": row.custom_role,
        }
        existing = self.membership.get_role(session, organization_id, user_id)
        if existing is not None:
            return AcceptedInvitation(role=existing, already_member=True, **result)
        params = {**ids, "user_id": user_id}
        if (
            session.execute(
                _ACCEPTED_BEFORE, params, execution_options=self.membership.execution_options
            ).first()
            is not None
        ):
            raise InvitationNotPendingError("already used by this user, who has since left")
        # The policy decides under the row lock, before anything is written: a denial changes nothing.
        attributes = self._decide(row, role, user_id, address, presented, now)
        try:
            with session.begin_nested():
                self._consume(session, row, user_id, now)
                session.execute(
                    _RECORD_ACCEPTANCE,
                    {
                        "id": new_id(),
                        "invitation_id": row.id,
                        "organization_id": organization_id,
                        "user_id": user_id,
                        "created_at": now,
                    },
                    execution_options=self.membership.execution_options,
                )
                try:
                    # The joining user acts (the invitation is its authority), so events name them.
                    self.membership._admit(
                        session,
                        organization_id,
                        user_id,
                        role,
                        Actor.user(user_id),
                        attributes,
                        row.custom_role,
                    )
                except AlreadyMemberError as error:
                    raise _AlreadyMember(Role(error.role)) from None
                self.events.record(
                    session,
                    InvitationAccepted(
                        organization_id=organization_id,
                        actor=Actor.user(user_id),
                        occurred_at=now,
                        invitation_id=row.id,
                        user_id=user_id,
                        role=role,
                    ),
                )
        except _AlreadyMember as already:
            # A concurrent acceptance (of another invitation) made the user a member first: the savepoint
            # rolled back, so this invitation stays unconsumed and the role they got stays.
            return AcceptedInvitation(role=already.role, already_member=True, **result)
        return AcceptedInvitation(role=role, already_member=False, **result)

    def _decide(
        self, row: Any, role: Role, user_id: str, address: str, claims: dict[str, Any], now: datetime
    ) -> MemberAttributes | None:
        """Ask the accept policy about an invitation with requirements: what it verified, or the denial."""
        if not row.requirements:
            return None
        if self.accept_policy is None:
            raise ConfigurationError(
                "this invitation has requirements, and no accept policy is configured to check them"
            )
        decision = self.accept_policy.decide(
            AcceptContext(
                organization_id=row.organization_id,
                invitation_id=row.id,
                role=role,
                requirements=dict(row.requirements),
                user_id=user_id,
                email=address,
                claims=claims,
                now=now,
            )
        )
        if isinstance(decision, Denial):
            raise AcceptanceDeniedError(decision.reason, decision.requirement)
        if not isinstance(decision, Approval):
            raise ConfigurationError(
                f"the accept policy must return an Approval or a Denial, not {type(decision).__name__}"
            )
        return make_attributes(
            decision.attributes,
            verified_by=decision.verified_by,
            verified_at=now,
            expires_at=decision.expires_at,
        )

    def _consume(self, session: Session, row: Any, user_id: str, now: datetime) -> None:
        is_email = row.invited_email is not None
        last_use = row.max_uses is not None and row.use_count + 1 >= row.max_uses
        if is_email:
            new_status = InvitationStatus.ACCEPTED
        elif last_use:
            new_status = InvitationStatus.EXHAUSTED
        else:
            new_status = InvitationStatus.PENDING
        consumed = session.execute(
            _CONSUME,
            {
                "b_organization_id": row.organization_id,
                "b_invitation_id": row.id,
                "new_status": new_status.value,
                "new_email": None,
                "now": now,
                "user_id": user_id,
            },
            execution_options=self.membership.execution_options,
        )
        if rowcount(consumed) != 1:
            # Unreachable while the row lock holds; kept so a missing lock can never double-spend.
            raise InvitationExhaustedError(row.max_uses or 1)
        # A use that is not counted would let a link admit people beyond its max_uses.
        confirm_written(
            session,
            invitations,
            {"organization_id": row.organization_id, "id": row.id},
            {"use_count": row.use_count + 1, "status": new_status.value},
            execution_options=self.membership.execution_options,
        )

    def _offered_role(self, session: Session, organization_id: str, key: str | None) -> CustomRole | None:
        if key is None:
            return None
        custom = self.membership.custom_role_of(session, organization_id, key, lock="share")
        if custom is None:
            raise UnknownRoleError(key, organization_id)
        return custom

    def _check_inviter(
        self,
        session: Session,
        organization_id: str,
        inviter: str | None,
        role: Role,
        custom: CustomRole | None = None,
    ) -> None:
        # The policy that let the inviter create the invitation decides again (the escalation rule on what
        # the role holds *now*); only the error differs, because the one refused is the accepting user.
        if inviter is None:
            return
        policy = self.membership.permissions
        granted = policy.effective(role, custom)
        held = self.membership._read_effective(session, organization_id, inviter)
        if held is None:
            reason = "the inviter is no longer a member"
        elif not held.allows(Action.INVITE_MEMBERS):
            reason = f"the inviter's role {held.label} may no longer invite members"
        elif not policy.can_grant(held.rank, role):
            reason = f"the inviter's role {held.label} may no longer grant {role.value}"
        elif not granted.permissions <= held.permissions:
            missing = ", ".join(sorted(granted.permissions - held.permissions))
            reason = (
                f"the inviter's role {held.label} no longer holds {missing}, which {granted.label} grants"
            )
        else:
            return
        raise InviterNoLongerAllowedError(inviter, granted.label, reason)

    # -- managing --------------------------------------------------------------------------------------

    def get(
        self, session: Session, organization_id: str, invitation_id: str, *, actor: Actor | str
    ) -> Invitation:
        """One invitation of the organization.

        Raises:
            InvalidInputError: A malformed id.
            PermissionDeniedError: The actor may not read invitations.
            InvitationNotFoundError: No such invitation in this organization.
        """
        check_identifier(invitation_id, "invitation_id")
        self.membership.authorize(session, organization_id, actor, Action.READ_INVITATIONS)
        return _invitation(self._row(session, organization_id, invitation_id), self.clock())

    def list_pending(
        self,
        session: Session,
        organization_id: str,
        *,
        actor: Actor | str,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
    ) -> Page[Invitation]:
        """The organization's open invitations (pending and not expired), oldest first.

        Args:
            session: The caller's session.
            organization_id: The organization.
            actor: Who asks; needs ``invitations:read``.
            limit: Page size (1 to 500).
            cursor: ``next_cursor`` of the previous page.

        Returns:
            A page of invitations; none holds a token or a digest.

        Raises:
            InvalidInputError: A malformed id, limit or cursor.
            PermissionDeniedError: The actor may not read invitations.
        """
        check_identifier(organization_id, "organization_id")
        seek = _PENDING_ORDER.seek(limit=limit, cursor=cursor)
        self.membership.authorize(session, organization_id, actor, Action.READ_INVITATIONS)
        now = self.clock()
        query = sa.select(invitations).where(
            invitations.c.organization_id == organization_id,
            invitations.c.status == InvitationStatus.PENDING.value,
            invitations.c.expires > now,
        )
        return fetch_page(
            session,
            query,
            seek,
            lambda row: _invitation(row, now),
            execution_options=self.membership.execution_options,
        )

    def revoke(
        self, session: Session, organization_id: str, invitation_id: str, *, actor: Actor | str
    ) -> Invitation:
        """Revoke an open invitation: its token stops working and its address is free for a new one.

        Raises:
            InvalidInputError: A malformed id.
            PermissionDeniedError: The actor may not manage invitations.
            InvitationNotFoundError: No such invitation in this organization.
            InvitationNotPendingError: It was already accepted, revoked or replaced.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(invitation_id, "invitation_id")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_INVITATIONS)
        row = self._row(session, organization_id, invitation_id, lock=True)
        if row.status != InvitationStatus.PENDING.value:
            raise InvitationNotPendingError(row.status)
        now = self.clock()
        session.execute(
            _UPDATE_BY_ID.values(
                status=InvitationStatus.REVOKED.value, email=None, revoked_at=now, updated_at=now
            ),
            {"b_organization_id": organization_id, "b_invitation_id": invitation_id},
            execution_options=self.membership.execution_options,
        )
        revoked = confirm_written(
            session,
            invitations,
            {"organization_id": organization_id, "id": invitation_id},
            {"status": InvitationStatus.REVOKED.value, "revoked_at": now},
            execution_options=self.membership.execution_options,
        )
        self.events.record(
            session,
            InvitationRevoked(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                invitation_id=invitation_id,
            ),
        )
        return _invitation(revoked, now)

    def resend(
        self,
        session: Session,
        organization_id: str,
        invitation_id: str,
        *,
        actor: Actor | str,
        expires_in: timedelta | None = None,
    ) -> CreatedInvitation:
        """Give an open (possibly expired) invitation a new token and a new expiry; the old token dies.

        Args:
            session: The caller's session.
            organization_id: The organization.
            invitation_id: The invitation.
            actor: Who resends; needs ``invitations:manage`` and must be allowed to grant its role.
            expires_in: New validity from now (the organization's default when omitted; at most its
                maximum).

        Returns:
            The invitation with its new token and accept URL.

        Raises:
            InvalidInputError: A malformed id or validity.
            PermissionDeniedError: The actor may not manage invitations.
            RoleEscalationError: The invitation's role is above the actor's own.
            InvitationNotFoundError: No such invitation in this organization.
            InvitationNotPendingError: It was already accepted, revoked, replaced or used up.
            WriteNotAppliedError: The database did not keep the change (a trigger, rule or policy); roll back.
        """
        check_identifier(invitation_id, "invitation_id")
        acting = as_actor(actor)
        held = self.membership.grant_authority(session, organization_id, acting, Action.MANAGE_INVITATIONS)
        lifetime = self._policy(session, organization_id).invitation_lifetime(expires_in)
        row = self._row(session, organization_id, invitation_id, lock=True)
        if row.status != InvitationStatus.PENDING.value:
            raise InvitationNotPendingError(row.status)
        role = Role(row.role)
        custom = self.membership.custom_role_of(session, organization_id, row.custom_role)
        policy = self.membership.permissions
        policy.require_may_grant(held, policy.effective(role, custom))
        now = self.clock()
        token, token_digest = self._tokens.issue(organization_id, invitation_id)
        session.execute(
            _UPDATE_BY_ID.values(
                token=token_digest, expires=now + lifetime, sent_via_email=False, updated_at=now
            ),
            {"b_organization_id": organization_id, "b_invitation_id": invitation_id},
            execution_options=self.membership.execution_options,
        )
        # The old token dies only if its digest is really gone from the row.
        resent = confirm_written(
            session,
            invitations,
            {"organization_id": organization_id, "id": invitation_id},
            {"token": token_digest},
            execution_options=self.membership.execution_options,
        )
        invitation = _invitation(resent, now)
        accept_url = self._accept_url(token)
        self.events.record(
            session,
            InvitationResent(
                organization_id=organization_id,
                actor=acting,
                occurred_at=now,
                invitation_id=invitation_id,
                email=invitation.email,
                allowed_domains=invitation.allowed_domains,
                role=role,
                expires_at=invitation.expires_at,
                accept_url=accept_url,
                custom_role=invitation.custom_role,
            ),
        )
        return CreatedInvitation(invitation=invitation, token=SecretStr(token), accept_url=accept_url)

    def mark_sent(
        self,
        session: Session,
        organization_id: str,
        invitation_id: str,
        *,
        actor: Actor | str,
        sent: bool = True,
    ) -> Invitation:
        """Record whether the host emailed the invitation (``sent_via_email``); tenantkit sends no mail.

        Raises:
            InvalidInputError: A malformed id, or ``sent`` not a bool.
            PermissionDeniedError: The actor may not manage invitations.
            InvitationNotFoundError: No such invitation in this organization.
        """
        check_identifier(invitation_id, "invitation_id")
        if not isinstance(sent, bool):
            raise InvalidInputError("sent", "must be True or False")
        acting = as_actor(actor)
        self.membership.authorize(session, organization_id, acting, Action.MANAGE_INVITATIONS)
        before = self._row(session, organization_id, invitation_id)
        now = self.clock()
        session.execute(
            _UPDATE_BY_ID.values(sent_via_email=sent, updated_at=now),
            {"b_organization_id": organization_id, "b_invitation_id": invitation_id},
            execution_options=self.membership.execution_options,
        )
        if bool(before.sent_via_email) is not sent:
            self.events.record(
                session,
                InvitationMarkedSent(
                    organization_id=organization_id,
                    actor=acting,
                    occurred_at=now,
                    invitation_id=invitation_id,
                    sent=sent,
                ),
            )
        return _invitation(self._row(session, organization_id, invitation_id), now)

    def _row(self, session: Session, organization_id: str, invitation_id: str, *, lock: bool = False) -> Any:
        statement = _BY_ID_FOR_UPDATE if lock else _BY_ID
        row = session.execute(
            statement,
            {"b_organization_id": organization_id, "b_invitation_id": invitation_id},
            execution_options=self.membership.execution_options,
        ).first()
        if row is None:
            raise InvitationNotFoundError(
                f"no invitation {invitation_id!r} in organization {organization_id!r}",
                invitation_id=invitation_id,
            )
        return row


def _ids(contents: TokenContents) -> dict[str, str]:
    return {"b_organization_id": contents.organization_id, "b_invitation_id": contents.invitation_id}


def _invitation(row: Any, now: datetime) -> Invitation:
    status = InvitationStatus(row.status)
    if status is InvitationStatus.PENDING and row.expires <= now:
        status = InvitationStatus.EXPIRED
    return Invitation(
        id=row.id,
        organization_id=row.organization_id,
        kind="email" if row.invited_email is not None else "link",
        email=row.invited_email,
        allowed_domains=tuple(row.allowed_domains or ()),
        role=Role(row.role),
        status=status,
        custom_role=row.custom_role,
        invited_by=row.invited_by,
        sent_via_email=bool(row.sent_via_email),
        max_uses=row.max_uses,
        use_count=row.use_count,
        expires_at=row.expires,
        created_at=row.created_at,
        updated_at=row.updated_at,
        accepted_at=row.accepted_at,
        accepted_by=row.accepted_by,
        revoked_at=row.revoked_at,
        requirements=row.requirements or None,
    )
