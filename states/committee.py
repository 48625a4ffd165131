"""The evaluation committee: regions, conflicts of interest, assignment.

Pure. A conflicted evaluator is never assigned to an application and can
never score it: the same rules are checked at assignment and at every score.

An evaluator is in conflict with an applicant when
- the evaluator declared it (e.g. an advisory role for that city),
- the evaluator belongs to that local government, or
- (if the track says so) the evaluator's region (시·도) is the applicant's;
  the region of an applicant is the first two digits of its administrative
  code (행정표준코드), e.g. 41110 수원시 is in 41 경기도.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gongmo.states.errors import InvalidInput

# 시·도 by the first two digits of the administrative code. Gangwon (42 -> 51)
# and Jeonbuk (45 -> 52) became special self-governing provinces and took new
# codes; both codes name the same region.
REGIONS: dict[str, str] = {
    "11": "서울특별시",
    "26": "부산광역시",
    "27": "대구광역시",
    "28": "인천광역시",
    "29": "광주광역시",
    "30": "대전광역시",
    "31": "울산광역시",
    "36": "세종특별자치시",
    "41": "경기도",
    "43": "충청북도",
    "44": "충청남도",
    "46": "전라남도",
    "47": "경상북도",
    "48": "경상남도",
    "50": "제주특별자치도",
    "51": "강원특별자치도",
    "52": "전북특별자치도",
}
OLD_CODES = {"42": "51", "45": "52"}
SHORT = {
    "서울": "11", "부산": "26", "대구": "27", "인천": "28", "광주": "29", "대전": "30", "울산": "31",
    "세종": "36", "경기": "41", "충북": "43", "충남": "44", "전남": "46", "경북": "47", "경남": "48",
    "제주": "50", "강원": "51", "전북": "52", "강원도": "51", "전라북도": "52",
    "seoul": "11", "busan": "26", "daegu": "27", "incheon": "28", "gwangju": "29", "daejeon": "30",
    "ulsan": "31", "sejong": "36", "gyeonggi": "41", "chungbuk": "43", "chungnam": "44", "jeonnam": "46",
    "gyeongbuk": "47", "gyeongnam": "48", "jeju": "50", "gangwon": "51", "jeonbuk": "52",
}  # fmt: skip


def region_of(code: str) -> str:
    """The region (two-digit code) of an administrative code such as 41110."""
    prefix = code[:2]
    return OLD_CODES.get(prefix, prefix)


def parse_region(text: str) -> str:
    """'경기도', '경기', 'gyeonggi' or '41' -> '41'."""
    value = text.strip()
    if value in REGIONS:
        return value
    if value in OLD_CODES:
        return OLD_CODES[value]
    for code, name in REGIONS.items():
        if value == name:
            return code
    found = SHORT.get(value) or SHORT.get(value.lower())
    if found is None:
        raise InvalidInput(
            f"region {text!r} is not a 시·도: write its name (e.g. 경기도 or 경기), its English name"
            " (e.g. gyeonggi) or its two-digit code (e.g. 41)"
        )
    return found


@dataclass(frozen=True)
class Evaluator:
    key: str  # the e-mail address
    region: str  # two-digit code
    home_code: str | None = None  # the local government the evaluator belongs to, if any
    declared: frozenset[str] = field(default_factory=frozenset)  # applicant codes declared


def conflict(evaluator: Evaluator, applicant_code: str, same_region: bool = True) -> str | None:
    """Why the evaluator may not evaluate this applicant, or None."""
    if applicant_code in evaluator.declared:
        return f"declared a conflict with {applicant_code}"
    if evaluator.home_code is not None and evaluator.home_code == applicant_code:
        return f"belongs to the applicant ({applicant_code})"
    if same_region and evaluator.region == region_of(applicant_code):
        return f"same region as the applicant ({REGIONS.get(evaluator.region, evaluator.region)})"
    return None


@dataclass(frozen=True)
class Seat:
    application_id: int
    label: str  # receipt number, for messages
    applicant_code: str


def assign(
    seats: Sequence[Seat],
    evaluators: Sequence[Evaluator],
    per_application: int,
    minimum: int,
    same_region: bool = True,
    existing: Mapping[int, Sequence[str]] | None = None,
) -> dict[int, list[str]]:
    """Each application gets up to `per_application` evaluators without a
    conflict (at least `minimum`), the least loaded first; assignments that
    already exist are kept, so assigning again only fills gaps.

    Raises InvalidInput naming every application that cannot get `minimum`.
    """
    existing = existing or {}
    load: dict[str, int] = {e.key: 0 for e in evaluators}
    for keys in existing.values():
        for k in keys:
            load[k] = load.get(k, 0) + 1
    result: dict[int, list[str]] = {}
    problems: list[str] = []
    for seat in seats:
        have = list(existing.get(seat.application_id, ()))
        free = [e for e in evaluators if e.key not in have and conflict(e, seat.applicant_code, same_region) is None]
        free.sort(key=lambda e: (load[e.key], e.key))
        for e in free[: max(0, per_application - len(have))]:
            have.append(e.key)
            load[e.key] += 1
        if len(have) < minimum:
            blocked = [f"{e.key} ({why})" for e in evaluators if (why := conflict(e, seat.applicant_code, same_region))]
            problems.append(
                f"application {seat.label} ({seat.applicant_code}): {len(have)} evaluator(s) without a conflict,"
                f" {minimum} needed" + (f"; in conflict: {', '.join(blocked)}" if blocked else "")
            )
        result[seat.application_id] = have
    if problems:
        raise InvalidInput(
            "; ".join(problems) + ". Import more evaluators, or lower evaluation.minimum_evaluators; nothing assigned"
        )
    return result
