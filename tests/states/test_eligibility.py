"""Eligibility at the preliminary review: each rule of a track at its boundary (pure, no database)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction

import pytest

from gongmo.states.eligibility import (
    ANSWER_PREFIX,
    RULES,
    Check,
    Facts,
    Rules,
    answer_rule,
    check,
    failures,
    required_local,
)

# The 2024 strong-and-small track (강소형 스마트도시), as in config.toml.
STRONG_SMALL = Rules(
    kinds=frozenset({"special_self_governing_city", "special_self_governing_province", "city", "county", "district"}),
    national_cap_krw=8_000_000_000,
    years=3,
    local_match_ratio=Fraction(1),
    population_below=1_000_000,
    types=("climate_crisis", "local_extinction"),
)

# The 2024 hub track (거점형): no population cap, no types, districts not admitted.
HUB = Rules(
    kinds=frozenset(
        {
            "special_city",
            "metropolitan_city",
            "special_self_governing_city",
            "special_self_governing_province",
            "city",
            "county",
        }
    ),
    national_cap_krw=16_000_000_000,
    years=3,
    local_match_ratio=Fraction(1),
)

# The 2024 diffusion track (스마트솔루션 확산): a national minimum of 1 bn, a cap of 2 bn, one year.
DIFFUSION = Rules(
    kinds=frozenset({"city", "county", "district"}),
    national_cap_krw=2_000_000_000,
    years=1,
    national_min_krw=1_000_000_000,
    local_match_ratio=Fraction(1),
    population_below=300_000,
)

# An application that passes every rule of the strong-and-small track.
GOOD = Facts(
    kind="city",
    population=500_000,
    national_krw=8_000_000_000,
    local_krw=8_000_000_000,
    years=3,
    project_type="climate_crisis",
)


def by_rule(checks: list[Check]) -> dict[str, Check]:
    return {c.rule: c for c in checks}


def result_of(rules: Rules, facts: Facts, rule: str) -> bool:
    return by_rule(check(rules, facts))[rule].passed


def test_a_good_application_passes_every_rule_in_the_fixed_order() -> None:
    checks = check(STRONG_SMALL, GOOD)
    assert [c.rule for c in checks] == ["kind", "population", "national_cap", "years", "local_match", "type"]
    assert all(c.passed for c in checks)
    assert failures(checks) == ""


def test_the_checklist_order_follows_the_declared_rules_order() -> None:
    checks = check(replace(STRONG_SMALL, national_min_krw=1), GOOD)
    assert [c.rule for c in checks] == list(RULES)


# --------------------------------------------------------------------------
# population
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("population", "passed"),
    [(999_999, True), (1_000_000, False), (1_000_001, False)],
)
def test_the_population_cap_is_strict(population: int, passed: bool) -> None:
    assert result_of(STRONG_SMALL, replace(GOOD, population=population), "population") is passed


def test_the_population_check_shows_the_value_and_the_cap_with_thousands_separators() -> None:
    line = by_rule(check(STRONG_SMALL, replace(GOOD, population=1_000_000)))["population"]
    assert line.value == "1,000,000"
    assert line.expected == "below 1,000,000"


def test_a_track_without_a_population_cap_has_no_population_rule() -> None:
    facts = replace(GOOD, population=50_000_000)
    checks = check(HUB, facts)
    assert "population" not in by_rule(checks)
    assert all(c.passed for c in checks)


# --------------------------------------------------------------------------
# kind
# --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["city", "county", "special_city", "metropolitan_city"])
def test_a_kind_the_hub_track_admits_passes(kind: str) -> None:
    assert result_of(HUB, replace(GOOD, kind=kind), "kind") is True


def test_a_district_fails_the_hub_track_and_the_check_lists_the_admitted_kinds() -> None:
    line = by_rule(check(HUB, replace(GOOD, kind="district")))["kind"]
    assert line.passed is False
    assert line.value == "district"
    assert line.expected == (
        "one of city, county, metropolitan_city, special_city,"
        " special_self_governing_city, special_self_governing_province"
    )


def test_a_district_passes_the_strong_and_small_track() -> None:
    assert result_of(STRONG_SMALL, replace(GOOD, kind="district"), "kind") is True


# --------------------------------------------------------------------------
# national cap and minimum
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("national", "passed"),
    [(8_000_000_000, True), (8_000_000_001, False), (7_999_999_999, True)],
)
def test_the_national_cap_admits_exactly_the_cap(national: int, passed: bool) -> None:
    facts = replace(GOOD, national_krw=national, local_krw=national)
    assert result_of(STRONG_SMALL, facts, "national_cap") is passed


def test_the_national_cap_check_names_the_cap_over_the_years() -> None:
    line = by_rule(check(STRONG_SMALL, replace(GOOD, national_krw=8_000_000_001)))["national_cap"]
    assert line.value == "8,000,000,001 won"
    assert line.expected == "at most 8,000,000,000 won over 3 year(s)"


@pytest.mark.parametrize(
    ("national", "passed"),
    [(1_000_000_000, True), (999_999_999, False), (1_000_000_001, True)],
)
def test_the_national_minimum_admits_exactly_the_minimum(national: int, passed: bool) -> None:
    facts = Facts(kind="county", population=100_000, national_krw=national, local_krw=national, years=1)
    line = by_rule(check(DIFFUSION, facts))["national_min"]
    assert line.passed is passed
    assert line.expected == "at least 1,000,000,000 won"


def test_a_track_without_a_national_minimum_has_no_minimum_rule() -> None:
    assert STRONG_SMALL.national_min_krw == 0
    facts = replace(GOOD, national_krw=1, local_krw=1)
    assert "national_min" not in by_rule(check(STRONG_SMALL, facts))


# --------------------------------------------------------------------------
# years
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("years", "passed"), [(0, False), (1, True), (2, True), (3, True), (4, False)])
def test_the_years_run_from_one_to_the_programs_years(years: int, passed: bool) -> None:
    line = by_rule(check(STRONG_SMALL, replace(GOOD, years=years)))["years"]
    assert line.passed is passed
    assert line.value == f"{years} year(s)"
    assert line.expected == "1 to 3 year(s)"


# --------------------------------------------------------------------------
# local match
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "passed"),
    [(8_000_000_000, True), (7_999_999_999, False), (8_000_000_001, True)],
)
def test_a_one_to_one_match_needs_the_local_share_to_equal_the_national(local: int, passed: bool) -> None:
    line = by_rule(check(STRONG_SMALL, replace(GOOD, local_krw=local)))["local_match"]
    assert line.passed is passed
    assert line.expected == "at least 8,000,000,000 won (local:national = 1:1)"


def test_required_local_rounds_a_fractional_share_up_to_the_won() -> None:
    assert required_local(3, Fraction(1, 2)) == 2
    assert required_local(4, Fraction(1, 2)) == 2
    assert required_local(8_000_000_000, Fraction(1)) == 8_000_000_000
    assert required_local(10, Fraction(1, 3)) == 4


@pytest.mark.parametrize(("local", "passed"), [(2, True), (1, False)])
def test_a_half_match_on_an_odd_national_amount_needs_the_rounded_up_share(local: int, passed: bool) -> None:
    rules = replace(STRONG_SMALL, local_match_ratio=Fraction(1, 2))
    line = by_rule(check(rules, replace(GOOD, national_krw=3, local_krw=local)))["local_match"]
    assert line.passed is passed
    assert line.expected == "at least 2 won (local:national = 1:2)"


# --------------------------------------------------------------------------
# type
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project_type", "passed", "shown"),
    [
        ("climate_crisis", True, "climate_crisis"),
        ("local_extinction", True, "local_extinction"),
        (None, False, "(none chosen)"),
        ("tourism", False, "tourism"),
    ],
)
def test_a_track_with_types_needs_one_of_them(project_type: str | None, passed: bool, shown: str) -> None:
    line = by_rule(check(STRONG_SMALL, replace(GOOD, project_type=project_type)))["type"]
    assert line.passed is passed
    assert line.value == shown
    assert line.expected == "one of climate_crisis, local_extinction"


def test_a_track_without_types_has_no_type_rule() -> None:
    checks = check(HUB, replace(GOOD, project_type=None))
    assert "type" not in by_rule(checks)
    assert all(c.passed for c in checks)


# --------------------------------------------------------------------------
# failures() and Check.line()
# --------------------------------------------------------------------------


def test_failures_joins_only_the_failed_checks_with_value_and_requirement() -> None:
    facts = replace(GOOD, population=1_200_000, local_krw=7_000_000_000, project_type=None)
    checks = check(STRONG_SMALL, facts)
    assert [c.rule for c in checks if not c.passed] == ["population", "local_match", "type"]
    assert failures(checks) == (
        "population: 1,200,000 (required: below 1,000,000); "
        "local_match: 7,000,000,000 won (required: at least 8,000,000,000 won (local:national = 1:1)); "
        "type: (none chosen) (required: one of climate_crisis, local_extinction)"
    )


def test_check_line_marks_a_pass_and_a_failure() -> None:
    passed = Check("years", True, "3 year(s)", "1 to 3 year(s)")
    failed = Check("years", False, "4 year(s)", "1 to 3 year(s)")
    assert passed.line() == "pass years: 3 year(s) (required: 1 to 3 year(s))"
    assert failed.line() == "FAIL years: 4 year(s) (required: 1 to 3 year(s))"


# -- a missing or zero amount never passes (issue 19, point 7) ------------------------------------


@pytest.mark.parametrize(
    ("national", "local", "national_value", "local_value"),
    [
        (0, 0, "0 won", "0 won"),
        (None, None, "(none)", "(none)"),
        (0, 8_000_000_000, "0 won", "8,000,000,000 won"),
        (None, 8_000_000_000, "(none)", "8,000,000,000 won"),
    ],
)
def test_a_missing_or_zero_national_share_fails_with_a_clear_line(
    national: int | None, local: int | None, national_value: str, local_value: str
) -> None:
    checks = by_rule(check(STRONG_SMALL, replace(GOOD, national_krw=national, local_krw=local)))
    cap = checks["national_cap"]
    assert not cap.passed
    assert (
        cap.line()
        == f"FAIL national_cap: {national_value} (required: more than 0, at most 8,000,000,000 won over 3 year(s))"
    )
    assert checks["local_match"].value == local_value
    if local is None or local == 0:
        assert not checks["local_match"].passed
    assert "national_cap" in failures(list(checks.values()))


@pytest.mark.parametrize("local", [0, None])
def test_a_missing_or_zero_local_share_fails_when_the_track_needs_a_match(local: int | None) -> None:
    checks = by_rule(check(STRONG_SMALL, replace(GOOD, local_krw=local)))
    line = checks["local_match"].line()
    assert not checks["local_match"].passed
    assert line.startswith(f"FAIL local_match: {'0 won' if local == 0 else '(none)'} (required: at least 8,000,000,000")
    assert [c.rule for c in checks.values() if not c.passed] == ["local_match"]


def test_a_track_without_a_match_takes_a_zero_local_share_but_not_a_missing_one() -> None:
    no_match = replace(STRONG_SMALL, local_match_ratio=Fraction(0))
    assert by_rule(check(no_match, replace(GOOD, local_krw=0)))["local_match"].passed
    assert not by_rule(check(no_match, replace(GOOD, local_krw=None)))["local_match"].passed


# -- rules on answers (issue 21) ------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """A question shaped as the config's (duck-typed: states/questions.py QuestionSpec)."""

    key: str
    type: str
    text_ko: str = "질문"
    text_en: str = "A question"
    required: bool = True
    max_length: int = 2000
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    options: tuple[str, ...] = ()
    member_kinds: tuple[str, ...] = ()
    max_members: int = 20


@dataclass(frozen=True)
class AnswerRule:
    question: str
    equals: bool | str | int | None = None
    members_include: tuple[str, ...] = ()


KINDS = ("local_government", "private_company", "university")
CONSORTIUM = Question("consortium", "members", member_kinds=KINDS)
LIVING_LAB = Question("living_lab", "yes_no")
# The 2022 side calls: a public-private demonstration needs all three kinds; a living lab runs or is planned.
SIDE_CALL = replace(
    HUB,
    questions=(CONSORTIUM, LIVING_LAB),
    answer_rules=(AnswerRule("consortium", members_include=KINDS), AnswerRule("living_lab", equals=True)),
)
MEMBERS = [
    {"name": "화성시", "kind": "local_government", "brn": "220-81-62517"},
    {"name": "Samsung", "kind": "private_company", "brn": "124-81-00998"},
    {"name": "서울대학교", "kind": "university", "brn": "119-82-03684"},
]
ANSWERED = replace(GOOD, answers={"consortium": MEMBERS, "living_lab": True})


def test_answer_rules_follow_the_fixed_rules_in_the_configs_order_and_pass() -> None:
    checks = check(SIDE_CALL, ANSWERED)
    assert [c.rule for c in checks] == [
        "kind",
        "national_cap",
        "years",
        "local_match",
        "answer:consortium",
        "answer:living_lab",
    ]
    assert all(c.passed for c in checks)
    assert answer_rule("consortium") == ANSWER_PREFIX + "consortium"


def test_a_consortium_with_all_three_kinds_passes_and_shows_its_members() -> None:
    line = by_rule(check(SIDE_CALL, ANSWERED))["answer:consortium"]
    assert line.line() == (
        "pass answer:consortium: 3 members: local_government 1, private_company 1, university 1"
        " (required: members include local_government, private_company, university)"
    )


def test_a_consortium_without_a_university_fails_with_the_value_shown() -> None:
    facts = replace(ANSWERED, answers={"consortium": [*MEMBERS[:2], {**MEMBERS[0], "brn": "2"}], "living_lab": True})
    checks = check(SIDE_CALL, facts)
    line = by_rule(checks)["answer:consortium"]
    assert not line.passed
    assert line.value == "3 members: local_government 2, private_company 1"
    assert failures(checks) == (
        "answer:consortium: 3 members: local_government 2, private_company 1"
        " (required: members include local_government, private_company, university)"
    )


@pytest.mark.parametrize(
    ("answers", "passed", "value"),
    [
        ({"living_lab": True}, True, "yes"),
        ({"living_lab": False}, False, "no"),
        ({}, False, "(no answer)"),
        ({"living_lab": None}, False, "(no answer)"),
    ],
)
def test_a_living_lab_rule_passes_on_yes_and_fails_on_no_or_no_answer(
    answers: dict[str, object], passed: bool, value: str
) -> None:
    line = by_rule(check(SIDE_CALL, replace(ANSWERED, answers={"consortium": MEMBERS, **answers})))
    assert line["answer:living_lab"].passed is passed
    assert line["answer:living_lab"].value == value
    assert line["answer:living_lab"].expected == "= yes"


def test_an_unanswered_consortium_fails() -> None:
    line = by_rule(check(SIDE_CALL, replace(ANSWERED, answers={"living_lab": True})))["answer:consortium"]
    assert (line.passed, line.value) == (False, "(no answer)")


def test_an_equals_rule_written_as_a_word_or_a_string_number_is_read_as_an_answer_is() -> None:
    sites = Question("sites", "number")
    rules = replace(
        HUB,
        questions=(LIVING_LAB, sites),
        answer_rules=(AnswerRule("living_lab", equals="yes"), AnswerRule("sites", equals="3")),
    )
    checks = by_rule(check(rules, replace(GOOD, answers={"living_lab": True, "sites": 3})))
    assert checks["answer:living_lab"].passed and checks["answer:living_lab"].expected == "= yes"
    assert checks["answer:sites"].passed and checks["answer:sites"].expected == "= 3"
    checks = by_rule(check(rules, replace(GOOD, answers={"living_lab": 1, "sites": True})))
    assert not checks["answer:living_lab"].passed  # 1 is not yes
    assert not checks["answer:sites"].passed  # true is not 1


def test_a_choice_rule_needs_that_option_and_a_choices_rule_needs_it_among_the_chosen() -> None:
    field_ = Question("field", "choice", options=("mobility", "energy"))
    fields = Question("fields", "choices", options=("mobility", "energy"))
    rules = replace(
        HUB,
        questions=(field_, fields),
        answer_rules=(AnswerRule("field", equals="energy"), AnswerRule("fields", equals="energy")),
    )
    checks = by_rule(check(rules, replace(GOOD, answers={"field": "energy", "fields": ["mobility", "energy"]})))
    assert checks["answer:field"].passed and checks["answer:field"].expected == "= energy"
    assert checks["answer:fields"].passed and checks["answer:fields"].expected == "includes energy"
    checks = by_rule(check(rules, replace(GOOD, answers={"field": "mobility", "fields": ["mobility"]})))
    assert not checks["answer:field"].passed and not checks["answer:fields"].passed


def test_rules_and_facts_stay_hashable_with_list_valued_answers() -> None:
    assert hash(SIDE_CALL) == hash(replace(SIDE_CALL))
    assert replace(SIDE_CALL) == SIDE_CALL and SIDE_CALL != HUB
    assert hash(ANSWERED) == hash(replace(ANSWERED))
    assert Facts(kind="city", population=1, national_krw=1, local_krw=1, years=1).answers == {}
    assert SIDE_CALL.texts["answer:consortium"] == "members include local_government, private_company, university"
