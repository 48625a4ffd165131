"""The committee of the 2024 strong-and-small track: the evaluator list,
conflicts of interest, assignment and score sheets (workflow/committee.py),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import tests.workflow.contest_2024 as sc
from gongmo.states.errors import InvalidInput, NotFound
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Track
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import (
    APPLICATION,
    ASSIGNMENT,
    DECLARED_CONFLICT,
    EVALUATOR,
    EVENT,
    OUTBOX,
    SCORE,
)
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import committee, review
from tests.conftest import config_copy, kst, make_app

OFFICE = sc.OFFICE
KIM, LEE, PARK, CHOI, JUNG = sc.EVALUATORS
HEADER = "name,email,affiliation,region,home_code,conflicts"
GOOD_ROW = "김교수,kim@univ-seoul.example,서울대학교 도시공학과,서울,,"
SCORES_HEADER = "receipt_no,evaluator,part,feasibility,innovation,participation,budget,effect"
POINTS = {"feasibility": "24.5", "innovation": "18", "participation": "17.25", "budget": "12", "effect": "13"}
POINTS_X100 = {"feasibility": 2450, "innovation": 1800, "participation": 1725, "budget": 1200, "effect": 1300}
# Applications in evaluation after the review: the 10 eligible scenario applicants (창원, 수원 disqualified).
IN_EVALUATION = [code for code in sc.TARGETS if code != "48120"]
STRICT_MINIMUM = (
    "minimum_evaluators = 4             # an evaluator in conflict recuses; 4 may still score (chosen)",
    "minimum_evaluators = 5",
)

pytestmark = pytest.mark.sqlite_only  # the flow runs on PostgreSQL in test_selection.py


# -- helpers ----------------------------------------------------------------------


def count(app: App, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with read(app.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def footprint(app: App) -> dict[str, Any]:
    """What a refused call must leave untouched: committee and score rows, events, notices, states."""
    with read(app.db) as conn:
        counts = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (EVALUATOR, DECLARED_CONFLICT, ASSIGNMENT, SCORE, EVENT, OUTBOX)
        }
        scores = sorted(
            tuple(r)
            for r in conn.execute(
                sa.select(
                    SCORE.c.application_id, SCORE.c.evaluator_id, SCORE.c.part, SCORE.c.criterion, SCORE.c.points_x100
                )
            )
        )
        versions = sorted(
            (int(r.id), str(r.state), int(r.version))
            for r in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state, APPLICATION.c.version))
        )
    return {"counts": counts, "scores": scores, "applications": versions}


def receipt(app: App, code: str) -> str:
    return str(sc.application(app, code)["receipt_no"])


def evaluator_id(app: App, email: str) -> int:
    with read(app.db) as conn:
        return int(conn.execute(sa.select(EVALUATOR.c.id).where(EVALUATOR.c.email == email)).scalar_one())


def evaluator_rows(app: App) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        return [dict(r) for r in conn.execute(sa.select(EVALUATOR).order_by(EVALUATOR.c.id)).mappings()]


def assigned_to(app: App, code: str) -> set[str]:
    with read(app.db) as conn:
        return set(
            conn.execute(
                sa.select(EVALUATOR.c.email)
                .join(ASSIGNMENT, ASSIGNMENT.c.evaluator_id == EVALUATOR.c.id)
                .where(ASSIGNMENT.c.application_id == sc.application(app, code)["id"])
            ).scalars()
        )


def scores_of(app: App, code: str, email: str, part: str = "written") -> dict[str, int]:
    with read(app.db) as conn:
        rows = conn.execute(
            sa.select(SCORE.c.criterion, SCORE.c.points_x100).where(
                SCORE.c.application_id == sc.application(app, code)["id"],
                SCORE.c.evaluator_id == evaluator_id(app, email),
                SCORE.c.part == part,
            )
        ).all()
    return {str(r[0]): int(r[1]) for r in rows}


def events_of(app: App, kind: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        rows = conn.execute(sa.select(EVENT).where(EVENT.c.kind == kind).order_by(EVENT.c.id)).mappings()
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


def write_csv(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_evaluators(app: App, path: Path) -> tuple[int, int]:
    """As `gongmo evaluators import FILE`: parse every row, then store them in one transaction."""
    rows = committee.parse_evaluators(path)
    with write(app.db) as conn:
        return committee.store_evaluators(conn, rows, app.clock.now())


def track_config(app: App) -> Track:
    return app.loaded.config.track(sc.TRACK)[1]


def sheet(ref: str, evaluator: str, part: str = "written", **points: str) -> committee.SheetInput:
    return committee.SheetInput(ref, evaluator, part, {**POINTS, **points})


def to_review_end(app: App, clock: FixedClock) -> None:
    """Receipt closed, the eligible passed and the rest disqualified (no objection)."""
    sc.receive_all(app, clock)
    sc.at(app, clock, "2024-05-29 18:00")
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, OFFICE)
    review.disqualify_failed(app, sc.TRACK, OFFICE)


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture
def contest(app: App, clock: FixedClock, tmp_path: Path) -> App:
    return sc.prepare(app, clock, tmp_path)


@pytest.fixture
def in_evaluation(contest: App, clock: FixedClock) -> App:
    to_review_end(contest, clock)
    return contest


@pytest.fixture
def assigned(in_evaluation: App, clock: FixedClock) -> App:
    """Evaluators assigned on 06-03; the clock inside the written window (2024-06-11 14:00)."""
    committee.assign_track(in_evaluation, sc.TRACK, OFFICE)
    clock.set(kst("2024-06-11 14:00"))
    return in_evaluation


@pytest.fixture
def strict_app(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[App]:
    """The shipped config with minimum_evaluators = evaluators_per_application = 5."""
    built = make_app(db_url, clock, config_copy(tmp_path, STRICT_MINIMUM))
    yield built
    built.db.dispose()


# -- the evaluator list -----------------------------------------------------------------


def test_the_committee_list_is_imported_with_regions_and_declared_conflicts(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "evaluators.csv", sc.EVALUATORS_CSV.strip())
    assert import_evaluators(app, path) == (5, 0)
    rows = {r["email"]: r for r in evaluator_rows(app)}
    assert {e: rows[e]["region"] for e in sc.EVALUATORS} == {KIM: "11", LEE: "30", PARK: "26", CHOI: "29", JUNG: "41"}
    assert rows[KIM]["affiliation"] == "서울대학교 도시공학과" and rows[KIM]["home_code"] is None
    with read(app.db) as conn:
        declared = conn.execute(
            sa.select(DECLARED_CONFLICT.c.evaluator_id, DECLARED_CONFLICT.c.applicant_code, DECLARED_CONFLICT.c.reason)
        ).all()
    assert [tuple(d) for d in declared] == [(rows[LEE]["id"], "51110", "declared in the committee list")]


@pytest.mark.parametrize(
    ("bad_row", "fragment"),
    [
        pytest.param(
            "이박사,lee-at-kict.example,한국건설기술연구원,대전,,",
            "row 3, column email = 'lee-at-kict.example'",
            id="bad-email",
        ),
        pytest.param(
            "이박사,lee@kict.example,한국건설기술연구원,Atlantis,,",
            "row 3, column region: region 'Atlantis' is not a 시·도",
            id="unknown-region",
        ),
        pytest.param(
            "이박사,lee@kict.example,한국건설기술연구원,대전,3011,",
            "row 3, column home_code = '3011'",
            id="bad-home-code",
        ),
        pytest.param(
            "이박사,lee@kict.example,한국건설기술연구원,대전,,51110;5111X",
            "row 3, column conflicts = '5111X': expected empty, or applicant codes separated by ';'",
            id="bad-conflicts-code",
        ),
        pytest.param(
            "김교수,KIM@univ-seoul.example,다른 대학교,서울,,",
            "row 3, column email = 'KIM@univ-seoul.example': already on row 2",
            id="duplicate-email",
        ),
        pytest.param(
            ",lee@kict.example,한국건설기술연구원,대전,,",
            "row 3, column name = ''",
            id="empty-name",
        ),
        pytest.param(
            "이박사,lee@kict.example,,대전,,",
            "row 3, column affiliation = ''",
            id="empty-affiliation",
        ),
    ],
)
def test_a_bad_evaluator_row_refuses_the_whole_file_naming_row_and_column(
    app: App, tmp_path: Path, bad_row: str, fragment: str
) -> None:
    path = write_csv(
        tmp_path, "evaluators.csv", HEADER, GOOD_ROW, bad_row, "최교수,choi@chonnam.example,전남대학교,광주,,"
    )
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        import_evaluators(app, path)
    message = str(refused.value)
    assert fragment in message
    assert message.endswith("nothing was imported")
    assert "row 2" not in message.replace("already on row 2", "")  # the good rows are not blamed
    assert footprint(app) == before
    assert count(app, EVALUATOR) == 0 and count(app, DECLARED_CONFLICT) == 0


def test_every_bad_evaluator_row_is_reported_at_once(app: App, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "evaluators.csv",
        HEADER,
        "이박사,lee@kict.example,연구원,Atlantis,,",
        GOOD_ROW,
        "박연구위원,park-at-busan,부산연구원,부산,,",
    )
    with pytest.raises(InvalidInput) as refused:
        import_evaluators(app, path)
    lines = str(refused.value).splitlines()
    assert lines[0].endswith(
        "row 2, column region: region 'Atlantis' is not a 시·도: write its name (e.g. 경기도 or 경기),"
        " its English name (e.g. gyeonggi) or its two-digit code (e.g. 41)"
    )
    assert "row 4, column email = 'park-at-busan'" in lines[1]
    assert lines[-1] == "nothing was imported"
    assert count(app, EVALUATOR) == 0


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        pytest.param("name,email,affiliation,home_code,conflicts", "missing: region", id="no-region"),
        pytest.param("name,affiliation,region", "missing: email", id="no-email"),
        pytest.param(HEADER + ",phone", "unknown: 'phone'", id="unknown-column"),
    ],
)
def test_an_evaluator_file_with_a_wrong_header_is_refused_naming_the_column(
    contest: App, tmp_path: Path, header: str, fragment: str
) -> None:
    path = write_csv(tmp_path, "bad-header.csv", header, "새위원,new@univ.example,새대학교,서울,,")
    before = footprint(contest)
    with pytest.raises(InvalidInput) as refused:
        import_evaluators(contest, path)
    message = str(refused.value)
    assert f"header must be {HEADER} (the last two may be left out)" in message
    assert fragment in message and message.endswith("nothing was imported")
    assert footprint(contest) == before
    assert "new@univ.example" not in {r["email"] for r in evaluator_rows(contest)}


def test_an_evaluator_file_without_rows_is_refused(app: App, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no rows after the header; nothing was imported"):
        import_evaluators(app, write_csv(tmp_path, "empty.csv", HEADER))
    assert count(app, EVALUATOR) == 0


def test_home_code_and_conflicts_columns_may_be_left_out(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path, "short.csv", "name,email,affiliation,region", "새위원,new@univ.example,새대학교,세종")
    assert import_evaluators(app, path) == (1, 0)
    [row] = evaluator_rows(app)
    assert (row["email"], row["region"], row["home_code"]) == ("new@univ.example", "36", None)


@pytest.mark.parametrize("region", ["경기", "경기도", "gyeonggi", "Gyeonggi", "41"])
def test_a_region_is_accepted_by_name_short_name_english_name_or_code(app: App, tmp_path: Path, region: str) -> None:
    path = write_csv(
        tmp_path, "evaluators.csv", HEADER, f"정위원,jung@gri.example,경기연구원,{region},41110,41390; 41590"
    )
    assert import_evaluators(app, path) == (1, 0)
    [row] = evaluator_rows(app)
    assert (row["region"], row["home_code"]) == ("41", "41110")
    with read(app.db) as conn:
        codes = set(conn.execute(sa.select(DECLARED_CONFLICT.c.applicant_code)).scalars())
    assert codes == {"41390", "41590"}


def test_importing_the_same_committee_list_twice_changes_nothing(contest: App, tmp_path: Path) -> None:
    before = footprint(contest)
    rows = evaluator_rows(contest)
    assert import_evaluators(contest, tmp_path / "evaluators.csv") == (0, 0)  # the file prepare() imported
    assert footprint(contest) == before
    assert evaluator_rows(contest) == rows


def test_reimporting_updates_a_changed_affiliation_in_place(contest: App, tmp_path: Path) -> None:
    rows = {r["email"]: r for r in evaluator_rows(contest)}
    changed = sc.EVALUATORS_CSV.replace("서울대학교 도시공학과", "서울시립대학교 도시행정학과")
    assert changed != sc.EVALUATORS_CSV
    path = write_csv(tmp_path, "evaluators-v2.csv", changed.strip())
    counts = (count(contest, EVALUATOR), count(contest, DECLARED_CONFLICT))
    assert import_evaluators(contest, path) == (0, 1)
    after = {r["email"]: r for r in evaluator_rows(contest)}
    assert after[KIM] == {**rows[KIM], "affiliation": "서울시립대학교 도시행정학과"}
    assert {e: r for e, r in after.items() if e != KIM} == {e: r for e, r in rows.items() if e != KIM}
    assert (count(contest, EVALUATOR), count(contest, DECLARED_CONFLICT)) == counts == (5, 1)


# -- declared conflicts ---------------------------------------------------------------------


def test_a_conflict_declared_after_assignment_withdraws_the_assignment_and_its_scores(assigned: App) -> None:
    app = assigned
    sejong, gumi = receipt(app, "36110"), receipt(app, "47190")
    committee.enter_sheets(app, [sheet(sejong, KIM), sheet(gumi, KIM), sheet(sejong, PARK)], OFFICE)
    assert KIM in assigned_to(app, "36110") and len(scores_of(app, "36110", KIM)) == 5
    sejong_id = int(sc.application(app, "36110")["id"])
    note = committee.declare_conflict(app, KIM.upper(), "36110", "세종시 스마트도시 자문위원", OFFICE)
    assert note == f"conflict recorded: {KIM.upper()} - 36110; application {sejong_id} unassigned (5 scores removed)"
    assert assigned_to(app, "36110") == {LEE, PARK, CHOI, JUNG}
    assert scores_of(app, "36110", KIM) == {}
    assert scores_of(app, "36110", PARK) == POINTS_X100  # the others' sheets stay
    assert scores_of(app, "47190", KIM) == POINTS_X100  # and so do KIM's other applications
    [unassigned] = events_of(app, "unassigned")
    assert unassigned["application_id"] == sejong_id
    assert unassigned["detail"] == {"evaluator": KIM, "scores_removed": 5, "why": "conflict declared"}
    [declared] = events_of(app, "conflict_declared")
    assert declared["detail"] == {"evaluator": KIM, "applicant": "36110"}
    with pytest.raises(InvalidInput, match=r"may not score application .*declared a conflict with 36110"):
        committee.enter_sheets(app, [sheet(sejong, KIM)], OFFICE)


def test_declaring_the_same_conflict_again_changes_nothing(assigned: App) -> None:
    app = assigned
    committee.declare_conflict(app, KIM, "36110", "자문위원", OFFICE)
    before = footprint(app)
    assert (
        committee.declare_conflict(app, KIM, "36110", "자문위원", OFFICE)
        == f"{KIM} already declared a conflict with 36110"
    )
    assert footprint(app) == before


@pytest.mark.parametrize(
    ("email", "code", "error", "fragment"),
    [
        pytest.param(
            "ghost@nowhere.example", "36110", NotFound, "no evaluator 'ghost@nowhere.example'", id="evaluator"
        ),
        pytest.param(KIM, "99999", NotFound, "no applicant with code '99999'", id="applicant"),
        pytest.param(KIM, "36110", InvalidInput, "^reason is empty", id="no-reason"),
    ],
)
def test_a_conflict_with_an_unknown_party_or_without_a_reason_is_refused(
    assigned: App, email: str, code: str, error: type[Exception], fragment: str
) -> None:
    before = footprint(assigned)
    reason = "" if error is InvalidInput else "자문위원"
    with pytest.raises(error, match=fragment):
        committee.declare_conflict(assigned, email, code, reason, OFFICE)
    assert footprint(assigned) == before


def test_a_conflict_added_by_reimporting_the_list_withdraws_the_assignment(assigned: App, tmp_path: Path) -> None:
    app = assigned
    committee.enter_sheets(app, [sheet(receipt(app, "36110"), KIM), sheet(receipt(app, "47190"), KIM)], OFFICE)
    changed = sc.EVALUATORS_CSV.replace("서울대학교 도시공학과,서울,,", "서울대학교 도시공학과,서울,,36110")
    assert changed != sc.EVALUATORS_CSV
    assert import_evaluators(app, write_csv(tmp_path, "evaluators-v2.csv", changed.strip())) == (0, 0)
    assert KIM not in assigned_to(app, "36110")
    assert scores_of(app, "36110", KIM) == {}
    assert scores_of(app, "47190", KIM) == POINTS_X100
    [unassigned] = events_of(app, "unassigned")
    assert unassigned["application_id"] == sc.application(app, "36110")["id"]
    assert unassigned["detail"] == {"evaluator": KIM, "scores_removed": 5, "why": "conflict declared"}
    assert unassigned["actor"] == "evaluators import"
    plan = committee.assign_track(app, sc.TRACK, OFFICE)
    assert sorted(plan[receipt(app, "36110")]) == sorted([LEE, PARK, CHOI, JUNG])


def test_a_region_change_that_creates_a_conflict_withdraws_the_assignment(assigned: App, tmp_path: Path) -> None:
    app = assigned
    changed = sc.EVALUATORS_CSV.replace("서울대학교 도시공학과,서울,,", "서울대학교 도시공학과,세종,,")
    assert changed != sc.EVALUATORS_CSV
    assert import_evaluators(app, write_csv(tmp_path, "evaluators-v2.csv", changed.strip())) == (0, 1)
    plan = committee.assign_track(app, sc.TRACK, OFFICE)
    assert KIM not in plan[receipt(app, "36110")]
    assert KIM not in assigned_to(app, "36110")


# -- assignment --------------------------------------------------------------------------


def test_conflicted_evaluators_are_never_assigned(in_evaluation: App) -> None:
    app = in_evaluation
    plan = committee.assign_track(app, sc.TRACK, OFFICE)
    assert set(plan) == {receipt(app, c) for c in IN_EVALUATION}
    for code in IN_EVALUATION:
        expected = {e for e in sc.EVALUATORS if not sc.conflicted(code, e)}
        assert set(plan[receipt(app, code)]) == expected == assigned_to(app, code), code
    assert JUNG not in assigned_to(app, "41390") and JUNG not in assigned_to(app, "41590")  # 경기
    assert PARK not in assigned_to(app, "26350")  # 부산
    assert LEE not in assigned_to(app, "51110")  # declared in the list
    assert count(app, ASSIGNMENT) == 5 * 10 - 4
    assert assigned_to(app, "48120") == set()  # disqualified: not in evaluation
    assert len(events_of(app, "assigned")) == 10


def test_an_evaluator_is_never_assigned_to_their_own_local_government(in_evaluation: App, tmp_path: Path) -> None:
    app = in_evaluation
    path = write_csv(tmp_path, "sixth.csv", HEADER, "세종위원,sejong@univ.example,세종 소재 대학교,서울,36110,")
    import_evaluators(app, path)
    committee.assign_track(app, sc.TRACK, OFFICE)
    assert "sejong@univ.example" not in assigned_to(app, "36110")
    assert len(assigned_to(app, "36110")) == 5
    assert any("sejong@univ.example" in assigned_to(app, c) for c in IN_EVALUATION)  # the sixth is used elsewhere


def test_assigning_twice_adds_nothing(in_evaluation: App) -> None:
    app = in_evaluation
    first = committee.assign_track(app, sc.TRACK, OFFICE)
    before = footprint(app)
    second = committee.assign_track(app, sc.TRACK, OFFICE)
    assert {k: sorted(v) for k, v in second.items()} == {k: sorted(v) for k, v in first.items()}
    assert footprint(app) == before


def test_assigning_again_fills_only_the_gaps(in_evaluation: App, tmp_path: Path) -> None:
    app = in_evaluation
    committee.assign_track(app, sc.TRACK, OFFICE)
    events = len(events_of(app, "assigned"))
    import_evaluators(app, write_csv(tmp_path, "sixth.csv", HEADER, "새위원,new@univ.example,새대학교,제주,,"))
    plan = committee.assign_track(app, sc.TRACK, OFFICE)
    gained = [code for code in IN_EVALUATION if "new@univ.example" in plan[receipt(app, code)]]
    assert sorted(gained) == ["26350", "41390", "41590", "51110"]  # the four with a seat left
    assert count(app, ASSIGNMENT) == 50
    assert len(events_of(app, "assigned")) == events + 4


def test_assignment_without_enough_evaluators_is_refused_naming_the_applications(
    strict_app: App, clock: FixedClock, tmp_path: Path
) -> None:
    app = strict_app
    sc.prepare(app, clock, tmp_path)
    to_review_end(app, clock)
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        committee.assign_track(app, sc.TRACK, OFFICE)
    message = str(refused.value)
    siheung = receipt(app, "41390")
    assert (
        f"application {siheung} (41390): 4 evaluator(s) without a conflict, 5 needed;"
        f" in conflict: {JUNG} (same region as the applicant (경기도))"
    ) in message
    assert f"application {receipt(app, '51110')} (51110): 4 evaluator(s)" in message
    assert f"{LEE} (declared a conflict with 51110)" in message
    assert f"application {receipt(app, '26350')} (26350)" in message
    assert f"application {receipt(app, '41590')} (41590)" in message
    assert receipt(app, "36110") not in message  # 세종 has five
    assert message.endswith("Import more evaluators, or lower evaluation.minimum_evaluators; nothing assigned")
    assert footprint(app) == before
    assert count(app, ASSIGNMENT) == 0 and events_of(app, "assigned") == []


def test_assignment_before_the_review_is_refused(contest: App, clock: FixedClock) -> None:
    sc.receive_all(contest, clock)
    sc.at(contest, clock, "2024-05-29 18:00")
    before = footprint(contest)
    with pytest.raises(InvalidInput, match=f"track {sc.TRACK} has no application in evaluation: pass the review first"):
        committee.assign_track(contest, sc.TRACK, OFFICE)
    assert footprint(contest) == before


# -- scores -----------------------------------------------------------------------------


def test_a_valid_sheet_is_stored_exactly(assigned: App) -> None:
    app = assigned
    before = count(app, SCORE)
    assert committee.enter_sheets(app, [sheet(receipt(app, "36110"), KIM)], OFFICE) == 1
    assert count(app, SCORE) == before + 5
    assert scores_of(app, "36110", KIM) == POINTS_X100
    [scored] = events_of(app, "scored")
    assert scored["application_id"] == sc.application(app, "36110")["id"]
    assert scored["detail"] == {"evaluator": KIM, "part": "written", "points": POINTS}
    assert events_of(app, "score_corrected") == []


def test_a_sheet_may_name_the_application_by_id(assigned: App) -> None:
    app = assigned
    ref = str(sc.application(app, "47190")["id"])
    committee.enter_sheets(app, [sheet(ref, CHOI, feasibility="30", effect="0")], OFFICE)
    assert scores_of(app, "47190", CHOI) == {**POINTS_X100, "feasibility": 3000, "effect": 0}


def test_a_correction_replaces_the_sheet_and_records_the_old_points(assigned: App, clock: FixedClock) -> None:
    app = assigned
    ref = receipt(app, "36110")
    committee.enter_sheets(app, [sheet(ref, KIM)], OFFICE)
    rows = count(app, SCORE)
    clock.set(kst("2024-06-12 10:00"))
    committee.enter_sheets(app, [sheet(ref, KIM, feasibility="26", budget="12.75")], OFFICE)
    assert count(app, SCORE) == rows == 5
    assert scores_of(app, "36110", KIM) == {**POINTS_X100, "feasibility": 2600, "budget": 1275}
    [corrected] = events_of(app, "score_corrected")
    assert corrected["detail"]["was"] == {
        "feasibility": "24.5",
        "innovation": "18",
        "participation": "17.25",
        "budget": "12",
        "effect": "13",
    }
    assert corrected["detail"]["points"] == {**POINTS, "feasibility": "26", "budget": "12.75"}
    assert corrected["at"] == kst("2024-06-12 10:00")
    assert len(events_of(app, "scored")) == 1


def _unassigned_evaluator(app: App, tmp_path: Path) -> str:
    """A sixth evaluator, imported after the assignment: free of conflicts, assigned to nothing."""
    import_evaluators(app, write_csv(tmp_path, "sixth.csv", HEADER, "새위원,new@univ.example,새대학교,제주,,"))
    return "new@univ.example"


SheetFor = Callable[[App, Path], committee.SheetInput]
REFUSED_SHEETS: list[Any] = [
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, feasibility="30.01"),
        "feasibility = 30.01: out of range, give 0 to 30",
        id="above-range",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, budget="-1"),
        "budget = -1: out of range, give 0 to 15",
        id="negative",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, creativity="5"),
        "unknown criterion 'creativity'",
        id="unknown-criterion",
    ),
    pytest.param(
        lambda app, _: committee.SheetInput(
            receipt(app, "36110"), KIM, "written", {k: v for k, v in POINTS.items() if k != "effect"}
        ),
        "criterion 'effect' has no points",
        id="missing-criterion",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, innovation="열여덟"),
        "innovation = '열여덟': not a number",
        id="not-a-number",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, innovation=""),
        "innovation = '': not a number",
        id="empty-value",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, participation="17.255"),
        "participation = '17.255': write points with at most two decimals",
        id="three-decimals",
    ),
    pytest.param(
        lambda app, tmp: sheet(receipt(app, "36110"), _unassigned_evaluator(app, tmp)),
        "new@univ.example is not assigned to application",
        id="not-assigned",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "41390"), JUNG),
        f"{JUNG} may not score application",
        id="conflicted-same-region",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "51110"), LEE),
        "conflict of interest (declared a conflict with 51110)",
        id="conflicted-declared",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), "ghost@nowhere.example"),
        "no evaluator 'ghost@nowhere.example'",
        id="unknown-evaluator",
    ),
    pytest.param(
        lambda app, _: sheet(f"{sc.TRACK.upper()}-9999", KIM),
        f"no application '{sc.TRACK.upper()}-9999' (give its id or receipt number",
        id="unknown-receipt",
    ),
    pytest.param(lambda app, _: sheet("999999", KIM), "no application '999999'", id="unknown-id"),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, part="presentation"),
        "is in 'written_evaluation': presentation scores are entered while it is in 'presentation_evaluation'",
        id="wrong-part-for-state",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "48120"), KIM),
        "is in 'disqualified': written scores are entered while it is in 'written_evaluation'",
        id="disqualified-application",
    ),
    pytest.param(
        lambda app, _: sheet(receipt(app, "36110"), KIM, part="oral"),
        "part 'oral': write written or presentation",
        id="unknown-part",
    ),
]


@pytest.mark.parametrize(("make", "fragment"), REFUSED_SHEETS)
def test_a_bad_sheet_is_refused_naming_the_problem_and_nothing_is_stored(
    assigned: App, tmp_path: Path, make: SheetFor, fragment: str
) -> None:
    app = assigned
    bad = make(app, tmp_path)
    good = sheet(receipt(app, "47190"), CHOI)
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        committee.enter_sheets(app, [good, bad], OFFICE, ["sheet 1: ", "sheet 2: "])
    message = str(refused.value)
    assert fragment in message
    assert message.startswith("sheet 2: ") and "sheet 1" not in message  # the good sheet is not blamed
    assert message.endswith("\nno score was stored")
    assert footprint(app) == before  # not even the good sheet


def test_points_in_exponent_notation_are_refused(assigned: App) -> None:
    before = footprint(assigned)
    with pytest.raises(InvalidInput, match="innovation = '1e1'"):
        committee.enter_sheets(assigned, [sheet(receipt(assigned, "36110"), KIM, innovation="1e1")], OFFICE)
    assert footprint(assigned) == before


@pytest.mark.parametrize(
    ("when", "shown"),
    [
        pytest.param("2024-06-10 08:59", "2024-06-10 08:59", id="a-minute-before"),
        pytest.param("2024-06-12 18:00", "2024-06-12 18:00", id="at-the-end"),
        pytest.param("2024-06-14 10:00", "2024-06-14 10:00", id="after"),
    ],
)
def test_written_scores_outside_the_written_window_are_refused(
    assigned: App, clock: FixedClock, when: str, shown: str
) -> None:
    app = assigned
    clock.set(kst(when))  # no ticker: the application is still in written evaluation
    ref = receipt(app, "36110")
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        committee.enter_sheets(app, [sheet(ref, KIM)], OFFICE)
    assert (
        f"written scores for application {ref} are accepted from 2024-06-10 09:00 to 2024-06-12 18:00 KST (now {shown})"
    ) in str(refused.value)
    assert footprint(app) == before


@pytest.mark.parametrize("when", ["2024-06-10 09:00", "2024-06-12 17:59"])
def test_written_scores_are_accepted_from_the_first_to_the_last_minute(
    assigned: App, clock: FixedClock, when: str
) -> None:
    clock.set(kst(when))
    committee.enter_sheets(assigned, [sheet(receipt(assigned, "36110"), KIM)], OFFICE)
    assert scores_of(assigned, "36110", KIM) == POINTS_X100


def test_written_scores_are_refused_once_the_presentation_has_started(assigned: App, clock: FixedClock) -> None:
    app = assigned
    sc.at(app, clock, "2024-06-12 18:00")  # the ticker moves every application on
    clock.set(kst("2024-06-17 10:00"))
    ref = receipt(app, "36110")
    before = footprint(app)
    with pytest.raises(InvalidInput, match=f"application {ref} is in 'presentation_evaluation': written scores"):
        committee.enter_sheets(app, [sheet(ref, KIM)], OFFICE)
    assert footprint(app) == before
    committee.enter_sheets(app, [sheet(ref, KIM, part="presentation")], OFFICE)
    assert scores_of(app, "36110", KIM, "presentation") == POINTS_X100


# -- the scores CSV -------------------------------------------------------------------------


def test_a_scores_file_with_a_wrong_header_is_refused_naming_the_expected_header(assigned: App, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "scores.csv",
        "receipt_no,evaluator,part,feasibility,innovation,participation,budget,impact",
        f"{receipt(assigned, '36110')},{KIM},written,24.5,18,17.25,12,13",
    )
    before = footprint(assigned)
    with pytest.raises(InvalidInput) as refused:
        committee.parse_scores(path, track_config(assigned))
    assert str(refused.value) == (
        f"{path}: header must be {SCORES_HEADER} (for track {sc.TRACK}); missing: effect; unknown: 'impact';"
        " nothing was imported"
    )
    assert footprint(assigned) == before


def test_a_scores_file_may_order_its_columns_freely(assigned: App, tmp_path: Path) -> None:
    app = assigned
    path = write_csv(
        tmp_path,
        "scores.csv",
        "evaluator,receipt_no,part,effect,budget,participation,innovation,feasibility",
        f"{KIM},{receipt(app, '36110')},written,13,12,17.25,18,24.5",
    )
    sheets, where = committee.parse_scores(path, track_config(app))
    assert sheets == [committee.SheetInput(receipt(app, "36110"), KIM, "written", POINTS)]
    assert where == [f"{path}: row 2: "]
    committee.enter_sheets(app, sheets, OFFICE, where)
    assert scores_of(app, "36110", KIM) == POINTS_X100


def test_a_scores_file_with_one_bad_row_stores_nothing_and_names_the_row(assigned: App, tmp_path: Path) -> None:
    app = assigned
    sejong, gumi = receipt(app, "36110"), receipt(app, "47190")
    path = write_csv(
        tmp_path,
        "scores.csv",
        SCORES_HEADER,
        f"{sejong},{KIM},written,24.5,18,17.25,12,13",
        f"{sejong},{PARK},written,24.5,18,17.25,12,13",
        f"{gumi},{KIM},written,31,18,17.25,12,13",
        f"{gumi},{PARK},written,24.5,18,17.25,12,13",
    )
    sheets, where = committee.parse_scores(path, track_config(app))
    assert len(sheets) == 4
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        committee.enter_sheets(app, sheets, OFFICE, where)
    assert str(refused.value) == (
        f"{path}: row 4: feasibility = 31: out of range, give 0 to 30"
        " (criteria: feasibility (0-30), innovation (0-20), participation (0-20), budget (0-15), effect (0-15))"
        "\nno score was stored"
    )
    assert footprint(app) == before


def test_a_whole_scores_file_is_stored_in_one_go(assigned: App, tmp_path: Path) -> None:
    app = assigned
    receipts = {code: receipt(app, code) for code in IN_EVALUATION}
    path = sc.scores_csv(tmp_path / "written.csv", "written", receipts)
    sheets, where = committee.parse_scores(path, track_config(app))
    assert committee.enter_sheets(app, sheets, OFFICE, where) == len(sheets) == 46
    assert count(app, SCORE) == 46 * 5
    target = Decimal(sc.TARGETS["44130"][0]) + sc.WRITTEN_BIAS[0]
    assert scores_of(app, "44130", KIM) == {k: int(v * 100) for k, v in sc.sheet(target, "44130").items()}


def test_a_scores_file_with_the_same_sheet_twice_is_refused_naming_both_rows(assigned: App, tmp_path: Path) -> None:
    app = assigned
    sejong = receipt(app, "36110")
    path = write_csv(
        tmp_path,
        "scores.csv",
        SCORES_HEADER,
        f"{sejong},{KIM},written,24.5,18,17.25,12,13",
        f"{sejong},{PARK},written,24.5,18,17.25,12,13",
        f"{sejong},{KIM.upper()},written,20,18,17.25,12,13",
    )
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        committee.parse_scores(path, track_config(app))
    message = str(refused.value)
    assert f"{path}: row 4: the same sheet as row 2 ({sejong}, {KIM}, written)" in message
    assert message.endswith("nothing was imported")
    assert footprint(app) == before


# -- bad input that once escaped, refused in one line -------------------------------------------

LONG = "x" * 131_073  # one over the csv module's cell size limit
OVER_THE_LIMIT = "a cell is longer than 131072 characters (or a quote is not closed); shorten it, or close the quote"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            [HEADER, GOOD_ROW, f"이박사,lee@kict.example,{LONG},대전,,"],
            f"row 3: {OVER_THE_LIMIT}",
            id="cell-over-the-limit",
        ),
        pytest.param(
            [HEADER[: HEADER.index(",home_code")], GOOD_ROW.removesuffix(",,") + ",41110"],
            "row 2: more values than columns; quote a value that has a comma",
            id="more-values-than-columns",
        ),
        pytest.param(
            [HEADER, GOOD_ROW.removesuffix(",,") + ",٤١١١٠,"],
            "row 2, column home_code = '٤١١١٠': String should match pattern '^[0-9]{5}$';"
            " expected empty, or the 5-digit code of the local government they belong to",
            id="home-code-in-arabic-indic-digits",
        ),
        pytest.param(
            [HEADER, GOOD_ROW + "41110;４１１１０"],
            "row 2, column conflicts = '４１１１０':"
            " expected empty, or applicant codes separated by ';', e.g. 41110;44200",
            id="conflict-in-fullwidth-digits",
        ),
        pytest.param(
            [HEADER, GOOD_ROW.replace("김교수", "김\x00교수")],
            "row 2, column name = '김\\x00교수': has a control character (U+0000, NUL); delete it",
            id="nul",
        ),
    ],
)
def test_a_bad_evaluator_file_that_once_escaped_is_refused_in_one_line(
    app: App, tmp_path: Path, lines: list[str], expected: str
) -> None:
    path = write_csv(tmp_path, "evaluators.csv", *lines)
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        import_evaluators(app, path)
    assert str(refused.value).splitlines() == [f"{path}: {expected}", "nothing was imported"]
    assert footprint(app) == before


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(HEADER + ",email", "named twice: email (keep one column of each name)", id="twice"),
        pytest.param(HEADER + ",", "unknown: ''", id="unnamed"),
        pytest.param(HEADER + ",\ufeffname", "unknown: '\\ufeffname'", id="stray-bom"),
    ],
)
def test_an_evaluator_header_naming_a_column_twice_or_invisibly_is_refused(
    app: App, tmp_path: Path, header: str, expected: str
) -> None:
    path = write_csv(tmp_path, "evaluators.csv", header, GOOD_ROW + ",x")
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        import_evaluators(app, path)
    assert str(refused.value) == (
        f"{path}: header must be {HEADER} (the last two may be left out); {expected}; nothing was imported"
    )
    assert footprint(app) == before


def test_a_bad_scores_file_that_once_escaped_is_refused_in_one_line(assigned: App, tmp_path: Path) -> None:
    app = assigned
    sejong = receipt(app, "36110")
    cases = {
        f"{sejong},{KIM},written,24.5,18,17.25,12,13,9": (
            "row 2: more values than columns; quote a value that has a comma"
        ),
        f"{sejong},{LONG},written,24.5,18,17.25,12,13": f"row 2: {OVER_THE_LIMIT}",
        f"{sejong},{KIM}\x00,written,24.5,18,17.25,12,13": (
            f"row 2, column evaluator = '{KIM}\\x00': has a control character (U+0000, NUL); delete it"
        ),
    }
    before = footprint(app)
    for row, expected in cases.items():
        path = write_csv(tmp_path, "scores.csv", SCORES_HEADER, row)
        with pytest.raises(InvalidInput) as refused:
            committee.parse_scores(path, track_config(app))
        assert str(refused.value).splitlines() == [f"{path}: {expected}", "nothing was imported"], row[:60]
    assert footprint(app) == before


def test_points_in_digits_other_than_0_to_9_are_refused(assigned: App, tmp_path: Path) -> None:
    app = assigned
    path = write_csv(
        tmp_path, "scores.csv", SCORES_HEADER, f"{receipt(app, '36110')},{KIM},written,24.5,١٨,17.25,12,13"
    )
    sheets, where = committee.parse_scores(path, track_config(app))
    before = footprint(app)
    with pytest.raises(InvalidInput) as refused:
        committee.enter_sheets(app, sheets, OFFICE, where)
    assert str(refused.value).splitlines() == [
        f"{path}: row 2: innovation = '١٨': write points with the digits 0-9, e.g. 22.5",
        "no score was stored",
    ]
    assert footprint(app) == before
