"""The evaluators' portal (/evaluator): the assignments by track and part with what is missing, an
application's documents, answers and checklist, the score sheet (checked field by field before
anything is saved, saved and corrected through the API's service), declaring a conflict, and what an
evaluator must never see (another evaluator's applications and sheets, results before the release)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest

from gongmo.workflow.core.models import ASSIGNMENT, EVALUATOR, EVENT, SCORE
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import committee, selection
from tests.conftest import kst
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import CHANGWON, JUNG, KIM, LEE, POINTS, SEJONG, SIHEUNG, TRACK_KEY, World
from tests.workflow.web.conftest import Browser, text_of

Make = Callable[[World], Browser]
CHUNCHEON = "51110"  # lee declared a conflict with it in the committee import


def said(html: str) -> str:
    return unescape(text_of(html))


def evaluator(w: World, browser: Make, email: str = KIM) -> Browser:
    return browser(w).sign_in("evaluator", email)


def page_of(w: World, code: str) -> str:
    return f"/evaluator/applications/{w.id(code)}"


def form(points: dict[str, str]) -> dict[str, str]:
    return {f"points.{k}": v for k, v in points.items()}


def ev_id(w: World, email: str) -> int:
    return int(w.rows(EVALUATOR, EVALUATOR.c.email == email)[0]["id"])


def my_scores(w: World, code: str, email: str = KIM) -> dict[str, int]:
    rows = w.rows(SCORE, SCORE.c.application_id == w.id(code), SCORE.c.evaluator_id == ev_id(w, email))
    return {r["criterion"]: r["points_x100"] for r in rows}


def section(html: str, part: str) -> str:
    return html.split(f'id="sheet-{part}"', 1)[1].split("</section>", 1)[0]


# -- the assignments ------------------------------------------------------------------------------


def test_the_assignments_are_grouped_by_track_and_part_with_the_due_date_and_what_is_missing(
    written: World, browser: Make
) -> None:
    b = evaluator(written, browser)
    page = b.get("/evaluator")
    assert page.status_code == 200, page.text
    text = said(page.text)
    assert "강소형 스마트시티" in text or "강소" in text
    written_part = page.text.split('id="part-strong-small-2024-written"', 1)[1].split("</section>", 1)[0]
    assert "서면평가 · 마감 2024-06-12 18:00 KST" in said(written_part)
    assert "평가표 10건 중 0건 입력, 10건 미입력" in said(written_part)
    links = set(re.findall(r'href="/evaluator/applications/(\d+)#sheet-written"', written_part))
    assert links == {str(written.id(c)) for c in sc.TARGETS if c != CHANGWON}
    presentation_part = page.text.split('id="part-strong-small-2024-presentation"', 1)[1].split("</section>", 1)[0]
    assert "마감 2024-06-19 18:00 KST" in said(presentation_part)
    assert "아직 평가 대상이 아닙니다" in said(presentation_part)

    assert b.post(page_of(written, SEJONG) + "/scores/written", form(POINTS)).status_code == 200
    again = said(b.get("/evaluator").text)
    assert "평가표 10건 중 1건 입력, 9건 미입력" in again


def test_an_evaluator_lists_only_what_it_may_evaluate(written: World, browser: Make) -> None:
    page = evaluator(written, browser, JUNG).get("/evaluator")  # 경기: no 경기 application
    assert page.status_code == 200
    listed = set(re.findall(r'href="/evaluator/applications/(\d+)#sheet-written"', page.text))
    assert str(written.id(SIHEUNG)) not in listed and str(written.id(SEJONG)) in listed
    assert "평가표 8건 중 0건 입력, 8건 미입력" in said(page.text)
    lee = evaluator(written, browser, LEE).get("/evaluator")
    assert str(written.id(CHUNCHEON)) not in set(re.findall(r"/evaluator/applications/(\d+)", lee.text))


# -- the application and its sheet ----------------------------------------------------------------


def test_the_application_page_shows_documents_answers_checklist_and_one_field_per_criterion(
    written: World, browser: Make
) -> None:
    b = evaluator(written, browser)
    page = b.get(page_of(written, SEJONG))
    assert page.status_code == 200, page.text
    text = said(page.text)
    assert "세종특별자치시" in text and "적격성 확인" in text and "제출 서류" in text and "질문 답변" in text
    sheet = section(page.text, "written")
    criteria = written.app.loaded.config.track(TRACK_KEY)[1].evaluation.criteria
    for c in criteria:
        assert f'name="points.{c.key}"' in sheet
        assert f"{c.name_ko} (0~{c.points:f}".rstrip("0").rstrip(".") in said(sheet)
    assert "data-sheet" in sheet and "data-total" in sheet  # console.js keeps the total live
    assert "합계 — / 100점" in said(sheet)
    closed = said(section(page.text, "presentation"))  # not in that part yet: read-only, and why
    assert "평가 기간이 아직 시작되지 않았습니다: 2024-06-17 09:00 KST부터" in closed
    assert 'name="points.' not in section(page.text, "presentation")
    # the download goes through the API's route function: the bytes, and the download recorded
    href = re.search(r'href="(/evaluator/applications/\d+/documents/plan\?version=\d+)"', page.text)
    assert href is not None
    before = written.count(EVENT, EVENT.c.kind == "document_downloaded")
    got = b.get(href[1])
    assert got.status_code == 200 and got.content.startswith(b"%PDF")
    assert written.count(EVENT, EVENT.c.kind == "document_downloaded") == before + 1


def test_a_sheet_saved_then_corrected_records_the_old_points_and_the_page_says_so(
    written: World, browser: Make
) -> None:
    b = evaluator(written, browser)
    saved = b.post(page_of(written, SEJONG) + "/scores/written", form(POINTS))
    assert saved.status_code == 200  # the page with the saved sheet is the answer
    assert my_scores(written, SEJONG) == {k: int(float(v) * 100) for k, v in POINTS.items()}
    page = said(saved.text)
    assert "평가표를 저장했습니다 (서면평가)" in page and "합계 84.75 / 100점" in page
    assert f'href="/evaluator/applications/{written.id(SEJONG)}?lang=en"' in saved.text  # the switch: a GET page

    corrected = POINTS | {"feasibility": "20"}
    assert b.post(page_of(written, SEJONG) + "/scores/written", form(corrected)).status_code == 200
    assert my_scores(written, SEJONG)["feasibility"] == 2000
    last = written.rows(EVENT, EVENT.c.application_id == written.id(SEJONG), EVENT.c.kind == "score_corrected")
    assert len(last) == 1
    detail: dict[str, Any] = json.loads(last[0]["detail"])
    assert detail["was"]["feasibility"] == "24.5" and detail["points"]["feasibility"] == "20"
    sheet = said(section(b.get(page_of(written, SEJONG)).text, "written"))
    assert "정정됨: 이전 합계 84.75점 → 현재 합계 80.25점" in sheet
    assert "정정하여 저장" in sheet


BAD = [
    ("feasibility", "", "has no points"),
    ("feasibility", "22.555", "at most two decimals"),
    ("feasibility", "31", "out of range, give 0 to 30"),
    ("innovation", "-1", "out of range"),
    ("budget", "abc", "not a number"),
    ("effect", "1e1", "not a number"),
    ("effect", "١٢", "digits 0-9"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD)
def test_each_refusal_names_its_field_beside_it_and_nothing_changes(
    written: World, browser: Make, key: str, value: str, message: str
) -> None:
    b = evaluator(written, browser)
    before = written.footprint()
    answer = b.post(page_of(written, SEJONG) + "/scores/written", form(POINTS | {key: value}))
    assert answer.status_code == 422, answer.text
    sheet = section(answer.text, "written")
    error = re.search(rf'<span class="field-error" id="err-written-{key}">(.*?)</span>', sheet)
    assert error is not None and message in unescape(error[1]) and key in unescape(error[1])
    assert len(re.findall(r'class="field-error"', sheet)) == 1  # only that field
    assert f'aria-describedby="err-written-{key} hint-written"' in sheet
    assert "평가표를 저장하지 않았습니다" in said(sheet)
    assert f'value="{POINTS["participation"]}"' in sheet  # what was typed is kept
    assert written.footprint() == before


def test_outside_the_window_the_sheet_is_read_only_and_a_post_is_refused(written: World, browser: Make) -> None:
    b = evaluator(written, browser)
    assert b.post(page_of(written, SEJONG) + "/scores/written", form(POINTS)).status_code == 200
    written.clock.set(kst("2024-06-12 18:00"))  # the window's end: closed
    b = evaluator(written, browser)  # (the first session went idle meanwhile)
    page = b.get(page_of(written, SEJONG))
    sheet = said(section(page.text, "written"))
    assert "평가 기간이 끝났습니다 (2024-06-10 09:00 KST ~ 2024-06-12 18:00 KST)" in sheet
    assert "합계 84.75 / 100점" in sheet and 'name="points.' not in section(page.text, "written")
    before = written.footprint()
    refused = b.post(page_of(written, SEJONG) + "/scores/written", form(POINTS | {"budget": "1"}))
    assert refused.status_code == 409
    assert "accepted from 2024-06-10 09:00 to 2024-06-12 18:00" in said(refused.text)
    assert written.footprint() == before


def test_english_and_the_switch(written: World, browser: Make) -> None:
    b = evaluator(written, browser)
    ko = b.get("/evaluator")
    assert '<html lang="ko">' in ko.text and 'href="?lang=en"' in ko.text
    en = b.get("/evaluator?lang=en")
    assert '<html lang="en">' in en.text and "My evaluations" in en.text
    assert "0 of 10 sheets entered, 10 missing" in said(en.text)
    page = b.get(page_of(written, SEJONG))  # the cookie keeps the choice
    assert '<html lang="en">' in page.text and "Written sheet" in said(page.text)
    assert "Feasibility of the plan (0 to 30)" in said(page.text)


# -- conflicts ----------------------------------------------------------------------------------


def test_declaring_a_conflict_asks_first_then_withdraws_the_assignment_and_its_sheets(
    written: World, browser: Make
) -> None:
    b = evaluator(written, browser)
    assert b.post(page_of(written, SEJONG) + "/scores/written", form(POINTS)).status_code == 200
    ask = b.get(page_of(written, SEJONG) + "/conflict")
    assert ask.status_code == 200
    text = said(ask.text)
    assert "세종특별자치시(36110)와의 이해충돌이 기록됩니다" in text
    assert "입력한 평가표 1건" in text and "배정이 철회" in text
    assert written.count(ASSIGNMENT, ASSIGNMENT.c.application_id == written.id(SEJONG)) == 5

    before = written.footprint()
    empty = b.post(page_of(written, SEJONG) + "/conflict", {"reason": "  "})
    assert empty.status_code == 422 and "reason" in said(empty.text)
    assert written.footprint() == before
    assert b.post(page_of(written, SEJONG) + "/conflict", {"reason": "자문위원 위촉"}, csrf=False).status_code == 403
    assert written.footprint() == before

    done = b.post(page_of(written, SEJONG) + "/conflict", {"reason": "자문위원 위촉"})
    assert done.status_code == 303 and done.headers["location"] == f"/evaluator?declared={written.id(SEJONG)}"
    mine = (ASSIGNMENT.c.application_id == written.id(SEJONG)) & (ASSIGNMENT.c.evaluator_id == ev_id(written, KIM))
    assert written.count(ASSIGNMENT, mine) == 0 and my_scores(written, SEJONG) == {}
    assert written.count(EVENT, EVENT.c.kind == "conflict_declared") == 1
    home = b.get(done.headers["location"])
    assert "배정과 평가표가 철회되었습니다" in said(home.text)
    assert f"/evaluator/applications/{written.id(SEJONG)}#" not in home.text
    assert b.get(page_of(written, SEJONG)).status_code == 403


# -- who sees what ----------------------------------------------------------------------------------


def test_another_evaluators_application_and_documents_are_refused_by_direct_url(written: World, browser: Make) -> None:
    jung = evaluator(written, browser, JUNG)
    before = written.footprint()
    siheung = page_of(written, SIHEUNG)  # 경기: jung is not assigned to it
    assert jung.get(siheung).status_code == 403
    assert jung.get(siheung + "/documents/plan").status_code == 403
    assert jung.get(siheung + "/conflict").status_code == 403
    assert jung.post(siheung + "/scores/written", form(POINTS)).status_code == 403
    assert jung.post(siheung + "/conflict", {"reason": "x"}).status_code == 403
    assert jung.get("/evaluator/applications/999999").status_code == 404
    assert written.footprint() == before
    downloads = written.count(EVENT, EVENT.c.kind == "document_downloaded")
    assert downloads == 0


def test_never_another_evaluators_sheet(written: World, browser: Make) -> None:
    sheet = committee.SheetInput(str(written.id(SEJONG)), JUNG, "written", POINTS | {"budget": "3.33"})
    committee.enter_sheet(written.app, sheet, sc.OFFICE)
    page = evaluator(written, browser).get(page_of(written, SEJONG))
    assert "3.33" not in page.text and JUNG not in page.text
    assert "합계 — / 100점" in said(section(page.text, "written"))


def test_the_office_pages_refuse_an_evaluator_and_the_portal_refuses_the_office(written: World, browser: Make) -> None:
    b = evaluator(written, browser)
    for path in ("/office", f"/office/applications/{written.id(SEJONG)}", f"/office/tracks/{TRACK_KEY}"):
        assert b.get(path).status_code == 403, path
    office = browser(written).sign_in()
    assert office.get("/evaluator").status_code == 403
    assert office.get(page_of(written, SEJONG)).status_code == 403
    nobody = browser(written)
    gone = nobody.get("/evaluator")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/signin?next=%2Fevaluator")


def test_nothing_of_the_results_before_the_release(presentation: World, browser: Make) -> None:
    selection.select(presentation.app, TRACK_KEY, sc.OFFICE, confirm=True)  # results under embargo
    assert presentation.state(SEJONG) == "selected"
    b = evaluator(presentation, browser)
    home = said(b.get("/evaluator").text)
    assert "선정" not in home.replace("발표평가", "")  # every application shows the part it was decided in
    page = b.get(page_of(presentation, SEJONG))
    text = said(page.text)
    assert "결과 (공개됨)" not in text and "종합 점수" not in text
    assert "상태 발표평가" in text and "선정" not in text

    outbox_office.release(presentation.app, TRACK_KEY, "results")
    after = said(b.get(page_of(presentation, SEJONG)).text)
    assert "결과 (공개됨)" in after and "종합 점수" in after and "상태 선정" in after


def test_on_both_databases_a_sheet_saved_corrected_and_a_conflict_declared(
    world: Callable[..., World], db_url: str, browser: Make
) -> None:
    w = world("written", db_url)
    b = evaluator(w, browser)
    assert "평가표 10건 중 0건 입력" in said(b.get("/evaluator").text)
    assert b.post(page_of(w, SEJONG) + "/scores/written", form(POINTS)).status_code == 200
    corrected = b.post(page_of(w, SEJONG) + "/scores/written", form(POINTS | {"budget": "10"}))
    assert "정정됨: 이전 합계 84.75점 → 현재 합계 82.75점" in said(corrected.text)
    assert my_scores(w, SEJONG)["budget"] == 1000
    before = w.footprint()
    assert b.post(page_of(w, SIHEUNG) + "/scores/written", form(POINTS | {"budget": "16"})).status_code == 422
    assert w.footprint() == before
    assert b.post(page_of(w, SIHEUNG) + "/conflict", {"reason": "자문 수행"}).status_code == 303
    assert b.get(page_of(w, SIHEUNG)).status_code == 403 and my_scores(w, SIHEUNG) == {}
