"""Committee scores: one evaluator's sheet, the committee's aggregate, the ranking.

Pure and exact: points are Decimals, every score shown is rounded half up to
two decimals (as Korean public evaluations report them), and the ranking
uses the rounded figures, so every number an applicant is shown is a number
the ranking used.

- A sheet is one evaluator's points for one part (written or presentation),
  one value per criterion, each from 0 to the criterion's points.
- A part's score aggregates the evaluators' sheet totals: the plain mean, or
  the trimmed mean that drops one highest and one lowest total when at least
  five evaluators scored (with four or fewer it is the plain mean).
- The committee score weighs the written and presentation parts.
- Ties on the committee score are broken in the configured order: a named
  criterion (weighted the same way), the written score, the presentation
  score, then the earlier receipt: the second a person reads (in the contest's
  zone), and within one second the receipt number's order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from gongmo.states.errors import InvalidInput

Method = Literal["mean", "trimmed_mean"]
PARTS: tuple[str, ...] = ("written", "presentation")
TRIM_FROM = 5  # the trimmed mean drops the extremes from this many evaluators on
CENT = Decimal("0.01")
PLAIN = re.compile(r"^-?[0-9]{1,4}(\.[0-9]+)?$")  # digits 0-9, a point, digits: no exponent, no NaN


@dataclass(frozen=True)
class Criterion:
    key: str
    points: Decimal  # the most an evaluator may give


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_points(text: str, criterion: str) -> Decimal:
    """'22.5' -> Decimal; refuses what is not a plain number with at most two decimals."""
    if not PLAIN.match(text.strip()):
        raise InvalidInput(f"{criterion} = {text!r}: not a number; write points like 22 or 22.5")
    value = Decimal(text.strip())
    if value != value.quantize(CENT):
        raise InvalidInput(f"{criterion} = {text!r}: write points with at most two decimals, e.g. 22.5")
    return value


def check_sheet(criteria: Sequence[Criterion], points: Mapping[str, Decimal]) -> None:
    """Every criterion once, each inside its range; raise InvalidInput naming the first problems."""
    known = {c.key: c for c in criteria}
    problems = [f"unknown criterion {k!r}" for k in points if k not in known]
    problems += [f"criterion {c.key!r} has no points" for c in criteria if c.key not in points]
    for key, value in points.items():
        crit = known.get(key)
        if crit is not None and not (0 <= value <= crit.points):
            problems.append(f"{key} = {value}: out of range, give 0 to {crit.points}")
    if problems:
        names = ", ".join(f"{c.key} (0-{c.points})" for c in criteria)
        raise InvalidInput("; ".join(problems) + f" (criteria: {names})")


@dataclass(frozen=True)
class Sheet:
    evaluator: str
    part: str
    points: Mapping[str, Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.points.values(), Decimal(0))


def aggregate(values: Sequence[Decimal], method: Method) -> tuple[Decimal, tuple[Decimal, ...]]:
    """The aggregate (unrounded) and the values dropped by a trimmed mean."""
    if not values:
        raise ValueError("no values to aggregate")
    ordered = sorted(values)
    dropped: tuple[Decimal, ...] = ()
    if method == "trimmed_mean" and len(ordered) >= TRIM_FROM:
        dropped = (ordered[0], ordered[-1])
        ordered = ordered[1:-1]
    return sum(ordered, Decimal(0)) / len(ordered), dropped


@dataclass(frozen=True)
class PartScore:
    part: str
    evaluators: int
    totals: tuple[Decimal, ...]  # each evaluator's sheet total, highest first
    dropped: tuple[Decimal, ...]  # the lowest and highest, if trimmed
    score: Decimal  # rounded to 0.01
    criteria: Mapping[str, Decimal]  # each criterion aggregated the same way, rounded

    @property
    def how(self) -> str:
        if self.dropped:
            return f"trimmed mean of {self.evaluators} (dropped {self.dropped[0]:.2f} and {self.dropped[1]:.2f})"
        return f"mean of {self.evaluators}"


def part_score(sheets: Sequence[Sheet], part: str, method: Method) -> PartScore:
    mine = [s for s in sheets if s.part == part]
    if not mine:
        raise ValueError(f"no {part} sheets")
    totals = [s.total for s in mine]
    value, dropped = aggregate(totals, method)
    keys = sorted({k for s in mine for k in s.points})
    criteria = {k: round2(aggregate([s.points[k] for s in mine], method)[0]) for k in keys}
    return PartScore(
        part=part,
        evaluators=len(mine),
        totals=tuple(sorted(totals, reverse=True)),
        dropped=dropped,
        score=round2(value),
        criteria=criteria,
    )


@dataclass(frozen=True)
class Weights:
    written: Decimal
    presentation: Decimal

    def combine(self, written: Decimal, presentation: Decimal) -> Decimal:
        return round2(self.written * written + self.presentation * presentation)


@dataclass(frozen=True)
class Entry:
    """One application's scores, ready to rank."""

    application_id: int
    label: str  # its receipt number
    submitted_at: datetime
    national_krw: int
    written: PartScore
    presentation: PartScore

    def total(self, weights: Weights) -> Decimal:
        return weights.combine(self.written.score, self.presentation.score)

    def criterion(self, key: str, weights: Weights) -> Decimal:
        return weights.combine(
            self.written.criteria.get(key, Decimal(0)), self.presentation.criteria.get(key, Decimal(0))
        )


@dataclass(frozen=True)
class Ranked:
    rank: int
    entry: Entry
    total: Decimal
    qualified: bool  # at or above the qualifying minimum
    tie: str | None = None  # how a tie with the one above was broken
    keys: tuple[tuple[str, str], ...] = field(default=())  # the tie-break values, for the table


TIE_BREAKS = ("written", "presentation", "receipt")


def check_tie_breaks(tie_breaks: Sequence[str], criteria: Sequence[str]) -> None:
    for name in tie_breaks:
        if name.startswith("criterion:"):
            if name.removeprefix("criterion:") not in criteria:
                raise ValueError(f"tie-break {name!r} names no criterion (criteria: {', '.join(criteria)})")
        elif name not in TIE_BREAKS:
            raise ValueError(f"tie-break {name!r}: use 'criterion:KEY', {', '.join(TIE_BREAKS)}")


def _key_value(entry: Entry, name: str, weights: Weights, zone: str = "Asia/Seoul") -> tuple[Decimal | int, str]:
    """A sort value (higher ranks first) and how it is shown."""
    if name.startswith("criterion:"):
        value = entry.criterion(name.removeprefix("criterion:"), weights)
        return value, str(value)
    if name == "written":
        return entry.written.score, str(entry.written.score)
    if name == "presentation":
        return entry.presentation.score, str(entry.presentation.score)
    # receipt: the earlier second first (as a person reads it), then the lower receipt number
    second = int(entry.submitted_at.timestamp())
    return -(second * RECEIPT_SPAN + _receipt_seq(entry)), _shown_at(entry.submitted_at, zone)


RECEIPT_SPAN = 10**12  # more receipt numbers than one track ever gives


def _receipt_seq(entry: Entry) -> int:
    """The number at the end of a receipt number (STRONG-SMALL-2024-0010 -> 10), or 0 without one."""
    found = re.search(r"(\d+)$", entry.label)
    return int(found[1]) % RECEIPT_SPAN if found else 0


def _shown_at(at: datetime, zone: str) -> str:
    return f"{at.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S %Z}"


def rank(
    entries: Sequence[Entry],
    weights: Weights,
    tie_breaks: Sequence[str],
    minimum: Decimal,
    zone: str = "Asia/Seoul",
) -> list[Ranked]:
    """Highest committee score first; ties broken in the configured order, then by application id.
    Times are shown in `zone`, the contest's."""

    def sort_key(e: Entry) -> tuple[object, ...]:
        return (-e.total(weights), *(-_key_value(e, n, weights, zone)[0] for n in tie_breaks), e.application_id)

    ordered = sorted(entries, key=sort_key)
    out: list[Ranked] = []
    for i, entry in enumerate(ordered):
        total = entry.total(weights)
        keys = tuple((n, _key_value(entry, n, weights, zone)[1]) for n in tie_breaks)
        tie = None
        if i and ordered[i - 1].total(weights) == total:
            tie = _tie_note(ordered[i - 1], entry, weights, tie_breaks, total, zone)
        out.append(Ranked(i + 1, entry, total, total >= minimum, tie, keys))
    return out


def decisive(
    above: Entry, below: Entry, weights: Weights, tie_breaks: Sequence[str], zone: str = "Asia/Seoul"
) -> tuple[str, str, str] | None:
    """The first tie-break on which two entries of the same committee score differ: its
    name and how it shows each (`above`'s first); None when every tie-break is equal."""
    for name in tie_breaks:
        a, a_shown = _key_value(above, name, weights, zone)
        b, b_shown = _key_value(below, name, weights, zone)
        if a != b:
            return name, a_shown, b_shown
    return None


def _tie_note(
    above: Entry, below: Entry, weights: Weights, tie_breaks: Sequence[str], total: Decimal, zone: str
) -> str:
    found = decisive(above, below, weights, tie_breaks, zone)
    if found is None:
        return f"tied with {above.label} at {total} on every tie-break; the lower application id ranks first"
    name, a_shown, b_shown = found
    if a_shown == b_shown:  # the receipt: the same second, so the receipt number
        return (
            f"tied with {above.label} at {total}; {name} decides: both received {a_shown},"
            f" {above.label} has the earlier receipt number"
        )
    return f"tied with {above.label} at {total}; {name} decides: {a_shown} over {b_shown}"
