"""Signing in, the CSRF refusal and a session that has ended, in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from playwright.sync_api import BrowserContext, Page, expect

from tests.workflow.api.conftest import World
from tests.workflow.web.browser.serve import Console

Serve = Callable[[World], Console]


def test_a_session_shows_the_contests_page_and_korean_renders(
    written: World, console: Serve, context: BrowserContext, page: Page
) -> None:
    c = console(written)
    c.sign_in(context)
    page.goto(c.url + "/office")
    expect(page.get_by_role("heading", level=1)).to_have_text("공모 현황")
    expect(page.locator("main")).to_contain_text("강소형")
    # the Korean text is drawn with a CJK font, not tofu: its glyphs are as wide as the fallback's aren't
    width = page.evaluate(
        "() => { const c = document.createElement('canvas').getContext('2d');"
        " c.font = '16px sans-serif'; return c.measureText('공모').width; }"
    )
    assert width > 20, width


def test_a_page_without_a_session_leads_to_sign_in(written: World, console: Serve, page: Page) -> None:
    c = console(written)
    page.goto(c.url + "/office")
    assert page.url.startswith(c.url + "/signin?next=%2Foffice"), page.url


def test_a_form_whose_csrf_token_was_changed_is_refused_and_changes_nothing(
    written: World, console: Serve, context: BrowserContext, page: Page
) -> None:
    c = console(written)
    c.sign_in(context)
    page.goto(c.url + "/office")
    form = page.locator("form[action='/signout']")
    form.locator("input[name=csrf]").evaluate("input => { input.value = 'x' + input.value.slice(1); }")
    with page.expect_navigation():
        form.get_by_role("button").click()
    assert page.url == c.url + "/signout"
    expect(page.locator("main")).to_contain_text("security token")
    # nothing was changed: the session still works
    page.goto(c.url + "/office")
    expect(page.get_by_role("heading", level=1)).to_have_text("공모 현황")


def test_after_31_idle_minutes_the_next_click_lands_on_the_sign_in_page(
    written: World, console: Serve, context: BrowserContext, page: Page
) -> None:
    c = console(written)
    c.sign_in(context)
    page.goto(c.url + "/office")
    written.clock.set(written.clock.now() + timedelta(minutes=31))
    page.get_by_role("navigation").get_by_role("link").first.click()
    page.wait_for_url(re.compile(r"/signin\?"))
    assert "/signin?next=" in page.url
    expect(page.locator("main")).to_contain_text("sign in again")
