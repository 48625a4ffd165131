"""Published results (issue 22): the 2024 strong-and-small track run to its release
(tests/workflow/contest_2024.py), then published as a CSV, a JSON file and an HTML page whose
figures are the ranking rows `gongmo rank` prints; on SQLite and PostgreSQL.

The scenario: 창원 and 수원 disqualified at the review (no objection here), ten ranked; 세종, 시흥
and 천안 selected, 청주 and 화성 waitlisted; 시흥 withdraws on 2024-07-01 and 청주 (waitlist 1) is
promoted before the office releases the results. Published: 세종, 천안, 청주 selected (cutoff 84.93,
the tie 천안 won on feasibility), 화성 waitlisted at position 2; five not selected, 여수 of them
below the minimum of 70.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import stat
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.errors import Conflict, GongmoError, InvalidInput
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import AUDIT_ANCHOR, TRACK
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import office
from gongmo.workflow.stages import committee, results, review, selection
from tests.conftest import CONFIG, config_copy, kst, make_app
from tests.workflow import contest_2024 as sc

BOM = b"\xef\xbb\xbf"
OFFICE = sc.OFFICE
SELECTED, WAITLISTED = ["36110", "44130", "43110"], ["41590"]
NOT_SELECTED = ["47190", "52110", "51110", "26350", "46130"]
NAMES = {code: line.split(",")[1] for code, line in ((ln[:5], ln) for ln in sc.APPLICANTS_CSV.splitlines()[1:])}
PUBLISH_NOT_SELECTED = ('key = "strong-small-2024"', 'key = "strong-small-2024"\n  publish_not_selected = true')


def to_selection(app: App, clock: FixedClock, tmp_path: Path) -> dict[str, str]:
    """The scenario up to the confirmed selection (results held); code -> receipt number."""
    sc.prepare(app, clock, tmp_path)
    sc.receive_all(app, clock)
    sc.at(app, clock, "2024-05-29 18:00")
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, OFFICE)
    review.disqualify_failed(app, sc.TRACK, OFFICE)
    committee.assign_track(app, sc.TRACK, OFFICE)
    receipts = {
        code: str(r["receipt_no"])
        for code, r in sc.apps(app).items()
        if code in sc.TARGETS and r["state"] == "written_evaluation"
    }
    clock.set(kst("2024-06-11 14:00"))
    sc.import_sheets(app, tmp_path / "written.csv", "written", receipts)
    sc.at(app, clock, "2024-06-12 18:00")
    clock.set(kst("2024-06-19 17:00"))
    sc.import_sheets(app, tmp_path / "presentation.csv", "presentation", receipts)
    clock.set(kst("2024-06-26 09:00"))
    selection.select(app, sc.TRACK, OFFICE, confirm=True)
    return receipts


def to_release(app: App, clock: FixedClock, tmp_path: Path) -> dict[str, str]:
    """The selection, 시흥's withdrawal (청주 promoted) and the office's release of every result."""
    receipts = to_selection(app, clock, tmp_path)
    clock.set(kst("2024-07-01 10:00"))
    app.moves.apply(int(sc.application(app, "41390")["id"]), "withdraw", sc.APPLICANT_ACTOR)
    clock.set(kst("2024-07-02 14:00"))
    assert office.release(app, sc.TRACK, "results") > 0
    clock.set(kst("2024-07-02 15:00"))
    return receipts


def read_csv(path: Path) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The CSV's two blocks: the listed rows, and the figures (item -> value)."""
    data = path.read_bytes()
    assert data.startswith(BOM) and not data[len(BOM) :].startswith(BOM)
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    blank = lines.index([])
    header, *rows = lines[:blank]
    assert lines[blank + 1] == ["item", "value"]
    figures = dict((item, value) for item, value in lines[blank + 2 :])
    return [dict(zip(header, r, strict=True)) for r in rows], figures


class _Page(HTMLParser):
    """The tags, attributes and text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def assert_self_contained(text: str) -> _Page:
    """No external asset, no script; a charset and a CSP that allows nothing external."""
    page = parse_html(text)
    assert "<script" not in text.lower()
    assert "http://" not in text and "https://" not in text and "//" not in text
    assert not re.search(r"\b(src|href|srcset|action|poster|data)\s*=", text, re.I)
    assert "url(" not in text.lower() and "@import" not in text.lower() and "@font-face" not in text.lower()
    assert {t for t, _ in page.tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span", "dl", "dt", "dd",
        "table", "thead", "tbody", "tr", "th", "td", "code",
    }  # fmt: skip
    metas = [a for t, a in page.tags if t == "meta"]
    assert {"charset": "utf-8"} in metas
    (csp,) = [a["content"] for a in metas if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp is not None
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert re.fullmatch(r"'sha256-[A-Za-z0-9+/]+=*'", directives["style-src"])
    assert set(directives) == {"default-src", "style-src", "base-uri", "form-action"}
    assert all(v == "'none'" for k, v in directives.items() if k != "style-src")
    # the one <style> element is the one the hash allows
    (style,) = re.findall(r"<style>(.*?)</style>", text, re.S)
    assert directives["style-src"] == f"'sha256-{base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()}'"
    return page


# -- the 2024 scenario -------------------------------------------------------------------------


def test_publishing_before_the_release_is_refused_and_writes_nothing(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    to_selection(app, clock, tmp_path)  # selected, every result held
    out = tmp_path / "site" / "results"

    with pytest.raises(Conflict) as refused:
        results.publish(app, sc.TRACK, out)

    assert str(refused.value) == (
        f"results of {sc.TRACK} are not released yet (released by `gongmo outbox release {sc.TRACK} results`):"
        " publishing before would break the embargo"
    )
    assert not (tmp_path / "site").exists()
    with read(app.db) as conn:  # and no anchor stored
        assert conn.execute(sa.select(sa.func.count()).select_from(AUDIT_ANCHOR)).scalar_one() == 0


def test_the_published_results_are_the_ranking_rows_in_three_files(app: App, clock: FixedClock, tmp_path: Path) -> None:
    receipts = to_release(app, clock, tmp_path)
    code_of = {r: c for c, r in receipts.items()}
    ranking = selection.ranking(app, sc.TRACK)
    rank_rows = {row["receipt_no"]: row for row in selection.table(ranking)}  # what `gongmo rank` prints
    with read(app.db) as conn:
        released = conn.execute(sa.select(TRACK.c.results_released_at).where(TRACK.c.key == sc.TRACK)).scalar_one()
    assert released == kst("2024-07-02 14:00")
    out = tmp_path / "public" / "strong-small"
    old = os.umask(0o077)  # as the CLI runs
    try:
        done = results.publish(app, sc.TRACK, out)
    finally:
        os.umask(old)

    names = [f"{sc.TRACK}-results.{ext}" for ext in ("csv", "json", "html")]
    assert done.files == [out / n for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary file left behind
    for path in done.files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    for folder in (out, out.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder

    # -- CSV: the listed rows are the ranking rows; the not selected are only counted
    rows, figures = read_csv(out / names[0])
    assert [code_of[r["receipt_no"]] for r in rows] == SELECTED + WAITLISTED  # by rank
    decided = sc.apps(app)
    renumbered = 0
    for r in rows:
        ranked = rank_rows[r["receipt_no"]]
        code = code_of[r["receipt_no"]]
        assert r["applicant"] == ranked["applicant"] == NAMES[code]
        # the rank the selection decided (and the notice told), not `gongmo rank`'s today, which
        # renumbers those below 시흥, withdrawn after the selection
        assert r["rank"] == str(decided[code]["rank"])
        renumbered += r["rank"] != str(ranked["rank"])
        assert (r["written"], r["presentation"], r["score"]) == (
            ranked["written"],
            ranked["presentation"],
            ranked["score"],
        )
        assert r["written"] == str(sc.expected(code, "written"))
        assert r["presentation"] == str(sc.expected(code, "presentation"))
        row = sc.application(app, code)
        assert r["national_krw"] == str(ranked["national_krw"]) == str(sc.NATIONAL[code])
        assert r["local_krw"] == str(row["local_krw"]) == str(sc.NATIONAL[code])
        assert r["tie_break"] == ranked["tie"]
        assert r["reason"] == ""
    assert renumbered > 0  # the scenario has a withdrawal that `gongmo rank` renumbers after
    by_code = {code_of[r["receipt_no"]]: r for r in rows}
    assert {c: r["outcome"] for c, r in by_code.items()} == {
        "36110": "selected", "44130": "selected", "43110": "selected", "41590": "waitlisted",
    }  # fmt: skip
    assert by_code["41590"]["waitlist_position"] == "2" and by_code["43110"]["waitlist_position"] == ""
    assert by_code["43110"]["tie_break"].startswith(f"tied with {receipts['44130']} at 84.93")
    selected_scores = [Decimal(rank_rows[receipts[c]]["score"]) for c in SELECTED]
    assert figures["cutoff"] == str(min(selected_scores)) == "84.93"
    assert (figures["slots_used"], figures["slots"]) == ("3", "3")
    assert figures["national_used_krw"] == str(sum(sc.NATIONAL[c] for c in SELECTED)) == "23500000000"
    assert figures["national_budget_krw"] == "24000000000"
    assert {k: figures[k] for k in ("received", "disqualified", "withdrawn", "ranked")} == {
        "received": "12", "disqualified": "2", "withdrawn": "1", "ranked": str(len(ranking.rows)),
    }  # fmt: skip
    assert len(ranking.rows) == 9
    assert figures["qualified"] == str(sum(r.qualified for r in ranking.rows)) == "8"
    assert figures["below_minimum"] == "1" and figures["not_selected"] == "5"
    assert (figures["selected"], figures["waitlisted"], figures["cancelled"]) == ("3", "1", "0")
    assert figures["published_at"] == "2024-07-02T15:00:00+09:00"
    assert figures["released_at"] == "2024-07-02T14:00:00+09:00"
    assert list(figures) == list(results.SUMMARY_ITEMS)
    digest = figures["anchor_digest"]
    assert digest and figures["verify"] == f"gongmo audit verify --anchor {digest}"
    assert int(figures["anchor_rows"]) > 0
    with audit.snapshot(app.db) as conn:  # the anchor was stored: `audit verify --anchor` finds it
        proof = audit.verify_anchor(conn, digest)
    assert proof.clean, proof.findings
    assert (proof.anchor.rows, proof.anchor.at) == (int(figures["anchor_rows"]), kst("2024-07-02 15:00"))
    assert figures["anchor_at"] == "2024-07-02T15:00:00+09:00"

    # -- JSON: the same figures
    doc = json.loads((out / names[1]).read_text(encoding="utf-8"))
    assert [(a["receipt_no"], a["score"], a["rank"], a["outcome"]) for a in doc["applications"]] == [
        (r["receipt_no"], r["score"], int(r["rank"]), r["outcome"]) for r in rows
    ]
    assert doc["applications"][0]["national_krw"] == 7_500_000_000
    assert doc["cutoff"] == "84.93" and doc["minimum_score"] == "70"
    assert doc["slots"] == {"used": 3, "of": 3}
    assert doc["national_budget_krw"] == {"used": 23_500_000_000, "of": 24_000_000_000}
    assert doc["counts"] == {k: int(figures[k]) for k in doc["counts"]}
    assert doc["not_selected"] == [] and doc["not_selected_listed"] is False
    assert doc["anchor"] == {"digest": digest, "rows": int(figures["anchor_rows"]), "at": figures["anchor_at"]}
    assert doc["verify"] == f"gongmo audit verify --anchor {digest}"
    assert doc["track"] == {"key": sc.TRACK, "name_ko": "강소형 스마트도시", "name_en": "Strong-and-small smart city"}

    # -- HTML: self-contained, both languages, the anchor and the listed only
    html = (out / names[2]).read_text(encoding="utf-8")
    page = assert_self_contained(html)
    text = " ".join(" ".join(page.text).split())
    for label in (
        "선정 / Selected",
        "예비 / Waitlisted",
        "종합점수 / Committee score",
        "감사 기록 앵커 / Audit anchor",
    ):
        assert label in text, label
    assert "선정 커트라인 / Cutoff (score of the last selected) 84.93" in text
    assert "선정 개소 / Slots used 3 / 3" in text
    assert "국비 사용 / National budget used (KRW) 23,500,000,000 / 24,000,000,000" in text
    assert f"gongmo audit verify --anchor {digest}" in text and digest in text
    for code in SELECTED + WAITLISTED:
        assert NAMES[code] in text and receipts[code] in text
    for code in NOT_SELECTED:
        for published in (html, (out / names[0]).read_text(encoding="utf-8-sig"), (out / names[1]).read_text()):
            assert NAMES[code] not in published and receipts[code] not in published, code
    assert "미선정 / Not selected 5" in text
    assert "<h2>미선정" not in html  # no list of them


def test_the_not_selected_are_listed_when_the_track_says_so(db_url: str, clock: FixedClock, tmp_path: Path) -> None:
    app = make_app(db_url, clock, config_copy(tmp_path, PUBLISH_NOT_SELECTED))
    try:
        assert app.loaded.config.track(sc.TRACK)[1].publish_not_selected
        receipts = to_release(app, clock, tmp_path)
        ranking = {row["receipt_no"]: row for row in selection.table(selection.ranking(app, sc.TRACK))}
        done = results.publish(app, sc.TRACK, tmp_path / "out")
    finally:
        app.db.dispose()
    code_of = {r: c for c, r in receipts.items()}
    rows, figures = read_csv(done.files[0])
    assert [code_of[r["receipt_no"]] for r in rows] == SELECTED + WAITLISTED + [
        "47190",
        "52110",
        "51110",
        "26350",
        "46130",
    ]
    listed = {code_of[r["receipt_no"]]: r for r in rows if r["outcome"] == "not_selected"}
    assert sorted(listed) == sorted(NOT_SELECTED)
    for code, r in listed.items():
        ranked = ranking[receipts[code]]
        assert (r["applicant"], r["score"]) == (NAMES[code], ranked["score"])
        assert r["rank"] == str(sc.application(app, code)["rank"])  # the rank the selection decided
        assert r["written"] == r["presentation"] == r["waitlist_position"] == r["tie_break"] == ""
        assert r["national_krw"] == r["local_krw"] == ""
    # the decision's note, without the rank it had at the selection (before 시흥 withdrew)
    assert listed["46130"]["reason"] == "65.13 is below the qualifying minimum 70"
    for code in ("47190", "52110", "51110", "26350"):
        assert listed[code]["reason"] == "all 3 slots filled; the waitlist of 2 is full", code
    assert figures["not_selected"] == "5"

    doc = json.loads(done.files[1].read_text(encoding="utf-8"))
    assert doc["not_selected_listed"] is True
    assert [n["receipt_no"] for n in doc["not_selected"]] == [r["receipt_no"] for r in rows[4:]]
    assert set(doc["not_selected"][0]) == {"rank", "receipt_no", "applicant", "score", "reason"}
    assert [a["outcome"] for a in doc["applications"]] == ["selected"] * 3 + ["waitlisted"]

    html = done.files[2].read_text(encoding="utf-8")
    page = assert_self_contained(html)
    text = " ".join(" ".join(page.text).split())
    assert "미선정 / Not selected 순위 / Rank" in text  # the list's heading and its table
    assert "사유 / Reason" in text
    for code in NOT_SELECTED:
        assert NAMES[code] in text and receipts[code] in text, code
    assert listed["46130"]["reason"] in text


def test_an_unknown_track_is_refused_in_one_line(app: App, tmp_path: Path) -> None:
    with pytest.raises(GongmoError) as refused:
        results.publish(app, "no-such-track", tmp_path / "out")

    message = str(refused.value)
    assert message.startswith("unknown track 'no-such-track' (tracks in the config: ")
    assert "\n" not in message and sc.TRACK in message
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_refused_and_left_alone(app: App, clock: FixedClock, tmp_path: Path) -> None:
    to_release(app, clock, tmp_path)
    taken = tmp_path / "taken"
    taken.write_text("the office's notes", encoding="utf-8")

    with pytest.raises(InvalidInput) as refused:
        results.publish(app, sc.TRACK, taken)

    assert str(refused.value) == f"--out {taken}: not a folder; name a folder (it is created if missing)"
    assert taken.read_text(encoding="utf-8") == "the office's notes"


# -- the writers, on hand-made results ----------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://x.example","click")', "+1+cmd|' /C calc'!A0", "@SUM(A1:A2)", "-2+3"]


def _results(**changes: Any) -> results.Results:
    """Results of the shipped strong-small track with two listed rows (no database)."""
    contest, track = config_mod.load(CONFIG).config.track(sc.TRACK)
    row = results.Listed(1, "STRONG-SMALL-2024-0001", "세종특별자치시", "selected", "90.33", "90.67", "90.53", None,
                         7_500_000_000, 7_500_000_000, "")  # fmt: skip
    base = results.Results(
        contest=contest,
        track=track,
        released_at=datetime(2024, 7, 2, 5, tzinfo=UTC),
        published_at=datetime(2024, 7, 2, 6, tzinfo=UTC),
        listed=[
            row,
            replace(row, rank=2, receipt_no="STRONG-SMALL-2024-0002", outcome="waitlisted", waitlist_position=1),
        ],
        counts=dict.fromkeys(
            (
                "received",
                "disqualified",
                "withdrawn",
                "ranked",
                "qualified",
                "below_minimum",
                "selected",
                "waitlisted",
                "not_selected",
                "cancelled",
            ),
            1,
        ),
        cutoff="90.53",
        national_used_krw=7_500_000_000,
        anchor_digest="ab" * 32,
        anchor_rows=120,
        anchor_at=datetime(2024, 7, 2, 6, tzinfo=UTC),
    )
    return replace(base, **changes)


def test_a_cell_a_spreadsheet_would_take_for_a_formula_is_written_as_text() -> None:
    one = _results()
    hostile = _results(listed=[replace(one.listed[0], applicant=text, tie_break=text) for text in HOSTILE])
    header, *rest = list(csv.reader(io.StringIO(results.csv_text(hostile), newline="")))
    rows = [dict(zip(header, r, strict=True)) for r in rest[: len(HOSTILE)]]
    assert [r["applicant"] for r in rows] == ["'" + t for t in HOSTILE]
    assert [r["tie_break"] for r in rows] == ["'" + t for t in HOSTILE]
    assert {r["score"] for r in rows} == {"90.53"} and {r["national_krw"] for r in rows} == {"7500000000"}


def test_the_page_escapes_what_it_shows() -> None:
    one = _results()
    sneaky = '<script>alert(1)</script><img src="https://x.example/a.png">'
    html = results.html_page(_results(listed=[replace(one.listed[0], applicant=sneaky)]))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<h2>미선정" not in html


def test_the_page_lists_nobody_as_none_and_no_cutoff_as_a_dash() -> None:
    page = parse_html(results.html_page(_results(listed=[], cutoff=None)))
    text = " ".join(" ".join(page.text).split())
    assert "없음 / None" in text
    assert "선정 커트라인 / Cutoff (score of the last selected) -" in text
