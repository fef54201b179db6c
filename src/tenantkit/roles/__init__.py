"""Roles, actions and the policy: the one place that says who may do what.

Its names are all re-exported by ``tenantkit``::

    from tenantkit.roles import DEFAULT_PERMISSIONS, Action, Permissions, Role
"""

from tenantkit.roles._policy import DEFAULT_PERMISSIONS, Action, Permissions, Role

__all__ = ["DEFAULT_PERMISSIONS", "Action", "Permissions", "Role"]
