"""Who performs a change, typed by kind: a user, the host application, an API key, an identity provider, or
tenantkit itself.

Events and their payloads carry the actor as ``{"kind", "id"}``, so a store of events (the audit log, a
webhook outbox) needs no migration when a later feature starts acting as a new kind.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypedDict

from tenantkit._errors import InvalidInputError
from tenantkit._validation import check_identifier


class ActorKind(str, enum.Enum):
    """What kind of performer an :class:`Actor` is; the value is the stable name payloads carry."""

    USER = "user"
    """A user of the organization, bounded by their role."""
    HOST = "host"
    """The host application acting on its own authority."""
    API_KEY = "api_key"
    """A request authenticated by an API key (the key's id)."""
    IDENTITY_PROVIDER = "identity_provider"
    """An identity provider acting through a connection (SSO, directory sync), by the connection's id."""
    SYSTEM = "system"
    """tenantkit itself, such as a scheduled job; ``id`` optionally names the job."""

    def __str__(self) -> str:
        return self.value


class AuthMethod(str, enum.Enum):
    """How a user actor signed in, as the host says (:attr:`Actor.authenticated_by`)."""

    PASSWORD = "password"  # noqa: S105  the name of a sign-in method, not a secret
    """A password, a magic link, a passkey: anything but single sign-on, as far as tenantkit is concerned."""
    SSO = "sso"
    """Single sign-on through one of tenantkit's SSO connections (name it in ``connection_id``)."""
    API_KEY = "api_key"
    """A personal API key or token acting for the user."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Authentication:
    """How an actor authenticated: the method and, for SSO, the tenantkit connection it came through.

    The host supplies it (its login code knows); tenantkit checks it where an organization requires SSO.

    Attributes:
        method: The sign-in method.
        connection_id: The tenantkit SSO connection's id, required for (and only for) :attr:`AuthMethod.SSO`.
    """

    method: AuthMethod
    connection_id: str | None = None

    def __post_init__(self) -> None:
        try:
            method = AuthMethod(self.method)
        except ValueError:
            known = ", ".join(method.value for method in AuthMethod)
            raise InvalidInputError(
                "authenticated_by", f"unknown method {self.method!r}; expected one of {known}"
            ) from None
        object.__setattr__(self, "method", method)
        if method is AuthMethod.SSO:
            object.__setattr__(self, "connection_id", check_identifier(self.connection_id, "connection_id"))
        elif self.connection_id is not None:
            raise InvalidInputError("authenticated_by", f"a {method.value} sign-in names no SSO connection")

    @classmethod
    def sso(cls, connection_id: str) -> Authentication:
        """Signed in through the SSO connection ``connection_id``."""
        return cls(AuthMethod.SSO, connection_id)

    @classmethod
    def password(cls) -> Authentication:
        """Signed in without SSO."""
        return cls(AuthMethod.PASSWORD)

    def __str__(self) -> str:
        return self.method.value if self.connection_id is None else f"sso:{self.connection_id}"


class ActorPayload(TypedDict):
    """The actor in an event payload: its kind (``user``, ``host``, ``api_key``…) and id (``None``: host)."""

    kind: str
    id: str | None


_NEEDS_ID = frozenset({ActorKind.USER, ActorKind.API_KEY, ActorKind.IDENTITY_PROVIDER})
# The kinds a service call can act as today; the others are recorded by the features that define their rights.
_SERVICE_KINDS = frozenset({ActorKind.USER, ActorKind.HOST})


@dataclass(frozen=True, slots=True)
class Actor:
    """The performer of a mutating call, and of the event it records.

    A user actor is bounded by its own role in the organization. The host actor (:data:`HOST`) is the
    application acting on its own authority (a signup flow creating the first OWNER, an admin console, a
    migration script): it passes permission checks, but the invariants that protect an organization, such as
    never losing its last OWNER, still hold. Service calls act as a user or the host; the other kinds name
    the performer of events recorded by features that define what those kinds may do.

    Attributes:
        kind: What kind of performer this is.
        id: The user's, key's or connection's id; ``None`` for the host (and optional for the system).
        authenticated_by: How a user actor signed in, when the host says so (``None``: not stated). Where an
            organization's ``require_sso`` setting is on, a user actor that states a sign-in other than one
            of that organization's SSO connections is refused (see :mod:`tenantkit.sso`). It is not part of
            the actor's identity: actors compare, hash and appear in payloads by ``kind`` and ``id`` alone.
    """

    kind: ActorKind
    id: str | None = None
    authenticated_by: Authentication | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        try:
            kind = ActorKind(self.kind)
        except ValueError:
            known = ", ".join(kind.value for kind in ActorKind)
            raise InvalidInputError("actor", f"unknown kind {self.kind!r}; expected one of {known}") from None
        object.__setattr__(self, "kind", kind)
        if kind is ActorKind.HOST and self.id is not None:
            raise InvalidInputError("actor", "the host actor has no id")
        if self.id is not None or kind in _NEEDS_ID:
            object.__setattr__(self, "id", check_identifier(self.id, "actor"))
        if self.authenticated_by is not None:
            if not isinstance(self.authenticated_by, Authentication):
                raise InvalidInputError("authenticated_by", "must be an Authentication")
            if kind is not ActorKind.USER:
                raise InvalidInputError("authenticated_by", "only a user actor states how it signed in")

    @classmethod
    def user(cls, user_id: str, *, authenticated_by: Authentication | None = None) -> Actor:
        """An actor that is the user ``user_id`` (validated like every id), signed in ``authenticated_by``."""
        return cls(ActorKind.USER, user_id, authenticated_by)

    @classmethod
    def api_key(cls, key_id: str) -> Actor:
        """An actor that is the API key ``key_id``."""
        return cls(ActorKind.API_KEY, key_id)

    @classmethod
    def identity_provider(cls, connection_id: str) -> Actor:
        """An actor that is the identity provider of the connection ``connection_id``."""
        return cls(ActorKind.IDENTITY_PROVIDER, connection_id)

    @classmethod
    def system(cls, name: str | None = None) -> Actor:
        """tenantkit acting by itself, optionally naming what acts (``"webhooks.worker"``)."""
        return cls(ActorKind.SYSTEM, name)

    @property
    def user_id(self) -> str | None:
        """The user's id for a user actor, else ``None``."""
        return self.id if self.kind is ActorKind.USER else None

    @property
    def is_host(self) -> bool:
        """Whether the host application itself is acting."""
        return self.kind is ActorKind.HOST

    def to_payload(self) -> ActorPayload:
        """The actor as event payloads carry it: ``{"kind": "user", "id": "user_alice"}``."""
        return {"kind": self.kind.value, "id": self.id}

    def __str__(self) -> str:
        if self.kind is ActorKind.USER:
            return str(self.id)
        return self.kind.value if self.id is None else f"{self.kind.value}:{self.id}"


HOST = Actor(ActorKind.HOST)
"""The host application acting on its own authority."""


def as_actor(actor: Actor | str) -> Actor:
    """Accept an :class:`Actor` or a user id, as every service method does.

    Raises:
        InvalidInputError: An actor of a kind no service call acts as yet (an API key, an identity provider,
            the system): its rights are defined by the feature that introduces it.
    """
    if isinstance(actor, Actor):
        if actor.kind not in _SERVICE_KINDS:
            raise InvalidInputError(
                "actor", f"a service call acts as a user or the host, not as {actor.kind.value} {actor}"
            )
        return actor
    return Actor.user(actor)
