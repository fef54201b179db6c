"""The pages, framework-free: a request in, a rendered response out, for both adapters.

A page is a template and an entry of :data:`PAGES` (its path, the permission to see it, what it loads and
the actions its forms post); the FastAPI router and the Flask blueprint loop over :meth:`PageSite.routes`.
Every action calls the same :class:`~tenantkit._http.Management` method as the JSON endpoint, so the
services' checks (roles, the escalation rule, the last owner) are the pages' checks too.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import IO, TYPE_CHECKING, Any, TextIO, cast, get_args

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    PrefixLoader,
    select_autoescape,
)
from sqlalchemy.orm import Session

from tenantkit._errors import (
    AuthorizationError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    RoleEscalationError,
    TenantKitError,
)
from tenantkit._http import Management, Principal, status_for
from tenantkit._pagination import Page as ResultPage
from tenantkit._routes import feature_configured, missing_configuration
from tenantkit.roles._policy import Action, Role
from tenantkit.ui._i18n import N_, SOURCE_LOCALE, Catalogs, Message, Viewer
from tenantkit.ui._security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    FLASH_COOKIE,
    PAGE_HEADERS,
    CsrfTokens,
    FlashSigner,
    SessionCsrfTokens,
    SignedDoubleSubmit,
    first,
    same_origin,
)

if TYPE_CHECKING:
    from tenantkit._kit import TenantKit

__all__ = [
    "PAGES",
    "DownloadFormat",
    "PageAction",
    "PageContext",
    "PageDefinition",
    "PageDownload",
    "PageRequest",
    "PageResponse",
    "PageRoute",
    "PageSite",
    "SetCookie",
]

_PATH_PARAMETER = re.compile(r"{(\w+)}")
_STATIC_FILES = frozenset({"tenantkit.css", "tenantkit.js", "htmx.min.js"})
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
NO_STORE = "no-store"
# A download is written whole before it is sent (an error must still answer a page, not half a file): up to
# this much in memory, the rest in a temporary file, so a large log never fills the worker's memory.
_SPOOL_MEMORY = 1024 * 1024
_CHUNK = 64 * 1024
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class PageRequest:
    """What a page needs of an HTTP request, read by the adapter."""

    method: str
    path: str
    """The request's path, mount prefix included."""
    path_values: Mapping[str, str]
    query: Mapping[str, str]
    form: Mapping[str, list[str]]
    cookies: Mapping[str, str]
    origin: str | None
    own_origin: str
    """``scheme://host`` of the request itself, what a same-origin ``Origin`` header says."""
    accept_language: str | None = None
    """The ``Accept-Language`` header: the page's language when the principal names none."""
    htmx: bool = False
    """Whether htmx sent it (``HX-Request: true``): the answer is swapped into the page, not loaded."""

    @property
    def secure(self) -> bool:
        return self.own_origin.startswith("https://")


@dataclass(frozen=True)
class SetCookie:
    name: str
    value: str
    path: str
    secure: bool
    max_age: int | None = None


@dataclass
class PageResponse:
    """A rendered answer: the adapter copies it onto its framework's response."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[SetCookie] = field(default_factory=list)
    commit: bool = False
    """Whether the work changed state: the adapter commits before answering."""
    file: IO[bytes] | None = None
    """A download's body, sent instead of ``body``: a file at its start, streamed by :meth:`chunks`."""

    def chunks(self) -> Iterator[bytes]:
        """The body in pieces, what both adapters stream: ``body``, or ``file`` read in 64 KiB chunks and
        closed once read (or once the client went away)."""
        if self.file is None:
            yield self.body
            return
        try:
            while chunk := self.file.read(_CHUNK):
                yield chunk
        finally:
            self.file.close()


@dataclass(frozen=True)
class PageAction:
    """One form of a page: ``POST <page path>/<name>``, calling the service with the viewer as actor."""

    name: str
    call: Callable[[PageContext, Mapping[str, list[str]]], Any]
    done: Callable[[Any], Message | str]
    """The one-line result announced on the next page (never a secret): a :class:`Message`, translated
    when shown (``Message(N_("Key '%(name)s' issued."), name=...)``); a plain string is shown as it is
    unless a catalog translates it."""
    reveals: bool = False
    """The result holds a secret: shown once in this response (``no-store``), never redirected or flashed."""
    confirm: str | None = None
    """A destructive action: the question of its confirmation step (a second form, no JavaScript needed),
    in English, marked with :func:`~tenantkit.ui.N_` and translated when shown."""
    target: str | None = None
    """The form field naming the row acted on: its errors show in that row."""
    field: str = "form"
    """Where an error naming no field of its own is shown."""
    error_fields: tuple[tuple[str, str], ...] = ()
    """Error codes shown next to a field of their own (``("permission_escalation", "permissions")``)."""


@dataclass(frozen=True)
class DownloadFormat:
    """One format a download offers: its ``format=`` value, content type and file extension."""

    name: str
    content_type: str
    extension: str


@dataclass(frozen=True)
class PageDownload:
    """A file of a page: ``GET <page path>/<name>?format=...``, with the page's permission.

    ``write`` writes the file (text, UTF-8) in the request's session; it is spooled (in memory up to 1 MiB,
    then on disk), so a refusal still answers the page, and the adapter streams it as an attachment, never
    cached.
    """

    name: str
    write: Callable[[PageContext, TextIO, str], Any]
    """Called with the format's name; raises a :class:`~tenantkit.errors.TenantKitError` to refuse."""
    filename: Callable[[PageContext], str]
    """The file's name without its extension (any character but letters, digits, ``.``, ``_`` and ``-``
    becomes ``_``)."""
    formats: tuple[DownloadFormat, ...]
    """The first is the default."""


@dataclass(frozen=True)
class PageDefinition:
    """One page: a template, what it loads, and its actions."""

    name: str
    path: str
    title: str
    """In English, marked with :func:`~tenantkit.ui.N_`: translated when shown."""
    template: str
    load: Callable[[PageContext], dict[str, Any]]
    actions: tuple[PageAction, ...] = ()
    permission: Action | str | None = None
    """The permission a viewer needs to see the page (an :class:`~tenantkit.Action` or a name of the host's
    permission registry); ``None``: every signed-in user."""
    organization: bool = True
    """Whether the page belongs to an organization (shown in the organization's navigation)."""
    feature: str | None = None
    """The kit feature the page needs (``webhooks``): left out, like its routes, when the kit lacks it."""
    navigation: bool = True
    """Whether the organization's navigation links to it (not a page of one row, such as deliveries)."""
    part_of: str | None = None
    """The page this one belongs to: mounted whenever that one is (``include=``)."""
    downloads: tuple[PageDownload, ...] = ()
    """Its files (a ``GET`` each, no state changed), such as the audit log's export."""

    def action(self, name: str) -> PageAction:
        return next(action for action in self.actions if action.name == name)


@dataclass(frozen=True)
class PageRoute:
    """One URL the adapters mount: a page's view, one of its actions or downloads, or a static file."""

    method: str
    path: str
    name: str
    page: PageDefinition | None
    action: PageAction | None = None
    download: PageDownload | None = None

    @property
    def signed_in(self) -> bool:
        return self.page is not None

    def path_as(self, placeholder: str) -> str:
        return _PATH_PARAMETER.sub(lambda match: placeholder.format(match.group(1)), self.path)


@dataclass
class PageContext:
    """One request to a page: what its loader and its actions work with (a page of your own's too).

    ``session`` is the host's session of the request, ``principal`` the signed-in viewer; :meth:`can` says
    whether the viewer holds a permission in the page's organization, :meth:`url` builds a page's URL, and
    :meth:`gettext` translates a text or :class:`~tenantkit.ui.Message` into the viewer's language.
    """

    site: PageSite
    session: Session
    principal: Principal
    request: PageRequest
    page: PageDefinition
    prefix: str
    viewer: Viewer
    """The viewer's language and time zone."""
    csrf: CsrfTokens
    """The request's CSRF provider: the site's, or the one its adapter chose (Flask-WTF's on Flask)."""
    _can: dict[str, bool] = field(default_factory=dict)

    @property
    def csrf_field(self) -> str:
        """The form field of the CSRF token: a session-based provider's own, else ``csrf_token``."""
        return self.csrf.form_field() if isinstance(self.csrf, SessionCsrfTokens) else CSRF_FIELD

    def gettext(self, text: Message | str) -> str:
        """``text`` in the viewer's language."""
        return self.viewer.gettext(text)

    @property
    def management(self) -> Management:
        return self.site.management

    @property
    def kit(self) -> TenantKit:
        return self.site.kit

    @property
    def organization_id(self) -> str:
        return self.request.path_values.get("organization_id", "")

    def can(self, action: Action | str) -> bool:
        """Whether the viewer holds ``action`` here: it decides which forms are shown (the service still
        checks every one of them)."""
        name = str(action)
        if name not in self._can:
            try:
                self.kit.members.authorize_role(
                    self.session, self.organization_id, self.principal.user_id, name
                )
                self._can[name] = True
            except (AuthorizationError, NotFoundError):
                self._can[name] = False
        return self._can[name]

    def url(self, page: str, **values: str) -> str:
        """The URL of page ``page`` under the mount prefix (``organization_id`` defaults to this one)."""
        target = self.site.page(page)
        filled = {**self.request.path_values, "organization_id": self.organization_id, **values}
        return self.prefix + _PATH_PARAMETER.sub(lambda match: filled[match.group(1)], target.path)

    def action_url(self, name: str) -> str:
        return f"{self.url(self.page.name)}/{name}"

    def download_url(self, name: str, query: Mapping[str, str]) -> str:
        """The URL of this page's download ``name`` with ``query`` (its format, the page's filters)."""
        return f"{self.action_url(name)}?{urllib.parse.urlencode(query)}"


class PageSite:
    """The pages of one kit: templates, CSRF, and the request handling both adapters share.

    Args:
        kit: The kit whose services the pages call.
        secret_key: Signs the CSRF tokens and the result messages (at least 16 characters).
        templates: Directories searched before the package's own templates, to override any of them
            (``tenantkit/base.html`` wraps every page).
        include: The pages to mount, by name (all of :data:`PAGES` by default).
        csrf: Another CSRF token provider (see :class:`~tenantkit.ui.CsrfTokens`).
        translations: Directories of catalogs (``<locale>/LC_MESSAGES/tenantkit.po``), read at start-up,
            whose translations win over the package's.
        time_zone: The IANA zone dates are shown in for viewers whose ``Principal.time_zone`` is unset.
        extra_pages: Pages of the host's own, mounted and listed in the navigation beside tenantkit's,
            with the same sign-in, CSRF, confirmation steps, translations and templates (their templates
            live in a ``templates`` directory); a name or a path already taken raises
            :class:`~tenantkit.errors.ConfigurationError`.
    """

    def __init__(
        self,
        kit: TenantKit,
        *,
        secret_key: str | bytes,
        templates: Sequence[str] = (),
        include: Iterable[str] | None = None,
        csrf: CsrfTokens | None = None,
        translations: Sequence[str | os.PathLike[str]] = (),
        time_zone: str = "UTC",
        extra_pages: Sequence[PageDefinition] = (),
    ) -> None:
        self.kit = kit
        self.management: Management = Management(kit)
        self.csrf: CsrfTokens = csrf if csrf is not None else SignedDoubleSubmit(secret_key)
        self._flash = FlashSigner(secret_key)
        self.pages: tuple[PageDefinition, ...] = (*select_pages(include, kit), *_own_pages(extra_pages))
        self.catalogs: Catalogs = Catalogs(translations, time_zone=time_zone)
        package = PackageLoader("tenantkit.ui", "templates")
        # The package's templates answer their own names after the host's, and also under
        # "tenantkit-default/": a host's tenantkit/macros.html imports the defaults it keeps from there.
        loader = ChoiceLoader(
            [FileSystemLoader(list(templates)), package, PrefixLoader({"tenantkit-default": package})]
        )
        # One environment per language: Jinja2's gettext is an environment global, so requests in different
        # languages never share one (the templates are compiled once per language).
        self._environments: dict[str, Environment] = {}
        for locale in self.catalogs.locales:
            environment = Environment(
                loader=loader,
                autoescape=select_autoescape(default=True, default_for_string=True),
                extensions=["jinja2.ext.i18n"],
            )
            # install_gettext_translations is added by the i18n extension, unknown to the type checker.
            environment.install_gettext_translations(  # type: ignore[attr-defined]
                self.catalogs.translations(locale), newstyle=True
            )
            self._environments[locale] = environment
        self.environment: Environment = self._environments[SOURCE_LOCALE]  # English, for a host's own use

    def page(self, name: str) -> PageDefinition:
        for page in self.pages:
            if page.name == name:
                return page
        raise KeyError(name)

    def routes(self) -> list[PageRoute]:
        """Every URL to mount: each page's ``GET``, each action's ``POST``, each download's ``GET``, and the
        static files."""
        routes = [PageRoute("GET", "/static/{filename}", "static", None)]
        for page in self.pages:
            routes.append(PageRoute("GET", page.path, page.name, page))
            for download in page.downloads:
                path = f"{page.path}/{download.name}"
                routes.append(PageRoute("GET", path, f"{page.name}.{download.name}", page, download=download))
            for action in page.actions:
                path = f"{page.path}/{action.name}"
                routes.append(PageRoute("POST", path, f"{page.name}.{action.name}", page, action))
        return routes

    # -- handling ----------------------------------------------------------------------------------------

    def static(self, filename: str) -> PageResponse:
        """A file of the package's ``static`` directory (the stylesheet and the copy button's script)."""
        if filename not in _STATIC_FILES:
            return PageResponse(404, b"not found", "text/plain; charset=utf-8")
        data = resources.files("tenantkit.ui").joinpath("static").joinpath(filename).read_bytes()
        suffix = filename[filename.rindex(".") :]
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return PageResponse(200, data, _STATIC_TYPES[suffix], headers)

    def handle(
        self,
        session: Session,
        route: PageRoute,
        request: PageRequest,
        principal: Principal | None,
        *,
        csrf: CsrfTokens | None = None,
    ) -> PageResponse:
        """Answer ``request`` to ``route``: render a page, or check and run one of its actions.

        ``csrf``: the provider for this request instead of the site's (the Flask adapter's, when Flask-WTF's
        ``CSRFProtect`` guards the app).
        """
        if route.page is None:
            return self.static(request.path_values.get("filename", ""))
        assert principal is not None  # noqa: S101  narrowing: every page is signed in (PageRoute.signed_in)
        viewer = self.catalogs.viewer(principal, request.accept_language)
        tokens = csrf if csrf is not None else self.csrf
        context = PageContext(
            self, session, principal, request, route.page, _prefix(route, request), viewer, tokens
        )
        cookies: list[SetCookie] = []
        # A session-based provider keeps its secret in the host's session, so the pages need no cookie of
        # their own: "" stands for it (None means "no form", as on a refusal).
        session_based = isinstance(tokens, SessionCsrfTokens)
        csrf_cookie = "" if session_based else request.cookies.get(CSRF_COOKIE)
        if route.action is None:
            if csrf_cookie is None or (not session_based and not 0 < len(csrf_cookie) <= 200):
                csrf_cookie = tokens.new_cookie()
                cookies.append(SetCookie(CSRF_COOKIE, csrf_cookie, context.prefix or "/", request.secure))
            if route.download is not None:
                # A download leaves the result message for the page the browser still shows.
                response = self._download(context, route.download, csrf_cookie)
            else:
                flash = Message.from_data(self._flash.loads(request.cookies.get(FLASH_COOKIE)))
                if FLASH_COOKIE in request.cookies:
                    cookies.append(
                        SetCookie(FLASH_COOKIE, "", context.prefix or "/", request.secure, max_age=0)
                    )
                response = self._render_page(context, csrf_cookie, flash=flash)
        else:
            response = self._act(context, route.action, csrf_cookie)
            if request.htmx and "Location" not in response.headers:
                # An action's own answer (a revealed secret, an error, a refusal) lives at the action's URL,
                # which htmx would push into history: reloading that entry would GET a POST-only URL, and for
                # a secret the URL would name the one answer holding it. The address bar keeps the page.
                response.headers["HX-Push-Url"] = "false"
        response.cookies.extend(cookies)
        return response

    def _act(self, context: PageContext, action: PageAction, csrf_cookie: str | None) -> PageResponse:
        request = context.request
        if not same_origin(request.origin, request.own_origin) or not context.csrf.valid(
            csrf_cookie or None, first(request.form, context.csrf_field)
        ):
            return self._refusal(
                context,
                403,
                Message(
                    N_(
                        "This form could not be accepted: it expired or was not sent from this site. "
                        "Reload the page and try again."
                    )
                ),
            )
        assert csrf_cookie is not None  # noqa: S101  narrowing: a valid token has a cookie
        if action.confirm is not None and first(request.form, "confirmed") != "yes":
            return self._render(
                context,
                "tenantkit/confirm.html",
                csrf_cookie,
                status=200,
                question=context.gettext(action.confirm),
                fields={k: v[0] for k, v in request.form.items() if k != context.csrf_field and v},
                confirm_url=context.action_url(action.name),
            )
        try:
            result = action.call(context, request.form)
        except TenantKitError as error:
            context.session.rollback()
            context._can.clear()
            key = _error_key(action, request.form, error)
            return self._render_page(
                context,
                csrf_cookie,
                status=status_for(error),
                # The service's words stay English; a reason the pages themselves give is translated.
                errors={
                    key: error.message
                    if not isinstance(error, InvalidInputError)
                    else context.gettext(error.reason)
                },
                error=f"{_sentence(error)}",
                values={k: v[0] for k, v in request.form.items() if k != context.csrf_field and v},
                failed=action.name,
            )
        if action.reveals:
            context._can.clear()
            response = self._render_page(
                context,
                csrf_cookie,
                flash=_message(action.done(result)),
                revealed={"action": action.name, "result": result},
            )
            response.commit = True
            return response
        location = self._after(context, result)
        cookie = SetCookie(
            FLASH_COOKIE,
            self._flash.dumps(_message(action.done(result)).as_data()),
            context.prefix or "/",
            request.secure,
        )
        return PageResponse(
            303, b"", headers={"Location": location, **dict(PAGE_HEADERS)}, cookies=[cookie], commit=True
        )

    def _after(self, context: PageContext, result: Any) -> str:
        """Where a successful action sends the browser: its page, or for an accepted invitation the team."""
        if context.page.organization:
            return context.url(context.page.name)
        names = {page.name for page in self.pages}
        if "team" in names:
            return context.url("team", organization_id=str(result.organization_id))
        return context.url(context.page.name)

    def _download(self, context: PageContext, download: PageDownload, csrf_cookie: str) -> PageResponse:
        """Write ``download`` into a spooled file and answer it as an attachment; a refusal answers the page
        (its loader shows why, as for the same filters on the page itself)."""
        refusal = self._permission_refusal(context)
        if refusal is not None:
            return refusal
        chosen = context.request.query.get("format") or download.formats[0].name
        chosen_format = next((option for option in download.formats if option.name == chosen), None)
        if chosen_format is None:
            known = ", ".join(option.name for option in download.formats)
            message = Message(N_("There is no such download format: use one of %(formats)s."), formats=known)
            return self._render_page(context, csrf_cookie, status=422, error=context.gettext(message))
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)  # noqa: SIM115  closed by chunks()
        try:
            # An unbuffered UTF-8 encoder over the spool, writing text as it is (no newline translation: the
            # CSV writer ends its rows itself). Not io.TextIOWrapper: before Python 3.11 a
            # SpooledTemporaryFile lacks the readable() that TextIOWrapper asks of its buffer.
            text = cast("TextIO", codecs.getwriter("utf-8")(spool))
            download.write(context, text, chosen_format.name)
        except TenantKitError as error:
            spool.close()
            context._can.clear()  # a refusal by the service is asked again, so the page shows it too
            shown = None if isinstance(error, InvalidInputError) else _sentence(error)
            return self._render_page(context, csrf_cookie, status=status_for(error), error=shown)
        except BaseException:
            spool.close()
            raise
        size = spool.tell()
        spool.seek(0)
        filename = _FILENAME_UNSAFE.sub("_", download.filename(context)) + "." + chosen_format.extension
        headers = dict(PAGE_HEADERS)
        headers["Cache-Control"] = NO_STORE  # the organization's log: no cache keeps a copy
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        headers["Content-Length"] = str(size)
        return PageResponse(200, b"", chosen_format.content_type, headers, file=spool)

    def _permission_refusal(self, context: PageContext) -> PageResponse | None:
        """The refusal of a viewer without the page's permission, or ``None`` when the viewer holds it."""
        page = context.page
        if page.permission is None or context.can(page.permission):
            return None
        return self._refusal(
            context,
            403,
            Message(
                N_(
                    "You may not see this page in organization '%(organization)s': "
                    "it needs the permission %(permission)s."
                ),
                organization=context.organization_id,
                permission=str(page.permission),
            ),
        )

    def _render_page(
        self, context: PageContext, csrf_cookie: str, *, status: int = 200, **values: Any
    ) -> PageResponse:
        refusal = self._permission_refusal(context)
        if refusal is not None:
            return refusal
        loaded = context.page.load(context)
        # A loader may report errors of its own (a filter the service refused) beside an action's.
        values["errors"] = {**loaded.pop("errors", {}), **values.get("errors", {})}
        return self._render(context, context.page.template, csrf_cookie, status=status, **loaded, **values)

    def _refusal(self, context: PageContext, status: int, message: Message) -> PageResponse:
        return self._render(
            context, "tenantkit/refused.html", None, status=status, message=context.gettext(message)
        )

    def _render(
        self, context: PageContext, template: str, csrf_cookie: str | None, *, status: int, **values: Any
    ) -> PageResponse:
        viewer = context.viewer
        navigation = [
            (viewer.gettext(page.title), context.url(page.name), page.name == context.page.name)
            for page in self.pages
            if page.organization
            and page.navigation
            and context.organization_id
            and (page.permission is None or context.can(page.permission))
        ]
        flash = values.pop("flash", None)
        body = (
            self._environments[viewer.locale]
            .get_template(template)
            .render(
                page=context.page,
                title=viewer.gettext(context.page.title),
                lang=viewer.lang,
                local_time=viewer.format_datetime,
                prefix=context.prefix,
                own_origin=context.request.own_origin,
                viewer=context.principal,
                organization_id=context.organization_id,
                navigation=navigation,
                csrf_field=context.csrf_field,
                csrf_token="" if csrf_cookie is None else context.csrf.token_for(csrf_cookie),
                can=context.can,
                url=context.url,
                action_url=context.action_url,
                errors=values.pop("errors", {}),
                values=values.pop("values", {}),
                flash=None if flash is None else viewer.gettext(flash),
                error=values.pop("error", None),
                **values,
            )
        )
        headers = dict(PAGE_HEADERS)
        # Pages show who belongs to an organization, and a revealed secret: no cache keeps any of them.
        headers["Cache-Control"] = NO_STORE
        return PageResponse(status, body.encode(), headers=headers)


def _prefix(route: PageRoute, request: PageRequest) -> str:
    """The mount prefix: the request's path less the route's path with its values filled in."""
    filled = _PATH_PARAMETER.sub(lambda match: request.path_values.get(match.group(1), ""), route.path)
    if request.path.endswith(filled):
        return request.path[: len(request.path) - len(filled)]
    return ""


def _error_key(action: PageAction, form: Mapping[str, list[str]], error: TenantKitError) -> str:
    """Where on the page an action's error shows: the row it acted on, else its field."""
    if action.target is not None:
        target = first(form, action.target)
        if target:
            return f"{action.name}:{target}"
    for code, name in action.error_fields:
        if error.code == code:
            return f"{action.name}:{name}"
    if isinstance(error, InvalidInputError):
        return f"{action.name}:{error.field}"
    if isinstance(error, RoleEscalationError):
        return f"{action.name}:role"
    return f"{action.name}:{action.field}"


def _message(text: Message | str) -> Message:
    return text if isinstance(text, Message) else Message(text)


def _sentence(error: TenantKitError) -> str:
    message = error.message
    return message[:1].upper() + message[1:] if message else error.code


def select_pages(include: Iterable[str] | None, kit: TenantKit | None = None) -> tuple[PageDefinition, ...]:
    """The pages named in ``include`` (all by default, less those of a feature ``kit`` is not configured
    for, as the routes do); naming such a page raises :class:`~tenantkit.errors.ConfigurationError`."""

    def available(page: PageDefinition) -> bool:
        return kit is None or page.feature is None or feature_configured(kit, page.feature)

    if include is None:
        return tuple(page for page in PAGES if available(page))
    if isinstance(include, str):
        raise TypeError("include: a list of page names, not a string")
    names = list(include)
    known = {page.name for page in PAGES}
    unknown = sorted(set(names) - known)
    if unknown or not names:
        raise ValueError(f"include: unknown or no page(s) {unknown}; the pages are {sorted(known)}")
    for page in PAGES:
        if page.name in names and not available(page):
            assert page.feature is not None  # noqa: S101  narrowing: only a feature's page is unavailable
            raise ConfigurationError(
                f"include: the kit is not configured for {page.feature} (page {page.name!r}): "
                f"{missing_configuration(page.feature)}"
            )
    # The accept page is always there: every invitation link lands on it.
    return tuple(
        page
        for page in PAGES
        if page.name in names or page.name == "accept" or (page.part_of is not None and page.part_of in names)
    )


def _own_pages(pages: Sequence[PageDefinition]) -> tuple[PageDefinition, ...]:
    """The host's pages, checked against tenantkit's and each other: a page's name and every URL it mounts
    are its own (a second page under a taken name or path would shadow one of them in one adapter only)."""
    if isinstance(pages, PageDefinition):
        raise TypeError("extra_pages: a list of PageDefinition, not one")
    names = {page.name for page in PAGES}
    paths = {route_path for page in PAGES for route_path in _mounted_paths(page)}
    for page in pages:
        if not isinstance(page, PageDefinition):
            raise TypeError(f"extra_pages: {page!r} is not a PageDefinition")
        if not page.path.startswith("/"):
            raise ConfigurationError(f"extra_pages: the path of page {page.name!r} must start with '/'")
        if page.name in names:
            raise ConfigurationError(f"extra_pages: the page name {page.name!r} is taken")
        taken = sorted(set(_mounted_paths(page)) & paths)
        if taken:
            raise ConfigurationError(
                f"extra_pages: page {page.name!r} would mount {taken[0]!r}, already taken"
            )
        names.add(page.name)
        paths.update(_mounted_paths(page))
    return tuple(pages)


def _mounted_paths(page: PageDefinition) -> list[str]:
    """The URLs ``page`` mounts (its view, each action's and each download's), path parameters made alike."""
    parts = [action.name for action in page.actions] + [download.name for download in page.downloads]
    paths = [page.path, *(f"{page.path}/{name}" for name in parts)]
    return [_PATH_PARAMETER.sub("{}", path) for path in paths]


# -- form reading -----------------------------------------------------------------------------------------


def _text(form: Mapping[str, list[str]], name: str) -> str | None:
    value = first(form, name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _required(form: Mapping[str, list[str]], name: str) -> str:
    value = _text(form, name)
    if value is None:
        raise InvalidInputError(name, N_("is required"))
    return value


def _number(form: Mapping[str, list[str]], name: str, *, unit: int = 1) -> int | None:
    value = _text(form, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise InvalidInputError(name, N_("must be a whole number")) from None
    if number <= 0:
        raise InvalidInputError(name, N_("must be more than 0"))
    return number * unit


def _words(form: Mapping[str, list[str]], name: str) -> list[str]:
    value = _text(form, name) or ""
    return [word for word in re.split(r"[\s,]+", value) if word]


def _body(model: type[Any], **values: Any) -> Any:
    """Build a request model, a validation error becoming the :class:`InvalidInputError` of its field."""
    from pydantic import ValidationError

    from tenantkit._http import validation_error

    try:
        return model(**values)
    except ValidationError as error:
        raise validation_error(error.errors()) from None


# -- the pages --------------------------------------------------------------------------------------------


_RANK_NAMES = {Role.OWNER: N_("Owner"), Role.ADMIN: N_("Admin"), Role.MEMBER: N_("Member")}


def _role_choices(context: PageContext) -> list[tuple[str, str]]:
    """The roles a form offers: the ranks, then the organization's custom roles."""
    choices = [(role.value, context.gettext(_RANK_NAMES[role])) for role in Role]
    try:
        custom = context.management.list_roles(context.session, context.organization_id, context.principal)
        choices += [
            (role.key, f"{role.name} ({context.gettext(_RANK_NAMES[role.rank])})") for role in custom.items
        ]
    except (AuthorizationError, NotFoundError):
        pass
    return choices


def _load_team(context: PageContext) -> dict[str, Any]:
    members: ResultPage[Any] = context.management.list_members(
        context.session,
        context.organization_id,
        context.principal,
        limit=100,
        cursor=context.request.query.get("cursor"),
    )
    viewer_role = context.kit.members.get_role(
        context.session, context.organization_id, context.principal.user_id
    )
    return {"members": members, "roles": _role_choices(context), "viewer_role": viewer_role}


def _invite(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import CreateInvitationRequest

    kind = first(form, "kind") or "email"
    body = _body(
        CreateInvitationRequest,
        email=_required(form, "email") if kind == "email" else None,
        allowed_domains=(_words(form, "allowed_domains") or None) if kind == "link" else None,
        role=_text(form, "role"),
        expires_in_seconds=_number(form, "expires_in_days", unit=86400),
    )
    if kind == "link" and body.allowed_domains is None:
        raise InvalidInputError("allowed_domains", N_("name at least one email domain the link admits"))
    return context.management.create_invitation(
        context.session, context.organization_id, context.principal, body
    )


def _change_role(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import ChangeRoleRequest

    body = _body(ChangeRoleRequest, role=_required(form, "role"))
    return context.management.change_role(
        context.session, context.organization_id, context.principal, _required(form, "user_id"), body
    )


def _remove(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.remove_member(
        context.session, context.organization_id, context.principal, _required(form, "user_id")
    )


def _leave(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.leave(context.session, context.organization_id, context.principal)


def _transfer(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import TransferOwnershipRequest

    body = _body(
        TransferOwnershipRequest,
        to_user_id=_required(form, "to_user_id"),
        demote_to=_text(form, "demote_to") or Role.ADMIN.value,
    )
    return context.management.transfer_ownership(
        context.session, context.organization_id, context.principal, body
    )


def _load_invitations(context: PageContext) -> dict[str, Any]:
    invitations = context.management.list_invitations(
        context.session,
        context.organization_id,
        context.principal,
        limit=100,
        cursor=context.request.query.get("cursor"),
    )
    return {"invitations": invitations}


def _revoke_invitation(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.revoke_invitation(
        context.session, context.organization_id, context.principal, _required(form, "invitation_id")
    )


def _resend_invitation(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.resend_invitation(
        context.session, context.organization_id, context.principal, _required(form, "invitation_id")
    )


def _load_api_keys(context: PageContext) -> dict[str, Any]:
    keys = context.management.list_api_keys(
        context.session,
        context.organization_id,
        context.principal,
        limit=100,
        cursor=context.request.query.get("cursor"),
        subject_type=None,
        subject_id=None,
    )
    return {"keys": keys}


def _issue_key(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import IssueApiKeyRequest

    body = _body(
        IssueApiKeyRequest,
        name=_required(form, "name"),
        scopes=_words(form, "scopes"),
        expires_in_seconds=_number(form, "expires_in_days", unit=86400),
    )
    return context.management.issue_api_key(context.session, context.organization_id, context.principal, body)


def _rotate_key(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import RotateApiKeyRequest

    grace = _text(form, "grace_minutes")
    body = _body(RotateApiKeyRequest, grace_seconds=None if grace is None else _minutes(grace))
    return context.management.rotate_api_key(
        context.session, context.organization_id, context.principal, _required(form, "key_id"), body
    )


def _minutes(value: str) -> int:
    try:
        minutes = int(value)
    except ValueError:
        raise InvalidInputError("grace_minutes", N_("must be a whole number of minutes")) from None
    return minutes * 60


def _revoke_key(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.revoke_api_key(
        context.session, context.organization_id, context.principal, _required(form, "key_id")
    )


_AUDIT_FILTERS = ("event_types", "since", "until")
_AUDIT_EXPORT = "export"
_AUDIT_FORMATS = (
    DownloadFormat("csv", "text/csv; charset=utf-8", "csv"),
    DownloadFormat("jsonl", "application/x-ndjson; charset=utf-8", "jsonl"),
)
_AUDIT_FORMAT_NAMES = {"csv": N_("Download CSV"), "jsonl": N_("Download JSON Lines")}


def _audit_day(context: PageContext, name: str, *, end: bool = False) -> datetime | None:
    """A date field of the audit filter (``YYYY-MM-DD``) as the instant its day starts in the viewer's time
    zone; with ``end``, the next day's start (the day itself included)."""
    value = (context.request.query.get(name) or "").strip()
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(name, N_("must be a date (YYYY-MM-DD)")) from None
    if end:
        if day == date.max:
            return None
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=context.viewer.time_zone)


def _audit_filters(context: PageContext) -> dict[str, Any]:
    """The audit page's filters from its query string: what the list and the export are both given, so
    they always keep the same rows."""
    return {
        "event_types": (context.request.query.get("event_types") or "").strip() or None,
        "since": _audit_day(context, "since"),
        "until": _audit_day(context, "until", end=True),
    }


def _load_audit(context: PageContext) -> dict[str, Any]:
    query = context.request.query
    shown = {name: (query.get(name) or "").strip() for name in _AUDIT_FILTERS}
    kept = {name: value for name, value in shown.items() if value}
    try:
        events: ResultPage[Any] | None = context.management.list_audit_events(
            context.session,
            context.organization_id,
            context.principal,
            limit=50,
            cursor=query.get("cursor") or None,
            actor_kind=None,
            actor_id=None,
            target_type=None,
            target_id=None,
            **_audit_filters(context),
        )
        errors = {}
    except InvalidInputError as error:
        events = None
        where = error.field if error.field in _AUDIT_FILTERS else "form"
        errors = {f"filter:{where}": context.gettext(error.reason)}
    downloads = [
        (
            context.gettext(_AUDIT_FORMAT_NAMES[option.name]),
            context.download_url(_AUDIT_EXPORT, {**kept, "format": option.name}),
        )
        for option in _AUDIT_FORMATS
    ]
    return {
        "events": events,
        "filters": shown,
        "filter_query": urllib.parse.urlencode(kept),
        "downloads": downloads if events is not None else [],
        "errors": errors,
    }


def _export_audit(context: PageContext, out: TextIO, export_format: str) -> int:
    return context.management.export_audit_events(
        context.session,
        context.organization_id,
        context.principal,
        out,
        "csv" if export_format == "csv" else "jsonl",
        **_audit_filters(context),
    )


def _load_accept(context: PageContext) -> dict[str, Any]:
    """The invitation a link names: what it offers, or in words why it no longer works."""
    token = (context.request.query.get("token") or first(context.request.form, "token") or "").strip()
    if not token:
        return {
            "token": "",
            "preview": None,
            "problem": context.gettext(N_("This link has no invitation in it.")),
        }
    try:
        preview = context.kit.invitations.preview(context.session, token)
    except TenantKitError as error:
        return {"token": token, "preview": None, "problem": _sentence(error)}
    email = (context.principal.email or "").lower()
    other_address = preview.kind == "email" and (preview.email or "").lower() != email
    member = context.kit.members.get_role(context.session, preview.organization_id, context.principal.user_id)
    return {
        "token": token,
        "preview": preview,
        "problem": None,
        "other_address": other_address,
        "already_member": member is not None,
    }


def _accept(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import TokenRequest

    body = _body(TokenRequest, token=_required(form, "token"))
    return context.management.accept_invitation(context.session, context.principal, body)


def _joined(result: Any) -> Message:
    if result.already_member:
        return Message(
            N_("You were already a member of %(organization)s."), organization=result.organization_id
        )
    return Message(
        N_("You joined %(organization)s as %(role)s."),
        organization=result.organization_id,
        role=result.role.value,
    )


def _load_roles(context: PageContext) -> dict[str, Any]:
    roles = context.management.list_roles(context.session, context.organization_id, context.principal)
    return {
        "custom_roles": roles.items,
        "roles": _role_choices(context),
        "ranks": [(rank.value, context.gettext(_RANK_NAMES[rank])) for rank in (Role.MEMBER, Role.ADMIN)],
    }


def _create_role(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import CreateRoleRequest

    body = _body(
        CreateRoleRequest,
        key=_required(form, "key"),
        name=_required(form, "name"),
        rank=_text(form, "rank") or Role.MEMBER.value,
        permissions=_words(form, "permissions"),
        description=_text(form, "description") or "",
    )
    return context.management.create_role(context.session, context.organization_id, context.principal, body)


def _update_role(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import UpdateRoleRequest

    body = _body(
        UpdateRoleRequest,
        name=_text(form, "name"),
        description=first(form, "description"),
        permissions=_words(form, "permissions"),
    )
    return context.management.update_role(
        context.session, context.organization_id, context.principal, _required(form, "key"), body
    )


def _delete_role(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.delete_role(
        context.session,
        context.organization_id,
        context.principal,
        _required(form, "key"),
        _text(form, "reassign_to"),
    )


def _role_deleted(deleted: Any) -> Message:
    if deleted.reassigned_members:
        return Message(
            N_("Role '%(key)s' was deleted; %(count)s member(s) moved."),
            key=deleted.key,
            count=deleted.reassigned_members,
        )
    return Message(N_("Role '%(key)s' was deleted."), key=deleted.key)


def _shown_setting(value: Any) -> str:
    """A setting's value as its form field shows it: text as it is, anything else as JSON, none as empty."""
    import json

    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _read_setting(text: str) -> Any:
    """A field's text back to a value: JSON when it parses, else the text itself."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _load_settings(context: PageContext) -> dict[str, Any]:
    snapshot = context.management.get_settings(context.session, context.organization_id, context.principal)
    document = snapshot.document.model_dump(mode="json")
    fields = type(snapshot.document).model_fields
    settings = [
        {
            "key": key,
            "shown": _shown_setting(value),
            "explicit": key in snapshot.explicit_keys,
            "description": (fields[key].description or "") if key in fields else "",
        }
        for key, value in document.items()
    ]
    return {"snapshot": snapshot, "settings": settings}


def _update_settings(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    """Write the fields changed since the form was shown (``shown.<key>``), against the version it showed:
    a newer version is refused by the service (``settings_version_conflict``), nothing written."""
    from tenantkit._http import UpdateSettingsRequest

    changes: dict[str, Any] = {}
    unset: list[str] = []
    for name in form:
        if not name.startswith("setting."):
            continue
        key = name.removeprefix("setting.")
        submitted = (first(form, name) or "").strip()
        if submitted == (first(form, f"shown.{key}") or "").strip():
            continue
        if submitted:
            changes[key] = _read_setting(submitted)
        else:
            unset.append(key)
    version = _text(form, "expected_version")
    if version is None or not version.isdigit():
        raise InvalidInputError("expected_version", N_("is missing: reload the page and try again"))
    body = _body(UpdateSettingsRequest, expected_version=int(version), changes=changes, unset=unset)
    return context.management.update_settings(
        context.session, context.organization_id, context.principal, body
    )


def _load_webhooks(context: PageContext) -> dict[str, Any]:
    endpoints = context.management.list_webhook_endpoints(
        context.session,
        context.organization_id,
        context.principal,
        limit=100,
        cursor=context.request.query.get("cursor") or None,
    )
    return {"endpoints": endpoints}


def _create_webhook(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import CreateWebhookEndpointRequest

    body = _body(
        CreateWebhookEndpointRequest,
        url=_required(form, "url"),
        event_types=_words(form, "event_types"),
        description=_text(form, "description"),
    )
    return context.management.create_webhook_endpoint(
        context.session, context.organization_id, context.principal, body
    )


def _rotate_webhook(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import RotateWebhookSecretRequest

    grace = _text(form, "grace_minutes")
    body = _body(RotateWebhookSecretRequest, grace_seconds=None if grace is None else _minutes(grace))
    return context.management.rotate_webhook_secret(
        context.session, context.organization_id, context.principal, _required(form, "endpoint_id"), body
    )


def _load_deliveries(context: PageContext) -> dict[str, Any]:
    endpoint_id = context.request.path_values.get("endpoint_id", "")
    endpoint = context.management.get_webhook_endpoint(
        context.session, context.organization_id, context.principal, endpoint_id
    )
    deliveries = context.management.list_webhook_deliveries(
        context.session,
        context.organization_id,
        context.principal,
        endpoint_id,
        limit=50,
        cursor=context.request.query.get("cursor") or None,
    )
    return {"endpoint": endpoint, "deliveries": deliveries}


def _resend(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.resend_webhook_message(
        context.session, context.organization_id, context.principal, _required(form, "message_id")
    )


def _on_row(
    call: Callable[[Management, Session, str, Principal, str], Any], field: str
) -> Callable[[PageContext, Mapping[str, list[str]]], Any]:
    """An action on the one row the form's ``field`` names (``endpoint_id``, ``connection_id``): the
    Management method ``call`` with that id, the viewer as actor."""

    def act(context: PageContext, form: Mapping[str, list[str]]) -> Any:
        return call(
            context.management,
            context.session,
            context.organization_id,
            context.principal,
            _required(form, field),
        )

    return act


def _update_webhook(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    """Save an endpoint's edit form: every field as the form shows it (an emptied description clears it)."""
    from tenantkit._http import UpdateWebhookEndpointRequest

    body = _body(
        UpdateWebhookEndpointRequest,
        url=_required(form, "url"),
        event_types=_words(form, "event_types"),
        description=first(form, "description"),
    )
    return context.management.update_webhook_endpoint(
        context.session, context.organization_id, context.principal, _required(form, "endpoint_id"), body
    )


def _load_domains(context: PageContext) -> dict[str, Any]:
    domains = context.management.list_domains(context.session, context.organization_id, context.principal)
    connections = None
    if context.can(Action.MANAGE_SSO):
        connections = context.management.list_sso_connections(
            context.session, context.organization_id, context.principal
        ).items
    return {"domains": domains.items, "connections": connections, **_sso_choices(context)}


def _add_domain(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import AddDomainRequest

    body = _body(AddDomainRequest, domain=_required(form, "domain"))
    return context.management.add_domain(context.session, context.organization_id, context.principal, body)


def _verify_domain(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.verify_domain(
        context.session, context.organization_id, context.principal, _required(form, "domain")
    )


def _remove_domain(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    return context.management.remove_domain(
        context.session, context.organization_id, context.principal, _required(form, "domain")
    )


def _verified(domain: Any) -> Message:
    return Message(N_("%(domain)s is verified."), domain=domain.domain)


_PROVIDER_NAMES = {"polis": "Ory Polis", "workos": "WorkOS", "auth0": "Auth0", "clerk": "Clerk"}
_ROLE_AUTHORITIES = {
    "tenantkit": N_("This organization (roles are changed here)"),
    "provider": N_("The provider (roles follow its groups)"),
}


def _sso_choices(context: PageContext) -> dict[str, list[tuple[str, str]]]:
    """What the connection forms offer, from the literals the request models use (a new provider shows up)."""
    from tenantkit.sso._service import Provider, RoleAuthority, SsoProtocol

    return {
        "sso_providers": [(name, _PROVIDER_NAMES.get(name, name.title())) for name in get_args(Provider)],
        "sso_protocols": [(name, name.upper()) for name in get_args(SsoProtocol)],
        "sso_authorities": [
            (name, context.gettext(_ROLE_AUTHORITIES.get(name, name))) for name in get_args(RoleAuthority)
        ],
        # JIT never makes an OWNER (the service refuses it): the form does not offer it.
        "sso_ranks": [(rank.value, context.gettext(_RANK_NAMES[rank])) for rank in (Role.MEMBER, Role.ADMIN)],
    }


def _flag(form: Mapping[str, list[str]], name: str) -> bool:
    """A checkbox: ticked sends ``yes``, unticked sends nothing (so the form always shows every flag)."""
    return first(form, name) == "yes"


def _create_sso(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    from tenantkit._http import CreateSsoConnectionRequest

    body = _body(
        CreateSsoConnectionRequest,
        provider=_required(form, "provider"),
        protocol=_required(form, "protocol"),
        provider_connection_id=_required(form, "provider_connection_id"),
        name=_required(form, "name"),
        enabled=_flag(form, "enabled"),
        enforce=_flag(form, "enforce"),
        jit=_flag(form, "jit"),
        default_role=_text(form, "default_role") or Role.MEMBER.value,
        role_authority=_text(form, "role_authority") or "tenantkit",
    )
    return context.management.create_sso_connection(
        context.session, context.organization_id, context.principal, body
    )


def _update_sso(context: PageContext, form: Mapping[str, list[str]]) -> Any:
    """Save a connection's edit form: every field as the form shows it, an unticked box turning it off."""
    from tenantkit._http import UpdateSsoConnectionRequest

    body = _body(
        UpdateSsoConnectionRequest,
        name=_required(form, "name"),
        enabled=_flag(form, "enabled"),
        enforce=_flag(form, "enforce"),
        jit=_flag(form, "jit"),
        default_role=_required(form, "default_role"),
        role_authority=_required(form, "role_authority"),
    )
    return context.management.update_sso_connection(
        context.session, context.organization_id, context.principal, _required(form, "connection_id"), body
    )


PAGES: tuple[PageDefinition, ...] = (
    PageDefinition(
        name="team",
        path="/organizations/{organization_id}/team",
        title=N_("Team"),
        template="tenantkit/team.html",
        load=_load_team,
        permission=Action.READ_MEMBERS,
        actions=(
            PageAction(
                "invite",
                _invite,
                lambda created: Message(N_("Invitation created.")),
                reveals=True,
                field="email",
            ),
            PageAction(
                "change-role",
                _change_role,
                lambda m: Message(
                    N_("%(user)s is now %(role)s."), user=m.user_id, role=m.custom_role or m.role.value
                ),
                target="user_id",
            ),
            PageAction(
                "remove",
                _remove,
                lambda m: Message(N_("%(user)s was removed."), user=m.user_id),
                confirm=N_("Remove this member from the organization?"),
                target="user_id",
            ),
            PageAction(
                "leave",
                _leave,
                lambda m: Message(N_("You left the organization.")),
                confirm=N_("Leave this organization?"),
            ),
            PageAction(
                "transfer",
                _transfer,
                lambda m: Message(N_("Ownership was transferred.")),
                confirm=N_("Transfer ownership? You step down to the role you chose."),
                field="to_user_id",
            ),
        ),
    ),
    PageDefinition(
        name="invitations",
        path="/organizations/{organization_id}/invitations",
        title=N_("Invitations"),
        template="tenantkit/invitations.html",
        load=_load_invitations,
        permission=Action.READ_INVITATIONS,
        actions=(
            PageAction(
                "revoke",
                _revoke_invitation,
                lambda invitation: Message(N_("The invitation was revoked.")),
                confirm=N_("Revoke this invitation? Its link stops working."),
                target="invitation_id",
            ),
            PageAction(
                "resend",
                _resend_invitation,
                lambda created: Message(N_("The invitation was sent again.")),
                reveals=True,
                target="invitation_id",
            ),
        ),
    ),
    PageDefinition(
        name="api-keys",
        path="/organizations/{organization_id}/api-keys",
        title=N_("API keys"),
        template="tenantkit/api_keys.html",
        load=_load_api_keys,
        permission=Action.READ_API_KEYS,
        actions=(
            PageAction(
                "issue",
                _issue_key,
                lambda issued: Message(N_("Key '%(name)s' issued."), name=issued.api_key.name),
                reveals=True,
                field="name",
            ),
            PageAction(
                "rotate",
                _rotate_key,
                lambda issued: Message(N_("Key '%(name)s' rotated."), name=issued.api_key.name),
                reveals=True,
                target="key_id",
            ),
            PageAction(
                "revoke",
                _revoke_key,
                lambda key: Message(N_("Key '%(name)s' revoked."), name=key.name),
                confirm=N_("Revoke this key? Requests using it are refused from now on."),
                target="key_id",
            ),
        ),
    ),
    PageDefinition(
        name="audit",
        path="/organizations/{organization_id}/audit",
        title=N_("Audit log"),
        template="tenantkit/audit.html",
        load=_load_audit,
        permission=Action.READ_AUDIT,
        downloads=(
            PageDownload(
                _AUDIT_EXPORT,
                _export_audit,
                lambda context: f"audit-{context.organization_id}-{context.kit.audit.clock():%Y%m%d}",
                _AUDIT_FORMATS,
            ),
        ),
    ),
    PageDefinition(
        name="roles",
        path="/organizations/{organization_id}/roles",
        title=N_("Roles"),
        template="tenantkit/roles.html",
        load=_load_roles,
        permission=Action.READ_MEMBERS,
        actions=(
            PageAction(
                "create",
                _create_role,
                lambda role: Message(N_("Role '%(key)s' created."), key=role.key),
                field="key",
                error_fields=(
                    ("permission_escalation", "permissions"),
                    ("unknown_permission", "permissions"),
                    ("role_exists", "key"),
                ),
            ),
            PageAction(
                "update",
                _update_role,
                lambda role: Message(N_("Role '%(key)s' saved."), key=role.key),
                target="key",
            ),
            PageAction(
                "delete",
                _delete_role,
                _role_deleted,
                confirm=N_("Delete this role? Its holders move to the role you chose, if any."),
                target="key",
            ),
        ),
    ),
    PageDefinition(
        name="settings",
        path="/organizations/{organization_id}/settings",
        title=N_("Settings"),
        template="tenantkit/settings.html",
        load=_load_settings,
        permission=Action.READ_SETTINGS,
        actions=(
            PageAction(
                "update",
                _update_settings,
                lambda snapshot: Message(
                    N_("Settings saved (version %(version)s)."), version=snapshot.version
                ),
                error_fields=(("settings_version_conflict", "expected_version"),),
            ),
        ),
    ),
    PageDefinition(
        name="webhooks",
        path="/organizations/{organization_id}/webhooks",
        title=N_("Webhooks"),
        template="tenantkit/webhooks.html",
        load=_load_webhooks,
        permission=Action.READ_WEBHOOKS,
        feature="webhooks",
        actions=(
            PageAction(
                "create",
                _create_webhook,
                lambda created: Message(N_("Endpoint %(url)s created."), url=created.endpoint.url),
                reveals=True,
                field="url",
            ),
            PageAction(
                "rotate",
                _rotate_webhook,
                lambda rotated: Message(
                    N_("The signing secret of %(url)s was rotated."), url=rotated.endpoint.url
                ),
                reveals=True,
                target="endpoint_id",
            ),
            PageAction(
                "update",
                _update_webhook,
                lambda endpoint: Message(N_("Endpoint %(url)s saved."), url=endpoint.url),
                error_fields=(("unsafe_webhook_url", "url"),),
            ),
            PageAction(
                "enable",
                _on_row(Management.enable_webhook_endpoint, "endpoint_id"),
                lambda endpoint: Message(N_("Endpoint %(url)s is enabled."), url=endpoint.url),
                target="endpoint_id",
            ),
            PageAction(
                "disable",
                _on_row(Management.disable_webhook_endpoint, "endpoint_id"),
                lambda endpoint: Message(
                    N_("Endpoint %(url)s is disabled: nothing is sent to it until enabled."), url=endpoint.url
                ),
                target="endpoint_id",
            ),
            PageAction(
                "test",
                _on_row(Management.send_webhook_test, "endpoint_id"),
                lambda delivery: Message(
                    N_("A test message (%(event)s) was queued: see the deliveries."),
                    event=delivery.event_type,
                ),
                target="endpoint_id",
            ),
            PageAction(
                "delete",
                _on_row(Management.delete_webhook_endpoint, "endpoint_id"),
                lambda endpoint: Message(N_("Endpoint %(url)s was deleted."), url=endpoint.url),
                confirm=N_(
                    "Delete this endpoint? Nothing more is sent to it and its deliveries are deleted."
                ),
                target="endpoint_id",
            ),
        ),
    ),
    PageDefinition(
        name="webhook-deliveries",
        path="/organizations/{organization_id}/webhooks/{endpoint_id}/deliveries",
        title=N_("Webhook deliveries"),
        template="tenantkit/webhook_deliveries.html",
        load=_load_deliveries,
        permission=Action.READ_WEBHOOKS,
        feature="webhooks",
        navigation=False,
        part_of="webhooks",
        actions=(
            PageAction(
                "resend",
                _resend,
                lambda resent: Message(
                    N_("The message was queued again (%(count)s delivery(ies))."),
                    count=len(resent.deliveries),
                ),
                target="message_id",
            ),
        ),
    ),
    PageDefinition(
        name="domains",
        path="/organizations/{organization_id}/domains",
        title=N_("Domains and SSO"),
        template="tenantkit/domains.html",
        load=_load_domains,
        permission=Action.MANAGE_DOMAINS,
        actions=(
            PageAction(
                "add",
                _add_domain,
                lambda added: Message(
                    N_("%(domain)s was added: publish its TXT record, then verify."),
                    domain=added.domain.domain,
                ),
                reveals=True,
                field="domain",
            ),
            PageAction("verify", _verify_domain, _verified, target="domain"),
            PageAction(
                "remove",
                _remove_domain,
                lambda domain: Message(N_("%(domain)s was removed."), domain=domain.domain),
                confirm=N_(
                    "Remove this domain? Its verification is lost and must be done again to add it back."
                ),
                target="domain",
            ),
            PageAction(
                "create-sso",
                _create_sso,
                lambda connection: Message(N_("SSO connection '%(name)s' created."), name=connection.name),
                field="name",
                error_fields=(
                    ("sso_connection_exists", "provider_connection_id"),
                    ("role_escalation", "default_role"),
                    ("permission_escalation", "default_role"),
                ),
            ),
            PageAction(
                "update-sso",
                _update_sso,
                lambda connection: Message(N_("SSO connection '%(name)s' saved."), name=connection.name),
                error_fields=(("role_escalation", "default_role"), ("permission_escalation", "default_role")),
            ),
            PageAction(
                "delete-sso",
                _on_row(Management.delete_sso_connection, "connection_id"),
                lambda connection: Message(
                    N_("SSO connection '%(name)s' was deleted."), name=connection.name
                ),
                confirm=N_(
                    "Delete this SSO connection? Sign-ins through it are refused from now on; "
                    "its members stay."
                ),
                target="connection_id",
            ),
        ),
    ),
    PageDefinition(
        name="accept",
        path="/invitations/accept",
        title=N_("Invitation"),
        template="tenantkit/accept.html",
        load=_load_accept,
        organization=False,
        actions=(PageAction("accept", _accept, _joined, field="token"),),
    ),
)
