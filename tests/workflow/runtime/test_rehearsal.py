"""The rehearsal (workflow/runtime/rehearsal.py) with documents and answers (issue 21): every plan
received comes with its plan and budget sheet; the 2022 side calls run with their questions, and in
each of them at least one applicant fails the rule on its answer and is disqualified with the
checklist's reason while the others pass; the demo's receipt confirmation lists the same hashes as
the receipt's audit row. Each runs the real rehearsal on a SQLite file in tmp_path, then reads it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.eligibility import ANSWER_PREFIX
from gongmo.states.questions import normalise_brn, validate_all
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.db import read
from gongmo.workflow.core.files import current_hashes
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, OUTBOX, TRACK
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime import rehearsal, wiring
from tests.conftest import CONFIG, SAMPLE_CSV

SIDE_CALLS = "scc-2022-demonstration"
CONTEST_2024 = "scc-2024-creation-expansion"
# track -> (the question its rule is on, what a failed answer shows in the checklist)
RULES = {
    "public-private-2022": ("consortium", "3 members: local_government 1, private_company 2"),
    "living-lab-2022": ("living_lab", "no"),
}
SHA256 = re.compile(r"^[0-9a-f]{64}$")


Rehearsed = tuple[App, rehearsal.Result, list[str]]  # the app, the result, every line printed


def rehearsed(tmp_path: Path, contest: str, maildir: Path | None = None) -> Iterator[Rehearsed]:
    loaded = config_mod.load(CONFIG)
    clock = wiring.clock_for(loaded, None, fixed=True)
    app = wiring.open_app(loaded, clock, database_url=f"sqlite:///{tmp_path}/rehearsal.db")
    printed: list[str] = []
    try:
        result = rehearsal.run(app, [contest], SAMPLE_CSV, True, printed.append, maildir)
        assert result.audit_clean, "\n".join(printed[-5:])
        yield app, result, printed
    finally:
        app.db.dispose()


@pytest.fixture(scope="module")
def side_calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsed]:
    yield from rehearsed(tmp_path_factory.mktemp("side-calls"), SIDE_CALLS)


@pytest.fixture(scope="module")
def contest_2024(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsed]:
    yield from rehearsed(tmp_path_factory.mktemp("contest-2024"), CONTEST_2024)


def received(app: App, track: str) -> list[dict[str, Any]]:
    """Every application of the track that was received (it has a receipt number)."""
    with read(app.db) as conn:
        query = (
            sa.select(APPLICATION, APPLICANT.c.code)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track, APPLICATION.c.receipt_no.is_not(None))
            .order_by(APPLICATION.c.id)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def audit_rows(app: App, application_id: int, trigger: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = sa.select(AUDIT).where(AUDIT.c.application_id == application_id, AUDIT.c.trigger == trigger)
        return [dict(r) for r in conn.execute(query.order_by(AUDIT.c.id)).mappings()]


def documents(app: App, application_id: int) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        return current_hashes(conn, application_id)


def check(row: dict[str, Any], rule: str) -> dict[str, Any]:
    """The checklist line of one rule, as the review recorded it at the close."""
    [line] = [c for c in json.loads(row["checklist"]) if c["rule"] == rule]
    return dict(line)


# -- the side calls ------------------------------------------------------------------------------


@pytest.mark.parametrize("track", list(RULES))
def test_each_side_call_runs_with_its_questions_and_one_applicant_fails_its_rule(
    side_calls: Rehearsed, track: str
) -> None:
    app, result, _ = side_calls
    question, failed_shows = RULES[track]
    rule = ANSWER_PREFIX + question
    _, config = app.loaded.config.track(track)
    plans = received(app, track)
    assert len(plans) >= 10
    for row in plans:
        answers = json.loads(row["answers"])
        # every question answered as the config asks it (the required ones at least), each valid
        assert {q.key for q in config.questions if q.required} <= answers.keys(), (row["code"], answers)
        assert validate_all(config.questions, answers, complete=True) == answers
    failing = [r for r in plans if r["state"] == "disqualified"]
    passing = [r for r in plans if r["state"] != "disqualified"]
    assert failing and len(passing) > len(failing)
    for row in failing:
        line = check(row, rule)
        assert (line["passed"], line["value"]) == (False, failed_shows), line
        assert [c["rule"] for c in json.loads(row["checklist"]) if not c["passed"]] == [rule]  # only that rule
        [disqualified] = audit_rows(app, row["id"], "disqualify")
        assert disqualified["reason"] == f"eligibility: {rule}: {failed_shows} (required: {line['expected']})"
    for row in passing:
        assert check(row, rule)["passed"] is True
        assert [a["to_state"] for a in audit_rows(app, row["id"], "pass_review")] == ["written_evaluation"]
    # the timeline names the documents and the failed rule, with the receipt numbers that failed it
    timeline = "\n".join(result.lines)
    assert f"{track:<18} plans received: " in timeline
    assert "with 2 documents each (plan, budget)" in timeline
    review = next(line for line in result.lines if track in line and "preliminary review:" in line)
    assert f"{len(passing)} passed, {len(failing)} disqualified" in review
    assert f"failed a rule on an answer: {rule}: {failed_shows}" in review
    assert all(r["receipt_no"] in review for r in failing)


def test_a_consortium_that_passes_has_all_three_kinds_with_valid_registration_numbers(
    side_calls: Rehearsed,
) -> None:
    app, _, _ = side_calls
    for row in received(app, "public-private-2022"):
        members = json.loads(row["answers"])["consortium"]
        numbers = [m["brn"] for m in members]
        assert all(normalise_brn(n) == n for n in numbers) and len(set(numbers)) == len(numbers), members
        kinds = {m["kind"] for m in members}
        if row["state"] == "disqualified":
            assert kinds == {"local_government", "private_company"}  # no university
        else:
            assert kinds == {"local_government", "private_company", "university"}


def test_the_disqualified_applicant_is_told_the_rule_on_its_answer(side_calls: Rehearsed) -> None:
    """The disqualified notice tells the rule in the applicant's words, not the checklist's name."""
    app, _, _ = side_calls
    for track, (question, _) in RULES.items():
        _, config = app.loaded.config.track(track)
        [asked] = [q for q in config.questions if q.key == question]
        for row in (r for r in received(app, track) if r["state"] == "disqualified"):
            with read(app.db) as conn:
                body = conn.execute(
                    sa.select(OUTBOX.c.body_text).where(
                        OUTBOX.c.application_id == row["id"], OUTBOX.c.notice == "disqualified"
                    )
                ).scalar_one()
            assert ANSWER_PREFIX not in body, body
            assert asked.text_ko in body or asked.text_en in body, body


def test_the_sample_answers_are_valid_and_only_the_failing_ones_break_the_rule() -> None:
    config = config_mod.load(CONFIG).config
    for track in RULES:
        _, spec = config.track(track)
        applicant = {"id": 7, "code": "41590", "name": "화성시"}
        good = rehearsal.sample_answers(spec, applicant)
        bad = rehearsal.sample_answers(spec, applicant, fails=True)
        for answers in (good, bad):
            assert validate_all(spec.questions, answers, complete=True) == answers
        question = spec.eligibility.answers[0].question
        assert good[question] != bad[question]
        assert {k: v for k, v in good.items() if k != question} == {k: v for k, v in bad.items() if k != question}
    numbers = [rehearsal.sample_brn(n) for n in range(5000)]
    assert all(normalise_brn(n) == n for n in numbers) and len(set(numbers)) == len(numbers)


# -- the 2024 scenario ----------------------------------------------------------------------------


def test_every_plan_received_in_2024_has_its_current_plan_and_budget(
    contest_2024: Rehearsed,
) -> None:
    app, result, _ = contest_2024
    seen = 0
    for track in ("hub-2024", "strong-small-2024", "diffusion-2024"):
        for row in received(app, track):
            docs = documents(app, row["id"])
            assert sorted((d["kind"], d["file_type"]) for d in docs) == [("budget", "xlsx"), ("plan", "pdf")], docs
            assert all(SHA256.match(d["sha256"]) and d["size"] > 0 for d in docs)
            # the receipt's audit row carries the same hashes, and so does the receipt confirmation
            [submitted] = audit_rows(app, row["id"], "submit")
            recorded = json.loads(submitted["detail"])["documents"]
            assert {(d["kind"], d["sha256"]) for d in recorded} == {(d["kind"], d["sha256"]) for d in docs}
            with read(app.db) as conn:
                [mail] = conn.execute(
                    sa.select(OUTBOX.c.body_text).where(
                        OUTBOX.c.application_id == row["id"], OUTBOX.c.notice == "receipt_confirmation"
                    )
                ).scalars()
            assert all(d["sha256"] in mail and d["file_name"] in mail for d in docs)
            assert json.loads(row["answers"] or "{}") == {}  # the 2024 tracks ask no questions
            seen += 1
    assert seen >= 20
    assert not any("failed a rule on an answer" in line for line in result.lines)  # no rule on an answer in 2024
    assert result.receipt is not None and [d["kind"] for d in result.receipt[1]] == ["plan", "budget"]


# -- the demo's mail ---------------------------------------------------------------------------------


def test_the_demo_shows_a_receipt_confirmation_with_the_hashes_of_the_receipt_s_audit_row(tmp_path: Path) -> None:
    box = tmp_path / "maildir"
    for _, result, printed in rehearsed(tmp_path, "scc-2022-small-medium", maildir=box):
        assert result.mail is not None and result.receipt is not None and result.mail.receipt is not None
        receipt_no, recorded = result.receipt
        assert result.mail.receipt.parent.parent == box.resolve()
        listed = rehearsal.receipt_documents(result.mail.receipt)
        hashes = [line.split("SHA-256: ", 1)[1] for line in listed if line.lstrip().startswith("SHA-256: ")]
        assert hashes == [d["sha256"] for d in recorded] and len(hashes) == 2
        assert listed[0].startswith("1. ") and recorded[0]["file_name"] in listed[0]
        assert f"  the receipt confirmation of {receipt_no}: {result.mail.receipt}" in printed
        # the summary printed the audit row's list, the mail's follows it: the same two hashes
        assert [h for line in printed for h in re.findall(r"\b[0-9a-f]{64}\b", line)] == hashes + hashes
