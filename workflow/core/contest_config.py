"""A contest as config.toml declares it: its tracks, each track's calendar,
eligibility, funding and evaluation; validated with pydantic.

Calendar times are written in the contest's zone (TOML local date-times, or
with an explicit offset, or a count of working days from an earlier
milestone) and held in UTC. The file as a whole (the [gongmo], [mail] and
[api] tables, loading and the refusal's wording) is config.py.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from gongmo.notifications.notices import NOTICES
from gongmo.states.calendar import add_working_days, parse_working_days, reminder_instant
from gongmo.states.scoring import check_tie_breaks
from gongmo.workflow.core.closures import Closures, PeriodEndRule

MILESTONES: tuple[str, ...] = (
    "announce_at",
    "receipt_opens",
    "receipt_closes",
    "review_ends",
    "written_starts",
    "written_ends",
    "presentation_starts",
    "presentation_ends",
    "selection_at",
    "kickoff_due",
)
# Milestones a track may leave out, and every milestone in calendar order.
# review_starts: the preliminary review opens (received plans wait in receipt
# until then); without it the review opens at the receipt close.
OPTIONAL_MILESTONES: tuple[str, ...] = ("review_starts",)
CALENDAR_ORDER: tuple[str, ...] = (*MILESTONES[:3], "review_starts", *MILESTONES[3:])

KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
# Calendar times outside these years are typos; the bound also keeps the
# date maths (working days, reminders, grace days) inside datetime's range.
FIRST_YEAR, LAST_YEAR = 1900, 2999


class Kind(StrEnum):
    """Kinds of Korean local government."""

    SPECIAL_CITY = "special_city"  # 특별시
    METROPOLITAN_CITY = "metropolitan_city"  # 광역시
    SPECIAL_SELF_GOVERNING_CITY = "special_self_governing_city"  # 특별자치시
    PROVINCE = "province"  # 도
    SPECIAL_SELF_GOVERNING_PROVINCE = "special_self_governing_province"  # 특별자치도
    CITY = "city"  # 시
    COUNTY = "county"  # 군
    DISTRICT = "district"  # 자치구


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Refused:
    """A calendar value Contest._localise cannot use: Calendar refuses it at its own key path."""

    value: Any
    why: str


class Calendar(Strict):
    announce_at: AwareDatetime
    receipt_opens: AwareDatetime
    receipt_closes: AwareDatetime
    review_starts: AwareDatetime | None = None
    review_ends: AwareDatetime
    written_starts: AwareDatetime
    written_ends: AwareDatetime
    presentation_starts: AwareDatetime
    presentation_ends: AwareDatetime
    selection_at: AwareDatetime
    kickoff_due: AwareDatetime

    @field_validator(*CALENDAR_ORDER, mode="before")
    @classmethod
    def _refused(cls, value: Any) -> Any:
        if isinstance(value, Refused):
            raise ValueError(value.why)
        return value

    @model_validator(mode="after")
    def _in_order(self) -> Calendar:
        previous: tuple[str, datetime] | None = None
        for name in CALENDAR_ORDER:
            value = getattr(self, name)
            if value is None:  # an optional milestone left out
                continue
            if previous and value < previous[1]:
                raise ValueError(
                    f"{name} ({value:%Y-%m-%d %H:%M} UTC) comes before {previous[0]}"
                    f" ({previous[1]:%Y-%m-%d %H:%M} UTC); milestones must be in the order"
                    f" {', '.join(CALENDAR_ORDER)}"
                )
            previous = (name, value)
        if self.receipt_closes == self.receipt_opens:
            raise ValueError("receipt_closes equals receipt_opens: the window would be empty")
        return self

    def items(self) -> list[tuple[str, datetime]]:
        """The milestones the calendar has, in calendar order (an optional one left out is not listed)."""
        return [(name, at) for name in CALENDAR_ORDER if (at := getattr(self, name)) is not None]


# The file types a document kind may accept: decided from a file's bytes (core/filetypes.py).
FileType = Literal["pdf", "hwp", "hwpx", "docx", "xlsx", "png", "jpeg"]
QuestionType = Literal["text", "number", "yes_no", "choice", "choices", "members"]
MB = 1024 * 1024


class DocumentKind(Strict):
    """A kind of document a track expects with a plan (사업계획서, 예산서, 부속서류)."""

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name_ko: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    required: bool = False  # a plan is received only when every required kind has a current file
    max_files: int = Field(default=1, ge=1, le=50)  # current files of this kind at once
    types: list[FileType] = Field(min_length=1)
    max_mb: int = Field(default=50, ge=1, le=1024)  # per file, in MiB

    @property
    def max_bytes(self) -> int:
        return self.max_mb * MB


class Question(Strict):
    """A question a track asks with a plan, answered with the submission (states/questions.py)."""

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    text_ko: str = Field(min_length=1)
    text_en: str = Field(min_length=1)
    type: QuestionType
    required: bool = True
    max_length: int = Field(default=2000, ge=1, le=100_000)  # text, in characters
    minimum: Decimal | None = None  # number, inclusive
    maximum: Decimal | None = None
    options: list[str] = Field(default_factory=list)  # choice, choices
    member_kinds: list[str] = Field(default_factory=list)  # members
    max_members: int = Field(default=20, ge=1, le=200)  # members

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.type in ("choice", "choices") and not self.options:
            raise ValueError(f"question {self.key}: a {self.type} question needs options = [...]")
        if self.type == "members" and not self.member_kinds:
            raise ValueError(f"question {self.key}: a members question needs member_kinds = [...]")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"question {self.key}: minimum {self.minimum} exceeds maximum {self.maximum}")
        for name, values in (("options", self.options), ("member_kinds", self.member_kinds)):
            dups = sorted({v for v in values if values.count(v) > 1})
            if dups:
                raise ValueError(f"question {self.key}: {name} used twice: {', '.join(dups)}")
        return self


class AnswerRule(Strict):
    """An eligibility rule on an answer: it equals a value, or its members include each kind."""

    question: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    equals: bool | int | str | None = None
    members_include: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one(self) -> AnswerRule:
        if (self.equals is None) == (not self.members_include):
            raise ValueError(f"answer rule on {self.question}: give exactly one of equals or members_include")
        return self


class Eligibility(Strict):
    kinds: list[Kind] = Field(min_length=1)
    population_below: int | None = Field(default=None, gt=0)
    types: list[str] = Field(default_factory=list)
    # Rules on the answers to the track's questions, checked at the preliminary review.
    answers: list[AnswerRule] = Field(default_factory=list)


class Funding(Strict):
    national_cap_krw: int = Field(gt=0, description="total over the program's years, per site")
    national_min_krw: int = Field(default=0, ge=0)
    years: int = Field(ge=1, le=10)
    local_match_ratio: float = Field(default=1.0, ge=0)
    budget_national_krw: int = Field(gt=0, description="the track's national money, all sites")

    @model_validator(mode="after")
    def _consistent(self) -> Funding:
        if self.national_min_krw > self.national_cap_krw:
            raise ValueError(
                f"national_min_krw {self.national_min_krw:,} exceeds national_cap_krw {self.national_cap_krw:,}"
            )
        if self.national_cap_krw > self.budget_national_krw:
            raise ValueError(
                f"national_cap_krw {self.national_cap_krw:,} exceeds budget_national_krw"
                f" {self.budget_national_krw:,}: one site could never be funded"
            )
        return self


class Criterion(Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    name_ko: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    points: Decimal = Field(gt=0, le=100, decimal_places=2)


def _default_criteria() -> list[Criterion]:
    """The usual shape of a MOLIT smart-city evaluation sheet (100 points)."""
    return [
        Criterion(
            key="feasibility", name_ko="사업계획의 타당성", name_en="Feasibility of the plan", points=Decimal(30)
        ),
        Criterion(key="innovation", name_ko="혁신성·차별성", name_en="Innovation", points=Decimal(20)),
        Criterion(
            key="participation", name_ko="주민참여·거버넌스", name_en="Resident participation", points=Decimal(20)
        ),
        Criterion(key="budget", name_ko="재원조달·예산계획", name_en="Budget plan", points=Decimal(15)),
        Criterion(key="effect", name_ko="기대효과·확산성", name_en="Expected effect", points=Decimal(15)),
    ]


class Evaluation(Strict):
    """How the committee evaluates a track, and how the ranking is read."""

    criteria: list[Criterion] = Field(default_factory=_default_criteria, min_length=1)
    written_weight: Decimal = Field(default=Decimal("0.4"), ge=0, le=1)
    presentation_weight: Decimal = Field(default=Decimal("0.6"), ge=0, le=1)
    # "trimmed_mean" drops one highest and one lowest total from 5 evaluators on.
    aggregation: Literal["mean", "trimmed_mean"] = "trimmed_mean"
    minimum_score: Decimal = Field(default=Decimal(70), ge=0, le=100)
    # After the committee score: "criterion:KEY", "written", "presentation", "receipt".
    tie_breaks: list[str] = Field(default_factory=lambda: ["criterion:feasibility", "written", "receipt"])
    evaluators_per_application: int = Field(default=5, ge=1, le=50)
    # Fewer than this many evaluators without a conflict: assignment refuses.
    minimum_evaluators: int | None = Field(default=None, ge=1)
    conflict_same_region: bool = True
    waitlist: int = Field(default=2, ge=0, le=100)
    # Presentation slots: on working days, in office hours, outside lunch.
    slot_minutes: int = Field(default=40, ge=5, le=480)
    slot_gap_minutes: int = Field(default=10, ge=0, le=240)
    office_hours: tuple[time, time] = (time(9), time(18))
    lunch: tuple[time, time] | None = (time(12), time(13))
    place: str = "LH 서울지역본부 대회의실"

    @model_validator(mode="after")
    def _consistent(self) -> Evaluation:
        keys = [c.key for c in self.criteria]
        dups = sorted({k for k in keys if keys.count(k) > 1})
        if dups:
            raise ValueError(f"criterion key(s) used twice: {', '.join(dups)}")
        if self.written_weight + self.presentation_weight != 1:
            raise ValueError(
                f"written_weight {self.written_weight} + presentation_weight {self.presentation_weight}"
                " must add up to 1"
            )
        # A valid tie-break is at most 42 characters: cut long ones, so that the refusal
        # (which repeats the tie-break) stays short; the cut one is as invalid.
        check_tie_breaks([n if len(n) <= 50 else n[:47] + "..." for n in self.tie_breaks], keys)
        if self.minimum_evaluators is not None and self.minimum_evaluators > self.evaluators_per_application:
            raise ValueError(
                f"minimum_evaluators {self.minimum_evaluators} exceeds evaluators_per_application"
                f" {self.evaluators_per_application}"
            )
        if self.office_hours[0] >= self.office_hours[1]:
            raise ValueError("office_hours: the first time must come before the second, e.g. [09:00, 18:00]")
        return self

    @property
    def floor(self) -> int:
        return self.minimum_evaluators or self.evaluators_per_application

    @property
    def max_points(self) -> Decimal:
        return sum((c.points for c in self.criteria), Decimal(0))


class Track(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    name_ko: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    slots: int = Field(ge=1)
    eligibility: Eligibility
    funding: Funding
    calendar: Calendar
    # Before the receipt close, to applicants that have not submitted yet.
    reminders: list[str] = Field(default_factory=lambda: ["D-3 09:00", "D-1 09:00", "-3h"])
    # After kickoff_due: selected applicants without an approved plan are
    # cancelled, and the waitlist lapses, this many days later.
    kickoff_grace_days: int = Field(default=14, ge=0, le=90)
    # Notices that wait in the outbox until `gongmo outbox release TRACK NOTICE`:
    # selection results go out when the ministry publishes them, not before. They
    # are held until the track's results are released (a promotion while they wait
    # waits with them); after the release, a later one goes out at once.
    hold_notices: list[str] = Field(default_factory=lambda: ["selected", "waitlisted", "not_selected", "promoted"])
    evaluation: Evaluation = Field(default_factory=Evaluation)
    # A disqualified applicant may object for this many days after the notice.
    objection_days: int = Field(default=7, ge=0, le=60)
    # A selected applicant that withdraws or is cancelled before this
    # milestone is replaced by the first waitlisted one that fits the budget.
    promotion_until: str = "kickoff_due"
    # `gongmo results publish`: the published results list the not-selected applications too
    # (name, receipt number, committee score, rank, reason); by default only their counts. A ministry decides.
    publish_not_selected: bool = False
    # The documents a plan comes with, and the questions it answers (issue 21).
    documents: list[DocumentKind] = Field(default_factory=list)
    questions: list[Question] = Field(default_factory=list)

    def document_kind(self, kind: str) -> DocumentKind | None:
        return next((d for d in self.documents if d.kind == kind), None)

    @model_validator(mode="after")
    def _documents_and_questions(self) -> Track:
        for name, keys in (
            ("document kind", [d.kind for d in self.documents]),
            ("question key", [q.key for q in self.questions]),
        ):
            dups = sorted({k for k in keys if keys.count(k) > 1})
            if dups:
                raise ValueError(f"{name}(s) used twice: {', '.join(dups)}")
        questions = {q.key: q for q in self.questions}
        for rule in self.eligibility.answers:
            q = questions.get(rule.question)
            if q is None:
                known = ", ".join(questions) or "none: add [[contests.tracks.questions]]"
                raise ValueError(f"eligibility answer rule on {rule.question!r}: no such question (questions: {known})")
            if rule.members_include:
                if q.type != "members":
                    raise ValueError(f"eligibility answer rule on {q.key}: members_include needs a members question")
                unknown = [k for k in rule.members_include if k not in q.member_kinds]
                if unknown:
                    raise ValueError(
                        f"eligibility answer rule on {q.key}: member kind {unknown[0]!r} is not in its"
                        f" member_kinds ({', '.join(q.member_kinds)})"
                    )
            elif q.type in ("choice", "choices") and rule.equals not in q.options:
                raise ValueError(
                    f"eligibility answer rule on {q.key}: equals {rule.equals!r} is not one of its options"
                    f" ({', '.join(q.options)})"
                )
            elif q.type == "yes_no" and not isinstance(rule.equals, bool):
                raise ValueError(f"eligibility answer rule on {q.key}: a yes_no question takes equals = true or false")
        return self

    @field_validator("promotion_until")
    @classmethod
    def _milestone(cls, value: str) -> str:
        if value not in MILESTONES:
            raise ValueError(f"unknown milestone {short_value(value)} (milestones: {', '.join(MILESTONES)})")
        return value

    @field_validator("hold_notices")
    @classmethod
    def _notices(cls, value: list[str]) -> list[str]:
        unknown = [n for n in value if n not in NOTICES]
        if unknown:
            close = difflib.get_close_matches(unknown[0], NOTICES, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "use a notice's name, as in templates/ko/NAME.txt"
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ValueError(f"unknown notice {short_value(unknown[0])}{more}: {hint}")
        return value

    @field_validator("reminders")
    @classmethod
    def _reminders(cls, value: list[str]) -> list[str]:
        probe = datetime(2024, 5, 29, 18, tzinfo=UTC)
        for spec in value:
            reminder_instant(spec, probe)  # raises ValueError with the fix
        return value


class Contest(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    name_ko: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    ministry: str
    office: str
    office_phone: str
    portal_url: str
    timezone: str = "Asia/Seoul"
    national_budget_krw: int = Field(gt=0)
    # Days the offices are closed beyond the public holidays (holidays.KR).
    extra_closures: list[date] = Field(default_factory=list)
    # How a period counted in days ends (the objection period, the kickoff grace):
    # "civil_act_161" (민법 제161조: a last day on a Saturday, Sunday, public holiday
    # or extra closure moves to the next working day) or "calendar" (it does not).
    period_end_rule: PeriodEndRule = "civil_act_161"
    # The document kinds of every track that declares none of its own ([[contests.documents]]).
    documents: list[DocumentKind] = Field(default_factory=list)
    tracks: list[Track] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _documents_inherited(cls, data: Any) -> Any:
        """A track without `documents` expects the contest's ([[contests.documents]])."""
        if not isinstance(data, dict) or not data.get("documents") or not isinstance(data.get("tracks"), list):
            return data
        tracks = [
            {**t, "documents": data["documents"]} if isinstance(t, dict) and "documents" not in t else t
            for t in data["tracks"]
        ]
        return {**data, "tracks": tracks}

    @field_validator("tracks", "extra_closures", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: ValidationInfo) -> Any:
        """`tracks = 5`: refused with the fix (pydantic would say only "Input should be a valid list")."""
        if isinstance(value, list):
            return value
        if info.field_name == "tracks":
            raise ValueError("not a list: write each track as a [[contests.tracks]] table")
        raise ValueError("not a list: write the dates as a list, e.g. [2024-05-07]")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia' (a directory), a long name
            raise ValueError(
                f"unknown time zone {short_value(value)} (use an IANA name such as 'Asia/Seoul')"
            ) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _localise(cls, data: Any) -> Any:
        """Read naive calendar times in the contest's zone and hold them in UTC."""
        if not isinstance(data, dict):
            return data
        try:
            tz: tzinfo = ZoneInfo(str(data.get("timezone", "Asia/Seoul")))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            tz = UTC  # the field validator refuses the zone: read the times in UTC, not refuse each one
        closures: Closures | None = None
        tracks = data.get("tracks")
        for track in tracks if isinstance(tracks, list) else []:  # not a list: _lists refuses it
            cal = track.get("calendar") if isinstance(track, dict) else None
            if not isinstance(cal, dict):
                continue
            resolved = {k: _to_utc(v, tz) for k, v in cal.items()}
            for name in CALENDAR_ORDER:
                rule = parse_working_days(resolved[name]) if isinstance(resolved.get(name), str) else None
                earlier = CALENDAR_ORDER[: CALENDAR_ORDER.index(name)]
                if rule is not None and rule[0] in earlier and isinstance(resolved.get(rule[0]), Refused):
                    resolved[name] = Refused(resolved[name], f"counts from {rule[0]}, which is refused: fix it first")
                if rule is None or rule[0] not in earlier or not isinstance(resolved.get(rule[0]), datetime):
                    continue  # left as text: pydantic refuses it at its own key path
                if closures is None:
                    closures = _closures(data, resolved)
                base = resolved[rule[0]].astimezone(tz)
                try:
                    resolved[name] = add_working_days(base, rule[1], closures).astimezone(UTC)
                except ValueError as exc:  # too many days, or past 9999: Calendar refuses it at its key path
                    resolved[name] = Refused(resolved[name], str(exc))
            _refuse_out_of_order(resolved, cal, tz)
            track["calendar"] = resolved
        return data

    def closures(self) -> Closures:
        years = {at.year for t in self.tracks for _, at in t.calendar.items()}
        return Closures(range(min(years) - 1, max(years) + 2), self.extra_closures, self.period_end_rule)

    @model_validator(mode="after")
    def _budget(self) -> Contest:
        total = sum(t.funding.budget_national_krw for t in self.tracks)
        if total > self.national_budget_krw:
            raise ValueError(
                f"the tracks' budget_national_krw add up to {total:,},"
                f" more than national_budget_krw {self.national_budget_krw:,}"
            )
        keys = [t.key for t in self.tracks]
        dups = sorted({k for k in keys if keys.count(k) > 1})
        if dups:
            raise ValueError(f"track key(s) used twice: {', '.join(dups)}")
        return self


def _closures(data: dict[str, Any], calendar: dict[str, Any]) -> Closures:
    years = {v.year for v in calendar.values() if isinstance(v, datetime)} or {datetime.now(UTC).year}
    given = data.get("extra_closures")
    extra = [d for d in given if isinstance(d, date)] if isinstance(given, list) else []
    return Closures(range(min(years) - 1, max(years) + 2), extra)


def _refuse_out_of_order(resolved: dict[str, Any], given: dict[str, Any], tz: tzinfo) -> None:
    """Mark the first milestone that comes before the one it follows: Calendar refuses it at its own
    key path (contests[0].tracks[0].calendar.receipt_closes), with both times in the contest's zone."""
    previous: tuple[str, datetime] | None = None
    for name in CALENDAR_ORDER:
        value = resolved.get(name)
        if not isinstance(value, datetime):
            continue  # missing (review_starts may be), refused or not a time: pydantic says so at its key path
        if previous is not None and value < previous[1]:
            resolved[name] = Refused(
                given.get(name),
                f"{name} ({_local(value, tz)}) comes before {previous[0]} ({_local(previous[1], tz)});"
                f" milestones must be in the order {', '.join(CALENDAR_ORDER)}",
            )
            return
        previous = (name, value)


def _local(value: datetime, tz: tzinfo) -> str:
    """'2021-12-26 18:00 KST': a time as the contest's people read it."""
    return f"{value.astimezone(tz):%Y-%m-%d %H:%M %Z}"


def _to_utc(value: Any, tz: tzinfo) -> Any:
    """A TOML date-time (or an ISO string, or a date meaning 00:00) in `tz`, to UTC.
    A time outside the years FIRST_YEAR to LAST_YEAR is marked Refused."""
    given = value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value  # a working-days rule, or pydantic reports it with its key path
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if isinstance(value, datetime):
        if not FIRST_YEAR <= value.year <= LAST_YEAR:
            return Refused(given, f"out of range: write a date-time in the years {FIRST_YEAR} to {LAST_YEAR}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.astimezone(UTC)
    return value


def short_value(value: Any) -> str:
    """A value as the refusal shows it: repr(), dates as written in TOML, at most 60 characters."""
    if isinstance(value, dict):
        return "{...}"
    text = value.isoformat() if isinstance(value, date | time) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
