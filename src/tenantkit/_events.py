"""Events: what changed, delivered to listeners only once the host's transaction commits.

Services record events on the SQLAlchemy ``Session`` they work in. The events wait there until the
outermost transaction commits; a rollback (of the whole transaction, or of a savepoint the events were
recorded in) discards them. So a listener never hears of a change that did not happen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, SecretStr
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from tenantkit._roles import Role

logger = logging.getLogger("tenantkit.events")


class Event(BaseModel):
    """Base of every event. ``actor_id`` is the acting user, or ``None`` when the host acted."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True)

    organization_id: str
    actor_id: str | None
    occurred_at: datetime


class MemberAdded(Event):
    """A user became a member of an organization."""

    user_id: str
    role: Role


class MemberRoleChanged(Event):
    """A member's role changed."""

    user_id: str
    old_role: Role
    new_role: Role


class MemberRemoved(Event):
    """A member left or was removed. ``left`` is true when the member removed themself."""

    user_id: str
    role: Role
    left: bool


class OwnershipTransferred(Event):
    """Ownership passed from one member to another."""

    from_user_id: str
    to_user_id: str
    from_user_new_role: Role


class ApiKeyIssued(Event):
    """An API key was issued. ``start`` is the non-secret beginning of the key."""

    key_id: str
    name: str
    start: str
    scopes: tuple[str, ...]


class ApiKeyRevoked(Event):
    """An API key was revoked; it no longer verifies."""

    key_id: str


class ApiKeyDeleted(Event):
    """An API key was deleted."""

    key_id: str


class ApiKeyRotated(Event):
    """A key was replaced by a new one; the old one stays valid until ``old_key_valid_until``."""

    old_key_id: str
    new_key_id: str
    old_key_valid_until: datetime | None


class InvitationCreated(Event):
    """An invitation was created. ``accept_url`` holds the token: deliver it, never log it."""

    invitation_id: str
    email: str | None
    allowed_domains: tuple[str, ...]
    role: Role
    expires_at: datetime
    accept_url: SecretStr | None


class InvitationResent(Event):
    """An invitation got a new token (the old one is dead). ``accept_url`` holds the new token."""

    invitation_id: str
    email: str | None
    allowed_domains: tuple[str, ...]
    role: Role
    expires_at: datetime
    accept_url: SecretStr | None


class InvitationAccepted(Event):
    """A user accepted an invitation and became a member."""

    invitation_id: str
    user_id: str
    role: Role


class InvitationRevoked(Event):
    """An invitation was revoked; its token no longer works."""

    invitation_id: str


E = TypeVar("E", bound=Event)
Listener = Callable[[Any], None]

_PENDING_KEY = "tenantkit.pending_events"
_HOOKED_KEY = "tenantkit.events_hooked"


class EventDispatcher:
    """Holds listeners and delivers events recorded on a session after that session commits.

    Listeners run synchronously in the committing thread, in subscription order. A listener that raises is
    logged and skipped: the change is already committed, and the other listeners still hear of it.
    """

    def __init__(self) -> None:
        self._listeners: list[tuple[tuple[type[Event], ...], Listener]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[E], None], *event_types: type[E]) -> Callable[[], None]:
        """Call ``listener`` with every committed event of ``event_types`` (all events if none given).

        Returns:
            A function that unsubscribes the listener.
        """
        entry: tuple[tuple[type[Event], ...], Listener] = (event_types or (Event,), listener)
        with self._lock:
            self._listeners.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._listeners:
                    self._listeners.remove(entry)

        return unsubscribe

    def record(self, session: Session, event: Event) -> None:
        """Keep ``event`` on ``session``: delivered when its transaction commits, dropped on rollback."""
        if not session.info.get(_HOOKED_KEY):
            self._hook(session)
        transaction = session.get_nested_transaction() or session.get_transaction()
        pending: list[tuple[Event, SessionTransaction | None, EventDispatcher]] = session.info.setdefault(
            _PENDING_KEY, []
        )
        pending.append((event, transaction, self))

    def deliver(self, event: Event) -> None:
        """Hand ``event`` to every matching listener now."""
        with self._lock:
            listeners = list(self._listeners)
        for event_types, listener in listeners:
            if isinstance(event, event_types):
                try:
                    listener(event)
                except Exception:
                    logger.exception(
                        "tenantkit event listener %r failed on %s", listener, type(event).__name__
                    )

    @staticmethod
    def _hook(session: Session) -> None:
        session.info[_HOOKED_KEY] = True
        sa_event.listen(session, "after_commit", _deliver_pending)
        sa_event.listen(session, "after_soft_rollback", _discard_rolled_back)


def _deliver_pending(session: Session) -> None:
    # SQLAlchemy also fires after_commit when a savepoint is released; only the outermost commit counts.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING_KEY, [])
    for event, _transaction, dispatcher in pending:
        dispatcher.deliver(event)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _discard_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING_KEY)
    if not pending:
        return
    session.info[_PENDING_KEY] = [
        entry for entry in pending if entry[1] is not None and not _within(entry[1], previous_transaction)
    ]
