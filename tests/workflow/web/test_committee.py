"""The console's committee page (/office/tracks/{key}/committee): each evaluator's load, sheets
entered and missing per part, the conflicts declared, and the sheets missing per application, as
the database holds them; the office's only."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Callable

import sqlalchemy as sa

from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, ASSIGNMENT, EVALUATOR, SCORE, TRACK
from tests.workflow.api.conftest import CHANGWON, JUNG, KIM, SEJONG, SIHEUNG, TRACK_KEY, World
from tests.workflow.web.conftest import Browser, text_of

Make = Callable[[World], Browser]
PAGE = f"/office/tracks/{TRACK_KEY}/committee"
PARTS = ("written", "presentation")


def evaluator_cells(html: str) -> dict[str, dict[tuple[str, str], int]]:
    """email -> (part, assigned|entered|missing) -> the number the page shows."""
    out: dict[str, dict[tuple[str, str], int]] = {}
    for email, row in re.findall(r'<tr data-evaluator="([^"]+)">(.*?)</tr>', html, re.S):
        cells = re.findall(r'data-part="(\w+)" data-count="(\w+)">(\d+)<', row)
        out[email] = {(part, kind): int(n) for part, kind, n in cells}
    return out


def application_cells(html: str) -> dict[str, dict[str, int | None]]:
    """receipt no -> part -> sheets missing the page shows (None: 'not due')."""
    out: dict[str, dict[str, int | None]] = {}
    for receipt, row in re.findall(r'<tr data-receipt="([^"]+)">(.*?)</tr>', html, re.S):
        shown: dict[str, int | None] = dict.fromkeys(PARTS)
        for part, n in re.findall(r'data-part="(\w+)" data-missing="(\d+)"', row):
            shown[part] = int(n)
        out[receipt] = shown
    return out


def database_loads(w: World) -> tuple[dict[str, dict[tuple[str, str], int]], dict[str, dict[str, int | None]]]:
    """The same figures, counted straight from the tables (the scenario has no conflicted assignment)."""
    with read(w.app.db) as conn:
        apps = {
            int(r.id): (r.receipt_no, r.state)
            for r in conn.execute(
                sa.select(APPLICATION.c.id, APPLICATION.c.receipt_no, APPLICATION.c.state)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(TRACK.c.key == TRACK_KEY)
            )
        }
        assigned = [
            (int(a), e)
            for a, e in conn.execute(
                sa.select(ASSIGNMENT.c.application_id, EVALUATOR.c.email).join(
                    EVALUATOR, EVALUATOR.c.id == ASSIGNMENT.c.evaluator_id
                )
            )
            if int(a) in apps
        ]
        sheets = {
            (int(a), e, p)
            for a, e, p in conn.execute(
                sa.select(SCORE.c.application_id, EVALUATOR.c.email, SCORE.c.part).join(
                    EVALUATOR, EVALUATOR.c.id == SCORE.c.evaluator_id
                )
            )
        }
        emails = list(conn.execute(sa.select(EVALUATOR.c.email)).scalars())
    due = {"written": {"written_evaluation", "presentation_evaluation"}, "presentation": {"presentation_evaluation"}}
    loads: dict[str, dict[tuple[str, str], int]] = {e: defaultdict(int) for e in emails}
    per_app: dict[str, dict[str, int | None]] = {}
    for receipt, state in apps.values():
        if state in due["written"]:
            per_app[receipt] = {p: (0 if state in due[p] else None) for p in PARTS}
    for app_id, email in assigned:
        receipt, state = apps[app_id]
        for part in PARTS:
            if state not in due[part]:
                continue
            entered = (app_id, email, part) in sheets
            loads[email][(part, "assigned")] += 1
            loads[email][(part, "entered")] += entered
            loads[email][(part, "missing")] += not entered
            shown = per_app[receipt][part]
            assert shown is not None
            per_app[receipt][part] = shown + (not entered)
    return {
        e: {(p, k): v.get((p, k), 0) for p in PARTS for k in ("assigned", "entered", "missing")}
        for e, v in loads.items()
    }, per_app


def test_the_committee_page_shows_loads_and_missing_sheets_as_the_database_holds_them(
    presentation: World, browser: Make
) -> None:
    w = presentation
    with write(w.app.db) as conn:  # two sheets lost: kim's presentation sheet of 세종, kim's written one of 시흥
        for code, email, part in ((SEJONG, KIM, "presentation"), (SIHEUNG, KIM, "written")):
            ev = conn.execute(sa.select(EVALUATOR.c.id).where(EVALUATOR.c.email == email)).scalar_one()
            gone = conn.execute(
                SCORE.delete().where(
                    SCORE.c.application_id == w.id(code), SCORE.c.evaluator_id == ev, SCORE.c.part == part
                )
            )
            assert gone.rowcount > 0, (code, email, part)
    page = browser(w).sign_in().get(PAGE)
    assert page.status_code == 200, page.text
    loads, per_app = database_loads(w)
    shown = evaluator_cells(page.text)
    assert shown == loads
    assert shown[KIM][("presentation", "missing")] == 1 and shown[KIM][("written", "missing")] == 1
    assert shown[JUNG][("written", "missing")] == 0 and shown[JUNG][("written", "assigned")] == 8  # not 경기's
    assert shown[KIM][("written", "assigned")] == 10  # kim is assigned to all 10 in evaluation
    assert application_cells(page.text) == per_app
    sejong, siheung = w.row(SEJONG)["receipt_no"], w.row(SIHEUNG)["receipt_no"]
    assert per_app[sejong] == {"written": 0, "presentation": 1} and per_app[siheung] == {
        "written": 1,
        "presentation": 0,
    }
    assert "미입력 평가표: 서면 1건, 발표 1건" in text_of(page.text)
    assert w.row(CHANGWON)["receipt_no"] not in per_app  # disqualified: never in evaluation


def test_the_committee_page_names_the_conflicts_declared_in_both_languages(presentation: World, browser: Make) -> None:
    b = browser(presentation).sign_in()
    ko = text_of(b.get(PAGE + "?lang=ko").text)
    assert "신고: 51110 춘천시 (declared in the committee list" in ko  # lee's, from the committee list
    assert "평가위원회" in ko and "이해충돌" in ko
    en = text_of(b.get(PAGE + "?lang=en").text)
    assert "declared: 51110 춘천시" in en and "Conflicts of interest" in en and "Sheets per application" in en
    assert "이해충돌" not in en


def test_a_conflict_found_after_assignment_is_listed_and_its_sheets_not_counted(
    presentation: World, browser: Make
) -> None:
    w = presentation
    with write(w.app.db) as conn:  # kim now belongs to 세종 (home_code): kim's assignment there is conflicted
        conn.execute(sa.update(EVALUATOR).where(EVALUATOR.c.email == KIM).values(home_code=SEJONG))
    page = browser(w).sign_in().get(PAGE)
    shown = evaluator_cells(page.text)
    assert shown[KIM][("written", "assigned")] == 9 and shown[KIM][("written", "missing")] == 0
    sejong = w.row(SEJONG)["receipt_no"]
    assert f"배정 후 이해충돌: {sejong} (belongs to the applicant ({SEJONG})); 점수 제외" in text_of(page.text)


def test_the_committee_page_is_the_office_s(presentation: World, browser: Make) -> None:
    for role, subject in (("evaluator", KIM), ("applicant", SEJONG)):
        refused = browser(presentation).sign_in(role, subject).get(PAGE)
        assert refused.status_code == 403, (role, refused.text)
        assert "this page is for the contest office" in text_of(refused.text)
    assert browser(presentation).get(PAGE).status_code == 303  # no session: to the sign-in page
    unknown = browser(presentation).sign_in().get("/office/tracks/no-such-track/committee")
    assert unknown.status_code == 404 and "no track 'no-such-track'" in html.unescape(unknown.text)


def test_in_the_written_evaluation_presentation_sheets_are_not_due(written: World, browser: Make) -> None:
    page = browser(written).sign_in().get(PAGE)
    assert page.status_code == 200, page.text
    loads, per_app = database_loads(written)
    assert evaluator_cells(page.text) == loads and application_cells(page.text) == per_app
    assert len(per_app) == 10 and all(m["presentation"] is None for m in per_app.values())
    assert all(m["written"] for m in per_app.values())  # no written sheet entered yet
    assert "해당 없음" in text_of(page.text)
