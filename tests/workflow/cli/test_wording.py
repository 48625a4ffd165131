"""The CLI words domain errors with its flags (workflow/cli/wording.py)."""

from __future__ import annotations

import pytest

from gongmo.states.errors import InvalidInput, MissingReason
from gongmo.states.rules import OverrideNeedsReason
from gongmo.workflow.cli.wording import FLAGS, flag, say


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("reason", "--reason"),
        ("waitlist_position", "--position"),
        ("national_krw", "--national"),
        ("local_krw", "--local"),
        ("project_type", "--type"),
        ("years", "--years"),
        ("as", "--as"),
    ],
)
def test_a_field_is_named_by_its_flag(field: str, expected: str) -> None:
    assert flag(field) == expected


def test_every_flag_in_the_table_is_a_flag() -> None:
    assert all(f.startswith("--") and "_" not in f for f in FLAGS.values())


def test_the_cli_says_what_it_said_before_issue_20() -> None:
    assert say(MissingReason("disqualify")) == (
        "'disqualify' needs a reason: add --reason \"...\" (the applicant's notice carries it)"
    )
    assert say(InvalidInput("{given}: a plan runs for 1 to 10 years", field="years", value=0)) == (
        "--years 0: a plan runs for 1 to 10 years"
    )
    skip = InvalidInput(
        "{field:skip} k1: {field} is required (why the call is not sent), e.g. {example}",
        field="reason",
        example="'...'",
    )
    assert say(skip) == "--skip k1: --reason is required (why the call is not sent), e.g. --reason '...'"
    override = say(OverrideNeedsReason("application 12", "select", "its score is below the minimum"))
    assert override.startswith("application 12: 'select' overrides a rule: its score is below the minimum;")
    assert 'add --reason "..."' in override
