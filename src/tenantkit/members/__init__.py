"""Organization membership: who belongs to an organization, with which role.

The service is ``kit.members``; this package holds its public names (all re-exported by ``tenantkit``)::

    from tenantkit.members import Member, MembershipService

What each role may do is the policy of :mod:`tenantkit.roles`. What a policy verified about a member (a
licence, an NPI) is its :class:`MemberAttributes`.
"""

from tenantkit.members._attributes import AttributeValue, MemberAttributes, make_attributes
from tenantkit.members._service import Member, MembershipService

__all__ = ["AttributeValue", "Member", "MemberAttributes", "MembershipService", "make_attributes"]
