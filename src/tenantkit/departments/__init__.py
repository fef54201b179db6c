"""Departments: named groups of members inside one organization.

The service is ``kit.departments``::

    from tenantkit.departments import Department, DepartmentService

A department grants nothing of its own: roles, owners, verified domains and SSO stay the organization's.
"""

from tenantkit.departments._service import (
    MANAGE_DEPARTMENTS,
    READ_DEPARTMENTS,
    Department,
    DepartmentService,
)

__all__ = ["MANAGE_DEPARTMENTS", "READ_DEPARTMENTS", "Department", "DepartmentService"]
