"""Fixtures for real-browser tests: a JupyterLab server on 127.0.0.1 and Debian's chromium via Playwright.

The server runs with a token, a temporary root, settings and runtime directories, and no news
or update checks (see _jupyter.py). It is started once per comm mode: "perCommTarget" (JupyterLab
4.6's default: widget messages run on a kernel subshell thread) and "disabled" (main shell), so
every browser test runs under both unless it narrows ``lab`` with indirect parametrization.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _jupyter import CHROMIUM, CHROMIUM_ARGS, ROOT, serve_lab  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts"
COMM_MODES = ("perCommTarget", "disabled")


@pytest.fixture(scope="session", params=COMM_MODES)
def lab(request, tmp_path_factory):
    with serve_lab(tmp_path_factory.mktemp(f"lab-{request.param}"), request.param) as lab:
        yield lab


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
