"""Who performs a change, typed by kind: a user, the host application, an API key, an identity provider, or
tenantkit itself.

Events and their payloads carry the actor as ``{"kind", "id"}``, so a store of events (the audit log, a
webhook outbox) needs no migration when a later feature starts acting as a new kind.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
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
    """

    kind: ActorKind
    id: str | None = None

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

    @classmethod
    def user(cls, user_id: str) -> Actor:
        """An actor that is the user ``user_id`` (validated like every id)."""
        return cls(ActorKind.USER, user_id)

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
