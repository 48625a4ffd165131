"""Eligibility at the preliminary review: each rule of a track at its boundary (pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest

from gongmo.states.eligibility import RULES, Check, Facts, Rules, check, failures, required_local

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
