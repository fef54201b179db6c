"""Verified domains: claim an email domain, prove it by DNS TXT, hold it for one organization at a time.

See the "Domains and SSO" page of the documentation. DNS lookups need the optional extra
``tenantkit[domains]`` (dnspython).
"""

from tenantkit.domains._dns import DnsPythonResolver, TxtAnswer, TxtResolver
from tenantkit.domains._service import (
    RECORD_PREFIX,
    TOKEN_PREFIX,
    AddedDomain,
    AutoJoin,
    DomainService,
    DomainStatus,
    DomainStrategy,
    OrganizationDomain,
    RecheckResult,
)

__all__ = [
    "RECORD_PREFIX",
    "TOKEN_PREFIX",
    "AddedDomain",
    "AutoJoin",
    "DnsPythonResolver",
    "DomainService",
    "DomainStatus",
    "DomainStrategy",
    "OrganizationDomain",
    "RecheckResult",
    "TxtAnswer",
    "TxtResolver",
]
