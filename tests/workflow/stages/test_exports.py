"""Rankings and results as files: CSV in UTF-8 with a BOM (Korean survives a
spreadsheet program) and XLSX with scores as numbers."""

from __future__ import annotations

import csv
import os
import stat
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from gongmo.states.errors import InvalidInput
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import committee, exports, review, selection
from tests.conftest import kst
from tests.workflow import contest_2024 as sc

BOM = b"\xef\xbb\xbf"
OFFICE = sc.OFFICE


def _rows() -> list[dict[str, Any]]:
    """Two rows shaped like selection.table's."""
    return [
        {
            "rank": 1,
            "receipt_no": "STRONG-SMALL-2024-0001",
            "applicant": "세종특별자치시",
            "written": "90.33",
            "presentation": "90.67",
            "score": "90.53",
            "qualified": True,
            "national_krw": 7_500_000_000,
            "submitted_at": datetime(2024, 5, 28, 2, 0, tzinfo=UTC),
            "tie": "",
            "note": "선정, 3개소 중 1순위",
        },
        {
            "rank": 2,
            "receipt_no": "STRONG-SMALL-2024-0011",
            "applicant": "여수시",
            "written": "64.33",
            "presentation": "65.67",
            "score": "65.13",
            "qualified": False,
            "national_krw": 8_000_000_000,
            "submitted_at": datetime(2024, 5, 29, 8, 59, 59, tzinfo=UTC),
            "tie": "tied with X at 1.00; receipt decides",
            "note": "below the qualifying minimum 70",
        },
    ]


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


# -- CSV -------------------------------------------------------------------------------------


def test_csv_starts_with_the_utf8_bom_and_reads_back_with_korean_intact(tmp_path: Path) -> None:
    path = tmp_path / "ranking.csv"

    assert exports.write(path, _rows()) == "csv"

    data = path.read_bytes()
    assert data.startswith(BOM)
    assert not data[len(BOM) :].startswith(BOM)  # one BOM, not two
    assert "세종특별자치시".encode() in data
    rows = _read_csv(path)
    assert rows[0] == list(_rows()[0])
    assert rows[1][:8] == [
        "1",
        "STRONG-SMALL-2024-0001",
        "세종특별자치시",
        "90.33",
        "90.67",
        "90.53",
        "yes",
        "7500000000",
    ]
    assert rows[1][10] == "선정, 3개소 중 1순위"  # a comma inside a cell is quoted, not split
    assert rows[2][2] == "여수시" and rows[2][6] == "no"
    assert len(rows) == 3


def test_csv_writes_times_in_the_contest_zone(tmp_path: Path) -> None:
    path = tmp_path / "ranking.csv"
    exports.write(path, _rows())
    assert [r[8] for r in _read_csv(path)[1:]] == ["2024-05-28 11:00:00", "2024-05-29 17:59:59"]

    utc = tmp_path / "ranking-utc.csv"
    exports.write(utc, _rows(), zone="UTC")
    assert [r[8] for r in _read_csv(utc)[1:]] == ["2024-05-28 02:00:00", "2024-05-29 08:59:59"]


def test_the_suffix_is_read_case_insensitively(tmp_path: Path) -> None:
    assert exports.write(tmp_path / "RANKING.CSV", _rows()) == "csv"
    assert (tmp_path / "RANKING.CSV").read_bytes().startswith(BOM)
    assert exports.write(tmp_path / "Ranking.XLSX", _rows()) == "xlsx"


# -- XLSX ------------------------------------------------------------------------------------


def test_xlsx_has_a_bold_header_row_and_numbers_for_the_score_columns(tmp_path: Path) -> None:
    path = tmp_path / "ranking.xlsx"

    assert exports.write(path, _rows()) == "xlsx"

    sheet = load_workbook(path).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0] == list(_rows()[0])
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    first = dict(zip(values[0], values[1], strict=True))
    assert first["rank"] == 1
    assert first["written"] == pytest.approx(90.33) and isinstance(first["written"], float)
    assert first["presentation"] == pytest.approx(90.67) and isinstance(first["presentation"], float)
    assert first["score"] == pytest.approx(90.53) and isinstance(first["score"], float)
    assert first["national_krw"] == 7_500_000_000
    assert first["receipt_no"] == "STRONG-SMALL-2024-0001"
    assert first["applicant"] == "세종특별자치시"
    assert first["qualified"] == "yes"
    assert first["submitted_at"] == "2024-05-28 11:00:00"
    assert first["tie"] is None  # an empty string is an empty cell
    second = dict(zip(values[0], values[2], strict=True))
    assert (second["applicant"], second["score"], second["qualified"]) == ("여수시", pytest.approx(65.13), "no")
    assert second["tie"] == "tied with X at 1.00; receipt decides"
    assert len(values) == 3


# -- formulas and privacy (issue 18, findings 8 and 10) -------------------------------------

# OWASP "CSV injection": a cell starting with one of these is read as a formula by spreadsheets.
HOSTILE = ['=HYPERLINK("http://x.example","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\tx", "\rx"]


def _hostile_rows() -> list[dict[str, Any]]:
    rows = _rows()
    for i, text in enumerate(HOSTILE):
        rows.append(rows[0] | {"rank": 3 + i, "applicant": text, "note": text, "national_krw": -5, "score": "-1.50"})
    return rows


def test_csv_cells_that_start_a_formula_are_written_as_text(tmp_path: Path) -> None:
    path = tmp_path / "ranking.csv"
    exports.write(path, _hostile_rows())
    table = _read_csv(path)
    header = table[0]
    hostile = [dict(zip(header, r, strict=True)) for r in table[3:]]
    assert [r["applicant"] for r in hostile] == ["'" + text for text in HOSTILE]
    assert [r["note"] for r in hostile] == ["'" + text for text in HOSTILE]
    assert {r["national_krw"] for r in hostile} == {"-5"}  # numbers stay numbers
    assert {r["score"] for r in hostile} == {"-1.50"}
    assert dict(zip(header, table[1], strict=True))["applicant"] == "세종특별자치시"  # plain text untouched


def test_xlsx_cells_that_start_a_formula_are_text_not_formulas(tmp_path: Path) -> None:
    path = tmp_path / "ranking.xlsx"
    exports.write(path, _hostile_rows())
    sheet = load_workbook(path).active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    col = {name: i for i, name in enumerate(header)}
    for row, text in zip(list(sheet.iter_rows(min_row=4)), HOSTILE, strict=True):
        for name in ("applicant", "note"):
            cell = row[col[name]]
            # (XML reads a carriage return back as a line feed)
            assert (cell.value, cell.data_type) == (text.replace("\r", "\n"), "s")
            assert cell.quotePrefix
        assert (row[col["national_krw"]].value, row[col["national_krw"]].data_type) == (-5, "n")
        assert (row[col["score"]].value, row[col["score"]].data_type) == (-1.5, "n")
    assert not any(c.data_type == "f" for r in sheet.iter_rows() for c in r)


@pytest.mark.parametrize("name", ["ranking.csv", "ranking.xlsx"])
def test_an_export_is_readable_by_its_owner_only(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    old = os.umask(0o022)  # a umask that makes files world-readable
    try:
        exports.write(path, _rows())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ranking.txt", "ranking.json", "ranking", "ranking.csv.bak", "ranking.xls"])
def test_a_file_that_is_neither_csv_nor_xlsx_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name

    with pytest.raises(InvalidInput) as refused:
        exports.write(path, _rows())

    assert str(refused.value) == f"{path}: write a .csv or an .xlsx file"
    assert not path.exists()


@pytest.mark.parametrize("name", ["ranking.csv", "ranking.xlsx"])
def test_exporting_no_rows_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name

    with pytest.raises(InvalidInput) as refused:
        exports.write(path, [])

    assert str(refused.value) == f"{path}: nothing to export"
    assert not path.exists()


def test_a_file_that_cannot_be_written_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "ranking.csv"

    with pytest.raises(InvalidInput, match="cannot write") as refused:
        exports.write(path, _rows())

    assert str(path) in str(refused.value)
    assert "No such file or directory" in str(refused.value)
    assert not path.parent.exists()


# -- a real ranking ----------------------------------------------------------------------------


@pytest.fixture
def ranked(app: App, clock: FixedClock, tmp_path: Path) -> dict[str, str]:
    """code -> receipt_no, every sheet of both parts entered (창원 disqualified: ten ranked)."""
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
    return receipts


def test_the_selection_table_exports_to_both_formats_with_the_same_content(
    app: App, clock: FixedClock, ranked: dict[str, str], tmp_path: Path
) -> None:
    clock.set(kst("2024-06-26 09:00"))
    result = selection.select(app, sc.TRACK, OFFICE)
    rows = selection.table(result.ranking, result.decisions)
    assert len(rows) == 10

    exports.write(tmp_path / "results.csv", rows)
    exports.write(tmp_path / "results.xlsx", rows)

    from_csv = _read_csv(tmp_path / "results.csv")
    sheet = load_workbook(tmp_path / "results.xlsx").active
    assert sheet is not None
    from_xlsx = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert from_csv[0] == list(rows[0]) == list(from_xlsx[0])
    header = from_csv[0]
    by_receipt = {r[header.index("receipt_no")]: r for r in from_csv[1:]}
    sejong = by_receipt[ranked["36110"]]
    assert sejong[header.index("applicant")] == "세종특별자치시"
    assert sejong[header.index("rank")] == "1"
    assert sejong[header.index("written")] == str(sc.expected("36110", "written"))
    assert sejong[header.index("score")] == "90.53"
    assert sejong[header.index("decision")] == "selected"
    assert sejong[header.index("submitted_at")] == "2024-05-28 11:00:00"
    for code in ("36110", "46130"):
        xlsx_row = next(r for r in from_xlsx[1:] if r[header.index("receipt_no")] == ranked[code])
        for column in ("written", "presentation", "score", "criterion:feasibility"):
            value = xlsx_row[header.index(column)]
            assert isinstance(value, float), (code, column, value)
            csv_value = by_receipt[ranked[code]][header.index(column)]
            assert Decimal(str(value)) == Decimal(csv_value), (code, column)
    yeosu = by_receipt[ranked["46130"]]
    assert yeosu[header.index("qualified")] == "no"
    assert yeosu[header.index("decision")] == "not selected"
    assert "below the qualifying minimum 70" in yeosu[header.index("note")]
