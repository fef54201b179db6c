"""The settings document and the policy it tightens: what an organization chose, and what is in force.

A host declares its organization settings as a pydantic model deriving from :class:`SettingsDocument`, which
carries the settings tenantkit itself honours (every one optional: ``None`` keeps the deployment's value).
:class:`OrganizationPolicy` is what is in force for one organization: the deployment's defaults
(:class:`~tenantkit.OrganizationDefaults` and the invitation lifetimes of
:class:`~tenantkit.InvitationSettings`), each a ceiling, tightened by the organization's document. Everything
here is free of I/O: the services read the document, and ask the policy.

Tighten-only, setting by setting:

* ``default_role``: a rank at most the deployment's, or the key of a custom role whose rank is at most the
  deployment's (checked by the organization service, which can see the roles).
* ``invitation_default_ttl`` / ``invitation_max_ttl``: at most the deployment's maximum (the default also at
  most the organization's maximum).
* ``link_invitation_domains``: domains the deployment's list covers (any, when the deployment has none).
* ``api_key_max_lifetime``: at most the deployment's; ``api_keys_must_expire`` may turn on, never off.
* ``require_sso``: may turn on, never off.
* ``link_invitations_verified_domains_only``: may turn on, never off.

One setting is not a ceiling but the organization's own opt-in, off unless it turns it on: ``auto_join``.

A document that asks for more than a ceiling is refused when written (:class:`PolicyLimitError`). A ceiling
lowered after a document was stored still wins: :meth:`OrganizationPolicy.tightened_by` takes the tighter
of the two every time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from tenantkit._addresses import WILDCARD_PREFIX, domain_allowed, normalize_domains
from tenantkit._errors import InvalidInputError, PolicyLimitError
from tenantkit._settings import Duration
from tenantkit.roles._policy import Role, is_role_key

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    from tenantkit._settings import OrganizationDefaults

__all__ = ["HONOURED_SETTINGS", "OrganizationPolicy", "PolicySource", "SettingsDocument", "covers"]


_DEFAULT_RANKS = frozenset({Role.ADMIN.value, Role.MEMBER.value})


def _no_public_check(value: object) -> object:
    # Canonical form only: whether a public provider may be allowed is the invitation service's rule, applied
    # when a link is created.
    if value is None:
        return None
    return normalize_domains(value, public_domains=frozenset(), allow_public=True)  # type: ignore[arg-type]


class SettingsDocument(BaseModel):
    """Base of an organization's settings document: tenantkit's own settings, and the host's beside them.

    Subclass it with your product's settings; every field needs a default, so that an organization that
    stored nothing has a valid document::

        class ClinicSettings(SettingsDocument):
            appointment_reminders: bool = True
            timezone: str = "UTC"

        kit = TenantKit(organizations=OrganizationDefaults(document=ClinicSettings))

    Unknown keys are refused, the serialized document is capped in size
    (:attr:`~tenantkit.OrganizationDefaults.max_document_bytes`), and it is immutable: change it with
    ``kit.organizations.update_settings``. tenantkit's own fields are all ``None`` by default, meaning "the
    deployment's value"; see :class:`OrganizationPolicy` for what each may choose.

    Attributes:
        default_role: The role a new member gets when an invitation or ``members.add`` names none: a rank
            (``MEMBER`` or ``ADMIN``) or a custom role's key (``nurse``) inside a rank at most the
            deployment's.
        invitation_default_ttl: How long an invitation lasts when the inviter gives no lifetime.
        invitation_max_ttl: The longest lifetime an invitation may have.
        link_invitation_domains: The only domains a link invitation may allow.
        api_key_max_lifetime: The longest lifetime an API key may be issued with.
        api_keys_must_expire: Refuse API keys without an expiry.
        require_sso: Members must sign in through single sign-on (enforced by :mod:`tenantkit.sso` for
            actors that state how they signed in).
        link_invitations_verified_domains_only: Link invitations may allow only the organization's verified
            domains (checked when a link is created), and are accepted only by addresses in a domain that is
            still verified when they accept.
        auto_join: A user whose verified email is in a verified domain of the organization may join it with
            the default role, without an invitation (``kit.domains.auto_join``; ``kit.domains.joinable``
            lists the organizations to offer). Off unless the organization turns it on.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, ser_json_timedelta="iso8601"
    )

    default_role: str | None = Field(default=None, max_length=64)
    invitation_default_ttl: Duration | None = Field(default=None, gt=timedelta(0))
    invitation_max_ttl: Duration | None = Field(default=None, gt=timedelta(0))
    link_invitation_domains: Annotated[tuple[str, ...] | None, BeforeValidator(_no_public_check)] = None
    api_key_max_lifetime: Duration | None = Field(default=None, gt=timedelta(0))
    api_keys_must_expire: bool | None = None
    require_sso: bool | None = None
    link_invitations_verified_domains_only: bool | None = None
    auto_join: bool | None = None

    @field_validator("default_role", mode="before")
    @classmethod
    def _rank_or_role_key(cls, value: object) -> object:
        if isinstance(value, Role):
            value = value.value
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.upper() in _DEFAULT_RANKS:
            return text.upper()
        if text.upper() == Role.OWNER.value:
            raise ValueError(
                "new members never become OWNER by default; choose ADMIN, MEMBER or a custom role"
            )
        if not is_role_key(text):
            raise ValueError("must be ADMIN, MEMBER or a custom role's key (lower-case, such as 'nurse')")
        return text


HONOURED_SETTINGS: tuple[str, ...] = tuple(SettingsDocument.model_fields)
"""The keys of the settings document that tenantkit itself honours (the others are the host's)."""


def covers(allowed: Iterable[str], domain: str) -> bool:
    """Whether the canonical domain pattern ``domain`` (``a.example.com`` or ``*.example.com``) is within
    ``allowed``: every address it lets in, ``allowed`` lets in too.
    """
    patterns = tuple(allowed)
    if not domain.startswith(WILDCARD_PREFIX):
        return domain_allowed(domain, patterns)
    base = domain[len(WILDCARD_PREFIX) :]
    # "*.a.example.com" lets in any subdomain of a.example.com: only a wildcard at or above it covers them.
    return any(
        entry.startswith(WILDCARD_PREFIX)
        and (base == entry[len(WILDCARD_PREFIX) :] or base.endswith("." + entry[len(WILDCARD_PREFIX) :]))
        for entry in patterns
    )


def _words(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


@dataclass(frozen=True)
class OrganizationPolicy:
    """The honoured settings in force for one organization: the deployment's ceilings, tightened.

    Build the deployment's with :meth:`deployment`, then :meth:`tightened_by` an organization's document.
    The services ask it at the point of use (:meth:`invitation_lifetime`, :meth:`check_link_domains`,
    :meth:`check_key_expiry`).

    Attributes:
        default_role: The rank new members get when none is named (with :attr:`default_custom_role`, the
            ceiling that role's rank must stay within).
        default_custom_role: The custom role's key new members get when none is named, if the
            organization chose one (see :meth:`MembershipService.resolve_default_role
            <tenantkit.MembershipService.resolve_default_role>`).
        invitation_default_ttl: An invitation's lifetime when none is given.
        invitation_max_ttl: The longest invitation lifetime.
        link_domains: The domains link invitations may allow (``None``: any).
        api_key_max_lifetime: The longest API-key lifetime (``None``: unbounded).
        api_keys_must_expire: Whether a key must have an expiry (always, when a maximum lifetime is set).
        require_sso: Whether members must sign in through SSO.
        link_verified_domains_only: Whether link invitations are held to the organization's verified
            domains.
        auto_join: Whether users of a verified domain may join without an invitation (the organization's
            opt-in, never a deployment's default).
    """

    default_role: Role = Role.MEMBER
    default_custom_role: str | None = None
    invitation_default_ttl: timedelta = timedelta(days=7)
    invitation_max_ttl: timedelta = timedelta(days=30)
    link_domains: tuple[str, ...] | None = None
    api_key_max_lifetime: timedelta | None = None
    api_keys_must_expire: bool = False
    require_sso: bool = False
    link_verified_domains_only: bool = False
    auto_join: bool = False

    @classmethod
    def deployment(
        cls,
        defaults: OrganizationDefaults,
        *,
        invitation_default_ttl: timedelta = timedelta(days=7),
        invitation_max_ttl: timedelta = timedelta(days=30),
    ) -> OrganizationPolicy:
        """The policy of an organization that chose nothing: the deployment's defaults."""
        return cls(
            default_role=Role(defaults.default_role),
            invitation_default_ttl=invitation_default_ttl,
            invitation_max_ttl=invitation_max_ttl,
            link_domains=defaults.link_domains,
            api_key_max_lifetime=defaults.api_key_max_lifetime,
            api_keys_must_expire=defaults.api_keys_must_expire or defaults.api_key_max_lifetime is not None,
            require_sso=defaults.require_sso,
        )

    def looser_settings(self, document: SettingsDocument) -> list[PolicyLimitError]:
        """What ``document`` asks for beyond this policy's ceilings, one error per setting (none: it fits).

        A choice fits when tightening keeps it as it is: :meth:`tightened_by` clamps exactly the choices
        that go beyond a ceiling, so the two can never disagree.
        """
        tightened = self.tightened_by(document)
        refused = []
        for key, attribute in _POLICY_ATTRIBUTES.items():
            chosen = getattr(document, key)
            if chosen is None or (key == "default_role" and chosen not in _DEFAULT_RANKS):
                # A custom role's key: whether its rank fits is the service's check (it sees the roles).
                continue
            in_force = getattr(tightened, attribute)
            if isinstance(in_force, Role):
                in_force = in_force.value
            if chosen != in_force:
                ceiling = getattr(self, attribute)
                limit = ceiling.value if isinstance(ceiling, Role) else ceiling
                refused.append(
                    PolicyLimitError(
                        key,
                        key,
                        _words(limit),
                        f"{_words(chosen)} is looser than this deployment allows ({_words(in_force)})",
                    )
                )
        return refused

    def tightened_by(self, document: SettingsDocument) -> OrganizationPolicy:
        """This policy with ``document``'s choices where they are tighter; never looser than this one."""
        role, custom = self.default_role, self.default_custom_role
        chosen_role = document.default_role
        if chosen_role is not None and chosen_role not in _DEFAULT_RANKS:
            custom = chosen_role  # a custom role's key, within the ceiling's rank (``role``)
        elif chosen_role is not None and Role(chosen_role).rank <= role.rank:
            role, custom = Role(chosen_role), None
        maximum = _tighter(self.invitation_max_ttl, document.invitation_max_ttl)
        default = min(document.invitation_default_ttl or self.invitation_default_ttl, maximum)
        domains = self.link_domains
        if document.link_invitation_domains is not None:
            chosen = document.link_invitation_domains
            if domains is not None:
                chosen = tuple(domain for domain in chosen if covers(domains, domain))
            domains = chosen
        lifetime = self.api_key_max_lifetime
        if document.api_key_max_lifetime is not None:
            chosen_lifetime = document.api_key_max_lifetime
            lifetime = chosen_lifetime if lifetime is None else min(lifetime, chosen_lifetime)
        return replace(
            self,
            default_role=role,
            default_custom_role=custom,
            invitation_default_ttl=default,
            invitation_max_ttl=maximum,
            link_domains=domains,
            api_key_max_lifetime=lifetime,
            api_keys_must_expire=self.api_keys_must_expire
            or bool(document.api_keys_must_expire)
            or lifetime is not None,
            require_sso=self.require_sso or bool(document.require_sso),
            link_verified_domains_only=self.link_verified_domains_only
            or bool(document.link_invitations_verified_domains_only),
            auto_join=bool(document.auto_join),
        )

    # -- at the point of use ---------------------------------------------------------------------------

    def invitation_lifetime(self, expires_in: timedelta | None) -> timedelta:
        """The lifetime an invitation gets: ``expires_in``, or the default when ``None``.

        Raises:
            InvalidInputError: ``expires_in`` is not a positive timedelta.
            PolicyLimitError: ``expires_in`` is longer than :attr:`invitation_max_ttl`.
        """
        if expires_in is None:
            return self.invitation_default_ttl
        if not isinstance(expires_in, timedelta) or expires_in <= timedelta(0):
            raise InvalidInputError("expires_in", "must be a positive timedelta")
        if expires_in > self.invitation_max_ttl:
            raise PolicyLimitError(
                "expires_in",
                "invitation_max_ttl",
                str(self.invitation_max_ttl),
                f"must be at most {self.invitation_max_ttl} (the configured maximum)",
            )
        return expires_in

    def check_link_domains(self, domains: Iterable[str]) -> None:
        """Refuse a link invitation allowing a domain outside :attr:`link_domains`.

        Raises:
            PolicyLimitError: A domain is not covered by the organization's link domains.
        """
        if self.link_domains is None:
            return
        outside = [domain for domain in domains if not covers(self.link_domains, domain)]
        if outside:
            raise PolicyLimitError(
                "allowed_domains",
                "link_invitation_domains",
                _words(self.link_domains),
                f"{', '.join(outside)} not among the organization's link domains "
                f"({_words(self.link_domains) or 'none'})",
            )

    def check_key_expiry(self, expires_at: datetime | None, now: datetime, field: str = "expires") -> None:
        """Refuse an API key expiring later than the policy allows, or never where keys must expire.

        Raises:
            PolicyLimitError: The key would not expire, or would live longer than
                :attr:`api_key_max_lifetime`.
        """
        if expires_at is None:
            if self.api_keys_must_expire:
                limit = self.api_key_max_lifetime
                raise PolicyLimitError(
                    field,
                    "api_key_max_lifetime" if limit is not None else "api_keys_must_expire",
                    _words(limit) if limit is not None else "must expire",
                    "API keys of this organization must expire; give an expiry"
                    + (f" within {limit}" if limit is not None else ""),
                )
            return
        limit = self.api_key_max_lifetime
        if limit is not None and expires_at - now > limit:
            raise PolicyLimitError(
                field, "api_key_max_lifetime", str(limit), f"must be at most {limit} from now"
            )

    def as_dict(self) -> dict[str, Any]:
        """The policy as JSON-ready data (durations in seconds)."""
        return {
            "default_role": self.default_role.value,
            "default_custom_role": self.default_custom_role,
            "invitation_default_ttl": self.invitation_default_ttl.total_seconds(),
            "invitation_max_ttl": self.invitation_max_ttl.total_seconds(),
            "link_domains": list(self.link_domains) if self.link_domains is not None else None,
            "api_key_max_lifetime": (
                self.api_key_max_lifetime.total_seconds() if self.api_key_max_lifetime is not None else None
            ),
            "api_keys_must_expire": self.api_keys_must_expire,
            "require_sso": self.require_sso,
            "link_verified_domains_only": self.link_verified_domains_only,
            "auto_join": self.auto_join,
        }


# Each honoured key of the document, and the policy attribute it tightens.
_POLICY_ATTRIBUTES: dict[str, str] = {
    "default_role": "default_role",
    "invitation_default_ttl": "invitation_default_ttl",
    "invitation_max_ttl": "invitation_max_ttl",
    "link_invitation_domains": "link_domains",
    "api_key_max_lifetime": "api_key_max_lifetime",
    "api_keys_must_expire": "api_keys_must_expire",
    "require_sso": "require_sso",
    "link_invitations_verified_domains_only": "link_verified_domains_only",
}


def _tighter(ceiling: timedelta, chosen: timedelta | None) -> timedelta:
    return ceiling if chosen is None else min(ceiling, chosen)


class PolicySource(Protocol):
    """Where a service finds an organization's policy: ``kit.organizations`` (an ``OrganizationService``)."""

    def policy(self, session: Session | Connection, organization_id: str) -> OrganizationPolicy:
        """The policy in force for ``organization_id``."""
        ...
