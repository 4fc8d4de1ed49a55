"""Headless Chromium through Playwright's async API, on the test's own event loop.

Playwright's own browser download is not used: the browser is the system Chromium (Debian's
``chromium`` package, ``/usr/lib/chromium/chromium``), or ``CHROMIUM_PATH``.  Without the
``playwright`` package or a Chromium the tests are skipped, with the reason and the install
commands; with ``REQUIRE_BROWSER=1`` (CI) they fail instead.

Screenshots go to the test's ``tmp_path`` and, when ``BROWSER_ARTIFACTS`` names a directory,
there too (CI uploads it).  ``UPDATE_DOCS_SCREENSHOT=1`` also writes the documentation's
``docs/_static/console.png``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

INSTALL = (
    "apt-get install -y --no-install-recommends chromium fonts-liberation; "
    'pip install "playwright==1.65.3" (never `playwright install`)'
)
DOCS_STATIC = Path(__file__).resolve().parents[2] / "docs" / "_static"


def find_chromium() -> str | None:
    """The system Chromium: ``CHROMIUM_PATH``, Debian's real binary, or one on ``PATH``."""
    for path in (
        os.environ.get("CHROMIUM_PATH"),
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _missing(reason: str) -> NoReturn:
    message = f"{reason}; to run the browser tests: {INSTALL}"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    executable = find_chromium()
    if executable is None:
        _missing("no system Chromium found")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable)  # headless
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()


class Screenshots:
    """Saves screenshots under ``tmp_path`` (and ``BROWSER_ARTIFACTS``, docs on request)."""

    def __init__(self, tmp_path: Path, test_name: str) -> None:
        self.dir = tmp_path / "screenshots"
        self.dir.mkdir()
        extra = os.environ.get("BROWSER_ARTIFACTS")
        self.artifacts = Path(extra) / test_name if extra else None

    async def take(self, page: Page, name: str, *, docs: bool = False) -> Path:
        path = self.dir / f"{name}.png"
        await page.screenshot(path=path, full_page=True)
        if self.artifacts is not None:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.artifacts / path.name)
        if docs and os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
            shutil.copy(path, DOCS_STATIC / "console.png")
        return path


@pytest.fixture
def screenshots(tmp_path: Path, request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(tmp_path, request.node.name)
