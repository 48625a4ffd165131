"""A `gongmo` command whose clock runs behind: the crash harness's clock fault.

    GONGMO_CHAOS_CLOCK_LAG_S=3 python -m tests.chaos_daemon --config chaos.toml daemon --no-api

The harness starts every daemon through this module (from the checkout it runs in, so a scratch
copy of older code runs that code). With GONGMO_CHAOS_CLOCK_LAG_S set, every "now" gongmo reads
(workflow.clock.SystemClock) is that many seconds behind the machine's clock, as on a replica
whose clock lags; log lines keep the machine's time. With GONGMO_CHAOS_SLOW_FIRE_S, each deadline
action starts that long after its claim, so a deadline stays held long enough for an aimed kill.
Nothing in gongmo reads these variables: the harness fakes both from outside, as libfaketime would.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

LAG_ENV = "GONGMO_CHAOS_CLOCK_LAG_S"
# Each deadline action starts this many seconds after its claim (a slow database, a long close): the
# harness needs a deadline to stay held long enough for an aimed SIGKILL to land on it.
SLOW_ENV = "GONGMO_CHAOS_SLOW_FIRE_S"


def main() -> None:
    lag = float(os.environ.get(LAG_ENV) or 0.0)
    if lag:
        from gongmo.workflow.core import clock

        behind = timedelta(seconds=lag)

        def lagging_now(self: clock.SystemClock) -> datetime:
            return datetime.now(UTC) - behind

        clock.SystemClock.now = lagging_now  # type: ignore[method-assign]
    slow = float(os.environ.get(SLOW_ENV) or 0.0)
    if slow:
        import time

        from gongmo.workflow.deadlines import ticker

        fire = ticker.Ticker._fire

        def slow_fire(self: ticker.Ticker, row: Any, now: datetime) -> Any:
            time.sleep(slow)  # held (claimed, unfired) meanwhile; the lease thread keeps it
            return fire(self, row, now)

        ticker.Ticker._fire = slow_fire  # type: ignore[method-assign]
    from gongmo.workflow.cli import main as gongmo_main

    sys.argv[0] = "gongmo"
    gongmo_main()


if __name__ == "__main__":
    main()
