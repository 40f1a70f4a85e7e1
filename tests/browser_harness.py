"""What the browser tests share (``test_pages.py``, ``test_lrm.py``): Debian's Chromium driven
by Playwright (launched by path: browsers cannot be downloaded here), an app served by
uvicorn in a thread on a free loopback port, and the rule for a missing part (skipped with
the reason outside CI, a failure with ``CI=true``)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import IN_CI

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = Path(os.environ.get("GYROPHARE_CHROMIUM", "/usr/bin/chromium"))


def need(condition: bool, message: str) -> None:
    """Skip (fail under CI) with ``message`` unless ``condition``."""
    if not condition:
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on ``127.0.0.1:port`` (lifespan on), until the
    block ends; yields its base URL."""
    import uvicorn

    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                       timeout_graceful_shutdown=1, lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not uv.started:
        assert thread.is_alive() and time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium under Playwright (skipped, or failed under CI, when missing)."""
    need(sync_playwright is not None, "playwright is not installed (pip install -e '.[test]')")
    need(CHROMIUM.is_file(), f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Watch:
    """Console errors, failed requests, error answers and requests leaving the server at
    ``base`` (a CDN, say) on ``page``; :meth:`clean` asserts there were none."""

    def __init__(self, page: Page, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.bad: list[str] = []
        self.outside: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url} {r.failure}"))
        page.on("response", lambda r: self.bad.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        page.on("request", lambda r: self.outside.append(r.url)
                if not r.url.startswith((base + "/", "data:", "blob:")) else None)

    def clean(self) -> None:
        assert not self.outside, f"requests beyond the test server (a CDN?): {self.outside}"
        assert not self.errors, self.errors
        assert not self.failed, self.failed
        assert not self.bad, self.bad
