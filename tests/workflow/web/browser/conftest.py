"""The browser tests' fixtures: Chromium launched once per test module and worker, a new context
(cookies, storage) per test, and `console(world)`: the world's app served for real on a free port
until the test ends. Every test here is marked `browser` (pytest -m browser / -m 'not browser')."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.workflow.api.conftest import World
from tests.workflow.web.browser.serve import CHROMIUM, Cast, Console, launch

# a click that waits for more than this has failed (the default is 30 s)
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.browser)


# Module scope, not session: while Playwright's sync API is started it holds this thread's event
# loop as running, so any other test on the same worker that calls asyncio.run() would fail
# ("cannot be called from a running event loop"). pytest ends a module's fixtures before the next
# module's first test, so Chromium lives exactly while this folder's tests run (~0.5 s a launch).
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk; CI installs it)")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def console() -> Iterator[Callable[[World], Console]]:
    """console(world) -> the world's app served on 127.0.0.1 until the test ends."""
    running: list[Console] = []

    def serve(w: World) -> Console:
        running.append(Console(w.app).__enter__())
        return running[-1]

    yield serve
    for c in reversed(running):
        c.__exit__(None, None, None)


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for one test; Korean first, as the console."""
    ctx = chromium.new_context(locale="ko-KR", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def cast(chromium: Browser, tmp_path: Path) -> Iterator[Callable[[Console], Cast]]:
    """cast(console) -> a Cast: the people of one contest at one Chromium, signing in by mail."""
    made: list[Cast] = []

    def build(console: Console) -> Cast:
        made.append(Cast(chromium, console, tmp_path / "maildir", TIMEOUT_MS))
        return made[-1]

    yield build
    for c in made:
        c.close()
