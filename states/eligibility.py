"""Eligibility at the preliminary review: each rule of a track, checked with its values.

Pure: the track's rules and one application's facts go in, a checklist comes
out. Each line names the rule, what the application has, what the track
requires and whether it passed, so a disqualification can be explained with
the same numbers the reviewer saw.

The fixed rules (RULES) come first, in their order; then one line per rule on
an answer to the track's questions (states/questions.py), in the config's
order, named `answer:<question>`: "the consortium includes a local
government, a private company and a university" (members_include), "a living
lab runs or is planned = yes" (equals). A question left unanswered fails its
rule, shown as "(no answer)".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from gongmo.states.errors import InvalidInput
from gongmo.states.questions import AnswerRuleSpec, QuestionSpec, describe, validate


@dataclass(frozen=True)
class Rules:
    """One track's eligibility and funding rules (from config.toml)."""

    kinds: frozenset[str]
    national_cap_krw: int  # per site, a total over the program's years
    years: int  # the program's years
    national_min_krw: int = 0
    local_match_ratio: Fraction = Fraction(1)
    population_below: int | None = None  # a cap: the population must be strictly below it
    types: tuple[str, ...] = ()  # if any, the application must choose one
    # Rules on answers, and the track's questions they refer to (a rule needs its question's type to
    # show a value). Compared, not hashed: the config's models hold lists.
    answer_rules: tuple[AnswerRuleSpec, ...] = field(default=(), hash=False)
    questions: tuple[QuestionSpec, ...] = field(default=(), hash=False)
    # What each rule requires, as shown; the same for every application of the track.
    texts: dict[str, str] = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        texts = {
            "kind": "one of " + ", ".join(sorted(self.kinds)),
            "population": f"below {self.population_below:,}" if self.population_below is not None else "",
            "national_cap": f"at most {self.national_cap_krw:,} won over {self.years} year(s)",
            "national_min": f"at least {self.national_min_krw:,} won",
            "years": f"1 to {self.years} year(s)",
            "type": "one of " + ", ".join(self.types),
        }
        for rule in self.answer_rules:
            texts[answer_rule(rule.question)] = _expected(rule, self.question_of(rule.question))
        object.__setattr__(self, "texts", texts)

    def question_of(self, key: str) -> QuestionSpec | None:
        return next((q for q in self.questions if q.key == key), None)


@dataclass(frozen=True)
class Facts:
    """What an application and its applicant state."""

    kind: str
    population: int
    national_krw: int | None  # None: the plan states no amount (never passes)
    local_krw: int | None
    years: int
    project_type: str | None = None
    # The answers to the track's questions, normalised (states/questions.py validate_all).
    answers: Mapping[str, object] = field(default_factory=dict, hash=False)


class Check(NamedTuple):
    """One rule's line of a checklist. A tuple: a checklist of 100,000 applications makes 600,000
    of them at a receipt close, and a frozen dataclass cost a third of the check's time."""

    rule: str
    passed: bool
    value: str  # what the application has
    expected: str  # what the track requires

    def line(self) -> str:
        mark = "pass" if self.passed else "FAIL"
        return f"{mark} {self.rule}: {self.value} (required: {self.expected})"


RULES = ("kind", "population", "national_cap", "national_min", "years", "local_match", "type")
# Rules on answers follow RULES, each named ANSWER_PREFIX + the question's key.
ANSWER_PREFIX = "answer:"


def answer_rule(question: str) -> str:
    """The checklist's name of the rule on a question's answer: 'answer:consortium'."""
    return ANSWER_PREFIX + question


def check(rules: Rules, facts: Facts) -> list[Check]:
    """Every rule of the track, in a fixed order; rules a track does not have are left out."""
    return [line.make(rules, facts) for line in lines(rules)] + answer_checks(rules, facts)


@dataclass(frozen=True)
class Line:
    """A fixed rule's line of the checklist: whether a track checks it, how, and which facts it
    reads (Facts field names). A line is the same for the same values of those, so a caller
    checking many applications of a track may make each distinct line once (engine/checklist.py)."""

    rule: str
    applies: Callable[[Rules], bool]
    make: Callable[[Rules, Facts], Check]
    reads: tuple[str, ...]


def lines(rules: Rules) -> list[Line]:
    """The fixed rules this track checks, in RULES order (the rules on answers follow them)."""
    return [line for line in LINES if line.applies(rules)]


def _kind(rules: Rules, facts: Facts) -> Check:
    return Check("kind", facts.kind in rules.kinds, facts.kind, rules.texts["kind"])


def _population(rules: Rules, facts: Facts) -> Check:
    below = rules.population_below
    passed = below is not None and facts.population < below
    return Check("population", passed, f"{facts.population:,}", rules.texts["population"])


def _national_cap(rules: Rules, facts: Facts) -> Check:
    stated = facts.national_krw is not None and facts.national_krw > 0  # a plan asks for some national money
    cap = rules.texts["national_cap"]
    passed = stated and (facts.national_krw or 0) <= rules.national_cap_krw
    return Check("national_cap", passed, _won(facts.national_krw), cap if stated else "more than 0, " + cap)


def _national_min(rules: Rules, facts: Facts) -> Check:
    passed = (facts.national_krw or 0) >= rules.national_min_krw
    return Check("national_min", passed, _won(facts.national_krw), rules.texts["national_min"])


def _years(rules: Rules, facts: Facts) -> Check:
    return Check("years", 1 <= facts.years <= rules.years, f"{facts.years} year(s)", rules.texts["years"])


def _local_match(rules: Rules, facts: Facts) -> Check:
    needed = required_local(facts.national_krw or 0, rules.local_match_ratio)
    # A match is money: a track that asks for one never takes a missing or zero local share.
    matched = (
        facts.local_krw is not None
        and facts.local_krw >= needed
        and (facts.local_krw > 0 or not rules.local_match_ratio)
    )
    least = f"at least {needed:,} won" if needed or not rules.local_match_ratio else "more than 0 won"
    expected = f"{least} (local:national = {_ratio(rules.local_match_ratio)})"
    return Check("local_match", matched, _won(facts.local_krw), expected)


def _type(rules: Rules, facts: Facts) -> Check:
    passed = facts.project_type in rules.types
    return Check("type", passed, facts.project_type or "(none chosen)", rules.texts["type"])


def _always(rules: Rules) -> bool:
    return True


LINES: tuple[Line, ...] = (
    Line("kind", _always, _kind, ("kind",)),
    Line("population", lambda r: r.population_below is not None, _population, ("population",)),
    Line("national_cap", _always, _national_cap, ("national_krw",)),
    Line("national_min", lambda r: bool(r.national_min_krw), _national_min, ("national_krw",)),
    Line("years", _always, _years, ("years",)),
    Line("local_match", _always, _local_match, ("national_krw", "local_krw")),
    Line("type", lambda r: bool(r.types), _type, ("project_type",)),
)
assert tuple(line.rule for line in LINES) == RULES


def answer_checks(rules: Rules, facts: Facts) -> list[Check]:
    """The lines of the rules on answers, in the config's order, after the fixed ones."""
    checks = []
    for rule in rules.answer_rules:
        question = rules.question_of(rule.question)
        answer = facts.answers.get(rule.question)
        value = "(no answer)" if answer is None else describe(question, answer) if question else str(answer)
        name = answer_rule(rule.question)
        checks.append(Check(name, _answer_passes(rule, question, answer), value, rules.texts[name]))
    return checks


def _expected(rule: AnswerRuleSpec, question: QuestionSpec | None) -> str:
    """What an answer rule requires, as shown: 'members include a, b' or '= yes'."""
    if rule.members_include:
        return "members include " + ", ".join(rule.members_include)
    if question is not None and question.type == "choices":
        return f"includes {rule.equals}"
    if question is not None:
        return "= " + describe(question, _wanted(rule, question))
    return f"= {rule.equals}"


def _wanted(rule: AnswerRuleSpec, question: QuestionSpec | None) -> object:
    """The value an `equals` rule wants, normalised as an answer is ("yes" for a yes_no question
    is True, "1,000" for a number 1000); as written when it is no valid answer."""
    if question is None or rule.equals is None or question.type in ("choices", "members"):
        return rule.equals
    try:
        return validate(question, rule.equals)
    except InvalidInput:
        return rule.equals


def _answer_passes(rule: AnswerRuleSpec, question: QuestionSpec | None, answer: object) -> bool:
    """Whether an answer meets its rule; no answer never does."""
    if answer is None:
        return False
    if rule.members_include:
        if not isinstance(answer, Sequence) or isinstance(answer, str):
            return False
        kinds = {m.get("kind") for m in answer if isinstance(m, Mapping)}
        return all(kind in kinds for kind in rule.members_include)
    kind = question.type if question is not None else None
    if kind == "choices":
        return isinstance(answer, Sequence) and not isinstance(answer, str) and rule.equals in answer
    wanted = _wanted(rule, question)
    if kind == "number":
        return _same_number(answer, wanted)
    if isinstance(answer, bool) or isinstance(wanted, bool):  # True is not 1 here
        return answer is wanted
    return bool(answer == wanted)


def _same_number(answer: object, expected: object) -> bool:
    try:
        return (
            not isinstance(answer, bool)
            and not isinstance(expected, bool)
            and Decimal(str(answer)) == Decimal(str(expected))
        )
    except ArithmeticError:
        return False


def required_local(national_krw: int, ratio: Fraction) -> int:
    """The local share a national amount needs (rounded up to the won)."""
    return -(-national_krw * ratio.numerator // ratio.denominator)


def failures(checks: list[Check]) -> str:
    """The failed rules as one line, for a disqualification's reason."""
    return "; ".join(f"{c.rule}: {c.value} (required: {c.expected})" for c in checks if not c.passed)


def _won(amount: int | None) -> str:
    return "(none)" if amount is None else f"{amount:,} won"


def _ratio(ratio: Fraction) -> str:
    return f"{ratio.numerator}:{ratio.denominator}"


@dataclass(frozen=True)
class Year:
    year: int
    national_krw: int
    local_krw: int


def even_split(total: int, years: int) -> list[int]:
    """`total` won over `years` years, the remainder in the first year."""
    share, rest = divmod(total, years)
    return [share + rest] + [share] * (years - 1)


def default_schedule(first_year: int, years: int, national_krw: int, local_krw: int) -> list[Year]:
    nat, loc = even_split(national_krw, years), even_split(local_krw, years)
    return [Year(first_year + i, nat[i], loc[i]) for i in range(years)]


def check_schedule(schedule: list[Year], national_krw: int, local_krw: int, years: int, ratio: Fraction) -> None:
    """A funding schedule by year: consecutive years, as many as the plan's,
    adding up to the selected amounts, with the local match met every year."""
    from gongmo.states.errors import InvalidInput

    problems = []
    if len(schedule) != years:
        problems.append(f"{len(schedule)} year(s) given, the plan runs {years}")
    got = [y.year for y in schedule]
    if got != list(range(got[0], got[0] + len(got))) if got else True:
        problems.append(f"years {', '.join(map(str, got)) or '(none)'} must be consecutive and in order")
    nat = sum(y.national_krw for y in schedule)
    loc = sum(y.local_krw for y in schedule)
    if nat != national_krw:
        problems.append(f"national amounts add up to {nat:,} won, the selected national share is {national_krw:,}")
    if loc != local_krw:
        problems.append(f"local amounts add up to {loc:,} won, the local share is {local_krw:,}")
    for y in schedule:
        if y.national_krw < 0 or y.local_krw < 0:
            problems.append(f"{y.year}: amounts cannot be negative")
        elif y.local_krw < required_local(y.national_krw, ratio):
            problems.append(
                f"{y.year}: local {y.local_krw:,} won does not match national {y.national_krw:,} won"
                f" (needs {required_local(y.national_krw, ratio):,})"
            )
    if problems:
        raise InvalidInput(
            "{field}: "
            + "; ".join(problems)
            + " (write YEAR=NATIONAL/LOCAL per year, e.g. 2024=5000000000/5000000000)",
            field="schedule",
        )
