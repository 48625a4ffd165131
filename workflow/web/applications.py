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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from gongmo.states import questions as questions_mod
from gongmo.states.errors import Conflict, GongmoError, InvalidInput
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.api import documents as api_documents
from gongmo.workflow.api import errors
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.read import timeline, visibility
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Csrf, Office

router = APIRouter(include_in_schema=False)

AppId = Annotated[int, Path(ge=1, le=MAX_ID)]
REASON_MAX = 2000  # characters: a reason is a sentence or a paragraph, kept in the audit row and the notice
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
) -> HTMLResponse:
    confirmation = {"trigger": done, "version": version} if done and TABLE.has_trigger(done) else None
    return _page(request, who, application_id, confirmation=confirmation)


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
        if len(reason) > REASON_MAX:
            raise InvalidInput(
                f"{{field}} is {len(reason)} characters long: write at most {REASON_MAX}", field="reason"
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
    label, t, named = _state_label(lang), words.translator(lang), _named(lang)
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
    )


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


def _state_label(lang: str) -> Callable[[str | None], str]:
    def label(state: str | None) -> str:
        if not state:
            return ""
        try:
            spec = TABLE.state(state)
        except KeyError:
            return state
        return spec.label_ko if lang == "ko" else spec.label_en

    return label


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
