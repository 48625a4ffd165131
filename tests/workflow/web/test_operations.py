"""The console's operations pages (workflow/web/operations.py): deadlines, the outbox (list, one
notice, retries) and health (with the audit verify runs); office sessions only, both languages."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gongmo.notifications.compose import Envelope
from gongmo.notifications.transport import SENT, Outcome
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import AUDIT, AUDIT_CHECK, DEADLINE, OUTBOX
from gongmo.workflow.engine import audit
from gongmo.workflow.outbox.dispatch import Mailer
from gongmo.workflow.runtime.daemon import Daemon
from gongmo.workflow.web import create_app
from gongmo.workflow.web.office import kst as kst_text
from tests.conftest import config_copy, run_cli
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import APP_SEJONG, TRACK_KEY, World
from tests.workflow.web.conftest import Browser, text_of

Make = Callable[[World], Browser]
SIHEUNG_MAIL = "smart@siheung.example"
PAGES = ("/office/deadlines", "/office/outbox", "/office/health")


class Bounce:
    """A transport that refuses some addresses for good (550) and takes the rest."""

    concurrency = 4

    def __init__(self, *refused: str) -> None:
        self.refused = set(refused)

    async def send(self, envelope: Envelope) -> Outcome:
        if self.refused & set(envelope.recipients):
            return Outcome(ok=False, permanent=True, code=550, detail="mailbox unavailable")
        return SENT

    async def close(self) -> None:
        return None


def bounce_siheung(w: World) -> dict[str, object]:
    """Deliver what is due, Siheung's address refused: its notice is dead. Returns that row."""
    daemon = Daemon(w.app, "web-test")
    daemon.mailer = Mailer(w.app, Bounce(SIHEUNG_MAIL), daemon.ticker.worker)  # type: ignore[arg-type]
    asyncio.run(daemon.deliver())
    (dead,) = w.rows(OUTBOX, OUTBOX.c.state == "dead")
    return dead


def ids_on(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<a href="/office/outbox/(\d+)">', html)]


# -- deadlines ------------------------------------------------------------------------------------------


def test_deadlines_are_listed_fired_upcoming_and_failed_with_the_last_error(written: World, browser: Make) -> None:
    w = written
    b = browser(w).sign_in()
    now = w.clock.now()
    rows = w.rows(DEADLINE)
    fired = [r for r in rows if r["fired_at"] is not None]
    due = [r for r in rows if r["fired_at"] is None and r["due_at"] <= now]  # the ticker has not run since
    upcoming = [r for r in rows if r["fired_at"] is None and r["due_at"] > now]
    assert fired and due and upcoming
    page = b.get("/office/deadlines")
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert f"실행된 일정: {len(fired)}" in text and f"예정된 일정: {len(upcoming)}" in text, text
    assert f"확인이 필요한 일정: {len(due)}" in text and "실행 대기 (기한 지남)" in text
    for r in rows:
        assert r["key"] in text
    assert kst_text(upcoming[0]["due_at"]) in text and "KST" in text
    assert "늦게 실행 (따라잡기)" in text and "제시간" in text  # fired on time, and caught up late
    assert "boom" not in text and "실행 실패" not in text

    failing = due[0]
    with write(w.app.db) as conn:  # as the ticker leaves a row whose action raised
        conn.execute(
            sa.update(DEADLINE).where(DEADLINE.c.id == failing["id"]).values(attempts=2, last_error="boom: disk full")
        )
    text = text_of(b.get("/office/deadlines?lang=en").text)
    assert f"Needing attention: {len(due)}" in text and "boom: disk full" in text, text
    assert f"deadline {failing['key']} failed (2 tries): boom: disk full" in text


def test_deadlines_filter_by_track(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    mine = text_of(b.get(f"/office/deadlines?track={TRACK_KEY}").text)
    other = text_of(b.get("/office/deadlines?track=hub-2024").text)
    key = written.rows(DEADLINE, DEADLINE.c.key.like(f"%{TRACK_KEY}%"))[0]["key"]
    assert key in mine and key not in other
    missing = b.get("/office/deadlines?track=no-such-track")
    assert missing.status_code == 404 and "no-such-track" in missing.text


# -- the outbox ------------------------------------------------------------------------------------------


def test_the_outbox_pages_by_keyset_and_filters_by_state_notice_and_track(written: World, browser: Make) -> None:
    w = written
    b = browser(w).sign_in()
    everything = [r["id"] for r in w.rows(OUTBOX)]
    assert len(everything) > 50, "the scenario should fill more than one page"
    seen: list[int] = []
    url: str | None = "/office/outbox"
    while url is not None:
        page = b.get(url)
        assert page.status_code == 200, page.text
        seen += ids_on(page.text)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == everything

    passed = [r["id"] for r in w.rows(OUTBOX, OUTBOX.c.notice == "review_passed")]
    assert passed and ids_on(b.get("/office/outbox?notice=review_passed").text) == passed
    assert ids_on(b.get("/office/outbox?state=sent").text) == []
    assert "조건에 맞는 통지가 없습니다" in text_of(b.get("/office/outbox?state=sent").text)
    assert ids_on(b.get("/office/outbox?track=hub-2024").text) == []
    first = ids_on(b.get(f"/office/outbox?track={TRACK_KEY}&state=pending").text)
    assert first == [i for i in everything if i in first] and first[0] == everything[0]
    bad = b.get("/office/outbox?state=lost")
    assert (
        bad.status_code == 422
        and "field 'state'" in text_of(html.unescape(bad.text))
        and "'lost'" in html.unescape(bad.text)
    )
    assert b.get("/office/outbox?notice=nope").status_code == 422
    assert b.get("/office/outbox?track=no-such-track").status_code == 404


def test_one_notice_shows_its_text_and_its_html_in_a_sandboxed_frame(written: World, browser: Make) -> None:
    w = written
    b = browser(w).sign_in()
    notice = w.rows(OUTBOX, OUTBOX.c.notice == "review_passed")[0]
    page = b.get(f"/office/outbox/{notice['id']}")
    assert page.status_code == 200, page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    text = text_of(page.text)
    assert notice["subject"] in text and notice["to_addr"] in text
    first_line = next(line for line in notice["body_text"].splitlines() if line.strip())
    assert first_line.strip() in text
    frame = re.search(r"<iframe[^>]*>", page.text)
    assert frame is not None
    assert re.search(r"\ssandbox[\s>]", frame.group(0)) and 'sandbox="' not in frame.group(0)  # no permission
    assert f'src="/office/outbox/{notice["id"]}/body.html"' in frame.group(0)

    body = b.get(f"/office/outbox/{notice['id']}/body.html")
    assert body.status_code == 200 and body.text == notice["body_html"]
    csp = body.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "img-src data:" in csp and "style-src 'unsafe-inline'" in csp
    assert "sandbox" in csp and "frame-ancestors 'self'" in csp and "script-src" not in csp
    assert body.headers["x-frame-options"] == "SAMEORIGIN"
    assert b.get("/office/outbox/999999").status_code == 404
    assert b.get("/office/outbox/999999/body.html").status_code == 404


def test_a_sign_in_link_s_body_is_never_shown(written: World, browser: Make) -> None:
    w = written
    b = browser(w).sign_in()
    template = w.rows(OUTBOX)[0]
    secret = "https://console.example/signin/SECRET-TOKEN"
    with write(w.app.db) as conn:
        link_id = conn.execute(
            sa.insert(OUTBOX)
            .values(
                {
                    **{k: v for k, v in template.items() if k != "id"},
                    "notice": "signin_link",
                    "dedup_key": "signin_link:test",
                    "body_text": f"sign in: {secret}\n",
                    "body_html": f'<p><a href="{secret}">sign in</a></p>',
                }
            )
            .returning(OUTBOX.c.id)
        ).scalar_one()
    page = b.get(f"/office/outbox/{link_id}")
    assert page.status_code == 200 and "SECRET-TOKEN" not in page.text
    assert "본문을 표시하지 않습니다" in text_of(page.text) and "<iframe" not in page.text
    body = b.get(f"/office/outbox/{link_id}/body.html")
    assert "SECRET-TOKEN" not in body.text
    assert link_id in ids_on(b.get("/office/outbox?notice=signin_link").text)


def test_retry_one_notice_as_the_api_does(opened: World, browser: Make) -> None:
    w = opened
    b = browser(w).sign_in()
    dead = bounce_siheung(w)
    page = b.get(f"/office/outbox/{dead['id']}")
    assert "550" in text_of(page.text) and "mailbox unavailable" in text_of(page.text)
    refused = b.post(f"/office/outbox/{dead['id']}/retry", csrf=False)
    assert refused.status_code == 403 and w.rows(OUTBOX, OUTBOX.c.id == dead["id"])[0]["state"] == "dead"
    done = b.post(f"/office/outbox/{dead['id']}/retry")
    assert done.status_code == 303 and done.headers["location"] == f"/office/outbox/{dead['id']}?was=dead"
    row = w.rows(OUTBOX, OUTBOX.c.id == dead["id"])[0]
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, w.clock.now())
    assert "이전 상태: dead" in text_of(b.get(done.headers["location"]).text)
    sent = w.rows(OUTBOX, OUTBOX.c.state == "sent")[0]
    conflict = b.post(f"/office/outbox/{sent['id']}/retry")
    assert conflict.status_code == 409 and "only dead, retry or pending rows" in conflict.text


def test_retry_every_dead_notice_of_a_filter(opened: World, browser: Make) -> None:
    w = opened
    b = browser(w).sign_in()
    dead = bounce_siheung(w)
    listed = b.get(f"/office/outbox?state=dead&track={TRACK_KEY}")
    assert ids_on(listed.text) == [dead["id"]]
    before = w.rows(OUTBOX)
    assert b.post("/office/outbox/retry", {"state": "dead", "track": TRACK_KEY}, csrf=False).status_code == 403
    bad = b.post("/office/outbox/retry", {"state": "sent"})
    assert bad.status_code == 422 and "state" in bad.text
    assert b.post("/office/outbox/retry", {"state": "dead", "track": "no-such-track"}).status_code == 404
    none = b.post("/office/outbox/retry", {"state": "dead", "track": "hub-2024"})
    assert none.status_code == 303 and "retried=0" in none.headers["location"]
    assert w.rows(OUTBOX) == before
    done = b.post("/office/outbox/retry", {"state": "dead", "track": TRACK_KEY})
    assert done.status_code == 303
    assert "1건을 다시 보내도록 했습니다" in text_of(b.get(done.headers["location"]).text)
    row = w.rows(OUTBOX, OUTBOX.c.id == dead["id"])[0]
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, w.clock.now())


# -- health ----------------------------------------------------------------------------------------------


def test_health_says_the_facts_in_words(written: World, browser: Make) -> None:
    w = written
    b = browser(w).sign_in()
    text = text_of(b.get("/office/health?lang=en").text)
    assert "down (the database or the scheduler is not running)" in text  # no daemon in this app
    assert "Database answers" in text and "not running" in text
    due = w.count(OUTBOX, OUTBOX.c.state.in_(["pending", "retry"]), OUTBOX.c.next_attempt_at <= w.clock.now())
    assert f"{due} notice(s) due" in text and ", 0 dead" in text

    daemon = Daemon(w.app, "web-test")
    daemon.scheduler = SimpleNamespace(running=True)  # type: ignore[assignment]
    served = Browser(w)
    served.http = TestClient(create_app(w.app, daemon), base_url="http://127.0.0.1", raise_server_exceptions=False)
    served.sign_in()
    text = text_of(served.get("/office/health").text)
    assert "전체 상태: 정상" in text and "실행 중; 다음 일정" in text and "문제 없음" in text, text
    earliest = min(d["due_at"] for d in w.rows(DEADLINE, DEADLINE.c.fired_at.is_(None)))
    assert kst_text(earliest) in text


def test_verify_now_records_the_run_and_health_shows_it(written: World, browser: Make) -> None:
    w = written
    b = browser(w).sign_in()
    assert "아직 검증한 적이 없습니다" in text_of(b.get("/office/health").text)
    assert b.post("/office/health/verify", csrf=False).status_code == 403
    assert w.count(AUDIT_CHECK) == 0
    done = b.post("/office/health/verify")
    assert done.status_code == 303 and done.headers["location"] == "/office/health"
    (run,) = w.rows(AUDIT_CHECK)
    assert run["clean"] is True and run["audit_rows"] == w.count(AUDIT) and run["by"] == "office-lee@molit.go.kr"
    assert run["at"] == w.clock.now()
    text = text_of(b.get("/office/health?lang=en").text)
    assert "clean" in text and f"{run['audit_rows']} audit rows" in text and kst_text(run["at"]) in text, text

    with write(w.app.db) as conn:  # an edit the chain must find (SQLite: no guard against it)
        first = conn.execute(sa.select(sa.func.min(AUDIT.c.id))).scalar_one()
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == first).values(reason="edited afterwards"))
    assert b.post("/office/health/verify").status_code == 303
    text = text_of(b.get("/office/health?lang=en").text)
    assert "1 problem(s)" in text and "audit chain" in text, text
    last = w.rows(AUDIT_CHECK)[-1]
    assert last["clean"] is False and last["findings"] == 1 and last["first_finding"] in text


def test_the_cli_s_audit_verify_is_recorded_too(
    written: World, browser: Make, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = written
    config = config_copy(tmp_path, database_url=str(w.app.db.url))
    code, out, _ = run_cli(capsys, "--config", str(config), "audit", "verify", "--actor", "office-kim")
    assert code == 0 and "clean" in out
    (run,) = w.rows(AUDIT_CHECK)
    assert run["by"] == "office-kim" and run["clean"] is True
    with read(w.app.db) as conn:
        assert audit.last_check(conn) == run
    assert "office-kim" in text_of(browser(w).sign_in().get("/office/health").text)


# -- who may see them ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "subject"), [("evaluator", sc.EVALUATORS[0]), APP_SEJONG])
def test_evaluator_and_applicant_sessions_are_refused(written: World, browser: Make, role: str, subject: str) -> None:
    w = written
    b = browser(w).sign_in(role, subject)
    notice = w.rows(OUTBOX)[0]
    for path in (*PAGES, f"/office/outbox/{notice['id']}", f"/office/outbox/{notice['id']}/body.html"):
        page = b.get(path)
        assert page.status_code == 403, (path, page.status_code)
        assert notice["body_text"][:40] not in page.text
    before = w.rows(OUTBOX)
    assert b.post(f"/office/outbox/{notice['id']}/retry").status_code == 403
    assert b.post("/office/outbox/retry", {"state": "dead"}).status_code == 403
    assert b.post("/office/health/verify").status_code == 403
    assert w.rows(OUTBOX) == before and w.count(AUDIT_CHECK) == 0


def test_without_a_session_the_pages_send_to_sign_in(written: World, browser: Make) -> None:
    b = browser(written)
    for path in PAGES:
        assert b.get(path).status_code == 303
    assert b.post("/office/health/verify", csrf=False).status_code in (401, 403)


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("ko", ("일정", "발송함", "상태", "예정된 일정", "상태별 건수", "감사 기록 검증")),
        ("en", ("Deadlines", "Outbox", "Health", "Upcoming", "Notices by state", "Audit log check")),
    ],
)
def test_both_languages(written: World, browser: Make, lang: str, words: tuple[str, ...]) -> None:
    b = browser(written).sign_in()
    text = " ".join(text_of(b.get(f"{path}?lang={lang}").text) for path in PAGES)
    for word in words:
        assert word in text, word


# -- both backends -----------------------------------------------------------------------------------


def test_the_overview_outbox_and_a_recorded_verify_on_each_backend(
    world: Callable[..., World], db_url: str, browser: Make
) -> None:
    w = world("written", db_url)
    b = browser(w).sign_in()
    overview = b.get("/office")
    assert overview.status_code == 200 and "선정 0 / " in text_of(overview.text)
    assert b.get(f"/office/deadlines?track={TRACK_KEY}").status_code == 200
    passed = [r["id"] for r in w.rows(OUTBOX, OUTBOX.c.notice == "review_passed")]
    assert ids_on(b.get(f"/office/outbox?notice=review_passed&track={TRACK_KEY}").text) == passed
    assert b.post("/office/health/verify").status_code == 303
    (run,) = w.rows(AUDIT_CHECK)
    assert run["clean"] is True and run["audit_rows"] == w.count(AUDIT) and run["at"] == w.clock.now()
