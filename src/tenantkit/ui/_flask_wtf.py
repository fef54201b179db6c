"""Flask-WTF's CSRF tokens for the pages, on a Flask app that runs Flask-WTF's ``CSRFProtect``.

``CSRFProtect`` checks every ``POST`` of its app before any view runs: the form field ``WTF_CSRF_FIELD_NAME``
must hold a token Flask-WTF signed for the secret it keeps in Flask's session, so the pages' own signed
double-submit token would be refused on every form. On such an app the Flask pages render and check
Flask-WTF's token instead (``generate_csrf``, ``validate_csrf``: the app's secret, field name and time limit
are Flask-WTF's, read on each request). Flask and Flask-WTF are imported only when used, so neither
``tenantkit[ui]`` nor ``tenantkit[flask]`` needs Flask-WTF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask
    from flask.sansio.app import App

__all__ = ["FlaskWtfTokens", "exempt_pages", "flask_wtf_tokens"]

_DEFAULT_FIELD = "csrf_token"  # Flask-WTF's default WTF_CSRF_FIELD_NAME


class FlaskWtfTokens:
    """Flask-WTF's CSRF tokens as the pages' provider (a :class:`~tenantkit.ui.SessionCsrfTokens`).

    ``TenantKitFlask.pages_blueprint()`` uses it by itself on an app where Flask-WTF's ``CSRFProtect`` is
    registered and ``WTF_CSRF_ENABLED``; it needs a Flask request (and Flask-WTF installed). The secret is
    Flask-WTF's, in Flask's session, so the pages set no cookie of their own: the cookie arguments are
    ignored.
    """

    def form_field(self) -> str:
        """``WTF_CSRF_FIELD_NAME`` of the request's app, the field ``CSRFProtect`` reads."""
        from flask import current_app

        return str(current_app.config.get("WTF_CSRF_FIELD_NAME", _DEFAULT_FIELD))

    def new_cookie(self) -> str:
        return ""

    def token_for(self, cookie: str) -> str:
        """Flask-WTF's token for this session (the same one ``{{ csrf_token() }}`` renders)."""
        from flask_wtf.csrf import generate_csrf

        return str(generate_csrf())

    def valid(self, cookie: str | None, token: str | None) -> bool:
        """Whether Flask-WTF accepts ``token``: signed for this session's secret, within the time limit.

        Checked here too, not only by ``CSRFProtect``: a host may run it with ``WTF_CSRF_CHECK_DEFAULT``
        off and protect only some views.
        """
        from flask_wtf.csrf import validate_csrf
        from wtforms import ValidationError

        try:
            validate_csrf(token)
        except ValidationError:
            return False
        return True


_TOKENS = FlaskWtfTokens()


def flask_wtf_tokens(app: Flask) -> FlaskWtfTokens | None:
    """Flask-WTF's tokens when ``app`` runs ``CSRFProtect`` with ``WTF_CSRF_ENABLED``, else ``None``.

    With ``WTF_CSRF_ENABLED`` off Flask-WTF checks nothing, so the pages keep their own tokens rather than
    go unprotected.
    """
    protect = app.extensions.get("csrf")
    if protect is None or not app.config.get("WTF_CSRF_ENABLED", True):
        return None
    try:
        from flask_wtf.csrf import CSRFProtect
    except ImportError:  # another extension's "csrf": not Flask-WTF's, whose tokens the pages would use
        return None
    return _TOKENS if isinstance(protect, CSRFProtect) else None


def exempt_pages(app: App, blueprint: object) -> None:
    """Exempt the pages' ``blueprint`` from ``app``'s ``CSRFProtect``, if it has one.

    Only for pages given a provider of the host's own (``csrf=``): they check its token on every ``POST``
    themselves, and ``CSRFProtect`` would refuse any token but Flask-WTF's.
    """
    protect = app.extensions.get("csrf")
    if protect is None:
        return
    try:
        from flask_wtf.csrf import CSRFProtect
    except ImportError:
        return
    if isinstance(protect, CSRFProtect):
        protect.exempt(blueprint)
