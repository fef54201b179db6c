"""Organization membership: who belongs to an organization, with which role, and the organization's own roles.

The services are ``kit.members`` and ``kit.roles``; this package holds their public names (all re-exported by
``tenantkit``)::

    from tenantkit.members import Member, MembershipService, RoleService

What each rank and custom role may do is the policy of :mod:`tenantkit.roles`. What a policy verified
about a member (a licence, an NPI) is its :class:`MemberAttributes`.
"""

from tenantkit.members._attributes import AttributeValue, MemberAttributes, make_attributes
from tenantkit.members._roles import RoleService
from tenantkit.members._service import Member, MembershipService

__all__ = [
    "AttributeValue",
    "Member",
    "MemberAttributes",
    "MembershipService",
    "RoleService",
    "make_attributes",
]
