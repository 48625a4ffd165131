"""The evaluators' portal (/evaluator): an outside expert's assignments, applications and score sheets.

- `Evaluator` (a page dependency) is the signed-in session of role evaluator, else 403; the page's
  default language is the evaluator's own (its record's language when the committee import gave one).
- GET /evaluator: the assignments by track and part (written, presentation), each part with its
  window's end in the contest's zone and how many of the evaluator's sheets are missing
  (read/portal.assignments: only what visibility lets the evaluator see).
- GET /evaluator/applications/{id}: the application as the API's detail shows it to an evaluator
  (visibility.detail: check_access first; no result before the release), its documents (downloaded
  through the API's route function, the download recorded), answers and checklist, and a score
  sheet per part: editable while the part's window is open and the application is in that part,
  else read-only with the window and why. The sheet is drawn from the track's criteria
  (committee.criteria_of); console.js keeps the total live, the page works without it.
- POST .../scores/{part}: each field checked against the service's rules first (read/portal.
  sheet_problems: hundredths, 0..max, every criterion), each error beside its field, nothing saved
  (422); then committee.enter_sheet, the API's PUT's service; saving again is a correction, recorded
  with the old points, and the page says "corrected" with the previous total.
- GET/POST .../conflict: what declaring a conflict of interest does, then (a reason required)
  committee.declare_conflict, as `gongmo conflict` does: the assignment and its sheets withdrawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from gongmo.states import questions as questions_mod
from gongmo.states.errors import GongmoError, InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.states.scoring import PARTS
from gongmo.workflow.api import documents as api_documents
from gongmo.workflow.api import errors
from gongmo.workflow.core import sessions
from gongmo.workflow.core.config import Track
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.read import portal, visibility
from gongmo.workflow.stages import committee
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.applications import human_size, krw
from gongmo.workflow.web.auth import Csrf, session
from gongmo.workflow.web.pages import Forbidden

router = APIRouter(include_in_schema=False)

AppId = Annotated[int, Path(ge=1, le=MAX_ID)]
PartName = Annotated[str, Path(pattern="^(written|presentation)$")]
REASON_MAX = 2000
FIELD = "points."  # a sheet's field is named points.<criterion>

words.register(
    {
        "evaluator.portal": ("평가위원 화면", "Evaluator portal"),
        "evaluator.nav.home": ("내 평가", "My evaluations"),
        "evaluator.title": ("내 평가 업무", "My evaluations"),
        "evaluator.none": (
            "배정된 신청이 없습니다. 배정되면 여기에 표시됩니다.",
            "Nothing is assigned to you. Assignments appear here once the office makes them.",
        ),
        "evaluator.due": ("마감 {at}", "due {at}"),
        "evaluator.window": ("평가 기간 {starts} ~ {ends}", "Window {starts} to {ends}"),
        "evaluator.phase.before": ("시작 전", "not open yet"),
        "evaluator.phase.open": ("진행 중", "open now"),
        "evaluator.phase.after": ("종료", "closed"),
        "evaluator.counts": (
            "평가표 {due}건 중 {entered}건 입력, {missing}건 미입력",
            "{entered} of {due} sheets entered, {missing} missing",
        ),
        "evaluator.not_due_yet": (
            "아직 평가 대상이 아닙니다 (신청이 이 단계에 이르면 평가표를 입력합니다)",
            "Nothing due yet (sheets are due once the applications reach this part)",
        ),
        "evaluator.receipt": ("접수번호", "Receipt no."),
        "evaluator.applicant": ("신청기관", "Applicant"),
        "evaluator.state": ("상태", "State"),
        "evaluator.my_sheet": ("내 평가표", "My sheet"),
        "evaluator.sheet.entered": ("입력함", "entered"),
        "evaluator.sheet.missing": ("미입력", "missing"),
        "evaluator.sheet.not_due": ("해당 없음", "not due"),
        "evaluator.declared": (
            "이해충돌 신고를 기록했습니다: 신청 {id}의 배정과 평가표가 철회되었습니다.",
            "Conflict of interest recorded: your assignment to application {id} and its sheets were withdrawn.",
        ),
        "evaluator.application": ("신청 {id}", "Application {id}"),
        "evaluator.back": ("내 평가 목록으로", "Back to my evaluations"),
        "evaluator.summary": ("신청 개요", "Summary"),
        "evaluator.track": ("유형", "Track"),
        "evaluator.title_field": ("사업명", "Title"),
        "evaluator.type": ("사업 유형", "Type"),
        "evaluator.amounts": ("신청 금액", "Amounts"),
        "evaluator.amounts_line": (
            "국비 {national}원 · 지방비 {local}원",
            "national {national} won · local {local} won",
        ),
        "evaluator.years": ("사업 기간", "Years"),
        "evaluator.years_n": ("{n}년", "{n} year(s)"),
        "evaluator.result": ("결과 (공개됨)", "Result (released)"),
        "evaluator.result_line": (
            "종합 점수 {score}, {ranked}건 중 {rank}위",
            "committee score {score}, rank {rank} of {ranked}",
        ),
        "evaluator.sheets": ("평가표", "Score sheets"),
        "evaluator.sheet_of": ("{part} 평가표", "{part} sheet"),
        "evaluator.criterion": ("평가 항목", "Criterion"),
        "evaluator.points": ("점수", "Points"),
        "evaluator.max": ("배점 {max}", "max {max}"),
        "evaluator.field_label": ("{name} (0~{max}점)", "{name} (0 to {max})"),
        "evaluator.total": ("합계", "Total"),
        "evaluator.total_of": ("{total} / {max}점", "{total} of {max}"),
        "evaluator.hint": (
            "점수는 소수점 둘째 자리까지 입력할 수 있습니다 (예: 22.5). 모든 항목을 입력해야 저장됩니다.",
            "Points take at most two decimals (e.g. 22.5); every criterion is needed to save.",
        ),
        "evaluator.save": ("평가표 저장", "Save the sheet"),
        "evaluator.correct": ("정정하여 저장", "Save the correction"),
        "evaluator.saved": ("평가표를 저장했습니다 ({part}).", "Sheet saved ({part})."),
        "evaluator.corrected": (
            "정정됨: 이전 합계 {previous}점 → 현재 합계 {total}점 ({at})",
            "Corrected: previous total {previous} → now {total} ({at})",
        ),
        "evaluator.entered_at": ("입력 {at}", "entered {at}"),
        "evaluator.not_entered": ("아직 입력하지 않았습니다", "Not entered yet"),
        "evaluator.invalid": (
            "평가표를 저장하지 않았습니다: 표시된 항목을 고쳐 주십시오.",
            "The sheet was not saved: correct the fields marked below.",
        ),
        "evaluator.refused": ("저장하지 않았습니다: {message}", "Not saved: {message}"),
        "evaluator.closed.before": (
            "평가 기간이 아직 시작되지 않았습니다: {starts}부터 {ends}까지 입력할 수 있습니다.",
            "The window has not opened yet: sheets are entered from {starts} to {ends}.",
        ),
        "evaluator.closed.after": (
            "평가 기간이 끝났습니다 ({starts} ~ {ends}): 평가표는 읽기 전용입니다.",
            "The window is closed ({starts} to {ends}): the sheet is read-only.",
        ),
        "evaluator.closed.state": (
            "이 신청은 지금 {state} 단계라 {part} 평가표를 입력할 수 없습니다 (평가 기간 {starts} ~ {ends}).",
            "This application is in {state}: {part} sheets cannot be entered now (window {starts} to {ends}).",
        ),
        "evaluator.checklist": ("적격성 확인", "Eligibility checklist"),
        "evaluator.checklist_none": ("확인 결과가 없습니다", "Not checked"),
        "evaluator.rule": ("항목", "Rule"),
        "evaluator.check_result": ("결과", "Result"),
        "evaluator.value": ("신청 내용", "Stated"),
        "evaluator.expected": ("요건", "Required"),
        "evaluator.pass": ("충족", "pass"),
        "evaluator.fail": ("미충족", "FAIL"),
        "evaluator.eligible": ("적격", "eligible"),
        "evaluator.not_eligible": ("부적격 항목 있음", "NOT eligible"),
        "evaluator.documents": ("제출 서류", "Documents"),
        "evaluator.documents_none": ("제출된 서류가 없습니다", "No documents"),
        "evaluator.kind": ("종류", "Kind"),
        "evaluator.file": ("파일", "File"),
        "evaluator.size": ("크기", "Size"),
        "evaluator.answers": ("질문 답변", "Answers"),
        "evaluator.question": ("질문", "Question"),
        "evaluator.answer": ("답변", "Answer"),
        "evaluator.answers_none": ("이 유형은 질문이 없습니다", "This track asks no questions"),
        "evaluator.conflict": ("이해충돌 신고", "Declare a conflict of interest"),
        "evaluator.conflict_link": (
            "이 신청과 이해관계가 있으면 이해충돌을 신고하십시오",
            "If you have an interest in this application, declare a conflict of interest",
        ),
        "evaluator.conflict.title": ("이해충돌 신고: 신청 {id}", "Declare a conflict: application {id}"),
        "evaluator.conflict.what": ("신고하면 다음과 같이 처리됩니다", "What declaring it does"),
        "evaluator.conflict.with": (
            "{applicant}({code})와의 이해충돌이 기록됩니다. 이 기관의 신청은 앞으로 배정되지 않습니다.",
            "A conflict with {applicant} ({code}) is recorded: none of its applications will be assigned to you.",
        ),
        "evaluator.conflict.unassign": (
            "이 신청에 대한 배정이 철회되고, 입력한 평가표 {sheets}건(항목 점수 포함)이 삭제됩니다.",
            "Your assignment to this application is withdrawn and the {sheets} sheet(s) you entered are deleted.",
        ),
        "evaluator.conflict.hidden": (
            "이후 이 신청과 그 서류를 볼 수 없습니다. 되돌리려면 사무국에 문의해야 합니다.",
            "You will no longer see this application or its documents; only the office can undo it.",
        ),
        "evaluator.conflict.recorded": (
            "신고와 사유는 감사 기록에 남고 사무국의 평가위원회 화면에 표시됩니다.",
            "The declaration and its reason are kept in the audit log and shown on the office's committee page.",
        ),
        "evaluator.conflict.reason": ("사유 (필수)", "Reason (required)"),
        "evaluator.conflict.confirm": ("이해충돌을 신고하고 배정 철회", "Declare the conflict and withdraw"),
        "evaluator.conflict.cancel": ("취소하고 신청으로 돌아가기", "Cancel, back to the application"),
        "evaluator.conflict.refused": ("신고하지 않았습니다: {message}", "Nothing was declared: {message}"),
    }
)
words.register({"part.written": ("서면평가", "Written"), "part.presentation": ("발표평가", "Presentation")})


def evaluator(request: Request, found: Annotated[sessions.Session, Depends(session)]) -> Principal:
    """The signed-in evaluator (403 for any other session); its own language as the pages' default."""
    if found.role != Role.EVALUATOR:
        raise Forbidden(f"this page is for evaluators (signed in as {found.role.value}): {request.url.path}")
    if request.query_params.get("lang") is None and request.cookies.get(pages.LANG_COOKIE) is None:
        a = pages.gongmo(request)
        with read(a.db) as conn:
            own = portal.evaluator_language(conn, found.principal.evaluator_id)
        if own:
            request.state.default_language = own
    return found.principal


Evaluator = Annotated[Principal, Depends(evaluator)]


# -- the assignments -----------------------------------------------------------------------------


@router.get("/evaluator", response_class=HTMLResponse)
def home(
    request: Request, who: Evaluator, declared: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> HTMLResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        work = portal.assignments(a, conn, who)
    lang = pages.language(request)
    tracks = {w.track: a.loaded.config.track(w.track) for w in work}
    return pages.render(
        request,
        "evaluator/home.html",
        work=work,
        tracks={k: t for k, (_, t) in tracks.items()},
        when={k: _when(ZoneInfo(c.timezone)) for k, (c, _) in tracks.items()},
        declared=declared,
        label=words.state_label(lang),
        named=_named(lang),
    )


# -- one application -----------------------------------------------------------------------------


@router.get("/evaluator/applications/{application_id}", response_class=HTMLResponse)
def application(
    request: Request,
    who: Evaluator,
    application_id: AppId,
    saved: Annotated[str | None, Query(pattern="^(written|presentation)$")] = None,
) -> HTMLResponse:
    return _page(request, who, application_id, saved=saved)


@router.get("/evaluator/applications/{application_id}/documents/{kind}")
def download(
    request: Request,
    who: Evaluator,
    application_id: AppId,
    kind: Annotated[str, Path(pattern=api_documents.KIND_PATTERN)],
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> StreamingResponse:
    """A document's bytes, as the API serves them (the same route function, the evaluator's principal:
    its access check, the download recorded)."""
    return api_documents.download(pages.gongmo(request), who, application_id, kind, version)


@router.post("/evaluator/applications/{application_id}/scores/{part}", dependencies=[Csrf], response_model=None)
async def save_sheet(request: Request, who: Evaluator, application_id: AppId, part: PartName) -> HTMLResponse:
    form = await request.form()
    given = {str(k)[len(FIELD) :]: v[:40] for k, v in form.items() if str(k).startswith(FIELD) and isinstance(v, str)}
    return await run_in_threadpool(_save, request, who, application_id, part, given)


def _save(request: Request, who: Principal, application_id: int, part: str, given: dict[str, str]) -> HTMLResponse:
    """Check each field, then the service (committee.enter_sheet, as the API's PUT); the page with the
    saved sheet is the answer (a reload sends the same sheet again: a correction to the same points)."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        visibility.check_access(a, conn, who, application_id)  # not yours: 403/404, before anything else
        track_key = portal.track_of(conn, application_id)
    _, track = a.loaded.config.track(track_key)
    criteria = committee.criteria_of(track)
    try:
        problems = portal.sheet_problems(criteria, given)
    except InvalidInput as exc:  # the whole sheet's check (e.g. an unknown criterion)
        problems = {"": pages.say(exc)}
    if problems:
        form = {"part": part, "given": given, "problems": problems}
        return _page(request, who, application_id, form=form, status=422)
    points = {c.key: given[c.key].strip() for c in criteria}
    try:
        committee.enter_sheet(a, committee.SheetInput(str(application_id), who.subject, part, points), who.actor)
    except GongmoError as exc:
        form = {"part": part, "given": given, "problems": {}, "refusal": pages.say(exc)}
        return _page(request, who, application_id, form=form, status=errors.status_of(exc))
    return _page(request, who, application_id, saved=part)


# -- declaring a conflict -----------------------------------------------------------------------------


@router.get("/evaluator/applications/{application_id}/conflict", response_class=HTMLResponse)
def conflict_page(request: Request, who: Evaluator, application_id: AppId) -> HTMLResponse:
    return _conflict_page(request, who, application_id)


@router.post("/evaluator/applications/{application_id}/conflict", dependencies=[Csrf], response_model=None)
def declare(
    request: Request, who: Evaluator, application_id: AppId, reason: Annotated[str, Form()] = ""
) -> HTMLResponse | RedirectResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        shown = visibility.detail(a, conn, who, application_id)  # not yours: 403/404
    try:
        pages.at_most(reason, "reason", REASON_MAX)
        committee.declare_conflict(a, who.subject, shown["applicant_code"], reason, who.actor)
    except GongmoError as exc:
        return _conflict_page(
            request, who, application_id, refusal=pages.say(exc), reason=reason, status=errors.status_of(exc)
        )
    return RedirectResponse(f"/evaluator?declared={application_id}", status_code=303)


def _conflict_page(
    request: Request,
    who: Principal,
    application_id: int,
    refusal: str | None = None,
    reason: str = "",
    status: int = 200,
) -> HTMLResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        shown = visibility.detail(a, conn, who, application_id)
        sheets = portal.own_sheets(a, conn, who, application_id)
    return pages.render(
        request,
        "evaluator/conflict.html",
        status=status,
        app=shown,
        sheets=sum(1 for s in sheets.values() if s.points is not None),
        refusal=refusal,
        reason=reason,
    )


# -- the application page ----------------------------------------------------------------------------


def _page(
    request: Request,
    who: Principal,
    application_id: int,
    *,
    saved: str | None = None,
    form: Mapping[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        shown = visibility.detail(a, conn, who, application_id)
        own = portal.own_sheets(a, conn, who, application_id)
        windows = portal.windows_of_application(conn, application_id, a.clock.now())
    contest, track = a.loaded.config.track(shown["track"])
    zone = ZoneInfo(contest.timezone)
    lang = pages.language(request)
    when = _when(zone)
    sheets = [
        _sheet(track, shown, own[p], windows[p], lang, when, form if form and form["part"] == p else None)
        for p in PARTS
    ]
    return pages.render(
        request,
        "evaluator/application.html",
        status=status,
        switch_to=f"/evaluator/applications/{application_id}",  # also after a POST to .../scores/{part}
        app=shown,
        track=track,
        sheets=sheets,
        saved=saved,
        invalid=bool(form and form.get("problems")),
        when=when,
        label=words.state_label(lang),
        named=_named(lang),
        krw=krw,
        size=human_size,
        answers=_answers(track, shown["answers"], lang),
    )


def _sheet(
    track: Track,
    shown: Mapping[str, Any],
    own: portal.Sheet,
    window: portal.Window,
    lang: str,
    when: Callable[[datetime | None], str],
    form: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One part's sheet as the template draws it: its fields (criterion, maximum, value, error),
    whether it can be sent now, and if not why."""
    state = shown["state"]
    part = own.part
    editable = window.open and state == portal.part_state(part)
    given: Mapping[str, str] = form["given"] if form else {}
    problems: Mapping[str, str] = form["problems"] if form else {}
    fields = []
    for c in track.evaluation.criteria:
        saved = own.points.get(c.key) if own.points else None
        value = given.get(c.key, "") if form else ("" if saved is None else _plain(saved))
        fields.append(
            {
                "key": c.key,
                "name": c.name_ko if lang == "ko" else c.name_en,
                "max": _plain(c.points),
                "value": value,
                "saved": None if saved is None else _plain(saved),
                "error": problems.get(c.key),
            }
        )
    why: tuple[str, dict[str, str]] | None
    if editable:
        why = None
    elif window.phase != "open":
        why = ("closed." + window.phase, {})
    else:
        why = ("closed.state", {"state": state})
    maximum = sum((c.points for c in track.evaluation.criteria), Decimal(0))
    return {
        "part": part,
        "fields": fields,
        "editable": editable,
        "why": why,
        "starts": when(window.starts),
        "ends": when(window.ends),
        "max": _plain(maximum),
        "total": None if own.total is None else _plain(own.total),
        "entered_at": when(own.entered_at) if own.entered_at else None,
        "corrected": own.corrected,
        "previous": None if own.previous_total is None else _plain(own.previous_total),
        "refusal": form.get("refusal") if form else None,
        "whole": problems.get(""),
    }


def _plain(value: Decimal) -> str:
    """22.50 -> 22.5, 30.00 -> 30: the figure as a person writes it."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _answers(track: Track, given: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    return [
        {"text": q.text_ko if lang == "ko" else q.text_en, "answer": questions_mod.describe(q, given.get(q.key))}
        for q in track.questions
    ]


def _when(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    """An instant as the contest's zone reads it, with the zone (2024-06-12 18:00 KST)."""

    def when(at: datetime | None) -> str:
        if at is None:
            return ""
        local = at.astimezone(zone)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    return when


def _named(lang: str) -> Callable[[str], str]:
    t = words.translator(lang)
    return lambda part: t(f"part.{part}")
