"""What the package index shows: README links that work there, and Project-URLs in the metadata.

The README becomes the project's page on the package index, where a relative link (``docs/fastapi.md``)
leads nowhere. Every link is absolute, based on the project's one source URL or its documentation site,
and points at a page or file that exists here.
"""

import re
from html.parser import HTMLParser
from importlib.metadata import metadata
from pathlib import Path

import markdown
import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_URL = "https://github.com/tenantkit/tenantkit"
DOCS_URL = "https://tenantkit.readthedocs.io/"
DOCS_PAGES = DOCS_URL + "en/latest/"
SOURCE_FILES = PROJECT_URL + "/blob/main/"


class LinkCollector(HTMLParser):
    """Collects every ``href`` and ``src`` of rendered HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets.extend(value for name, value in attrs if name in {"href", "src"} and value is not None)


def readme_html() -> str:
    return str(markdown.markdown((ROOT / "README.md").read_text(encoding="utf-8"), extensions=["tables"]))


def readme_links() -> list[str]:
    collector = LinkCollector()
    collector.feed(readme_html())
    return collector.targets


def test_the_readme_has_links() -> None:
    """The README links its documentation (so the checks below are not vacuous)."""
    assert len(readme_links()) >= 10


@pytest.mark.parametrize("target", readme_links())
def test_readme_links_are_absolute_and_resolve_here(target: str) -> None:
    """Each link is an absolute https URL of the docs site or the repository, to something that exists."""
    assert target.startswith("https://"), f"{target!r} is relative: it breaks on the package index page"
    if target.startswith(DOCS_PAGES):
        page = target.removeprefix(DOCS_PAGES).strip("/") or "index"
        assert (ROOT / "docs" / f"{page}.md").is_file(), f"{target} names no page in docs/"
    elif target.startswith(SOURCE_FILES):
        path = target.removeprefix(SOURCE_FILES)
        assert (ROOT / path).is_file(), f"{target} names no file of the repository"
    else:
        assert target.startswith((PROJECT_URL, DOCS_URL)), (
            f"{target} is neither the docs site nor the repository"
        )


def test_every_reference_link_is_defined() -> None:
    """No ``[text][label]`` is left unrendered for want of a ``[label]: url`` definition."""
    outside_code = re.sub(r"<code>.*?</code>|<pre>.*?</pre>", "", readme_html(), flags=re.DOTALL)
    assert not re.findall(r"\]\[[^\]]*\]", outside_code)


def test_project_urls_are_declared() -> None:
    """The installed metadata names the homepage, documentation, changelog, issue tracker and source."""
    entries = metadata("tenantkit").get_all("Project-URL") or []
    urls = dict(entry.split(", ", 1) for entry in entries)
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues", "Source"}
    assert urls["Documentation"] == DOCS_URL
    assert urls["Source"] == urls["Homepage"] == PROJECT_URL
    assert urls["Issues"] == PROJECT_URL + "/issues"
    assert urls["Changelog"] == SOURCE_FILES + "CHANGELOG.md"
    assert (ROOT / "CHANGELOG.md").is_file()
