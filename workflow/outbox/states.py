"""The outbox's states, declared once: a small state machine per row.

pending -> sending (leased) -> sent
                            -> retry (4xx, connection trouble; exponential backoff with jitter)
                            -> dead  (5xx, or attempts exhausted; the SMTP code and text kept)
held -> pending              (`gongmo outbox release`)
pending/held/retry -> cancelled (superseded by a newer notice of the same family)
dead/retry (and pending) -> pending (`gongmo outbox retry`: the office's word)

The mailer, the office's actions, the queue, the CLI's and the API's `--state`
and the metrics all take the names from here. The database stores the names as
text (outbox.state, no check constraint).
"""

from __future__ import annotations

from typing import Final

PENDING: Final = "pending"  # due at next_attempt_at
HELD: Final = "held"  # waits for `gongmo outbox release` (results under embargo)
SENDING: Final = "sending"  # leased by a mailer; a dead mailer's row comes back when the lease runs out
SENT: Final = "sent"
RETRY: Final = "retry"  # failed for now; due again at next_attempt_at
DEAD: Final = "dead"  # refused, or attempts exhausted: only the office sends it again
CANCELLED: Final = "cancelled"  # superseded by a newer notice before it went out

STATES: Final[tuple[str, ...]] = (PENDING, HELD, SENDING, SENT, RETRY, DEAD, CANCELLED)
# Not sent and not being sent: a newer notice of the same family cancels them.
UNSENT: Final[tuple[str, ...]] = (PENDING, HELD, RETRY)
# What the mailer claims when its time comes (besides a dead sender's expired lease).
DUE: Final[tuple[str, ...]] = (PENDING, RETRY)
# What the mailer never touches again by itself.
FINAL: Final[tuple[str, ...]] = (SENT, DEAD, CANCELLED)
# What the office retries in bulk (`gongmo outbox retry --state`), and one row at a time.
RETRYABLE: Final[tuple[str, ...]] = (DEAD, RETRY)
RETRYABLE_ONE: Final[tuple[str, ...]] = (DEAD, RETRY, PENDING)
