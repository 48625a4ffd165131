"""The console's contests page (/office) and what every page shares: sign-in required, the
security headers, the language switch, HTML refusals."""

from __future__ import annotations

from collections.abc import Callable

from tests.workflow.api.conftest import World
from tests.workflow.web.conftest import Browser, text_of

Make = Callable[[World], Browser]


def test_the_contests_page_shows_each_track_with_its_funnel(
    written: World, browser: Callable[[World], Browser]
) -> None:
    b = browser(written).sign_in()
    page = b.get("/office")
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert "공모 현황" in text and "강소형" in text
    assert "전체: 26" in text, text  # 26 invited in the 2024 strong-and-small track: 10 in written evaluation
    assert "서면평가" in text


def test_a_page_without_a_session_sends_the_browser_to_sign_in(
    written: World, browser: Callable[[World], Browser]
) -> None:
    page = browser(written).get("/office")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/signin?next=%2Foffice")


def test_pages_carry_a_csp_without_inline_script_and_no_framing(
    written: World, browser: Callable[[World], Browser]
) -> None:
    page = browser(written).sign_in().get("/office")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in page.text and "onclick" not in page.text


def test_the_language_switch_is_kept(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    assert "Contests" in text_of(b.get("/office?lang=en").text)
    assert "Contests" in text_of(b.get("/office").text)  # the cookie keeps it
    assert "공모 현황" in text_of(b.get("/office?lang=ko").text)


def test_the_api_still_answers_json_beside_the_pages(written: World, browser: Make) -> None:
    answer = browser(written).get("/contests")
    assert answer.status_code == 401 and answer.json()["error"].startswith("no API token")
