"""``tenantkit departments``: the departments of an organization and who is in them.

Commands act as the host unless ``--as USER`` names the member on whose behalf they act.
"""

from __future__ import annotations

import json

import click

from tenantkit._cli._common import (
    emit,
    engine_for,
    handle_errors,
    json_option,
    kit_for,
    load_settings,
    main,
    page_options,
    url_option,
)
from tenantkit._cli._formats import Column, echo_page
from tenantkit._cli.members import MEMBER_COLUMNS, _actor, as_option
from tenantkit._session import transaction
from tenantkit._settings import TenantKitSettings
from tenantkit.departments._service import Department, DepartmentService

DEPARTMENT_COLUMNS: list[Column[Department]] = [
    ("ID", lambda department: department.id),
    ("NAME", lambda department: department.name),
    ("DESCRIPTION", lambda department: department.description or ""),
]


def _departments(settings: TenantKitSettings) -> DepartmentService:
    return kit_for(settings).departments


@main.group()
def departments() -> None:
    """Create, list and fill the departments of organizations."""


@departments.command("create")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("name")
@click.option("--description", default=None)
@handle_errors
def create(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    name: str,
    description: str | None,
) -> None:
    """Create a department NAME in ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        department = _departments(settings).create(
            session, organization, name, actor=_actor(acting_user), description=description
        )
    emit(department, as_json, lambda: click.echo(f"created department {department.name} ({department.id})"))


@departments.command("list")
@url_option
@json_option
@as_option
@click.argument("organization")
@page_options
@handle_errors
def list_(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, limit: int, cursor: str | None
) -> None:
    """List the departments of ORGANIZATION by name."""
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        page = _departments(settings).list_departments(
            session, organization, actor=_actor(acting_user), limit=limit, cursor=cursor
        )
    emit(page, as_json, lambda: echo_page(page, DEPARTMENT_COLUMNS))


@departments.command("delete")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("department")
@handle_errors
def delete(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, department: str
) -> None:
    """Delete DEPARTMENT (an id) of ORGANIZATION; its members stay members of the organization."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        deleted = _departments(settings).delete(session, organization, department, actor=_actor(acting_user))
    emit(deleted, as_json, lambda: click.echo(f"deleted department {deleted.name}"))


@departments.command("add")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("department")
@click.argument("user")
@handle_errors
def add(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, department: str, user: str
) -> None:
    """Put member USER into DEPARTMENT (an id) of ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        member = _departments(settings).add_member(
            session, organization, department, user, actor=_actor(acting_user)
        )
    emit(member, as_json, lambda: click.echo(f"{user} is in department {department}"))


@departments.command("remove")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("department")
@click.argument("user")
@handle_errors
def remove(
    url: str | None, as_json: bool, acting_user: str | None, organization: str, department: str, user: str
) -> None:
    """Take USER out of DEPARTMENT (an id) of ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, settings=settings) as engine, transaction(engine) as session:
        _departments(settings).remove_member(
            session, organization, department, user, actor=_actor(acting_user)
        )
    if as_json:
        click.echo(json.dumps({"department_id": department, "user_id": user, "removed": True}))
    else:
        click.echo(f"{user} left department {department}")


@departments.command("members")
@url_option
@json_option
@as_option
@click.argument("organization")
@click.argument("department")
@page_options
@handle_errors
def members(
    url: str | None,
    as_json: bool,
    acting_user: str | None,
    organization: str,
    department: str,
    limit: int,
    cursor: str | None,
) -> None:
    """List the members of DEPARTMENT (an id) of ORGANIZATION."""
    settings = load_settings()
    with engine_for(url, read_only=True, settings=settings) as engine, transaction(engine) as session:
        page = _departments(settings).list_members(
            session, organization, department, actor=_actor(acting_user), limit=limit, cursor=cursor
        )
    emit(page, as_json, lambda: echo_page(page, MEMBER_COLUMNS))
