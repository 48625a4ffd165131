"""The review, committee, selection and kickoff commands of `gongmo`, driven
through workflow.cli.run() on a SQLite file in tmp_path, the clock moved with
the global --now option: the 2024 strong-and-small scenario of
tests/workflow/contest_2024.py from the call to the first kickoff."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gongmo.workflow.core import samples
from tests.conftest import config_copy, run_cli
from tests.workflow import contest_2024 as sc
from tests.workflow.cli.documents_args import document_args

TRACK = sc.TRACK
ANNOUNCED = "2024-03-29T10:00"
RECEIPT = "2024-05-28T11:00"
CLOSED = "2024-05-29T18:00"
REVIEW = "2024-06-03T10:00"
OBJECTIONS = "2024-06-04T09:00"
DECIDED = "2024-06-04T10:00"
WRITTEN = "2024-06-11T14:00"
PRESENTATION_STARTS = "2024-06-12T18:00"  # the start_presentation deadline (written_ends)
PRESENTATION = "2024-06-19T17:00"
SELECTION = "2024-06-26T09:00"
KICKOFF = "2024-07-01T10:00"
# The type each applicant chooses; the rest choose local_extinction.
CLIMATE_CRISIS = {"41390", "44130", "46130", "41110"}


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout with rich's line wrapping undone."""
        return " ".join(self.out.split())

    def json(self) -> Any:
        return json.loads(self.out)


Gongmo = Callable[..., Result]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gongmo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Gongmo:
    config = config_copy(tmp_path)

    def invoke(*args: str, now: str | None = None) -> Result:
        argv = ["--config", str(config), *(["--now", now] if now else []), *args]
        code, out, err = run_cli(capsys, *argv)
        assert "Traceback" not in out + err, err
        return Result(code, out, err)

    return invoke


def ok(result: Result) -> Result:
    assert result.code == 0, (result.out, result.err)
    assert result.err == ""
    return result


def error_line(result: Result) -> str:
    """The one line a user mistake prints: exit 1, `error: ...` on stderr, nothing on stdout."""
    assert result.code == 1, (result.out, result.err)
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: "), result.err
    return lines[0].removeprefix("error: ")


# -- the scenario, step by step ------------------------------------------------------------------
#
# Each stage is reached through the CLI once per session; its database file is kept and copied into
# the tmp_path of every later test that starts from it (each test works on a copy of its own).

STAGES = ("announced", "received", "reviewed", "evaluated", "selected")
RECEIPTS = {code: f"STRONG-SMALL-2024-{i:04d}" for i, code in enumerate([*sc.NATIONAL, "41110"], 1)}
_snapshots: dict[str, dict[str, bytes]] = {}  # stage -> the database's files


def _announce(gongmo: Gongmo, tmp_path: Path) -> None:
    """Initialised; the 12 local governments and 5 evaluators imported; the call announced by the ticker."""
    applicants = tmp_path / "applicants.csv"
    applicants.write_text(sc.APPLICANTS_CSV, encoding="utf-8")
    evaluators = tmp_path / "evaluators.csv"
    evaluators.write_text(sc.EVALUATORS_CSV, encoding="utf-8")
    ok(gongmo("init"))
    imported = ok(gongmo("applicants", "import", str(applicants)))
    assert f"{applicants}: 12 rows: 12 created, 0 updated, 0 unchanged" in imported.text
    assert f"{evaluators}: 5 evaluators (5 new, 0 updated)" in ok(gongmo("evaluators", "import", str(evaluators))).text
    ticked = ok(gongmo("tick", "--until-idle", now=ANNOUNCED))
    assert f"{TRACK}:announce (on time): 12 applications created, each sent the call" in ticked.text


def _receive(gongmo: Gongmo, tmp_path: Path) -> None:
    """All 12 applied with their plan and budget (세종 for 2 years), the receipt closed by the ticker."""
    docs = document_args(tmp_path)
    for code, national in [*sc.NATIONAL.items(), ("41110", 8_000_000_000)]:
        kind = "climate_crisis" if code in CLIMATE_CRISIS else "local_extinction"
        years = "2" if code == "36110" else "3"
        money = ("--national", str(national), "--local", str(national))
        applied = ok(gongmo("apply", TRACK, code, *money, "--type", kind, "--years", years, *docs, now=RECEIPT))
        assert applied.text.endswith(f"receipt number {RECEIPTS[code]}"), applied.text
    closed = ok(gongmo("tick", "--until-idle", now=CLOSED))
    assert f"{TRACK}:close_receipt (on time): 0 expired, 12 to preliminary review" in closed.text


def _review(gongmo: Gongmo, tmp_path: Path) -> None:
    """The eligible passed, 창원 and 수원 disqualified (2024-06-03 10:00)."""
    ok(gongmo("review", "pass", TRACK, now=REVIEW))
    ok(gongmo("review", "disqualify-failed", TRACK, now=REVIEW))


def _evaluate(gongmo: Gongmo, tmp_path: Path) -> None:
    """창원's objection upheld, 수원's rejected; evaluators assigned, slots scheduled, every sheet imported."""
    ok(gongmo("objection", "file", RECEIPTS["48120"], "--grounds", "2024.4. 주민등록인구 998,000명", now=OBJECTIONS))
    ok(gongmo("objection", "file", RECEIPTS["41110"], "--grounds", "특례시는 예외", now=OBJECTIONS))
    ok(gongmo("objection", "uphold", "1", "--reason", "2024년 4월 주민등록인구 998,000명 확인", now=DECIDED))
    ok(gongmo("objection", "reject", "2", "--reason", "인구 기준(100만 미만)에 예외 없음", now=DECIDED))
    ok(gongmo("assign", TRACK, now=DECIDED))
    ok(gongmo("presentations", "schedule", TRACK, now=DECIDED))
    evaluated = {code: RECEIPTS[code] for code in sc.TARGETS}
    written = sc.scores_csv(tmp_path / "written.csv", "written", evaluated)
    assert f"{written}: 51 sheets stored" in ok(gongmo("scores", "import", TRACK, str(written), now=WRITTEN)).text
    started = ok(gongmo("tick", "--until-idle", now=PRESENTATION_STARTS))
    assert f"{TRACK}:start_presentation (on time): 11 to presentation evaluation" in started.text
    presentation = sc.scores_csv(tmp_path / "presentation.csv", "presentation", evaluated)
    stored = ok(gongmo("scores", "import", TRACK, str(presentation), now=PRESENTATION))
    assert f"{presentation}: 51 sheets stored" in stored.text


def _select(gongmo: Gongmo, tmp_path: Path) -> None:
    ok(gongmo("select", TRACK, "--confirm", now=SELECTION))


STEPS: dict[str, Callable[[Gongmo, Path], None]] = dict(
    zip(STAGES, (_announce, _receive, _review, _evaluate, _select), strict=True)
)


def reach(gongmo: Gongmo, tmp_path: Path, stage: str) -> dict[str, str]:
    """Bring tmp_path's database to `stage` (from the latest snapshot on the way); code -> receipt number."""
    database = tmp_path / "gongmo.db"
    assert not database.exists(), "reach() starts from an empty tmp_path"
    target = STAGES.index(stage)
    start = 0
    for i in range(target, -1, -1):
        if STAGES[i] in _snapshots:
            for name, data in _snapshots[STAGES[i]].items():
                (tmp_path / name).write_bytes(data)
            start = i + 1
            break
    for name in STAGES[start : target + 1]:
        STEPS[name](gongmo, tmp_path)
        _snapshots[name] = {f.name: f.read_bytes() for f in tmp_path.glob("gongmo.db*")}
    return dict(RECEIPTS)


@pytest.fixture
def announced(gongmo: Gongmo, tmp_path: Path) -> dict[str, str]:
    return reach(gongmo, tmp_path, "announced")


@pytest.fixture
def received(gongmo: Gongmo, tmp_path: Path) -> dict[str, str]:
    return reach(gongmo, tmp_path, "received")


@pytest.fixture
def reviewed(gongmo: Gongmo, tmp_path: Path) -> dict[str, str]:
    return reach(gongmo, tmp_path, "reviewed")


@pytest.fixture
def evaluated(gongmo: Gongmo, tmp_path: Path) -> dict[str, str]:
    return reach(gongmo, tmp_path, "evaluated")


@pytest.fixture
def selected(gongmo: Gongmo, tmp_path: Path) -> dict[str, str]:
    return reach(gongmo, tmp_path, "selected")


def status(gongmo: Gongmo) -> dict[str, int]:
    data: dict[str, dict[str, int]] = ok(gongmo("status", TRACK, "--json")).json()
    return data[TRACK]


# -- setup, receipt and the review -----------------------------------------------------------------


def test_the_ticker_announces_the_call_and_announce_again_creates_nothing(
    gongmo: Gongmo, announced: dict[str, str]
) -> None:
    assert status(gongmo) == {"announcement": 12}
    again = ok(gongmo("announce", TRACK, now="2024-04-01T10:00"))
    assert f"{TRACK}: 0 applications created" in again.text
    assert status(gongmo) == {"announcement": 12}


def test_apply_records_the_type_and_the_years_asked_for(gongmo: Gongmo, received: dict[str, str]) -> None:
    sejong = ok(gongmo("show", received["36110"], "--json")).json()
    assert (sejong["state"], sejong["project_type"], sejong["years"]) == (
        "preliminary_review",
        "local_extinction",
        2,
    )
    assert (sejong["national_krw"], sejong["local_krw"]) == (7_500_000_000, 7_500_000_000)
    siheung = ok(gongmo("show", received["41390"], "--json")).json()
    assert (siheung["project_type"], siheung["years"]) == ("climate_crisis", 3)
    assert status(gongmo) == {"preliminary_review": 12}


def test_review_checks_lists_every_rule_with_its_values(gongmo: Gongmo, received: dict[str, str]) -> None:
    checks = ok(gongmo("review", "checks", TRACK, "--json", now=REVIEW)).json()

    assert [c["receipt_no"] for c in checks] == sorted(received.values())
    not_eligible = {c["receipt_no"]: c for c in checks if not c["eligible"]}
    assert sorted(not_eligible) == sorted([received["48120"], received["41110"]])
    changwon = not_eligible[received["48120"]]
    assert changwon["applicant"] == "창원시"
    assert [(c["rule"], c["value"], c["expected"]) for c in changwon["checks"] if not c["passed"]] == [
        ("population", "1,010,000", "below 1,000,000")
    ]
    sejong = next(c for c in checks if c["receipt_no"] == received["36110"])
    years = next(c for c in sejong["checks"] if c["rule"] == "years")
    assert (years["passed"], years["value"], years["expected"]) == (True, "2 year(s)", "1 to 3 year(s)")
    table = ok(gongmo("review", "checks", TRACK, now=REVIEW))
    assert "NOT eligible" in table.text and "FAIL population" in table.text


def test_review_passes_the_eligible_and_disqualifies_the_rest_with_their_failed_rules(
    gongmo: Gongmo, received: dict[str, str]
) -> None:
    passed = ok(gongmo("review", "pass", TRACK, now=REVIEW))
    assert f"{TRACK}: 10 applications passed the review (every check passed)" in passed.text

    disqualified = ok(gongmo("review", "disqualify-failed", TRACK, now=REVIEW))

    assert (
        f"{received['48120']}: disqualified (eligibility: population: 1,010,000 (required: below 1,000,000))"
        in disqualified.text
    )
    assert f"{received['41110']}: disqualified (eligibility: population: 1,190,987" in disqualified.text
    assert f"{TRACK}: 2 disqualified" in disqualified.text
    assert status(gongmo) == {"written_evaluation": 10, "disqualified": 2}
    changwon = ok(gongmo("show", received["48120"], "--json")).json()
    assert changwon["notices"][-1]["notice"] == "disqualified"
    assert changwon["history"][-1]["reason"].startswith("eligibility: population: 1,010,000")


# -- objections ----------------------------------------------------------------------------------


def test_objections_are_filed_listed_and_decided(gongmo: Gongmo, reviewed: dict[str, str]) -> None:
    receipts = reviewed
    filed = ok(gongmo("objection", "file", receipts["48120"], "--grounds", "인구 998,000명", now=OBJECTIONS))
    assert f"objection #1 filed for application {receipts['48120']}" in filed.text
    ok(gongmo("objection", "file", receipts["41110"], "--grounds", "특례시는 예외", now=OBJECTIONS))

    listed = ok(gongmo("objection", "list", TRACK, "--json")).json()
    assert [(o["id"], o["receipt_no"], o["status"], o["grounds"]) for o in listed] == [
        (1, receipts["48120"], "open", "인구 998,000명"),
        (2, receipts["41110"], "open", "특례시는 예외"),
    ]
    assert listed[0]["filed_at"] == "2024-06-04T00:00:00+00:00"
    blocked = error_line(gongmo("assign", TRACK, now=OBJECTIONS))
    assert f"track {TRACK}: assignment cannot start while objections are open" in blocked
    assert f"#1 (application {receipts['48120']}), #2 (application {receipts['41110']})" in blocked
    assert "decide them first: uphold or reject each one, with a reason" in blocked
    sejong = ok(gongmo("show", receipts["36110"], "--json")).json()
    assert [e["kind"] for e in sejong["events"] if e["kind"] == "assigned"] == []

    upheld = ok(gongmo("objection", "uphold", "1", "--reason", "인구 998,000명 확인", now=DECIDED))
    assert "objection #1 upheld: the application is back in written evaluation" in upheld.text
    rejected = ok(gongmo("objection", "reject", "2", "--reason", "예외 없음", now=DECIDED))
    assert "objection #2 rejected: the disqualification stands" in rejected.text

    decided = ok(gongmo("objection", "list", "--json")).json()
    assert [(o["status"], o["decision"]) for o in decided] == [
        ("upheld", "인구 998,000명 확인"),
        ("rejected", "예외 없음"),
    ]
    assert status(gongmo) == {"written_evaluation": 11, "disqualified": 1}
    suwon = ok(gongmo("show", receipts["41110"], "--json")).json()
    assert [n["notice"] for n in suwon["notices"]][-2:] == ["objection_received", "objection_rejected"]
    again = gongmo("objection", "reject", "2", "--reason", "다시", now=DECIDED)
    assert "objection #2 was already rejected on 2024-06-04" in error_line(again)
    assert ok(gongmo("objection", "list", "--json")).json() == decided


# -- the committee -------------------------------------------------------------------------------


def test_assign_and_presentations_give_every_application_its_evaluators_and_a_slot(
    gongmo: Gongmo, reviewed: dict[str, str]
) -> None:
    receipts = reviewed

    plan = ok(gongmo("assign", TRACK, "--json", now=OBJECTIONS)).json()

    assert sorted(plan) == sorted(receipts[c] for c in sc.TARGETS if c != "48120")
    for code in sc.TARGETS:
        if code != "48120":
            assert sorted(plan[receipts[code]]) == sorted(e for e in sc.EVALUATORS if not sc.conflicted(code, e)), code
    scheduled = ok(gongmo("presentations", "schedule", TRACK, now=OBJECTIONS))
    assert f"{TRACK}: presentation slots (KST)" in scheduled.text
    assert "2024-06-17 09:00" in scheduled.text
    slots = ok(gongmo("presentations", "list", TRACK, "--json")).json()
    assert [s["receipt_no"] for s in slots] == sorted(plan)
    assert [s["starts_at"] for s in slots[:4]] == [
        "2024-06-17T00:00:00+00:00",
        "2024-06-17T00:50:00+00:00",
        "2024-06-17T01:40:00+00:00",
        "2024-06-17T04:00:00+00:00",  # 13:00 KST, after lunch
    ]
    assert slots[0]["name"] == "세종특별자치시" and slots[0]["place"] == "LH 서울지역본부 대회의실"
    sejong = ok(gongmo("show", receipts["36110"], "--json")).json()
    assert sejong["notices"][-1]["notice"] == "presentation_invitation"
    assert "2024-06-17 (월) 09:00 KST" in sejong["notices"][-1]["subject"]


def test_rank_json_ranks_all_eleven_and_explains_the_tie(gongmo: Gongmo, evaluated: dict[str, str]) -> None:
    receipts = evaluated

    ranking = ok(gongmo("rank", TRACK, "--json", now=PRESENTATION)).json()

    assert ranking["incomplete"] == []
    rows = ranking["rows"]
    codes = {v: k for k, v in receipts.items()}
    assert [(r["rank"], codes[r["receipt_no"]]) for r in rows] == list(
        enumerate(
            ["36110", "41390", "44130", "43110", "41590", "47190", "48120", "52110", "51110", "26350", "46130"], 1
        )
    )
    by_code = {codes[r["receipt_no"]]: r for r in rows}
    for code, row in by_code.items():
        assert row["written"] == str(sc.expected(code, "written")), code
        assert row["presentation"] == str(sc.expected(code, "presentation")), code
        assert row["state"] == "presentation_evaluation"
    assert by_code["36110"]["score"] == "90.53" and by_code["36110"]["applicant"] == "세종특별자치시"
    assert by_code["43110"]["tie"] == (
        f"tied with {receipts['44130']} at 84.93; criterion:feasibility decides: 26.50 over 25.50"
    )
    assert by_code["44130"]["tie"] == ""
    assert by_code["41390"]["written_how"] == "mean of 4"
    assert by_code["36110"]["written_how"].startswith("trimmed mean of 5")
    assert by_code["46130"]["qualified"] is False
    assert all(r["qualified"] for c, r in by_code.items() if c != "46130")
    assert all(r["decision"] == "" for r in rows)


def test_score_by_hand_replaces_one_evaluators_sheet(gongmo: Gongmo, evaluated: dict[str, str]) -> None:
    points = [f"{k}={v}" for k, v in sc.sheet(Decimal(50), "46130").items()]
    stored = gongmo(
        "score", evaluated["46130"], *points, "--evaluator", "kim@univ-seoul.example", "--part", "presentation",
        now=PRESENTATION,
    )  # fmt: skip
    assert f"application {evaluated['46130']}: presentation sheet of kim@univ-seoul.example stored" in ok(stored).text
    ranking = ok(gongmo("rank", TRACK, "--json", now=PRESENTATION)).json()
    yeosu = next(r for r in ranking["rows"] if r["receipt_no"] == evaluated["46130"])
    # kim's 67 becomes 50: of 50, 66, 64, 71, 62 the trimmed mean drops 50 and 71
    assert (yeosu["presentation"], yeosu["presentation_how"]) == (
        "64.00",
        "trimmed mean of 5 (dropped 50.00 and 71.00)",
    )
    assert yeosu["written"] == str(sc.expected("46130", "written"))


# -- selection -----------------------------------------------------------------------------------


def test_select_without_confirm_is_a_dry_run_that_changes_nothing(gongmo: Gongmo, evaluated: dict[str, str]) -> None:
    before = status(gongmo)
    assert before == {"presentation_evaluation": 11, "disqualified": 1}

    dry = ok(gongmo("select", TRACK, now=SELECTION))

    assert f"{TRACK}: selection (dry run: nothing changed; add --confirm)" in dry.text
    assert "3 selected of 3 slots, 2 waitlisted, 6 not selected; national 23,500,000,000 of 24,000,000,000 won" in (
        dry.text
    )
    assert "notices held" not in dry.text
    assert status(gongmo) == before
    decisions = ok(gongmo("select", TRACK, "--json", now=SELECTION)).json()["rows"]
    codes = {v: k for k, v in evaluated.items()}
    assert [codes[r["receipt_no"]] for r in decisions if r["decision"] == "selected"] == ["36110", "41390", "44130"]
    assert [codes[r["receipt_no"]] for r in decisions if r["decision"] == "waitlisted"] == ["43110", "41590"]
    assert status(gongmo) == before
    sejong = ok(gongmo("show", evaluated["36110"], "--json")).json()
    assert sejong["rank"] is None and sejong["score"] is None


def test_select_confirm_applies_the_decisions_and_writes_the_results_file(
    gongmo: Gongmo, evaluated: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "results.csv"

    applied = ok(gongmo("select", TRACK, "--confirm", "--out", str(out), now=SELECTION))

    assert f"wrote 11 rows to {out} (csv)" in applied.text
    assert f"{TRACK}: selection (applied)" in applied.text
    assert "notices held until `gongmo outbox release`" in applied.text
    assert status(gongmo) == {"selected": 3, "waitlisted": 2, "not_selected": 6, "disqualified": 1}
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    codes = {v: k for k, v in evaluated.items()}
    assert [(codes[r["receipt_no"]], r["decision"]) for r in rows[:6]] == [
        ("36110", "selected"),
        ("41390", "selected"),
        ("44130", "selected"),
        ("43110", "waitlisted"),
        ("41590", "waitlisted"),
        ("47190", "not selected"),
    ]
    assert rows[0]["applicant"] == "세종특별자치시" and rows[0]["score"] == "90.53"
    assert rows[-1]["qualified"] == "no" and "below the qualifying minimum 70" in rows[-1]["note"]
    cheongju = ok(gongmo("show", evaluated["43110"], "--json")).json()
    assert (cheongju["state"], cheongju["rank"], cheongju["waitlist_position"]) == ("waitlisted", 4, 1)
    assert cheongju["notices"][-1]["notice"] == "waitlisted" and cheongju["notices"][-1]["state"] == "held"
    again = gongmo("select", TRACK, "--confirm", now=SELECTION)
    assert "no application is waiting in presentation evaluation (already selected?)" in error_line(again)
    assert status(gongmo) == {"selected": 3, "waitlisted": 2, "not_selected": 6, "disqualified": 1}


def test_select_confirm_is_refused_before_the_presentation_evaluation_ends(
    gongmo: Gongmo, evaluated: dict[str, str]
) -> None:
    before = status(gongmo)
    refused = gongmo("select", TRACK, "--confirm", now=PRESENTATION)
    assert "the presentation evaluation runs until 2024-06-19 18:00 KST; select after it" in error_line(refused)
    assert status(gongmo) == before


# -- kickoff -------------------------------------------------------------------------------------


def test_kickoff_receive_return_and_approve_with_a_schedule(
    gongmo: Gongmo, selected: dict[str, str], tmp_path: Path
) -> None:
    sejong = selected["36110"]  # 7,500,000,000 + 7,500,000,000 over 2 years

    first = ok(gongmo("kickoff", "receive", sejong, now=KICKOFF))
    assert f"application {sejong}: implementation plan round 1 received (on paper: no file kept)" in first.text
    returned = ok(gongmo("kickoff", "return", sejong, "--comments", "지방비 확보 근거 첨부", now="2024-07-02T10:00"))
    assert f"application {sejong}: plan round 1 returned with comments" in returned.text
    not_a_plan = tmp_path / "실시계획.pdf"
    not_a_plan.write_bytes(b"MZ\x90\x00" + b"\x00" * 200)
    refused = gongmo("kickoff", "receive", sejong, "--file", str(not_a_plan), now="2024-07-08T10:00")
    assert "실시계획.pdf is not an accepted type" in error_line(refused)
    plan = tmp_path / "세부실시계획.pdf"
    plan.write_bytes(samples.pdf("implementation plan v2"))
    sha = hashlib.sha256(plan.read_bytes()).hexdigest()
    second = ok(gongmo("kickoff", "receive", sejong, "--file", str(plan), "--json", now="2024-07-08T10:00"))
    assert second.json() | {"application_id": None} == {
        "application_id": None,
        "round": 2,
        "status": "received",
        "file_name": "세부실시계획.pdf",
        "size": plan.stat().st_size,
        "sha256": sha,
    }
    wrong = gongmo("kickoff", "approve", sejong, "--schedule", "2024=7500000000/7500000000", now="2024-07-09T10:00")
    assert "--schedule: 1 year(s) given, the plan runs 2" in error_line(wrong)
    assert status(gongmo)["selected"] == 3
    assert "plan_approved" not in [e["kind"] for e in ok(gongmo("show", sejong, "--json")).json()["events"]]

    approved = ok(
        gongmo(
            "kickoff", "approve", sejong,
            "--schedule", "2024=3,000,000,000/3,000,000,000", "--schedule", "2025=4500000000/4500000000",
            now="2024-07-09T10:00",
        )
    )  # fmt: skip

    assert f"application {sejong}: kickoff, funding by year" in approved.text
    assert "2024 │ 3,000,000,000 │ 3,000,000,000" in approved.out
    assert "2025 │ 4,500,000,000 │ 4,500,000,000" in approved.out
    shown = ok(gongmo("show", sejong, "--json")).json()
    assert shown["state"] == "kickoff"
    assert shown["history"][-1]["reason"] == "implementation plan round 2 approved"
    assert [n["notice"] for n in shown["notices"]][-2:] == ["kickoff_plan_returned", "kickoff_confirmed"]
    plan_events = [(e["kind"], e["detail"]) for e in shown["events"] if e["kind"].startswith("plan_")]
    assert plan_events == [
        ("plan_received", {"round": 1, "late": False, "on_paper": True}),
        ("plan_returned", {"round": 1, "comments": "지방비 확보 근거 첨부"}),
        (
            "plan_received",
            {
                "round": 2,
                "late": False,
                "sha256": sha,
                "file_name": "세부실시계획.pdf",
                "size": plan.stat().st_size,
                "file_type": "pdf",
            },
        ),
        (
            "plan_approved",
            {
                "round": 2,
                "schedule": [
                    {"year": 2024, "national_krw": 3_000_000_000, "local_krw": 3_000_000_000},
                    {"year": 2025, "national_krw": 4_500_000_000, "local_krw": 4_500_000_000},
                ],
            },
        ),
    ]


def test_kickoff_approve_without_a_schedule_splits_evenly_from_this_year(
    gongmo: Gongmo, selected: dict[str, str]
) -> None:
    cheonan = selected["44130"]
    ok(gongmo("kickoff", "receive", cheonan, now=KICKOFF))

    approved = ok(gongmo("kickoff", "approve", cheonan, now=KICKOFF))

    assert "2024 │ 2,666,666,668 │ 2,666,666,668" in approved.out
    assert "2025 │ 2,666,666,666 │ 2,666,666,666" in approved.out
    assert "2026 │ 2,666,666,666 │ 2,666,666,666" in approved.out
    assert status(gongmo)["kickoff"] == 1


def test_kickoff_of_a_waitlisted_application_is_refused(gongmo: Gongmo, selected: dict[str, str]) -> None:
    before = ok(gongmo("show", selected["43110"], "--json")).json()

    line = error_line(gongmo("kickoff", "receive", selected["43110"], now=KICKOFF))

    assert "in state 'waitlisted'" in line and "only a selected application files a plan" in line
    assert ok(gongmo("show", selected["43110"], "--json")).json() == before


def test_show_includes_the_checklist_and_the_decisions(gongmo: Gongmo, selected: dict[str, str]) -> None:
    sejong = selected["36110"]
    ok(gongmo("kickoff", "receive", sejong, now=KICKOFF))

    data = ok(gongmo("show", sejong, "--json")).json()

    assert data["eligible"] is True
    assert [c["rule"] for c in data["checklist"]] == [
        "kind", "population", "national_cap", "years", "local_match", "type",
    ]  # fmt: skip
    assert all(c["passed"] for c in data["checklist"])
    kinds = [e["kind"] for e in data["events"]]
    assert kinds[:2] == ["document_uploaded"] * 2  # its plan and budget sheet, before it was received
    assert kinds[2] == "assigned" and kinds.count("scored") == 10 and kinds[-1] == "plan_received"
    assert (data["rank"], data["score"]) == (1, "90.53")
    table = ok(gongmo("show", sejong))
    assert "preliminary review checklist: eligible" in table.text
    assert "population │ pass │ 386,525" in table.text
    assert "committee score 90.53 (written " in table.text and "rank 1 of 11; minimum 70" in table.text
    assert "decisions (KST)" in table.text
    assert "plan_received" in table.text


# -- user mistakes -------------------------------------------------------------------------------

MISTAKES: dict[str, tuple[list[str], str]] = {
    "score with a criterion missing '='": (
        ["score", "STRONG-SMALL-2024-0002", "feasibility", "innovation=15", "--evaluator", "kim@univ-seoul.example",
         "--part", "written"],
        "'feasibility': write CRITERION=POINTS, e.g. feasibility=24.5",
    ),
    "score of an unknown part": (
        ["score", "STRONG-SMALL-2024-0002", "feasibility=20", "--evaluator", "kim@univ-seoul.example",
         "--part", "oral"],
        "--part 'oral': write written or presentation",
    ),
    "rank of an unknown track": (["rank", "no-such-track"], "unknown track 'no-such-track'"),
    "kickoff approve with a malformed schedule": (
        ["kickoff", "approve", "STRONG-SMALL-2024-0001", "--schedule", "2024:1"],
        "--schedule '2024:1': write YEAR=NATIONAL/LOCAL in won",
    ),
    "objection uphold of an unknown objection": (
        ["objection", "uphold", "999", "--reason", "x"],
        "no objection #999: see `gongmo objection list`",
    ),
    "kickoff of an unknown receipt number": (
        ["kickoff", "receive", "STRONG-SMALL-2024-0099"],
        "no application with number or receipt number 'STRONG-SMALL-2024-0099'",
    ),
    "scores import of a missing file": (["scores", "import", TRACK, "no-such-file.csv"], "no-such-file.csv"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_user_mistake_exits_1_with_one_error_line_and_changes_nothing(
    gongmo: Gongmo, selected: dict[str, str], case: str
) -> None:
    args, expected = MISTAKES[case]
    ok(gongmo("kickoff", "receive", selected["36110"], now=KICKOFF))
    before = status(gongmo)
    shown = ok(gongmo("show", selected["36110"], "--json")).json()

    line = error_line(gongmo(*args, now=KICKOFF))

    assert expected in line
    assert status(gongmo) == before
    assert ok(gongmo("show", selected["36110"], "--json")).json() == shown


# -- --json on the commands that change something (issue 19, point 19) -------------------------------


def changed(result: Result) -> dict[str, Any]:
    """The whole of stdout is one JSON object: what the command changed."""
    data = ok(result).json()
    assert isinstance(data, dict), data
    return data


def test_the_review_committee_and_kickoff_commands_print_what_changed_as_json(
    gongmo: Gongmo, received: dict[str, str], tmp_path: Path
) -> None:
    passed = changed(gongmo("review", "pass", TRACK, "--json", now=REVIEW))
    assert passed == {"track": TRACK, "passed": 10, "to_state": "written_evaluation"}
    failed = changed(gongmo("review", "disqualify-failed", TRACK, "--json", now=REVIEW))
    assert sorted(d["application"] for d in failed["disqualified"]) == sorted([received["48120"], received["41110"]])
    filed = changed(
        gongmo("objection", "file", received["48120"], "--grounds", "인구 998,000명", "--json", now=OBJECTIONS)
    )
    assert (filed["objection_id"], filed["status"]) == (1, "open")
    filed2 = changed(gongmo("objection", "file", received["41110"], "--grounds", "특례시", "--json", now=OBJECTIONS))
    upheld = changed(gongmo("objection", "uphold", "1", "--reason", "확인", "--json", now=DECIDED))
    assert upheld["decision"] == "upheld" and upheld["to_state"] == "written_evaluation"
    rejected = changed(
        gongmo("objection", "reject", str(filed2["objection_id"]), "--reason", "예외 없음", "--json", now=DECIDED)
    )
    assert rejected["decision"] == "rejected"
    changed(gongmo("assign", TRACK, "--json", now=DECIDED))
    slots = changed(gongmo("presentations", "schedule", TRACK, "--json", now=DECIDED))
    assert len(slots["slots"]) == 11 and {"receipt_no", "starts_at"} <= slots["slots"][0].keys()
    evaluated = {code: received[code] for code in sc.TARGETS}
    written = sc.scores_csv(tmp_path / "written.csv", "written", evaluated)
    imported = changed(gongmo("scores", "import", TRACK, str(written), "--json", now=WRITTEN))
    assert imported == {"file": str(written), "track": TRACK, "stored": 51}
    points = [f"{k}={v}" for k, v in sc.sheet(Decimal(50), "46130").items()]
    one = changed(
        gongmo(
            "score", received["46130"], *points, "--evaluator", "kim@univ-seoul.example", "--part", "written",
            "--json", now=WRITTEN,
        )
    )  # fmt: skip
    assert (one["part"], one["stored"]) == ("written", 1)
    conflict = changed(
        gongmo("evaluators", "conflict", "kim@univ-seoul.example", "41590", "--reason", "자문", "--json", now=WRITTEN)
    )
    assert (conflict["evaluator"], conflict["applicant"]) == ("kim@univ-seoul.example", "41590")


def test_kickoff_commands_print_what_changed_as_json(gongmo: Gongmo, selected: dict[str, str]) -> None:
    sejong = selected["36110"]
    received = changed(gongmo("kickoff", "receive", sejong, "--json", now=KICKOFF))
    assert (received["round"], received["status"]) == (1, "received")
    returned = changed(gongmo("kickoff", "return", sejong, "--comments", "근거 첨부", "--json", now="2024-07-02T10:00"))
    assert (returned["round"], returned["status"]) == (1, "returned")
    changed(gongmo("kickoff", "receive", sejong, "--json", now="2024-07-08T10:00"))
    approved = changed(gongmo("kickoff", "approve", sejong, "--json", now="2024-07-09T10:00"))
    assert approved["to_state"] == "kickoff"
    assert sum(y["national_krw"] for y in approved["schedule"]) == 7_500_000_000  # the national share asked
