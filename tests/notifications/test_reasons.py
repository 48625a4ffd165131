"""Reasons an applicant reads come from the catalogue in its language (issue 19, point 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

import tests.workflow.contest_2024 as sc
from gongmo.notifications import reasons
from gongmo.states.eligibility import RULES
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import review
from tests.conftest import kst
from tests.workflow import plans

ENGLISH = re.compile(
    r"eligibility|local_match|national_cap|national_min|population|kind|type|years?\b|required|won\b|"
    r"city|county|district|climate_crisis|rank|score|budget|slot|waitlist|minimum",
    re.IGNORECASE,
)
OVER_CAP = "41270"  # 안산: national share one won above 8,000,000,000
SHORT_LOCAL = "48250"  # 김해: local share one won below the national share
NO_TYPE = "41190"  # 부천: no project type


def test_the_catalogue_has_every_code_in_both_languages_with_the_same_values() -> None:
    assert reasons.check() == []
    assert {f"eligibility.{r}" for r in RULES} <= reasons.CATALOGUE.keys()


def test_a_broken_catalogue_is_found() -> None:
    reasons.CATALOGUE["broken"] = {"ko": "{a}", "en": "{b}"}
    try:
        assert reasons.check() == ["reason broken: ko names ['a'], en names ['b']"]
    finally:
        del reasons.CATALOGUE["broken"]


def test_selection_reasons_render_in_korean_without_english_words() -> None:
    why = [
        reasons.Reason(
            "selection.budget_skip",
            {"score": "81.50", "rank": 4, "of": 12, "national": 8_000_000_000, "left": 6_000_000_000},
        ),
        reasons.Reason("selection.waitlist_position", {"position": 1}),
    ]
    ko = reasons.render(why, "ko")
    assert ko == (
        "평가 점수 81.50점(12개 기관 중 4위)이나, 신청 국비 8,000,000,000원이 남은 예산 6,000,000,000원을 넘습니다;"
        " 예비 선정 대기 1순위입니다"
    )
    assert not ENGLISH.search(ko)
    assert "exceeds the 6,000,000,000 won left" in reasons.render(why, "en")
    below = reasons.Reason("selection.below_minimum", {"score": "65.20", "rank": 9, "of": 12, "minimum": "70"})
    assert not ENGLISH.search(reasons.render(below, "ko"))


@pytest.fixture
def disqualified(app: App, clock: FixedClock, tmp_path: Path) -> App:
    sc.prepare(app, clock, tmp_path)
    sc.receive_all(app, clock)
    plans.submit(app, sc.TRACK, OVER_CAP, 8_000_000_001, 8_000_000_001, sc.OFFICE, "안산 스마트도시", "climate_crisis")
    plans.submit(app, sc.TRACK, SHORT_LOCAL, 5_000_000_000, 4_999_999_999, sc.OFFICE, "김해", "local_extinction")
    plans.submit(app, sc.TRACK, NO_TYPE, 6_000_000_000, 6_000_000_000, sc.OFFICE, "부천", None)
    sc.at(app, clock, "2024-05-29 18:00")
    clock.set(kst("2024-06-03 10:00"))
    review.disqualify_failed(app, sc.TRACK, sc.OFFICE)
    return app


def _letters(app: App, code: str) -> tuple[str, str, str]:
    with read(app.db) as conn:
        row = conn.execute(
            sa.select(OUTBOX.c.body_text, OUTBOX.c.body_html, AUDIT.c.reason)
            .join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(AUDIT, (AUDIT.c.application_id == APPLICATION.c.id) & (AUDIT.c.trigger == "disqualify"))
            .where(APPLICANT.c.code == code, OUTBOX.c.notice == "disqualified")
        ).one()
    return row.body_text, row.body_html, row.reason


@pytest.mark.parametrize(
    ("code", "korean"),
    [
        (OVER_CAP, "국비 한도: 신청 국비 8,000,000,001원이 3년간 한도 8,000,000,000원을 넘습니다"),
        (
            SHORT_LOCAL,
            "지방비 매칭: 지방비 4,999,999,999원으로, 국비 대비 1:1 매칭에 필요한 5,000,000,000원 이상이어야 합니다",
        ),
        (
            NO_TYPE,
            "사업 유형: (선택 안 함)은(는) 이 유형에서 고를 수 있는 사업 유형"
            "(기후위기 대응형, 지역소멸 대응형)이 아닙니다",
        ),
    ],
)
def test_the_korean_disqualification_notice_names_the_failed_rule_in_korean(
    disqualified: App, code: str, korean: str
) -> None:
    text, html, audit_reason = _letters(disqualified, code)
    [line] = [ln for ln in text.splitlines() if "사유:" in ln]
    assert korean in line
    assert not ENGLISH.search(line.split("사유:", 1)[1]), line
    assert korean in html
    assert audit_reason.startswith("eligibility: ")  # the office's record keeps its own line


def test_a_plan_with_no_amounts_is_told_so_not_that_it_exceeds_the_cap() -> None:
    """A missing or zero amount fails the checklist (issue 19 point 7); its reason says what is missing."""
    from gongmo.states.eligibility import Facts

    sample = sc_rules()
    facts = Facts(
        kind="city", population=500_000, national_krw=0, local_krw=None, years=3, project_type="climate_crisis"
    )
    why = reasons.eligibility(sample, facts)
    assert [r.code for r in why] == ["eligibility.national_missing", "eligibility.local_missing"]
    ko = reasons.render(why, "ko")
    assert "넘습니다" not in ko and "신청 국비가 없습니다" in ko and not ENGLISH.search(ko)
    assert "none was requested" in reasons.render(why, "en")


def sc_rules():  # type: ignore[no-untyped-def]
    from gongmo.workflow.core.config import load
    from tests.conftest import CONFIG

    _, track = load(CONFIG).config.track(sc.TRACK)
    return review.rules_of(track)
