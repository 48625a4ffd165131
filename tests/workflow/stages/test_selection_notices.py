"""Result notices that explain themselves (issue 22, first part): the 2024
strong-and-small scenario with a budget of 22 bn instead of 24 bn, so that one
run has every rule: 세종 and 시흥 selected; 천안 (8 bn) skipped for the
6.5 bn left and waitlisted first, tied with 청주 at 84.93 and ahead of it on
feasibility; 화성 skipped for the budget with the waitlist full; 구미 (6 bn)
selected at rank 6, the cutoff; 창원 and below after the slots were filled;
여수 below the minimum of 70. Then 시흥 withdraws and 천안 is promoted.

Every figure a notice states is checked against the ranking rows (`gongmo
rank`'s), and one notice's figures are worked out again from the SCORE rows.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import APPLICATION, EVALUATOR, EVENT, OUTBOX, SCORE
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import committee, presentations, review, selection
from tests.conftest import config_copy, kst, make_app
from tests.workflow import contest_2024 as sc

OFFICE, APPLICANT_ACTOR = sc.OFFICE, sc.APPLICANT_ACTOR
HEADING = {"ko": "평가 결과 설명:", "en": "How this result was reached:"}
HANGUL = re.compile(r"[\uac00-\ud7a3]")
LATIN_WORD = re.compile(r"[A-Za-z]+")
# 천안 writes in English (contest_2024.APPLICANTS_CSV); every other applicant in Korean.
CHEONAN, CHEONGJU, SEJONG, SIHEUNG, HWASEONG, GUMI, CHANGWON, YEOSU = (
    "44130", "43110", "36110", "41390", "41590", "47190", "48120", "46130",
)  # fmt: skip


@pytest.fixture
def contest(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[App]:
    config = config_copy(
        tmp_path,
        ("budget_national_krw = 24_000_000_000   # 3 x 8 bn", "budget_national_krw = 22_000_000_000"),
    )
    app = make_app(db_url, clock, config)
    sc.prepare(app, clock, tmp_path)
    yield app
    app.db.dispose()


def _to_presentation_scores(app: App, clock: FixedClock, tmp_path: Path) -> dict[str, str]:
    """Receipt, review (창원 reinstated on its objection), assignment, every sheet: code -> receipt no."""
    sc.receive_all(app, clock)
    sc.at(app, clock, "2024-05-29 18:00")
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, OFFICE)
    review.disqualify_failed(app, sc.TRACK, OFFICE)
    clock.set(kst("2024-06-04 09:00"))
    rows = sc.apps(app)
    objection = review.file_objection(app, int(rows[CHANGWON]["id"]), "주민등록인구 998,000명", APPLICANT_ACTOR)
    review.decide_objection(app, objection, True, "2024년 4월 주민등록인구 998,000명 확인", OFFICE)
    committee.assign_track(app, sc.TRACK, OFFICE)
    presentations.schedule(app, sc.TRACK, OFFICE)
    receipts = {code: str(r["receipt_no"]) for code, r in sc.apps(app).items() if code in sc.TARGETS}
    clock.set(kst("2024-06-11 14:00"))
    sc.import_sheets(app, tmp_path / "written.csv", "written", receipts)
    sc.at(app, clock, "2024-06-12 18:00")
    clock.set(kst("2024-06-19 17:00"))
    sc.import_sheets(app, tmp_path / "presentation.csv", "presentation", receipts)
    clock.set(kst("2024-06-26 09:00"))
    return receipts


def _body(app: App, application_id: object, notice: str) -> str:
    with read(app.db) as conn:
        query = sa.select(OUTBOX.c.body_text).where(
            OUTBOX.c.application_id == application_id, OUTBOX.c.notice == notice
        )
        return str(conn.execute(query).scalar_one())


def _html(app: App, application_id: object, notice: str) -> str:
    with read(app.db) as conn:
        query = sa.select(OUTBOX.c.body_html).where(
            OUTBOX.c.application_id == application_id, OUTBOX.c.notice == notice
        )
        return str(conn.execute(query).scalar_one())


def _explanation(body: str, language: str) -> list[str]:
    """The lines of the notice's explanation block."""
    lines = body.splitlines()
    start = lines.index(HEADING[language]) + 1
    out = []
    for line in lines[start:]:
        if not line.startswith("  - "):
            break
        out.append(line.removeprefix("  - "))
    return out


def _pure(lines: list[str], language: str) -> None:
    """A ko explanation has no English word (the zone's KST aside); an en one no Korean."""
    assert lines
    for line in lines:
        if language == "ko":
            assert set(LATIN_WORD.findall(line)) <= {"KST"}, line
        else:
            assert not HANGUL.search(line), line


def test_every_result_notice_explains_itself_from_the_ranking_rows(
    contest: App, clock: FixedClock, tmp_path: Path
) -> None:
    app = contest
    receipts = _to_presentation_scores(app, clock, tmp_path)
    applied = selection.select(app, sc.TRACK, OFFICE, confirm=True)
    codes = {v: k for k, v in receipts.items()}
    outcome = {codes[d.label]: (d.outcome, d.cause, d.waitlist_position) for d in applied.decisions}
    assert outcome[SEJONG] == ("select", "within", None) and outcome[SIHEUNG] == ("select", "within", None)
    assert outcome[CHEONAN] == ("waitlist", "budget", 1) and outcome[CHEONGJU] == ("waitlist", "budget", 2)
    assert outcome[HWASEONG] == ("reject", "budget", None)
    assert outcome[GUMI] == ("select", "within", None)  # rank 6, after three skips: 6 bn fits the 6.5 bn left
    assert outcome[CHANGWON] == ("reject", "slots", None)
    assert outcome[YEOSU] == ("reject", "minimum", None)

    # The figures every notice states, as the ranking rows (`gongmo rank`) give them.
    table = {codes[r["receipt_no"]]: r for r in selection.table(applied.ranking, applied.decisions)}
    qualified = sum(1 for r in table.values() if r["qualified"])
    assert (qualified, len(table) - qualified) == (10, 1)
    cutoff = table[GUMI]["score"]
    assert cutoff == "79.93"
    rows = sc.apps(app)

    # 세종 (ko), selected: both parts a trimmed mean of 5, 3 counted.
    sejong = _explanation(_body(app, rows[SEJONG]["id"], "selected"), "ko")
    s = table[SEJONG]
    assert sejong == [
        f"서면평가 점수 {s['written']}점: 평가위원 5명 점수 중 최고점과 최저점을 뺀 3명 점수의 평균(절사평균)",
        f"발표평가 점수 {s['presentation']}점: 평가위원 5명 점수 중 최고점과 최저점을 뺀 3명 점수의 평균(절사평균)",
        f"평가 점수: 서면평가 {s['written']}점 × 0.4 + 발표평가 {s['presentation']}점 × 0.6 = {s['score']}점",
        "순위: 선정 최저 점수 70점 이상인 10개 기관 중 1위 (최저 점수 미만 1개 기관)",
        f"선정 기준선: {cutoff}점 (선정 때 마지막으로 선정된 기관의 평가 점수)",
        "선정: 10개 기관 중 1위로, 선정 규모 3곳과 예산 범위 안에 들었습니다",
    ]
    _pure(sejong, "ko")
    assert s["written"] == str(sc.expected(SEJONG, "written")) == "90.33"

    # 시흥 (ko), selected: a plain mean of 4 (정위원 recused).
    siheung = _explanation(_body(app, rows[SIHEUNG]["id"], "selected"), "ko")
    assert siheung[0] == f"서면평가 점수 {table[SIHEUNG]['written']}점: 평가위원 4명 점수의 평균"
    assert siheung[-1] == "선정: 10개 기관 중 2위로, 선정 규모 3곳과 예산 범위 안에 들었습니다"

    # 천안 (en), waitlisted first: skipped for the budget, and the tie with 청주 decided by feasibility.
    c = table[CHEONAN]
    cheonan = _explanation(_body(app, rows[CHEONAN]["id"], "waitlisted"), "en")
    assert cheonan == [
        f"written score {c['written']}: the trimmed mean of 5 sheets, the highest and the lowest dropped (3 counted)",
        f"presentation score {c['presentation']}: the trimmed mean of 5 sheets, the highest and the lowest dropped"
        " (3 counted)",
        f"committee score: written {c['written']} x 0.4 + presentation {c['presentation']} x 0.6 = 84.93",
        "rank 3 of 10 qualified applications (at or above the minimum of 70; 1 below it)",
        f"cutoff: {cutoff}, the committee score of the last application selected at the selection",
        "tied at 84.93 with 1 other application(s); decided by the 'Feasibility of the plan' criterion score"
        f" ({c['criterion:feasibility']} to {table[CHEONGJU]['criterion:feasibility']})",
        "waitlisted, position 1: rank 3 was skipped because its KRW 8.0 billion would exceed the KRW 6.5 billion"
        " of budget left; promoted if a selected applicant withdraws or is cancelled before 2024-07-31 18:00 KST"
        " and the budget then left allows",
    ]
    assert (c["criterion:feasibility"], table[CHEONGJU]["criterion:feasibility"]) == ("26.50", "25.50")
    assert c["tie"] == "" and table[CHEONGJU]["tie"].startswith(f"tied with {receipts[CHEONAN]} at 84.93")
    _pure(cheonan, "en")

    # 청주 (ko), waitlisted second: the same tie from below, the other application only by its figure.
    cheongju = _explanation(_body(app, rows[CHEONGJU]["id"], "waitlisted"), "ko")
    assert (
        "동점: 다른 1개 기관과 84.93점으로 동점이었으며, 순위는 「사업계획의 타당성」 항목 점수 기준으로"
        " 정해졌습니다 (25.50 대 26.50)"
    ) in cheongju
    assert cheongju[-1].startswith("예비 선정 2순위: 4위였으나 신청 국비 80억 원이 남은 예산 65억 원을 넘어")
    assert "2024-07-31 18:00 KST 전에" in cheongju[-1]
    _pure(cheongju, "ko")
    assert not any(receipts[CHEONAN] in line or "천안" in line for line in cheongju)

    # 화성 (ko), not selected: skipped for the budget, the waitlist full.
    hwaseong = _explanation(_body(app, rows[HWASEONG]["id"], "not_selected"), "ko")
    assert hwaseong[-1] == (
        "미선정: 5위였으나 신청 국비 80억 원이 남은 예산 65억 원을 넘어 건너뛰었고, 예비 선정 2곳도 모두 찼습니다"
    )
    assert hwaseong[0].startswith(f"서면평가 점수 {table[HWASEONG]['written']}점: 평가위원 4명")  # 정위원 recused

    # The explanation replaces the one-line reason: a second rank counted over every ranked
    # application ("11개 기관 중 5위" beside "10개 기관 중 5위") would contradict it.
    body = _body(app, rows[HWASEONG]["id"], "not_selected")
    assert "사유:" not in body and "11개 기관 중" not in body

    # 창원 (ko), not selected after the slots and the waitlist were filled.
    changwon = _explanation(_body(app, rows[CHANGWON]["id"], "not_selected"), "ko")
    assert changwon[-1] == "미선정: 10개 기관 중 7위로, 선정 규모 3곳과 예비 선정 2곳이 모두 찼습니다"

    # 여수 (ko), below the minimum: not ranked among the qualified.
    y = table[YEOSU]
    yeosu = _explanation(_body(app, rows[YEOSU]["id"], "not_selected"), "ko")
    assert yeosu[3:] == [
        "순위: 선정 최저 점수 70점 미만 (최저 점수 이상 10개 기관, 미만 1개 기관)",
        f"선정 기준선: {cutoff}점 (선정 때 마지막으로 선정된 기관의 평가 점수)",
        f"미선정: 평가 점수 {y['score']}점이 선정 최저 점수 70점에 미치지 못합니다",
    ]
    assert y["score"] == "65.13"

    # 구미 (ko), selected at rank 6 after three budget skips: its own score is the cutoff.
    gumi = _explanation(_body(app, rows[GUMI]["id"], "selected"), "ko")
    assert gumi[-1] == "선정: 10개 기관 중 6위로, 선정 규모 3곳과 예산 범위 안에 들었습니다"
    assert f"= {cutoff}점" in gumi[2]

    # No notice names an evaluator, or shows a single sheet's total.
    with read(app.db) as conn:
        bodies = [
            f"{t}\n{h}"
            for t, h in conn.execute(
                sa.select(OUTBOX.c.body_text, OUTBOX.c.body_html).where(
                    OUTBOX.c.notice.in_(("selected", "waitlisted", "not_selected"))
                )
            )
        ]
        evaluators = conn.execute(sa.select(EVALUATOR.c.name, EVALUATOR.c.email)).all()
    assert len(bodies) == 11
    for body in bodies:
        for name, email in evaluators:
            assert name not in body and email not in body
    # Every two-decimal figure an explanation states is one of the ranking rows' aggregates;
    # 세종's dropped sheet totals (90 + 4 and 90 - 3 written) appear nowhere in its notice.
    aggregates = {
        str(v) for r in table.values() for k, v in r.items() if k in ("written", "presentation", "score") or ":" in k
    }
    for line in sejong + siheung + cheonan + cheongju + hwaseong + changwon + yeosu + gumi:
        assert set(re.findall(r"\d+\.\d\d", line)) <= aggregates, line
    sejong_body = _body(app, rows[SEJONG]["id"], "selected") + _html(app, rows[SEJONG]["id"], "selected")
    assert "94.00" not in sejong_body and "87.00" not in sejong_body

    # The HTML part carries the same lines.
    html = _html(app, rows[CHEONAN]["id"], "waitlisted")
    assert "How this result was reached" in html and "decided by the &#39;Feasibility of the plan&#39;" in html

    # 시흥 withdraws: 천안 (waitlist 1, 8 bn) fits the 8.5 bn freed and is promoted; 0.5 bn left.
    clock.set(kst("2024-07-01 10:00"))
    app.moves.apply(int(rows[SIHEUNG]["id"]), "withdraw", APPLICANT_ACTOR)
    assert sc.states(app)[CHEONAN] == "selected"
    promoted = _explanation(_body(app, rows[CHEONAN]["id"], "promoted"), "en")
    assert promoted[:-1] == cheonan[:-1]  # the figures of the selection, as the waitlisted notice gave them
    assert promoted[-1] == (
        "promoted from waitlist position 1: a selected applicant withdrew and freed its place;"
        " KRW 0.5 billion of the budget is left after this selection"
    )
    _pure(promoted, "en")
    with read(app.db) as conn:
        detail = conn.execute(sa.select(EVENT.c.detail).where(EVENT.c.kind == "selection")).scalar_one()
    figures = json.loads(detail)["figures"]  # the selection recorded the waitlisted ones' figures only
    assert sorted(figures) == sorted(str(rows[code]["id"]) for code in (CHEONAN, CHEONGJU))


def test_a_notice_s_figures_worked_out_again_from_the_score_rows(
    contest: App, clock: FixedClock, tmp_path: Path
) -> None:
    """화성's not_selected notice, recomputed from SCORE alone: each sheet's total, the mean of 4
    (no trim: 정위원 recused), the weighted score, the rank among the qualified, the cutoff."""
    app = contest
    _to_presentation_scores(app, clock, tmp_path)
    selection.select(app, sc.TRACK, OFFICE, confirm=True)
    rows = sc.apps(app)
    with read(app.db) as conn:
        sheets: dict[tuple[int, int, str], int] = defaultdict(int)
        for application_id, evaluator_id, part, points in conn.execute(
            sa.select(SCORE.c.application_id, SCORE.c.evaluator_id, SCORE.c.part, SCORE.c.points_x100)
        ):
            sheets[(int(application_id), int(evaluator_id), str(part))] += int(points)
        states = dict(conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state)).all())
    cent = Decimal("0.01")

    def part_score(application_id: int, part: str) -> tuple[Decimal, int]:
        totals = sorted(Decimal(p) / 100 for (a, _, q), p in sheets.items() if a == application_id and q == part)
        counted = totals[1:-1] if len(totals) >= 5 else totals
        return (sum(counted, Decimal(0)) / len(counted)).quantize(cent, ROUND_HALF_UP), len(totals)

    totals = {}
    for application_id in {a for a, _, _ in sheets}:
        written, _ = part_score(application_id, "written")
        presentation, _ = part_score(application_id, "presentation")
        totals[application_id] = (Decimal("0.4") * written + Decimal("0.6") * presentation).quantize(
            cent, ROUND_HALF_UP
        )
    hwaseong = int(rows[HWASEONG]["id"])
    written, written_sheets = part_score(hwaseong, "written")
    presentation, presentation_sheets = part_score(hwaseong, "presentation")
    total = totals[hwaseong]
    rank = 1 + sum(1 for t in totals.values() if t > total)
    qualified = sum(1 for t in totals.values() if t >= 70)
    cutoff = min(t for a, t in totals.items() if states[a] == "selected")

    lines = _explanation(_body(app, hwaseong, "not_selected"), "ko")
    assert lines[:5] == [
        f"서면평가 점수 {written}점: 평가위원 {written_sheets}명 점수의 평균",
        f"발표평가 점수 {presentation}점: 평가위원 {presentation_sheets}명 점수의 평균",
        f"평가 점수: 서면평가 {written}점 × 0.4 + 발표평가 {presentation}점 × 0.6 = {total}점",
        f"순위: 선정 최저 점수 70점 이상인 {qualified}개 기관 중 {rank}위 (최저 점수 미만 {len(totals) - qualified}개"
        " 기관)",
        f"선정 기준선: {cutoff}점 (선정 때 마지막으로 선정된 기관의 평가 점수)",
    ]
    assert (written_sheets, rank, qualified, str(cutoff)) == (4, 5, 10, "79.93")


def test_a_result_given_by_hand_has_no_explanation_block(contest: App, clock: FixedClock, tmp_path: Path) -> None:
    """The office corrects 구미's selection to the waitlist by hand: that notice explains nothing
    (no ranking decided it). Promoted later, 구미's notice gives the rule only: the selection
    recorded no figures for an application it selected."""
    app = contest
    _to_presentation_scores(app, clock, tmp_path)
    selection.select(app, sc.TRACK, OFFICE, confirm=True)
    rows = sc.apps(app)
    app.moves.apply(int(rows[GUMI]["id"]), "waitlist", OFFICE, "선정 정정")
    body = _body(app, rows[GUMI]["id"], "waitlisted")
    assert HEADING["ko"] not in body and "대기 순위: 3순위" in body
    clock.set(kst("2024-07-01 10:00"))
    for code in (CHEONAN, CHEONGJU):  # the two ahead of it on the waitlist leave
        app.moves.apply(int(rows[code]["id"]), "withdraw", APPLICANT_ACTOR)
    app.moves.apply(int(rows[SIHEUNG]["id"]), "withdraw", APPLICANT_ACTOR)
    assert sc.states(app)[GUMI] == "selected"
    promoted = _explanation(_body(app, rows[GUMI]["id"], "promoted"), "ko")
    assert promoted == [
        "추가 선정: 예비 선정 3순위였으며, 선정된 기관이 포기하여 생긴 자리에 선정되었습니다."
        " 이 선정 뒤 남은 예산: 85억 원"
    ]
