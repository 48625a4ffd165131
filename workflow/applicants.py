"""Import local governments (applicants) from CSV: all rows or none.

Every row is validated first; any problem is reported with its row, column,
value and the fix, and nothing is imported. A valid file is upserted by code
in one transaction, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator
from sqlalchemy.engine import Connection

from states.errors import InvalidInput
from workflow.config import Kind
from workflow.models import APPLICANT

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
    code: str = Field(pattern=r"^\d{5}$")
    name: str = Field(min_length=1, max_length=60)
    kind: Kind
    population: int = Field(gt=0, lt=20_000_000)
    contact_name: str = Field(min_length=1, max_length=60)
    email: EmailStr
    language: str = Field(default="ko", pattern=r"^(ko|en)$")

    @field_validator("population", mode="before")
    @classmethod
    def _digits(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().isdigit():
            raise ValueError("not a whole number")
        return value


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def open_csv(path: Path) -> csv.DictReader[str]:
    """A spreadsheet's CSV export (UTF-8, with or without a BOM), or a clear refusal."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8; save the sheet as 'CSV UTF-8'; nothing was imported") from None
    return csv.DictReader(io.StringIO(text))


def parse(path: Path) -> list[ApplicantRow]:
    reader = open_csv(path)
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        raise InvalidInput(
            f"{path}: header must be {','.join(COLUMNS)}"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + "; nothing was imported"
        )
    rows: list[ApplicantRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for raw in reader:
        number = reader.line_num  # as a spreadsheet counts: the header is row 1
        record = {k.strip(): (v or "") for k, v in raw.items() if k is not None}
        if None in raw:
            problems.append(f"{path}: row {number}: more values than columns; quote a value that has a comma")
            continue
        try:
            row = ApplicantRow.model_validate(record)
        except ValidationError as exc:
            for err in exc.errors():
                column = str(err["loc"][0]) if err["loc"] else "?"
                value = record.get(column, "")
                problems.append(
                    f"{path}: row {number}, column {column} = {value!r}: {_msg(err['msg'])};"
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
        raise InvalidInput("\n".join(problems) + "\nnothing was imported")
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
