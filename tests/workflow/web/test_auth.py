"""Signing in to the console by an e-mailed one-time link (web/auth.py, outbox/signin.py,
core/sessions.py): the link works once and for 15 minutes, no enumeration of accounts, rate
limits per address and per client, CSRF on the sign-in forms and on sign-out, `next` never
leaving the site, and the mail going through the outbox to a Maildir."""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import Callable
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.notifications.transport import MaildirTransport
from gongmo.states.errors import NotFound
from gongmo.workflow.core import sessions, tokens
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT_CONTACT, AUDIT, EVALUATOR, OUTBOX, SIGNIN_ATTEMPT, SIGNIN_LINK, STAFF
from gongmo.workflow.outbox.dispatch import Mailer
from gongmo.workflow.read import outbox as outbox_rows
from gongmo.workflow.stages import applicants, committee
from tests.conftest import kst, make_app
from tests.workflow.api.conftest import ADMIN, World
from tests.workflow.web.conftest import COOKIE, Browser, text_of

Make = Callable[[World], Browser]
STAFF_EMAIL = "office-kim@molit.go.kr"
LINK = re.compile(r"/signin/([A-Za-z0-9_-]{40,})")
SENT_KO = "이 주소로 등록된 계정이 있으면 로그인 링크를 보냈습니다"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def ask(b: Browser, address: str, next_path: str = "", **headers: str) -> tuple[int, str]:
    """Open the sign-in page and send its form (its own token, its cookie), as a browser does."""
    page = b.get("/signin")
    answer = b.http.post(
        "/signin",
        data={"csrf": csrf_of(page.text), "email": address, "next": next_path},
        headers=headers,
        follow_redirects=False,
    )
    return answer.status_code, answer.text


def use(b: Browser, token: str, next_path: str = "") -> tuple[int, str, str]:
    """Open the link's page and press its button; returns (status, location, text)."""
    page = b.get(f"/signin/{token}")
    if page.status_code != 200:
        return page.status_code, "", text_of(page.text)
    answer = b.http.post(
        f"/signin/{token}", data={"csrf": csrf_of(page.text), "next": next_path}, follow_redirects=False
    )
    return answer.status_code, answer.headers.get("location", ""), text_of(answer.text)


def link_in_outbox(w: World, address: str = STAFF_EMAIL) -> str:
    """The token of the newest sign-in mail to `address`, as the database holds it."""
    with read(w.app.db) as conn:
        body = conn.execute(
            sa.select(OUTBOX.c.body_text)
            .where(OUTBOX.c.notice == "signin_link", OUTBOX.c.to_addr == address)
            .order_by(OUTBOX.c.id.desc())
        ).scalar()
    assert body is not None, f"no sign-in mail to {address}"
    found = LINK.search(body)
    assert found, body
    return found.group(1)


def signin_mails(w: World) -> int:
    return w.count(OUTBOX, OUTBOX.c.notice == "signin_link")


@pytest.fixture
def staffed(opened: World) -> World:
    sessions.add_staff(opened.app, STAFF_EMAIL, name="김하늘", created_by="test")
    return opened


def deliver_to_maildir(w: World, maildir: Path) -> list[email.message.EmailMessage]:
    """The daemon's dispatcher, delivering what is due to a Maildir (as the demo does)."""

    async def go() -> None:
        mailer = Mailer(w.app, MaildirTransport(maildir), "test")
        try:
            await mailer.deliver_due()
        finally:
            await mailer.transport.close()

    asyncio.run(go())
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in sorted((maildir / "new").iterdir())
    ]


def link_in_mail(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    found = LINK.search(part.get_content())
    assert found, part.get_content()
    return found.group(1)


def test_a_link_mailed_through_the_outbox_to_the_maildir_signs_in_once(
    staffed: World, browser: Make, tmp_path: Path
) -> None:
    b = browser(staffed)
    status, text = ask(b, STAFF_EMAIL.upper())  # an address is matched whatever its case
    assert status == 200 and SENT_KO in text_of(text)
    mails = [m for m in deliver_to_maildir(staffed, tmp_path / "maildir") if m["X-Gongmo-Notice"] == "signin_link"]
    assert [m["To"] for m in mails] == [STAFF_EMAIL]
    assert "로그인 링크" in str(mails[0]["Subject"]) and mails[0]["X-Gongmo-Notice"] == "signin_link"
    token = link_in_mail(mails[0])
    assert staffed.rows(OUTBOX, OUTBOX.c.notice == "signin_link")[0]["state"] == "sent"

    # Fetching the link (a mail scanner) shows a button and uses nothing up.
    for _ in range(2):
        page = b.get(f"/signin/{token}")
        assert page.status_code == 200 and "로그인" in text_of(page.text) and STAFF_EMAIL in text_of(page.text)
    assert staffed.rows(SIGNIN_LINK)[0]["used_at"] is None

    status, location, _ = use(b, token)
    assert (status, location) == (303, "/office")
    assert b.http.cookies.get(COOKIE)
    office = b.get("/office")
    assert office.status_code == 200 and STAFF_EMAIL in office.text

    again = browser(staffed)
    status, _, text = use(again, token)
    assert status == 410 and "이미 사용한 로그인 링크" in text and "새 로그인 링크 요청하기" in text


def test_the_session_cookie_is_httponly_lax_and_the_session_acts_as_the_staff_email(
    staffed: World, browser: Make
) -> None:
    b = browser(staffed)
    ask(b, STAFF_EMAIL)
    page = b.get(f"/signin/{link_in_outbox(staffed)}")
    answer = b.http.post(page.url.path, data={"csrf": csrf_of(page.text), "next": ""}, follow_redirects=False)
    cookie = answer.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    raw = b.http.cookies.get(COOKIE)
    assert raw is not None
    with read(staffed.app.db) as conn:
        found = sessions.authenticate(conn, raw, staffed.clock.now())
    assert found is not None and found.principal.actor.name == STAFF_EMAIL and found.role == "admin"


def test_a_link_expires_after_15_minutes(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    ask(b, STAFF_EMAIL)
    late = link_in_outbox(staffed)
    ask(b, STAFF_EMAIL)
    in_time = link_in_outbox(staffed)
    staffed.clock.set(staffed.clock.now() + timedelta(minutes=14, seconds=59))
    assert use(browser(staffed), in_time)[:2] == (303, "/office")
    staffed.clock.set(staffed.clock.now() + timedelta(seconds=1))
    status, _, text = use(browser(staffed), late)
    assert status == 410 and "만료된 로그인 링크" in text and "/signin" in b.get(f"/signin/{late}").text


def test_an_unknown_link_says_so_and_counts_as_a_failure(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    status, _, text = use(b, "x" * 43)
    assert status == 404 and "알 수 없는 로그인 링크" in text
    page = b.get("/signin")
    answer = b.http.post("/signin/" + "y" * 43, data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 404
    assert staffed.rows(SIGNIN_ATTEMPT)[-1]["ok"] is False


def test_an_unknown_address_gets_the_same_answer_and_no_mail(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    known = ask(b, STAFF_EMAIL)
    unknown = ask(b, "nobody@molit.go.kr")
    assert known[0] == unknown[0] == 200
    assert text_of(known[1]) == text_of(unknown[1])
    assert signin_mails(staffed) == 1


def test_a_disabled_account_gets_no_mail_its_links_and_sessions_stop(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    ask(b, STAFF_EMAIL)
    token = link_in_outbox(staffed)
    ask(b, STAFF_EMAIL)
    assert use(b, link_in_outbox(staffed))[:2] == (303, "/office")
    assert b.get("/office").status_code == 200
    _, revoked = sessions.disable_staff(staffed.app, STAFF_EMAIL)
    assert revoked == 1
    assert b.get("/office").status_code == 303  # back to the sign-in page
    status, _, text = use(browser(staffed), token)
    assert status == 403 and "사용이 중지" in text
    ask(b, STAFF_EMAIL)
    assert signin_mails(staffed) == 2  # none for the disabled account
    # Even a session opened by other means (not revoked) stops resolving while the account is disabled.
    with write(staffed.app.db) as conn:
        conn.execute(sa.update(STAFF).values(disabled_at=None))
    fresh = browser(staffed).sign_in(subject=STAFF_EMAIL)
    with write(staffed.app.db) as conn:
        conn.execute(sa.update(STAFF).values(disabled_at=staffed.clock.now()))
    assert fresh.get("/office").status_code == 303


def test_link_requests_are_limited_per_address(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    for _ in range(sessions.REQUESTS_PER_ADDRESS):
        assert ask(b, STAFF_EMAIL)[0] == 200
    status, text = ask(b, STAFF_EMAIL)
    assert status == 429 and "15분 뒤" in text_of(text), text_of(text)
    assert ask(b, "nobody@molit.go.kr")[0] == 200  # another address is not limited by this one
    for _ in range(sessions.REQUESTS_PER_ADDRESS):  # an unknown address is limited alike: nothing to learn
        ask(b, "ghost@molit.go.kr")
    assert ask(b, "ghost@molit.go.kr")[0] == 429
    assert signin_mails(staffed) == sessions.REQUESTS_PER_ADDRESS
    staffed.clock.set(staffed.clock.now() + sessions.WINDOW)
    assert ask(b, STAFF_EMAIL)[0] == 200


def test_the_429_page_says_when_in_english_and_sends_retry_after(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    b.get("/signin?lang=en")
    for _ in range(sessions.REQUESTS_PER_ADDRESS):
        ask(b, STAFF_EMAIL)
    page = b.get("/signin")
    answer = b.http.post("/signin", data={"csrf": csrf_of(page.text), "email": STAFF_EMAIL}, follow_redirects=False)
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) == 15 * 60
    assert "Too many attempts: try again in 15 minute(s), at 11:15 KST" in text_of(answer.text)


def test_link_requests_are_limited_per_client(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    for i in range(sessions.REQUESTS_PER_CLIENT):
        assert ask(b, f"someone-{i}@molit.go.kr")[0] == 200
    assert ask(b, STAFF_EMAIL)[0] == 429


def test_failed_link_uses_are_limited_per_client(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    ask(b, STAFF_EMAIL)
    good = link_in_outbox(staffed)
    page = b.get("/signin")
    token = csrf_of(page.text)
    for i in range(sessions.FAILED_LINKS_PER_CLIENT):
        answer = b.http.post(f"/signin/guess-{i:040d}", data={"csrf": token}, follow_redirects=False)
        assert answer.status_code == 404
    answer = b.http.post(f"/signin/{good}", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 429 and "retry-after" in answer.headers
    assert staffed.rows(SIGNIN_LINK)[0]["used_at"] is None  # refused before the link was looked at
    staffed.clock.set(staffed.clock.now() + timedelta(minutes=14, seconds=59))
    assert use(b, good)[0] == 429  # the oldest failure is still inside the 15 minutes
    staffed.clock.set(staffed.clock.now() + timedelta(seconds=1))
    ask(b, STAFF_EMAIL)
    assert use(b, link_in_outbox(staffed))[:2] == (303, "/office")


def test_the_signin_form_refuses_a_post_without_its_token_or_from_another_site(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    no_cookie = b.http.post("/signin", data={"email": STAFF_EMAIL, "csrf": "0" * 64}, follow_redirects=False)
    assert no_cookie.status_code == 403 and "security token" in text_of(no_cookie.text)
    page = b.get("/signin")
    wrong = b.http.post("/signin", data={"email": STAFF_EMAIL, "csrf": "0" * 64}, follow_redirects=False)
    assert wrong.status_code == 403
    foreign = b.http.post(
        "/signin",
        data={"email": STAFF_EMAIL, "csrf": csrf_of(page.text)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403 and "another site" in text_of(foreign.text)
    assert signin_mails(staffed) == 0
    same = ask(b, STAFF_EMAIL, Origin="http://127.0.0.1")
    assert same[0] == 200 and signin_mails(staffed) == 1
    # The link's button too.
    token = link_in_outbox(staffed)
    refused = b.http.post(f"/signin/{token}", data={"csrf": "0" * 64}, follow_redirects=False)
    assert refused.status_code == 403 and staffed.rows(SIGNIN_LINK)[0]["used_at"] is None


def test_signout_needs_the_csrf_token_and_ends_the_session(staffed: World, browser: Make) -> None:
    b = browser(staffed).sign_in(subject=STAFF_EMAIL)
    refused = b.post("/signout", csrf=False)
    assert refused.status_code == 403 and b.get("/office").status_code == 200
    forged = b.post("/signout", {"csrf": "0" * 64})
    assert forged.status_code == 403 and b.get("/office").status_code == 200
    out = b.post("/signout")
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    raw = b.raw
    assert raw is not None
    b.http.cookies.set(COOKIE, raw)  # the old cookie, kept by a browser: revoked on the server
    assert b.get("/office").status_code == 303


@pytest.mark.parametrize(
    "given,goes",
    [
        ("/office/outbox?state=dead", "/office/outbox?state=dead"),
        ("https://evil.example/office", "/office"),
        ("//evil.example/office", "/office"),
        ("/\\evil.example", "/office"),
        ("javascript:alert(1)", "/office"),
        ("", "/office"),
    ],
)
def test_next_is_a_path_of_this_site_only(staffed: World, browser: Make, given: str, goes: str) -> None:
    b = browser(staffed)
    ask(b, STAFF_EMAIL, next_path=given)
    assert use(b, link_in_outbox(staffed), next_path=given)[:2] == (303, goes)


def test_the_mailed_link_carries_next_and_the_redirect_to_signin_keeps_it(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    away = b.get("/office/outbox")
    assert away.status_code == 303 and away.headers["location"].startswith("/signin?next=%2Foffice%2Foutbox")
    form = b.get(away.headers["location"])
    assert 'name="next" value="/office/outbox"' in form.text
    ask(b, STAFF_EMAIL, next_path="/office/outbox")
    with read(staffed.app.db) as conn:
        body = conn.execute(sa.select(OUTBOX.c.body_text).where(OUTBOX.c.notice == "signin_link")).scalar_one()
    assert "?next=/office/outbox" in body and body.count("http://127.0.0.1:8470/signin/") == 1
    page = b.get(f"/signin/{link_in_outbox(staffed)}?next=/office/outbox")
    assert 'name="next" value="/office/outbox"' in page.text


def test_the_outbox_hides_the_link_and_shows_a_row_of_no_application(staffed: World, browser: Make) -> None:
    ask(browser(staffed), STAFF_EMAIL)
    token = link_in_outbox(staffed)
    (row,) = staffed.rows(OUTBOX, OUTBOX.c.notice == "signin_link")
    assert row["application_id"] is None and row["language"] == "ko"
    with read(staffed.app.db) as conn:
        shown = outbox_rows.row(conn, row["id"])
        listed = outbox_rows.page(conn, newest_first=True, limit=5)["rows"][0]
    assert shown is not None and token not in str(shown) and shown["body_text"].startswith("(sign-in link hidden)")
    assert listed["application_id"] is None and token not in str(listed)
    api = staffed.get(f"/outbox/{row['id']}", ADMIN)
    assert api.status_code == 200 and token not in api.text and "(sign-in link hidden)" in api.text
    listing = staffed.get("/outbox?state=pending", ADMIN)
    assert listing.status_code == 200 and token not in listing.text
    assert staffed.get("/outbox?track=strong-small-2024", ADMIN).status_code == 200


def test_an_invalid_address_is_refused_beside_the_form(staffed: World, browser: Make) -> None:
    status, text = ask(browser(staffed), "not an address")
    assert status == 422 and "이메일 주소가 아닙니다" in text_of(text) and 'value="not an address"' in text
    assert staffed.count(SIGNIN_ATTEMPT) == 0


def test_the_signin_pages_have_labels_and_no_inline_script(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    page = b.get("/signin")
    assert '<label for="signin-email">' in page.text and 'id="signin-email"' in page.text
    assert "<script>" not in page.text and "onclick" not in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert "gongmo_signin=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/signin" in cookie
    english = b.get("/signin?lang=en")
    assert "Send me a sign-in link" in text_of(english.text)


@pytest.mark.postgres
def test_signing_in_on_postgresql_with_a_mail_of_no_application(
    pg_schema_url: str, browser: Make, tmp_path: Path
) -> None:
    """The migration makes outbox.application_id nullable on PostgreSQL too; the whole flow runs."""
    clock = FixedClock(kst("2024-05-28 11:00"))
    app = make_app(pg_schema_url, clock)
    w = World(app, clock)
    try:
        sessions.add_staff(app, STAFF_EMAIL, created_by="test")
        b = browser(w)
        assert ask(b, STAFF_EMAIL)[0] == 200
        (mail,) = [m for m in deliver_to_maildir(w, tmp_path / "maildir") if m["X-Gongmo-Notice"] == "signin_link"]
        assert use(b, link_in_mail(mail))[:2] == (303, "/office")
        assert b.get("/office").status_code == 200
        (row,) = w.rows(OUTBOX, OUTBOX.c.notice == "signin_link")
        assert row["application_id"] is None and row["state"] == "sent"
    finally:
        w.close()


# -- the portals: evaluators and the contacts of applicants (issue 24) -----------------------------

KIM = "kim@univ-seoul.example"  # an evaluator of the 2024 scenario (ko)
SUWON, SUWON_MAIL = "41110", "smart@suwon.example"  # 수원시's own contact (ko)
CHEONAN, CHEONAN_MAIL = "44130", "smart@cheonan.example"  # 천안시 (en)
SECOND = "park.jh@suwon.example"  # a second contact of 수원시


def session_of(w: World, b: Browser) -> sessions.Session:
    raw = b.http.cookies.get(COOKIE)
    assert raw is not None, "no session cookie"
    with read(w.app.db) as conn:
        found = sessions.authenticate(conn, raw, w.clock.now())
    assert found is not None
    return found


def links_in(w: World, address: str) -> list[str]:
    """Every link token in the newest sign-in mail to `address`, in the mail's order."""
    with read(w.app.db) as conn:
        body = conn.execute(
            sa.select(OUTBOX.c.body_text)
            .where(OUTBOX.c.notice == "signin_link", OUTBOX.c.to_addr == address)
            .order_by(OUTBOX.c.id.desc())
        ).scalar()
    assert body is not None, f"no sign-in mail to {address}"
    return LINK.findall(body)


def test_an_evaluator_signs_in_from_the_maildir_link_and_lands_on_its_pages(
    opened: World, browser: Make, tmp_path: Path
) -> None:
    b = browser(opened)
    assert ask(b, KIM.upper())[0] == 200
    (mail,) = [m for m in deliver_to_maildir(opened, tmp_path / "maildir") if m["X-Gongmo-Notice"] == "signin_link"]
    assert mail["To"] == KIM and "평가위원 화면" in mail.get_body(preferencelist=("plain",)).get_content()
    token = link_in_mail(mail)
    assert "평가위원 화면" in text_of(b.get(f"/signin/{token}").text)
    status, location, _ = use(b, token, next_path="/office/outbox")  # never sent to the office's pages
    assert (status, location) == (303, "/evaluator")
    found = session_of(opened, b)
    assert (found.role, found.subject, found.email) == ("evaluator", KIM, KIM)
    assert found.principal.evaluator_id is not None and found.principal.actor.name == KIM
    assert b.get("/evaluator").status_code == 200
    assert b.get("/office").status_code == 403


def test_a_contact_of_an_applicant_signs_in_to_its_pages_acting_as_its_code(
    opened: World, browser: Make, tmp_path: Path
) -> None:
    b = browser(opened)
    ask(b, SUWON_MAIL, next_path="/applicant")
    (mail,) = [m for m in deliver_to_maildir(opened, tmp_path / "maildir") if m["X-Gongmo-Notice"] == "signin_link"]
    assert "수원시 (41110) 신청기관 화면" in mail.get_body(preferencelist=("plain",)).get_content()
    token = link_in_mail(mail)
    assert "신청기관 화면: 수원시 (41110)" in text_of(b.get(f"/signin/{token}").text)
    assert use(b, token)[:2] == (303, "/applicant")
    found = session_of(opened, b)
    assert (found.role, found.subject, found.email) == ("applicant", SUWON, SUWON_MAIL)
    assert found.principal.actor.name == f"{SUWON} ({SUWON_MAIL})"
    assert found.principal.applicant_id == opened.row(SUWON)["applicant_id"]
    assert b.get("/applicant").status_code == 200


def test_two_contacts_of_one_government_see_the_same_applications(opened: World, browser: Make) -> None:
    applicants.add_contact(opened.app, SUWON, SECOND.upper(), name="박지훈")
    seen = []
    for address in (SUWON_MAIL, SECOND):
        b = browser(opened)
        ask(b, address)
        assert use(b, link_in_outbox(opened, address))[:2] == (303, "/applicant")
        found = session_of(opened, b)
        assert (found.subject, found.email) == (SUWON, address)
        page = b.get("/applicant")
        assert page.status_code == 200
        seen.append((found.principal.applicant_id, re.findall(r"/applicant/applications/(\d+)", page.text)))
    assert seen[0] == seen[1] and str(opened.id(SUWON)) in seen[0][1]


def test_an_address_that_is_staff_and_evaluator_gets_one_mail_with_a_link_each(
    opened: World, browser: Make, tmp_path: Path
) -> None:
    sessions.add_staff(opened.app, KIM, name="김교수", created_by="test")
    applicants.add_contact(opened.app, CHEONAN, KIM)  # and a contact of 천안시 too
    ask(browser(opened), KIM)
    (mail,) = [m for m in deliver_to_maildir(opened, tmp_path / "maildir") if m["X-Gongmo-Notice"] == "signin_link"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "화면이 3개입니다" in text
    labels = ["1. 공모 운영 화면", "2. 평가위원 화면", "3. 신청기관 화면: 천안시 (44130)"]
    assert all(label in text for label in labels), text
    tokens = links_in(opened, KIM)
    assert len(tokens) == 3 and len(set(tokens)) == 3
    homes = []
    for token in tokens:
        b = browser(opened)
        _, location, _ = use(b, token)
        homes.append((location, session_of(opened, b).role))
    assert homes == [("/office", "admin"), ("/evaluator", "evaluator"), ("/applicant", "applicant")]


def test_no_enumeration_the_same_answer_for_staff_evaluator_contact_and_nobody(staffed: World, browser: Make) -> None:
    b = browser(staffed)
    answers = {address: ask(b, address) for address in (STAFF_EMAIL, KIM, CHEONAN_MAIL, "nobody@example.org")}
    assert {status for status, _ in answers.values()} == {200}
    assert len({text_of(text) for _, text in answers.values()}) == 1  # in the browser's language, not the person's
    assert signin_mails(staffed) == 3


def test_the_mail_and_the_link_page_speak_the_persons_language(opened: World, browser: Make) -> None:
    with write(opened.app.db) as conn:
        conn.execute(sa.update(EVALUATOR).where(EVALUATOR.c.email == KIM).values(language="en"))
    b = browser(opened)
    ask(b, KIM)
    ask(b, CHEONAN_MAIL)
    for address, words in ((KIM, "the evaluators' pages"), (CHEONAN_MAIL, "the applicants' pages of 천안시 (44130)")):
        (row,) = opened.rows(OUTBOX, OUTBOX.c.to_addr == address, OUTBOX.c.notice == "signin_link")
        assert row["language"] == "en" and "sign-in link" in row["subject"] and words in row["body_text"]
        page = browser(opened).get(f"/signin/{links_in(opened, address)[0]}")
        assert 'lang="en"' in page.text and "Press the button below" in text_of(page.text)
    ask(b, SUWON_MAIL)
    (row,) = opened.rows(OUTBOX, OUTBOX.c.to_addr == SUWON_MAIL, OUTBOX.c.notice == "signin_link")
    assert row["language"] == "ko"


def test_a_removed_contact_gets_no_link_and_its_session_and_links_end(opened: World, browser: Make) -> None:
    applicants.add_contact(opened.app, SUWON, SECOND)
    b = browser(opened)
    ask(b, SECOND)
    assert use(b, link_in_outbox(opened, SECOND))[:2] == (303, "/applicant")
    ask(b, SECOND)
    unused = link_in_outbox(opened, SECOND)
    other = browser(opened)
    ask(other, SUWON_MAIL)
    use(other, link_in_outbox(opened, SUWON_MAIL))
    assert b.get("/applicant").status_code == 200
    done = applicants.remove_contact(opened.app, SUWON, SECOND)
    assert done["sessions_ended"] == 1
    assert b.get("/applicant").status_code == 303  # back to the sign-in page
    assert use(browser(opened), unused)[0] == 403  # its link is refused as well
    assert other.get("/applicant").status_code == 200  # the other contact goes on
    before = signin_mails(opened)
    ask(browser(opened), SECOND)
    assert signin_mails(opened) == before  # no mail: it is nobody's address now


def test_a_session_of_a_contact_removed_behind_its_back_stops_resolving(opened: World, browser: Make) -> None:
    """Removed in the database without revoking anything (an import, a script): authenticate checks."""
    applicants.add_contact(opened.app, SUWON, SECOND)
    raw = sessions.open_session(opened.app, "applicant", SUWON, client="test", email=SECOND)
    with read(opened.app.db) as conn:
        assert sessions.authenticate(conn, raw, opened.clock.now()) is not None
    with write(opened.app.db) as conn:
        conn.execute(sa.delete(APPLICANT_CONTACT).where(APPLICANT_CONTACT.c.email == SECOND))
    with read(opened.app.db) as conn:
        assert sessions.authenticate(conn, raw, opened.clock.now()) is None
    with pytest.raises(NotFound):
        sessions.open_session(opened.app, "applicant", SUWON, email=SECOND)


def test_an_evaluator_removed_from_the_committee_loses_its_session(opened: World, browser: Make) -> None:
    b = browser(opened)
    ask(b, KIM)
    use(b, link_in_outbox(opened, KIM))
    assert b.get("/evaluator").status_code == 200
    with write(opened.app.db) as conn:
        conn.execute(sa.update(EVALUATOR).where(EVALUATOR.c.email == KIM).values(email="gone@univ-seoul.example"))
    assert b.get("/evaluator").status_code == 303


def test_the_audit_row_of_a_contacts_action_names_the_person(opened: World, browser: Make) -> None:
    applicants.add_contact(opened.app, SUWON, SECOND)
    b = browser(opened)
    ask(b, SECOND)
    use(b, link_in_outbox(opened, SECOND))
    who = session_of(opened, b).principal
    opened.app.moves.apply(opened.id(SUWON), "withdraw", who.actor, "계획 변경")
    assert opened.state(SUWON) == "withdrawn"
    (row,) = opened.rows(AUDIT, AUDIT.c.application_id == opened.id(SUWON), AUDIT.c.trigger == "withdraw")
    assert (row["actor"], row["role"]) == (f"{SUWON} ({SECOND})", "applicant")
    # An API token of the same applicant still acts as the code alone.
    assert tokens.Principal(1, who.role, SUWON, who.applicant_id).actor.name == SUWON


@pytest.mark.postgres
def test_an_evaluator_and_two_contacts_sign_in_on_postgresql(pg_schema_url: str, browser: Make, tmp_path: Path) -> None:
    """Migration 0013 on PostgreSQL: contacts, the session's e-mail, the evaluator's language."""
    clock = FixedClock(kst("2024-05-28 11:00"))
    app = make_app(pg_schema_url, clock)
    w = World(app, clock)
    try:
        evaluators = tmp_path / "evaluators.csv"
        evaluators.write_text(
            "name,email,affiliation,region,home_code,conflicts,language\n김교수,kim@univ-seoul.example,서울대학교,서울,,,en\n",
            encoding="utf-8",
        )
        with write(app.db) as conn:
            committee.store_evaluators(conn, committee.parse_evaluators(evaluators), clock.now())
        applicants.add_contact(app, "41110", SECOND)
        for address, home, role in (
            (KIM, "/evaluator", "evaluator"),
            ("smartcity@suwon.lg.example", "/applicant", "applicant"),
            (SECOND, "/applicant", "applicant"),
        ):
            b = browser(w)
            assert ask(b, address)[0] == 200
            assert use(b, link_in_outbox(w, address))[:2] == (303, home)
            found = session_of(w, b)
            assert (found.role, found.email) == (role, address)
            assert b.get(home).status_code == 200
        (row,) = w.rows(OUTBOX, OUTBOX.c.to_addr == KIM)
        assert row["language"] == "en"
        assert applicants.remove_contact(app, "41110", SECOND)["sessions_ended"] == 1
    finally:
        w.close()
