"""Committee scores: sheets, aggregates, weights and the ranking with its tie-breaks (pure, no database)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from gongmo.states.errors import InvalidInput
from gongmo.states.scoring import (
    Criterion,
    Entry,
    Method,
    PartScore,
    Sheet,
    Weights,
    aggregate,
    check_sheet,
    check_tie_breaks,
    decisive,
    parse_points,
    part_score,
    rank,
    round2,
)

SEOUL = ZoneInfo("Asia/Seoul")
D = Decimal

CRITERIA = (
    Criterion("feasibility", D(30)),
    Criterion("innovation", D(20)),
    Criterion("participation", D(20)),
    Criterion("budget", D(15)),
    Criterion("effect", D(15)),
)
KEYS = [c.key for c in CRITERIA]
WEIGHTS = Weights(written=D("0.4"), presentation=D("0.6"))
ALL_BREAKS = ("criterion:feasibility", "written", "presentation", "receipt")


def points(feasibility: str, innovation: str, participation: str, budget: str, effect: str) -> dict[str, Decimal]:
    return dict(zip(KEYS, map(D, (feasibility, innovation, participation, budget, effect)), strict=True))


def sheet(evaluator: str, part: str, *values: str) -> Sheet:
    return Sheet(evaluator, part, points(*values))


def one_sheet_part(part: str, *values: str) -> PartScore:
    """A part scored by a single evaluator, so its score is the sheet's total."""
    return part_score([sheet("e1@x", part, *values)], part, "mean")


def entry(
    application_id: int,
    label: str,
    written: tuple[str, ...],
    presentation: tuple[str, ...],
    submitted_at: str = "2024-05-28 10:00",
) -> Entry:
    return Entry(
        application_id=application_id,
        label=label,
        submitted_at=datetime.fromisoformat(submitted_at).replace(tzinfo=SEOUL),
        national_krw=8_000_000_000,
        written=one_sheet_part("written", *written),
        presentation=one_sheet_part("presentation", *presentation),
    )


# --------------------------------------------------------------------------
# aggregate and round2
# --------------------------------------------------------------------------


def test_the_plain_mean_of_four_values() -> None:
    assert aggregate([D(80), D(70), D(90), D("85.5")], "mean") == (D("81.375"), ())


def test_a_trimmed_mean_of_four_values_is_the_plain_mean_and_drops_nothing() -> None:
    values = [D(80), D(70), D(90), D("85.5")]
    assert aggregate(values, "trimmed_mean") == aggregate(values, "mean") == (D("81.375"), ())


def test_a_trimmed_mean_of_five_drops_one_lowest_and_one_highest() -> None:
    value, dropped = aggregate([D(80), D(60), D(95), D(70), D(90)], "trimmed_mean")
    assert dropped == (D(60), D(95))
    assert value == D(80)  # (70 + 80 + 90) / 3


def test_the_plain_mean_of_five_drops_nothing() -> None:
    assert aggregate([D(80), D(60), D(95), D(70), D(90)], "mean") == (D(79), ())


def test_a_trimmed_mean_drops_only_one_of_each_duplicated_extreme() -> None:
    value, dropped = aggregate([D(90), D(90), D(80), D(70), D(70)], "trimmed_mean")
    assert dropped == (D(70), D(90))
    assert value == D(80)  # (70 + 80 + 90) / 3


def test_aggregate_refuses_no_values() -> None:
    with pytest.raises(ValueError, match="no values"):
        aggregate([], "mean")


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("84.125", "84.13"),
        ("84.124999", "84.12"),
        ("84.115", "84.12"),
        ("84.135", "84.14"),
        ("84", "84.00"),
    ],
)
def test_round2_rounds_half_up_to_two_decimals(value: str, rounded: str) -> None:
    result = round2(D(value))
    assert result == D(rounded)
    assert str(result) == rounded


# --------------------------------------------------------------------------
# parse_points and check_sheet
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("22.5", "22.5"), ("22", "22"), (" 7.25 ", "7.25"), ("0", "0")])
def test_parse_points_accepts_plain_numbers_with_at_most_two_decimals(text: str, value: str) -> None:
    assert parse_points(text, "feasibility") == D(value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("abc", "not a number"),
        ("22.555", "at most two decimals"),
        ("NaN", "not a number"),
        ("1e1", "not a number"),
        ("\u0662\u0662", "not a number"),  # Arabic-Indic digits: Decimal would read them as 22
        ("\uff12\uff12.5", "not a number"),  # full-width digits
    ],
)
def test_parse_points_refuses_what_is_not_a_plain_number_naming_the_criterion(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_points(text, "innovation")
    message = str(refused.value)
    assert message.startswith(f"innovation = {text!r}: ")
    assert says in message


def test_a_full_valid_sheet_passes_check_sheet() -> None:
    check_sheet(CRITERIA, points("30", "0", "12.5", "15", "7.25"))


def test_check_sheet_refuses_a_missing_criterion() -> None:
    sheet_points = points("25", "15", "15", "10", "10")
    del sheet_points["effect"]
    with pytest.raises(InvalidInput) as refused:
        check_sheet(CRITERIA, sheet_points)
    message = str(refused.value)
    assert "criterion 'effect' has no points" in message
    assert "effect (0-15)" in message


def test_check_sheet_refuses_an_unknown_criterion() -> None:
    sheet_points = {**points("25", "15", "15", "10", "10"), "beauty": D(5)}
    with pytest.raises(InvalidInput) as refused:
        check_sheet(CRITERIA, sheet_points)
    message = str(refused.value)
    assert "unknown criterion 'beauty'" in message
    assert "(criteria: feasibility (0-30), innovation (0-20), participation (0-20), budget (0-15), effect (0-15))" in (
        message
    )


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (("30.01", "15", "15", "10", "10"), "feasibility = 30.01: out of range, give 0 to 30"),
        (("25", "-1", "15", "10", "10"), "innovation = -1: out of range, give 0 to 20"),
        (("25", "15", "15", "15.5", "10"), "budget = 15.5: out of range, give 0 to 15"),
    ],
)
def test_check_sheet_refuses_a_value_outside_the_criterions_range(values: tuple[str, ...], problem: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_sheet(CRITERIA, points(*values))
    assert problem in str(refused.value)


@pytest.mark.parametrize("edge", ["0", "30"])
def test_check_sheet_accepts_the_ends_of_the_range(edge: str) -> None:
    check_sheet(CRITERIA, points(edge, "20", "0", "15", "0"))


# --------------------------------------------------------------------------
# part_score
# --------------------------------------------------------------------------

FIVE_WRITTEN = [
    sheet("a@x", "written", "28", "18", "17", "13", "14"),  # 90
    sheet("b@x", "written", "25", "15", "15", "12", "13"),  # 80
    sheet("c@x", "written", "20", "14", "14", "11", "11"),  # 70
    sheet("d@x", "written", "18", "12", "12", "9", "9"),  # 60
    sheet("e@x", "written", "27", "17", "16", "12", "13"),  # 85
    sheet("a@x", "presentation", "30", "20", "20", "15", "15"),  # another part: ignored
]


def test_a_part_score_of_five_is_the_rounded_trimmed_mean_of_the_sheet_totals() -> None:
    score = part_score(FIVE_WRITTEN, "written", "trimmed_mean")
    assert score.evaluators == 5
    assert score.totals == (D(90), D(85), D(80), D(70), D(60))
    assert score.dropped == (D(60), D(90))
    assert score.score == D("78.33")  # (70 + 80 + 85) / 3 = 78.333...
    assert score.how == "trimmed mean of 5 (dropped 60.00 and 90.00)"


def test_a_part_score_aggregates_each_criterion_the_same_way() -> None:
    score = part_score(FIVE_WRITTEN, "written", "trimmed_mean")
    assert score.criteria == {
        "budget": D("11.67"),  # 13 12 11 9 12 -> 11 12 12
        "effect": D("12.33"),  # 14 13 11 9 13 -> 11 13 13
        "feasibility": D("24.00"),  # 28 25 20 18 27 -> 20 25 27
        "innovation": D("15.33"),  # 18 15 14 12 17 -> 14 15 17
        "participation": D("15.00"),  # 17 15 14 12 16 -> 14 15 16
    }


def test_a_part_score_with_the_plain_mean_drops_nothing() -> None:
    score = part_score(FIVE_WRITTEN, "written", "mean")
    assert score.dropped == ()
    assert score.score == D("77.00")
    assert score.criteria["feasibility"] == D("23.60")
    assert score.how == "mean of 5"


def test_a_part_score_of_four_with_trimmed_mean_is_the_mean_of_four() -> None:
    score = part_score(FIVE_WRITTEN[:4], "written", "trimmed_mean")
    assert score.evaluators == 4
    assert score.dropped == ()
    assert score.score == D("75.00")
    assert score.how == "mean of 4"


def test_a_part_score_is_rounded_half_up() -> None:
    sheets = [
        sheet("a@x", "presentation", "25", "15", "15", "10", "10.25"),  # 75.25
        sheet("b@x", "presentation", "25", "15", "15", "10", "10"),  # 75
    ]
    score = part_score(sheets, "presentation", "mean")
    assert score.score == D("75.13")  # 75.125 half up
    assert score.criteria["effect"] == D("10.13")


def test_a_part_without_sheets_is_refused() -> None:
    with pytest.raises(ValueError, match="no presentation sheets"):
        part_score(FIVE_WRITTEN[:5], "presentation", "mean")


# --------------------------------------------------------------------------
# weights and totals
# --------------------------------------------------------------------------


def test_weights_combine_and_round_half_up() -> None:
    assert WEIGHTS.combine(D(80), D(90)) == D("86.00")
    assert WEIGHTS.combine(D("84.13"), D("77.77")) == D("80.31")  # 33.652 + 46.662 = 80.314
    assert WEIGHTS.combine(D("80.01"), D("80.01")) == D("80.01")
    assert WEIGHTS.combine(D("0.05"), D("0.00")) == D("0.02")  # 0.020
    assert WEIGHTS.combine(D("0.00"), D("0.0125")) == D("0.01")  # 0.0075 -> 0.01


def test_an_entry_total_weighs_its_rounded_part_scores() -> None:
    e = entry(1, "R-1", ("25", "15", "15", "12", "13"), ("28", "18", "17", "13", "14"))
    assert e.written.score == D("80.00")
    assert e.presentation.score == D("90.00")
    assert e.total(WEIGHTS) == D("86.00")
    assert e.criterion("feasibility", WEIGHTS) == D("26.80")  # 0.4 * 25 + 0.6 * 28
    assert e.criterion("unknown", WEIGHTS) == D("0.00")


# --------------------------------------------------------------------------
# rank
# --------------------------------------------------------------------------


def test_rank_puts_the_highest_total_first() -> None:
    low = entry(1, "R-1", ("20", "10", "10", "10", "10"), ("20", "10", "10", "10", "10"))  # 60
    high = entry(2, "R-2", ("28", "18", "17", "13", "14"), ("28", "18", "17", "13", "14"))  # 90
    mid = entry(3, "R-3", ("25", "15", "15", "12", "13"), ("25", "15", "15", "12", "13"))  # 80
    ranked = rank([low, high, mid], WEIGHTS, ALL_BREAKS, D(60))
    assert [(r.rank, r.entry.label, r.total) for r in ranked] == [
        (1, "R-2", D("90.00")),
        (2, "R-3", D("80.00")),
        (3, "R-1", D("60.00")),
    ]
    assert [r.tie for r in ranked] == [None, None, None]
    assert ranked[0].keys == (
        ("criterion:feasibility", "28.00"),
        ("written", "90.00"),
        ("presentation", "90.00"),
        ("receipt", "2024-05-28 10:00:00 KST"),
    )


def test_a_tie_is_broken_by_the_named_criterion() -> None:
    # Both total 80 in each part; the first has feasibility 25, the second 28.
    # The one with more feasibility has the higher id and the later receipt,
    # so only the criterion can put it first.
    less = entry(1, "R-1", ("25", "15", "15", "12", "13"), ("25", "15", "15", "12", "13"), "2024-05-27 09:00")
    more = entry(2, "R-2", ("28", "12", "15", "12", "13"), ("28", "12", "15", "12", "13"), "2024-05-29 17:00")
    ranked = rank([less, more], WEIGHTS, ALL_BREAKS, D(60))
    assert [r.entry.label for r in ranked] == ["R-2", "R-1"]
    assert [r.total for r in ranked] == [D("80.00"), D("80.00")]
    assert ranked[0].tie is None
    assert ranked[1].tie == "tied with R-2 at 80.00; criterion:feasibility decides: 28.00 over 25.00"


def test_a_tie_with_an_equal_criterion_is_broken_by_the_written_score() -> None:
    # 0.4 * 81 + 0.6 * 70 = 74.4 = 0.4 * 78 + 0.6 * 72; feasibility 25 everywhere.
    higher_written = entry(
        2, "R-2", ("25", "20", "20", "8", "8"), ("25", "15", "15", "8", "7"), "2024-05-29 17:00"
    )  # written 81, presentation 70
    lower_written = entry(
        1, "R-1", ("25", "15", "15", "12", "11"), ("25", "15", "15", "9", "8"), "2024-05-27 09:00"
    )  # written 78, presentation 72
    assert higher_written.written.score == D(81) and higher_written.presentation.score == D(70)
    assert lower_written.written.score == D(78) and lower_written.presentation.score == D(72)
    ranked = rank([lower_written, higher_written], WEIGHTS, ALL_BREAKS, D(60))
    assert [r.entry.label for r in ranked] == ["R-2", "R-1"]
    assert [r.total for r in ranked] == [D("74.40"), D("74.40")]
    assert ranked[1].tie == "tied with R-2 at 74.40; written decides: 81.00 over 78.00"


def test_a_tie_on_every_score_is_broken_by_the_earlier_receipt() -> None:
    scores = ("25", "15", "15", "12", "13")
    later = entry(1, "R-1", scores, scores, "2024-05-29 17:59:59")
    earlier = entry(2, "R-2", scores, scores, "2024-05-27 09:00")
    ranked = rank([later, earlier], WEIGHTS, ALL_BREAKS, D(60))
    assert [r.entry.label for r in ranked] == ["R-2", "R-1"]
    assert ranked[1].tie == (
        "tied with R-2 at 80.00; receipt decides: 2024-05-27 09:00:00 KST over 2024-05-29 17:59:59 KST"
    )


def test_the_receipt_tie_break_is_shown_in_the_contests_zone() -> None:
    scores = ("25", "15", "15", "12", "13")
    later = entry(1, "R-1", scores, scores, "2024-05-29 17:59:59")
    earlier = entry(2, "R-2", scores, scores, "2024-05-27 09:00")
    ranked = rank([later, earlier], WEIGHTS, ("receipt",), D(60), zone="Europe/Paris")
    assert (
        ranked[1].tie
        == "tied with R-2 at 80.00; receipt decides: 2024-05-27 02:00:00 CEST over 2024-05-29 10:59:59 CEST"
    )


def test_two_plans_received_in_the_same_second_fall_to_receipt_number_order() -> None:
    """0002 came in 0.4 s into the second, 0010 (a later receipt number, 10 after 2) at its start:
    a person reads the same second for both, so the receipt number decides, as a number (10 > 2)."""
    scores = ("25", "15", "15", "12", "13")
    tenth = entry(1, "STRONG-SMALL-2024-0010", scores, scores, "2024-05-29 17:59:59.000")
    second = entry(2, "STRONG-SMALL-2024-0002", scores, scores, "2024-05-29 17:59:59.400")
    ranked = rank([tenth, second], WEIGHTS, ("receipt",), D(60))
    assert [r.entry.label for r in ranked] == ["STRONG-SMALL-2024-0002", "STRONG-SMALL-2024-0010"]
    assert ranked[1].tie == (
        "tied with STRONG-SMALL-2024-0002 at 80.00; receipt decides: both received 2024-05-29 17:59:59 KST,"
        " STRONG-SMALL-2024-0002 has the earlier receipt number"
    )
    assert ranked[0].keys == (("receipt", "2024-05-29 17:59:59 KST"),)
    # a receipt number past 9999 is still a number: 10000 after 9999
    big = entry(3, "STRONG-SMALL-2024-10000", scores, scores, "2024-05-29 17:59:59.000")
    small = entry(4, "STRONG-SMALL-2024-9999", scores, scores, "2024-05-29 17:59:59.900")
    assert [r.entry.label for r in rank([big, small], WEIGHTS, ("receipt",), D(60))] == [
        "STRONG-SMALL-2024-9999",
        "STRONG-SMALL-2024-10000",
    ]


def test_a_tie_on_every_tie_break_goes_to_the_lower_application_id() -> None:
    scores = ("25", "15", "15", "12", "13")
    # labels without a receipt number's digits: nothing but the id tells them apart
    ranked = rank([entry(7, "R-g", scores, scores), entry(3, "R-c", scores, scores)], WEIGHTS, ALL_BREAKS, D(60))
    assert [r.entry.application_id for r in ranked] == [3, 7]
    assert ranked[1].tie == "tied with R-c at 80.00 on every tie-break; the lower application id ranks first"


def test_the_tie_breaks_apply_in_the_configured_order() -> None:
    # Same pair as the written case, but with presentation before written: the
    # one with 72 in the presentation now ranks first.
    higher_written = entry(2, "R-2", ("25", "20", "20", "8", "8"), ("25", "15", "15", "8", "7"))
    lower_written = entry(1, "R-1", ("25", "15", "15", "12", "11"), ("25", "15", "15", "9", "8"))
    ranked = rank([higher_written, lower_written], WEIGHTS, ("presentation", "written"), D(60))
    assert [r.entry.label for r in ranked] == ["R-1", "R-2"]
    assert ranked[1].tie == "tied with R-1 at 74.40; presentation decides: 72.00 over 70.00"


@pytest.mark.parametrize(("minimum", "qualified"), [("80.00", True), ("79.99", True), ("80.01", False)])
def test_qualified_means_a_total_at_or_above_the_minimum(minimum: str, qualified: bool) -> None:
    e = entry(1, "R-1", ("25", "15", "15", "12", "13"), ("25", "15", "15", "12", "13"))  # 80.00
    [ranked] = rank([e], WEIGHTS, ALL_BREAKS, D(minimum))
    assert ranked.total == D("80.00")
    assert ranked.qualified is qualified


def test_rank_marks_only_entries_below_the_minimum_as_unqualified() -> None:
    at = entry(1, "R-1", ("25", "15", "15", "12", "13"), ("25", "15", "15", "12", "13"))  # 80.00
    below = entry(2, "R-2", ("25", "15", "15", "12", "13"), ("25", "15", "15", "12", "12.98"))  # 0.6*79.98 -> 79.99
    ranked = rank([below, at], WEIGHTS, ALL_BREAKS, D(80))
    assert [(r.entry.label, r.total, r.qualified) for r in ranked] == [
        ("R-1", D("80.00"), True),
        ("R-2", D("79.99"), False),
    ]


# --------------------------------------------------------------------------
# check_tie_breaks
# --------------------------------------------------------------------------


def test_check_tie_breaks_accepts_known_names_and_criteria() -> None:
    check_tie_breaks(["criterion:feasibility", "criterion:effect", *ALL_BREAKS[1:]], KEYS)


def test_check_tie_breaks_refuses_an_unknown_name() -> None:
    with pytest.raises(ValueError, match=r"tie-break 'lottery': use 'criterion:KEY', written, presentation, receipt"):
        check_tie_breaks(["written", "lottery"], KEYS)


def test_check_tie_breaks_refuses_an_unknown_criterion() -> None:
    with pytest.raises(ValueError, match=r"tie-break 'criterion:beauty' names no criterion \(criteria: feasibility,"):
        check_tie_breaks(["criterion:beauty"], KEYS)


@pytest.mark.parametrize("method", ["mean", "trimmed_mean"])
def test_a_single_sheet_part_score_is_that_sheets_total(method: Method) -> None:
    score = part_score([sheet("a@x", "written", "25", "15", "15", "12", "13")], "written", method)
    assert score.score == D("80.00")
    assert score.how == "mean of 1"


# --------------------------------------------------------------------------
# decisive: which tie-break ordered two entries of one score (a notice's tie line)
# --------------------------------------------------------------------------


def test_decisive_names_the_first_tie_break_that_differs_and_both_figures() -> None:
    less = entry(1, "R-1", ("25", "15", "15", "12", "13"), ("25", "15", "15", "12", "13"), "2024-05-27 09:00")
    more = entry(2, "R-2", ("28", "12", "15", "12", "13"), ("28", "12", "15", "12", "13"), "2024-05-29 17:00")
    assert decisive(more, less, WEIGHTS, ALL_BREAKS) == ("criterion:feasibility", "28.00", "25.00")
    assert decisive(more, less, WEIGHTS, ("written", "receipt")) == (
        "receipt",
        "2024-05-29 17:00:00 KST",
        "2024-05-27 09:00:00 KST",
    )


def test_decisive_is_none_when_every_tie_break_is_equal() -> None:
    scores = ("25", "15", "15", "12", "13")
    assert decisive(entry(3, "R-c", scores, scores), entry(7, "R-g", scores, scores), WEIGHTS, ALL_BREAKS) is None


def test_decisive_within_one_second_shows_the_same_time_for_both() -> None:
    scores = ("25", "15", "15", "12", "13")
    first = entry(2, "S-0002", scores, scores, "2024-05-29 17:59:59.400")
    tenth = entry(1, "S-0010", scores, scores, "2024-05-29 17:59:59.000")
    assert decisive(first, tenth, WEIGHTS, ("receipt",)) == (
        "receipt",
        "2024-05-29 17:59:59 KST",
        "2024-05-29 17:59:59 KST",
    )
