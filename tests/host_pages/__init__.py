"""A host's own page mounted beside tenantkit's: the projects of an organization, with an archive action.

The host keeps its projects in a table of its own; the page reads and writes it on the request's session, so
an archive commits with the adapter's commit, like tenantkit's own actions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tenantkit import PermissionRegistry, Permissions, Role
from tenantkit.errors import NotFoundError
from tenantkit.ui import N_, Message, PageAction, PageContext, PageDefinition

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
LOCALE = HERE / "locale"

metadata = sa.MetaData()
projects = sa.Table(
    "host_projects",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("organization_id", sa.String(255), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("archived", sa.Boolean, nullable=False, default=False),
)

PERMISSIONS = (
    Permissions(
        registry=PermissionRegistry(
            {"projects:read": "See the organization's projects", "projects:archive": "Archive a project"}
        )
    )
    .with_actions("projects:read", Role.MEMBER)
    .with_actions("projects:archive", Role.ADMIN)
)
"""Every member reads the projects; an ADMIN or the OWNER archives them."""


class ProjectNotFoundError(NotFoundError):
    """The host's own refusal: a typed error of tenantkit's family, shown by the pages in words (HTTP 404)."""

    code = "project_not_found"


def load_projects(context: PageContext) -> dict[str, Any]:
    rows = context.session.execute(
        sa.select(projects.c.id, projects.c.name)
        .where(projects.c.organization_id == context.organization_id, sa.not_(projects.c.archived))
        .order_by(projects.c.name)
    ).all()
    return {"projects": rows}


def archive(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    context.kit.members.authorize(
        context.session, context.organization_id, context.principal.user_id, "projects:archive"
    )
    project_id = (form.get("project_id") or [""])[0]
    project = context.session.execute(
        sa.select(projects.c.id, projects.c.name).where(
            projects.c.organization_id == context.organization_id, projects.c.id == project_id
        )
    ).one_or_none()
    if project is None:
        raise ProjectNotFoundError(f"no project {project_id!r} in this organization")
    context.session.execute(sa.update(projects).where(projects.c.id == project.id).values(archived=True))
    return project


PROJECTS_PAGE = PageDefinition(
    name="projects",
    path="/organizations/{organization_id}/projects",
    title=N_("Projects"),
    template="projects.html",
    load=load_projects,
    permission="projects:read",
    actions=(
        PageAction(
            "archive",
            archive,
            lambda project: Message(N_("Project %(name)s was archived."), name=project.name),
            confirm=N_("Archive this project?"),
            target="project_id",
        ),
    ),
)


@contextmanager
def projects_table(engine: sa.Engine) -> Iterator[None]:
    """The host's table, made for one test and dropped after it (the database fixtures empty only
    tenantkit's tables; a test stopped half-way must not leave rows to the next)."""
    metadata.drop_all(engine)
    metadata.create_all(engine)
    try:
        yield
    finally:
        metadata.drop_all(engine)


def add_projects(engine: sa.Engine, organization_id: str, *names: str) -> None:
    with engine.begin() as connection:
        for number, name in enumerate(names, 1):
            connection.execute(
                projects.insert().values(
                    id=f"{organization_id}-p{number}", organization_id=organization_id, name=name
                )
            )
