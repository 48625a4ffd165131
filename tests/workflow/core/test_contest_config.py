"""config.toml's document kinds, questions and answer rules (issue 21): the shipped
side calls, a track inheriting its contest's documents, and each refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from gongmo.workflow.core.config import ConfigError, load
from tests.conftest import CONFIG, config_copy

BN = 1_000_000_000


def shipped() -> str:
    return CONFIG.read_text(encoding="utf-8")


def test_every_track_expects_a_plan_and_a_budget_and_takes_up_to_ten_annexes() -> None:
    config = load(CONFIG).config
    for contest in config.contests:
        for track in contest.tracks:
            kinds = {d.kind: d for d in track.documents}
            assert set(kinds) == {"plan", "budget", "annex"}, track.key
            assert kinds["plan"].required and kinds["budget"].required and not kinds["annex"].required
            assert kinds["plan"].max_bytes == 50 * 1024 * 1024
            assert kinds["budget"].max_bytes == 20 * 1024 * 1024
            assert kinds["annex"].max_files == 10
            assert "hwp" in kinds["plan"].types and "xlsx" in kinds["budget"].types


def test_the_side_calls_have_the_release_figures_and_their_questions_and_rules() -> None:
    config = load(CONFIG).config
    contest, pp = config.track("public-private-2022")
    _, lab = config.track("living-lab-2022")
    assert contest.key == "scc-2022-demonstration"
    assert (pp.slots, pp.funding.national_cap_krw, pp.funding.budget_national_krw) == (10, 1.5 * BN, 15 * BN)
    assert (lab.slots, lab.funding.national_cap_krw, lab.funding.budget_national_krw) == (5, 1 * BN, 5 * BN)
    assert contest.national_budget_krw == 20 * BN
    consortium = next(q for q in pp.questions if q.key == "consortium")
    assert consortium.type == "members" and consortium.required
    assert set(consortium.member_kinds) == {"local_government", "private_company", "university"}
    (rule,) = pp.eligibility.answers
    assert (rule.question, rule.members_include) == ("consortium", consortium.member_kinds)
    (rule,) = lab.eligibility.answers
    assert (rule.question, rule.equals) == ("living_lab", True)
    assert next(q for q in lab.questions if q.key == "living_lab").type == "yes_no"


def test_a_track_with_its_own_documents_keeps_them(tmp_path: Path) -> None:
    hub_funding = "    [contests.tracks.funding]\n    national_cap_krw = 16_000_000_000"
    own = (
        '    [[contests.tracks.documents]]\n    kind = "plan"\n    name_ko = "계획서"\n    name_en = "Plan"\n'
        '    required = true\n    types = ["pdf"]\n    max_mb = 5\n\n'
    )
    assert shipped().count(hub_funding) == 1
    text = shipped().replace(hub_funding, own + hub_funding)
    config = load(config_copy(tmp_path, text=text)).config
    _, hub = config.track("hub-2024")
    _, small = config.track("strong-small-2024")
    assert [(d.kind, d.types, d.max_mb) for d in hub.documents] == [("plan", ["pdf"], 5)]
    assert [d.kind for d in small.documents] == ["plan", "budget", "annex"]


REFUSALS = {
    "unknown file type": (
        'types = ["pdf", "hwp", "hwpx", "docx"]',
        'types = ["pdf", "exe"]',
        "types",
    ),
    "answer rule on no question": (
        'question = "living_lab"\n      equals = true',
        'question = "living_lib"\n      equals = true',
        "no such question",
    ),
    "rule with both": (
        'question = "living_lab"\n      equals = true',
        'question = "living_lab"\n      equals = true\n      members_include = ["university"]',
        "exactly one of equals or members_include",
    ),
    "yes_no rule not a bool": (
        'question = "living_lab"\n      equals = true',
        'question = "living_lab"\n      equals = "yes"',
        "equals = true or false",
    ),
    "member kind not declared": (
        'members_include = ["local_government", "private_company", "university"]',
        'members_include = ["local_government", "hospital"]',
        "'hospital' is not in its member_kinds",
    ),
    "members question without kinds": (
        'member_kinds = ["local_government", "private_company", "university"]',
        "member_kinds = []",
        "needs member_kinds",
    ),
    "size zero": ("  max_mb = 20\n", "  max_mb = 0\n", "max_mb"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_document_kind_question_or_rule_is_refused_naming_it(tmp_path: Path, case: str) -> None:
    old, new, expected = REFUSALS[case]
    text = shipped()
    assert old in text, old
    with pytest.raises(ConfigError) as info:
        load(config_copy(tmp_path, text=text.replace(old, new, 1)))
    message = str(info.value)
    assert expected in message, message
    assert "\n" not in message.strip() or message.count("\n") < 3
