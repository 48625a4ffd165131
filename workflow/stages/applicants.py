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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator
from sqlalchemy.engine import Connection

from gongmo.states.errors import InvalidInput
from gongmo.workflow.core.config import Kind
from gongmo.workflow.core.csvfile import (
    MAX_CSV_BYTES,
    Problems,
    header_of,
    header_problems,
    open_csv,
    records,
    shown,
)
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
