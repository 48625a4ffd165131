"""The office console's application page (/office/applications/{id}): one application whole.

- The summary (applicant and contact, track, state, receipt, amounts, years, type, version, the
  result once there is one), the eligibility checklist, the documents (each downloadable) and the
  answers, and the timeline of audit rows, events, calendar changes and notices: read/timeline
  (visibility.detail, the API's read model, with the same rule: check_access first).
- The triggers the office may fire now, one form each, carrying the version the page was rendered
  with and, where the rules require one, a reason. POST .../transitions fires it through the same
  service as the API (moves.apply with the expected version): a stale page is answered 409 "someone
  changed this first", nothing done; any other refusal is its one line beside the forms, nothing
  done; a move done sends the browser back to the page (303) with a confirmation line.
- A document is downloaded through the API's own route function (read/documents.open_download,
  streamed one chunk at a time, the download recorded in the application's events).
- The kickoff part (a selected application, or one with implementation plan rounds): each round with
  its file (read/documents.open_plan_file: the office and the applicant, never an evaluator; streamed
  as a document is, the download recorded), the office's comments, the funding by year once approved;
  while a round waits, the two decisions: return it with comments (stages/kickoff.return_plan) and
  approve it with the funding schedule by year, one row per year (kickoff.parse_schedule, then
  kickoff.approve). A refusal is shown beside its form, nothing changed; the bare approve_kickoff
  trigger is not offered among the moves (it would start a project with no plan and no schedule).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from gongmo.states import questions as questions_mod
from gongmo.states.documents import content_disposition
from gongmo.states.eligibility import Year, default_schedule
from gongmo.states.errors import Conflict, GongmoError, InvalidInput
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.api import documents as api_documents
from gongmo.workflow.api import errors
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.read import documents as documents_read
from gongmo.workflow.read import timeline, visibility
from gongmo.workflow.stages import kickoff
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Csrf, Office

router = APIRouter(include_in_schema=False)

AppId = Annotated[int, Path(ge=1, le=MAX_ID)]
REASON_MAX = 2000  # characters: a reason is a sentence or a paragraph, kept in the audit row and the notice
COMMENTS_MAX = 4000  # characters: the office's comments on a returned plan
SCHEDULE_ROWS_MAX = 20  # rows of a funding schedule taken from the form (a plan runs a few years)
PLAN_TRIGGER = "approve_kickoff"  # fired by kickoff.approve only, with the plan and its schedule
KICKOFF_DONE = ("returned", "approved")
TRIGGERS: dict[str, tuple[str, str]] = {
    "invite": ("공고(신청 안내)", "invite (the call announced)"),
    "submit": ("제출(접수)", "submit"),
    "expire": ("미제출 마감", "expire"),
    "start_review": ("예비검토 개시", "start the preliminary review"),
    "pass_review": ("예비검토 통과", "pass the preliminary review"),
    "disqualify": ("부적격 처리", "disqualify"),
    "reinstate": ("복권(이의 인용)", "reinstate (objection upheld)"),
    "start_presentation": ("발표평가 개시", "start the presentation evaluation"),
    "select": ("선정", "select"),
    "waitlist": ("예비 선정(대기)", "waitlist"),
    "reject": ("미선정", "not select"),
    "promote": ("선정으로 승격", "promote to selected"),
    "approve_kickoff": ("사업 착수 승인", "approve the kickoff"),
    "cancel": ("선정 취소", "cancel the selection"),
    "lapse": ("대기 만료", "lapse from the waitlist"),
    "withdraw": ("철회", "withdraw"),
}
EVENTS: dict[str, tuple[str, str]] = {
    "assigned": ("평가위원 배정", "evaluator assigned"),
    "unassigned": ("평가위원 배정 해제", "evaluator unassigned"),
    "scored": ("점수 입력", "scores entered"),
    "score_corrected": ("점수 정정", "score corrected"),
    "conflict_declared": ("이해충돌 신고", "conflict declared"),
    "objection_filed": ("이의신청", "objection filed"),
    "objection_received": ("이의신청 접수", "objection received"),
    "objection_upheld": ("이의 인용", "objection upheld"),
    "objection_rejected": ("이의 기각", "objection rejected"),
    "plan_received": ("실시계획 접수", "kickoff plan received"),
    "plan_returned": ("실시계획 보완 요구", "kickoff plan returned"),
    "kickoff_plan_returned": ("실시계획 보완 요구", "kickoff plan returned"),
    "plan_approved": ("실시계획 승인", "kickoff plan approved"),
    "plan_downloaded": ("실시계획 내려받기", "kickoff plan downloaded"),
    "document_uploaded": ("서류 제출", "document uploaded"),
    "document_downloaded": ("서류 내려받기", "document downloaded"),
    "answers_changed": ("답변 변경", "answers changed"),
    "presentations_scheduled": ("발표 일정 배정", "presentation scheduled"),
}
NOTICE_STATES: dict[str, tuple[str, str]] = {
    outbox_states.PENDING: ("발송 대기", "pending"),
    outbox_states.HELD: ("보류(공개 전)", "held (embargo)"),
    outbox_states.SENDING: ("발송 중", "sending"),
    outbox_states.SENT: ("발송됨", "sent"),
    outbox_states.RETRY: ("재시도 대기", "retry"),
    outbox_states.DEAD: ("발송 실패", "dead"),
    outbox_states.CANCELLED: ("취소(대체됨)", "cancelled (superseded)"),
}
words.register(
    {
        "application.title": ("신청 {id}", "Application {id}"),
        "application.summary": ("신청 개요", "Summary"),
        "application.applicant": ("신청 기관", "Applicant"),
        "application.code": ("기관 코드", "Code"),
        "application.contact": ("담당자", "Contact"),
        "application.track": ("유형", "Track"),
        "application.state": ("상태", "State"),
        "application.version": ("버전", "Version"),
        "application.receipt_no": ("접수번호", "Receipt no."),
        "application.submitted_at": ("제출 시각", "Submitted"),
        "application.project_title": ("사업명", "Title"),
        "application.project_type": ("사업 유형", "Type"),
        "application.amounts": ("신청 금액", "Amounts"),
        "application.national": ("국비", "national"),
        "application.local": ("지방비", "local"),
        "application.won": ("원", "won"),
        "application.years": ("사업 기간", "Years"),
        "application.years_n": ("{n}년", "{n} year(s)"),
        "application.result": ("결과", "Result"),
        "application.result_line": (
            "종합 점수 {score} (서면 {written}, 발표 {presentation}), {ranked}건 중 {rank}위; 최저 점수 {minimum},"
            " 마지막 선정 점수 {last}",
            "committee score {score} (written {written}, presentation {presentation}), rank {rank} of {ranked};"
            " minimum {minimum}, last selected {last}",
        ),
        "application.waitlist_position": ("대기 순번", "Waitlist position"),
        "application.none": ("없음", "none"),
        "application.actions": ("지금 할 수 있는 처리", "Decisions open now"),
        "application.no_actions": (
            "이 상태에서 사무국이 직접 할 수 있는 처리가 없습니다",
            "Nothing the office decides by hand from this state",
        ),
        "application.to_state": ("→ {state}", "→ {state}"),
        "application.reason": ("사유 ({trigger})", "Reason ({trigger})"),
        "application.reason_required": ("필수", "required"),
        "application.reason_optional": ("사유 (선택, {trigger})", "Reason (optional, {trigger})"),
        "application.overrides": ("규칙을 벗어나는 처리입니다: {why}", "This goes against a rule: {why}"),
        "application.decided_on": ("버전 {version} 기준", "decided on version {version}"),
        "application.done": (
            "처리했습니다: {trigger} (이제 버전 {version})",
            "Done: {trigger} (now version {version})",
        ),
        "application.stale": (
            "다른 사람이 먼저 변경했습니다: 지금 상태는 {state} (버전 {version})입니다. 아무것도 처리하지 않았습니다."
            " 내용을 다시 확인하고 결정하십시오.",
            "Someone changed this first: it is now in {state} (version {version}); nothing was done; review and"
            " decide again.",
        ),
        "application.refused": ("처리하지 않았습니다: {message}", "Nothing was done: {message}"),
        "application.checklist": ("적격성 확인", "Eligibility checklist"),
        "application.checklist_none": (
            "아직 예비검토 전이라 확인 결과가 없습니다",
            "Not checked yet (the checklist is recorded when the preliminary review opens)",
        ),
        "application.eligible": ("적격", "eligible"),
        "application.not_eligible": ("부적격 항목 있음", "NOT eligible"),
        "application.rule": ("항목", "Rule"),
        "application.check_result": ("결과", "Result"),
        "application.value": ("신청 내용", "Stated"),
        "application.expected": ("요건", "Required"),
        "application.pass": ("충족", "pass"),
        "application.fail": ("미충족", "FAIL"),
        "application.documents": ("제출 서류", "Documents"),
        "application.documents_none": ("제출된 서류가 없습니다", "No documents"),
        "application.kind": ("종류", "Kind"),
        "application.file": ("파일", "File"),
        "application.size": ("크기", "Size"),
        "application.file_type": ("형식", "Type"),
        "application.uploaded": ("제출", "Uploaded"),
        "application.current": ("현재본", "current"),
        "application.replaced": ("대체됨", "replaced"),
        "application.download": ("내려받기", "Download"),
        "application.answers": ("질문 답변", "Answers"),
        "application.question": ("질문", "Question"),
        "application.answer": ("답변", "Answer"),
        "application.answers_none": ("이 유형은 질문이 없습니다", "This track asks no questions"),
        "application.timeline": ("처리 이력", "Timeline"),
        "application.timeline_caption": (
            "상태 변경, 결정, 일정 변경, 통지를 시간순으로 (한국 표준시)",
            "State changes, decisions, calendar changes and notices in time order (KST)",
        ),
        "application.at": ("시각", "When"),
        "application.what": ("구분", "What"),
        "application.entry": ("내용", "Entry"),
        "application.who": ("처리자", "By"),
        "application.source.audit": ("상태 변경", "state change"),
        "application.source.event": ("결정·기록", "decision"),
        "application.source.calendar": ("일정 변경", "calendar"),
        "application.source.notice": ("통지", "notice"),
        "application.reschedule": ("일정 변경", "reschedule"),
        "application.extension": ("기한 연장", "extension"),
        "application.attempts": ("시도 {n}회", "{n} attempt(s)"),
        "application.sent_at": ("발송 {at}", "sent {at}"),
        "application.superseded_by": ("{by}(으)로 대체", "superseded by {by}"),
        "application.reason_was": ("사유: {reason}", "reason: {reason}"),
        "application.answer_required": ("필수", "required"),
        # the kickoff part
        "application.kickoff": ("세부 실시계획", "Implementation plan"),
        "application.kickoff.none": ("아직 접수된 실시계획이 없습니다", "No implementation plan received yet"),
        "application.kickoff.round": ("차수", "Round"),
        "application.kickoff.rounds": ("실시계획 접수 차수", "Plan rounds"),
        "application.kickoff.received": ("접수", "Received"),
        "application.kickoff.status": ("처리 상태", "Status"),
        "application.kickoff.file": ("파일", "File"),
        "application.kickoff.on_paper": ("서면 접수 (파일 없음)", "on paper (no file)"),
        "application.kickoff.comments": ("검토 의견", "Comments"),
        "application.kickoff.status.received": ("검토 대기", "waiting for a decision"),
        "application.kickoff.status.returned": ("보완 요구", "returned"),
        "application.kickoff.status.approved": ("승인", "approved"),
        "application.kickoff.funding": ("연차별 사업비 (승인)", "Funding by year (approved)"),
        "application.kickoff.year": ("연도", "Year"),
        "application.kickoff.return": ("보완 요구", "Return with comments"),
        "application.kickoff.return_comments": ("보완 요구 의견 (필수)", "Comments (required)"),
        "application.kickoff.return_send": ("의견과 함께 돌려보내기", "Return the plan with these comments"),
        "application.kickoff.approve": ("승인 및 연차별 사업비", "Approve, with the funding by year"),
        "application.kickoff.approve_help": (
            "연도마다 국비와 지방비(원)를 적습니다. 합계가 선정 금액과 같고 해마다 지방비 매칭 비율을 지켜야 합니다."
            " 빈 줄은 무시합니다.",
            "One row per year: national and local money in won. The sums must equal the selected amounts and"
            " each year must meet the local match; empty rows are ignored.",
        ),
        "application.kickoff.year_n": ("{n}차년도 연도", "Year {n}"),
        "application.kickoff.national_n": ("{n}차년도 국비 (원)", "Year {n}: national (won)"),
        "application.kickoff.local_n": ("{n}차년도 지방비 (원)", "Year {n}: local (won)"),
        "application.kickoff.approve_send": ("실시계획 승인 (사업 착수)", "Approve the plan (the project starts)"),
        "application.kickoff.refused": ("처리하지 않았습니다: {message}", "Nothing was done: {message}"),
        "application.kickoff.returned": (
            "실시계획 {round}차를 의견과 함께 돌려보냈습니다.",
            "Plan round {round} was returned with comments.",
        ),
        "application.kickoff.approved": (
            "실시계획을 승인했습니다: 사업이 착수되었습니다.",
            "The plan was approved: the project has started.",
        ),
        "application.kickoff.no_rows": (
            "연차별 사업비를 한 줄 이상 적으십시오",
            "write the funding of at least one year",
        ),
    }
)
words.register({f"application.trigger.{k}": v for k, v in TRIGGERS.items()})
words.register({f"application.event.{k}": v for k, v in EVENTS.items()})
words.register({f"application.notice_state.{k}": v for k, v in NOTICE_STATES.items()})


@router.get("/office/applications/{application_id}", response_class=HTMLResponse)
def application_page(
    request: Request,
    who: Office,
    application_id: AppId,
    done: Annotated[str | None, Query(max_length=32)] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    kickoff: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    confirmation = {"trigger": done, "version": version} if done and TABLE.has_trigger(done) else None
    decided = kickoff if kickoff in KICKOFF_DONE else None
    return _page(request, who, application_id, confirmation=confirmation, kickoff_done=decided)


@router.post("/office/applications/{application_id}/transitions", dependencies=[Csrf], response_model=None)
def transition(
    request: Request,
    who: Office,
    application_id: AppId,
    trigger: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> HTMLResponse | RedirectResponse:
    """Fire one trigger with the version the page was rendered with, through moves.apply."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        visibility.check_access(a, conn, who, application_id)  # no such application: the 404 page
    decided_on: int | None = None
    try:
        decided_on = _version(version)
        pages.at_most(reason, "reason", REASON_MAX)
        if trigger == PLAN_TRIGGER:
            raise InvalidInput(
                "{given}: approve the implementation plan with its funding by year (the kickoff part of this page)",
                field="trigger",
                value=trigger,
                shown=repr(trigger),
            )
        if not TABLE.has_trigger(trigger):
            raise InvalidInput(
                "{given}: fire one of the page's buttons (e.g. pass_review)",
                field="trigger",
                value=trigger,
                shown=repr(trigger),
            )
        moved = a.moves.apply(application_id, trigger, who.actor, reason.strip() or None, decided_on)
    except Conflict as exc:  # stale (the version moved on) or another conflict: _page tells which
        return _page(request, who, application_id, refusal=pages.say(exc), decided_on=decided_on, status=409)
    except GongmoError as exc:
        return _page(
            request,
            who,
            application_id,
            refusal=pages.say(exc),
            status=errors.status_of(exc),
            given={"trigger": trigger, "reason": reason},
        )
    query = urlencode({"done": trigger, "version": moved.version})
    return RedirectResponse(f"/office/applications/{application_id}?{query}", status_code=303)


@router.get("/office/applications/{application_id}/documents/{kind}")
def download(
    request: Request,
    who: Office,
    application_id: AppId,
    kind: Annotated[str, Path(pattern=api_documents.KIND_PATTERN)],
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> StreamingResponse:
    """A document's bytes, as the API serves them (the same route function, the office's principal)."""
    return api_documents.download(pages.gongmo(request), who, application_id, kind, version)


@router.get("/office/applications/{application_id}/kickoff/{round_}/file")
def plan_file(
    request: Request, who: Office, application_id: AppId, round_: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> StreamingResponse:
    """An implementation plan round's file (read/documents.open_plan_file: the download recorded)."""
    return serve(documents_read.open_plan_file(pages.gongmo(request), who, application_id, round_))


def serve(found: documents_read.Download) -> StreamingResponse:
    """A stored file's bytes, one chunk at a time, with the headers the API's download sends."""
    digest = base64.b64encode(bytes.fromhex(found.sha256)).decode("ascii")
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": content_disposition(found.file_name),
        "ETag": f'"{found.sha256}"',
        "Repr-Digest": f"sha-256=:{digest}:",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(found.chunks(), media_type=found.media_type, headers=headers)


@router.post("/office/applications/{application_id}/kickoff/return", dependencies=[Csrf], response_model=None)
def return_plan(
    request: Request, who: Office, application_id: AppId, comments: Annotated[str, Form()] = ""
) -> HTMLResponse | RedirectResponse:
    """Return the waiting round with comments (kickoff.return_plan, as `gongmo kickoff return`)."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        visibility.check_access(a, conn, who, application_id)
    try:
        pages.at_most(comments, "comments", COMMENTS_MAX)
        kickoff.return_plan(a, application_id, comments, who.actor)
    except GongmoError as exc:
        refused = {"form": "return", "message": pages.say(exc), "comments": comments}
        return _page(request, who, application_id, kickoff_form=refused, status=errors.status_of(exc))
    return RedirectResponse(f"/office/applications/{application_id}?kickoff=returned#kickoff", status_code=303)


@router.post("/office/applications/{application_id}/kickoff/approve", dependencies=[Csrf], response_model=None)
async def approve_plan(request: Request, who: Office, application_id: AppId) -> HTMLResponse | RedirectResponse:
    form = await request.form(max_files=0, max_fields=4 + 3 * SCHEDULE_ROWS_MAX)
    return await run_in_threadpool(_approve_plan, request, who, application_id, form)


def _approve_plan(
    request: Request, who: Principal, application_id: int, form: FormData
) -> HTMLResponse | RedirectResponse:
    """Approve the waiting round with the schedule's rows (kickoff.parse_schedule, kickoff.approve)."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        visibility.check_access(a, conn, who, application_id)
    rows = schedule_rows(form)
    try:
        kickoff.approve(a, application_id, parse_rows(rows), who.actor)
    except GongmoError as exc:
        refused = {"form": "approve", "message": pages.say(exc), "rows": rows}
        return _page(request, who, application_id, kickoff_form=refused, status=errors.status_of(exc))
    return RedirectResponse(f"/office/applications/{application_id}?kickoff=approved#kickoff", status_code=303)


def schedule_rows(form: FormData) -> list[tuple[str, str, str]]:
    """The form's (year, national, local) rows, in order, as typed (at most SCHEDULE_ROWS_MAX)."""
    years, nationals, locals_ = (
        [str(v)[:40] for v in form.getlist(name)][:SCHEDULE_ROWS_MAX] for name in ("year", "national", "local")
    )
    width = max(len(years), len(nationals), len(locals_))
    pad = [*([""] * width)]
    return [((years + pad)[i].strip(), (nationals + pad)[i].strip(), (locals_ + pad)[i].strip()) for i in range(width)]


def parse_rows(rows: Iterable[tuple[str, str, str]]) -> list[Year]:
    """The schedule of the non-empty rows, as `--schedule YEAR=NATIONAL/LOCAL` takes each (at least one)."""
    items = [f"{y}={n}/{loc}" for y, n, loc in rows if y or n or loc]
    if not items:
        raise InvalidInput("{field}: " + words.WORDS["application.kickoff.no_rows"][1], field="schedule")
    return kickoff.parse_schedule(items)


def _version(given: str) -> int:
    text = given.strip()[:12]
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID):
        raise InvalidInput(
            "{given}: the version the page was rendered with; reload the page and decide again",
            field="version",
            value=given,
            shown=repr(given),
        )
    return int(text)


def _page(
    request: Request,
    who: Principal,
    application_id: int,
    *,
    confirmation: Mapping[str, Any] | None = None,
    refusal: str | None = None,
    decided_on: int | None = None,
    status: int = 200,
    given: Mapping[str, str] | None = None,
    kickoff_form: Mapping[str, Any] | None = None,
    kickoff_done: str | None = None,
) -> HTMLResponse:
    """The page; after a refused form, with the refusal (`decided_on`: the version a Conflict's form
    carried; if the application has moved on since, the answer is "someone changed this first")."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        shown = timeline.of_application(a, conn, who, application_id)
    stale = decided_on is not None and shown["version"] != decided_on
    contest, track = a.loaded.config.track(shown["track"])
    zone = ZoneInfo(contest.timezone)
    lang = pages.language(request)
    when = _when(zone)
    label, t, named = words.state_label(lang), words.translator(lang), _named(lang)
    shown["choices"] = [c for c in shown["choices"] if c.trigger != PLAN_TRIGGER]
    plans = kickoff.plans(a, application_id)
    waiting = shown["state"] == "selected" and bool(plans) and plans[-1]["status"] == "received"
    return pages.render(
        request,
        "office/application.html",
        status=status,
        app=shown,
        contest=contest,
        track=track,
        confirmation=confirmation,
        refusal=None if stale else refusal,
        stale=stale,
        given=given,
        answers=_answers(track.questions, shown["answers"], lang),
        lines=lines(shown["timeline"], t, label, named, when),
        when=when,
        label=label,
        trigger_label=lambda name: named("trigger", name),
        krw=krw,
        size=human_size,
        plans=plans,
        funding=kickoff.funding(a, application_id) if plans else [],
        waiting=waiting,
        schedule=_schedule_rows(shown, track, zone, a.clock.now(), kickoff_form) if waiting else [],
        kickoff_form=kickoff_form or {},
        kickoff_done=kickoff_done,
    )


def _schedule_rows(
    shown: Mapping[str, Any], track: Any, zone: ZoneInfo, now: datetime, refused: Mapping[str, Any] | None
) -> list[tuple[str, str, str]]:
    """The approve form's rows: as typed when a refusal brings them back, else an even split of the
    selected amounts over the plan's years from this year (what `kickoff approve` does without
    --schedule), for the office to adjust."""
    if refused and refused.get("form") == "approve" and refused.get("rows"):
        return list(refused["rows"])
    years = int(shown.get("years") or track.funding.years)
    split = default_schedule(
        now.astimezone(zone).year, years, int(shown.get("national_krw") or 0), int(shown.get("local_krw") or 0)
    )
    return [(str(y.year), f"{y.national_krw:,}", f"{y.local_krw:,}") for y in split]


@dataclass(frozen=True)
class Line:
    """One timeline row as the page shows it, its pieces in words (the template escapes them):
    <strong>title</strong> text <delivery> rest (note), warning."""

    kind: str  # audit, event, calendar, notice: the row's class
    state: str  # a notice's delivery state (its row's class), else ""
    at: str
    what: str
    title: str
    text: str = ""
    delivery: str = ""
    rest: str = ""
    note: str = ""
    warning: str = ""
    who: str = ""


def lines(
    entries: list[dict[str, Any]],
    t: Callable[..., str],
    label: Callable[[str | None], str],
    named: Callable[[str, str], str],
    when: Callable[[datetime | None], str],
) -> list[Line]:
    """The timeline's rows in words, built here rather than in the template: a page of 200 rows
    renders in a few milliseconds (the bench compares it with the API's JSON of the same rows)."""
    what = {s: t(f"application.source.{s}") for s in timeline.SOURCES}
    out = []
    for e in entries:
        source = e["source"]
        if source == "audit":
            reason = f" · {t('application.reason_was', reason=e['reason'])}" if e["reason"] else ""
            out.append(
                Line(
                    source,
                    "",
                    when(e["at"]),
                    what[source],
                    named("trigger", e["trigger"]),
                    f" · {label(e['from_state']) or '—'} → {label(e['to_state'])}{reason}",
                    note=brief(e["detail"]),
                    who=f"{e['actor']} ({e['role']})",
                )
            )
        elif source == "event":
            detail = brief(e["detail"])
            text = f" · {detail}" if detail else ""
            who = f"{e['actor']} ({e['role']})"
            out.append(Line(source, "", when(e["at"]), what[source], named("event", e["kind"]), text, who=who))
        elif source == "calendar":
            kind = t("application.reschedule") if e["kind"] == "reschedule" else t("application.extension")
            text = f" · {e['milestone']}: {when(e['old_at'])} → {when(e['new_at'])} · "
            text += t("application.reason_was", reason=e["reason"])
            out.append(Line(source, "", when(e["at"]), what[source], kind, text, who=e["actor"]))
        else:
            rest = f" · {t('application.attempts', n=e['attempts'])}"
            if e["sent_at"]:
                rest += f" · {t('application.sent_at', at=when(e['sent_at']))}"
            if e["superseded_by"]:
                rest += f" · {t('application.superseded_by', by=e['superseded_by'])}"
            out.append(
                Line(
                    source,
                    e["state"],
                    when(e["at"]),
                    what[source],
                    e["notice"],
                    f" ({e['language']}) → {e['to_addr']} · ",
                    named("notice_state", e["state"]),
                    rest,
                    warning=e["last_error"] or "",
                    who=f"#{e['id']}",
                )
            )
    return out


def _when(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    """An instant as the contest's zone reads it, to the minute (2024-05-28 11:00)."""

    def when(at: datetime | None) -> str:
        return "" if at is None else f"{at.astimezone(zone):%Y-%m-%d %H:%M}"

    return when


def _named(lang: str) -> Callable[[str, str], str]:
    """A name's registered words in its group (trigger, event, notice_state), or the name itself."""
    index = 1 if lang == "en" else 0

    def named(group: str, name: str) -> str:
        pair = words.WORDS.get(f"application.{group}.{name}")
        return name if pair is None else pair[index]

    return named


def _answers(questions: Any, given: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    return [
        {
            "key": q.key,
            "text": q.text_ko if lang == "ko" else q.text_en,
            "answer": questions_mod.describe(q, given.get(q.key)),
            "required": q.required,
        }
        for q in questions
    ]


def brief(value: Any, limit: int = 240) -> str:
    """What an event or a move recorded, as one short line: 'kind: plan; version: 1'."""
    if value is None or value == "" or value == {}:
        return ""
    text = _plain(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items() if v is not None)
    if isinstance(value, list | tuple):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def krw(amount: int | None) -> str:
    return "" if amount is None else f"{amount:,}"


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
