"""The audit log: every change recorded in the change's own transaction, queryable and exportable.

The service is ``kit.audit``; this package holds its public names::

    from tenantkit.audit import AuditEvent, audit_context

    with audit_context(ip_address="203.0.113.7", request_id="req_42"):
        kit.members.change_role(session, "org_1", "bob", Role.ADMIN, actor="alice")
    page = kit.audit.list_events(session, "org_1", actor="alice")

See the audit log page of the documentation for the schema, what is and is not recorded, retention, export
and the hash chain.
"""

from tenantkit._context import RequestContext, audit_context
from tenantkit.audit._chain import BrokenLink, ChainHead, ChainReport
from tenantkit.audit._export import CSV_COLUMNS, ExportFormat
from tenantkit.audit._model import AuditEvent, AuditTarget
from tenantkit.audit._service import AuditService, PurgeResult, RedactionResult

__all__ = [
    "CSV_COLUMNS",
    "AuditEvent",
    "AuditService",
    "AuditTarget",
    "BrokenLink",
    "ChainHead",
    "ChainReport",
    "ExportFormat",
    "PurgeResult",
    "RedactionResult",
    "RequestContext",
    "audit_context",
]
