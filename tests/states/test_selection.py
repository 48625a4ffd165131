"""Selection within slots and budget, the waitlist, and promotion from it (pure, no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gongmo.states.selection import Candidate, Decision, Waiting, decide, promotion

BN = 1_000_000_000
MINIMUM = Decimal(70)


def candidates(*nationals_bn: int, unqualified: tuple[int, ...] = ()) -> list[Candidate]:
    """One candidate per national share, in rank order (rank 1 first); ids are 100 + rank.

    Totals fall by one point a rank from 90; ranks in `unqualified` score 60.
    """
    return [
        Candidate(
            application_id=100 + rank,
            label=f"R-{rank}",
            rank=rank,
            total=Decimal(60) if rank in unqualified else Decimal(91 - rank),
            qualified=rank not in unqualified,
            national_krw=national * BN,
        )
        for rank, national in enumerate(nationals_bn, start=1)
    ]


def outcomes(decisions: list[Decision]) -> list[tuple[int, str, int | None]]:
    return [(d.rank, d.outcome, d.waitlist_position) for d in decisions]


# --------------------------------------------------------------------------
# decide
# --------------------------------------------------------------------------


def test_slots_are_filled_in_rank_order_then_the_waitlist_then_the_rest_are_rejected() -> None:
    decisions = decide(candidates(8, 8, 8, 8, 8, 8), slots=3, budget_krw=100 * BN, waitlist=2, minimum=MINIMUM)
    assert outcomes(decisions) == [
        (1, "select", None),
        (2, "select", None),
        (3, "select", None),
        (4, "waitlist", 1),
        (5, "waitlist", 2),
        (6, "reject", None),
    ]
    assert decisions[0].note == "rank 1: slot 1 of 3; 92,000,000,000 won of the budget left"
    assert decisions[2].note == "rank 3: slot 3 of 3; 76,000,000,000 won of the budget left"
    assert decisions[3].note == "rank 4: all 3 slots filled; waitlist position 1"
    assert decisions[4].note == "rank 5: all 3 slots filled; waitlist position 2"
    assert decisions[5].note == "rank 6: all 3 slots filled; the waitlist of 2 is full"


def test_decisions_carry_the_application_id_and_label() -> None:
    decisions = decide(candidates(8, 8), slots=1, budget_krw=24 * BN, waitlist=1, minimum=MINIMUM)
    assert [(d.application_id, d.label) for d in decisions] == [(101, "R-1"), (102, "R-2")]


def test_an_unqualified_candidate_is_rejected_even_when_slots_are_free() -> None:
    decisions = decide(candidates(8, 8, 8, unqualified=(2,)), slots=3, budget_krw=24 * BN, waitlist=2, minimum=MINIMUM)
    assert outcomes(decisions) == [(1, "select", None), (2, "reject", None), (3, "select", None)]
    assert decisions[1].note == "rank 2: 60 is below the qualifying minimum 70"


def test_an_unqualified_candidate_is_not_put_on_the_waitlist() -> None:
    decisions = decide(candidates(8, 8, unqualified=(2,)), slots=1, budget_krw=24 * BN, waitlist=3, minimum=MINIMUM)
    assert outcomes(decisions) == [(1, "select", None), (2, "reject", None)]
    assert "below the qualifying minimum 70" in decisions[1].note


def test_one_that_would_exceed_the_budget_is_skipped_for_the_next_that_fits() -> None:
    # 24 bn, 3 slots: 8 + 8 leaves 8; rank 3 asks for 10 and is skipped; rank 4 takes the last 8.
    decisions = decide(candidates(8, 8, 10, 8), slots=3, budget_krw=24 * BN, waitlist=2, minimum=MINIMUM)
    assert outcomes(decisions) == [
        (1, "select", None),
        (2, "select", None),
        (3, "waitlist", 1),
        (4, "select", None),
    ]
    skipped = decisions[2].note
    assert "exceeds" in skipped
    assert "skipped" in skipped
    assert skipped == (
        "rank 3: its national share of 10,000,000,000 won exceeds the 8,000,000,000 won left of the budget;"
        " skipped; waitlist position 1"
    )
    assert decisions[3].note == "rank 4: slot 3 of 3; 0 won of the budget left"


def test_the_selected_never_exceed_the_budget_nor_the_slots() -> None:
    ranked = candidates(10, 9, 8, 7, 6, 5, 4)
    decisions = decide(ranked, slots=3, budget_krw=20 * BN, waitlist=10, minimum=MINIMUM)
    selected = [d.rank for d in decisions if d.outcome == "select"]
    assert selected == [1, 2]  # 10 + 9 leaves 1 bn: nothing else fits
    assert sum(c.national_krw for c in ranked if c.rank in selected) <= 20 * BN
    assert [(d.rank, d.waitlist_position) for d in decisions if d.outcome == "waitlist"] == [
        (3, 1),
        (4, 2),
        (5, 3),
        (6, 4),
        (7, 5),
    ]


def test_fewer_qualified_than_slots_selects_every_qualified_one() -> None:
    decisions = decide(
        candidates(8, 8, 8, 8, unqualified=(3, 4)), slots=3, budget_krw=24 * BN, waitlist=2, minimum=MINIMUM
    )
    assert outcomes(decisions) == [
        (1, "select", None),
        (2, "select", None),
        (3, "reject", None),
        (4, "reject", None),
    ]


def test_a_waitlist_of_zero_rejects_everyone_past_the_slots() -> None:
    decisions = decide(candidates(8, 8), slots=1, budget_krw=24 * BN, waitlist=0, minimum=MINIMUM)
    assert outcomes(decisions) == [(1, "select", None), (2, "reject", None)]
    assert decisions[1].note == "rank 2: all 1 slots filled; the waitlist of 0 is full"


def test_the_decisions_come_back_in_rank_order_whatever_the_input_order() -> None:
    ranked = candidates(8, 8, 10, 8, 8)
    shuffled = [ranked[3], ranked[0], ranked[4], ranked[2], ranked[1]]
    decisions = decide(shuffled, slots=3, budget_krw=24 * BN, waitlist=1, minimum=MINIMUM)
    assert [d.rank for d in decisions] == [1, 2, 3, 4, 5]
    assert outcomes(decisions) == [
        (1, "select", None),
        (2, "select", None),
        (3, "waitlist", 1),
        (4, "select", None),
        (5, "reject", None),
    ]


# --------------------------------------------------------------------------
# promotion
# --------------------------------------------------------------------------

WAITLIST = [
    Waiting(application_id=203, position=3, national_krw=5 * BN),
    Waiting(application_id=201, position=1, national_krw=10 * BN),
    Waiting(application_id=202, position=2, national_krw=8 * BN),
]


def test_promotion_picks_the_first_waitlisted_by_position_that_fits() -> None:
    picked, passed = promotion(WAITLIST, open_slots=1, budget_left_krw=10 * BN)
    assert picked == Waiting(201, 1, 10 * BN)
    assert passed == []


def test_promotion_passes_over_one_that_does_not_fit_with_a_note() -> None:
    picked, passed = promotion(WAITLIST, open_slots=1, budget_left_krw=8 * BN)
    assert picked == Waiting(202, 2, 8 * BN)
    assert passed == [
        "waitlist position 1 (application 201) passed over: its national share of 10,000,000,000 won"
        " exceeds the 8,000,000,000 won left"
    ]


@pytest.mark.parametrize("open_slots", [0, -1])
def test_promotion_without_an_open_slot_picks_no_one(open_slots: int) -> None:
    assert promotion(WAITLIST, open_slots=open_slots, budget_left_krw=100 * BN) == (None, [])


def test_promotion_when_nothing_fits_picks_no_one_and_notes_each_one_passed_over() -> None:
    picked, passed = promotion(WAITLIST, open_slots=2, budget_left_krw=4 * BN)
    assert picked is None
    assert len(passed) == 3
    assert [note.split(" passed over")[0] for note in passed] == [
        "waitlist position 1 (application 201)",
        "waitlist position 2 (application 202)",
        "waitlist position 3 (application 203)",
    ]
    assert all(note.endswith("exceeds the 4,000,000,000 won left") for note in passed)


def test_promotion_from_an_empty_waitlist_picks_no_one() -> None:
    assert promotion([], open_slots=1, budget_left_krw=10 * BN) == (None, [])


def test_each_decision_says_what_decided_it_and_the_budget_left() -> None:
    """The cause a notice explains: within the slots and budget (the budget left after it), skipped
    for the budget (the budget left then), after the slots were filled, below the minimum."""
    ranked = candidates(8, 8, 9, 8, 6, 8, 8, unqualified=(7,))
    got = {
        d.rank: (d.outcome, d.cause, d.left_krw, d.waitlist_position) for d in decide(ranked, 3, 22 * BN, 1, MINIMUM)
    }
    assert got == {
        1: ("select", "within", 14 * BN, None),
        2: ("select", "within", 6 * BN, None),
        3: ("waitlist", "budget", 6 * BN, 1),  # 9 bn does not fit the 6 bn left
        4: ("reject", "budget", 6 * BN, None),  # nor 8 bn; the waitlist of one is full
        5: ("select", "within", 0, None),  # 6 bn fits
        6: ("reject", "slots", 0, None),
        7: ("reject", "minimum", 0, None),
    }
