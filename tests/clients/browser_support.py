"""Headless Chromium for the browser tests: Debian's `chromium` driven by
Playwright through `executable_path` (Playwright's own browser download is
not used). Tests skip, saying why, where either is missing."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("HAMLET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def chromium_path() -> str:
    path = CHROMIUM if os.path.isabs(CHROMIUM) else shutil.which(CHROMIUM)
    if not path or not os.access(path, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return path


async def launch_chromium(playwright):
    return await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS,
                                            headless=True)


def artifact(name: str) -> Path:
    """A path under test-artifacts/ (git-ignored) for screenshots and logs."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


@pytest.fixture
async def chromium():
    """A launched headless Chromium, closed after the test."""
    chromium_path()  # skips when the browser is missing
    async_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    async with async_api.async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            yield browser
        finally:
            await browser.close()
