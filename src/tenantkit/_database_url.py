"""Engines from database URLs typed by people: every bad URL is one clear error, and no password shows.

Used by the CLI and by the migration functions when they are given a URL. A URL can be wrong in many ways:
it does not parse, its port is not a number, it names an unknown dialect or a driver that is not
installed, an async driver where a synchronous one is needed, a raw ``@`` in the password, or
options the driver refuses when it connects (some drivers raise ``TypeError`` or ``AttributeError`` there
rather than a DBAPI error). Each becomes :class:`~tenantkit._errors.DatabaseUnavailableError`, whose message
shows the URL with its password hidden, or no URL at all when it cannot be told apart from the password.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tenantkit._errors import DatabaseUnavailableError

__all__ = ["create_engine_from_url", "safe_url"]

UNPARSEABLE = "<unparseable URL>"

# The drivers tenantkit's extras install, by the module a missing one fails to import.
_EXTRA_BY_MODULE = {"psycopg": "postgres", "pymysql": "mysql", "aiosqlite": "async", "greenlet": "async"}
_SUPPORTED = "sqlite, postgresql+psycopg or mysql+pymysql"


def create_engine_from_url(url: str | URL) -> Engine:
    """Build a synchronous engine for ``url``; a malformed URL or a missing driver is a clear error.

    Raises:
        DatabaseUnavailableError: The URL cannot be used; the message says why and how to fix it.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        # Some SQLAlchemy releases quote the whole string, password included, in this error.
        raise _refused(
            UNPARSEABLE, "not a database URL (dialect+driver://user:password@host:port/database)"
        ) from None
    except ValueError:
        raise _refused(
            UNPARSEABLE, "its host or port is malformed (the port must be a number from 0 to 65535)"
        ) from None
    if "@" in (parsed.host or ""):
        # The password (or user name) held an unescaped "@": SQLAlchemy split the URL at the first one, so
        # part of the password now reads as the host, and would be printed as such.
        raise _refused(
            f"{parsed.drivername}://***@…",
            "its user name or password holds a raw '@': percent-encode it as %40",
        )
    shown = safe_url(parsed)
    try:
        engine = sa.create_engine(parsed)
    except ImportError as exc:
        raise _refused(shown, _missing_driver(parsed, exc.name)) from None
    except (sa.exc.ArgumentError, ValueError, TypeError) as exc:
        # NoSuchModuleError (an unknown dialect or driver) is an ArgumentError; these messages name the
        # dialect or an option, never the password.
        raise _refused(shown, _scrub(str(exc), parsed)) from None
    if engine.dialect.is_async:
        engine.dispose()
        raise _refused(
            shown, f"{parsed.drivername} is an async driver; use a synchronous one here ({_SUPPORTED})"
        )
    _refuse_driver_errors(engine, parsed)
    return engine


def safe_url(url: str | URL) -> str:
    """``url`` as text with its password hidden, or ``<unparseable URL>``."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return UNPARSEABLE


def _refused(shown: str, reason: str) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(f"cannot use database URL {shown}: {reason}", url=shown)


def _missing_driver(url: URL, module: str | None) -> str:
    extra = _EXTRA_BY_MODULE.get(module or "")
    if extra is not None:
        return f'its driver is not installed: pip install "tenantkit[{extra}]"'
    driver = module or url.get_driver_name()
    return f"its driver ({driver}) is not installed; tenantkit's extras provide {_SUPPORTED}"


def _scrub(text: str, url: URL) -> str:
    """``text`` on one line, with the password replaced should a driver have quoted it."""
    line = " ".join(text.split())
    if url.password:
        line = line.replace(str(url.password), "***")
    return line


def _refuse_driver_errors(engine: Engine, url: URL) -> None:
    """Turn a driver's non-DBAPI refusal of the URL's options, when it connects, into a clear error.

    DBAPI errors (a refused connection, bad credentials) pass through: SQLAlchemy wraps them and callers
    report them. Anything else a driver raises while connecting is about the options in the URL: pymysql
    raises ``TypeError`` for an unknown one, ``AttributeError`` for an unknown charset, ``FileNotFoundError``
    for a missing CA file.
    """

    @sa.event.listens_for(engine, "do_connect")
    def connect(dialect: Any, record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.Error:
            raise
        except Exception as exc:  # a third-party driver's arbitrary refusal, see above
            reason = _scrub(f"{type(exc).__name__}: {exc}", url)
            raise _refused(safe_url(url), f"the driver refused its options ({reason})") from None
