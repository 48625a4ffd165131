"""Import local governments (applicants) from CSV: all rows or none.

Every row is validated first; any problem is reported with its row, column,
value and the fix, and nothing is imported. The importers (applicants here,
evaluators and score sheets in committee.py) share one reader: it refuses a
file over `[gongmo] max_csv_bytes` before reading it, streams the rest row by
row (never the whole file in memory), and shows the first 50 problems with a
count of the others. A valid file is upserted by code
in one transaction, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator
from sqlalchemy.engine import Connection

from gongmo.states.errors import InvalidInput
from gongmo.workflow.core.config import Kind
from gongmo.workflow.core.models import APPLICANT

COLUMNS = ("code", "name", "kind", "population", "contact_name", "email", "language")

FIXES = {
    "code": "a 5-digit administrative code (행정표준코드), e.g. 41110",
    "name": "the local government's name, e.g. 수원시",
    "kind": "one of " + ", ".join(k.value for k in Kind),
    "population": "a whole number of inhabitants, e.g. 1190000 (no commas)",
    "contact_name": "the name of the person in charge",
    "email": "an e-mail address, e.g. smartcity@suwon.example",
    "language": "ko or en",
}


class ApplicantRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(pattern=r"^[0-9]{5}$")  # not \d: it takes any Unicode digit ('٤١١١٠')
    name: str = Field(min_length=1, max_length=60)
    kind: Kind
    population: int = Field(gt=0, lt=20_000_000)
    contact_name: str = Field(min_length=1, max_length=60)
    email: EmailStr
    language: str = Field(default="ko", pattern=r"^(ko|en)$")

    @field_validator("population", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        if isinstance(value, str) and not (value.strip().isascii() and value.strip().isdigit()):
            raise ValueError("not a whole number")
        return value


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


# The default of [gongmo] max_csv_bytes: a sheet of all 243 local governments is ~20 KB.
MAX_CSV_BYTES = 20 * 1024 * 1024
# Problems shown in a refusal; the others are counted.
MAX_PROBLEMS = 50


def open_csv(path: Path, max_bytes: int = MAX_CSV_BYTES) -> Iterator[list[str]]:
    """The rows of a spreadsheet's CSV export (UTF-8, with or without a BOM), read as they are
    needed; a file over `max_bytes` is refused before any of it is read."""
    try:
        f = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    try:
        size = path.stat().st_size
    except OSError as exc:
        f.close()
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    if size > max_bytes:
        f.close()
        raise InvalidInput(
            f"{path}: {size:,} bytes, more than the {max_bytes:,} an import takes ([gongmo] max_csv_bytes):"
            " split the file, or raise the limit in the config; nothing was imported"
        )
    return _stream(f, path)


def _stream(f: TextIO, path: Path) -> Iterator[list[str]]:
    with f:
        try:
            yield from csv.reader(f)
        except UnicodeDecodeError:
            raise InvalidInput(f"{path}: not UTF-8; save the sheet as 'CSV UTF-8'; nothing was imported") from None
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read ({exc.strerror}); nothing was imported") from None


class Problems:
    """The problems of a file: the first MAX_PROBLEMS kept as lines, the rest counted."""

    def __init__(self, path: Path, limit: int = MAX_PROBLEMS) -> None:
        self.path = path
        self.limit = limit
        self.lines: list[str] = []
        self.more = 0

    def append(self, line: str) -> None:
        if len(self.lines) < self.limit:
            self.lines.append(line)
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.lines)

    def __len__(self) -> int:
        return len(self.lines) + self.more

    def refusal(self, last: str = "nothing was imported") -> str:
        """The kept lines, the count of the others, and `last`: the message of the refusal."""
        more = [f"{self.path}: ... and {self.more:,} more errors (fix these and import again)"] if self.more else []
        return "\n".join([*self.lines, *more, last])


# C0 controls and DEL: no cell of a sheet needs one (a NUL is refused by PostgreSQL).
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_NAMES = {0x00: "NUL", 0x09: "tab", 0x0A: "line break", 0x0D: "carriage return", 0x1B: "escape", 0x7F: "DEL"}


def shown(value: str | int, limit: int = 40) -> str:
    """A text as repr() writes it (an empty or invisible character shows), a number as it is; cut if long."""
    text = value if isinstance(value, str) else str(value)
    cut = text[:limit]
    out = repr(cut) if isinstance(value, str) else cut
    return out if cut == text else f"{out}... ({len(text)} characters)"


def control_char(value: str, pattern: re.Pattern[str] = CONTROL) -> str | None:
    """'a control character (U+0000, NUL)' for the first one of `pattern` in the value, or None."""
    found = pattern.search(value)
    if found is None:
        return None
    code = ord(found[0])
    name = CONTROL_NAMES.get(code)
    return f"a control character (U+{code:04X}{', ' + name if name else ''})"


def header_of(rows: Iterator[list[str]], path: Path) -> tuple[str, ...]:
    """The names of the first row, stripped."""
    try:
        names = next(rows, [])
    except csv.Error as exc:
        raise InvalidInput(f"{path}: cannot read the header: {_csv_problem(exc)}; nothing was imported") from None
    return tuple(h.strip() for h in names)


def header_problems(header: tuple[str, ...], required: tuple[str, ...], allowed: tuple[str, ...]) -> str:
    """'; missing: ...; unknown: ...; named twice: ...' for what is wrong with the header, or ''. Unknown
    names are quoted, so an unnamed column (a trailing comma) or an invisible character shows."""
    missing = [c for c in required if c not in header]
    unknown = list(dict.fromkeys(h for h in header if h not in allowed))
    twice = [c for c in allowed if header.count(c) > 1]
    return (
        (f"; missing: {', '.join(missing)}" if missing else "")
        + (f"; unknown: {', '.join(shown(h) for h in unknown)}" if unknown else "")
        + (f"; named twice: {', '.join(twice)} (keep one column of each name)" if twice else "")
    )


def records(
    rows: Iterator[list[str]], header: tuple[str, ...], path: Path, problems: Problems | list[str]
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each row after the header as (its number, column -> cell as typed), numbered as a spreadsheet
    shows it: the header is row 1, a blank line is a row, a cell with a line break stays in its row.
    A row with more values than columns or a control character in a cell is not yielded but named in
    `problems`; so is a row the csv module cannot read (a cell over its size limit), where reading stops."""
    number = 1
    while True:
        number += 1
        try:
            cells = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(f"{path}: row {number}: {_csv_problem(exc)}")
            return
        if not cells:
            continue  # a blank line
        if len(cells) > len(header):
            problems.append(f"{path}: row {number}: more values than columns; quote a value that has a comma")
            continue
        record = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
        bad = [(k, v, what) for k, v in record.items() if (what := control_char(v.strip()))]
        for column, value, what in bad:
            problems.append(f"{path}: row {number}, column {column} = {shown(value)}: has {what}; delete it")
        if not bad:
            yield number, record


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a cell is longer than {csv.field_size_limit()} characters (or a quote is not closed);"
            " shorten it, or close the quote"
        )
    if "new-line character seen in unquoted field" in str(exc):
        return "a line break inside a cell; put the cell in double quotes, or remove the line break"
    return f"not readable as CSV ({exc}); save the sheet as 'CSV UTF-8' again"


def parse(path: Path, max_bytes: int = MAX_CSV_BYTES) -> list[ApplicantRow]:
    rows_in = open_csv(path, max_bytes)
    header = header_of(rows_in, path)
    wrong = header_problems(header, COLUMNS, COLUMNS)
    if wrong:
        raise InvalidInput(f"{path}: header must be {','.join(COLUMNS)}{wrong}; nothing was imported")
    rows: list[ApplicantRow] = []
    problems = Problems(path)
    seen: dict[str, int] = {}
    for number, record in records(rows_in, header, path, problems):
        try:
            row = ApplicantRow.model_validate(record)
        except ValidationError as exc:
            for err in exc.errors():
                column = str(err["loc"][0]) if err["loc"] else "?"
                value = record.get(column, "")
                problems.append(
                    f"{path}: row {number}, column {column} = {shown(value)}: {_msg(err['msg'])};"
                    f" expected {FIXES.get(column, '')}"
                )
            continue
        if row.code in seen:
            problems.append(
                f"{path}: row {number}, column code = {row.code!r}: already on row {seen[row.code]}; one row per code"
            )
            continue
        seen[row.code] = number
        rows.append(row)
    if problems:
        raise InvalidInput(problems.refusal())
    if not rows:
        raise InvalidInput(f"{path}: no rows after the header; nothing was imported")
    return rows


def _msg(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def store(conn: Connection, rows: list[ApplicantRow]) -> ImportResult:
    existing = {
        r["code"]: r
        for r in conn.execute(sa.select(APPLICANT).where(APPLICANT.c.code.in_([x.code for x in rows]))).mappings()
    }
    created = updated = unchanged = 0
    new: list[dict[str, Any]] = []
    for row in rows:
        values = row.model_dump(mode="json")
        old = existing.get(row.code)
        if old is None:
            new.append(values)
            created += 1
        elif any(old[k] != v for k, v in values.items()):
            conn.execute(sa.update(APPLICANT).where(APPLICANT.c.id == old["id"]).values(**values))
            updated += 1
        else:
            unchanged += 1
    if new:
        conn.execute(sa.insert(APPLICANT), new)
    return ImportResult(created, updated, unchanged)
