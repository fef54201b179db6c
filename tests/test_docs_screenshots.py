"""The pages' screenshots in the docs: one committed PNG per page of the page table, each shown on
docs/pages-screenshots.md with an alt text, so a new page without a screenshot fails here (``make
screenshots`` makes it). No browser: the PNGs are files of the repository."""

from __future__ import annotations

import importlib.util
import re
import struct
from pathlib import Path
from types import ModuleType

import pytest

from tenantkit.ui import PAGES
from tenantkit.ui._site import select_pages

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images" / "pages"
PAGE = ROOT / "docs" / "pages-screenshots.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 150 * 1024


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


screenshots = _load(ROOT / "tools" / "screenshots.py", "tenantkit_tools_screenshots")
SHOTS = sorted({page.name for page in PAGES} | {screenshots.ISSUED})


def _images_on_the_page() -> dict[str, str]:
    """The page's images: the PNG's name (without ``.png``) to its alt text."""
    found = re.findall(r"!\[([^\]]*)\]\(images/pages/([\w-]+)\.png\)", PAGE.read_text(encoding="utf-8"))
    return {name: alt for alt, name in found}


def test_the_tool_writes_where_the_docs_look() -> None:
    """tools/screenshots.py writes into docs/images/pages, the folder this page and these checks read."""
    assert screenshots.OUT == IMAGES


def test_the_example_mounts_every_page() -> None:
    """The example the tool photographs configures every feature, so every page of PAGES is mounted."""
    example = _load(ROOT / "examples" / "pages_app.py", "tenantkit_example_pages_app_shots")
    mounted = [page.name for page in select_pages(None, example.make_kit())]
    assert mounted == [page.name for page in PAGES]


@pytest.mark.parametrize("name", SHOTS)
def test_each_page_has_a_small_committed_png(name: str) -> None:
    """Each page (and the API keys page right after issuing a key) has its PNG, at most 150 KiB."""
    path = IMAGES / f"{name}.png"
    assert path.is_file(), f"{path} is missing: run `make screenshots`"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])
    assert width == screenshots.WIDTH
    assert height >= screenshots.HEIGHT
    assert len(data) <= MAX_BYTES, f"{path} is {len(data)} bytes"


def test_the_docs_page_shows_each_png_with_an_alt_text() -> None:
    """docs/pages-screenshots.md shows every screenshot, with words saying what it shows, and no other."""
    images = _images_on_the_page()
    assert sorted(images) == SHOTS
    for name, alt in images.items():
        assert len(alt.split()) >= 5, f"the alt text of {name}.png says too little: {alt!r}"
    committed = sorted(path.stem for path in IMAGES.glob("*.png"))
    assert committed == SHOTS, "a PNG under docs/images/pages that no page uses"


def test_the_docs_say_how_to_regenerate_them() -> None:
    """The page names the make target, the navigation lists it, and the pages guide links to it."""
    assert "make screenshots" in PAGE.read_text(encoding="utf-8")
    assert "pages-screenshots.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "pages-screenshots.md" in (ROOT / "docs" / "pages.md").read_text(encoding="utf-8")
    assert re.search(r"^screenshots:", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)


def test_the_optimizer_keeps_a_small_image_exactly() -> None:
    """An image of few colours comes out as an indexed PNG with the very same pixels."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = [bytes([255, 255, 255, 0, 0, 0, 200, 10, 10]), bytes([0, 0, 0, 200, 10, 10, 255, 255, 255])]
    # The second row Up-filtered (against the first), as a browser's encoder may write it.
    up = bytes((b - a) & 255 for a, b in zip(rows[0], rows[1], strict=True))
    raw = b"\x00" + rows[0] + b"\x02" + up
    png = (
        PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    optimized = screenshots.optimize(png)
    chunks = dict(screenshots._chunks(optimized))
    assert struct.unpack(">IIBB", chunks[b"IHDR"][:10]) == (3, 2, 8, 3)
    palette = [chunks[b"PLTE"][i : i + 3] for i in range(0, len(chunks[b"PLTE"]), 3)]
    pixels = zlib.decompress(chunks[b"IDAT"])
    decoded = [b"".join(palette[i] for i in pixels[row * 4 + 1 : row * 4 + 4]) for row in range(2)]
    assert decoded == rows
