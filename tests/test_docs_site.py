"""The documentation site: it builds strictly, has an API reference for each public name, works offline."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_exported_members import PUBLIC_MODULES

pytestmark = pytest.mark.docs_build

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS = DOCS / "hooks"


def load_hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tenantkit_docs_{name}", HOOKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


offline_site = load_hook("offline_site")
rest_docstrings = load_hook("rest_docstrings")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return site_dir


# Words of tenantkit's own history that mean nothing to a user unless the page says what they are.
UNEXPLAINED = re.compile(r"origin document|reference implementation|phase ?1\b|migration log", re.IGNORECASE)


def docstrings() -> dict[str, str]:
    """Every module, class and function docstring of the package, by ``file:line``."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "src" / "tenantkit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                docstring = ast.get_docstring(node)
                if docstring:
                    found[f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 1)}"] = docstring
    return found


def test_pages_and_docstrings_use_no_unexplained_internal_terms() -> None:
    """No page, README or docstring speaks of the origin document, a reference implementation or phase 1."""
    texts = {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in DOCS.rglob("*.md")}
    texts["README.md"] = (ROOT / "README.md").read_text(encoding="utf-8")
    texts.update(docstrings())
    offending = {where: match.group() for where, text in texts.items() if (match := UNEXPLAINED.search(text))}
    assert not offending


def test_pages_that_mention_the_origin_schema_link_to_where_it_is_explained() -> None:
    """The adoption section says what the origin schema is; any other page naming it links there."""
    adoption = "migrations.md#adopting-an-existing-database"
    for path in DOCS.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        if path.name != "migrations.md" and re.search(r"origin schema|0001_closed_shaman", text):
            assert adoption in text, path.name
    migrations = (DOCS / "migrations.md").read_text(encoding="utf-8")
    assert "call this schema the *origin schema*" in migrations


def test_every_public_name_has_a_reference_entry(site: Path) -> None:
    """Each name in the ``__all__`` of a public module is an anchor of the API reference."""
    anchors: set[str] = set()
    for page in (site / "reference").glob("*.html"):
        anchors.update(re.findall(r'id="([\w.]+)"', page.read_text(encoding="utf-8")))
    documented = {anchor.rsplit(".", 1)[-1] for anchor in anchors if anchor.startswith("tenantkit")}
    for module_name in PUBLIC_MODULES:
        missing = set(importlib.import_module(module_name).__all__) - documented - {"__version__"}
        assert not missing, f"{module_name}: no reference entry for {sorted(missing)}"


def test_the_reference_shows_no_restructuredtext_markup(site: Path) -> None:
    """Cross-reference roles and ``::`` literal blocks are rendered, never printed as they are written."""
    for page in (site / "reference").glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r":(class|meth|func|attr|mod|exc|data):`", html), page.name
        assert not re.search(r"\w::</p>", html), page.name


def test_the_reference_hides_what_is_not_public(site: Path) -> None:
    """Type variables, module constants outside ``__all__`` and pydantic's ``model_config`` are left out."""
    fastapi_page = (site / "reference" / "fastapi.html").read_text(encoding="utf-8")
    flask_page = (site / "reference" / "flask.html").read_text(encoding="utf-8")
    assert 'id="tenantkit.fastapi.T"' not in fastapi_page
    assert 'id="tenantkit.flask.EXTENSION_KEY"' not in flask_page
    assert "model_config" not in fastapi_page + flask_page


def test_code_is_highlighted_and_search_is_built(site: Path) -> None:
    """Code blocks are highlighted at build time and the search index exists, inlined for ``file://``."""
    assert 'class="highlight"' in (site / "fastapi.html").read_text(encoding="utf-8")
    assert '<span class="k">def</span>' in (site / "fastapi.html").read_text(encoding="utf-8")
    assert (site / "search" / "search_index.js").read_text(encoding="utf-8").startswith("var __index =")


def test_the_built_site_loads_nothing_from_another_host(site: Path) -> None:
    """No page, stylesheet or script of the site fetches an asset from a CDN or a font service."""
    assert offline_site.external_assets(site) == []
    assert "fonts.googleapis.com" not in (site / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "content", "reported"),
    [
        ("page.html", '<script src="https://cdn.jsdelivr.net/npm/x.js"></script>', True),
        ("page.html", '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Roboto">', True),
        ("page.html", '<img alt="logo" src="http://example.com/logo.png">', True),
        ("page.html", '<p style="background: url(https://example.com/a.png)">', True),
        ("page.html", '<a href="https://pypi.org/project/tenantkit/">PyPI</a>', False),
        ("page.html", '<script src="assets/javascripts/bundle.js"></script>', False),
        ("style.css", '@import "https://fonts.googleapis.com/css2?family=Inter";', True),
        ("style.css", "@font-face{src:url(https://fonts.gstatic.com/s/inter.woff2)}", True),
        ("style.css", "a{mask:url(\"data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>\")}", False),
        ("bundle.js", 'load("https://unpkg.com/some-library")', True),
        ("bundle.js", 'script.src = "https://example.com/widget.js";', True),
        ("bundle.js", "/* https://github.com/some/project, MIT License */", False),
        ("bundle.js", 'load("https://unpkg.com/mermaid@11/dist/mermaid.min.js")', False),
    ],
)
def test_the_offline_check_tells_assets_from_links(
    tmp_path: Path, name: str, content: str, reported: bool
) -> None:
    """Scripts, stylesheets, fonts and images from another host are reported; links and data URIs are not."""
    (tmp_path / name).write_text(content, encoding="utf-8")
    assert bool(offline_site.external_assets(tmp_path)) is reported


def test_roles_become_links_where_the_target_resolves_and_code_otherwise() -> None:
    """A role whose target resolves links to its entry, shown as written (``~`` keeps the last name)."""
    entries = {"tenantkit.TenantKit": "tenantkit._kit.TenantKit", "verify": "tenantkit.ApiKeyService.verify"}
    converted = rest_docstrings.convert_roles(
        "See :class:`~tenantkit.TenantKit`, :meth:`verify`, :func:`_helper` and "
        ":class:`~sqlalchemy.orm.Session`.",
        entries.get,
    )
    assert converted == (
        "See [`TenantKit`][tenantkit._kit.TenantKit], [`verify`][tenantkit.ApiKeyService.verify], "
        "`_helper` and `Session`."
    )


def test_roles_in_the_reference_link_to_the_entry_they_name(site: Path) -> None:
    """Relative roles resolve as Python would: a method of the class at hand, a name of the package."""
    page = (site / "reference" / "tenantkit.html").read_text(encoding="utf-8")
    assert 'href="#tenantkit.TenantKit.subscribe"' in page  # :meth:`subscribe` in TenantKit's docstring
    assert 'href="#tenantkit.HOST"' in page  # :data:`~tenantkit.HOST`
    assert 'href="errors.html#tenantkit.errors.InvalidInputError"' in page  # :class:`InvalidInputError`


def test_literal_blocks_become_fenced_code_in_their_language() -> None:
    """A ``::`` block is fenced as Python when it parses as Python, and as text otherwise."""
    docstring = (
        "Use it like this::\n\n    kit = TenantKit()\n\nThe tree::\n\n    Error\n    ├── Leaf\n\nDone."
    )
    assert rest_docstrings.convert_literal_blocks(docstring) == (
        "Use it like this:\n\n```python\nkit = TenantKit()\n```\n\n"
        "The tree:\n\n```text\nError\n├── Leaf\n```\n\nDone."
    )
