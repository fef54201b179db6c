"""Who performs a change: a user of the organization, or the host application itself."""

from __future__ import annotations

from dataclasses import dataclass

from tenantkit._validation import check_identifier


@dataclass(frozen=True, slots=True)
class Actor:
    """The performer of a mutating call.

    A user actor is bounded by its own role in the organization. The host actor (:data:`HOST`) is the
    application acting on its own authority (a signup flow creating the first OWNER, an admin console, a
    migration script): it passes permission checks, but the invariants that protect an organization, such as
    never losing its last OWNER, still hold.
    """

    user_id: str | None

    @classmethod
    def user(cls, user_id: str) -> Actor:
        """An actor that is the user ``user_id`` (validated like every id)."""
        return cls(check_identifier(user_id, "actor"))

    @property
    def is_host(self) -> bool:
        """Whether the host application itself is acting."""
        return self.user_id is None

    def __str__(self) -> str:
        return "host" if self.user_id is None else self.user_id


HOST = Actor(None)
"""The host application acting on its own authority."""


def as_actor(actor: Actor | str) -> Actor:
    """Accept an :class:`Actor` or a user id, as every service method does."""
    if isinstance(actor, Actor):
        return actor
    return Actor.user(actor)
