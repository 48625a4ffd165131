"""Domain errors hold ids and values; their own wording is interface-neutral,
and each interface names the inputs in its own words (issue 20)."""

from __future__ import annotations

import pytest

from gongmo.states.errors import (
    GongmoError,
    IllegalMove,
    InvalidInput,
    MissingReason,
    NotPermitted,
    Wording,
)
from gongmo.states.rules import OverrideNeedsReason


class Shouty(Wording):
    """A made-up interface: names an input in capitals."""

    def name(self, field: str) -> str:
        return field.upper()

    def given(self, field: str, shown: str) -> str:
        return f"{field.upper()}<-{shown}"

    def example(self, field: str, text: str) -> str:
        return f"{field.upper()}:{text}"


def test_missing_reason_holds_the_trigger_and_the_field() -> None:
    exc = MissingReason("withdraw")
    assert (exc.trigger, exc.field) == ("withdraw", "reason")
    assert str(exc) == "'withdraw' needs a reason: add reason = \"...\" (the applicant's notice carries it)"
    assert exc.say(Shouty()) == "'withdraw' needs a reason: add REASON:\"...\" (the applicant's notice carries it)"


def test_no_domain_wording_writes_a_flag() -> None:
    errors: list[GongmoError] = [
        MissingReason("disqualify"),
        OverrideNeedsReason("application 3", "select", "its score is below the minimum"),
        InvalidInput("{given}: write a whole number from 1", field="waitlist_position", value=0),
        InvalidInput("{field} is empty: say why, e.g. {example}", field="reason", value=""),
    ]
    for exc in errors:
        assert "--" not in str(exc), str(exc)


def test_invalid_input_keeps_field_value_and_names_other_inputs() -> None:
    exc = InvalidInput(
        "{field:skip} k1: {field} is required, e.g. {example}", field="reason", value=" ", example="'...'"
    )
    assert (exc.field, exc.value) == ("reason", " ")
    assert str(exc) == "skip k1: reason is required, e.g. reason = '...'"
    assert exc.say(Shouty()) == "SKIP k1: REASON is required, e.g. REASON:'...'"


def test_given_writes_the_value_as_shown() -> None:
    exc = InvalidInput("{given}: too big", field="national_krw", value=10**20, shown="1e20")
    assert str(exc) == "national_krw = 1e20: too big"
    assert exc.say(Shouty()) == "NATIONAL_KRW<-1e20: too big"
    assert InvalidInput("{given}: no", field="years", value=0).shown == "0"


def test_a_plain_message_is_left_as_it_is() -> None:
    text = "row 3: {not a token} and {field_x}"
    exc = InvalidInput(text)
    assert str(exc) == text == exc.say(Shouty())
    assert exc.field is None and exc.value is None


def test_illegal_move_and_not_permitted_keep_their_data() -> None:
    move = IllegalMove("42", "selected", "withdraw", ["waitlist", "cancel"])
    assert (move.application, move.state, move.trigger) == ("42", "selected", "withdraw")
    assert move.allowed == ["waitlist", "cancel"]
    assert str(move) == (
        "cannot 'withdraw' application 42 in state 'selected' (allowed from 'selected': waitlist, cancel)"
    )
    refused = NotPermitted("select", "evaluator", ["admin"])
    assert (refused.trigger, refused.role, refused.allowed) == ("select", "evaluator", ["admin"])


@pytest.mark.parametrize("kind", [MissingReason, OverrideNeedsReason])
def test_a_missing_reason_is_still_one_kind(kind: type[GongmoError]) -> None:
    assert issubclass(kind, MissingReason)
