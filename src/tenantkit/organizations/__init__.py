"""Organizations: each one's settings document, the policy it sets, and deleting an organization's (or a
user's) data.

The service is ``kit.organizations``; this package holds its public names::

    from tenantkit.organizations import SettingsDocument

    class ClinicSettings(SettingsDocument):
        appointment_reminders: bool = True

    kit = TenantKit(organizations=OrganizationDefaults(document=ClinicSettings, api_key_max_lifetime="90d"))
    current = kit.organizations.get_settings(session, "org_1", actor="alice")
    kit.organizations.update_settings(
        session, "org_1", {"appointment_reminders": False}, expected_version=current.version, actor="alice"
    )

See the organization settings page of the documentation.
"""

from tenantkit.organizations._document import HONOURED_SETTINGS, OrganizationPolicy, SettingsDocument
from tenantkit.organizations._service import (
    DeletionResult,
    ErasureResult,
    OrganizationService,
    SettingsSnapshot,
)

__all__ = [
    "HONOURED_SETTINGS",
    "DeletionResult",
    "ErasureResult",
    "OrganizationPolicy",
    "OrganizationService",
    "SettingsDocument",
    "SettingsSnapshot",
]
