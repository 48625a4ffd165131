"""Signing in, the CSRF refusal and a session that has ended, in Chromium."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, expect

from gongmo.workflow.web.auth import COOKIE
from tests.workflow.api.conftest import World
from tests.workflow.web.browser.serve import OFFICE_EMAIL, Console, deliver_to_maildir, mails_to, staff

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


def test_signing_in_through_the_link_read_from_the_maildir(
    written: World, console: Serve, page: Page, tmp_path: Path
) -> None:
    c = console(written)
    staff(written.app)
    page.goto(c.url + "/office")
    assert page.url.startswith(c.url + "/signin?next=%2Foffice"), page.url
    page.get_by_label("이메일 주소").fill(OFFICE_EMAIL)
    page.get_by_role("button", name="로그인 링크 받기").click()
    expect(page.locator("main [role=status]")).to_be_visible()
    assert COOKIE not in {k["name"] for k in page.context.cookies()}, "no session before the link is used"

    maildir = tmp_path / "maildir"
    deliver_to_maildir(written.app, maildir)
    [mail] = mails_to(maildir, OFFICE_EMAIL)
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    [link] = re.findall(r"https?://\S+/signin/\S+", body.get_content())
    address = urlsplit(link)
    page.goto(c.url + address.path + (f"?{address.query}" if address.query else ""))
    expect(page.locator("main")).to_contain_text(OFFICE_EMAIL)
    page.get_by_role("button", name="로그인", exact=True).click()
    page.wait_for_url(c.url + "/office")
    expect(page.get_by_role("heading", level=1)).to_have_text("공모 현황")
    expect(page.locator("header")).to_contain_text(OFFICE_EMAIL)

    # the link works once: a second use is refused with the way to ask for another
    page.goto(c.url + address.path)
    expect(page.get_by_role("alert")).to_be_visible()


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
