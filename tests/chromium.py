"""Debian's Chromium under Selenium, and a loopback server to point it at: shared by the pages' browser
tests and ``tools/screenshots.py`` (which imports this module; nothing here needs pytest).

Selenium drives ``/usr/bin/chromium`` through ``/usr/bin/chromedriver`` (``apt-get install chromium
chromium-driver``); Selenium Manager is kept offline, so no browser or driver is ever downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["CHROMEDRIVER", "CHROMIUM", "chromium", "free_port", "is_gone", "missing", "serve_asgi"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def missing() -> list[str]:
    """The paths of Chromium and its driver that are not installed."""
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]


def chromium(
    *,
    javascript: bool = True,
    profile: Path | None = None,
    arguments: Sequence[str] = (),
    implicit_wait: float = 2,
) -> Any:
    """A headless Chromium; with ``profile``, in that profile directory (to read after it quits), and with
    ``arguments`` added to the command line (a window size, hidden scrollbars)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never downloads a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        *arguments,
    ):
        options.add_argument(argument)
    if profile is not None:
        options.add_argument(f"--user-data-dir={profile}")
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(implicit_wait)
    return driver


def is_gone(element: Any) -> bool:
    """Whether ``element`` left the document (the answer replaced it). Chromium's driver reports a node of a
    replaced document either as stale or as "does not belong to the document": both mean gone."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve_asgi(app: Any, *, log_level: str = "warning", log_config: Any = None) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port, in a thread, stopped on leaving; yields its base URL.

    ``log_config=None`` leaves uvicorn's loggers (its access log included) propagating to the root logger.
    """
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level=log_level, log_config=log_config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
