"""The pure rules checked before a move: role, reason, receipt window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gongmo.states.errors import GongmoError, MissingReason, NotPermitted, OutsideWindow
from gongmo.states.lifecycle import APPLICATION, Role, TriggerSpec
from gongmo.states.rules import check_reason, check_receipt_window, check_role

SEOUL = ZoneInfo("Asia/Seoul")


def kst(text: str) -> datetime:
    """'2024-05-29 18:00' in Asia/Seoul, as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL).astimezone(UTC)


# --------------------------------------------------------------------------
# check_role
# --------------------------------------------------------------------------


def _spec(roles: frozenset[Role], *, needs_reason: bool = False, name: str = "approve") -> TriggerSpec:
    return TriggerSpec(name, ("a",), "b", roles, needs_reason=needs_reason)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.APPLICANT])
def test_check_role_accepts_allowed_roles(role: Role) -> None:
    assert check_role(_spec(frozenset({Role.ADMIN, Role.APPLICANT})), role) is None


@pytest.mark.parametrize("role", [Role.SYSTEM, Role.EVALUATOR])
def test_check_role_refuses_other_roles(role: Role) -> None:
    spec = _spec(frozenset({Role.APPLICANT, Role.ADMIN}))
    with pytest.raises(NotPermitted) as info:
        check_role(spec, role)
    message = str(info.value)
    assert "'approve'" in message
    assert f"'{role.value}'" in message
    # Allowed roles are listed, sorted.
    assert message == f"role '{role.value}' may not fire 'approve' (allowed: admin, applicant)"
    assert isinstance(info.value, GongmoError)


@pytest.mark.parametrize(
    ("trigger", "role", "allowed"),
    [
        ("select", Role.APPLICANT, "admin"),
        ("select", Role.SYSTEM, "admin"),
        ("expire", Role.ADMIN, "system"),
        ("cancel", Role.EVALUATOR, "admin, system"),
        ("cancel", Role.APPLICANT, "admin, system"),
        ("withdraw", Role.SYSTEM, "admin, applicant"),
        ("submit", Role.EVALUATOR, "admin, applicant"),
    ],
)
def test_check_role_on_real_triggers(trigger: str, role: Role, allowed: str) -> None:
    expected = f"role '{role.value}' may not fire '{trigger}' (allowed: {allowed})"
    with pytest.raises(NotPermitted, match=f"^{re.escape(expected)}$"):
        check_role(APPLICATION.trigger(trigger), role)


@pytest.mark.parametrize(
    ("trigger", "role"),
    [
        ("submit", Role.APPLICANT),
        ("withdraw", Role.APPLICANT),
        ("cancel", Role.SYSTEM),
        ("cancel", Role.ADMIN),
        ("lapse", Role.SYSTEM),
        ("select", Role.ADMIN),
    ],
)
def test_check_role_accepts_on_real_triggers(trigger: str, role: Role) -> None:
    check_role(APPLICATION.trigger(trigger), role)


# --------------------------------------------------------------------------
# check_reason
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   ", "\t\n "], ids=["none", "empty", "spaces", "whitespace"])
def test_check_reason_refuses_missing_reason(reason: str | None) -> None:
    spec = _spec(frozenset({Role.ADMIN}), needs_reason=True, name="disqualify")
    with pytest.raises(MissingReason, match=r"^'disqualify' needs a reason: add reason = \"...\""):
        check_reason(spec, reason)


@pytest.mark.parametrize("trigger", ["disqualify", "reinstate", "cancel"])
@pytest.mark.parametrize("reason", [None, "", "   "], ids=["none", "empty", "spaces"])
def test_check_reason_refuses_missing_reason_on_real_triggers(trigger: str, reason: str | None) -> None:
    with pytest.raises(MissingReason, match=f"^'{trigger}' needs a reason"):
        check_reason(APPLICATION.trigger(trigger), reason)


@pytest.mark.parametrize("reason", ["false statement in the plan", "  padded  ", "x"])
def test_check_reason_accepts_a_reason(reason: str) -> None:
    assert check_reason(_spec(frozenset({Role.ADMIN}), needs_reason=True), reason) is None
    check_reason(APPLICATION.trigger("cancel"), reason)


@pytest.mark.parametrize("reason", [None, "", "   ", "because"], ids=["none", "empty", "spaces", "given"])
def test_check_reason_never_refuses_when_not_needed(reason: str | None) -> None:
    assert check_reason(_spec(frozenset({Role.ADMIN}), needs_reason=False), reason) is None
    check_reason(APPLICATION.trigger("select"), reason)
    check_reason(APPLICATION.trigger("waitlist"), reason)


# --------------------------------------------------------------------------
# check_receipt_window: [opens, closes)
# --------------------------------------------------------------------------

OPENS = kst("2024-05-20 09:00")
CLOSES = kst("2024-05-29 18:00")
ZONE = "Asia/Seoul"
WINDOW_KST = "2024-05-20 09:00:00 KST to 2024-05-29 18:00:00 KST"


@pytest.mark.parametrize(
    "now",
    [
        OPENS,
        OPENS + timedelta(microseconds=1),
        kst("2024-05-25 12:00"),
        CLOSES - timedelta(seconds=1),
        CLOSES - timedelta(microseconds=1),
    ],
    ids=["at-open", "just-after-open", "midway", "1s-before-close", "1us-before-close"],
)
def test_window_accepts_inside(now: datetime) -> None:
    assert check_receipt_window(now, OPENS, CLOSES, ZONE) is None


@pytest.mark.parametrize(
    ("now", "now_text"),
    [
        (CLOSES, "2024-05-29 18:00:00 KST"),
        (CLOSES + timedelta(seconds=1), "2024-05-29 18:00:01 KST"),
        (kst("2024-06-01 09:30"), "2024-06-01 09:30:00 KST"),
    ],
    ids=["at-close", "1s-after-close", "days-after"],
)
def test_window_refuses_at_and_after_close(now: datetime, now_text: str) -> None:
    with pytest.raises(OutsideWindow) as info:
        check_receipt_window(now, OPENS, CLOSES, ZONE)
    message = str(info.value)
    assert message.startswith("receipt is closed: ")
    assert "not open yet" not in message
    assert f"the window is {WINDOW_KST}" in message
    assert f"(now {now_text})" in message
    assert "extension" in message


def test_window_refuses_before_open() -> None:
    now = OPENS - timedelta(seconds=1)
    with pytest.raises(OutsideWindow) as info:
        check_receipt_window(now, OPENS, CLOSES, ZONE)
    message = str(info.value)
    assert message.startswith("receipt is not open yet: ")
    assert "closed" not in message
    assert f"the window is {WINDOW_KST}" in message
    assert "(now 2024-05-20 08:59:59 KST)" in message


def test_window_message_uses_the_given_zone() -> None:
    with pytest.raises(OutsideWindow) as info:
        check_receipt_window(CLOSES, OPENS, CLOSES, "UTC")
    message = str(info.value)
    assert "the window is 2024-05-20 00:00:00 UTC to 2024-05-29 09:00:00 UTC" in message
    assert "(now 2024-05-29 09:00:00 UTC)" in message
    assert "KST" not in message


def test_window_accepts_times_given_in_another_zone() -> None:
    # The same instant as one second before the close, expressed in KST.
    now = (CLOSES - timedelta(seconds=1)).astimezone(SEOUL)
    check_receipt_window(now, OPENS, CLOSES, ZONE)
    with pytest.raises(OutsideWindow, match="closed"):
        check_receipt_window(CLOSES.astimezone(SEOUL), OPENS, CLOSES, ZONE)


# --------------------------------------------------------------------------
# Extensions
# --------------------------------------------------------------------------

EXTENDED = kst("2024-05-31 18:00")


@pytest.mark.parametrize(
    "now",
    [CLOSES, CLOSES + timedelta(days=1), EXTENDED - timedelta(microseconds=1)],
    ids=["at-track-close", "a-day-late", "1us-before-extension"],
)
def test_extension_accepts_after_track_close(now: datetime) -> None:
    assert check_receipt_window(now, OPENS, CLOSES, ZONE, extended_until=EXTENDED) is None


def test_extension_refuses_at_its_own_close() -> None:
    with pytest.raises(OutsideWindow) as info:
        check_receipt_window(EXTENDED, OPENS, CLOSES, ZONE, extended_until=EXTENDED)
    message = str(info.value)
    assert message.startswith("receipt is closed: ")
    assert "the window is 2024-05-20 09:00:00 KST to 2024-05-31 18:00:00 KST" in message


def test_extension_does_not_open_receipt_early() -> None:
    with pytest.raises(OutsideWindow, match="not open yet"):
        check_receipt_window(OPENS - timedelta(seconds=1), OPENS, CLOSES, ZONE, extended_until=EXTENDED)


def test_earlier_extension_does_not_shorten_the_window() -> None:
    earlier = CLOSES - timedelta(days=2)
    check_receipt_window(earlier, OPENS, CLOSES, ZONE, extended_until=earlier)
    check_receipt_window(CLOSES - timedelta(seconds=1), OPENS, CLOSES, ZONE, extended_until=earlier)
    with pytest.raises(OutsideWindow) as info:
        check_receipt_window(CLOSES, OPENS, CLOSES, ZONE, extended_until=earlier)
    assert f"the window is {WINDOW_KST}" in str(info.value)


def test_extension_equal_to_close_changes_nothing() -> None:
    check_receipt_window(CLOSES - timedelta(microseconds=1), OPENS, CLOSES, ZONE, extended_until=CLOSES)
    with pytest.raises(OutsideWindow, match="closed"):
        check_receipt_window(CLOSES, OPENS, CLOSES, ZONE, extended_until=CLOSES)


# --------------------------------------------------------------------------
# a move that overrides a rule needs a reason (issue 19, point 12)
# --------------------------------------------------------------------------

from decimal import Decimal  # noqa: E402

from gongmo.states.rules import MoveFacts, OverrideNeedsReason, check_override, override  # noqa: E402

FAILED = MoveFacts(eligible=False, failed="local_match: 0 won (required: at least 8,000,000,000 won)")
SCORED = MoveFacts(score=Decimal("65.50"), minimum_score=Decimal(70))


@pytest.mark.parametrize(
    ("from_state", "trigger", "facts", "why"),
    [
        ("preliminary_review", "pass_review", FAILED, "its preliminary review checklist failed (local_match: 0 won"),
        ("selected", "waitlist", MoveFacts(), "it corrects a confirmed selection"),
        ("presentation_evaluation", "select", SCORED, "its committee score 65.50 is below the minimum 70"),
    ],
)
def test_a_move_against_a_rule_names_the_rule(from_state: str, trigger: str, facts: MoveFacts, why: str) -> None:
    found = override(from_state, trigger, facts)
    assert found is not None and found.startswith(why), found
    with pytest.raises(OverrideNeedsReason) as refused:
        check_override("12", from_state, trigger, facts, None)
    message = str(refused.value)
    assert message.startswith(f"application 12: '{trigger}' overrides a rule: {why}")
    assert 'add reason = "..."' in message and "\n" not in message
    assert isinstance(refused.value, MissingReason)  # the same 422 / exit 1 as any missing reason
    for blank in ("", "   "):
        with pytest.raises(OverrideNeedsReason):
            check_override("12", from_state, trigger, facts, blank)
    check_override("12", from_state, trigger, facts, "위원회 재심의 결과")  # a reason: accepted


@pytest.mark.parametrize(
    ("from_state", "trigger", "facts"),
    [
        ("preliminary_review", "pass_review", MoveFacts(eligible=True)),
        ("preliminary_review", "pass_review", MoveFacts(eligible=None)),
        ("presentation_evaluation", "waitlist", MoveFacts()),
        ("presentation_evaluation", "select", MoveFacts(score=Decimal(70), minimum_score=Decimal(70))),
        ("presentation_evaluation", "select", MoveFacts()),
        ("selected", "approve_kickoff", FAILED),
    ],
)
def test_a_move_within_the_rules_needs_no_reason(from_state: str, trigger: str, facts: MoveFacts) -> None:
    assert override(from_state, trigger, facts) is None
    check_override("12", from_state, trigger, facts, None)
