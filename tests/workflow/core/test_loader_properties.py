"""Bad input, property-based: the CSV importers (applicants, evaluators, scores).

Files are generated with random text and unicode, empty cells, extra or
missing columns and values, shuffled or unknown headers, duplicate codes,
a BOM, bytes that are not UTF-8, huge and negative numbers and bad e-mails.
Properties:

- importing raises a GongmoError or succeeds (never another exception);
- a refusal names each problem on a line of its own, with the file and the
  row (and the column), or the file-level problem (header, encoding, empty);
  its last line says nothing was imported or stored;
- a refused file leaves the database exactly as it was (all or nothing);
  an accepted one is stored exactly as parsed.

SQLite only. The bad inputs that once escaped (a cell over the csv module's
size limit, a column named twice or unnamed, digits other than 0-9, more
values than columns, a NUL) are each pinned at the end of the file with
their minimal example.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import tests.workflow.contest_2024 as sc
from gongmo.states.errors import GongmoError
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Kind
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import (
    APPLICANT,
    APPLICATION,
    ASSIGNMENT,
    AUDIT,
    DECLARED_CONFLICT,
    EVALUATOR,
    EVENT,
    OUTBOX,
    SCORE,
)
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import applicants, committee
from gongmo.workflow.stages.applicants import COLUMNS
from gongmo.workflow.stages.committee import EVALUATOR_COLUMNS
from tests.conftest import ROOT, config_copy, kst, make_app, run_cli
from tests.workflow.stages.test_committee import to_review_end

# GONGMO_PROPERTY_EXAMPLES=2000 runs a longer, random (not derandomised) search locally.
LONG = int(os.environ.get("GONGMO_PROPERTY_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=LONG or 100,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CLI_SETTINGS = settings(SETTINGS, max_examples=LONG or 30)

ROW = re.compile(r"row (\d+)")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """The shipped config on a SQLite file, the 20 sample applicants imported (one per test, not per example)."""
    built = make_app(f"sqlite:///{tmp_path / 'gongmo.db'}", FixedClock(kst("2024-03-29 10:00")))
    yield built
    built.db.dispose()


def snapshot(app: App, *tables: sa.Table) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables, in id order: what a refused import must leave as it was."""
    with read(app.db) as conn:
        return {t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(t.c.id))] for t in tables}


# --- writing a CSV file -----------------------------------------------------------------


class CsvFile(NamedTuple):
    header: list[str]
    rows: list[list[str]]
    quoted: bool  # written by csv.writer (quotes where needed) or joined with commas as typed
    newline: str
    encoding: str  # utf-8, utf-8-sig (BOM), cp949, or "broken" (UTF-8 with a byte that is not)
    blank_after: int | None  # a blank line after this row

    def text(self) -> str:
        lines = [self.header, *self.rows]
        if self.quoted:
            out = io.StringIO()
            csv.writer(out, lineterminator=self.newline).writerows(lines)
            body = out.getvalue().split(self.newline)
        else:
            body = [",".join(line) for line in lines]
        if self.blank_after is not None and self.blank_after + 1 < len(body):
            body.insert(self.blank_after + 2, "")
        return self.newline.join(body) + self.newline

    def data(self) -> bytes:
        text = self.text()
        if self.encoding == "cp949":
            return text.encode("cp949", errors="replace")
        if self.encoding == "broken":
            raw = text.encode("utf-8")
            return raw[: len(raw) // 2] + b"\xff" + raw[len(raw) // 2 :]
        return text.encode(self.encoding)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.data())
        return path


class Cell(NamedTuple):
    good: st.SearchStrategy[str]
    bad: st.SearchStrategy[str]


def cell(good: st.SearchStrategy[str], bad: st.SearchStrategy[str]) -> Cell:
    return Cell(good, bad)


def csv_files(
    columns: tuple[str, ...],
    cells: dict[str, Cell],
    optional: tuple[str, ...] = (),
    max_rows: int = 6,
) -> st.SearchStrategy[CsvFile]:
    """A third of the files is clean (every cell good): a fair share is accepted; in the rest a row
    is clean or noisy, a noisy row has a bad cell in four, too many or too few values."""

    @st.composite
    def build(draw: st.DrawFn) -> CsvFile:
        clean = draw(st.integers(0, 2)) == 0
        header = list(draw(st.permutations(columns)))
        for name in optional:
            if draw(st.integers(0, 3)) == 0:
                header.remove(name)  # a column that may be left out
        change = "none" if clean else draw(st.sampled_from(["none"] * 4 + ["drop", "unknown", "spaces"]))
        if change == "drop":
            header.remove(draw(st.sampled_from(header)))
        elif change == "unknown":
            header.insert(draw(st.integers(0, len(header))), draw(st.sampled_from(["lang", "Code", "비고", "x y"])))
        elif change == "spaces":
            header = [f" {h} " for h in header]
        rows = []
        for _ in range(draw(st.integers(0 if not clean else 1, max_rows))):
            noisy = not clean and draw(st.booleans())
            row = []
            for h in header:
                strategies = cells.get(h.strip(), Cell(st.text(max_size=10), st.text(max_size=10)))
                bad = noisy and draw(st.integers(0, 3)) == 0
                row.append(draw(strategies.bad if bad else strategies.good))
            width = draw(st.sampled_from(["same"] * 6 + ["more", "fewer"])) if noisy else "same"
            if width == "more":
                row += draw(st.lists(st.text(max_size=5), min_size=1, max_size=2))
            elif width == "fewer" and row:
                row = row[: draw(st.integers(0, len(row) - 1))]
            rows.append(row)
        return CsvFile(
            header=header,
            rows=rows,
            quoted=draw(st.sampled_from([True, True, True, False])),
            newline=draw(st.sampled_from(["\n", "\r\n"])),
            encoding="utf-8" if clean else draw(st.sampled_from(["utf-8"] * 5 + ["utf-8-sig", "cp949", "broken"])),
            blank_after=draw(st.none() | st.integers(0, 5)),
        )

    return build()


TEXT = st.text(max_size=12)
ASCII_CODE = st.from_regex(r"[0-9]{5}", fullmatch=True)
NAMES = st.sampled_from(["수원시", "Ulleung-gun", "세종특별자치시", "Ülm", "x" * 60])
EMAILS = st.sampled_from(
    ["smartcity@suwon.lg.example", "it@ulleung.lg.example", "사용자@도메인.한국", "a.b+c@sub.example.org"]
)
BAD_EMAILS = st.sampled_from(
    ["", "a@b", "@x.example", "x@", "a b@c.example", "smartcity-at-suwon", "x@x..example", "x@-x.example"]
)
BAD_NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", "abc", "1,190,987", "1e6", "1.5", "0", "-5", "20000000", "+5", "1_000", "²", "١٢٣", " 7 "]),
)


# --- applicants ------------------------------------------------------------------------

SAMPLE_CODES = ["41110", "47940", "11000", "26000"]
APPLICANT_CELLS = {
    "code": cell(
        st.one_of(ASCII_CODE, ASCII_CODE, st.sampled_from(SAMPLE_CODES)),
        st.sampled_from(["", "4111", "411100", "41 110", "abcde", "41110.0"]) | TEXT,
    ),
    "name": cell(NAMES, st.sampled_from(["", " ", "x" * 61]) | TEXT),
    "kind": cell(st.sampled_from([k.value for k in Kind]), st.sampled_from(["City", "metropolis", ""]) | TEXT),
    "population": cell(st.integers(1, 19_999_999).map(str), BAD_NUMBERS),
    "contact_name": cell(st.sampled_from(["최민준", "Kim Min-jun"]), st.sampled_from(["", "y" * 61]) | TEXT),
    "email": cell(EMAILS, BAD_EMAILS | TEXT),
    "language": cell(st.sampled_from(["ko", "en"]), st.sampled_from(["KO", "jp", "", " en ", "kor"]) | TEXT),
}
APPLICANT_FILES = csv_files(COLUMNS, APPLICANT_CELLS)


def check_refusal(path: Path, message: str, last: str, columns: tuple[str, ...], max_row: int) -> None:
    """One line per problem, each on the file, naming the row and the column (or the file-level problem)."""
    lines = message.splitlines()
    prefix = f"{path}: "
    assert lines and all(line.startswith(prefix) or line == last for line in lines), message
    if len(lines) == 1:  # the file itself: unreadable, not UTF-8, the header, no rows
        assert any(
            what in lines[0] for what in ("header must be", "not UTF-8", "no rows after the header", "cannot read")
        ), message
        assert lines[0].endswith("nothing was imported") or "cannot read" in lines[0], message
        return
    assert lines[-1] == last, message
    for line in lines[:-1]:
        if re.fullmatch(r"\.\.\. and [0-9,]+ more errors \(fix these and import again\)", line.removeprefix(prefix)):
            assert line == lines[-2] and len(lines) == 52, message  # after the first 50
            continue
        where = ROW.match(line.removeprefix(prefix))
        assert where is not None, line
        assert 2 <= int(where[1]) <= max_row, (line, max_row)
        rest = line.removeprefix(prefix).removeprefix(where[0])
        column = re.match(r", column (\w+)", rest)
        assert column is None or column[1] in columns, line
        assert column is not None or rest.startswith(": "), line


@SETTINGS
@given(file=APPLICANT_FILES)
@example(
    file=CsvFile(
        list(COLUMNS), [["41110", "수원시", "city", "abc", "최민준", "x@y.example", "ko"]], True, "\n", "utf-8", None
    )
)
def test_an_applicants_file_is_imported_whole_or_refused_naming_row_and_column(
    app: App, tmp_path: Path, file: CsvFile
) -> None:
    path = file.write(tmp_path / "applicants.csv")
    before = snapshot(app, APPLICANT)
    try:
        rows = applicants.parse(path)
        with write(app.db) as conn:
            result = applicants.store(conn, rows)
    except GongmoError as exc:
        event("refused")
        check_refusal(path, str(exc), "nothing was imported", COLUMNS, len(file.text().splitlines()) + 1)
        assert snapshot(app, APPLICANT) == before
        return
    event("accepted")
    assert result.created + result.updated + result.unchanged == len(rows)
    with read(app.db) as conn:
        stored = {r["code"]: dict(r) for r in conn.execute(sa.select(APPLICANT)).mappings()}
    assert len(stored) == len(before["applicant"]) + result.created
    for row in rows:
        assert row.code.isascii() and row.code.isdigit() and len(row.code) == 5
        assert 0 < row.population < 20_000_000
        assert {k: stored[row.code][k] for k in COLUMNS} == row.model_dump(mode="json")


@CLI_SETTINGS
@given(file=APPLICANT_FILES)
def test_gongmo_applicants_import_prints_one_error_line_per_problem_and_imports_nothing(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: CsvFile
) -> None:
    path = file.write(tmp_path / "applicants.csv")
    try:
        applicants.parse(path)
    except GongmoError as exc:
        expected = str(exc)
    else:
        return  # an accepted file: the property above
    config = config_copy(tmp_path, database_url=str(app.db.url))
    before = snapshot(app, APPLICANT)
    code, out, err = run_cli(capsys, "--config", str(config), "applicants", "import", str(path))
    assert code == 1
    assert "Traceback" not in out + err
    assert err.splitlines() == [f"error: {line}" for line in expected.splitlines()]
    assert snapshot(app, APPLICANT) == before


# --- evaluators --------------------------------------------------------------------------

EVALUATOR_EMAILS = ["kim@univ.example", "KIM@univ.example", "lee@kict.example", "new@x.example"]
GOOD_EMAILS = st.one_of(
    st.sampled_from(EVALUATOR_EMAILS), st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.example", fullmatch=True)
)
EVALUATOR_CELLS = {
    "name": cell(st.sampled_from(["김교수", "Dr. Lee"]), st.sampled_from(["", "n" * 61]) | TEXT),
    "email": cell(GOOD_EMAILS, BAD_EMAILS | TEXT),
    "affiliation": cell(st.sampled_from(["서울대학교", "KICT"]), st.sampled_from(["", "a" * 121]) | TEXT),
    "region": cell(
        st.sampled_from(["서울", "경기도", "gyeonggi", "Gyeonggi", "41", "부산"]),
        st.sampled_from(["", "Seoul City", "99", "경기 도"]) | TEXT,
    ),
    "home_code": cell(st.sampled_from(["", "41110", "11000"]), st.sampled_from(["4111", "abcde"]) | TEXT),
    "conflicts": cell(
        st.sampled_from(["", "41110", "41110;44200", "41110, 44200"]), st.sampled_from(["4111", "x;y", ";;"]) | TEXT
    ),
}
EVALUATOR_FILES = csv_files(EVALUATOR_COLUMNS, EVALUATOR_CELLS, optional=("home_code", "conflicts"))


@SETTINGS
@given(file=EVALUATOR_FILES)
def test_an_evaluators_file_is_imported_whole_or_refused_naming_row_and_column(
    app: App, tmp_path: Path, file: CsvFile
) -> None:
    path = file.write(tmp_path / "evaluators.csv")
    tables = (EVALUATOR, DECLARED_CONFLICT, ASSIGNMENT, SCORE, EVENT)
    before = snapshot(app, *tables)
    try:
        rows = committee.parse_evaluators(path)
        with write(app.db) as conn:
            committee.store_evaluators(conn, rows, app.clock.now())
    except GongmoError as exc:
        event("refused")
        check_refusal(path, str(exc), "nothing was imported", EVALUATOR_COLUMNS, len(file.text().splitlines()) + 1)
        assert snapshot(app, *tables) == before
        return
    event("accepted")
    with read(app.db) as conn:
        stored = {r["email"]: dict(r) for r in conn.execute(sa.select(EVALUATOR)).mappings()}
        pairs = sa.select(DECLARED_CONFLICT.c.evaluator_id, DECLARED_CONFLICT.c.applicant_code)
        declared = {(int(r[0]), str(r[1])) for r in conn.execute(pairs)}
    for row, region in rows:
        ev = stored[row.email.lower()]
        assert (ev["name"], ev["affiliation"], ev["region"], ev["home_code"]) == (
            row.name,
            row.affiliation,
            region,
            row.home_code,
        )
        assert {(ev["id"], code) for code in row.conflicts} <= declared


# --- scores ---------------------------------------------------------------------------------


@pytest.fixture
def assigned(tmp_path: Path) -> Iterator[App]:
    """The 2024 strong-and-small scenario after assignment, inside the written window (2024-06-11 14:00)."""
    clock = FixedClock(kst("2024-03-29 10:00"))
    built = make_app(f"sqlite:///{tmp_path / 'gongmo.db'}", clock)
    sc.prepare(built, clock, tmp_path)
    to_review_end(built, clock)
    committee.assign_track(built, sc.TRACK, sc.OFFICE)
    clock.set(kst("2024-06-11 14:00"))
    yield built
    built.db.dispose()


CRITERIA = list(sc.CRITERIA)
SCORE_COLUMNS = ("receipt_no", "evaluator", "part", *CRITERIA)
RECEIPTS = [f"{sc.TRACK.upper()}-{n:04d}" for n in range(1, 14)]  # 12 in the scenario, and one more


def _points(limit: int) -> Cell:
    good = st.decimals(0, limit, places=2).map(str) | st.integers(0, limit).map(str)
    bad = st.sampled_from(["", "abc", "-1", str(limit + 1), "1e1", "24,5", "17.255", "NaN", " 12 ", "9" * 30, "٥"])
    return cell(good, bad)


SCORE_CELLS = {
    "receipt_no": cell(
        st.sampled_from(RECEIPTS), st.sampled_from(["", "1", "2", "0", "NOPE-0001", "strong-small-2024-0001"]) | TEXT
    ),
    "evaluator": cell(
        st.sampled_from(sc.EVALUATORS + [e.upper() for e in sc.EVALUATORS]),
        st.sampled_from(["", "ghost@nowhere.example"]) | TEXT,
    ),
    "part": cell(st.just("written"), st.sampled_from(["presentation", "oral", "", "Written"]) | TEXT),
    **{key: _points(int(points)) for key, points in sc.CRITERIA.items()},
}
SCORE_FILES = csv_files(SCORE_COLUMNS, SCORE_CELLS, max_rows=4)


@SETTINGS
@given(file=SCORE_FILES)
@example(
    file=CsvFile(
        list(SCORE_COLUMNS),
        [[RECEIPTS[0], sc.EVALUATORS[0], "written", "24.5", "18", "17.25", "12", "13"]],
        True,
        "\n",
        "utf-8",
        None,
    )
)
def test_a_scores_file_is_stored_whole_or_refused_naming_the_row(assigned: App, tmp_path: Path, file: CsvFile) -> None:
    app = assigned
    path = file.write(tmp_path / "scores.csv")
    tables = (SCORE, EVENT, ASSIGNMENT, APPLICATION, AUDIT, OUTBOX)
    before = snapshot(app, *tables)
    _, track = app.loaded.config.track(sc.TRACK)
    try:
        sheets, where = committee.parse_scores(path, track)
    except GongmoError as exc:
        event("refused by parse_scores")
        check_refusal(path, str(exc), "nothing was imported", SCORE_COLUMNS, len(file.text().splitlines()) + 1)
        assert snapshot(app, *tables) == before
        return
    try:
        committee.enter_sheets(app, sheets, sc.OFFICE, where)
    except GongmoError as exc:
        event("refused by enter_sheets")
        check_refusal(path, str(exc), "no score was stored", SCORE_COLUMNS, len(file.text().splitlines()) + 1)
        assert snapshot(app, *tables) == before
        return
    event("stored")
    last: dict[tuple[int, str, str], dict[str, str]] = {}
    with read(app.db) as conn:
        for sheet in sheets:  # by id or by receipt number; a later row for the same sheet replaces it
            ref = sheet.application.strip()
            cond = APPLICATION.c.id == int(ref) if ref.isdigit() else APPLICATION.c.receipt_no == ref
            app_id = int(conn.execute(sa.select(APPLICATION.c.id).where(cond)).scalar_one())
            last[(app_id, sheet.evaluator.strip().lower(), sheet.part)] = sheet.points
        for (app_id, email, part), points in last.items():
            stored = {
                r.criterion: Decimal(r.points_x100) / 100
                for r in conn.execute(
                    sa.select(SCORE.c.criterion, SCORE.c.points_x100)
                    .join(EVALUATOR, EVALUATOR.c.id == SCORE.c.evaluator_id)
                    .where(SCORE.c.application_id == app_id, EVALUATOR.c.email == email, SCORE.c.part == part)
                )
            }
            assert stored == {k: Decimal(v.strip()) for k, v in points.items()}


# --- bad inputs that once escaped: each pinned with its minimal example -----------------

SUWON = ["41110", "수원시", "city", "1190987", "최민준", "smartcity@suwon.lg.example", "ko"]
KIM = ["김교수", "kim@univ.example", "서울대학교", "서울"]
SHEET = [RECEIPTS[0], sc.EVALUATORS[0], "written", "24.5", "18", "17.25", "12", "13"]


def _score_track() -> Any:
    from gongmo.workflow.core.config import load

    return load(ROOT / "config.toml").config.track(sc.TRACK)[1]


def parse_as(importer: str, path: Path) -> Any:
    if importer == "applicants":
        return applicants.parse(path)
    if importer == "evaluators":
        return committee.parse_evaluators(path)
    return committee.parse_scores(path, _score_track())


HEADERS = {"applicants": list(COLUMNS), "evaluators": list(EVALUATOR_COLUMNS[:4]), "scores": list(SCORE_COLUMNS)}
ROWS = {"applicants": SUWON, "evaluators": KIM, "scores": SHEET}


def refusal(importer: str, path: Path) -> str:
    with pytest.raises(GongmoError) as info:
        parse_as(importer, path)
    return str(info.value)


@pytest.mark.parametrize("importer", ["applicants", "evaluators", "scores"])
@SETTINGS
@given(size=st.integers(131_073, 300_000))
@example(size=131_073)
def test_a_cell_over_the_csv_field_limit_is_refused(tmp_path: Path, importer: str, size: int) -> None:
    """Refused naming the row (a name of 131073 characters is too long anyway), or, for a column the
    parser does not check (the scores' evaluator), read and left to the next step."""
    row = list(ROWS[importer])
    row[1] = "x" * size
    path = CsvFile(HEADERS[importer], [row], True, "\n", "utf-8", None).write(tmp_path / "big.csv")
    try:
        parse_as(importer, path)
    except GongmoError as exc:
        assert str(exc).startswith(f"{path}: row 2"), str(exc)[:300]
    else:
        assert importer == "scores"


@pytest.mark.parametrize("importer", ["applicants", "evaluators"])
@SETTINGS
@given(which=st.integers(0, 5))
@example(which=0)
def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path, importer: str, which: int) -> None:
    header = HEADERS[importer]
    twice = header[which % len(header)]
    row = ROWS[importer]
    extra = "99999" if twice == "code" else "other"
    path = CsvFile([*header, twice], [[*row, extra]], True, "\n", "utf-8", None).write(tmp_path / "twice.csv")
    message = refusal(importer, path)
    assert "header" in message and twice in message


@pytest.mark.parametrize("importer", ["applicants", "evaluators"])
@SETTINGS
@given(name=st.sampled_from(["", " ", "\ufeffcode", "\u200bname"]))
@example(name="")
def test_an_unnamed_or_invisible_header_column_is_named_visibly(tmp_path: Path, importer: str, name: str) -> None:
    header = HEADERS[importer]
    path = CsvFile([*header, name], [[*ROWS[importer], ""]], True, "\n", "utf-8", None).write(tmp_path / "h.csv")
    message = refusal(importer, path)
    assert repr(name.strip()) in message, message


@pytest.mark.parametrize(
    ("importer", "column"), [("applicants", "code"), ("evaluators", "home_code"), ("evaluators", "conflicts")]
)
@SETTINGS
@given(digit=st.characters(categories=["Nd"]).filter(lambda c: not c.isascii()))
@example(digit="٤")
def test_a_code_with_digits_other_than_0_to_9_is_refused(
    tmp_path: Path, importer: str, column: str, digit: str
) -> None:
    header, row = list(HEADERS[importer]), list(ROWS[importer])
    if column in header:
        row[header.index(column)] = digit * 5
    else:
        header.append(column)
        row.append(digit * 5)
    path = CsvFile(header, [row], True, "\n", "utf-8", None).write(tmp_path / "digits.csv")
    message = refusal(importer, path)
    assert f"row 2, column {column}" in message


@pytest.mark.parametrize("importer", ["evaluators", "scores"])
@SETTINGS
@given(extra=st.lists(st.text(max_size=5), min_size=1, max_size=3))
@example(extra=["41110"])
def test_more_values_than_columns_is_refused_by_every_importer(tmp_path: Path, importer: str, extra: list[str]) -> None:
    path = CsvFile(HEADERS[importer], [[*ROWS[importer], *extra]], True, "\n", "utf-8", None).write(tmp_path / "m.csv")
    message = refusal(importer, path)
    assert f"{path}: row 2" in message and "more values than columns" in message


@SETTINGS
@given(column=st.sampled_from(["name", "contact_name"]), at=st.integers(0, 3))
@example(column="name", at=2)
def test_a_nul_byte_in_a_cell_is_refused_naming_row_and_column(tmp_path: Path, column: str, at: int) -> None:
    row = list(SUWON)
    i = COLUMNS.index(column)
    row[i] = row[i][:at] + "\x00" + row[i][at:]
    path = CsvFile(list(COLUMNS), [row], True, "\n", "utf-8", None).write(tmp_path / "nul.csv")
    message = refusal("applicants", path)
    assert f"row 2, column {column}" in message


@SETTINGS
@given(ref=st.sampled_from(["²", "³", "¹²", "9" * 20, "1" + "0" * 25]))
@example(ref="²")
def test_a_receipt_number_of_odd_digits_is_refused_naming_the_row(assigned: App, tmp_path: Path, ref: str) -> None:
    app = assigned
    path = CsvFile(list(SCORE_COLUMNS), [[ref, *SHEET[1:]]], True, "\n", "utf-8", None).write(tmp_path / "s.csv")
    before = snapshot(app, SCORE, EVENT)
    sheets, where = committee.parse_scores(path, app.loaded.config.track(sc.TRACK)[1])
    with pytest.raises(GongmoError) as info:
        committee.enter_sheets(app, sheets, sc.OFFICE, where)
    assert str(info.value).startswith(f"{path}: row 2: ")
    assert snapshot(app, SCORE, EVENT) == before


@pytest.mark.parametrize("importer", ["applicants", "evaluators", "scores"])
def test_every_importer_shows_the_first_50_problems_and_counts_the_rest(tmp_path: Path, importer: str) -> None:
    """The three importers share the reader's cap (issue 18, finding 9): 120 rows with one problem each."""
    row = [*ROWS[importer], "extra"]  # more values than columns
    path = CsvFile(HEADERS[importer], [row] * 120, True, "\n", "utf-8", None).write(tmp_path / "many.csv")
    lines = refusal(importer, path).splitlines()
    assert len(lines) == 52
    assert lines[0] == f"{path}: row 2: more values than columns; quote a value that has a comma"
    assert lines[50] == f"{path}: ... and 70 more errors (fix these and import again)"
    assert lines[51] == "nothing was imported"
    check_refusal(path, "\n".join(lines), "nothing was imported", (*HEADERS[importer], "extra"), 122)


@pytest.mark.parametrize("importer", ["applicants", "evaluators", "scores"])
def test_every_importer_refuses_a_file_over_its_size_limit_unread(tmp_path: Path, importer: str) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"\xff" * 5000)  # not even UTF-8: the size is refused first
    with pytest.raises(GongmoError) as info:
        if importer == "applicants":
            applicants.parse(path, max_bytes=4096)
        elif importer == "evaluators":
            committee.parse_evaluators(path, max_bytes=4096)
        else:
            committee.parse_scores(path, _score_track(), max_bytes=4096)
    assert str(info.value) == (
        f"{path}: 5,000 bytes, more than the 4,096 an import takes ([gongmo] max_csv_bytes): split the file,"
        " or raise the limit in the config; nothing was imported"
    )
