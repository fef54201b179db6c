"""Organization membership: who belongs to an organization, with which role.

The service is ``kit.members``; this package holds its public names (all re-exported by ``tenantkit``)::

    from tenantkit.members import Member, MembershipService

What each role may do is the policy of :mod:`tenantkit.roles`.
"""

from tenantkit.members._service import Member, MembershipService

__all__ = ["Member", "MembershipService"]
