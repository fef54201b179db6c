"""Invitations: by email (one person) or by a domain-restricted link, single-use or counted, unforgeable.

The service is ``kit.invitations``; this package holds its public names (all re-exported by ``tenantkit``)::

    from tenantkit.invitations import InvitationService, InvitationStatus
"""

from tenantkit._settings import InvitationSettings
from tenantkit.invitations._service import (
    AcceptedInvitation,
    CreatedInvitation,
    Invitation,
    InvitationPreview,
    InvitationService,
    InvitationStatus,
)

__all__ = [
    "AcceptedInvitation",
    "CreatedInvitation",
    "Invitation",
    "InvitationPreview",
    "InvitationService",
    "InvitationSettings",
    "InvitationStatus",
]
