"""Kickoff: the selected file their detailed implementation plans (세부 실시계획);
the office receives, returns or approves them with a funding schedule by year.

Each test starts from the 2024 strong-and-small scenario right after the
selection was confirmed (2024-06-26 09:00 KST): 세종 (36110), 시흥 (41390) and
천안 (44130) selected, 청주 (43110) and 화성 (41590) waitlisted, the rest not
selected. kickoff_due is 2024-07-31 18:00 KST, with 14 days of grace.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.eligibility import Year
from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, OutsideWindow
from gongmo.workflow.core import files, samples
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import BLOB, CHUNK_BYTES, EVENT, FUNDING_YEAR, KICKOFF_PLAN, OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import committee, kickoff, review, selection
from tests.conftest import kst
from tests.workflow import contest_2024 as sc

OFFICE = sc.OFFICE

pytestmark = pytest.mark.sqlite_only  # the flow runs on PostgreSQL in test_selection.py


@pytest.fixture
def selected(app: App, clock: FixedClock, tmp_path: Path) -> dict[str, int]:
    """code -> application id, with the selection of the track confirmed."""
    sc.prepare(app, clock, tmp_path)
    sc.receive_all(app, clock)
    sc.at(app, clock, "2024-05-29 18:00")
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, OFFICE)
    review.disqualify_failed(app, sc.TRACK, OFFICE)
    committee.assign_track(app, sc.TRACK, OFFICE)
    rows = sc.apps(app)
    receipts = {
        code: str(r["receipt_no"])
        for code, r in rows.items()
        if code in sc.TARGETS and r["state"] == "written_evaluation"
    }
    clock.set(kst("2024-06-11 14:00"))
    sc.import_sheets(app, tmp_path / "written.csv", "written", receipts)
    sc.at(app, clock, "2024-06-12 18:00")
    clock.set(kst("2024-06-19 17:00"))
    sc.import_sheets(app, tmp_path / "presentation.csv", "presentation", receipts)
    clock.set(kst("2024-06-26 09:00"))
    selection.select(app, sc.TRACK, OFFICE, confirm=True)
    states = sc.states(app)
    assert [c for c in sc.TARGETS if states[c] == "selected"] == ["36110", "41390", "44130"]
    assert [c for c in sc.TARGETS if states[c] == "waitlisted"] == ["43110", "41590"]
    return {code: int(r["id"]) for code, r in sc.apps(app).items()}


def _plans(app: App, application_id: int) -> list[tuple[int, str]]:
    return [(int(p["round"]), str(p["status"])) for p in kickoff.plans(app, application_id)]


def _events(app: App, application_id: int, kind: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(EVENT.c.detail)
            .where(EVENT.c.application_id == application_id, EVENT.c.kind == kind)
            .order_by(EVENT.c.id)
        )
        return [json.loads(d) for d in conn.execute(query).scalars()]


def _funding_rows(app: App) -> int:
    with read(app.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(FUNDING_YEAR)).scalar_one())


def _plan_rows(app: App) -> int:
    with read(app.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(KICKOFF_PLAN)).scalar_one())


def _outbox_bodies(app: App, application_id: int, notice: str) -> list[str]:
    with read(app.db) as conn:
        query = sa.select(OUTBOX.c.body_text).where(
            OUTBOX.c.application_id == application_id, OUTBOX.c.notice == notice
        )
        return list(conn.execute(query).scalars())


def _state(app: App, code: str) -> str:
    return sc.states(app)[code]


# -- receive ---------------------------------------------------------------------------------


def test_receiving_plans_numbers_the_rounds_from_one(app: App, clock: FixedClock, selected: dict[str, int]) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))
    assert kickoff.receive(app, sejong, OFFICE) == 1
    kickoff.return_plan(app, sejong, "연차별 지방비 확보 근거를 첨부하십시오", OFFICE)
    clock.set(kst("2024-07-08 10:00"))
    assert kickoff.receive(app, sejong, OFFICE) == 2

    assert _plans(app, sejong) == [(1, "returned"), (2, "received")]
    second = kickoff.plans(app, sejong)[1]
    assert second["received_at"] == kst("2024-07-08 10:00")
    assert second["received_by"] == OFFICE.name
    assert _events(app, sejong, "plan_received") == [
        {"round": 1, "late": False, "on_paper": True},
        {"round": 2, "late": False, "on_paper": True},
    ]
    assert kickoff.plans(app, selected["41390"]) == []  # rounds count per application


class Counted(io.BytesIO):
    """A file that counts how many times it was read from."""

    reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        return super().read(size)


def _blob_bytes(app: App, sha256: str) -> bytes:
    with read(app.db) as conn:
        return b"".join(files.chunks(conn, sha256))


def _counts(app: App) -> tuple[int, int, int]:
    with read(app.db) as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (KICKOFF_PLAN, BLOB, EVENT)
        )


def test_a_plan_s_file_is_kept_by_its_hash_and_named_by_its_round_and_event(
    app: App, clock: FixedClock, selected: dict[str, int], tmp_path: Path
) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))
    data = samples.pdf("implementation plan") + b"%" * (3 * CHUNK_BYTES // 2)  # more than one chunk
    data = data.replace(b"%%EOF", b"") + b"\n%%EOF\n"
    path = tmp_path / "세부 실시계획.pdf"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()

    assert kickoff.receive(app, sejong, OFFICE, path) == 1

    (plan,) = kickoff.plans(app, sejong)
    assert (plan["sha256"], plan["file_name"], plan["size"], plan["file_type"]) == (
        sha,
        "세부 실시계획.pdf",
        len(data),
        "pdf",
    )
    assert _blob_bytes(app, sha) == data
    assert _events(app, sejong, "plan_received") == [
        {
            "round": 1,
            "late": False,
            "sha256": sha,
            "file_name": "세부 실시계획.pdf",
            "size": len(data),
            "file_type": "pdf",
        }
    ]
    # an open file (a form's spooled upload) with its name; the same bytes are stored once
    kickoff.return_plan(app, sejong, "보완", OFFICE)
    assert kickoff.receive(app, sejong, OFFICE, io.BytesIO(data), "../v2.pdf") == 2
    second = kickoff.plans(app, sejong)[1]
    assert (second["sha256"], second["file_name"]) == (sha, "v2.pdf")
    with read(app.db) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(BLOB).where(BLOB.c.sha256 == sha)).scalar_one() == 1


def test_a_plan_received_on_paper_keeps_no_file(app: App, clock: FixedClock, selected: dict[str, int]) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))
    blobs = _counts(app)[1]
    assert kickoff.receive(app, sejong, OFFICE) == 1
    (plan,) = kickoff.plans(app, sejong)
    assert (plan["sha256"], plan["file_name"], plan["size"], plan["file_type"]) == (None, None, None, None)
    assert _events(app, sejong, "plan_received") == [{"round": 1, "late": False, "on_paper": True}]
    assert _counts(app)[1] == blobs


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"", "plan.pdf", "plan.pdf: the file is empty (0 bytes)"),
        (b"MZ\x90\x00" + b"\x00" * 100, "plan.pdf", "plan.pdf is not an accepted type: its bytes are a Windows"),
        (None, "photo.png", "photo.png is not an accepted type: its bytes are a PNG image"),
        (b"%PDF-1.4 cut short", "plan.pdf", "plan.pdf is not an accepted type"),
    ],
)
def test_a_file_that_is_no_plan_document_is_refused_and_nothing_is_stored(
    app: App, clock: FixedClock, selected: dict[str, int], data: bytes | None, name: str, expected: str
) -> None:
    clock.set(kst("2024-07-01 10:00"))
    before = _counts(app)
    body = samples.png() if data is None else data
    with pytest.raises(InvalidInput) as refused:
        kickoff.receive(app, selected["36110"], OFFICE, io.BytesIO(body), name)
    assert expected in str(refused.value)
    assert _counts(app) == before


def test_a_refused_round_reads_none_of_its_file(app: App, clock: FixedClock, selected: dict[str, int]) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, sejong, OFFICE)
    before = _counts(app)
    waiting = Counted(samples.pdf("v2"))
    with pytest.raises(Conflict, match="is waiting for a decision"):
        kickoff.receive(app, sejong, OFFICE, waiting, "v2.pdf")
    waitlisted = Counted(samples.pdf("v1"))
    with pytest.raises(IllegalMove):
        kickoff.receive(app, selected["43110"], OFFICE, waitlisted, "v1.pdf")
    clock.set(kst("2024-08-14 18:00"))  # the grace is over
    late = Counted(samples.pdf("v1"))
    with pytest.raises(OutsideWindow):
        kickoff.receive(app, selected["41390"], OFFICE, late, "v1.pdf")
    assert (waiting.reads, waitlisted.reads, late.reads) == (0, 0, 0)
    assert _counts(app) == before


def test_a_plan_file_may_be_as_large_as_the_track_s_largest_document(app: App) -> None:
    _, track = app.loaded.config.track(sc.TRACK)
    spec = kickoff.plan_spec(track)
    assert spec.max_mb == max(d.max_mb for d in track.documents)
    assert spec.types == ["pdf", "hwp", "hwpx", "docx"]


def test_a_second_plan_is_refused_while_one_is_waiting_for_a_decision(
    app: App, clock: FixedClock, selected: dict[str, int]
) -> None:
    siheung = selected["41390"]
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, siheung, OFFICE)

    with pytest.raises(Conflict, match=f"plan round 1 of application {siheung} is waiting for a decision"):
        kickoff.receive(app, siheung, OFFICE)

    assert _plans(app, siheung) == [(1, "received")]
    assert len(_events(app, siheung, "plan_received")) == 1


@pytest.mark.parametrize(("code", "state"), [("43110", "waitlisted"), ("46130", "not_selected")])
def test_a_plan_is_refused_for_an_application_that_is_not_selected(
    app: App, clock: FixedClock, selected: dict[str, int], code: str, state: str
) -> None:
    clock.set(kst("2024-07-01 10:00"))

    with pytest.raises(IllegalMove, match=f"in state '{state}'") as refused:
        kickoff.receive(app, selected[code], OFFICE)

    assert "only a selected application files a plan" in str(refused.value)
    assert f"application {selected[code]}" in str(refused.value)
    assert _plan_rows(app) == 0
    assert _state(app, code) == state
    assert _events(app, selected[code], "plan_received") == []


def test_a_plan_is_refused_once_the_kickoff_grace_has_ended(
    app: App, clock: FixedClock, selected: dict[str, int]
) -> None:
    clock.set(kst("2024-08-14 18:00"))  # kickoff_due 07-31 18:00 + 14 days

    with pytest.raises(OutsideWindow, match="strong-small-2024 were accepted until 2024-08-14 18:00 KST"):
        kickoff.receive(app, selected["36110"], OFFICE)

    assert _plan_rows(app) == 0
    assert _state(app, "36110") == "selected"
    assert _events(app, selected["36110"], "plan_received") == []


def test_a_plan_received_after_kickoff_due_but_inside_the_grace_is_accepted_as_late(
    app: App, clock: FixedClock, selected: dict[str, int]
) -> None:
    clock.set(kst("2024-07-31 17:59"))
    assert kickoff.receive(app, selected["36110"], OFFICE) == 1
    clock.set(kst("2024-07-31 18:00"))  # exactly kickoff_due: late
    assert kickoff.receive(app, selected["41390"], OFFICE) == 1
    clock.set(kst("2024-08-14 17:59"))  # the last minute of the grace
    assert kickoff.receive(app, selected["44130"], OFFICE) == 1

    assert _events(app, selected["36110"], "plan_received") == [{"round": 1, "late": False, "on_paper": True}]
    assert _events(app, selected["41390"], "plan_received") == [{"round": 1, "late": True, "on_paper": True}]
    assert _events(app, selected["44130"], "plan_received") == [{"round": 1, "late": True, "on_paper": True}]
    assert _plans(app, selected["44130"]) == [(1, "received")]


# -- return ----------------------------------------------------------------------------------


def test_returning_a_plan_queues_a_notice_carrying_the_comments(
    app: App, clock: FixedClock, selected: dict[str, int]
) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, sejong, OFFICE)
    clock.set(kst("2024-07-02 15:00"))

    assert kickoff.return_plan(app, sejong, "  연차별 지방비 확보 근거를 첨부하십시오  ", OFFICE) == 1

    (plan,) = kickoff.plans(app, sejong)
    assert plan["status"] == "returned"
    assert plan["comments"] == "연차별 지방비 확보 근거를 첨부하십시오"
    assert plan["decided_at"] == kst("2024-07-02 15:00") and plan["decided_by"] == OFFICE.name
    assert sc.notices(app, sejong)[-1] == "kickoff_plan_returned"
    (body,) = _outbox_bodies(app, sejong, "kickoff_plan_returned")
    assert "검토 의견: 연차별 지방비 확보 근거를 첨부하십시오" in body
    assert _events(app, sejong, "plan_returned") == [{"round": 1, "comments": "연차별 지방비 확보 근거를 첨부하십시오"}]
    assert _state(app, "36110") == "selected"


@pytest.mark.parametrize("comments", ["", "   \n"])
def test_returning_a_plan_without_comments_is_refused(
    app: App, clock: FixedClock, selected: dict[str, int], comments: str
) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, sejong, OFFICE)
    before = sc.notices(app, sejong)

    with pytest.raises(InvalidInput, match="comments is empty: say what the plan must change"):
        kickoff.return_plan(app, sejong, comments, OFFICE)

    assert _plans(app, sejong) == [(1, "received")]
    assert sc.notices(app, sejong) == before
    assert _events(app, sejong, "plan_returned") == []


def test_returning_without_a_pending_plan_is_refused(app: App, clock: FixedClock, selected: dict[str, int]) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))

    with pytest.raises(Conflict, match="no plan received yet; record a plan first"):
        kickoff.return_plan(app, sejong, "보완 필요", OFFICE)

    assert _plan_rows(app) == 0
    assert "kickoff_plan_returned" not in sc.notices(app, sejong)


# -- approve ---------------------------------------------------------------------------------


def test_approving_without_a_pending_plan_is_refused(app: App, clock: FixedClock, selected: dict[str, int]) -> None:
    sejong = selected["36110"]
    clock.set(kst("2024-07-01 10:00"))

    with pytest.raises(Conflict, match=r"no plan received yet; record a plan first \(`gongmo kickoff receive`\)"):
        kickoff.approve(app, sejong, None, OFFICE)

    kickoff.receive(app, sejong, OFFICE)
    kickoff.return_plan(app, sejong, "보완 필요", OFFICE)
    with pytest.raises(Conflict, match="plan round 1 was returned; record a plan first"):
        kickoff.approve(app, sejong, None, OFFICE)

    assert _funding_rows(app) == 0
    assert _state(app, "36110") == "selected"
    assert _plans(app, sejong) == [(1, "returned")]
    assert _events(app, sejong, "plan_approved") == []


def test_approving_with_the_default_schedule_splits_evenly_with_the_remainder_in_the_first_year(
    app: App, clock: FixedClock, selected: dict[str, int]
) -> None:
    siheung = selected["41390"]  # 8,000,000,000 national + 8,000,000,000 local over 3 years
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, siheung, OFFICE)

    schedule = kickoff.approve(app, siheung, None, OFFICE)

    assert schedule == [
        Year(2024, 2_666_666_668, 2_666_666_668),
        Year(2025, 2_666_666_666, 2_666_666_666),
        Year(2026, 2_666_666_666, 2_666_666_666),
    ]
    stored = [(r["year"], r["national_krw"], r["local_krw"]) for r in kickoff.funding(app, siheung)]
    assert stored == [(y.year, y.national_krw, y.local_krw) for y in schedule]
    assert _state(app, "41390") == "kickoff"
    assert _plans(app, siheung) == [(1, "approved")]
    assert sc.notices(app, siheung)[-1] == "kickoff_confirmed"
    (detail,) = _events(app, siheung, "plan_approved")
    assert detail["round"] == 1
    assert [y["national_krw"] for y in detail["schedule"]] == [2_666_666_668, 2_666_666_666, 2_666_666_666]


def test_approving_with_a_custom_schedule_stores_it_as_given(
    app: App, clock: FixedClock, selected: dict[str, int]
) -> None:
    sejong = selected["36110"]  # 7,500,000,000 national + 7,500,000,000 local
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, sejong, OFFICE)
    schedule = kickoff.parse_schedule(
        ["2024=2,000,000,000/2,000,000,000", "2025=3000000000/3000000000", "2026=2_500_000_000/2_500_000_000"]
    )

    assert kickoff.approve(app, sejong, schedule, OFFICE) == schedule

    assert [(r["year"], r["national_krw"], r["local_krw"]) for r in kickoff.funding(app, sejong)] == [
        (2024, 2_000_000_000, 2_000_000_000),
        (2025, 3_000_000_000, 3_000_000_000),
        (2026, 2_500_000_000, 2_500_000_000),
    ]
    assert _state(app, "36110") == "kickoff"
    with pytest.raises(IllegalMove, match="in state 'kickoff'"):
        kickoff.receive(app, sejong, OFFICE)  # a project under way files no more plans


BILLION = 1_000_000_000
SCHEDULE_PROBLEMS = {
    "wrong number of years": (
        [Year(2024, 4 * BILLION, 4 * BILLION), Year(2025, 4 * BILLION, 4 * BILLION)],
        "2 year(s) given, the plan runs 3",
    ),
    "years not consecutive": (
        [
            Year(2024, 3 * BILLION, 3 * BILLION),
            Year(2025, 3 * BILLION, 3 * BILLION),
            Year(2027, 2 * BILLION, 2 * BILLION),
        ],
        "years 2024, 2025, 2027 must be consecutive and in order",
    ),
    "years out of order": (
        [
            Year(2025, 3 * BILLION, 3 * BILLION),
            Year(2024, 3 * BILLION, 3 * BILLION),
            Year(2026, 2 * BILLION, 2 * BILLION),
        ],
        "years 2025, 2024, 2026 must be consecutive and in order",
    ),
    "national sum wrong": (
        [
            Year(2024, 3 * BILLION, 3 * BILLION),
            Year(2025, 2 * BILLION, 3 * BILLION),
            Year(2026, 2 * BILLION, 2 * BILLION),
        ],
        "national amounts add up to 7,000,000,000 won, the selected national share is 8,000,000,000",
    ),
    "local below national in a year": (
        [
            Year(2024, 3 * BILLION, 2 * BILLION),
            Year(2025, 3 * BILLION, 4 * BILLION),
            Year(2026, 2 * BILLION, 2 * BILLION),
        ],
        "2024: local 2,000,000,000 won does not match national 3,000,000,000 won (needs 3,000,000,000)",
    ),
    "local sum wrong": (
        [
            Year(2024, 3 * BILLION, 3 * BILLION),
            Year(2025, 3 * BILLION, 4 * BILLION),
            Year(2026, 2 * BILLION, 2 * BILLION),
        ],
        "local amounts add up to 9,000,000,000 won, the local share is 8,000,000,000",
    ),
    "a negative amount": (
        [
            Year(2024, 5 * BILLION, 5 * BILLION),
            Year(2025, 4 * BILLION, 4 * BILLION),
            Year(2026, -1 * BILLION, -1 * BILLION),
        ],
        "2026: amounts cannot be negative",
    ),
    "no years at all": (
        [],
        "0 year(s) given, the plan runs 3; years (none) must be consecutive and in order;"
        " national amounts add up to 0 won, the selected national share is 8,000,000,000;"
        " local amounts add up to 0 won, the local share is 8,000,000,000",
    ),
}


@pytest.mark.parametrize("case", list(SCHEDULE_PROBLEMS))
def test_a_schedule_that_breaks_a_rule_is_refused_naming_the_problem_and_nothing_is_stored(
    app: App, clock: FixedClock, selected: dict[str, int], case: str
) -> None:
    schedule, problem = SCHEDULE_PROBLEMS[case]
    siheung = selected["41390"]  # 8,000,000,000 national + 8,000,000,000 local over 3 years
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, siheung, OFFICE)
    before = sc.notices(app, siheung)

    with pytest.raises(InvalidInput) as refused:
        kickoff.approve(app, siheung, schedule, OFFICE)

    assert str(refused.value) == (
        f"schedule: {problem} (write YEAR=NATIONAL/LOCAL per year, e.g. 2024=5000000000/5000000000)"
    )
    assert _funding_rows(app) == 0
    assert _state(app, "41390") == "selected"
    assert _plans(app, siheung) == [(1, "received")]
    assert _events(app, siheung, "plan_approved") == []
    assert sc.notices(app, siheung) == before


def test_a_refused_schedule_can_be_corrected_and_approved(
    app: App, clock: FixedClock, selected: dict[str, int]
) -> None:
    siheung = selected["41390"]
    clock.set(kst("2024-07-01 10:00"))
    kickoff.receive(app, siheung, OFFICE)
    with pytest.raises(InvalidInput):
        kickoff.approve(app, siheung, SCHEDULE_PROBLEMS["national sum wrong"][0], OFFICE)

    fixed = [
        Year(2024, 3 * BILLION, 3 * BILLION),
        Year(2025, 3 * BILLION, 3 * BILLION),
        Year(2026, 2 * BILLION, 2 * BILLION),
    ]
    kickoff.approve(app, siheung, fixed, OFFICE)

    assert _funding_rows(app) == 3
    assert _state(app, "41390") == "kickoff"


# -- parse_schedule --------------------------------------------------------------------------


@pytest.mark.parametrize("item", ["2024:1/1", "2024=1", "24=1/1", "2024=1/1/1", "2024=-1/1", "year=1/1"])
def test_parse_schedule_refuses_what_is_not_year_equals_national_slash_local(item: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        kickoff.parse_schedule(["2025=1/1", item])
    assert f"schedule = {item!r}: write YEAR=NATIONAL/LOCAL in won" in str(refused.value)
    assert "e.g. 2024=5000000000/5000000000" in str(refused.value)


def test_parse_schedule_accepts_thousands_separators_and_spaces() -> None:
    assert kickoff.parse_schedule(["2024=1,000/1,000", " 2025 = 2_000 / 3000 "]) == [
        Year(2024, 1000, 1000),
        Year(2025, 2000, 3000),
    ]
    assert kickoff.parse_schedule([]) == []
