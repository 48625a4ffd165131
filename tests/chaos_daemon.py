"""A `gongmo` command whose clock runs behind: the crash harness's clock fault.

    GONGMO_CHAOS_CLOCK_LAG_S=3 python -m tests.chaos_daemon --config chaos.toml daemon --no-api

The harness starts every daemon through this module (from the checkout it runs in, so a scratch
copy of older code runs that code). With GONGMO_CHAOS_CLOCK_LAG_S set, every "now" gongmo reads
(workflow.clock.SystemClock) is that many seconds behind the machine's clock, as on a replica
whose clock lags; log lines keep the machine's time. Nothing in gongmo reads this variable: the
harness fakes the lag from outside, as libfaketime would.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

LAG_ENV = "GONGMO_CHAOS_CLOCK_LAG_S"


def main() -> None:
    lag = float(os.environ.get(LAG_ENV) or 0.0)
    if lag:
        from workflow import clock

        behind = timedelta(seconds=lag)

        def lagging_now(self: clock.SystemClock) -> datetime:
            return datetime.now(UTC) - behind

        clock.SystemClock.now = lagging_now  # type: ignore[method-assign]
    from workflow.cli import main as gongmo_main

    sys.argv[0] = "gongmo"
    gongmo_main()


if __name__ == "__main__":
    main()
