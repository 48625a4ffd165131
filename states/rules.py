"""Pure rules the engine checks before a move. Time is always passed in."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from states.errors import MissingReason, NotPermitted, OutsideWindow
from states.lifecycle import Role, TriggerSpec


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
