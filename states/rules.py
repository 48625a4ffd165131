"""Pure rules the engine checks before a move. Time is always passed in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from gongmo.states.errors import GongmoError, MissingReason, NotPermitted, OutsideWindow
from gongmo.states.lifecycle import Role, TriggerSpec


def check_role(spec: TriggerSpec, role: Role) -> None:
    if role not in spec.roles:
        raise NotPermitted(spec.name, role.value, sorted(r.value for r in spec.roles))


def check_reason(spec: TriggerSpec, reason: str | None) -> None:
    if spec.needs_reason and not (reason and reason.strip()):
        raise MissingReason(spec.name)


def check_receipt_window(
    now: datetime,
    opens: datetime,
    closes: datetime,
    zone: str,
    extended_until: datetime | None = None,
) -> None:
    """Receipt is open on [opens, closes): at the close instant it is closed.

    An extension granted to one applicant moves its own close, never the
    track's.
    """
    close = max(closes, extended_until) if extended_until else closes
    if opens <= now < close:
        return
    tz = ZoneInfo(zone)
    fmt = "%Y-%m-%d %H:%M:%S %Z"
    window = f"{opens.astimezone(tz):{fmt}} to {close.astimezone(tz):{fmt}}"
    when = "not open yet" if now < opens else "closed"
    raise OutsideWindow(
        f"receipt is {when}: the window is {window} (now {now.astimezone(tz):{fmt}});"
        " a late plan needs an extension granted by the office",
        opens=opens.astimezone(tz).isoformat(),
        closes=close.astimezone(tz).isoformat(),
    )


# -- a move that overrides a rule needs a reason ---------------------------------------------


@dataclass(frozen=True)
class MoveFacts:
    """What the rules know of one application when a trigger is fired on it."""

    eligible: bool | None = None  # the preliminary review's checklist passed (None: not checked)
    failed: str = ""  # the checklist's failed rules, as one line
    score: Decimal | None = None  # the committee score, once ranked
    minimum_score: Decimal | None = None  # the track's minimum to be selected


# The triggers that can override a rule: only these need the application's facts.
OVERRIDING: frozenset[str] = frozenset({"pass_review", "waitlist", "select"})


def override(from_state: str, trigger: str, facts: MoveFacts) -> str | None:
    """Which rule the move goes against, in words, or None: overriding a failed
    check, correcting a selection, selecting below the minimum."""
    if trigger == "pass_review" and facts.eligible is False:
        return f"its preliminary review checklist failed ({facts.failed or 'see `gongmo review list`'})"
    if trigger == "waitlist" and from_state == "selected":
        return "it corrects a confirmed selection"
    if (
        trigger == "select"
        and facts.score is not None
        and facts.minimum_score is not None
        and facts.score < facts.minimum_score
    ):
        return f"its committee score {facts.score} is below the minimum {facts.minimum_score}"
    return None


class OverrideNeedsReason(MissingReason):
    """A move against a rule, fired without saying why."""

    def __init__(self, what: str, trigger: str, why: str) -> None:
        GongmoError.__init__(
            self,
            f"{what}: '{trigger}' overrides a rule: {why}; add {{example}}:"
            " it is recorded in the audit row and shown by `gongmo show`",
            field="reason",
            example='"..."',
        )
        self.trigger = trigger


def check_override(application: str, from_state: str, trigger: str, facts: MoveFacts, reason: str | None) -> None:
    """Refuse a move that overrides a rule unless it carries a reason."""
    if reason and reason.strip():
        return
    why = override(from_state, trigger, facts)
    if why is not None:
        raise OverrideNeedsReason(f"application {application}", trigger, why)
