"""The office's operations pages: deadlines, the outbox, health.

- /office/deadlines: every deadline row as `gongmo deadlines` shows it (read/deadlines.listing,
  annotated by deadlines/status), grouped: needing attention (failed, held for the office, due or
  waiting behind one), upcoming, fired (on time or caught up late); times in KST; by track.
- /office/outbox: every notice with its state, attempts and last SMTP answer (read/outbox.page),
  filtered by state, notice and track, a page at a time (keyset: `after` the last number shown).
  Retrying one notice and every dead (or retry) notice of a track are the services behind the
  API's POST /outbox/{id}/retry and POST /outbox/retry (outbox/office.py).
- /office/outbox/{id}: one rendered notice: its headers, its text, and its HTML as the applicant
  sees it, in an <iframe sandbox> of /office/outbox/{id}/body.html. That one answer carries its
  own CSP: nothing loads, nothing runs (`default-src 'none'`, inline styles and data: images only,
  `sandbox`), and only the console may frame it (frame-ancestors 'self'); every other page keeps
  frame-ancestors 'none'. A sign-in link's body is never shown (read/outbox hides it).
- /office/health: /healthz's facts in words (the same function answers both), and the last
  `audit verify` with when it ran; "verify now" runs it in a snapshot and records the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from gongmo.notifications.notices import NOTICES
from gongmo.states.errors import InvalidInput, NotFound
from gongmo.states.lifecycle import APPLICATION as LIFECYCLE
from gongmo.workflow.api import operations as api_operations
from gongmo.workflow.core.config import ConfigError
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.deadlines import status as deadline_status
from gongmo.workflow.engine import audit
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.read import deadlines as deadline_rows
from gongmo.workflow.read import outbox as outbox_rows
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Csrf, Office
from gongmo.workflow.web.office import countdown, helpers

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
BODY_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"
OutboxId = Annotated[int, Path(ge=1, le=MAX_ID)]
# The notices whose bodies are a credential (a sign-in link): read/outbox.row replaces them, and
# the page says so instead of showing that placeholder as if it were the mail.
SECRET_NOTICES = outbox_rows.SECRET_NOTICES

words.register(
    {
        "deadlines.title": ("일정", "Deadlines"),
        "deadlines.attention": ("확인이 필요한 일정", "Needing attention"),
        "deadlines.upcoming": ("예정된 일정", "Upcoming"),
        "deadlines.fired": ("실행된 일정", "Fired"),
        "deadlines.none": ("없음", "None"),
        "deadlines.due": ("예정 (KST)", "Due (KST)"),
        "deadlines.key": ("일정", "Deadline"),
        "deadlines.milestone": ("단계", "Milestone"),
        "deadlines.action": ("동작", "Action"),
        "deadlines.status": ("상태", "Status"),
        "deadlines.fired_at": ("실행 (KST)", "Fired (KST)"),
        "deadlines.late": ("실행 방식", "How"),
        "deadlines.attempts": ("시도", "Tries"),
        "deadlines.error": ("마지막 오류", "Last error"),
        "deadlines.catch_up": ("늦게 실행 (따라잡기)", "caught up late"),
        "deadlines.on_time": ("제시간", "on time"),
        "deadlines.waiting_for": ("{name} 대기", "waiting for {name}"),
        "filter.track": ("유형", "Track"),
        "filter.state": ("상태", "State"),
        "filter.notice": ("통지", "Notice"),
        "filter.all": ("전체", "All"),
        "filter.apply": ("보기", "Show"),
        "dstatus.fired": ("실행됨", "fired"),
        "dstatus.skipped": ("건너뜀", "skipped"),
        "dstatus.held": ("사무국 결정 대기", "held for the office"),
        "dstatus.failed": ("실패", "failed"),
        "dstatus.waiting": ("대기", "waiting"),
        "dstatus.due": ("실행 대기 (기한 지남)", "due"),
        "dstatus.scheduled": ("예정", "scheduled"),
        "outbox.title": ("발송함", "Outbox"),
        "outbox.totals": ("상태별 건수", "Notices by state"),
        "outbox.id": ("번호", "No."),
        "outbox.notice": ("통지", "Notice"),
        "outbox.to": ("받는 사람", "To"),
        "outbox.subject": ("제목", "Subject"),
        "outbox.state": ("상태", "State"),
        "outbox.attempts": ("시도", "Tries"),
        "outbox.created": ("생성 (KST)", "Queued (KST)"),
        "outbox.next": ("다음 시도 (KST)", "Next try (KST)"),
        "outbox.sent": ("발송 (KST)", "Sent (KST)"),
        "outbox.answer": ("마지막 SMTP 응답", "Last SMTP answer"),
        "outbox.none": ("조건에 맞는 통지가 없습니다", "No notice matches"),
        "outbox.next_page": ("다음 페이지", "Next page"),
        "outbox.first_page": ("처음으로", "First page"),
        "outbox.retry_all": ("발송 실패 통지 모두 다시 보내기", "Send every dead notice again"),
        "outbox.retry_all_help": (
            "선택한 유형(없으면 전체)의 발송 실패(dead) 또는 재시도(retry) 통지를 다음 발송 때 다시 보냅니다."
            " 이후 정정된 통지로 대체된 것은 보내지 않습니다.",
            "Sends every dead (or retry) notice of the chosen track (or all tracks) again at the next delivery."
            " A notice a later correction replaced stays as it is.",
        ),
        "outbox.retry_state": ("다시 보낼 상태", "State to send again"),
        "outbox.retried": ("{count}건을 다시 보내도록 했습니다", "{count} notice(s) will be sent again"),
        "outbox.retry": ("다시 보내기", "Send again"),
        "outbox.retried_one": (
            "다음 발송 때 다시 보냅니다 (이전 상태: {was})",
            "It goes out at the next delivery (was: {was})",
        ),
        "outbox.row_title": ("통지 {id}", "Notice {id}"),
        "outbox.text": ("텍스트 본문", "Text body"),
        "outbox.html": ("HTML 본문 (받는 사람이 보는 그대로)", "HTML body (as the applicant sees it)"),
        "outbox.html_frame": ("통지 {id}의 HTML 본문", "HTML body of notice {id}"),
        "outbox.html_source": ("HTML 원본", "HTML source"),
        "outbox.hidden": (
            "로그인 링크는 그 자체가 자격 증명이므로 본문을 표시하지 않습니다",
            "A sign-in link is a credential: its body is not shown",
        ),
        "outbox.language": ("언어", "Language"),
        "outbox.message_id": ("Message-ID", "Message-ID"),
        "outbox.application": ("신청", "Application"),
        "outbox.superseded": ("대체한 통지", "Superseded by"),
        "outbox.calendar": ("일정 파일(.ics) 첨부", "Calendar file (.ics) attached"),
        "outbox.back": ("발송함으로", "Back to the outbox"),
        "health.title": ("상태", "Health"),
        "health.status": ("전체 상태", "Overall"),
        "health.ok": ("정상", "ok"),
        "health.degraded": ("주의 (서비스는 동작하지만 확인이 필요합니다)", "degraded (serving, but needs attention)"),
        "health.down": (
            "중단 (데이터베이스 또는 스케줄러가 멈췄습니다)",
            "down (the database or the scheduler is not running)",
        ),
        "health.facts": ("항목", "Facts"),
        "health.database": ("데이터베이스", "Database"),
        "health.db_ok": ("응답함", "answers"),
        "health.db_down": ("응답 없음: {error}", "does not answer: {error}"),
        "health.scheduler": ("스케줄러", "Scheduler"),
        "health.running": ("실행 중; 다음 일정 {next}", "running; next deadline {next}"),
        "health.not_running": (
            "실행 중이 아님 (이 프로세스에는 데몬이 없습니다)",
            "not running (no daemon in this process)",
        ),
        "health.outbox": ("발송 대기", "Mail waiting"),
        "health.outbox_words": (
            "발송 대기 {due}건 (가장 오래 기다린 것 {oldest}), 발송 실패 {dead}건",
            "{due} notice(s) due (the oldest for {oldest}), {dead} dead",
        ),
        "health.stalled": ("발송이 멈췄습니다", "delivery has stalled"),
        "health.deadlines": ("일정", "Deadlines"),
        "health.deadline_words": (
            "기한이 지났지만 실행되지 않은 일정 {overdue}건, 막힌 일정 {blocked}건",
            "{overdue} deadline(s) due and not fired, {blocked} blocked",
        ),
        "health.problems": ("문제", "Problems"),
        "health.no_problems": ("문제 없음", "No problem"),
        "health.audit": ("감사 기록 검증 (audit verify)", "Audit log check (audit verify)"),
        "health.never": ("아직 검증한 적이 없습니다", "Never run yet"),
        "health.last_run": ("마지막 검증", "Last run"),
        "health.by": ("{at}, {by}", "{at}, by {by}"),
        "health.result": ("결과", "Result"),
        "health.clean": ("이상 없음", "clean"),
        "health.findings": ("문제 {count}건", "{count} problem(s)"),
        "health.walked": ("검사 범위", "Covered"),
        "health.walked_words": (
            "신청 {applications}건, 감사 행 {audit_rows}건, 이벤트 행 {event_rows}건, 체인 {chains}개",
            "{applications} applications, {audit_rows} audit rows, {event_rows} event rows, {chains} chains",
        ),
        "health.first": ("첫 문제", "First problem"),
        "health.verify": ("지금 검증", "Verify now"),
    }
)


# -- deadlines --------------------------------------------------------------------------------------


@router.get("/office/deadlines", response_class=HTMLResponse)
def deadlines(request: Request, who: Office, track: Annotated[str | None, Query()] = None) -> HTMLResponse:
    a = pages.gongmo(request)
    track = track or None
    if track is not None:
        known_track(a, track)
    now = a.clock.now()
    with read(a.db) as conn:
        rows = deadline_status.annotate(deadline_rows.listing(conn, track), now)
        blocked = [b for b in deadline_status.blocked(conn, now) if track is None or b["track"] == track]
    groups = {
        "attention": [r for r in rows if r["status"] in ("failed", "held", "waiting", "due")],
        "upcoming": [r for r in rows if r["status"] == "scheduled"],
        "fired": [r for r in rows if r["status"] in ("fired", "skipped")],
    }
    return pages.render(
        request,
        "office/deadlines.html",
        groups=groups,
        blocked=blocked,
        track=track,
        tracks=_tracks(a),
        **helpers(pages.language(request)),
    )


def known_track(a: Any, key: str) -> None:
    """A track filter names a track of the config, or the page is refused (404, as the API's)."""
    try:
        a.loaded.config.track(key)
    except ConfigError:
        raise NotFound(f"no track {key!r}: choose one of the list") from None


def _tracks(a: Any) -> list[tuple[str, str, str]]:
    """(key, Korean name, English name) of every track, in config order."""
    return [(t.key, t.name_ko, t.name_en) for c in a.loaded.config.contests for t in c.tracks]


# -- the outbox ---------------------------------------------------------------------------------------


@router.get("/office/outbox", response_class=HTMLResponse)
def outbox(
    request: Request,
    who: Office,
    state: Annotated[str | None, Query()] = None,
    notice: Annotated[str | None, Query()] = None,
    track: Annotated[str | None, Query()] = None,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    retried: Annotated[int | None, Query(ge=0)] = None,
) -> HTMLResponse:
    a = pages.gongmo(request)
    state, notice, track = state or None, notice or None, track or None
    _check_filter(a, state, notice, track)
    with read(a.db) as conn:
        found = outbox_rows.page(conn, state=state, notice=notice, track=track, limit=PAGE_SIZE, after=after)
    rows = found["rows"]
    filters = {k: v for k, v in (("state", state), ("notice", notice), ("track", track)) if v}
    next_url = None
    if len(rows) == PAGE_SIZE:
        next_url = "/office/outbox?" + urlencode({**filters, "after": rows[-1]["id"]})
    return pages.render(
        request,
        "office/outbox.html",
        rows=rows,
        totals=found["totals"],
        states=outbox_states.STATES,
        notices=sorted({*NOTICES, *SECRET_NOTICES}),
        tracks=_tracks(a),
        state=state,
        notice=notice,
        track=track,
        after=after,
        next_url=next_url,
        first_url="/office/outbox?" + urlencode(filters) if after else None,
        retried=retried,
        retryable=outbox_states.RETRYABLE,
        **helpers(pages.language(request)),
    )


def _check_filter(a: Any, state: str | None, notice: str | None, track: str | None) -> None:
    if state is not None and state not in outbox_states.STATES:
        raise InvalidInput(
            "{given}: the outbox's states are " + ", ".join(outbox_states.STATES) + "; choose one for {field}",
            field="state",
            value=state,
            shown=repr(state),
        )
    if notice is not None and notice not in NOTICES and notice not in SECRET_NOTICES:
        raise InvalidInput(
            "{given}: not a notice of gongmo; choose {field} from the list",
            field="notice",
            value=notice,
            shown=repr(notice),
        )
    if track is not None:
        known_track(a, track)


@router.post("/office/outbox/retry", dependencies=[Csrf])
def outbox_retry_all(
    request: Request,
    who: Office,
    state: Annotated[str, Form()] = outbox_states.DEAD,
    track: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    """Every dead (or retry) notice of a track (or of all), as POST /outbox/retry."""
    a = pages.gongmo(request)
    track = track or None
    if track is not None:
        known_track(a, track)
    retried = outbox_office.retry_all(a, state, track=track)
    query = {k: v for k, v in (("track", track),) if v}
    return RedirectResponse("/office/outbox?" + urlencode({**query, "retried": retried}), status_code=303)


@router.get("/office/outbox/{outbox_id}", response_class=HTMLResponse)
def outbox_row(
    request: Request, who: Office, outbox_id: OutboxId, was: Annotated[str | None, Query(max_length=16)] = None
) -> HTMLResponse:
    row = _row(request, outbox_id)
    return pages.render(
        request,
        "office/outbox_row.html",
        row=row,
        hidden=_hidden(row),
        was=was,
        retryable=row["state"] in outbox_states.RETRYABLE_ONE,
        **helpers(pages.language(request)),
    )


@router.get("/office/outbox/{outbox_id}/body.html", response_class=HTMLResponse)
def outbox_body(request: Request, who: Office, outbox_id: OutboxId) -> HTMLResponse:
    """The notice's HTML body alone, for the console's sandboxed frame: it may not run or load anything."""
    row = _row(request, outbox_id)
    body = "" if _hidden(row) else str(row["body_html"])
    headers = {
        "Content-Security-Policy": BODY_CSP,
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(body, headers=headers)


@router.post("/office/outbox/{outbox_id}/retry", dependencies=[Csrf])
def outbox_retry(request: Request, who: Office, outbox_id: OutboxId) -> RedirectResponse:
    """Send one dead (or waiting) notice again at the next delivery, as POST /outbox/{id}/retry."""
    was = outbox_office.retry_now(pages.gongmo(request), outbox_id)
    return RedirectResponse(f"/office/outbox/{outbox_id}?" + urlencode({"was": was}), status_code=303)


def _row(request: Request, outbox_id: int) -> dict[str, Any]:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        row = outbox_rows.row(conn, outbox_id)
    if row is None:
        raise NotFound(f"no outbox row {outbox_id}: see /office/outbox")
    return row


def _hidden(row: dict[str, Any]) -> bool:
    """A sign-in link's row (read/outbox replaced its bodies): the page says so instead."""
    return row["notice"] in SECRET_NOTICES


# -- health ---------------------------------------------------------------------------------------------


@router.get("/office/health", response_class=HTMLResponse)
def health(request: Request, who: Office) -> HTMLResponse:
    a = pages.gongmo(request)
    facts = api_operations.healthz(request, Response())
    with read(a.db) as conn:
        last = audit.last_check(conn)
    lang = pages.language(request)
    next_due = (facts.get("scheduler") or {}).get("next_due")
    return pages.render(
        request,
        "office/health.html",
        facts=facts,
        last=last,
        next_due=datetime.fromisoformat(next_due) if next_due else None,
        check_countdown=countdown(last["at"], a.clock.now(), lang) if last else None,
        **helpers(lang),
    )


@router.post("/office/health/verify", dependencies=[Csrf])
def verify_now(request: Request, who: Office) -> RedirectResponse:
    """`gongmo audit verify`, from the console: the same check in a snapshot, recorded."""
    a = pages.gongmo(request)
    audit.check(a.db, LIFECYCLE, a.clock.now(), who.subject)
    return RedirectResponse("/office/health", status_code=303)
