"""Import local governments (applicants) from CSV: all rows or none.

Every row is validated first; any problem is reported with its row, column,
value and the fix, and nothing is imported. The importers (applicants here,
evaluators and score sheets in committee.py) share one reader: it refuses a
file over `[gongmo] max_csv_bytes` before reading it, streams the rest row by
row (never the whole file in memory), and shows the first 50 problems with a
count of the others. A valid file is upserted by code
in one transaction, so importing the same file twice changes nothing.

Contacts (`applicant_contact`): everyone at a government who signs in to its applicant pages. The
row's own `email` (where notices go) is always one, named `contact_name`. An optional column
`contacts` names more, separated by ';', each an e-mail or `name <e-mail>`
(e.g. `박지훈 <park@suwon.example>; lee@suwon.example`); a CSV without it stays valid. With the
column, a row's contacts become exactly its `email` and those named (others are removed, and their
sessions stop resolving); without it, the contacts `gongmo applicants contact add` made are kept
and only a replaced `email` leaves. `add_contact` / `remove_contact` are the CLI's commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator
from sqlalchemy.engine import Connection

from gongmo.states.errors import Conflict, InvalidInput, NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import sessions
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
from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import APPLICANT, APPLICANT_CONTACT
from gongmo.workflow.core.tokens import Parts

COLUMNS = ("code", "name", "kind", "population", "contact_name", "email", "language")
OPTIONAL = ("contacts",)
NAMED = re.compile(r"^(?P<name>[^<>]*)<(?P<email>[^<>]*)>$")

FIXES = {
    "code": "a 5-digit administrative code (행정표준코드), e.g. 41110",
    "name": "the local government's name, e.g. 수원시",
    "kind": "one of " + ", ".join(k.value for k in Kind),
    "population": "a whole number of inhabitants, e.g. 1190000 (no commas)",
    "contact_name": "the name of the person in charge",
    "email": "an e-mail address, e.g. smartcity@suwon.example",
    "language": "ko or en",
    "contacts": "empty, or more contacts' e-mails separated by ';', each e-mail or name <e-mail>",
}


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    email: EmailStr
    name: str | None = Field(default=None, min_length=1, max_length=60)


class ApplicantRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(pattern=r"^[0-9]{5}$")  # not \d: it takes any Unicode digit ('٤١١١٠')
    name: str = Field(min_length=1, max_length=60)
    kind: Kind
    population: int = Field(gt=0, lt=20_000_000)
    contact_name: str = Field(min_length=1, max_length=60)
    email: EmailStr
    language: str = Field(default="ko", pattern=r"^(ko|en)$")
    # None: the file has no `contacts` column; not dumped (the applicant row's columns are the others)
    contacts: list[ContactIn] | None = Field(default=None, exclude=True)

    @field_validator("contacts", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = []
        for item in (i.strip() for i in value.split(";")):
            named = NAMED.match(item)
            if named:
                found.append({"email": named["email"], "name": named["name"].strip() or None})
            elif item:
                found.append({"email": item})
        return found

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
    wrong = header_problems(header, COLUMNS, COLUMNS + OPTIONAL)
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
    codes = [x.code for x in rows]
    existing = {r["code"]: r for r in conn.execute(sa.select(APPLICANT).where(APPLICANT.c.code.in_(codes))).mappings()}
    created = updated = 0
    same: list[str] = []
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
            same.append(row.code)
    if new:
        conn.execute(sa.insert(APPLICANT), new)
    touched = _store_contacts(conn, rows, {code: str(r["email"]) for code, r in existing.items()})
    contacts_only = sum(1 for code in same if code in touched)  # a row whose contacts alone changed
    return ImportResult(created, updated + contacts_only, len(same) - contacts_only)


def _store_contacts(conn: Connection, rows: list[ApplicantRow], old_emails: dict[str, str]) -> set[str]:
    """Each row's contacts as the module says; returns the codes whose contacts changed."""
    codes = [x.code for x in rows]
    ids = {
        str(r.code): int(r.id)
        for r in conn.execute(sa.select(APPLICANT.c.id, APPLICANT.c.code).where(APPLICANT.c.code.in_(codes)))
    }
    have: dict[int, dict[str, Any]] = {i: {} for i in ids.values()}
    query = sa.select(APPLICANT_CONTACT).where(APPLICANT_CONTACT.c.applicant_id.in_(list(ids.values())))
    for c in conn.execute(query).mappings():
        have[int(c["applicant_id"])][str(c["email"])] = c
    touched: set[str] = set()
    for row in rows:
        if _sync_contacts(conn, ids[row.code], row, have[ids[row.code]], old_emails.get(row.code, "")):
            touched.add(row.code)
    return touched


def _sync_contacts(conn: Connection, applicant_id: int, row: ApplicantRow, current: dict[str, Any], old: str) -> bool:
    wanted: dict[str, str | None] = {str(row.email).lower(): row.contact_name}
    for extra in row.contacts or []:
        wanted.setdefault(str(extra.email).lower(), extra.name)
    if row.contacts is not None:
        gone = [e for e in current if e not in wanted]
    else:  # no `contacts` column: only a replaced own e-mail leaves
        old = old.strip().lower()
        gone = [old] if old in current and old not in wanted else []
    for email in gone:
        conn.execute(sa.delete(APPLICANT_CONTACT).where(APPLICANT_CONTACT.c.id == current[email]["id"]))
    changed = bool(gone)
    for email, name in wanted.items():
        found = current.get(email)
        if found is None:
            conn.execute(sa.insert(APPLICANT_CONTACT).values(applicant_id=applicant_id, email=email, name=name))
            changed = True
        elif name is not None and found["name"] != name:
            update = sa.update(APPLICANT_CONTACT).where(APPLICANT_CONTACT.c.id == found["id"])
            conn.execute(update.values(name=name))
            changed = True
    return changed


# -- contacts one at a time (`gongmo applicants contact add/remove/list`) -------------------------


def contacts_of(conn: Connection, code: str) -> list[dict[str, Any]]:
    """The contacts of applicant `code`, its own e-mail first (marked `own`), then by e-mail."""
    applicant = _applicant(conn, code)
    query = sa.select(APPLICANT_CONTACT).where(APPLICANT_CONTACT.c.applicant_id == applicant["id"])
    own = str(applicant["email"]).strip().lower()
    rows = [
        {"code": code, "email": r["email"], "name": r["name"], "own": r["email"] == own}
        for r in conn.execute(query).mappings()
    ]
    return sorted(rows, key=lambda r: (not r["own"], r["email"]))


def add_contact(app: Parts, code: str, email: str, name: str | None = None) -> dict[str, Any]:
    """One more person who signs in to applicant `code`'s pages (and sees what it sees)."""
    email = sessions.normal_email(email)
    name = (name or "").strip() or None
    with write(app.db) as conn:
        applicant = _applicant(conn, code)
        if sessions.contact(conn, code, email) is not None:
            raise Conflict(
                f"{email} is already a contact of applicant {code}: see `gongmo applicants contact list {code}`"
            )
        conn.execute(sa.insert(APPLICANT_CONTACT).values(applicant_id=applicant["id"], email=email, name=name))
    return {"code": code, "email": email, "name": name}


def remove_contact(app: Parts, code: str, email: str) -> dict[str, Any]:
    """A person no longer signs in for applicant `code`: the contact goes and its sessions end at once.
    The applicant's own e-mail (where notices go) stays: replace it by importing the CSV."""
    email = sessions.normal_email(email)
    now = app.clock.now()
    with write(app.db) as conn:
        applicant = _applicant(conn, code)
        if sessions.contact(conn, code, email) is None:
            raise NotFound(f"{email} is not a contact of applicant {code}: see `gongmo applicants contact list {code}`")
        if str(applicant["email"]).strip().lower() == email:
            raise Conflict(
                f"{email} is applicant {code}'s own e-mail (its notices go there): import the CSV with another"
                " e-mail to replace it"
            )
        conn.execute(
            sa.delete(APPLICANT_CONTACT).where(
                APPLICANT_CONTACT.c.applicant_id == applicant["id"], APPLICANT_CONTACT.c.email == email
            )
        )
        ended = sessions.revoke_subject(conn, Role.APPLICANT, code, now, email=email)
    return {"code": code, "email": email, "sessions_ended": ended}


def _applicant(conn: Connection, code: str) -> Any:
    row = conn.execute(sa.select(APPLICANT).where(APPLICANT.c.code == code.strip())).mappings().first()
    if row is None:
        raise NotFound(f"no applicant {code!r}: see `gongmo applicants list`")
    return row
