"""Roles, actions, the permission registry and the policy: the one place that says who may do what.

Its names are all re-exported by ``tenantkit``::

    from tenantkit.roles import DEFAULT_PERMISSIONS, Action, CustomRole, PermissionRegistry, Permissions, Role

OWNER, ADMIN and MEMBER are the ranks; :class:`CustomRole` adds a product's own permissions inside ADMIN or
MEMBER; :class:`Authorizer` hands the permission questions to an external policy engine. The service that
stores an organization's own roles is :class:`tenantkit.members.RoleService` (``kit.roles``).
"""

from tenantkit.roles._authorizer import AccessRequest, Authorizer, TableAuthorizer
from tenantkit.roles._policy import (
    BUILT_IN_ACTIONS,
    DEFAULT_PERMISSIONS,
    OWNER_ONLY_ACTIONS,
    Action,
    CustomRole,
    EffectivePermissions,
    PermissionRegistry,
    Permissions,
    Role,
)

__all__ = [
    "BUILT_IN_ACTIONS",
    "DEFAULT_PERMISSIONS",
    "OWNER_ONLY_ACTIONS",
    "AccessRequest",
    "Action",
    "Authorizer",
    "CustomRole",
    "EffectivePermissions",
    "PermissionRegistry",
    "Permissions",
    "Role",
    "TableAuthorizer",
]
