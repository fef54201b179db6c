"""Drop-in pages: the team, invitations, the invitation accept page, API keys and the audit log.

Install with ``pip install "tenantkit[ui]"`` and mount them with the adapter you already use::

    app.include_router(tk.pages(secret_key=PAGES_SECRET), prefix="/account")        # FastAPI
    app.register_blueprint(tk.pages_blueprint(secret_key=PAGES_SECRET), url_prefix="/account")  # Flask

The pages are declared once, in :data:`PAGES`: both adapters mount the same table, rendered by the same
Jinja2 templates (``tenantkit/*.html`` in this package; a directory of the host's, given as
``templates=``, overrides any of them). Their texts are English, translated through Babel catalogs
(``translations=``), with dates in the viewer's time zone (``Principal.locale``, ``Principal.time_zone``).
"""

from tenantkit.ui._flask_wtf import FlaskWtfTokens
from tenantkit.ui._i18n import N_, Message
from tenantkit.ui._security import CSRF_COOKIE, CSRF_FIELD, CsrfTokens, SessionCsrfTokens, SignedDoubleSubmit
from tenantkit.ui._site import (
    PAGES,
    DownloadFormat,
    PageAction,
    PageContext,
    PageDefinition,
    PageDownload,
    PageRequest,
    PageResponse,
    PageRoute,
    PageSite,
)

__all__ = [
    "CSRF_COOKIE",
    "CSRF_FIELD",
    "N_",
    "PAGES",
    "CsrfTokens",
    "DownloadFormat",
    "FlaskWtfTokens",
    "Message",
    "PageAction",
    "PageContext",
    "PageDefinition",
    "PageDownload",
    "PageRequest",
    "PageResponse",
    "PageRoute",
    "PageSite",
    "SessionCsrfTokens",
    "SignedDoubleSubmit",
]
