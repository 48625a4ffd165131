"""The applicant's reason for a failed rule on an answer (the 2022 side calls), in ko and en."""

from __future__ import annotations

from pathlib import Path

import pytest

from gongmo.notifications import reasons
from gongmo.states.eligibility import Facts, Rules
from gongmo.workflow.core.config import load
from gongmo.workflow.engine.checklist import rules_of

CONFIG = Path(__file__).resolve().parents[2] / "config.toml"


def track_rules(key: str) -> Rules:
    _, track = load(CONFIG).config.track(key)
    return rules_of(track)


def facts(**answers: object) -> Facts:
    """A city that passes every other rule of the side calls (1.0 bn national, 1:1)."""
    return Facts(kind="city", population=100_000, national_krw=10**9, local_krw=10**9, years=1, answers=answers)


def member(name: str, kind: str, brn: str) -> dict[str, str]:
    return {"name": name, "kind": kind, "brn": brn}


def test_a_consortium_without_a_university_is_told_which_kind_is_missing_in_each_language() -> None:
    rules = track_rules("public-private-2022")
    answers = facts(
        consortium=[
            member("성남시", "local_government", "129-83-00016"),
            member("가나", "private_company", "220-81-62517"),
        ],
        technology="자율주행 셔틀",
    )
    got = reasons.eligibility(rules, answers)
    assert [r.code for r in got] == ["eligibility.answer_members"]  # the only rule it fails: never an empty reason
    ko, en = reasons.render(got, "ko"), reasons.render(got, "en")
    assert "구성원 중 대학에 해당하는 기관이 없습니다" in ko and "컨소시엄 구성원" in ko
    assert "university" not in ko
    assert "no member is a university (required: local government, private company, university)" in en


@pytest.mark.parametrize(
    ("answers", "ko", "en"),
    [
        (
            {"living_lab": False},
            "답변 ‘아니오’은(는) 요건(‘예’)에 맞지 않습니다",
            "the answer 'no' does not meet it (required: 'yes')",
        ),
        ({}, "답변이 없습니다", "no answer was given"),
    ],
)
def test_a_living_lab_answered_no_or_not_at_all_is_told_so(answers: dict[str, object], ko: str, en: str) -> None:
    got = reasons.eligibility(track_rules("living-lab-2022"), facts(**answers))
    assert len(got) == 1
    assert ko in reasons.render(got, "ko") and "리빙랩을 운영하고 있거나" in reasons.render(got, "ko")
    assert en in reasons.render(got, "en") and "Does a living lab run" in reasons.render(got, "en")


def test_a_passing_answer_gives_no_reason() -> None:
    assert reasons.eligibility(track_rules("living-lab-2022"), facts(living_lab=True)) == []
