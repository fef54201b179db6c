"""What every ``tenantkit`` command shares: the root group, the database option, output and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from pydantic import BaseModel

from tenantkit._cli._formats import cli_input_error
from tenantkit._database_url import create_engine_from_url
from tenantkit._errors import DatabaseUnavailableError, InvalidInputError, TenantKitError
from tenantkit._version import __version__

DEFAULT_URL = "sqlite:///tenantkit.sqlite3"
URL_ENVIRONMENT_VARIABLE = "TENANTKIT_DATABASE_URL"

EXIT_NO = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_REFUSED = 4

F = TypeVar("F", bound=Callable[..., Any])


EXIT_CODES_EPILOG = """\b
Exit codes:
  0  success
  1  the command ran and the answer is no (db check: out of date; keys verify: not valid)
  2  bad usage or bad input
  3  the database is unreachable or its URL is malformed
  4  refused: permission, conflict, not found, or any other tenantkit error
"""


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_EPILOG,
)
@click.version_option(__version__, prog_name="tenantkit")
def main() -> None:
    """tenantkit: membership, API keys and invitations for multi-tenant services."""


def url_option(function: F) -> F:
    """The ``--url`` option, read from ``TENANTKIT_DATABASE_URL`` when not given."""
    return click.option(
        "--url",
        envvar=URL_ENVIRONMENT_VARIABLE,
        default=DEFAULT_URL,
        show_default=True,
        show_envvar=True,
        help="SQLAlchemy database URL.",
    )(function)


def json_option(function: F) -> F:
    """The ``--json`` flag: machine-readable output on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(function)


def handle_errors(function: F) -> F:
    """Turn tenantkit and database errors into one line on stderr and a documented exit code."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DatabaseUnavailableError as error:
            fail(error, EXIT_UNAVAILABLE)
        except InvalidInputError as error:
            fail(cli_input_error(error), EXIT_USAGE)
        except TenantKitError as error:
            fail(error, EXIT_REFUSED)
        except sa.exc.OperationalError as error:
            fail(DatabaseUnavailableError(f"database error: {error.orig}"), EXIT_UNAVAILABLE)
        except sa.exc.DBAPIError as error:
            fail(DatabaseUnavailableError(f"database error: {error.orig}"), EXIT_UNAVAILABLE)

    return wrapper  # type: ignore[return-value]


def fail(error: TenantKitError, exit_code: int) -> None:
    """Print ``error`` as ``error [code]: message`` (or as JSON when ``--json`` was given) and exit."""
    context = click.get_current_context(silent=True)
    if context is not None and context.params.get("as_json"):
        click.echo(json.dumps({"error": error.to_dict()}, default=str), err=True)
    else:
        # Drivers put hints on extra lines; an error is one line.
        click.echo(f"error [{error.code}]: {' '.join(error.message.split())}", err=True)
    sys.exit(exit_code)


@contextmanager
def engine_for(url: str) -> Iterator[sa.Engine]:
    """An engine for ``url`` that is disposed of afterwards; a bad URL becomes a clear error."""
    engine = create_engine_from_url(url)
    try:
        yield engine
    finally:
        engine.dispose()


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``human`` to print it for people."""
    if as_json:
        click.echo(json.dumps(to_jsonable(data), indent=2, default=str))
    else:
        human()


def to_jsonable(data: Any) -> Any:
    """Pydantic models (and lists of them) as plain JSON-ready data."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [to_jsonable(item) for item in data]
    if isinstance(data, dict):
        return {key: to_jsonable(value) for key, value in data.items()}
    return data
