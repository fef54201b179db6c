"""The pages' languages and time zones: Babel catalogs read from ``.po`` files, and the viewer's choice.

English is the source text, so it needs no catalog. Every other language is a ``tenantkit.po`` catalog
under ``<directory>/<locale>/LC_MESSAGES/``, in the package's ``locale`` directory or in one of the host's
(``translations=``); they are read once, when the site is built (no compiled ``.mo`` file is shipped).
Python-side texts (page titles, result messages, confirmation questions, refusals) are marked with
:func:`N_` for ``pybabel extract`` and translated when a page is rendered, in the viewer's language.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.core import negotiate_locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import NullTranslations, Translations

from tenantkit._errors import ConfigurationError

if TYPE_CHECKING:
    from tenantkit._http import Principal

__all__ = ["DOMAIN", "N_", "SOURCE_LOCALE", "Catalogs", "Message", "Viewer"]

DOMAIN = "tenantkit"
SOURCE_LOCALE = "en"
_LOGGER = logging.getLogger("tenantkit.ui")
_LANGUAGE_RANGE = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")


def N_(message: str) -> str:
    """Mark ``message`` for extraction into the catalog template; it is translated when shown.

    The name is gettext's convention for such a no-op marker, which ``pybabel extract`` looks for.
    """
    return message


class Message:
    """A text translated when shown: its English message id (``%(name)s`` placeholders) and their values.

    ``Message(N_("Key %(name)s issued."), name=key.name)``: the values are filled in after translation,
    so a translation may put them in any order.
    """

    __slots__ = ("msgid", "values")

    def __init__(self, msgid: str, /, **values: object) -> None:
        self.msgid: str = msgid
        self.values: dict[str, str] = {name: str(value) for name, value in values.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and (self.msgid, self.values) == (other.msgid, other.values)

    def __hash__(self) -> int:
        return hash((self.msgid, tuple(sorted(self.values.items()))))

    def __repr__(self) -> str:
        return f"Message({self.msgid!r}, **{self.values!r})"

    def as_data(self) -> dict[str, object]:
        """What the signed result cookie carries (never a secret: the result messages hold none)."""
        return {"m": self.msgid, "v": self.values}

    @classmethod
    def from_data(cls, data: object) -> Message | None:
        if isinstance(data, str):
            return cls(data)
        if not isinstance(data, dict) or not isinstance(data.get("m"), str):
            return None
        values = data.get("v") or {}
        if not isinstance(values, dict):
            return None
        return cls(data["m"], **{str(name): str(value) for name, value in values.items()})


@dataclass(frozen=True)
class Viewer:
    """The language and the time zone a page is rendered in, for one request."""

    locale: str
    """The catalog's locale (``"de"``), or ``"en"`` for the source text."""
    translations: NullTranslations
    time_zone: ZoneInfo

    @property
    def lang(self) -> str:
        """The locale as an HTML ``lang`` value (``pt-BR``)."""
        return self.locale.replace("_", "-")

    def gettext(self, text: str | Message) -> str:
        """``text`` in the viewer's language, its values filled in (English when no translation fits)."""
        if isinstance(text, str):
            return self.translations.gettext(text)
        translated = self.translations.gettext(text.msgid)
        if not text.values:
            return translated
        try:
            return translated % text.values
        except (KeyError, ValueError, TypeError):
            # A translation naming a placeholder the message lacks must not break the page: English.
            _LOGGER.warning(
                "the %s translation of %r has placeholders the message does not fill; shown in English",
                self.locale,
                text.msgid,
            )
            return text.msgid % text.values

    def format_datetime(self, moment: datetime) -> str:
        """``moment`` in the viewer's time zone and locale, with the zone's abbreviation (``EST``)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        local = moment.astimezone(self.time_zone)
        # The locale's own way of joining a date and a time ("{1}, {0}"), as Babel's format_datetime does,
        # with a short time (no seconds) after a medium date.
        pattern = str(get_datetime_format("medium", locale=self.locale)).replace("'", "")
        date = format_date(local, "medium", locale=self.locale)
        time = format_time(local, "short", tzinfo=self.time_zone, locale=self.locale)
        zone = format_time(local, "z", tzinfo=self.time_zone, locale=self.locale)
        return f"{pattern.replace('{1}', date).replace('{0}', time)} {zone}"


def _zone(name: str) -> ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _locale_name(value: str) -> str | None:
    """``value`` (``de-DE``, ``pt_BR``) as Babel's identifier, ``None`` when it names no locale."""
    if not value or len(value) > 35:
        return None
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def _language_ranges(header: str | None) -> list[str]:
    """An ``Accept-Language`` header's languages, most preferred first (``*`` and ``q=0`` left out)."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:1000].split(",")):
        tag, _, parameters = part.strip().partition(";")
        tag = tag.strip()
        quality = 1.0
        parameter = parameters.strip()
        if parameter.startswith("q="):
            try:
                quality = float(parameter[2:])
            except ValueError:
                continue
        if quality <= 0 or not _LANGUAGE_RANGE.match(tag):
            continue
        ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


class Catalogs:
    """The pages' translations: the package's catalogs and the host's, and the choice made per viewer.

    Args:
        directories: The host's catalog directories, searched before the package's: a message translated
            in one of them wins over the package's translation of it.
        time_zone: The IANA time zone of viewers whose principal names none (``"UTC"``).
    """

    def __init__(self, directories: Sequence[str | os.PathLike[str]] = (), *, time_zone: str = "UTC") -> None:
        if isinstance(directories, (str, os.PathLike)):
            raise TypeError("translations: a list of directories, not one")
        zone = _zone(time_zone)
        if zone is None:
            raise ConfigurationError(
                f"time_zone: {time_zone!r} is not an IANA time zone name (such as 'UTC')"
            )
        self.time_zone: ZoneInfo = zone
        package = Path(str(resources.files("tenantkit.ui").joinpath("locale")))
        self._translations: dict[str, Translations] = {}
        # The package's first, then the host's from the last to the first: each merge overrides.
        for directory in [package, *reversed([Path(d) for d in directories])]:
            if directory != package and not directory.is_dir():
                raise ConfigurationError(f"translations: {str(directory)!r} is not a directory")
            for locale, translations in _read_directory(directory):
                if locale in self._translations:
                    self._translations[locale].merge(translations)
                else:
                    self._translations[locale] = translations
        self._null = NullTranslations()

    @property
    def locales(self) -> list[str]:
        """The locales a page can be shown in: English and every catalog found, sorted."""
        return sorted({SOURCE_LOCALE, *self._translations})

    def translations(self, locale: str) -> NullTranslations:
        return self._translations.get(locale, self._null)

    def viewer(self, principal: Principal, accept_language: str | None) -> Viewer:
        """The language and zone for ``principal``: their own, else the browser's, else English and the
        site's zone. A name that is no locale or zone is logged (as given, shortened) and passed over."""
        locale = self._principal_locale(principal.locale) or self._negotiate(
            _language_ranges(accept_language)
        )
        locale = locale or SOURCE_LOCALE
        zone = self.time_zone
        if principal.time_zone:
            chosen = _zone(principal.time_zone)
            if chosen is None:
                _LOGGER.warning(
                    "the viewer's time zone %r is not an IANA zone name; showing dates in %s",
                    principal.time_zone[:64],
                    self.time_zone.key,
                )
            else:
                zone = chosen
        return Viewer(locale, self.translations(locale), zone)

    def _principal_locale(self, value: str | None) -> str | None:
        if not value:
            return None
        name = _locale_name(value)
        if name is None:
            _LOGGER.warning(
                "the viewer's locale %r names no locale; choosing from the browser's languages", value[:35]
            )
            return None
        return negotiate_locale([name], self.locales, sep="_")

    def _negotiate(self, ranges: list[str]) -> str | None:
        if not ranges:
            return None
        available = [locale.replace("_", "-") for locale in self.locales]
        chosen = negotiate_locale(ranges, available, sep="-")
        return None if chosen is None else chosen.replace("-", "_")


def _read_directory(directory: Path) -> list[tuple[str, Translations]]:
    """The catalogs ``<locale>/LC_MESSAGES/tenantkit.po`` under ``directory``, each as translations."""
    found: list[tuple[str, Translations]] = []
    for path in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        locale = path.parent.parent.name
        if _locale_name(locale) is None:
            raise ConfigurationError(
                f"translations: {str(path)!r} is under {locale!r}, which names no locale"
            )
        try:
            with path.open("rb") as source:
                catalog = read_po(source, locale=locale, domain=DOMAIN)
        except (OSError, ValueError, PoFileError) as error:
            raise ConfigurationError(
                f"translations: {str(path)!r} is not a valid .po file: {error}"
            ) from None
        compiled = io.BytesIO()
        write_mo(compiled, catalog)  # fuzzy entries left out, as msgfmt does
        compiled.seek(0)
        found.append((locale, Translations(compiled, domain=DOMAIN)))
    return found
