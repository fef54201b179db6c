"""tenantkit's SQLAlchemy tables, their ``MetaData``, and the hooks that keep a host's Alembic off them.

Join against the tables from your own queries, and give :func:`include_object` to your ``env.py``::

    from tenantkit.tables import include_object, team_members

The tables live here, not at the top level, so that ``tenantkit.api_keys`` never means a table while
``kit.api_keys`` is a service.
"""

from tenantkit._tables import (
    USER_REFERENCE,
    VERSION_TABLE,
    api_keys,
    audit_chain_heads,
    audit_events,
    cache_invalidations,
    custom_roles,
    department_members,
    departments,
    include_object,
    invitation_acceptances,
    invitations,
    metadata,
    organization_domains,
    organization_settings,
    sso_connections,
    sso_member_sync,
    team_members,
    webhook_deliveries,
    webhook_endpoints,
    webhook_messages,
)

__all__ = [
    "USER_REFERENCE",
    "VERSION_TABLE",
    "api_keys",
    "audit_chain_heads",
    "audit_events",
    "cache_invalidations",
    "custom_roles",
    "department_members",
    "departments",
    "include_object",
    "invitation_acceptances",
    "invitations",
    "metadata",
    "organization_domains",
    "organization_settings",
    "sso_connections",
    "sso_member_sync",
    "team_members",
    "webhook_deliveries",
    "webhook_endpoints",
    "webhook_messages",
]
