"""Selection within slots and budget, the waitlist, and promotion from it.

Pure: a ranking goes in, one decision per application comes out, each with
the sentence that explains it ("rank 4: its national share of 8,000,000,000
won exceeds the 6,000,000,000 won left of the budget; skipped").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Outcome = Literal["select", "waitlist", "reject"]
# Why: below the minimum; within the slots and budget; skipped for the budget; after the slots were filled.
Cause = Literal["minimum", "within", "budget", "slots"]


@dataclass(frozen=True)
class Candidate:
    application_id: int
    label: str
    rank: int
    total: Decimal
    qualified: bool
    national_krw: int


@dataclass(frozen=True)
class Decision:
    application_id: int
    label: str
    rank: int
    outcome: Outcome
    note: str
    waitlist_position: int | None = None
    cause: Cause = "within"
    left_krw: int = 0  # the budget left: after a selection, or when skipped for the budget


def decide(ranked: Sequence[Candidate], slots: int, budget_krw: int, waitlist: int, minimum: Decimal) -> list[Decision]:
    """The top of the ranking above the minimum, within the slots and the
    budget (skipping one that would exceed it); then the next `waitlist`
    qualified ones, in rank order; the rest not selected."""
    left = budget_krw
    chosen = 0
    decisions: dict[int, Decision] = {}
    waiting: list[tuple[Candidate, str, Cause, int]] = []
    for c in sorted(ranked, key=lambda c: c.rank):
        if not c.qualified:
            note = f"rank {c.rank}: {c.total} is below the qualifying minimum {minimum}"
            decisions[c.application_id] = Decision(c.application_id, c.label, c.rank, "reject", note, cause="minimum")
        elif chosen < slots and c.national_krw <= left:
            left -= c.national_krw
            chosen += 1
            note = f"rank {c.rank}: slot {chosen} of {slots}; {left:,} won of the budget left"
            decisions[c.application_id] = Decision(c.application_id, c.label, c.rank, "select", note, left_krw=left)
        elif chosen < slots:
            why = (
                f"rank {c.rank}: its national share of {c.national_krw:,} won exceeds the {left:,} won"
                " left of the budget; skipped"
            )
            waiting.append((c, why, "budget", left))
        else:
            waiting.append((c, f"rank {c.rank}: all {slots} slots filled", "slots", left))
    position = 0
    for c, why, cause, at_skip in waiting:
        if position < waitlist:
            position += 1
            note = f"{why}; waitlist position {position}"
            decisions[c.application_id] = Decision(
                c.application_id, c.label, c.rank, "waitlist", note, position, cause, at_skip
            )
        else:
            note = f"{why}; the waitlist of {waitlist} is full"
            decisions[c.application_id] = Decision(
                c.application_id, c.label, c.rank, "reject", note, None, cause, at_skip
            )
    return [decisions[c.application_id] for c in sorted(ranked, key=lambda c: c.rank)]


@dataclass(frozen=True)
class Waiting:
    application_id: int
    position: int
    national_krw: int


def promotion(waitlist: Sequence[Waiting], open_slots: int, budget_left_krw: int) -> tuple[Waiting | None, list[str]]:
    """The first waitlisted application (by position) that fits the budget
    left, if a slot is open; and a note for each one passed over."""
    if open_slots <= 0:
        return None, []
    passed: list[str] = []
    for w in sorted(waitlist, key=lambda w: w.position):
        if w.national_krw <= budget_left_krw:
            return w, passed
        passed.append(
            f"waitlist position {w.position} (application {w.application_id}) passed over: its national share of"
            f" {w.national_krw:,} won exceeds the {budget_left_krw:,} won left"
        )
    return None, passed
