"""Two pages open on one application: the second decision, made on the version both were shown,
gets "someone changed this first" and changes nothing."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import BrowserContext, Locator, Page, expect

from gongmo.workflow.core.models import AUDIT
from tests.workflow.api.conftest import SEJONG, World
from tests.workflow.web.browser.serve import Console


def decide(form: Locator, page: Page) -> int:
    """Send one decision form (its reason filled when it asks for one); the answer's status."""
    reason = form.locator("textarea")
    if reason.count():
        reason.fill("브라우저 시험: 동시 결정")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        form.get_by_role("button").click()
    page.wait_for_load_state()
    return answer.value.status


def test_a_decision_on_a_stale_page_is_refused_and_changes_nothing(
    world: Callable[..., World], db_url: str, console: Callable[[World], Console], context: BrowserContext
) -> None:
    """On SQLite and on PostgreSQL (the browser tests' one flow there)."""
    written = world("written", db_url)
    c = console(written)
    c.sign_in(context)
    url = f"{c.url}/office/applications/{written.id(SEJONG)}"
    first, second = context.new_page(), context.new_page()
    first.goto(url)
    second.goto(url)
    version = written.version(SEJONG)
    forms = first.locator("form.decision")
    assert forms.count() >= 1, "the application page offers no decision to take"
    trigger = forms.first.locator("input[name=trigger]").get_attribute("value")

    assert decide(forms.first, first) in (200, 303)
    expect(first.get_by_role("status")).to_be_visible()
    assert written.version(SEJONG) == version + 1
    assert written.rows(AUDIT, AUDIT.c.application_id == written.id(SEJONG))[-1]["trigger"] == trigger
    after = (written.state(SEJONG), written.count(AUDIT))

    status = decide(second.locator("form.decision").first, second)
    assert status == 409
    stale = second.locator("#stale")
    expect(stale).to_be_visible()
    expect(stale).to_contain_text(f"{version + 1}")
    assert written.version(SEJONG) == version + 1  # one decision, not two
    assert (written.state(SEJONG), written.count(AUDIT)) == after
