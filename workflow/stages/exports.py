"""Rankings and results as files for the office: CSV (UTF-8 with a BOM, so
spreadsheet programs show Korean correctly) and XLSX (openpyxl).

A file is created readable by its owner only (0600), whatever the umask: it
holds scores and names. A text cell that a spreadsheet would take for a
formula (it starts with =, +, -, @, a tab or a carriage return: OWASP's "CSV
injection") is written as text: in CSV behind a single quote, in XLSX as a
string cell with the quote prefix. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from gongmo.states.errors import InvalidInput

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def is_formula(value: Any) -> bool:
    """A text a spreadsheet would evaluate (a number such as "-1.50" is not one)."""
    return isinstance(value, str) and value.startswith(FORMULA_START) and NUMBER.fullmatch(value) is None


def _text(value: Any) -> Any:
    """A CSV cell: a formula-looking text behind a single quote, so it shows as typed."""
    return "'" + value if is_formula(value) else value


@contextmanager
def _private(path: Path, mode: str, **kw: Any) -> Iterator[IO[Any]]:
    """`path` opened for writing, created (or truncated and reset to) 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with open(fd, mode, **kw) as f:
        yield f


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
            with _private(path, "w", encoding="utf-8-sig", newline="") as f:
                out = csv.writer(f)
                out.writerow([_text(h) for h in header])
                out.writerows([[_text(_cell(r[k], zone)) for k in header] for r in rows])
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
        for cell in sheet[sheet.max_row]:
            if is_formula(cell.value):  # openpyxl took it for a formula ('=') or may show it as one
                cell.data_type = "s"
                cell.quotePrefix = True
    sheet.freeze_panes = "A2"
    with _private(path, "wb") as f:
        book.save(f)


def _number(value: Any) -> Any:
    """Scores ("85.20") as numbers in the sheet, so they sort and sum."""
    if isinstance(value, str) and "." in value and NUMBER.fullmatch(value):
        return float(value)
    return value
