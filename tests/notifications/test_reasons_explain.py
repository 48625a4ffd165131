"""The explanation of a result notice in the catalogue (issue 22): every "explain." code in
both languages, Korean without English words and English without Korean, money shown as a
notice shows it, a reason kept as JSON and read back, and the block rendered only when given."""

from __future__ import annotations

import json
import re
import string
from decimal import Decimal

import pytest

from gongmo import defaults_dir
from gongmo.notifications import reasons
from gongmo.notifications.notices import NOTICES, RESULT_NOTICES, SAMPLE
from gongmo.notifications.render import Renderer

HANGUL = re.compile(r"[\uac00-\ud7a3]")
LATIN_WORD = re.compile(r"[A-Za-z]+")
EXPLAIN = sorted(code for code in reasons.CATALOGUE if code.startswith("explain."))
MONEY = {"national", "left"}
CRITERIA = {"feasibility": {"ko": "사업계획의 타당성", "en": "Feasibility of the plan"}}


def _values(code: str) -> dict[str, object]:
    """A value for each placeholder of a code, as the selection gives them."""
    names = {f for _, f, _, _ in string.Formatter().parse(reasons.CATALOGUE[code]["ko"]) if f}
    sample: dict[str, object] = {
        "part": "written",
        "tiebreak": reasons.tie_break_name("criterion:feasibility", CRITERIA),
        "until": "2024-07-31 18:00 KST",
        "mine": "27.40",
        "theirs": "26.80",
    }
    return {n: sample.get(n, 8_000_000_000 if n in MONEY else "83.93") for n in names}


@pytest.mark.parametrize("code", EXPLAIN)
def test_each_explanation_line_is_korean_in_ko_and_english_in_en(code: str) -> None:
    named = ("part",) if code.startswith("explain.part_") else ()
    reason = reasons.Reason(code, _values(code), named, tuple(MONEY & set(_values(code))))
    ko, en = reason.text("ko"), reason.text("en")
    assert set(LATIN_WORD.findall(ko)) <= {"KST"}, ko
    assert not HANGUL.search(en), en
    assert ko != en


def test_the_explanation_codes_cover_every_rule_and_figure() -> None:
    assert set(EXPLAIN) == {
        "explain.part_mean",
        "explain.part_trimmed",
        "explain.weighted",
        "explain.rank",
        "explain.rank_unqualified",
        "explain.cutoff",
        "explain.no_cutoff",
        "explain.tie",
        "explain.tie_same_second",
        "explain.tie_undecided",
        "explain.rule_selected",
        "explain.rule_below_minimum",
        "explain.rule_budget_skip",
        "explain.rule_slots_full",
        "explain.rule_waitlisted_budget",
        "explain.rule_waitlisted",
        "explain.rule_promoted_withdrawn",
        "explain.rule_promoted_cancelled",
    }


def test_money_in_an_explanation_is_shown_as_a_notice_shows_money() -> None:
    reason = reasons.Reason(
        "explain.rule_budget_skip",
        {"rank": 3, "national": 10_000_000_000, "left": 8_000_000_000, "waitlist": 2},
        money=("national", "left"),
    )
    assert reason.text("en") == (
        "not selected: rank 3 was skipped because its KRW 10.0 billion would exceed the KRW 8.0 billion of budget"
        " left, and the waitlist of 2 was full"
    )
    assert reason.text("ko") == (
        "미선정: 3위였으나 신청 국비 100억 원이 남은 예산 80억 원을 넘어 건너뛰었고, 예비 선정 2곳도 모두 찼습니다"
    )


def test_a_trimmed_part_names_the_part_and_the_counts_never_a_sheet() -> None:
    reason = reasons.Reason(
        "explain.part_trimmed", {"part": "presentation", "score": "85.00", "sheets": 5, "counted": 3}, ("part",)
    )
    assert reason.text("en") == (
        "presentation score 85.00: the trimmed mean of 5 sheets, the highest and the lowest dropped (3 counted)"
    )
    assert reason.text("ko").startswith("발표평가 점수 85.00점: 평가위원 5명 점수 중 최고점과 최저점을 뺀 3명")


def test_a_tie_break_is_named_in_each_language() -> None:
    assert reasons.tie_break_name("criterion:feasibility", CRITERIA) == {
        "ko": "「사업계획의 타당성」 항목 점수",
        "en": "the 'Feasibility of the plan' criterion score",
    }
    assert reasons.tie_break_name("written", CRITERIA) == {"ko": "서면평가 점수", "en": "the written score"}
    assert reasons.tie_break_name("receipt", CRITERIA)["en"] == "the earlier receipt"
    # a criterion the config does not name any more: its key, rather than nothing
    assert reasons.tie_break_name("criterion:gone", CRITERIA)["en"] == "the 'gone' criterion score"
    tie = reasons.Reason(
        "explain.tie",
        {"score": "83.93", "others": 1, "tiebreak": reasons.tie_break_name("criterion:feasibility", CRITERIA),
         "mine": "27.40", "theirs": "26.80"},
    )  # fmt: skip
    assert tie.text("en") == (
        "tied at 83.93 with 1 other application(s); decided by the 'Feasibility of the plan' criterion score"
        " (27.40 to 26.80)"
    )


def test_a_reason_kept_as_json_reads_back_the_same() -> None:
    reason = reasons.Reason(
        "explain.tie",
        {"score": Decimal("83.93"), "others": 1, "tiebreak": {"ko": "서면평가 점수", "en": "the written score"},
         "mine": "82.00", "theirs": "80.00"},
    )  # fmt: skip
    back = reasons.Reason.from_plain(json.loads(json.dumps(reason.plain())))
    assert back.text("ko") == reason.text("ko") and back.text("en") == reason.text("en")
    money = reasons.Reason("explain.rule_promoted_cancelled", {"position": 2, "left": 500_000_000}, money=("left",))
    assert (
        reasons.Reason.from_plain(json.loads(json.dumps(money.plain())))
        .text("en")
        .endswith("KRW 0.5 billion of the budget is left after this selection")
    )


def test_a_kept_reason_with_an_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'explain\.gone' is not in the catalogue"):
        reasons.Reason.from_plain({"code": "explain.gone", "values": {}})


def test_lines_gives_one_line_per_reason_in_the_language() -> None:
    items = [reasons.Reason("explain.no_cutoff"), reasons.Reason("explain.cutoff", {"cutoff": "79.93"})]
    assert reasons.lines(items, "en") == [
        "cutoff: none (no application was selected)",
        "cutoff: 79.93, the committee score of the last application selected at the selection",
    ]
    assert reasons.lines(items, "fr") == reasons.lines(items, "ko")


@pytest.mark.parametrize("notice", sorted(RESULT_NOTICES))
@pytest.mark.parametrize("language", ["ko", "en"])
def test_each_result_notice_shows_its_explanation_only_when_it_has_lines(notice: str, language: str) -> None:
    assert "explanation" in NOTICES[notice].variables
    renderer = Renderer(defaults_dir() / "templates")
    heading = {"ko": "평가 결과 설명", "en": "How this result was reached"}[language]
    values = {k: SAMPLE[k] for k in NOTICES[notice].allowed}
    lines = ["first line of the explanation", "second <line>"]
    shown = renderer.render(notice, language, {**values, "explanation": lines}, "Asia/Seoul")
    assert f"{heading}:\n  - first line of the explanation\n  - second <line>\n" in shown.text
    assert heading in shown.html and "<li" in shown.html and "second &lt;line&gt;" in shown.html
    hidden = renderer.render(notice, language, {**values, "explanation": []}, "Asia/Seoul")
    assert heading not in hidden.text and heading not in hidden.html
    assert "\n\n\n" not in hidden.text  # no blank lines left where the block would be


def test_the_sample_renders_in_every_template() -> None:
    assert Renderer(defaults_dir() / "templates").check() == []
    # the check renders each result notice with SAMPLE's explanation lines
    assert isinstance(SAMPLE["explanation"], list) and SAMPLE["explanation"]
