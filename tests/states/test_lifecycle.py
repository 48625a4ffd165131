"""The application lifecycle table, checked against a specification written out here.

The expected edges, milestones, roles and reasons below were copied once from
the design and are the specification: when the table in states/lifecycle.py
changes, these tests must fail until the specification is changed with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from transitions import Machine, MachineError

from gongmo.states.errors import TableError
from gongmo.states.lifecycle import (
    APPLICATION,
    APPLICATION_STATES,
    APPLICATION_TRIGGERS,
    At,
    Role,
    StateSpec,
    Table,
    TriggerSpec,
    build_machine,
    mermaid,
    parse_at,
    validate,
)

# --------------------------------------------------------------------------
# The specification
# --------------------------------------------------------------------------

EXPECTED_STATES: tuple[str, ...] = (
    "announcement",
    "receipt",
    "preliminary_review",
    "written_evaluation",
    "presentation_evaluation",
    "selected",
    "waitlisted",
    "not_selected",
    "kickoff",
    "withdrawn",
    "expired",
    "disqualified",
    "cancelled",
)

EXPECTED_FINAL: frozenset[str] = frozenset({"not_selected", "kickoff", "withdrawn", "expired", "cancelled"})

EXPECTED_TRIGGERS: tuple[str, ...] = (
    "submit",
    "expire",
    "start_review",
    "pass_review",
    "disqualify",
    "reinstate",
    "start_presentation",
    "select",
    "waitlist",
    "reject",
    "promote",
    "approve_kickoff",
    "cancel",
    "lapse",  # after cancel: the kickoff close cancels, then lapses (its report's order)
    "withdraw",
)

# (source, trigger) -> dest: every legal move, and nothing else.
EXPECTED_EDGES: dict[tuple[str, str], str] = {
    ("announcement", "submit"): "receipt",
    ("announcement", "expire"): "expired",
    ("receipt", "start_review"): "preliminary_review",
    ("preliminary_review", "pass_review"): "written_evaluation",
    ("preliminary_review", "disqualify"): "disqualified",
    ("written_evaluation", "disqualify"): "disqualified",
    ("presentation_evaluation", "disqualify"): "disqualified",
    ("disqualified", "reinstate"): "written_evaluation",
    ("written_evaluation", "start_presentation"): "presentation_evaluation",
    ("presentation_evaluation", "select"): "selected",
    ("presentation_evaluation", "waitlist"): "waitlisted",
    ("selected", "waitlist"): "waitlisted",
    ("presentation_evaluation", "reject"): "not_selected",
    ("waitlisted", "promote"): "selected",
    ("waitlisted", "lapse"): "not_selected",
    ("selected", "approve_kickoff"): "kickoff",
    ("selected", "cancel"): "cancelled",
    ("announcement", "withdraw"): "withdrawn",
    ("receipt", "withdraw"): "withdrawn",
    ("preliminary_review", "withdraw"): "withdrawn",
    ("written_evaluation", "withdraw"): "withdrawn",
    ("presentation_evaluation", "withdraw"): "withdrawn",
    ("selected", "withdraw"): "withdrawn",
    ("waitlisted", "withdraw"): "withdrawn",
}

EXPECTED_MILESTONES: dict[str, str] = {
    "expire": "receipt_closes",
    "start_review": "review_starts or receipt_closes",
    "start_presentation": "written_ends",
    # Not "kickoff_due" (issue 19, point 14): they fire when the grace days after it end.
    "lapse": "kickoff_due + kickoff_grace_days",
    "cancel": "kickoff_due + kickoff_grace_days",
}

_SYS = frozenset({Role.SYSTEM})
_ADMIN = frozenset({Role.ADMIN})
EXPECTED_ROLES: dict[str, frozenset[Role]] = {
    "submit": frozenset({Role.ADMIN, Role.APPLICANT}),
    "expire": _SYS,
    "start_review": _SYS,
    "pass_review": _ADMIN,
    "disqualify": _ADMIN,
    "reinstate": _ADMIN,
    "start_presentation": _SYS,
    "select": _ADMIN,
    "waitlist": _ADMIN,
    "reject": _ADMIN,
    "promote": frozenset({Role.ADMIN, Role.SYSTEM}),
    "lapse": _SYS,
    "approve_kickoff": _ADMIN,
    "cancel": frozenset({Role.ADMIN, Role.SYSTEM}),
    "withdraw": frozenset({Role.ADMIN, Role.APPLICANT}),
}

EXPECTED_NEEDS_REASON: frozenset[str] = frozenset({"disqualify", "reinstate", "cancel"})

ALL_PAIRS = [(state, trigger) for state in EXPECTED_STATES for trigger in EXPECTED_TRIGGERS]
LEGAL_PAIRS = [pair for pair in ALL_PAIRS if pair in EXPECTED_EDGES]
ILLEGAL_PAIRS = [pair for pair in ALL_PAIRS if pair not in EXPECTED_EDGES]


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


# --------------------------------------------------------------------------
# The specification is self-consistent (guards the tests themselves)
# --------------------------------------------------------------------------


def test_specification_is_self_consistent() -> None:
    assert len(EXPECTED_STATES) == len(set(EXPECTED_STATES)) == 13
    assert len(EXPECTED_TRIGGERS) == len(set(EXPECTED_TRIGGERS)) == 15
    assert len(EXPECTED_EDGES) == 24
    assert {t for _, t in EXPECTED_EDGES} == set(EXPECTED_TRIGGERS)
    for (src, trig), dest in EXPECTED_EDGES.items():
        assert src in EXPECTED_STATES, (src, trig)
        assert dest in EXPECTED_STATES, (trig, dest)
    assert set(EXPECTED_ROLES) == set(EXPECTED_TRIGGERS)
    assert EXPECTED_FINAL.issubset(EXPECTED_STATES)
    assert len(LEGAL_PAIRS) == 24
    assert len(ILLEGAL_PAIRS) == 13 * 15 - 24


# --------------------------------------------------------------------------
# 1. Every legal and illegal move
# --------------------------------------------------------------------------


class Adapter:
    """A bare model object for the shared Machine."""

    state: str


@pytest.fixture(scope="module")
def machine() -> Machine:
    return build_machine(APPLICATION)


@pytest.fixture
def attach(machine: Machine) -> Iterator[list[Adapter]]:
    """Collect adapters attached by a test and always detach them afterwards."""
    attached: list[Adapter] = []
    yield attached
    for obj in attached:
        machine.remove_model(obj)
    assert all(obj not in machine.models for obj in attached)


def _adapter(machine: Machine, attached: list[Adapter], state: str) -> Adapter:
    obj = Adapter()
    machine.add_model(obj, initial=state)
    attached.append(obj)
    assert obj.state == state
    return obj


def test_table_declares_exactly_the_specified_states_and_triggers() -> None:
    assert APPLICATION.state_names == EXPECTED_STATES
    assert tuple(t.name for t in APPLICATION.triggers) == EXPECTED_TRIGGERS


@pytest.mark.parametrize(("state", "trigger"), LEGAL_PAIRS, ids=[_pair_id(p) for p in LEGAL_PAIRS])
def test_legal_move(machine: Machine, attach: list[Adapter], state: str, trigger: str) -> None:
    expected = EXPECTED_EDGES[(state, trigger)]
    assert APPLICATION.dest(state, trigger) == expected
    obj = _adapter(machine, attach, state)
    assert obj.trigger(trigger) is True  # type: ignore[attr-defined]
    assert obj.state == expected


@pytest.mark.parametrize(("state", "trigger"), ILLEGAL_PAIRS, ids=[_pair_id(p) for p in ILLEGAL_PAIRS])
def test_illegal_move(machine: Machine, attach: list[Adapter], state: str, trigger: str) -> None:
    assert APPLICATION.dest(state, trigger) is None
    obj = _adapter(machine, attach, state)
    with pytest.raises(MachineError):
        obj.trigger(trigger)  # type: ignore[attr-defined]
    assert obj.state == state


def test_adapters_are_detached_after_a_move(machine: Machine) -> None:
    obj = Adapter()
    machine.add_model(obj, initial="announcement")
    try:
        obj.trigger("submit")  # type: ignore[attr-defined]
    finally:
        machine.remove_model(obj)
    assert obj.state == "receipt"
    assert obj not in machine.models


@pytest.mark.parametrize("state", EXPECTED_STATES)
def test_triggers_from_matches_the_specification(state: str) -> None:
    expected = [t for t in EXPECTED_TRIGGERS if (state, t) in EXPECTED_EDGES]
    assert APPLICATION.triggers_from(state) == expected


def test_unknown_state_or_trigger_has_no_dest() -> None:
    assert APPLICATION.dest("nowhere", "submit") is None
    assert APPLICATION.dest("announcement", "teleport") is None
    assert not APPLICATION.has_trigger("teleport")
    assert all(APPLICATION.has_trigger(t) for t in EXPECTED_TRIGGERS)


# --------------------------------------------------------------------------
# 2. Automatic triggers, roles, reasons
# --------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", EXPECTED_TRIGGERS)
def test_milestone(trigger: str) -> None:
    spec = APPLICATION.trigger(trigger)
    assert spec.milestone == EXPECTED_MILESTONES.get(trigger)
    assert spec.automatic is (trigger in EXPECTED_MILESTONES)


def test_automatic_triggers_are_exactly_the_milestone_ones() -> None:
    automatic = {t.name for t in APPLICATION.triggers if t.automatic}
    assert automatic == {"expire", "start_review", "start_presentation", "lapse", "cancel"}


@pytest.mark.parametrize("trigger", EXPECTED_TRIGGERS)
def test_roles(trigger: str) -> None:
    assert APPLICATION.trigger(trigger).roles == EXPECTED_ROLES[trigger]


def test_evaluator_fires_nothing_and_automatic_triggers_allow_system() -> None:
    assert not any(Role.EVALUATOR in t.roles for t in APPLICATION.triggers)
    assert all(Role.SYSTEM in t.roles for t in APPLICATION.triggers if t.automatic)


@pytest.mark.parametrize("trigger", EXPECTED_TRIGGERS)
def test_needs_reason(trigger: str) -> None:
    assert APPLICATION.trigger(trigger).needs_reason is (trigger in EXPECTED_NEEDS_REASON)


def test_unknown_names_raise_key_error() -> None:
    with pytest.raises(KeyError):
        APPLICATION.trigger("teleport")
    with pytest.raises(KeyError):
        APPLICATION.state("nowhere")


# --------------------------------------------------------------------------
# 3. Table facts
# --------------------------------------------------------------------------


def test_initial_state() -> None:
    assert APPLICATION.initial == "announcement"
    assert not APPLICATION.state("announcement").final


def test_final_states() -> None:
    assert {s.name for s in APPLICATION.states if s.final} == EXPECTED_FINAL


@pytest.mark.parametrize("state", EXPECTED_STATES)
def test_final_iff_no_exit(state: str) -> None:
    assert APPLICATION.state(state).final is (state in EXPECTED_FINAL)
    assert (APPLICATION.triggers_from(state) == []) is (state in EXPECTED_FINAL)


def test_disqualified_is_not_final_and_can_be_reinstated() -> None:
    assert not APPLICATION.state("disqualified").final
    assert APPLICATION.dest("disqualified", "reinstate") == "written_evaluation"


def test_every_state_is_reachable_from_the_initial_one() -> None:
    seen = {APPLICATION.initial}
    frontier = [APPLICATION.initial]
    while frontier:
        state = frontier.pop()
        for trigger in EXPECTED_TRIGGERS:
            dest = APPLICATION.dest(state, trigger)
            if dest is not None and dest not in seen:
                seen.add(dest)
                frontier.append(dest)
    assert seen == set(EXPECTED_STATES)


def test_every_state_has_both_labels() -> None:
    for spec in APPLICATION.states:
        assert spec.label_ko.strip(), spec.name
        assert spec.label_en.strip(), spec.name


def test_real_table_validates() -> None:
    table = validate(APPLICATION_STATES, APPLICATION_TRIGGERS, "announcement")
    assert table.state_names == EXPECTED_STATES
    for (src, trig), dest in EXPECTED_EDGES.items():
        assert table.dest(src, trig) == dest


# --------------------------------------------------------------------------
# 4. A broken table is refused
# --------------------------------------------------------------------------

_A = frozenset({Role.ADMIN})


def _states(*specs: tuple[str, bool]) -> tuple[StateSpec, ...]:
    return tuple(StateSpec(name, f"{name} ko", f"{name} en", final=final) for name, final in specs)


def _go(
    name: str = "go",
    sources: tuple[str, ...] = ("a",),
    dest: str = "b",
    roles: frozenset[Role] = _A,
    milestone: str | None = None,
) -> TriggerSpec:
    return TriggerSpec(name, sources, dest, roles, milestone=milestone)


GOOD_STATES = _states(("a", False), ("b", True))
GOOD_TRIGGERS = (_go(),)


def _refused(states: tuple[StateSpec, ...], triggers: tuple[TriggerSpec, ...], initial: str, problem: str) -> str:
    with pytest.raises(TableError, match=re.escape(problem)) as info:
        validate(states, triggers, initial)
    message = str(info.value)
    assert message.startswith("the transition table is invalid: ")
    return message


def test_minimal_table_is_accepted() -> None:
    table = validate(GOOD_STATES, GOOD_TRIGGERS, "a")
    assert isinstance(table, Table)
    assert table.dest("a", "go") == "b"
    assert table.dest("b", "go") is None


def test_minimal_table_builds_a_machine() -> None:
    table = validate(GOOD_STATES, GOOD_TRIGGERS, "a")
    m = build_machine(table)
    obj = Adapter()
    m.add_model(obj)
    try:
        assert obj.state == "a"
        obj.trigger("go")  # type: ignore[attr-defined]
        assert obj.state == "b"
        with pytest.raises(MachineError):
            obj.trigger("go")  # type: ignore[attr-defined]
        assert obj.state == "b"
    finally:
        m.remove_model(obj)


def test_unknown_initial_state() -> None:
    _refused(GOOD_STATES, GOOD_TRIGGERS, "nowhere", "initial state 'nowhere' is not a declared state")


def test_initial_state_is_final() -> None:
    message = _refused(_states(("a", True)), (), "a", "initial state 'a' is final: nothing could ever happen")
    assert message == "the transition table is invalid: initial state 'a' is final: nothing could ever happen"


def test_unreachable_state_is_named() -> None:
    states = _states(("a", False), ("b", True), ("island", True))
    message = _refused(states, GOOD_TRIGGERS, "a", "state 'island' cannot be reached from 'a'")
    assert "'b'" not in message


def test_non_final_state_without_exit() -> None:
    states = _states(("a", False), ("b", False))
    message = _refused(
        states,
        GOOD_TRIGGERS,
        "a",
        "state 'b' is not final but has no exit (add a trigger from it, or mark it final)",
    )
    assert "state 'a'" not in message


def test_final_state_with_exits() -> None:
    states = _states(("a", False), ("b", True), ("c", True))
    triggers = (_go(), _go("onward", ("b",), "c"), _go("again", ("b",), "c"))
    _refused(states, triggers, "a", "final state 'b' has exits: onward, again")


@pytest.mark.parametrize(
    ("sources", "dest"),
    [(("a",), "ghost"), (("a", "ghost"), "b")],
    ids=["unknown-dest", "unknown-source"],
)
def test_trigger_names_unknown_state(sources: tuple[str, ...], dest: str) -> None:
    triggers = (_go(sources=sources, dest=dest),)
    states = GOOD_STATES if dest == "b" else _states(("a", False))
    _refused(states, triggers, "a", "trigger 'go' names unknown state 'ghost'")


def test_duplicate_state() -> None:
    states = (*GOOD_STATES, StateSpec("b", "again", "again", final=True))
    _refused(states, GOOD_TRIGGERS, "a", "state 'b' is declared twice")


def test_duplicate_trigger() -> None:
    states = _states(("a", False), ("b", True), ("c", True))
    triggers = (_go(), _go(dest="c"))
    _refused(
        states,
        triggers,
        "a",
        "trigger 'go' is declared twice (declare one trigger with several sources)",
    )


def test_trigger_without_roles() -> None:
    _refused(GOOD_STATES, (_go(roles=frozenset()),), "a", "trigger 'go' has no role that may fire it")


@pytest.mark.parametrize(
    "roles",
    [frozenset({Role.ADMIN}), frozenset({Role.ADMIN, Role.APPLICANT, Role.EVALUATOR})],
    ids=["admin", "everyone-but-system"],
)
def test_automatic_trigger_that_system_may_not_fire(roles: frozenset[Role]) -> None:
    _refused(
        GOOD_STATES,
        (_go(roles=roles, milestone="deadline"),),
        "a",
        "trigger 'go' runs at 'deadline' but the system role may not fire it",
    )


@pytest.mark.parametrize(
    "roles",
    [frozenset({Role.SYSTEM}), frozenset({Role.SYSTEM, Role.ADMIN})],
    ids=["system", "admin-and-system"],
)
def test_automatic_trigger_that_system_may_fire_is_accepted(roles: frozenset[Role]) -> None:
    table = validate(GOOD_STATES, (_go(roles=roles, milestone="deadline"),), "a")
    assert table.trigger("go").automatic


def test_several_problems_are_all_reported() -> None:
    states = _states(("a", False), ("b", False), ("b", True))
    triggers = (_go(roles=frozenset()),)
    with pytest.raises(TableError) as info:
        validate(states, triggers, "a")
    message = str(info.value)
    assert "state 'b' is declared twice" in message
    assert "trigger 'go' has no role that may fire it" in message


def test_real_table_without_approve_kickoff_is_refused() -> None:
    triggers = tuple(t for t in APPLICATION_TRIGGERS if t.name != "approve_kickoff")
    assert len(triggers) == len(APPLICATION_TRIGGERS) - 1
    message = _refused(APPLICATION_STATES, triggers, "announcement", "state 'kickoff' cannot be reached")
    assert message == "the transition table is invalid: state 'kickoff' cannot be reached from 'announcement'"


def test_real_table_without_reinstate_is_refused() -> None:
    triggers = tuple(t for t in APPLICATION_TRIGGERS if t.name != "reinstate")
    _refused(
        APPLICATION_STATES,
        triggers,
        "announcement",
        "state 'disqualified' is not final but has no exit (add a trigger from it, or mark it final)",
    )


# --------------------------------------------------------------------------
# 5. Mermaid
# --------------------------------------------------------------------------


def test_mermaid_header_and_initial() -> None:
    lines = mermaid(APPLICATION).splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert lines[1] == "    [*] --> announcement"
    assert lines.count("    [*] --> announcement") == 1
    assert mermaid(APPLICATION).endswith("\n")


EDGE_LINE = re.compile(r"^    (?P<src>\w+) --> (?P<dest>\w+): (?P<trigger>\w+) \((?P<who>[^()]+)\)$")


def test_mermaid_edges() -> None:
    lines = mermaid(APPLICATION).splitlines()
    edge_lines = [line for line in lines[2:] if "[*]" not in line and not line.startswith("    %%")]
    assert len(edge_lines) == len(EXPECTED_EDGES)
    edges: dict[tuple[str, str], str] = {}
    for line in edge_lines:
        match = EDGE_LINE.match(line)
        assert match, f"not of the form '    src --> dest: trigger (...)': {line!r}"
        key = (match["src"], match["trigger"])
        assert key not in edges, f"edge drawn twice: {line!r}"
        edges[key] = match["dest"]
    assert edges == EXPECTED_EDGES


def test_mermaid_labels_name_the_milestone_or_the_roles() -> None:
    for line in mermaid(APPLICATION).splitlines()[2:]:
        match = EDGE_LINE.match(line)
        if match is None:
            continue
        trigger, who = match["trigger"], match["who"]
        if trigger in EXPECTED_MILESTONES:
            for alternative in EXPECTED_MILESTONES[trigger].split(" or "):
                assert alternative in who, line
        else:
            for role in EXPECTED_ROLES[trigger]:
                assert role.value in who, line
            assert not any(m in who for e in EXPECTED_MILESTONES.values() for m in e.split(" or ")), line


def test_mermaid_final_states() -> None:
    lines = mermaid(APPLICATION).splitlines()
    ends = [line for line in lines if line.endswith(" --> [*]")]
    assert sorted(ends) == sorted(f"    {name} --> [*]" for name in EXPECTED_FINAL)
    # Every line is accounted for: header, initial, edges, ends, the deadline table's comments.
    comments = [line for line in lines if line.startswith("    %% ")]
    assert len(comments) == 1 + len(APPLICATION.deadlines)
    assert len(lines) == 2 + len(EXPECTED_EDGES) + len(EXPECTED_FINAL) + len(comments)


# --------------------------------------------------------------------------
# 6. One place for "which trigger fires at which deadline" (issue 19, point 14)
# --------------------------------------------------------------------------

CALENDAR = {"announce_at", "receipt_opens", "receipt_closes", "review_ends", "written_ends", "selection_at"}
CALENDAR |= {"kickoff_due"}


def _plan(present: set[str]) -> dict[str, tuple[str, list[str]]]:
    return {spec.action: (str(at), [t.name for t in fired]) for spec, at, fired in APPLICATION.deadline_plan(present)}


def test_deadline_rows_and_their_triggers_come_from_the_table() -> None:
    assert _plan(CALENDAR) == {
        "announce": ("announce_at", []),
        "open_receipt": ("receipt_opens", []),
        "close_receipt": ("receipt_closes", ["expire", "start_review"]),
        "review_due": ("review_ends", []),
        "start_presentation": ("written_ends", ["start_presentation"]),
        "selection_due": ("selection_at", []),
        "kickoff_plan_due": ("kickoff_due", []),
        "kickoff_closes": ("kickoff_due + kickoff_grace_days", ["cancel", "lapse"]),
    }


def test_a_review_start_takes_start_review_off_the_close() -> None:
    plan = _plan(CALENDAR | {"review_starts"})
    assert plan["close_receipt"] == ("receipt_closes", ["expire"])
    assert plan["open_review"] == ("review_starts", ["start_review"])
    assert APPLICATION.deadline_triggers("open_review", CALENDAR) == []


def test_every_automatic_trigger_fires_at_some_deadline_row() -> None:
    fired = {t.name for _, _, ts in APPLICATION.deadline_plan(CALENDAR) for t in ts}
    assert fired == {t.name for t in APPLICATION.triggers if t.automatic}


def test_a_trigger_at_no_deadline_row_is_refused() -> None:
    from gongmo.states.lifecycle import APPLICATION_DEADLINES, APPLICATION_STATES, APPLICATION_TRIGGERS

    triggers = [replace(t, milestone="kickoff_due + grace") if t.name == "lapse" else t for t in APPLICATION_TRIGGERS]
    with pytest.raises(TableError, match="trigger 'lapse' runs at 'kickoff_due \\+ grace', which no deadline row"):
        validate(APPLICATION_STATES, triggers, "announcement", APPLICATION_DEADLINES)


def test_parse_at() -> None:
    assert parse_at("kickoff_due + kickoff_grace_days") == At(("kickoff_due",), "kickoff_grace_days")
    assert parse_at("review_starts or receipt_closes").resolve({"receipt_closes"}) == At(("receipt_closes",))
    with pytest.raises(ValueError, match="milestone expression"):
        parse_at("kickoff_due + 14")


def test_mermaid_shows_the_real_milestone_of_lapse_and_cancel() -> None:
    text = mermaid(APPLICATION)
    assert "waitlisted --> not_selected: lapse (at kickoff_due + kickoff_grace_days)" in text
    assert "%% kickoff_closes at kickoff_due + kickoff_grace_days: cancel, lapse" in text
    assert "%% close_receipt at receipt_closes: expire, start_review if no review_starts" in text
