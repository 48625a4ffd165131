"""The office console's track page (/office/tracks/{key}): the track's header (slots, budget and
what is used, links to its committee, ranking and release pages), its applications a page at a
time (filtered by state, searched by name or receipt number, keyset pages: the API's list), the
bulk actions with their dry run, and the calendar with the reschedule and extend forms.

A bulk action is previewed first (GET .../actions/{name}: how many rows, the first 50, by the
rule the action itself uses); the confirm POST carries the count the preview showed and is
refused if the count changed since. Reschedule and extend call the CLI's services
(deadlines/changes.py) and require a reason. No SQL here: read/tracks.py reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection

from gongmo.notifications.render import MILESTONES
from gongmo.states.errors import GongmoError, InvalidInput, NotFound
from gongmo.states.lifecycle import APPLICATION as LIFECYCLE
from gongmo.workflow.api import errors
from gongmo.workflow.core import lookups
from gongmo.workflow.core.config import KEY_PATTERN
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.read import applications as application_rows
from gongmo.workflow.read import tracks
from gongmo.workflow.stages import committee, review
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Csrf, Office

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
MAX_SEARCH = 100
STATES = {s.name: s for s in LIFECYCLE.states}
TrackKey = Annotated[str, Path(pattern=KEY_PATTERN)]
Text = Annotated[str, Form()]

words.register(
    {
        "track.contest": ("공모", "Contest"),
        "track.slots": ("선정 규모", "Slots"),
        "track.slots_used": ("{used} / {slots}곳 선정", "{used} of {slots} selected"),
        "track.budget": ("국비 예산", "National budget"),
        "track.used": ("사용 (선정·착수)", "Used (selected, kickoff)"),
        "track.cap": ("곳당 국비 상한", "National cap per site"),
        "track.cap_years": ("{won}원 ({years}년간)", "KRW {won} (over {years} years)"),
        "track.won": ("{won}원", "KRW {won}"),
        "track.pages": ("관련 화면", "Related pages"),
        "track.committee": ("평가위원회", "Committee"),
        "track.ranking": ("순위·선정", "Ranking and selection"),
        "track.release": ("결과 공개", "Release"),
        "track.actions": ("일괄 처리", "Bulk actions"),
        "track.action.review-pass": ("예비검토 통과 (모든 항목 적격)", "Pass the review (every check passed)"),
        "track.action.disqualify-failed": ("부적격 처리 (검토 항목 미충족)", "Disqualify the failed"),
        "track.action.assign": ("평가위원 배정", "Assign the committee"),
        "track.preview": ("미리보기", "Preview"),
        "track.not_now": ("지금은 할 수 없음", "Not now"),
        "track.preview.title": ("{action}: 미리보기", "{action}: preview"),
        "track.preview.count": ("이 작업은 신청 {count}건을 변경합니다.", "This action changes {count} applications."),
        "track.preview.none": ("지금 변경될 신청이 없습니다.", "Nothing would change now."),
        "track.preview.first": ("변경될 신청 (처음 {n}건)", "The applications it changes (the first {n})"),
        "track.preview.confirm": ("{count}건 실행", "Run it on {count}"),
        "track.preview.back": ("유형 화면으로", "Back to the track"),
        "track.changed": (
            "지금은 {now}건이 변경됩니다. 화면에 표시된 수는 {shown}건이었습니다: 새 미리보기를 확인하세요.",
            "{now} rows would change now, the page showed {shown}: review the new preview.",
        ),
        "track.applications": ("신청 목록", "Applications"),
        "track.filter.state": ("상태", "State"),
        "track.filter.all": ("전체", "All"),
        "track.filter.q": ("신청기관명 또는 접수번호", "Applicant name or receipt number"),
        "track.filter.submit": ("조회", "Show"),
        "track.total": ("조건에 맞는 신청 {total}건", "{total} applications match"),
        "track.col.receipt": ("접수번호", "Receipt no."),
        "track.col.applicant": ("신청기관", "Applicant"),
        "track.col.state": ("상태", "State"),
        "track.col.submitted": ("제출 일시 (KST)", "Submitted (KST)"),
        "track.col.national": ("국비 요청", "National requested"),
        "track.col.local": ("지방비", "Local"),
        "track.col.detail": ("내용", "Detail"),
        "track.col.page": ("상세", "Page"),
        "track.open": ("보기", "Open"),
        "track.next": ("다음 페이지", "Next page"),
        "track.first": ("첫 페이지", "First page"),
        "track.empty": ("조건에 맞는 신청이 없습니다", "No application matches"),
        "track.calendar": ("일정", "Calendar"),
        "track.col.milestone": ("일정", "Milestone"),
        "track.col.at": ("일시 (KST)", "Date and time (KST)"),
        "track.col.status": ("실행", "Fired"),
        "track.col.changes": ("변경 이력", "Changes"),
        "track.status.fired": ("실행됨 {at}", "fired {at}"),
        "track.status.due": ("기한 지남, 아직 실행 안 됨", "due, not fired yet"),
        "track.status.upcoming": ("예정", "upcoming"),
        "track.status.passed": ("지남", "passed"),
        "track.moved": ("{old} → {new}: {why} ({by})", "{old} -> {new}: {why} ({by})"),
        "track.reschedule": ("일정 변경", "Reschedule a milestone"),
        "track.reschedule.none": ("변경할 수 있는 남은 일정이 없습니다.", "No milestone is left to move."),
        "track.field.milestone": ("일정 항목", "Milestone"),
        "track.field.new_at": ("새 일시 (KST)", "New date and time (KST)"),
        "track.field.reason": ("사유 (필수: 신청기관 안내문에 실립니다)", "Reason (required: the notice carries it)"),
        "track.reschedule.submit": ("일정 변경", "Reschedule"),
        "track.extend": ("접수 마감 연장 (신청기관 한 곳)", "Extend the receipt close for one applicant"),
        "track.extend.none": (
            "접수 중인 신청이 없어 연장할 수 없습니다.",
            "No application is still open: there is nothing to extend.",
        ),
        "track.field.application": ("접수번호 또는 신청 번호", "Receipt number or application number"),
        "track.extend.submit": ("연장", "Extend"),
        "track.done.review-pass": ("{count}건이 예비검토를 통과했습니다.", "{count} applications passed the review."),
        "track.done.disqualify-failed": ("{count}건을 부적격 처리했습니다.", "{count} applications were disqualified."),
        "track.done.assign": ("{count}건에 평가위원을 배정했습니다.", "Evaluators assigned to {count} applications."),
        "track.done.reschedule": ("일정을 변경했습니다.", "The milestone was moved."),
        "track.done.extend": ("기한을 연장했습니다.", "The deadline was extended."),
    }
)


# -- the page -------------------------------------------------------------------------


@router.get("/office/tracks/{key}", response_class=HTMLResponse)
def track_page(request: Request, who: Office, key: TrackKey) -> HTMLResponse:
    """The whole page; only the applications table when htmx asks for it (HX-Target: applications)."""
    if request.headers.get("hx-request") and request.headers.get("hx-target") == "applications":
        a = pages.gongmo(request)
        with read(a.db) as conn:
            track_id = int(lookups.track_by_key(conn, a.loaded.config, key)["id"])
            table = _table(request, conn, who, key, track_id)
        return pages.render(request, "office/track_table.html", **table)
    return _page(request, who, key)


def _page(request: Request, who: Principal, key: str, status: int = 200, **extra: Any) -> HTMLResponse:
    """The page, read in one transaction (`extra`: a form's refusal and what was typed)."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        head = tracks.header(a, conn, key)
        table = _table(request, conn, who, key, head["track_id"])
        by_state = tracks.present(conn, head["track_id"])
        actions = [(name, tracks.refusal(a, conn, key, name, by_state)) for name in tracks.ACTIONS]
        milestones = tracks.calendar(a, conn, key)
    done = request.query_params.get("done", "")
    notice = None
    if f"track.done.{done}" in words.WORDS:
        count = request.query_params.get("count", "")
        notice = ("track.done." + done, {"count": count} if count.isdigit() else {"count": "?"})
    values = {
        "head": head,
        "actions": actions,
        "milestones": milestones,
        "movable": [m for m in milestones if not m.past],
        "extendable": any(s in by_state for s in tracks.EXTENDABLE_STATES),
        "notice": notice,
        "form": {},
        "calendar_error": None,
    }
    return pages.render(request, "office/track.html", status=status, **(table | values | extra))


def _table(request: Request, conn: Connection, who: Principal, key: str, track_id: int) -> dict[str, Any]:
    """The applications table: its filters (from the query), its page and the links that keep them."""
    a = pages.gongmo(request)
    state, search, after = _filters(request)
    contest, _ = tracks.track_of(a, key)
    total, items, following = tracks.applications(a, conn, who, track_id, after, PAGE_SIZE, state, search)
    base = f"/office/tracks/{key}"
    keep = {"state": state or "", "q": search or ""}
    return {
        "key": key,
        "items": items,
        "total": total,
        "state": state or "",
        "q": search or "",
        "after": after,
        "states": LIFECYCLE.states,
        "next_url": _url(base, keep | {"after": str(following)}) if following is not None else None,
        "first_url": _url(base, keep) if after else None,
        **_shared(request, contest.timezone),
    }


def _shared(request: Request, zone: str) -> dict[str, Any]:
    lang = pages.language(request)
    tz = ZoneInfo(zone)

    def local(at: datetime | None) -> str:
        return "-" if at is None else f"{at.astimezone(tz):%Y-%m-%d %H:%M}"

    def won(amount: int | None) -> str:
        return "-" if amount is None else f"{amount:,}"

    labels = {name: (s.label_ko if lang == "ko" else s.label_en) for name, s in STATES.items()}
    names = MILESTONES["ko" if lang == "ko" else "en"]
    return {"local": local, "won": won, "labels": labels, "milestone_names": names}


def _filters(request: Request) -> tuple[str | None, str | None, int]:
    """(state, search, after) from the query, each checked: a refusal names the field."""
    params = request.query_params
    state = params.get("state") or None
    if state is not None and state not in STATES:
        raise InvalidInput(
            f"{{given}}: not a state; choose one of {', '.join(STATES)}", field="state", value=state[:40]
        )
    search = (params.get("q") or "").strip() or None
    if search is not None and len(search) > MAX_SEARCH:
        raise InvalidInput(f"{{field}} is {len(search)} characters long: search with at most {MAX_SEARCH}", field="q")
    raw = params.get("after") or "0"
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) <= MAX_ID):
        raise InvalidInput(
            f"{{given}}: a page starts after an application number, 0 to {MAX_ID}", field="after", value=raw[:20]
        )
    return state, search, int(raw)


def _url(base: str, params: dict[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v}
    return base + ("?" + urlencode(kept) if kept else "")


# -- bulk actions ---------------------------------------------------------------------


@router.get("/office/tracks/{key}/actions/{name}", response_class=HTMLResponse)
def action_preview(request: Request, who: Office, key: TrackKey, name: str) -> HTMLResponse:
    """The dry run: how many applications the action would change now, and the first 50."""
    a = pages.gongmo(request)
    _allowed(request, who, key, name)
    return _preview(request, key, tracks.preview(a, key, name))


@router.post("/office/tracks/{key}/actions/{name}", dependencies=[Csrf])
def action_run(request: Request, who: Office, key: TrackKey, name: str, count: Text = "") -> Response:
    """Run the action if it would change as many applications as the preview showed (`count`)."""
    a = pages.gongmo(request)
    _allowed(request, who, key, name)
    if not (count.isascii() and count.isdigit() and len(count) <= 10):
        raise InvalidInput("{given}: send the count the preview showed", field="count", value=count[:20])
    now = tracks.preview(a, key, name)
    if now.count != int(count):
        message = pages.context(request)["t"]("track.changed", now=now.count, shown=int(count))
        return _preview(request, key, now, status=409, message=message)
    actor = who.actor
    if name == "review-pass":
        done = review.pass_eligible(a, key, actor)
    elif name == "disqualify-failed":
        done = len(review.disqualify_failed(a, key, actor))
    else:
        committee.assign_track(a, key, actor)
        done = now.count
    target = _url(f"/office/tracks/{key}", {"done": name, "count": str(done)})
    return RedirectResponse(target, status_code=303)


def _allowed(request: Request, who: Principal, key: str, name: str) -> None:
    a = pages.gongmo(request)
    if name not in tracks.ACTIONS:
        raise NotFound(f"no bulk action {name!r} (there are: {', '.join(tracks.ACTIONS)})")
    tracks.track_of(a, key)
    with read(a.db) as conn:
        track_id = int(lookups.track_by_key(conn, a.loaded.config, key)["id"])
        tracks.allowed(a, conn, key, name, tracks.present(conn, track_id))


def _preview(
    request: Request, key: str, found: tracks.Preview, status: int = 200, message: str | None = None
) -> HTMLResponse:
    a = pages.gongmo(request)
    contest, track = tracks.track_of(a, key)
    return pages.render(
        request,
        "office/track_preview.html",
        status=status,
        key=key,
        track=track,
        contest=contest,
        preview=found,
        message=message,
        shown=tracks.PREVIEW_ROWS,
    )


# -- the calendar ----------------------------------------------------------------------


@router.post("/office/tracks/{key}/calendar/reschedule", dependencies=[Csrf])
def reschedule(
    request: Request, who: Office, key: TrackKey, milestone: Text = "", new_at: Text = "", reason: Text = ""
) -> Response:
    """Move a milestone (the CLI's `gongmo reschedule`): a new date-time and a required reason."""
    a = pages.gongmo(request)
    contest, _ = tracks.track_of(a, key)
    form = {"milestone": milestone, "new_at": new_at, "reason": reason}
    try:
        when = _when(new_at, contest.timezone)
        calendars.reschedule(a, key, milestone, when, reason.strip(), who.subject)
    except GongmoError as exc:
        return _page(request, who, key, errors.status_of(exc), form=form, calendar_error=pages.say(exc))
    return RedirectResponse(f"/office/tracks/{key}?done=reschedule#calendar", status_code=303)


@router.post("/office/tracks/{key}/calendar/extend", dependencies=[Csrf])
def extend(
    request: Request, who: Office, key: TrackKey, application: Text = "", new_at: Text = "", reason: Text = ""
) -> Response:
    """Extend one applicant's receipt close (the CLI's `gongmo extend`), with a required reason."""
    a = pages.gongmo(request)
    contest, _ = tracks.track_of(a, key)
    form = {"application": application, "ext_new_at": new_at, "ext_reason": reason}
    try:
        app_id = _application_of(request, key, application)
        when = _when(new_at, contest.timezone)
        calendars.extend(a, app_id, "receipt_closes", when, reason.strip(), who.subject)
    except GongmoError as exc:
        return _page(request, who, key, errors.status_of(exc), form=form, calendar_error=pages.say(exc))
    return RedirectResponse(f"/office/tracks/{key}?done=extend#calendar", status_code=303)


def _when(value: str, zone: str) -> datetime:
    """A datetime-local field (e.g. 2024-06-20T10:00), in the contest's zone."""
    text = value.strip()
    if not text:
        raise InvalidInput("{field} is empty: write a date and time, e.g. 2024-06-20T10:00 (KST)", field="new_at")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            "{given}: not a date and time; write e.g. 2024-06-20T10:00 (KST)", field="new_at", value=text[:40]
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed


def _application_of(request: Request, key: str, ref: str) -> int:
    """The application of this track named by its number or receipt number."""
    a = pages.gongmo(request)
    ref = ref.strip()
    if not ref:
        raise InvalidInput("{field} is empty: give the receipt number or the application number", field="application")
    with read(a.db) as conn:
        if ref.isascii() and ref.isdigit() and len(ref) <= 10 and int(ref) <= MAX_ID:
            found: int | None = int(ref)
        else:
            found = application_rows.by_receipt(conn, ref[:48])
        if found is None or _track_key(conn, found) != key:
            raise NotFound(f"no application {ref[:48]!r} in track {key}")
    return found


def _track_key(conn: Connection, application_id: int) -> str | None:
    try:
        return lookups.track_key_of(conn, application_id)
    except NotFound:
        return None
