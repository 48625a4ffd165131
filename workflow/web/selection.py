"""The office console's ranking, selection and release pages.

- /office/tracks/{key}/ranking: the ranking with every component (stages/selection.ranking_in, the
  rows `gongmo rank` prints), worded by the notices' catalogue (selection.figures); and the
  selection's dry run (selection.select without confirm: the same reads and rules, nothing written)
  with each decision's rule (selection.explain). Confirming takes the track's key typed and the
  number of decisions shown, and runs selection.select with confirm, as POST /tracks/{track}/selection
  does: the results go under embargo, their notices held.
- /office/tracks/{key}/release: the held result notices per language and subject with their count
  (outbox/office.held, as GET /tracks/{track}/outbox/held); a release sends the count it showed and
  goes ahead only if it is unchanged (outbox/office.release's guard, as the API's).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gongmo.notifications import reasons
from gongmo.notifications.render import format_krw
from gongmo.states.errors import GongmoError, InvalidInput
from gongmo.workflow.api import errors
from gongmo.workflow.core.db import read
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import selection
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Csrf, Office
from gongmo.workflow.web.committee import heading, state_labels, track_of

router = APIRouter(include_in_schema=False)

words.register(
    {
        "ranking.title": ("순위와 선정", "Ranking and selection"),
        "ranking.ranking": ("평가 순위", "Ranking"),
        "ranking.rank": ("순위", "Rank"),
        "ranking.receipt": ("접수번호", "Receipt no."),
        "ranking.applicant": ("신청기관", "Applicant"),
        "ranking.state": ("상태", "State"),
        "ranking.written": ("서면평가", "Written"),
        "ranking.presentation": ("발표평가", "Presentation"),
        "ranking.score": ("평가 점수", "Committee score"),
        "ranking.qualified": ("최저 점수", "Minimum"),
        "ranking.is_qualified": ("이상", "qualified"),
        "ranking.below": ("미달", "below the minimum"),
        "ranking.national": ("신청 국비", "National share"),
        "ranking.tie": ("동점 처리", "Tie-break"),
        "ranking.dropped": ("제외된 평가표 합계: {values}", "sheet totals dropped: {values}"),
        "ranking.empty": ("아직 순위를 매길 신청이 없습니다", "No application can be ranked yet"),
        "ranking.incomplete": ("순위에서 빠진 신청 (평가표 미입력)", "Not ranked (sheets missing)"),
        "ranking.rules": (
            "선정 규모 {slots}곳, 국비 예산 {budget}, 예비 선정 {waitlist}곳, 선정 최저 점수 {minimum}점",
            "{slots} slots, a national budget of {budget}, a waitlist of {waitlist}, a qualifying minimum of {minimum}",
        ),
        "dryrun.title": ("선정 모의 실행", "Selection dry run"),
        "dryrun.lead": (
            "아래는 선정을 실행하면 내려질 결정입니다. 아직 아무것도 바뀌지 않았습니다.",
            "What the selection would decide if confirmed now. Nothing has changed yet.",
        ),
        "dryrun.counts": (
            "신청 {total}건: 선정 {selected}, 예비 선정 {waitlisted}, 미선정 {not_selected}; 국비 {used} / {budget}",
            "{total} applications: {selected} selected, {waitlisted} waitlisted, {not_selected} not selected;"
            " national {used} of {budget}",
        ),
        "dryrun.unavailable": ("모의 실행을 할 수 없습니다", "No dry run now"),
        "dryrun.decision": ("결정", "Decision"),
        "dryrun.why": ("근거", "Why"),
        "dryrun.figures": ("점수 내역", "Figures"),
        "decision.select": ("선정", "selected"),
        "decision.waitlist": ("예비 선정", "waitlisted"),
        "decision.reject": ("미선정", "not selected"),
        "confirm.title": ("선정 확정", "Confirm the selection"),
        "confirm.lead": (
            "확정하면 {total}건의 결정이 한 번에 적용되고, 결과 통지는 공개할 때까지 보류(엠바고)됩니다."
            " 되돌릴 수 없습니다.",
            "Confirming applies the {total} decisions at once; the result notices are held under embargo until"
            " you release them. It cannot be undone.",
        ),
        "confirm.early": (
            "발표평가 기간이 {until}에 끝납니다. 그 전에는 확정할 수 없습니다.",
            "The presentation evaluation runs until {until}; the selection cannot be confirmed before then.",
        ),
        "confirm.typed": ("확인을 위해 유형 키 {track}를 입력하세요", "Type the track's key, {track}, to confirm"),
        "confirm.button": ("선정 확정", "Confirm the selection"),
        "release.title": ("결과 공개", "Release"),
        "release.lead": (
            "보류된 결과 통지입니다. 공개하면 바로 발송되고, 남은 결과가 없으면 결과의 엠바고가 풀립니다.",
            "The result notices held under embargo. Released notices go out at once; when none is left held,"
            " the track's results are released to every reader.",
        ),
        "release.selected": (
            "선정을 확정했습니다: 결과 통지 {count}건이 보류되었습니다",
            "The selection was confirmed: {count} result notices are held",
        ),
        "release.released": ("{count}건을 공개했습니다", "{count} notices were released"),
        "release.embargo": ("결과 엠바고: {since}부터", "Results under embargo since {since}"),
        "release.released_at": ("결과 공개: {at}", "Results released at {at}"),
        "release.no_embargo": ("결과가 아직 없습니다 (선정 전)", "No results yet (before the selection)"),
        "release.notice": ("통지", "Notice"),
        "release.language": ("언어", "Language"),
        "release.subject": ("제목", "Subject"),
        "release.count": ("건수", "Count"),
        "release.total": ("보류 {count}건", "{count} held"),
        "release.none": ("보류된 통지가 없습니다", "Nothing is held"),
        "release.one": ("이 통지 {count}건 공개", "Release these {count}"),
        "release.all": ("결과 통지 전체 {count}건 공개", "Release all {count} result notices"),
        "lang.ko": ("한국어", "Korean"),
        "lang.en": ("영어", "English"),
    }
)


def _krw(krw: int, lang: str) -> str:
    return format_krw(krw, lang)


def _shown(at: Any, zone: str) -> str:
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}" if at is not None else ""


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 8 else None


# -- ranking and selection ---------------------------------------------------------------------


def _ranking(request: Request, who: Principal, key: str) -> dict[str, Any]:
    """The ranking page's context: the ranking rows with their figures, and the dry run (or why
    there is none: before every sheet is in, after the selection, an objection open)."""
    a = pages.gongmo(request)
    lang = pages.language(request)
    with read(a.db) as conn:
        contest, track, row = track_of(a, conn, key)
    dry: selection.Selection | None = None
    unavailable = None
    try:
        dry = selection.select(a, key, who.actor, confirm=False)
        result = dry.ranking
    except GongmoError as exc:
        unavailable = pages.say(exc)
        result = selection.ranking(a, key)
    own = selection.figures(result)
    decided = {d.application_id: d for d in dry.decisions} if dry else {}
    until = row[track.promotion_until]
    explained = selection.explain(result, dry.decisions, until, contest.timezone) if dry else {}
    labels = state_labels(lang)
    rows = []
    for r in result.rows:
        app_id = r.entry.application_id
        f = own[app_id]
        d = decided.get(app_id)
        rows.append(
            {
                "rank": r.rank,
                "receipt_no": r.entry.label,
                "applicant": result.names[app_id],
                "state": result.states[app_id],
                "state_label": labels.get(result.states[app_id], result.states[app_id]),
                "parts": [
                    {
                        "part": part.part,
                        "score": str(part.score),
                        "how": reasons.render(f.written if part.part == "written" else f.presentation, lang),
                        "dropped": ", ".join(f"{v:.2f}" for v in part.dropped),
                    }
                    for part in (r.entry.written, r.entry.presentation)
                ],
                "weighted": reasons.render(f.weighted, lang),
                "score": str(r.total),
                "qualified": r.qualified,
                "rank_line": reasons.render(f.rank, lang),
                "national": _krw(r.entry.national_krw, lang),
                "ties": reasons.lines(f.ties, lang),
                "outcome": d.outcome if d else "",
                "rule": reasons.lines(explained[app_id].rule, lang) if d else [],
            }
        )
    cutoff = ""
    if explained:
        first = next(iter(explained.values()))
        cutoff = reasons.render([x for x in first.figures if x.code in ("explain.cutoff", "explain.no_cutoff")], lang)
    e = track.evaluation
    budget = track.funding.budget_national_krw
    counts = None
    if dry is not None:
        used = sum(
            r.entry.national_krw
            for r in result.rows
            if (d := decided.get(r.entry.application_id)) and d.outcome == "select"
        )
        counts = {
            "total": len(dry.decisions),
            "selected": dry.count("select"),
            "waitlisted": dry.count("waitlist"),
            "not_selected": dry.count("reject"),
            "used": _krw(used, lang),
            "budget": _krw(budget, lang),
        }
    now = a.clock.now()
    return {
        "key": key,
        "heading": heading(contest, track, lang),
        "rows": rows,
        "incomplete": result.incomplete,
        "rules": {
            "slots": track.slots,
            "budget": _krw(budget, lang),
            "waitlist": e.waitlist,
            "minimum": str(e.minimum_score),
        },
        "counts": counts,
        "plan": dry.plan if dry is not None else "",
        "cutoff": cutoff,
        "unavailable": unavailable,
        "early": _shown(row["presentation_ends"], contest.timezone) if now < row["presentation_ends"] else None,
        "refusal": None,
        "typed": "",
    }


@router.get("/office/tracks/{key}/ranking", response_class=HTMLResponse)
def ranking_page(request: Request, key: str, who: Office) -> HTMLResponse:
    return pages.render(request, "office/ranking.html", **_ranking(request, who, key))


@router.post("/office/tracks/{key}/selection", dependencies=[Csrf])
def confirm_selection(
    request: Request, key: str, who: Office, typed: str = Form(""), count: str = Form(""), plan: str = Form("")
) -> Response:
    """Confirm the selection: the track's key typed, and the number of decisions the dry run showed.
    A refusal (a wrong key, before the presentation ends, already selected, the count changed) is
    shown beside the form, nothing changed."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        track_of(a, conn, key)
    try:
        if typed.strip() != key:
            raise InvalidInput(
                f"field 'typed' = {typed.strip()[:60]!r}: type the track's key, {key}, to confirm the selection;"
                " nothing was changed"
            )
        expected = _number(count)
        if expected is None or expected < 1:
            raise InvalidInput(
                f"field 'count' = {count[:20]!r}: the number of decisions the dry run showed is missing;"
                " reload the page; nothing was changed"
            )
        done = selection.select(a, key, who.actor, confirm=True, expected=expected, plan=plan.strip() or None)
    except GongmoError as exc:
        context = _ranking(request, who, key)
        context.update(refusal=pages.say(exc), typed=typed.strip()[:60])
        return pages.render(request, "office/ranking.html", status=errors.status_of(exc), **context)
    query = urlencode({"selected": len(done.decisions)})
    return RedirectResponse(f"/office/tracks/{key}/release?{query}", status_code=303)


# -- release -------------------------------------------------------------------------------------


def _release(request: Request, key: str) -> dict[str, Any]:
    """The release page's context: every held result notice of the track, per notice, language and
    subject (outbox/office.held, the service behind GET /tracks/{track}/outbox/held)."""
    a = pages.gongmo(request)
    lang = pages.language(request)
    with read(a.db) as conn:
        contest, track, row = track_of(a, conn, key)
    notices: list[dict[str, Any]] = []
    for notice in track.hold_notices:
        by_language = outbox_office.held(a, key, notice)
        lines = [
            {"language": language, "subject": subject, "count": n}
            for language in sorted(by_language, key=lambda x: (x != "ko", x))
            for subject, n in sorted(by_language[language].items())
        ]
        notices.append(
            {"notice": notice, "count": sum(n for per in by_language.values() for n in per.values()), "lines": lines}
        )
    given = {k: _number(request.query_params.get(k, "")) for k in ("selected", "released")}
    return {
        "key": key,
        "heading": heading(contest, track, lang),
        "notices": notices,
        "total": sum(n["count"] for n in notices),
        "results": outbox_office.RESULTS,
        "embargoed_at": _shown(row["results_embargoed_at"], contest.timezone),
        "released_at": _shown(row["results_released_at"], contest.timezone),
        "selected": given["selected"],
        "released": given["released"],
        "refusal": None,
    }


@router.get("/office/tracks/{key}/release", response_class=HTMLResponse)
def release_page(request: Request, key: str, who: Office) -> HTMLResponse:
    return pages.render(request, "office/release.html", **_release(request, key))


@router.post("/office/tracks/{key}/release", dependencies=[Csrf])
def release(request: Request, key: str, who: Office, notice: str = Form(""), count: str = Form("")) -> Response:
    """Release held notices: one kind, or every result (`results`), only if `count` is still what
    the page showed (outbox/office.release's guard); else the one line beside the form."""
    a = pages.gongmo(request)
    with read(a.db) as conn:
        _, track, _ = track_of(a, conn, key)
    try:
        if notice not in (*track.hold_notices, outbox_office.RESULTS):
            known = ", ".join((*track.hold_notices, outbox_office.RESULTS))
            raise InvalidInput(f"field 'notice' = {notice[:40]!r}: choose one of {known}; nothing was released")
        expected = _number(count)
        if expected is None or expected < 1:
            raise InvalidInput(
                f"field 'count' = {count[:20]!r}: the number of held notices the page showed is missing;"
                " reload the page; nothing was released"
            )
        released = outbox_office.release(a, key, notice, expected=expected)
    except GongmoError as exc:
        context = _release(request, key)
        context["refusal"] = pages.say(exc)
        return pages.render(request, "office/release.html", status=errors.status_of(exc), **context)
    return RedirectResponse(f"/office/tracks/{key}/release?{urlencode({'released': released})}", status_code=303)
