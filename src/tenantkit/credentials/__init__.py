"""Professional credentials for invitations with requirements: an offline NPI check and a licence policy.

::

    from tenantkit.credentials import LicencePolicy, is_valid_npi

    kit = TenantKit(invitations=..., accept_policy=LicencePolicy())

Nothing here makes a network call: registry look-ups (NPPES, state boards) are the host's, done before
``accept()``, whose result the host presents as claims.
"""

from tenantkit.credentials._licence import LicenceClaims, LicencePolicy, LicenceRequirements
from tenantkit.credentials._npi import check_npi, is_valid_npi, npi_check_digit

__all__ = [
    "LicenceClaims",
    "LicencePolicy",
    "LicenceRequirements",
    "check_npi",
    "is_valid_npi",
    "npi_check_digit",
]
