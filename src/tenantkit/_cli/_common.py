"""What every ``tenantkit`` command shares: the root group, the database option, output and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from pydantic import BaseModel

from tenantkit._cli._formats import cli_input_error
from tenantkit._database_url import create_engine_from_url
from tenantkit._errors import DatabaseUnavailableError, InvalidInputError, TenantKitError
from tenantkit._kit import TenantKit
from tenantkit._settings import TenantKitSettings, environment_help
from tenantkit._version import __version__

DEFAULT_DATABASE = Path("tenantkit.sqlite3")
DEFAULT_URL = f"sqlite:///{DEFAULT_DATABASE}"
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
    # The variables are generated from the settings models, so that the list cannot drift from what is read.
    epilog=EXIT_CODES_EPILOG + "\n" + environment_help(),
)
@click.version_option(__version__, prog_name="tenantkit")
def main() -> None:
    """tenantkit: membership, API keys and invitations for multi-tenant services."""


def url_option(function: F) -> F:
    """The ``--url`` option; :func:`engine_for` falls back to ``TENANTKIT_DATABASE_URL`` (or ``.env``)."""
    return click.option(
        "--url",
        default=None,
        help=(
            f"SQLAlchemy database URL [default: {URL_ENVIRONMENT_VARIABLE} from the environment or .env, "
            f"else {DEFAULT_URL}, which read-only commands never create]."
        ),
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


def load_settings() -> TenantKitSettings:
    """This run's settings: ``TENANTKIT_*`` variables and ``./.env``, exactly as the application reads them.

    Raises:
        InvalidSettingError: A variable is unusable.
    """
    return TenantKitSettings.from_env()


def kit_for(settings: TenantKitSettings) -> TenantKit:
    """The services as the application configured by the same settings has them."""
    return TenantKit.from_settings(settings)


def database_url(url: str | None, settings: TenantKitSettings, *, read_only: bool) -> str:
    """The database a command uses: ``--url``, else ``TENANTKIT_DATABASE_URL``, else ``./tenantkit.sqlite3``.

    A read-only command never creates the default file: without it, it refuses instead.

    Raises:
        InvalidInputError: Nothing names a database and the command only reads.
    """
    if url is not None:
        return url
    if settings.database.url is not None:
        return settings.database.url.get_secret_value()
    if read_only and not DEFAULT_DATABASE.exists():
        raise InvalidInputError(
            "--url",
            f"no database given: pass --url or set {URL_ENVIRONMENT_VARIABLE} "
            f"(./{DEFAULT_DATABASE} does not exist, and a command that only reads does not create it)",
        )
    return DEFAULT_URL


@contextmanager
def engine_for(
    url: str | None, *, read_only: bool = False, settings: TenantKitSettings | None = None
) -> Iterator[sa.Engine]:
    """An engine for the command's database (see :func:`database_url`), disposed of afterwards.

    The database used is named on stderr (``database: <URL>``, its password hidden) unless ``--json`` was
    given; a bad URL becomes a clear error.
    """
    resolved = database_url(url, settings or load_settings(), read_only=read_only)
    engine = create_engine_from_url(resolved)
    context = click.get_current_context(silent=True)
    if context is None or not context.params.get("as_json"):
        # With --json, stderr carries the error object alone, for scripts to parse.
        click.echo(f"database: {engine.url.render_as_string(hide_password=True)}", err=True)
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
