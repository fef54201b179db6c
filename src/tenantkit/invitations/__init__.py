"""Invitations: by email (one person) or by a domain-restricted link, single-use or counted, unforgeable.

The service is ``kit.invitations``; this package holds its public names (the service's are re-exported by
``tenantkit``)::

    from tenantkit.invitations import InvitationService, InvitationStatus

An invitation may carry requirements that the host's :class:`AcceptPolicy` checks on acceptance.
"""

from tenantkit._settings import InvitationSettings
from tenantkit.invitations._requirements import (
    MAX_CLAIMS_BYTES,
    MAX_REQUIREMENTS_BYTES,
    AcceptContext,
    AcceptPolicy,
    Approval,
    Denial,
    Requirements,
)
from tenantkit.invitations._service import (
    AcceptedInvitation,
    CreatedInvitation,
    Invitation,
    InvitationPreview,
    InvitationService,
    InvitationStatus,
)

__all__ = [
    "MAX_CLAIMS_BYTES",
    "MAX_REQUIREMENTS_BYTES",
    "AcceptContext",
    "AcceptPolicy",
    "AcceptedInvitation",
    "Approval",
    "CreatedInvitation",
    "Denial",
    "Invitation",
    "InvitationPreview",
    "InvitationService",
    "InvitationSettings",
    "InvitationStatus",
    "Requirements",
]
