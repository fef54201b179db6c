"""SSO connections (records and policy, never the protocol), home-realm discovery, the SSO login policy, and
the enforcement of an organization's ``require_sso`` setting. See the "Domains and SSO" documentation page.
"""

from tenantkit.sso._service import (
    Provider,
    RealmDiscovery,
    RoleAuthority,
    SsoConnection,
    SsoLogin,
    SsoProtocol,
    SsoService,
)
from tenantkit.sso._sync import MembershipSync, ProviderMembershipEvent, SyncOutcome, SyncResult

__all__ = [
    "MembershipSync",
    "Provider",
    "ProviderMembershipEvent",
    "RealmDiscovery",
    "RoleAuthority",
    "SsoConnection",
    "SsoLogin",
    "SsoProtocol",
    "SsoService",
    "SyncOutcome",
    "SyncResult",
]
