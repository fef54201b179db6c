"""How every command reads and prints values: tables, timestamps, roles, and the names of its parameters.

* Listings print a table with a header row on stdout (``--json`` prints the page instead) and the way to
  the next page on stderr.
* Timestamps print in one format, the one of the JSON output: ISO 8601 in UTC with a ``Z``
  (``2030-01-01T12:00:00Z``, microseconds when there are any). Timestamp options read the same format
  (a time without a zone is UTC).
* Roles are shown as they are typed, ``OWNER|ADMIN|MEMBER``, and accepted in any case.
* An error about an argument names it as the user typed it (``--from``, ``ORGANIZATION``), not by the
  library's parameter name (``from_user_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tenantkit._errors import InvalidInputError
from tenantkit._pagination import Page
from tenantkit.roles._policy import Role

__all__ = [
    "ROLE",
    "TIMESTAMP",
    "Column",
    "cli_input_error",
    "echo_page",
    "echo_table",
    "format_timestamp",
]

T = TypeVar("T")
Column = tuple[str, Callable[[T], str]]
"""A table column: its header and how to print an item's cell."""


def format_timestamp(value: datetime | None, missing: str = "never") -> str:
    """``value`` as every command prints it (the JSON output's format), or ``missing`` for ``None``."""
    if value is None:
        return missing
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` under ``headers`` in aligned columns."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def echo_page(page: Page[T], columns: Sequence[Column[T]]) -> None:
    """Print a page as a table, and on stderr the option that gets the next one."""
    echo_table(
        [header for header, _ in columns], [[cell(item) for _, cell in columns] for item in page.items]
    )
    if page.next_cursor:
        click.echo(f"next page: --cursor {page.next_cursor}", err=True)


if TYPE_CHECKING:
    _Choice = click.Choice[str]
    _ParamType = click.ParamType[datetime]
else:  # click 8.1's types are not generic at run time
    _Choice = click.Choice
    _ParamType = click.ParamType


class _RoleChoice(_Choice):
    """A role: shown as it is spelled (``OWNER``), accepted in any case and given to the command upper-cased.

    ``click.Choice(case_sensitive=False)`` would list the choices lower-cased in ``--help``, unlike the
    default it shows and every output of the library.
    """

    def __init__(self) -> None:
        super().__init__([role.value for role in Role], case_sensitive=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if isinstance(value, str) and value.strip().upper() in self.choices:
            return value.strip().upper()
        return super().convert(value, param, ctx)


class _Timestamp(_ParamType):
    """An ISO 8601 time (``2030-01-01T12:00:00Z``, ``2030-01-01``); one without a zone is UTC."""

    name = "timestamp"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "TIMESTAMP"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read a trailing Z
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time such as 2030-01-01T12:00:00Z", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


ROLE = _RoleChoice()
TIMESTAMP = _Timestamp()

# Where a library argument and the command's parameter for it are named differently.
_PARAMETERS_BY_FIELD = {
    "organization_id": ("organization",),
    "user_id": ("user",),
    "to_user_id": ("to_user",),
    "from_user_id": ("from_user",),
    "actor": ("acting_user",),
    "expires": ("expires_in", "expires_at"),
    "allowed_domains": ("domains",),
    "domain": ("domains",),
    "accept_url_template": ("accept_url",),
    "revision": ("revision", "revision_option"),
    "ApiKeySubject": ("subject_user", "subject_device"),  # its own check of the id, named after the model
    "refill_amount": ("refill",),
    "certificate_sha256": ("thumbprint",),
}


def cli_input_error(error: InvalidInputError) -> InvalidInputError:
    """``error`` naming the option or argument of the running command that carried the bad value."""
    context = click.get_current_context(silent=True)
    if context is None:
        return error
    parameters = {parameter.name: parameter for parameter in context.command.params}
    candidates = (*_PARAMETERS_BY_FIELD.get(error.field, ()), error.field)
    found = [parameters[name] for name in candidates if name in parameters]
    # Of two options that feed one argument (--expires-in, --expires), the one the user gave.
    given = [parameter for parameter in found if context.params.get(parameter.name or "") is not None]
    if not found:
        return error
    parameter = (given or found)[0]
    if isinstance(parameter, click.Option):
        name = max(parameter.opts, key=len)
    else:
        name = (parameter.name or error.field).upper()  # as --help names it, without [optional] brackets
    return InvalidInputError(name, error.reason)
