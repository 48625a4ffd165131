"""The application lifecycle: one declarative table, validated when loaded.

The same table feeds a `transitions` Machine (used to check single moves),
the prebuilt (state, trigger) -> destination lookup used by the bulk path,
the audit replay, and the Mermaid diagram printed by `gongmo graph`.

Written and presentation evaluation are two states, not sub-steps of one:
they have separate windows in every call of the reference programs, the
committee may sit differently for each, and an applicant must be able to
see which one it is in.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from transitions import Machine

from gongmo.states.errors import TableError


class Role(StrEnum):
    SYSTEM = "system"  # the scheduler, at a deadline
    ADMIN = "admin"  # ministry / LH staff
    EVALUATOR = "evaluator"
    APPLICANT = "applicant"
    METRICS = "metrics"  # a monitoring system's token: reads /metrics, nothing else


@dataclass(frozen=True)
class StateSpec:
    name: str
    label_ko: str
    label_en: str
    final: bool = False


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger: from any of `sources` to `dest`.

    `milestone` says when the scheduler fires it (automatic triggers), as a
    milestone expression (see `At`): "receipt_closes", "review_starts or
    receipt_closes" (an optional milestone, else the one named after it),
    "kickoff_due + kickoff_grace_days" (days counted by a track setting).
    `roles` are who may fire it by hand. `notice` is the notice queued for the
    applicant in the same transaction. `done` is how the scheduler reports its
    moves ("3 expired"); `system_reason` is put before the deadline's own
    reason when the scheduler fires a trigger that needs one.
    """

    name: str
    sources: tuple[str, ...]
    dest: str
    roles: frozenset[Role]
    milestone: str | None = None
    needs_reason: bool = False
    notice: str | None = None
    description: str = ""
    done: str = ""
    system_reason: str = ""

    @property
    def automatic(self) -> bool:
        return self.milestone is not None


@dataclass(frozen=True)
class At:
    """A milestone expression, parsed: the first of `milestones` the track's
    calendar has (the later ones stand in for an optional milestone), plus the
    number of days held by the track setting `days` (counted as a period: see
    workflow/closures.period_end)."""

    milestones: tuple[str, ...]
    days: str | None = None

    def resolve(self, present: Collection[str]) -> At | None:
        """This expression for a calendar holding `present` milestones: one milestone, or None."""
        for name in self.milestones:
            if name in present:
                return At((name,), self.days)
        return None

    @property
    def milestone(self) -> str:
        return self.milestones[0]

    def __str__(self) -> str:
        text = " or ".join(self.milestones)
        return f"{text} + {self.days}" if self.days else text


_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_at(text: str) -> At:
    """'kickoff_due + kickoff_grace_days' -> At(('kickoff_due',), 'kickoff_grace_days'); ValueError if malformed."""
    base, plus, days = text.partition("+")
    names = tuple(n.strip() for n in base.split(" or "))
    setting = days.strip() if plus else None
    if not all(_NAME.match(n) for n in names) or (plus and not (setting and _NAME.match(setting))):
        raise ValueError(
            f"milestone expression {text!r}: write MILESTONE, 'MILESTONE or MILESTONE'"
            " or 'MILESTONE + SETTING' (e.g. 'kickoff_due + kickoff_grace_days')"
        )
    return At(names, setting)


@dataclass(frozen=True)
class DeadlineSpec:
    """One deadline row per track: `action` runs at `at` (a milestone expression
    naming one milestone). The automatic triggers whose milestone resolves to the
    same expression for a track are what the row does to its applications; an
    action without triggers reports or sends notices (workflow/ticker.py)."""

    action: str
    at: str
    description: str = ""


@dataclass(frozen=True)
class Table:
    states: tuple[StateSpec, ...]
    triggers: tuple[TriggerSpec, ...]
    initial: str
    _lookup: Mapping[tuple[str, str], str] = field(default_factory=dict, compare=False)
    deadlines: tuple[DeadlineSpec, ...] = ()

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    def state(self, name: str) -> StateSpec:
        for spec in self.states:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def trigger(self, name: str) -> TriggerSpec:
        for spec in self.triggers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def has_trigger(self, name: str) -> bool:
        return any(t.name == name for t in self.triggers)

    def dest(self, state: str, trigger: str) -> str | None:
        """Where `trigger` leads from `state`, or None if the move is illegal."""
        return self._lookup.get((state, trigger))

    def triggers_from(self, state: str) -> list[str]:
        return [t.name for t in self.triggers if state in t.sources]

    def deadline_plan(self, present: Collection[str]) -> list[tuple[DeadlineSpec, At, list[TriggerSpec]]]:
        """The deadline rows of a track whose calendar holds `present` milestones, in
        table order: each with its instant's expression and the automatic triggers it
        fires (those whose milestone resolves to it). A row of an absent (optional)
        milestone is left out; its triggers go to the milestone standing in for it."""
        plan = []
        for spec in self.deadlines:
            at = parse_at(spec.at)
            if at.resolve(present) is None:
                continue
            fired = [t for t in self.triggers if t.milestone and parse_at(t.milestone).resolve(present) == at]
            plan.append((spec, at, fired))
        return plan

    def deadline_triggers(self, action: str, present: Collection[str]) -> list[TriggerSpec]:
        """The automatic triggers the deadline `action` fires for a calendar holding `present`."""
        for spec, _, fired in self.deadline_plan(present):
            if spec.action == action:
                return fired
        return []


A = frozenset({Role.ADMIN})
SYS = frozenset({Role.SYSTEM})
ADMIN_OR_APPLICANT = frozenset({Role.ADMIN, Role.APPLICANT})
ADMIN_OR_SYSTEM = frozenset({Role.ADMIN, Role.SYSTEM})

# The states before a final decision, from which an applicant may withdraw.
OPEN_STATES = (
    "announcement",
    "receipt",
    "preliminary_review",
    "written_evaluation",
    "presentation_evaluation",
    "selected",
    "waitlisted",
)

APPLICATION_STATES: tuple[StateSpec, ...] = (
    StateSpec("announcement", "공고(작성 중)", "announcement (invited / draft)"),
    StateSpec("receipt", "접수", "received"),
    StateSpec("preliminary_review", "예비검토", "preliminary review"),
    StateSpec("written_evaluation", "서면평가", "written evaluation"),
    StateSpec("presentation_evaluation", "발표평가", "presentation evaluation"),
    StateSpec("selected", "선정", "selected"),
    StateSpec("waitlisted", "예비 선정(대기)", "waitlisted"),
    StateSpec("not_selected", "미선정", "not selected", final=True),
    StateSpec("kickoff", "사업 착수", "kickoff", final=True),
    StateSpec("withdrawn", "철회", "withdrawn", final=True),
    StateSpec("expired", "미제출", "expired (not submitted)", final=True),
    # Not final: an upheld objection reinstates the application.
    StateSpec("disqualified", "부적격", "disqualified"),
    StateSpec("cancelled", "선정 취소", "cancelled", final=True),
)

APPLICATION_TRIGGERS: tuple[TriggerSpec, ...] = (
    TriggerSpec(
        "submit",
        ("announcement",),
        "receipt",
        ADMIN_OR_APPLICANT,
        notice="receipt_confirmation",
        description="plan received inside the receipt window",
    ),
    TriggerSpec(
        "expire",
        ("announcement",),
        "expired",
        SYS,
        milestone="receipt_closes",
        notice="expired",
        description="nothing submitted by the close",
        done="expired",
    ),
    TriggerSpec(
        "start_review",
        ("receipt",),
        "preliminary_review",
        SYS,
        milestone="review_starts or receipt_closes",
        description="the preliminary review opens (at the receipt close if the track sets no review_starts)",
        done="to preliminary review",
    ),
    TriggerSpec(
        "pass_review",
        ("preliminary_review",),
        "written_evaluation",
        A,
        notice="review_passed",
        description="eligibility confirmed",
    ),
    TriggerSpec(
        "disqualify",
        ("preliminary_review", "written_evaluation", "presentation_evaluation"),
        "disqualified",
        A,
        needs_reason=True,
        notice="disqualified",
        description="ineligible, or a false statement found later",
    ),
    TriggerSpec(
        "reinstate",
        ("disqualified",),
        "written_evaluation",
        A,
        needs_reason=True,
        notice="review_passed",
        description="objection upheld",
    ),
    TriggerSpec(
        "start_presentation",
        ("written_evaluation",),
        "presentation_evaluation",
        SYS,
        milestone="written_ends",
        description="written evaluation closed",
        done="to presentation evaluation",
    ),
    TriggerSpec(
        "select",
        ("presentation_evaluation",),
        "selected",
        A,
        notice="selected",
        description="within slots and budget",
    ),
    TriggerSpec(
        "waitlist",
        ("presentation_evaluation", "selected"),
        "waitlisted",
        A,
        needs_reason=False,
        notice="waitlisted",
        description="next in line (also a corrected selection)",
    ),
    TriggerSpec(
        "reject",
        ("presentation_evaluation",),
        "not_selected",
        A,
        notice="not_selected",
        description="below the line",
    ),
    TriggerSpec(
        "promote",
        ("waitlisted",),
        "selected",
        ADMIN_OR_SYSTEM,
        notice="promoted",
        description="a selected applicant dropped out (automatic before the promotion date)",
    ),
    TriggerSpec(
        "approve_kickoff",
        ("selected",),
        "kickoff",
        A,
        notice="kickoff_confirmed",
        description="detailed implementation plan approved",
    ),
    TriggerSpec(
        "cancel",
        ("selected",),
        "cancelled",
        ADMIN_OR_SYSTEM,
        milestone="kickoff_due + kickoff_grace_days",
        needs_reason=True,
        notice="cancelled",
        description="no approved implementation plan when the kickoff grace ends, or cancelled by the ministry",
        done="cancelled",
        system_reason="no approved implementation plan",
    ),
    TriggerSpec(
        "lapse",
        ("waitlisted",),
        "not_selected",
        SYS,
        milestone="kickoff_due + kickoff_grace_days",
        notice="not_selected",
        description="the waitlist closes when the kickoff grace ends",
        done="waitlisted lapsed",
    ),
    TriggerSpec(
        "withdraw",
        OPEN_STATES,
        "withdrawn",
        ADMIN_OR_APPLICANT,
        notice="withdrawal_confirmed",
        description="the applicant withdrew",
    ),
)


# The deadline rows of every track, in calendar order. Each automatic trigger's
# milestone must resolve to one of these (validate checks it): the deadline
# rows (workflow/deadlines.py) and the scheduler's actions (workflow/ticker.py)
# are derived from this table and the triggers above, nowhere else.
APPLICATION_DEADLINES: tuple[DeadlineSpec, ...] = (
    DeadlineSpec("announce", "announce_at", "the call goes out: an application per invited applicant"),
    DeadlineSpec("open_receipt", "receipt_opens", "plans are taken from now (nothing moves)"),
    DeadlineSpec("close_receipt", "receipt_closes", "the receipt closes"),
    DeadlineSpec("open_review", "review_starts", "the preliminary review opens (tracks that set review_starts)"),
    DeadlineSpec("review_due", "review_ends", "the preliminary review should be done (reports who waits)"),
    DeadlineSpec("start_presentation", "written_ends", "the written evaluation closes"),
    DeadlineSpec("selection_due", "selection_at", "the selection is announced (reports undecided results)"),
    DeadlineSpec("kickoff_plan_due", "kickoff_due", "implementation plans are due (reminds the selected)"),
    DeadlineSpec("kickoff_closes", "kickoff_due + kickoff_grace_days", "the kickoff grace ends"),
)


# Names `transitions` puts on the model object: a state or trigger named so
# would shadow them.
RESERVED = frozenset({"state", "trigger", "machine"})


def validate(
    states: Iterable[StateSpec],
    triggers: Iterable[TriggerSpec],
    initial: str,
    deadlines: Iterable[DeadlineSpec] = (),
) -> Table:
    """Check a table and return it with its lookup built; raise TableError.
    With `deadlines`, every automatic trigger's milestone (each alternative)
    must be the instant of one deadline row."""
    states = tuple(states)
    triggers = tuple(triggers)
    deadlines = tuple(deadlines)
    names = [s.name for s in states]
    problems: list[str] = []
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"state '{dup}' is declared twice")
    if initial not in names:
        problems.append(f"initial state '{initial}' is not a declared state")
    if initial in names and next(s for s in states if s.name == initial).final:
        problems.append(f"initial state '{initial}' is final: nothing could ever happen")
    trig_names = [t.name for t in triggers]
    for dup in sorted({n for n in trig_names if trig_names.count(n) > 1}):
        problems.append(f"trigger '{dup}' is declared twice (declare one trigger with several sources)")
    known = set(names)
    for name in sorted(RESERVED & (known | set(trig_names))):
        problems.append(f"'{name}' is reserved by the state machine; rename that state or trigger")
    for t in triggers:
        for end in (*t.sources, t.dest):
            if end not in known:
                problems.append(f"trigger '{t.name}' names unknown state '{end}'")
        if not t.roles:
            problems.append(f"trigger '{t.name}' has no role that may fire it")
        if t.milestone == "":
            problems.append(f"trigger '{t.name}' has an empty milestone (name one, or use None for a human trigger)")
        if t.automatic and Role.SYSTEM not in t.roles:
            problems.append(f"trigger '{t.name}' runs at '{t.milestone}' but the system role may not fire it")
    problems += _check_deadlines(triggers, deadlines)
    lookup: dict[tuple[str, str], str] = {}
    for t in triggers:
        for src in t.sources:
            lookup[(src, t.name)] = t.dest
    for spec in states:
        exits = [t.name for t in triggers if spec.name in t.sources]
        if spec.final and exits:
            problems.append(f"final state '{spec.name}' has exits: {', '.join(exits)}")
        if not spec.final and not exits:
            problems.append(
                f"state '{spec.name}' is not final but has no exit (add a trigger from it, or mark it final)"
            )
    reachable = _reachable(initial, triggers)
    for name in names:
        if name not in reachable:
            problems.append(f"state '{name}' cannot be reached from '{initial}'")
    if problems:
        raise TableError("the transition table is invalid: " + "; ".join(problems))
    return Table(states=states, triggers=triggers, initial=initial, _lookup=lookup, deadlines=deadlines)


def _check_deadlines(triggers: tuple[TriggerSpec, ...], deadlines: tuple[DeadlineSpec, ...]) -> list[str]:
    problems: list[str] = []
    instants: dict[str, str] = {}
    for d in deadlines:
        try:
            at = parse_at(d.at)
        except ValueError as exc:
            problems.append(f"deadline '{d.action}': {exc}")
            continue
        if len(at.milestones) != 1:
            problems.append(f"deadline '{d.action}' must name one milestone, not {d.at!r}")
        if str(at) in instants:
            problems.append(f"deadlines '{instants[str(at)]}' and '{d.action}' are both at {at}")
        instants.setdefault(str(at), d.action)
    actions = [d.action for d in deadlines]
    for dup in sorted({a for a in actions if actions.count(a) > 1}):
        problems.append(f"deadline '{dup}' is declared twice")
    if not deadlines:
        return problems
    for t in triggers:
        if not t.milestone:
            continue
        try:
            at = parse_at(t.milestone)
        except ValueError as exc:
            problems.append(f"trigger '{t.name}': {exc}")
            continue
        for name in at.milestones:
            if str(At((name,), at.days)) not in instants:
                problems.append(
                    f"trigger '{t.name}' runs at '{At((name,), at.days)}', which no deadline row is at"
                    f" (deadlines: {', '.join(instants)})"
                )
    return problems


def _reachable(initial: str, triggers: tuple[TriggerSpec, ...]) -> set[str]:
    seen = {initial}
    frontier = [initial]
    while frontier:
        state = frontier.pop()
        for t in triggers:
            if state in t.sources and t.dest not in seen:
                seen.add(t.dest)
                frontier.append(t.dest)
    return seen


def build_machine(table: Table) -> Machine:
    """One shared Machine (model=None): attach an adapter, trigger, detach."""
    return Machine(
        model=None,
        states=list(table.state_names),
        transitions=[{"trigger": t.name, "source": list(t.sources), "dest": t.dest} for t in table.triggers],
        initial=table.initial,
        auto_transitions=False,
        ignore_invalid_triggers=False,
        send_event=False,
    )


def mermaid(table: Table) -> str:
    """The table as a Mermaid state diagram; each edge names its trigger and who fires it."""
    lines = ["stateDiagram-v2", f"    [*] --> {table.initial}"]
    for t in table.triggers:
        people = "/".join(sorted(r.value for r in t.roles if r is not Role.SYSTEM))
        anyone = "/".join(sorted(r.value for r in t.roles))
        when = " else ".join(str(parse_at(t.milestone)).split(" or ")) if t.milestone else ""
        who = f"at {when}" + (f", or by {people}" if people else "") if t.automatic else anyone
        for src in t.sources:
            lines.append(f"    {src} --> {t.dest}: {t.name} ({who})")
    for s in table.states:
        if s.final:
            lines.append(f"    {s.name} --> [*]")
    if table.deadlines:
        lines.append("    %% deadline rows of a track (the scheduler fires each once):")
    for d in table.deadlines:
        moves = [
            t.name if alts.index(d.at) == 0 else f"{t.name} if no {' or '.join(alts[: alts.index(d.at)])}"
            for t in table.triggers
            if t.milestone and d.at in (alts := _alternatives(t.milestone))
        ]
        lines.append(f"    %% {d.action} at {d.at}" + (f": {', '.join(moves)}" if moves else f": {d.description}"))
    return "\n".join(lines) + "\n"


def _alternatives(expression: str) -> list[str]:
    at = parse_at(expression)
    return [str(At((name,), at.days)) for name in at.milestones]


APPLICATION: Table = validate(APPLICATION_STATES, APPLICATION_TRIGGERS, "announcement", APPLICATION_DEADLINES)
