"""The ``tenantkit`` command line.

Conventions every command follows: ``--url`` (or ``TENANTKIT_DATABASE_URL``, also from ``.env``) names the
database, defaulting to ``sqlite:///tenantkit.sqlite3`` in the working directory, which commands that only
read never create; the database used is named on stderr; the other settings come from the same
``TENANTKIT_*`` variables the application reads (``tenantkit --help`` lists them); ``--json`` prints
machine-readable output; errors are one line on stderr, never a traceback, with these exit codes:

* 0 — success;
* 1 — the command ran and the answer is "no" (``db check`` on an out-of-date database, say);
* 2 — bad usage or bad input (click's own convention);
* 3 — the database is unreachable or its URL is malformed;
* 4 — refused: permission, conflict, not found, or any other tenantkit error.
"""

from __future__ import annotations

from tenantkit._cli._common import main

__all__ = ["main"]


def _register() -> None:
    # Each command group lives in its own module; importing it attaches it to ``main``.
    from tenantkit._cli import (
        audit,  # noqa: F401
        db,  # noqa: F401
        departments,  # noqa: F401
        domains,  # noqa: F401
        invites,  # noqa: F401
        keys,  # noqa: F401
        members,  # noqa: F401
        organizations,  # noqa: F401
        roles,  # noqa: F401
        sso,  # noqa: F401
        webhooks,  # noqa: F401
    )


_register()
