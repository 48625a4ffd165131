"""Rankings and results as files for the office: CSV (UTF-8 with a BOM, so
spreadsheet programs show Korean correctly) and XLSX (openpyxl)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from states.errors import InvalidInput


def _cell(value: Any, zone: str) -> Any:
    if isinstance(value, datetime):
        return f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M:%S}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def write(path: Path, rows: Sequence[dict[str, Any]], zone: str = "Asia/Seoul") -> str:
    """Write rows to .csv or .xlsx by the file's suffix; returns the format."""
    if not rows:
        raise InvalidInput(f"{path}: nothing to export")
    header = list(rows[0])
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open("w", encoding="utf-8-sig", newline="") as f:
                out = csv.writer(f)
                out.writerow(header)
                out.writerows([[_cell(r[k], zone) for k in header] for r in rows])
            return "csv"
        if suffix == ".xlsx":
            _xlsx(path, header, rows, zone)
            return "xlsx"
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot write ({exc.strerror})") from None
    raise InvalidInput(f"{path}: write a .csv or an .xlsx file")


def _xlsx(path: Path, header: list[str], rows: Sequence[dict[str, Any]], zone: str) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for r in rows:
        sheet.append([_number(_cell(r[k], zone)) for k in header])
    sheet.freeze_panes = "A2"
    book.save(path)


def _number(value: Any) -> Any:
    """Scores ("85.20") as numbers in the sheet, so they sort and sum."""
    if isinstance(value, str) and "." in value and value.replace(".", "", 1).isdigit():
        return float(value)
    return value
