"""The pages' languages and time zones: Babel catalogs, the viewer's choice of them, and dates in their zone.

The second language is a test catalog, ``tests/locale/de/LC_MESSAGES/tenantkit.po`` (a complete German
translation of the package's template), given to the pages as a host directory with ``translations=``.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from tenantkit import HOST, Role
from tenantkit.errors import ConfigurationError
from tenantkit.fastapi import Principal
from tenantkit.ui import N_, Message, PageSite
from tests.page_apps import APP_BUILDERS, ORGANIZATION, OWNER, OWNER_EMAIL, make_kit, seed
from tests.test_pages import ORG, Client

ROOT = Path(__file__).resolve().parent.parent
TEST_LOCALES = Path(__file__).resolve().parent / "locale"
TEMPLATE = ROOT / "src" / "tenantkit" / "ui" / "locale" / "tenantkit.pot"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _client(adapter: str, engine: sa.Engine, **pages: object) -> Client:
    kit = make_kit()
    seed(kit, engine)
    with kit.transaction(engine) as session:
        kit.members.add(session, ORGANIZATION, "mallory", Role.MEMBER, actor=HOST)
    options = {"translations": [str(TEST_LOCALES)], **pages}
    return Client(adapter, APP_BUILDERS[adapter](kit, engine, **options), kit, engine)


@pytest.fixture(params=sorted(APP_BUILDERS))
def adapter(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def _sign_in(client: Client, *, locale: str = "", time_zone: str = "") -> None:
    client.get(f"/sign-in?user={OWNER}&email={OWNER_EMAIL}&locale={locale}&time_zone={time_zone}")


def _text(page: str) -> str:
    """The page's words, tags left out and entities read (what a reader sees, roughly)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_a_german_viewer_gets_the_team_page_in_german(adapter: str, sqlite_engine: sa.Engine) -> None:
    """``Principal.locale="de"`` renders headings, labels, buttons and navigation from the German catalog,
    and the page says ``lang="de"``."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, locale="de")
    status, page, _ = client.get(f"{ORG}/team")
    assert status == 200
    assert '<html lang="de">' in page
    words = _text(page)
    for german in ("Team von acme", "Mitglieder", "Beigetreten", "Rolle ändern", "Einladung erstellen"):
        assert german in words, german
    assert "<title>Team · acme</title>" in page
    assert ">Einladungen</a>" in page  # the navigation: page titles from the Python side
    assert "Eigentümer" in words  # the rank names of the role select
    assert "Change role" not in words
    assert "Members" not in words


def test_a_german_viewer_gets_the_api_key_page_in_german(adapter: str, sqlite_engine: sa.Engine) -> None:
    """The API key dashboard in German: the form, and the once-only key's explanation after issuing one."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, locale="de-DE")  # a region falls back to its language's catalog
    _, page, _ = client.get(f"{ORG}/api-keys")
    assert "API-Schlüssel von acme" in _text(page)
    assert "Schlüssel ausstellen" in _text(page)
    status, page, _ = client.post(f"{ORG}/api-keys/issue", {"csrf_token": client.token(), "name": "CI"})
    assert status == 200
    assert "Der Schlüssel wird nur dieses eine Mal angezeigt." in _text(page)


@pytest.mark.parametrize(
    "header", ["de", "de-AT,de;q=0.9", "fr-CH, fr;q=0.9, de;q=0.8, en;q=0.5", "en;q=0.1, de;q=0.7"]
)
def test_accept_language_chooses_when_the_principal_names_no_language(
    adapter: str, sqlite_engine: sa.Engine, header: str
) -> None:
    """Without ``Principal.locale`` the browser's ``Accept-Language`` is negotiated against the catalogs:
    the most preferred language with a catalog (English included) wins, quality values respected."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client)
    _, page, _ = client.get(f"{ORG}/team", headers={"Accept-Language": header})
    assert '<html lang="de">' in page
    assert "Team von acme" in _text(page)


@pytest.mark.parametrize("header", [None, "fr-FR, fr;q=0.9", "en-GB,de;q=0.9", "*", "de;q=0"])
def test_english_otherwise(adapter: str, sqlite_engine: sa.Engine, header: str | None) -> None:
    """No header, only languages without a catalog, English preferred, a wildcard or German refused
    (``q=0``): the page is English, the source text."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client)
    _, page, _ = client.get(f"{ORG}/team", headers={"Accept-Language": header} if header else {})
    assert '<html lang="en">' in page
    assert "Team of acme" in _text(page)
    assert "Mitglieder" not in _text(page)


def test_the_principals_language_wins_over_the_browsers(adapter: str, sqlite_engine: sa.Engine) -> None:
    """A user who chose English in the host gets English even from a German browser."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, locale="en")
    _, page, _ = client.get(f"{ORG}/team", headers={"Accept-Language": "de"})
    assert '<html lang="en">' in page
    assert "Team of acme" in _text(page)


def test_a_result_message_is_translated_with_its_values(adapter: str, sqlite_engine: sa.Engine) -> None:
    """The flash after a redirect (change of role) and the one in a revealing answer (issued key) are the
    catalog's sentences with the action's values filled in; an English viewer reads the source sentence."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, locale="de")
    status, _, _ = client.post(
        f"{ORG}/team/change-role", {"csrf_token": client.token(), "user_id": "mallory", "role": "ADMIN"}
    )
    assert status == 303
    _, page, _ = client.get(f"{ORG}/team")
    assert "Erledigt: mallory ist jetzt ADMIN." in _text(page)
    _, page, _ = client.post(f"{ORG}/api-keys/issue", {"csrf_token": client.token(), "name": "CI <1>"})
    assert "Erledigt: Schlüssel „CI <1>“ ausgestellt." in _text(page)
    assert "CI &lt;1&gt;" in page  # the value is escaped inside the translated sentence
    _sign_in(client, locale="en")
    client.post(
        f"{ORG}/team/change-role", {"csrf_token": client.token(), "user_id": "mallory", "role": "MEMBER"}
    )
    _, page, _ = client.get(f"{ORG}/team")
    assert "Done: mallory is now MEMBER." in _text(page)


def test_refusals_are_translated_and_service_messages_stay_english(
    adapter: str, sqlite_engine: sa.Engine
) -> None:
    """The pages' own words translate (the CSRF refusal, a field's reason, the labels); the service's
    error message (``last_owner``) stays English inside the translated labels."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, locale="de")
    status, page, _ = client.post(f"{ORG}/team/remove", {"user_id": "mallory"})
    assert status == 403
    assert "Dieses Formular konnte nicht angenommen werden" in _text(page)
    _, page, _ = client.post(f"{ORG}/api-keys/issue", {"csrf_token": client.token(), "name": " "})
    assert "Fehler: ist erforderlich" in _text(page)
    status, page, _ = client.post(
        f"{ORG}/team/change-role", {"csrf_token": client.token(), "user_id": OWNER, "role": "MEMBER"}
    )
    assert status == 403
    assert "Abgelehnt:" in _text(page)
    assert "last OWNER" in _text(page)


def test_a_confirmation_question_is_translated(adapter: str, sqlite_engine: sa.Engine) -> None:
    """The confirmation step of a destructive action asks its question in the viewer's language."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, locale="de")
    _, page, _ = client.post(f"{ORG}/team/remove", {"csrf_token": client.token(), "user_id": "mallory"})
    assert "Bitte bestätigen" in _text(page)
    assert "Dieses Mitglied aus der Organisation entfernen?" in _text(page)
    assert "Ja, fortfahren" in _text(page)


def _joined(page: str) -> tuple[datetime, str]:
    """The owner's join date: the ``datetime`` attribute, and the text shown."""
    found = re.search(r'<time datetime="([^"]+)">([^<]+)</time>', page)
    assert found is not None
    return datetime.fromisoformat(found.group(1)), html.unescape(found.group(2))


def _clock(moment: datetime) -> str:
    """English short time, as the page shows it (``5:07 PM``)."""
    return f"{moment.hour % 12 or 12}:{moment:%M}\N{NARROW NO-BREAK SPACE}{moment:%p}"


def test_dates_are_shown_in_the_viewers_time_zone(adapter: str, sqlite_engine: sa.Engine) -> None:
    """A viewer in America/New_York reads the join date in New York time with the zone's abbreviation,
    another in UTC; the ``datetime`` attribute is UTC for both."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, time_zone="America/New_York")
    _, page, _ = client.get(f"{ORG}/team")
    moment, shown = _joined(page)
    offset = moment.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0
    local = moment.astimezone(ZoneInfo("America/New_York"))
    assert _clock(local) in shown
    assert shown.endswith(("EST", "EDT"))
    _sign_in(client)
    _, page, _ = client.get(f"{ORG}/team")
    moment, shown = _joined(page)
    assert _clock(moment) in shown
    assert shown.endswith("UTC")


def test_the_sites_time_zone_is_the_default(adapter: str, sqlite_engine: sa.Engine) -> None:
    """``time_zone=`` of the pages applies to viewers whose principal names no zone; German dates follow
    the German format."""
    client = _client(adapter, sqlite_engine, time_zone="Asia/Tokyo")
    _sign_in(client, locale="de")
    _, page, _ = client.get(f"{ORG}/team")
    moment, shown = _joined(page)
    local = moment.astimezone(ZoneInfo("Asia/Tokyo"))
    assert shown.startswith(f"{local:%d.%m.%Y}, {local:%H:%M}")


def test_an_unknown_zone_or_locale_falls_back_and_says_why(
    adapter: str, sqlite_engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A zone that is no IANA name and a locale that names no language do not break the page: UTC and
    the browser's language (German here), each with a warning naming the value."""
    client = _client(adapter, sqlite_engine)
    _sign_in(client, locale="zz-QQ", time_zone="Mars/Olympus_Mons")
    with caplog.at_level(logging.WARNING, logger="tenantkit.ui"):
        status, page, _ = client.get(f"{ORG}/team", headers={"Accept-Language": "de"})
    assert status == 200
    assert '<html lang="de">' in page
    assert _joined(page)[1].endswith("UTC")
    messages = [record.getMessage() for record in caplog.records if record.name == "tenantkit.ui"]
    assert any("'Mars/Olympus_Mons' is not an IANA zone name" in message for message in messages)
    assert any("'zz-QQ' names no locale" in message for message in messages)


def test_a_host_directory_wins_over_a_later_one(tmp_path: Path) -> None:
    """Of the host's directories the first translating a message wins; the others fill in the rest."""
    catalog = tmp_path / "de" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "tenantkit.po").write_text('msgid "Team"\nmsgstr "Mannschaft"\n', encoding="utf-8")
    site = PageSite(make_kit(), secret_key="s" * 16, translations=[tmp_path, TEST_LOCALES])
    viewer = site.catalogs.viewer(Principal(user_id="u", locale="de"), None)
    assert viewer.gettext("Team") == "Mannschaft"
    assert viewer.gettext("Members") == "Mitglieder"
    assert site.catalogs.locales == ["de", "en"]


def test_a_bad_site_zone_or_directory_is_a_configuration_error(tmp_path: Path) -> None:
    """The site's own settings are checked when it is built: a zone that is no IANA name, a directory
    that does not exist, a catalog that does not parse."""
    with pytest.raises(ConfigurationError, match="IANA"):
        PageSite(make_kit(), secret_key="s" * 16, time_zone="Nowhere/Town")
    with pytest.raises(ConfigurationError, match="not a directory"):
        PageSite(make_kit(), secret_key="s" * 16, translations=[tmp_path / "missing"])
    broken = tmp_path / "de" / "LC_MESSAGES"
    broken.mkdir(parents=True)
    (broken / "tenantkit.po").write_bytes(b'msgid "Team"\nmsgstr "\xff\n')
    with pytest.raises(ConfigurationError, match=r"not a valid \.po file"):
        PageSite(make_kit(), secret_key="s" * 16, translations=[tmp_path])


def _extracted() -> set[str]:
    """The message ids in the sources now, by the mapping ``make translations`` uses (``babel.cfg``)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)  # type: ignore[no-untyped-call]
    return {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map)
    }


def _committed(path: Path) -> dict[str, str]:
    with path.open("rb") as source:
        return {str(m.id): str(m.string) for m in read_po(source) if m.id}


def test_the_committed_template_has_every_message_of_the_sources() -> None:
    """``tenantkit.pot`` is not behind the sources: every text marked in a template or in Python is in it
    (run ``make translations`` when this fails)."""
    missing = _extracted() - set(_committed(TEMPLATE))
    assert not missing, f"run `make translations`: {sorted(missing)}"


def test_every_message_of_the_committed_template_is_used() -> None:
    """No stale entry: every message id of ``tenantkit.pot`` is still marked somewhere in the sources."""
    stale = set(_committed(TEMPLATE)) - _extracted()
    assert not stale, f"run `make translations`: {sorted(stale)}"


def test_the_german_test_catalog_is_complete_and_keeps_the_placeholders() -> None:
    """The test locale translates every message of the template, each with the same named placeholders,
    so the German pages above exercise the whole template."""
    german = _committed(TEST_LOCALES / "de" / "LC_MESSAGES" / "tenantkit.po")
    template = _committed(TEMPLATE)
    assert set(german) == set(template)
    for msgid, translated in german.items():
        assert translated, msgid
        assert set(PLACEHOLDER.findall(translated)) == set(PLACEHOLDER.findall(msgid)), msgid


def test_a_translation_with_a_wrong_placeholder_falls_back_to_english(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A catalog whose translation names a placeholder the message does not fill shows the English sentence
    with the values, and logs which message it was, instead of failing the page."""
    catalog = tmp_path / "de" / "LC_MESSAGES"
    catalog.mkdir(parents=True)
    (catalog / "tenantkit.po").write_text(
        '#, python-format\nmsgid "%(user)s was removed."\nmsgstr "%(benutzer)s wurde entfernt."\n',
        encoding="utf-8",
    )
    site = PageSite(make_kit(), secret_key="s" * 16, translations=[tmp_path])
    viewer = site.catalogs.viewer(Principal(user_id="u", locale="de"), None)
    with caplog.at_level(logging.WARNING, logger="tenantkit.ui"):
        shown = viewer.gettext(Message(N_("%(user)s was removed."), user="mallory"))
    assert shown == "mallory was removed."
    assert any("'%(user)s was removed.'" in record.getMessage() for record in caplog.records)
