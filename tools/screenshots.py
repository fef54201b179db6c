"""Screenshots of the drop-in pages for the docs: ``make screenshots`` (or ``python tools/screenshots.py``).

It serves ``examples/pages_app.py`` on a fresh SQLite file (uvicorn in a thread, on a free port of
127.0.0.1), drives Debian's headless Chromium through Selenium (the browser the tests use: nothing is
downloaded) at a fixed 1100 pixels wide and a device scale of 1, and saves one full-page PNG per page
under ``docs/images/pages/``: ``<page>.png`` for each page of :data:`tenantkit.ui.PAGES`, and
``api-keys-issued.png``, the answer to issuing a key with its once-only panel (a key of the throwaway
database). ``docs/pages-screenshots.md`` shows them; ``tests/test_docs_screenshots.py`` fails when a page
has no PNG there, so a new page needs a run of this tool.

Usage::

    python tools/screenshots.py                  # every page, into docs/images/pages
    python tools/screenshots.py --out /tmp/shots # elsewhere
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the browser and server helpers the pages' browser tests use
from tests.chromium import chromium, is_gone, missing, serve_asgi  # noqa: E402

OUT = ROOT / "docs" / "images" / "pages"
WIDTH, HEIGHT = 1100, 800
ISSUED = "api-keys-issued"
"""The one screenshot that is not a page of its own: the API keys page answering an issued key."""


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "tenantkit_pages_example", ROOT / "examples" / "pages_app.py"
    )
    assert spec is not None  # noqa: S101  the file is in the repository
    assert spec.loader is not None  # noqa: S101
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def serve(example: ModuleType, database_url: str) -> Iterator[str]:
    """The example app under uvicorn on a free loopback port, stopped on leaving."""
    app = example.create_app(database_url)
    try:
        with serve_asgi(app) as base:
            yield base
    finally:
        app.state.engine.dispose()


def browser() -> Any:
    """Debian's Chromium, headless, JavaScript on (the copy buttons show), scrollbars hidden."""
    if missing():
        raise SystemExit(f"{', '.join(missing())} missing: apt-get install chromium chromium-driver")
    arguments = (
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={WIDTH},{HEIGHT}",
        "--lang=en-US",
        "--font-render-hinting=full",
    )
    return chromium(arguments=arguments, implicit_wait=5)


def full_page_png(driver: Any) -> bytes:
    """The whole page, not only the window: the viewport is stretched to the document's height first."""
    height = int(driver.execute_script("return Math.ceil(document.documentElement.scrollHeight)"))
    metrics = {"width": WIDTH, "height": max(HEIGHT, height), "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return base64.b64decode(shot["data"])


def _chunks(png: bytes) -> Iterator[tuple[bytes, bytes]]:
    position = 8  # after the signature
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        yield png[position + 4 : position + 8], png[position + 8 : position + 8 + length]
        position += 12 + length


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _unfilter(raw: bytes, width: int, height: int, depth: int) -> list[bytearray]:
    """The rows of pixels of a non-interlaced 8-bit PNG, its per-row filters undone (RFC 2083, 6)."""
    stride = width * depth
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(depth, stride):
                line[i] = (line[i] + line[i - depth]) & 255
        elif kind == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - depth] if i >= depth else 0
                line[i] = (line[i] + (left + previous[i]) // 2) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - depth] if i >= depth else 0
                b, c = previous[i], (previous[i - depth] if i >= depth else 0)
                guess = a + b - c
                pa, pb, pc = abs(guess - a), abs(guess - b), abs(guess - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        previous = line
    return rows


def optimize(png: bytes) -> bytes:
    """The screenshot as an indexed PNG of at most 256 colours, deflated at zlib's best level: a third of
    the browser's size, standard library only.

    The page's flat colours are kept exactly; only rare in-between shades of anti-aliased edges (beyond the
    256 most frequent colours) become the nearest kept colour, which the eye does not see. The result
    depends on the pixels alone, so an unchanged page gives an unchanged file.
    """
    header = dict(_chunks(png))[b"IHDR"]
    width, height, bit_depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if bit_depth != 8 or colour_type not in (2, 6) or interlace:
        return png  # not what Chromium writes: left as it is
    depth = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(data for kind, data in _chunks(png) if kind == b"IDAT"))
    rows = _unfilter(raw, width, height, depth)
    # Opaque pixels (a page's screenshot is): the alpha channel, if any, is dropped.
    pixels = [list(zip(row[0::depth], row[1::depth], row[2::depth], strict=True)) for row in rows]
    counts = Counter(colour for row in pixels for colour in row)
    palette = sorted(counts, key=lambda colour: (-counts[colour], colour))[:256]
    index = {colour: number for number, colour in enumerate(palette)}
    for colour in counts:
        if colour not in index:
            index[colour] = min(
                range(len(palette)),
                key=lambda number: sum((x - y) ** 2 for x, y in zip(colour, palette[number], strict=True)),
            )
    data = b"".join(b"\x00" + bytes(map(index.__getitem__, row)) for row in pixels)
    return b"".join(
        (
            png[:8],
            _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)),
            _chunk(b"PLTE", b"".join(bytes(colour) for colour in palette)),
            _chunk(b"IDAT", zlib.compress(data, 9)),
            _chunk(b"IEND", b""),
        )
    )


def _submit(driver: Any, action: str, fields: dict[str, str]) -> None:
    """Fill and send the form posting to ``.../<action>`` as a plain POST (no htmx swap: the full answer
    page is what the screenshot shows), then wait for that answer to replace the page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    form = driver.find_element(By.CSS_SELECTOR, f"form[action$='/{action}']")
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    old = driver.find_element(By.TAG_NAME, "html")
    driver.execute_script("arguments[0].submit()", form)  # HTMLFormElement.submit: no submit event, no htmx
    WebDriverWait(driver, 10).until(lambda _: is_gone(old))


def take(out: Path) -> dict[str, int]:
    """Every screenshot into ``out``; returns the size of each file written, by name."""
    from selenium.webdriver.common.by import By

    from tenantkit.ui import PAGES

    example = load_example()
    organization = f"{example.PREFIX}/organizations/{example.ORGANIZATION}"
    sizes: dict[str, int] = {}
    out.mkdir(parents=True, exist_ok=True)

    with (
        tempfile.TemporaryDirectory() as directory,
        serve(example, f"sqlite:///{directory}/shots.sqlite3") as base,
    ):
        driver = browser()
        try:

            def save(name: str) -> None:
                driver.find_element(By.TAG_NAME, "h1")  # the page is there (implicit wait)
                data = optimize(full_page_png(driver))
                (out / f"{name}.png").write_bytes(data)
                sizes[name] = len(data)

            def sign_in(user: str) -> None:
                driver.get(f"{base}/example-sign-in?user={user}&email={user}@acme.example")

            sign_in("alice")
            # The organization's pages as its OWNER sees them, in the order of PAGES (the accept page and
            # the deliveries of one endpoint are reached through links below).
            for page in PAGES:
                if page.name == "webhook-deliveries":
                    driver.get(f"{base}{organization}/webhooks")
                    driver.find_element(By.CSS_SELECTOR, "a[href$='/deliveries']").click()
                    save(page.name)
                elif page.organization:
                    path = page.path.replace("{organization_id}", example.ORGANIZATION)
                    driver.get(f"{base}{example.PREFIX}{path}")
                    save(page.name)

            driver.get(f"{base}{organization}/api-keys")
            _submit(
                driver, "issue", {"name": "Staging deploy", "scopes": "reports:read", "expires_in_days": "30"}
            )
            driver.find_element(By.ID, "tk-secret-value")
            save(ISSUED)

            # An invitation made on the team page, its link opened by the invitee: the accept page.
            driver.get(f"{base}{organization}/team")
            _submit(driver, "invite", {"email": "frank@acme.example"})
            link = driver.find_element(By.ID, "tk-secret-value").get_attribute("value")
            sign_in("frank")
            driver.get(link)
            save("accept")
        finally:
            driver.quit()

    expected = {page.name for page in PAGES} | {ISSUED}
    missing = sorted(expected - set(sizes))
    if missing:
        raise SystemExit(f"no screenshot of {missing}: a page this tool does not reach yet")
    return sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT})")
    arguments = parser.parse_args(argv)
    started = time.monotonic()
    sizes = take(arguments.out)
    out = arguments.out.resolve()
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    for name, size in sorted(sizes.items()):
        print(f"{shown / name}.png  {size / 1024:.0f} KiB")
    print(f"{len(sizes)} screenshots in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
