"""The events tenantkit's services record, and the dispatcher that delivers them after commit.

Subscribe through a kit's or a service's ``events`` (an :class:`EventDispatcher`)::

    from tenantkit.events import MemberAdded

    kit.events.subscribe(on_member_added, MemberAdded)
"""

from tenantkit._actor import ActorPayload
from tenantkit._events import (
    EVENT_TYPES,
    ApiKeyCreditsChanged,
    ApiKeyDeleted,
    ApiKeyIssued,
    ApiKeyRevoked,
    ApiKeyRotated,
    Event,
    EventDispatcher,
    EventPayload,
    InvitationAccepted,
    InvitationCreated,
    InvitationMarkedSent,
    InvitationResent,
    InvitationRevoked,
    MemberAdded,
    MemberRemoved,
    MemberRoleChanged,
    OwnershipTransferred,
    PersonalDataRedacted,
)

__all__ = [
    "EVENT_TYPES",
    "ActorPayload",
    "ApiKeyCreditsChanged",
    "ApiKeyDeleted",
    "ApiKeyIssued",
    "ApiKeyRevoked",
    "ApiKeyRotated",
    "Event",
    "EventDispatcher",
    "EventPayload",
    "InvitationAccepted",
    "InvitationCreated",
    "InvitationMarkedSent",
    "InvitationResent",
    "InvitationRevoked",
    "MemberAdded",
    "MemberRemoved",
    "MemberRoleChanged",
    "OwnershipTransferred",
    "PersonalDataRedacted",
]
