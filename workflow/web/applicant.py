"""The applicants' portal (/applicant): a local government's applications, its plan, its notices.

- `Applicant` (a page dependency) is the signed-in session of role applicant, else 403; the pages'
  default language is the applicant's own (its record's `language`), with the switch on every page.
- GET /applicant: its applications by track (visibility.page: results folded under embargo), each
  with the stage it is in in a sentence and the next date that matters to it (read/portal.next_date:
  the track calendar, its own extensions and deadline rows, its objection window), in KST; and the
  tracks whose receipt is open where it has no application yet, with the way to apply.
- GET/POST /applicant/tracks/{key}/apply: the plan (amounts, type, years, title, the track's
  questions, one file field per document kind) while the receipt window is open (its extension
  counts). Every field is checked first, each error beside its field, nothing stored (422); then
  the same services as the API: Uploads.add per file (the API's upload), app.moves.submit (POST
  /applications). A refusal of a service names its field (InvalidInput.field): shown beside it.
  Outside the window the page shows the window in KST and says why, and a POST is refused (409).
- GET /applicant/applications/{id}: the application as visibility.detail shows it to its applicant:
  the stage in words, the next date, the receipt number and its documents' SHA-256, answers; the
  objection form while disqualified and the window is open (review.file_objection, its last day);
  after the release the explained result (read/portal.explained_result; nothing before); when
  selected, the implementation plan's rounds (each with its file's name, size, SHA-256 and download,
  read/documents.open_plan_file), the office's comments and the funding by year, with the form to
  file a plan (kickoff.receive keeps the file); the way to withdraw.
  The plan's form and the kickoff form take files as large as the API's document upload
  (api/limits.py: only with a live applicant session, checked before the body is read).
- GET/POST .../withdraw: what withdrawing does, then the trigger through app.moves with the
  version the page was rendered with (a stale page: "someone changed this first", nothing changed).
- GET /applicant/notices (and /{id}, /{id}/body.html in a sandboxed frame under a CSP of its own, as
  the office's outbox view, /{id}/invite.ics): the notices sent to it (read/portal.notices: sent
  only; a result held under embargo is not sent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.engine import Connection, RowMapping
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from gongmo.notifications import reasons
from gongmo.notifications.render import MILESTONES
from gongmo.states import questions as questions_mod
from gongmo.states.errors import GongmoError, InvalidInput, NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow.api import documents as api_documents
from gongmo.workflow.api import errors
from gongmo.workflow.core import lookups, sessions
from gongmo.workflow.core.config import Track
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.engine.intake import MAX_YEARS
from gongmo.workflow.read import documents as documents_read
from gongmo.workflow.read import portal, visibility
from gongmo.workflow.stages import kickoff, review
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.applications import human_size, krw, serve
from gongmo.workflow.web.auth import Csrf, session
from gongmo.workflow.web.pages import Forbidden

router = APIRouter(include_in_schema=False)

AppId = Annotated[int, Path(ge=1, le=MAX_ID)]
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID)]
TrackKey = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
BODY_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"
TEXT_MAX = 2000  # grounds, a reason
TITLE_MAX = 200
DOC = "document."  # a document's file field is document.<kind>
ANSWER = "answers."  # an answer's field is answers.<question key>
PLAN_FIELDS = ("title", "project_type", "years", "national_krw", "local_krw")

words.register(
    {
        "applicant.portal": ("신청기관 화면", "Applicant portal"),
        "applicant.nav.home": ("내 신청", "My applications"),
        "applicant.nav.notices": ("받은 알림", "Notices"),
        "applicant.title": ("내 신청 현황", "My applications"),
        "applicant.none": ("아직 신청이 없습니다.", "No applications yet."),
        "applicant.open_calls": ("접수 중인 공모", "Calls open for plans"),
        "applicant.open_call": (
            "{track}: 접수 기간 {opens} ~ {closes}",
            "{track}: receipt from {opens} to {closes}",
        ),
        "applicant.apply": ("사업계획 제출하기", "Submit a plan"),
        "applicant.track": ("공모 유형", "Track"),
        "applicant.receipt": ("접수번호", "Receipt no."),
        "applicant.stage": ("현재 단계", "Stage"),
        "applicant.next": ("다음 일정", "Next date"),
        "applicant.no_next": ("남은 일정이 없습니다", "No date ahead"),
        "applicant.next_line": ("{milestone}: {at}", "{milestone}: {at}"),
        "applicant.extended": ("(귀 기관에 연장된 기한)", "(extended for you)"),
        "applicant.open": ("보기", "Open"),
        "applicant.objection_until": ("이의신청 마감", "last day to object"),
        # a sentence per state
        "applicant.state.announcement": (
            "공모가 공고되었습니다. 접수 기간에 사업계획과 서류를 제출하십시오.",
            "The call is announced: submit your plan and its documents in the receipt window.",
        ),
        "applicant.state.receipt": (
            "사업계획이 접수되었습니다. 접수 마감 후 예비검토(적격성 확인)를 진행합니다.",
            "Your plan is received; the preliminary review (eligibility) follows the receipt close.",
        ),
        "applicant.state.preliminary_review": (
            "예비검토 중입니다: 신청 자격과 요건을 확인하고 있습니다.",
            "In preliminary review: the office is checking eligibility and requirements.",
        ),
        "applicant.state.written_evaluation": (
            "예비검토를 통과하여 평가위원회의 서면평가를 받고 있습니다.",
            "Passed the preliminary review; the committee is evaluating the plan in writing.",
        ),
        "applicant.state.presentation_evaluation": (
            "발표평가 단계입니다. 평가가 끝나면 선정 결과를 발표일에 알려 드립니다.",
            "In presentation evaluation; the result is announced on the selection day.",
        ),
        "applicant.state.selected": (
            "선정되었습니다. 세부 실시계획을 기한까지 제출하십시오.",
            "Selected: file the detailed implementation plan by its deadline.",
        ),
        "applicant.state.waitlisted": (
            "예비 선정(대기)입니다. 선정된 기관이 철회하거나 취소되면 순서대로 선정됩니다.",
            "Waitlisted: if a selected applicant withdraws or is cancelled, the waitlist moves up in order.",
        ),
        "applicant.state.not_selected": (
            "선정되지 않았습니다. 아래에서 결과의 근거를 확인할 수 있습니다.",
            "Not selected; the grounds of the result are below.",
        ),
        "applicant.state.kickoff": (
            "세부 실시계획이 승인되어 사업에 착수했습니다.",
            "The implementation plan is approved: the project has started.",
        ),
        "applicant.state.withdrawn": ("신청을 철회했습니다.", "The application was withdrawn."),
        "applicant.state.expired": (
            "접수 마감까지 사업계획이 제출되지 않았습니다.",
            "No plan was submitted by the receipt close.",
        ),
        "applicant.state.disqualified": (
            "예비검토에서 부적격으로 판정되었습니다. 이의신청 기간에 이의를 신청할 수 있습니다.",
            "Found ineligible in the preliminary review; you may object within the objection period.",
        ),
        "applicant.state.cancelled": (
            "세부 실시계획이 기한까지 승인되지 않아 선정이 취소되었습니다.",
            "The selection was cancelled: no implementation plan was approved in time.",
        ),
        # the plan's form
        "applicant.apply.title": ("사업계획 제출: {track}", "Submit a plan: {track}"),
        "applicant.window": ("접수 기간: {opens} ~ {closes}", "Receipt window: {opens} to {closes}"),
        "applicant.window.before": (
            "아직 접수 기간이 아닙니다. 접수는 {opens}에 시작합니다.",
            "The receipt window is not open yet: it opens at {opens}.",
        ),
        "applicant.window.after": (
            "접수가 마감되었습니다 ({closes}). 늦은 제출은 공모 담당 부서의 기한 연장이 있어야 합니다.",
            "The receipt is closed ({closes}); a late plan needs an extension granted by the office.",
        ),
        "applicant.window.received": (
            "이미 접수된 신청입니다 (접수번호 {receipt}).",
            "Your plan is already received (receipt no. {receipt}).",
        ),
        "applicant.field.title": ("사업명", "Project title"),
        "applicant.field.project_type": ("사업 유형", "Project type"),
        "applicant.field.years": ("사업 기간 (년)", "Years"),
        "applicant.field.years_hint": ("1~{max}년", "1 to {max} years"),
        "applicant.field.national_krw": ("국비 (원)", "National funds (KRW)"),
        "applicant.field.local_krw": ("지방비 (원)", "Local funds (KRW)"),
        "applicant.field.amount_hint": (
            "원 단위 숫자, 쉼표 허용 (국비 상한 {cap}원, 지방비 매칭 비율 {ratio})",
            "whole won, commas allowed (national cap {cap}, local match ratio {ratio})",
        ),
        "applicant.field.choose": ("선택하십시오", "Choose"),
        "applicant.questions": ("공모 질문", "The track's questions"),
        "applicant.required": ("(필수)", "(required)"),
        "applicant.optional": ("(선택)", "(optional)"),
        "applicant.yes": ("예", "yes"),
        "applicant.no": ("아니오", "no"),
        "applicant.members_hint": (
            "한 줄에 한 구성원: 이름, 구분, 사업자등록번호 (구분: {kinds})",
            "One member a line: name, kind, business registration number (kinds: {kinds})",
        ),
        "applicant.documents": ("제출 서류", "Documents"),
        "applicant.doc_hint": ("파일 형식: {types}, 최대 {mb}MB", "File types: {types}; at most {mb} MB"),
        "applicant.doc_on_file": (
            "제출된 파일: {name} (SHA-256 {sha}). 새 파일을 고르면 교체됩니다.",
            "On file: {name} (SHA-256 {sha}); choosing a new file replaces it.",
        ),
        "applicant.submit": ("사업계획 제출", "Submit the plan"),
        "applicant.invalid": (
            "제출하지 않았습니다: 표시된 항목을 고쳐 주십시오.",
            "Nothing was submitted: correct the fields marked below.",
        ),
        "applicant.refused": ("제출하지 않았습니다: {message}", "Nothing was submitted: {message}"),
        "applicant.bad_amount": (
            "{value}: 원 단위 숫자로 쓰십시오 (예: 8,000,000,000)",
            "{value}: write a whole number of won, e.g. 8,000,000,000",
        ),
        "applicant.bad_years": ("{value}: 1~{max} 사이의 정수로 쓰십시오", "{value}: write a whole number, 1 to {max}"),
        "applicant.missing_field": ("필수 항목입니다", "Required"),
        "applicant.missing_document": (
            "필수 서류입니다: 파일을 선택하십시오",
            "A required document: choose its file",
        ),
        "applicant.title_long": ("{max}자 이하로 쓰십시오", "Write at most {max} characters"),
        # the application's page
        "applicant.application": ("신청 {receipt}", "Application {receipt}"),
        "applicant.back": ("내 신청 목록으로", "Back to my applications"),
        "applicant.received": (
            "사업계획이 접수되었습니다. 접수번호 {receipt}",
            "Your plan was received: receipt no. {receipt}",
        ),
        "applicant.summary": ("신청 내용", "The plan"),
        "applicant.amounts_line": (
            "국비 {national}원 · 지방비 {local}원",
            "national {national} won · local {local} won",
        ),
        "applicant.submitted_at": ("접수 일시", "Received"),
        "applicant.hashes": ("제출 서류와 SHA-256", "Documents and their SHA-256"),
        "applicant.kind": ("종류", "Kind"),
        "applicant.file": ("파일", "File"),
        "applicant.size": ("크기", "Size"),
        "applicant.version": ("판", "Version"),
        "applicant.answers": ("질문 답변", "Answers"),
        "applicant.objection": ("이의신청", "Objection"),
        "applicant.objection.last_day": (
            "이의신청은 {until}까지 할 수 있습니다.",
            "You may object until {until}.",
        ),
        "applicant.objection.grounds": ("이의신청 사유", "Grounds of the objection"),
        "applicant.objection.file": ("이의신청 제출", "File the objection"),
        "applicant.objection.filed": (
            "이의신청이 접수되었습니다. 결정은 알림으로 보내 드립니다.",
            "Your objection was filed; the decision will be sent to you.",
        ),
        "applicant.objection.refused": ("이의신청을 접수하지 않았습니다: {message}", "Objection not filed: {message}"),
        "applicant.objection.closed": (
            "이의신청 기간이 끝났습니다 ({until}).",
            "The objection period has ended ({until}).",
        ),
        "applicant.result": ("선정 결과", "Result"),
        "applicant.result.line": (
            "종합 점수 {score}점, {ranked}개 기관 중 {rank}위 (최저 기준 {minimum}점, 마지막 선정 점수 {last})",
            "committee score {score}, rank {rank} of {ranked} (minimum {minimum}, last selected {last})",
        ),
        "applicant.result.waitlist": ("예비 순위 {n}", "Waitlist position {n}"),
        "applicant.kickoff": ("세부 실시계획", "Implementation plan"),
        "applicant.kickoff.due": ("제출 기한: {at}", "Due: {at}"),
        "applicant.kickoff.file": ("실시계획 파일", "Plan file"),
        "applicant.kickoff.send": ("실시계획 제출", "File the plan"),
        "applicant.kickoff.filed": (
            "실시계획({round}차)을 제출했습니다: {name}, SHA-256 {sha}",
            "Implementation plan round {round} filed: {name}, SHA-256 {sha}",
        ),
        "applicant.kickoff.refused": ("실시계획을 제출하지 않았습니다: {message}", "Plan not filed: {message}"),
        "applicant.kickoff.no_file": ("실시계획 파일을 선택하십시오", "Choose the plan's file"),
        "applicant.kickoff.round": ("차수", "Round"),
        "applicant.kickoff.plan_file": ("제출 파일", "File"),
        "applicant.kickoff.rounds": ("실시계획 제출 차수", "Plan rounds"),
        "applicant.kickoff.on_paper": ("서면 접수 (파일 없음)", "on paper (no file)"),
        "applicant.kickoff.status": ("처리 상태", "Status"),
        "applicant.kickoff.comments": ("검토 의견", "The office's comments"),
        "applicant.kickoff.status.received": ("검토 중", "being reviewed"),
        "applicant.kickoff.status.returned": ("보완 요청", "returned"),
        "applicant.kickoff.status.approved": ("승인", "approved"),
        "applicant.funding": ("연차별 사업비 (승인)", "Approved funding by year"),
        "applicant.year": ("연도", "Year"),
        "applicant.national": ("국비 (원)", "National (KRW)"),
        "applicant.local": ("지방비 (원)", "Local (KRW)"),
        "applicant.notices_of": ("이 신청의 알림", "Notices about this application"),
        "applicant.withdraw": ("신청 철회", "Withdraw the application"),
        "applicant.withdraw.title": ("신청 철회: {receipt}", "Withdraw: {receipt}"),
        "applicant.withdraw.what": ("철회하면 다음과 같이 처리됩니다", "What withdrawing does"),
        "applicant.withdraw.final": (
            "신청이 '철회' 상태가 되고 이 공모에서 빠집니다. 되돌릴 수 없습니다.",
            "The application becomes 'withdrawn' and leaves this call; it cannot be undone.",
        ),
        "applicant.withdraw.selected": (
            "선정 또는 예비 선정 상태라면 그 자리는 다음 예비 선정 기관에 돌아갑니다.",
            "If it is selected or waitlisted, its place goes to the next on the waitlist.",
        ),
        "applicant.withdraw.notice": (
            "철회 확인 알림이 신청기관 담당자에게 발송되고, 감사 기록에 남습니다.",
            "A confirmation notice is sent to your contacts, and the withdrawal is kept in the audit log.",
        ),
        "applicant.withdraw.reason": ("철회 사유 (선택)", "Reason (optional)"),
        "applicant.withdraw.confirm": ("신청을 철회합니다", "Withdraw the application"),
        "applicant.withdraw.cancel": ("취소하고 돌아가기", "Cancel, back to the application"),
        "applicant.withdraw.refused": ("철회하지 않았습니다: {message}", "Nothing was withdrawn: {message}"),
        "applicant.withdraw.done": ("신청을 철회했습니다.", "The application was withdrawn."),
        # notices
        "applicant.notices": ("받은 알림", "Notices sent to you"),
        "applicant.notices_none": ("받은 알림이 없습니다.", "No notice was sent to you yet."),
        "applicant.notice.subject": ("제목", "Subject"),
        "applicant.notice.sent": ("발송 일시", "Sent"),
        "applicant.notice.application": ("신청", "Application"),
        "applicant.notice.calendar": ("일정 파일", "Calendar"),
        "applicant.notice.ics": ("일정 파일(.ics) 받기", "Download the calendar file (.ics)"),
        "applicant.notice.title": ("알림: {subject}", "Notice: {subject}"),
        "applicant.notice.text": ("본문", "Text"),
        "applicant.notice.html": ("HTML 본문", "HTML"),
        "applicant.notice.frame": ("알림 {id}의 HTML 본문", "HTML body of notice {id}"),
        "applicant.notice.back": ("받은 알림 목록으로", "Back to the notices"),
        "applicant.type.climate_crisis": ("기후위기 대응형", "Climate-crisis response"),
        "applicant.type.local_extinction": ("지역소멸 대응형", "Local-extinction response"),
    }
)


def applicant(request: Request, found: Annotated[sessions.Session, Depends(session)]) -> Principal:
    """The signed-in applicant (403 for any other session); its own language as the pages' default."""
    if found.role != Role.APPLICANT:
        raise Forbidden(f"this page is for applicants (signed in as {found.role.value}): {request.url.path}")
    if request.query_params.get("lang") is None and request.cookies.get(pages.LANG_COOKIE) is None:
        a = pages.gongmo(request)
        with read(a.db) as conn:
            own = portal.applicant_language(conn, found.principal.applicant_id)
        if own:
            request.state.default_language = own
    return found.principal


Applicant = Annotated[Principal, Depends(applicant)]


# -- the list -----------------------------------------------------------------------------------------


@router.get("/applicant", response_class=HTMLResponse)
def home(request: Request, who: Applicant) -> HTMLResponse:
    a = pages.gongmo(request)
    now = a.clock.now()
    with read(a.db) as conn:
        mine = portal.my_applications(a, conn, who)
        had = {m["track"] for m in mine}
        calls = []
        for contest, track in _tracks(a):
            if track.key in had:
                continue
            row = _track_row(a, conn, track.key)
            window = portal.receipt_window(conn, row, None, now)
            if window.phase == "open" and row["announce_at"] <= now:
                calls.append({"track": track, "window": window, "zone": contest.timezone})
    names = {t.key: t for _, t in _tracks(a)}
    by_track: dict[str, list[dict[str, Any]]] = {}
    for m in mine:
        by_track.setdefault(m["track"], []).append(m)
    groups = [(names[k], by_track[k]) for k in names if k in by_track]
    return pages.render(request, "applicant/home.html", groups=groups, calls=calls, **_helpers(request))


# -- the plan ----------------------------------------------------------------------------------------


@router.get("/applicant/tracks/{key}/apply", response_class=HTMLResponse)
def apply_page(request: Request, who: Applicant, key: TrackKey) -> HTMLResponse:
    return _apply_page(request, who, key)


@router.post("/applicant/tracks/{key}/apply", dependencies=[Csrf], response_model=None)
async def apply(request: Request, who: Applicant, key: TrackKey) -> HTMLResponse | RedirectResponse:
    form = await request.form(max_files=40, max_fields=200)
    try:
        return await run_in_threadpool(_apply, request, who, key, form)
    finally:
        await form.close()


def _apply(request: Request, who: Principal, key: str, form: FormData) -> HTMLResponse | RedirectResponse:
    """Check every field, then the services: start the application if it has none, store each file
    (Uploads.add), submit (moves.submit)."""
    a = pages.gongmo(request)
    _, track = _known_track(a, key)
    given = {name: _text(form.get(name)) for name in PLAN_FIELDS}
    files = {d.kind: f for d in track.documents if isinstance(f := form.get(DOC + d.kind), UploadFile) and f.filename}
    state = _apply_state(request, who, key)
    if state["window"].phase != "open" or state["received"]:
        return _apply_page(request, who, key, given=given, status=409, refusal=_closed_line(request, state))
    lang = pages.language(request)
    plan, answers, problems = _check_plan(track, given, form, lang)
    on_file = {d["kind"] for d in state["documents"]}
    for d in track.documents:
        if d.required and d.kind not in files and d.kind not in on_file:
            problems[DOC + d.kind] = words.translator(lang)("applicant.missing_document")
    keep: dict[str, Any] = {"given": given, "answers": _answer_texts(form, track)}
    if problems:
        return _apply_page(request, who, key, status=422, problems=problems, **keep)
    try:
        application_id = state["application_id"]
        if application_id is None:
            application_id = a.moves.start(key, who.subject, who.actor)
        for kind, upload in files.items():
            try:
                a.moves.uploads.add(application_id, kind, upload.filename or kind, upload.file, who.actor)
            except InvalidInput as exc:
                return _apply_page(request, who, key, status=422, problems={DOC + kind: pages.say(exc)}, **keep)
        a.moves.submit(
            key, who.subject, plan["national_krw"], plan["local_krw"], who.actor, **_rest(plan), answers=answers
        )
    except InvalidInput as exc:
        field = exc.field if exc.field in (*PLAN_FIELDS, *(ANSWER + q.key for q in track.questions)) else None
        if field is None and exc.field == "documents" and isinstance(exc.value, list):
            return _apply_page(
                request, who, key, status=422, problems={DOC + k: pages.say(exc) for k in exc.value}, **keep
            )
        if field is not None:
            return _apply_page(request, who, key, status=422, problems={field: pages.say(exc)}, **keep)
        return _apply_page(request, who, key, status=422, refusal=pages.say(exc), **keep)
    except GongmoError as exc:
        return _apply_page(request, who, key, status=errors.status_of(exc), refusal=pages.say(exc), **keep)
    return RedirectResponse(f"/applicant/applications/{application_id}?received=1", status_code=303)


def _rest(plan: Mapping[str, Any]) -> dict[str, Any]:
    return {"title": plan["title"], "project_type": plan["project_type"], "years": plan["years"]}


def _check_plan(
    track: Track, given: Mapping[str, str], form: FormData, lang: str
) -> tuple[dict[str, Any], dict[str, object], dict[str, str]]:
    """The plan's values as the services take them, its answers, and field -> what is wrong (the
    services' own rules, checked field by field so each error stands beside its field)."""
    t = words.translator(lang)
    problems: dict[str, str] = {}
    plan: dict[str, Any] = {"title": given["title"].strip() or None}
    if plan["title"] and len(plan["title"]) > TITLE_MAX:
        problems["title"] = t("applicant.title_long", max=TITLE_MAX)
    for name in ("national_krw", "local_krw"):
        text = given[name].replace(",", "").replace(" ", "")
        if not text:
            problems[name] = t("applicant.missing_field")
        elif not (text.isascii() and text.isdigit()) or len(text) > 18:
            problems[name] = t("applicant.bad_amount", value=given[name][:30])
        else:
            plan[name] = int(text)
    years = given["years"].strip()
    plan["years"] = None
    if years:
        if years.isascii() and years.isdigit() and 1 <= int(years) <= MAX_YEARS:
            plan["years"] = int(years)
        else:
            problems["years"] = t("applicant.bad_years", value=years[:12], max=MAX_YEARS)
    kind = given["project_type"].strip() or None
    if track.eligibility.types and kind is None:
        problems["project_type"] = t("applicant.missing_field")
    elif kind is not None and kind not in track.eligibility.types:
        problems["project_type"] = f"{kind[:40]!r}: " + ", ".join(track.eligibility.types)
    plan["project_type"] = kind
    answers: dict[str, object] = {}
    for q in track.questions:
        value = _answer_value(q, form)
        if value is None:
            if q.required:
                problems[ANSWER + q.key] = t("applicant.missing_field")
            continue
        try:
            answers[q.key] = questions_mod.validate(q, value)
        except InvalidInput as exc:
            problems[ANSWER + q.key] = pages.say(exc)
    return plan, answers, problems


def _answer_value(q: Any, form: FormData) -> object:
    """A question's answer as the form gives it, in the shape questions.validate takes (None: none)."""
    name = ANSWER + q.key
    if q.type == "choices":
        chosen = [v for v in form.getlist(name) if isinstance(v, str) and v]
        return chosen or None
    text = _text(form.get(name)).strip()
    if not text:
        return None
    if q.type == "members":
        members = []
        for line in text.splitlines():
            if line.strip():
                parts = [p.strip() for p in line.split(",")]
                members.append(dict(zip(("name", "kind", "brn"), parts + [""] * (3 - len(parts)), strict=False)))
        return members
    return text


def _answer_texts(form: FormData, track: Track) -> dict[str, Any]:
    """The answers as typed, to fill the form again after a refusal."""
    out: dict[str, Any] = {}
    for q in track.questions:
        name = ANSWER + q.key
        out[q.key] = (
            [v for v in form.getlist(name) if isinstance(v, str)] if q.type == "choices" else _text(form.get(name))
        )
    return out


def _text(value: Any) -> str:
    return value[:100_000] if isinstance(value, str) else ""


def _apply_state(request: Request, who: Principal, key: str) -> dict[str, Any]:
    """The window as this applicant has it, its application in the track (if any) and its documents."""
    a = pages.gongmo(request)
    now = a.clock.now()
    with read(a.db) as conn:
        row = _track_row(a, conn, key)
        mine = portal.own_application(conn, who, int(row["id"]))
        application_id = int(mine["id"]) if mine else None
        window = portal.receipt_window(conn, row, application_id, now)
        documents = []
        if application_id is not None:
            documents = [d for d in visibility.documents(conn, who, application_id) if d["current"]]
    received = mine is not None and mine["state"] not in ("announcement",)
    return {
        "window": window,
        "application_id": application_id,
        "received": received,
        "receipt_no": mine["receipt_no"] if mine else None,
        "state": mine["state"] if mine else None,
        "documents": documents,
        "announced": row["announce_at"] <= now,
    }


def _closed_line(request: Request, state: Mapping[str, Any]) -> str:
    t = words.translator(pages.language(request))
    when = _when(ZoneInfo(pages.gongmo(request).loaded.config.contests[0].timezone))
    window = state["window"]
    if state["received"]:
        return str(t("applicant.window.received", receipt=state["receipt_no"] or state["state"]))
    return str(t("applicant.window." + window.phase, opens=when(window.opens), closes=when(window.closes)))


def _apply_page(
    request: Request,
    who: Principal,
    key: str,
    *,
    status: int = 200,
    given: Mapping[str, str] | None = None,
    answers: Mapping[str, Any] | None = None,
    problems: Mapping[str, str] | None = None,
    refusal: str | None = None,
) -> HTMLResponse:
    a = pages.gongmo(request)
    contest, track = _known_track(a, key)
    state = _apply_state(request, who, key)
    offered = state["window"].phase == "open" and not state["received"]
    return pages.render(
        request,
        "applicant/apply.html",
        status=status,
        track=track,
        contest=contest,
        state=state,
        offered=offered,
        closed=None if offered else _closed_line(request, state),
        given=given or {},
        answers=answers or {},
        problems=problems or {},
        refusal=refusal,
        on_file={d["kind"]: d for d in state["documents"]},
        max_years=MAX_YEARS,
        **_helpers(request),
    )


# -- one application ---------------------------------------------------------------------------------


@router.get("/applicant/applications/{application_id}", response_class=HTMLResponse)
def application(
    request: Request,
    who: Applicant,
    application_id: AppId,
    received: Annotated[int | None, Query(ge=1, le=1)] = None,
    objected: Annotated[int | None, Query(ge=1, le=1)] = None,
) -> HTMLResponse:
    flash = {"received": bool(received), "objected": bool(objected)}
    return _page(request, who, application_id, flash=flash)


@router.get("/applicant/applications/{application_id}/documents/{kind}")
def download(
    request: Request,
    who: Applicant,
    application_id: AppId,
    kind: Annotated[str, Path(pattern=api_documents.KIND_PATTERN)],
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> StreamingResponse:
    """A document's bytes as the API serves them (the same route function: its access check, the
    download recorded)."""
    return api_documents.download(pages.gongmo(request), who, application_id, kind, version)


@router.post("/applicant/applications/{application_id}/objection", dependencies=[Csrf], response_model=None)
def object_to(
    request: Request, who: Applicant, application_id: AppId, grounds: Annotated[str, Form()] = ""
) -> HTMLResponse | RedirectResponse:
    """The same service as POST /applications/{id}/objections (review.file_objection)."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        visibility.check_access(a, conn, who, application_id)
    try:
        pages.at_most(grounds, "grounds", TEXT_MAX)
        review.file_objection(a, application_id, grounds, who.actor)
    except GongmoError as exc:
        form = {"objection": pages.say(exc), "grounds": grounds}
        return _page(request, who, application_id, form=form, status=errors.status_of(exc))
    return RedirectResponse(f"/applicant/applications/{application_id}?objected=1#objection", status_code=303)


@router.post("/applicant/applications/{application_id}/kickoff", dependencies=[Csrf], response_model=None)
async def file_plan(request: Request, who: Applicant, application_id: AppId) -> HTMLResponse | RedirectResponse:
    form = await request.form(max_files=1, max_fields=5)
    try:
        upload = form.get("plan")
        return await run_in_threadpool(
            _file_plan, request, who, application_id, upload if isinstance(upload, UploadFile) else None
        )
    finally:
        await form.close()


def _file_plan(
    request: Request, who: Principal, application_id: int, upload: UploadFile | None
) -> HTMLResponse | RedirectResponse:
    """A selected applicant files its implementation plan: the file is kept with its round by the
    same service as `gongmo kickoff receive --file` (kickoff.receive: checked, stored by its SHA-256)."""
    a = pages.gongmo(request)
    t = words.translator(pages.language(request))
    with read(a.db) as conn:
        visibility.check_access(a, conn, who, application_id)
    if upload is None or not upload.filename:
        return _page(request, who, application_id, form={"kickoff": t("applicant.kickoff.no_file")}, status=422)
    try:
        round_ = kickoff.receive(a, application_id, who.actor, upload.file, upload.filename)
    except GongmoError as exc:
        return _page(request, who, application_id, form={"kickoff": pages.say(exc)}, status=errors.status_of(exc))
    kept = kickoff.plans(a, application_id)[round_ - 1]
    return _page(request, who, application_id, flash={"filed": round_, "file": (kept["file_name"], kept["sha256"])})


@router.get("/applicant/applications/{application_id}/kickoff/{round_}/file")
def plan_file(
    request: Request, who: Applicant, application_id: AppId, round_: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> StreamingResponse:
    """Its implementation plan round's file (read/documents.open_plan_file: its own only, the download recorded)."""
    return serve(documents_read.open_plan_file(pages.gongmo(request), who, application_id, round_))


# -- withdrawing -----------------------------------------------------------------------------------------


@router.get("/applicant/applications/{application_id}/withdraw", response_class=HTMLResponse)
def withdraw_page(request: Request, who: Applicant, application_id: AppId) -> HTMLResponse:
    return _withdraw_page(request, who, application_id)


@router.post("/applicant/applications/{application_id}/withdraw", dependencies=[Csrf], response_model=None)
def withdraw(
    request: Request,
    who: Applicant,
    application_id: AppId,
    version: Annotated[int, Form(ge=1, le=MAX_ID)],
    reason: Annotated[str, Form()] = "",
) -> HTMLResponse | RedirectResponse:
    """The withdraw trigger through app.moves with the version the page showed (as the office's page)."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        visibility.check_access(a, conn, who, application_id)
    try:
        pages.at_most(reason, "reason", TEXT_MAX)
        a.moves.apply(application_id, "withdraw", who.actor, reason.strip() or None, version)
    except GongmoError as exc:
        return _withdraw_page(
            request, who, application_id, refusal=pages.say(exc), reason=reason, status=errors.status_of(exc)
        )
    return RedirectResponse(f"/applicant/applications/{application_id}", status_code=303)


def _withdraw_page(
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
    return pages.render(
        request,
        "applicant/withdraw.html",
        status=status,
        app=shown,
        allowed="withdraw" in shown["actions"],
        refusal=refusal,
        reason=reason,
        **_helpers(request),
    )


# -- notices ------------------------------------------------------------------------------------------------


@router.get("/applicant/notices", response_class=HTMLResponse)
def notices(request: Request, who: Applicant) -> HTMLResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        rows = portal.notices(conn, who)
    return pages.render(request, "applicant/notices.html", rows=rows, **_helpers(request))


@router.get("/applicant/notices/{outbox_id}", response_class=HTMLResponse)
def notice(request: Request, who: Applicant, outbox_id: NoticeId) -> HTMLResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        row = portal.notice(conn, who, outbox_id)
    return pages.render(request, "applicant/notice.html", row=row, **_helpers(request))


@router.get("/applicant/notices/{outbox_id}/body.html", response_class=HTMLResponse)
def notice_body(request: Request, who: Applicant, outbox_id: NoticeId) -> HTMLResponse:
    """The notice's HTML alone, for the page's sandboxed frame: nothing in it may run or load."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        row = portal.notice(conn, who, outbox_id)
    headers = {"Content-Security-Policy": BODY_CSP, "X-Frame-Options": "SAMEORIGIN", "Referrer-Policy": "no-referrer"}
    return HTMLResponse(str(row["body_html"]), headers=headers)


@router.get("/applicant/notices/{outbox_id}/invite.ics")
def notice_ics(request: Request, who: Applicant, outbox_id: NoticeId) -> Response:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        row = portal.notice(conn, who, outbox_id)
    if not row["ics"]:
        raise NotFound(f"notice {outbox_id} has no calendar file")
    headers = {
        "Content-Disposition": f'attachment; filename="gongmo-{outbox_id}.ics"',
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(str(row["ics"]), media_type="text/calendar; charset=utf-8", headers=headers)


# -- the application page ---------------------------------------------------------------------------------


def _page(
    request: Request,
    who: Principal,
    application_id: int,
    *,
    flash: Mapping[str, Any] | None = None,
    form: Mapping[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    a = pages.gongmo(request)
    now = a.clock.now()
    with read(a.db) as conn:
        shown = visibility.detail(a, conn, who, application_id)
        track_row = _track_row(a, conn, shown["track"])
        following = portal.next_date(a, conn, shown, track_row, now)
        explained = portal.explained_result(a, conn, who, application_id)
        mail = portal.notices(conn, who, application_id)
        until = (
            portal.objection_deadline(a, conn, application_id, shown["track"])
            if shown["state"] == "disqualified"
            else None
        )
    contest, track = a.loaded.config.track(shown["track"])
    lang = pages.language(request)
    objections = [e for e in shown["events"] if str(e.get("kind", "")).startswith("objection_")]
    selected = shown["state"] in ("selected", "kickoff") and not shown["result_pending"]
    plans = kickoff.plans(a, application_id) if selected else []
    funding = kickoff.funding(a, application_id) if selected else []
    return pages.render(
        request,
        "applicant/application.html",
        status=status,
        app=shown,
        track=track,
        contest=contest,
        following=following,
        explained=reasons.lines(explained, lang),
        mail=mail,
        objection_until=until,
        objection_open=until is not None
        and now < until
        and not any(e.get("kind") == "objection_filed" for e in objections),
        objections=objections,
        plans=plans,
        funding=funding,
        kickoff_due=track_row["kickoff_due"],
        flash=flash or {},
        form=form or {},
        current=[d for d in shown["documents"] if d["current"]],
        answers=_answers(track, shown["answers"], lang),
        **_helpers(request),
    )


def _answers(track: Track, given: Mapping[str, Any], lang: str) -> list[dict[str, Any]]:
    return [
        {"text": q.text_ko if lang == "ko" else q.text_en, "answer": questions_mod.describe(q, given.get(q.key))}
        for q in track.questions
    ]


# -- helpers ------------------------------------------------------------------------------------------------


def _tracks(a: Any) -> list[tuple[Any, Track]]:
    return [(c, t) for c in a.loaded.config.contests for t in c.tracks]


def _known_track(a: Any, key: str) -> tuple[Any, Track]:
    for contest, track in _tracks(a):
        if track.key == key:
            return contest, track
    raise NotFound(f"no track {key!r}: see /applicant")


def _track_row(a: Any, conn: Connection, key: str) -> RowMapping:
    return lookups.track_by_key(conn, a.loaded.config, key)


def _when(zone: ZoneInfo) -> Callable[[datetime | None], str]:
    """An instant as the contest's zone reads it, with the zone (2024-05-29 18:00 KST)."""

    def when(at: datetime | None) -> str:
        if at is None:
            return ""
        local = at.astimezone(zone)
        return f"{local:%Y-%m-%d %H:%M:%S %Z}" if local.second else f"{local:%Y-%m-%d %H:%M %Z}"

    return when


def _helpers(request: Request) -> dict[str, Any]:
    lang = pages.language(request)
    zone = ZoneInfo(pages.gongmo(request).loaded.config.contests[0].timezone)
    t = words.translator(lang)

    label = words.state_label(lang)

    def milestone(name: str) -> str:
        if name == "objection_until":
            return str(t("applicant.objection_until"))
        return MILESTONES.get(lang, MILESTONES["ko"]).get(name, name)

    def type_name(kind: str | None) -> str:
        key = f"applicant.type.{kind}"
        return str(t(key)) if kind and key in words.WORDS else (kind or "")

    return {
        "when": _when(zone),
        "label": label,
        "milestone": milestone,
        "type_name": type_name,
        "krw": krw,
        "size": human_size,
    }
