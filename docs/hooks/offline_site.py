"""An mkdocs hook: the build fails if the built site loads anything from another host.

The documentation must work offline (from a wheel's sdist, an air-gapped network, ``file://``): no script,
stylesheet, font or image from a CDN or a font service. After every build this reads each HTML, CSS and
JavaScript file of the site and reports every asset URL on another host:

* HTML: ``src``/``href``/``srcset``/``poster``/``data`` of the tags that load something (``<script>``,
  ``<link>``, ``<img>``, ``<iframe>``, ...), and ``url(...)`` in inline styles. A plain ``<a href>`` is a
  link the reader may follow, not an asset, and is allowed;
* CSS: ``url(...)`` and ``@import``;
* JavaScript: string literals naming a CDN host or a file with an asset's extension.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_EXTERNAL = r"(?:https?:)?//"
_LOADING_TAG = re.compile(
    r"<(?:script|link|img|iframe|source|video|audio|embed|object|track|input|image|use)\b[^>]*>",
    re.IGNORECASE,
)
_ASSET_ATTRIBUTE = re.compile(
    rf"""\b(?:src|href|srcset|poster|data|xlink:href)\s*=\s*["']?\s*(?P<url>{_EXTERNAL}[^"'\s>]+)""",
    re.IGNORECASE,
)
_CSS_URL = re.compile(rf"""(?:url\(\s*["']?|@import\s+["'])(?P<url>{_EXTERNAL}[^"')\s]+)""", re.IGNORECASE)
_CDN_HOSTS = (
    "unpkg.com",
    "cdn.jsdelivr.net",
    "cdnjs.cloudflare.com",
    "fonts.googleapis.com",
    "fonts.gstatic.com",
    "ajax.googleapis.com",
    "use.fontawesome.com",
    "polyfill.io",
)
_CDN = "|".join(re.escape(host) for host in _CDN_HOSTS)
_ASSET_FILE = r"\.(?:m?js|css|woff2?|ttf|otf|eot|png|jpe?g|gif|svg|webp|ico)"
_JS_ASSET = re.compile(
    rf"""["'`](?P<url>https?://(?:[^"'`\s]*(?:{_CDN})[^"'`\s]*|[^"'`\s]+{_ASSET_FILE}))["'`?#]""",
    re.IGNORECASE,
)

# Loads in the theme's JavaScript that cannot happen on this site, each with the reason.
ALLOWED = {
    # Material loads mermaid only for pages with ```mermaid diagrams; no page has any (no fence is set up).
    "https://unpkg.com/mermaid@11/dist/mermaid.min.js",
    # A polyfill loaded only where ResizeObserver is missing: no browser released since 2020.
    "https://unpkg.com/resize-observer-polyfill",
}

# The search index holds the pages' text, already checked as HTML; a URL in prose is no asset.
_SKIPPED = ("search/search_index.js", "search/search_index.json")


def external_assets(site_dir: Path) -> list[str]:
    """Each asset URL on another host in the HTML, CSS and JavaScript under ``site_dir``, as ``file: url``."""
    found: list[str] = []
    for path in sorted(site_dir.rglob("*")):
        relative = path.relative_to(site_dir).as_posix()
        if not path.is_file() or relative in _SKIPPED:
            continue
        suffix = path.suffix.lower()
        if suffix not in {".html", ".htm", ".css", ".js", ".mjs"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        urls: list[str] = []
        if suffix in {".html", ".htm"}:
            for tag in _LOADING_TAG.finditer(text):
                urls.extend(match["url"] for match in _ASSET_ATTRIBUTE.finditer(tag.group()))
            urls.extend(match["url"] for match in _CSS_URL.finditer(text))
        elif suffix == ".css":
            urls.extend(match["url"] for match in _CSS_URL.finditer(text))
        else:
            urls.extend(match["url"] for match in _JS_ASSET.finditer(text))
        found.extend(f"{relative}: {url}" for url in urls if url not in ALLOWED)
    return found


def on_post_build(config: Any, **kwargs: Any) -> None:
    from mkdocs.exceptions import PluginError

    found = external_assets(Path(config["site_dir"]))
    if found:
        listing = "\n  ".join(found)
        raise PluginError(f"the site loads assets from other hosts, so it cannot work offline:\n  {listing}")
