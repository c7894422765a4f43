"""Fixtures for the browser tests: `chromium`, a headless Chromium (the test
is skipped, saying why, when Chromium or Playwright is missing)."""
from __future__ import annotations

from tests.clients.browser_support import chromium  # noqa: F401  (a fixture)
