"""Applicants from CSV: every row validated first, all rows or none, upserted by code."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.errors import Conflict, InvalidInput, NotFound
from gongmo.workflow.core import csvfile
from gongmo.workflow.core.config import Kind
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICANT_CONTACT
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import applicants
from gongmo.workflow.stages.applicants import COLUMNS, ImportResult, parse, store
from tests.conftest import config_copy, run_cli

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config.toml"
TEMPLATES = ROOT / "templates"
SAMPLE = ROOT / "examples" / "applicants.csv"

HEADER = ",".join(COLUMNS) + "\n"
SUWON = "41110,수원시,city,1190987,최민준,smartcity@suwon.lg.example,ko\n"
GOYANG = "41280,고양시,city,1071351,정서준,smartcity@goyang.lg.example,ko\n"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def write_csv(tmp_path: Path, text: str, name: str = "applicants.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(InvalidInput) as info:
        parse(path)
    return str(info.value)


def sample_text() -> str:
    return SAMPLE.read_text(encoding="utf-8")


# --- the sample file ----------------------------------------------------------------


def test_sample_csv_parses() -> None:
    rows = parse(SAMPLE)
    assert len(rows) == 20
    codes = [r.code for r in rows]
    assert len(set(codes)) == 20
    assert all(re.fullmatch(r"\d{5}", c) for c in codes)
    assert all(isinstance(r.kind, Kind) for r in rows)
    assert all(r.language in ("ko", "en") for r in rows)
    by_code = {r.code: r for r in rows}

    hwaseong = by_code["41590"]
    assert hwaseong.name == "화성시"
    assert hwaseong.population == 999_998  # just under the strong-small cap of 1,000,000
    assert hwaseong.kind is Kind.CITY
    assert hwaseong.language == "en"
    assert hwaseong.email == "smartcity@hwaseong.lg.example"

    assert by_code["41110"].population == 1_190_987
    assert by_code["11000"].kind is Kind.SPECIAL_CITY
    assert by_code["26000"].kind is Kind.METROPOLITAN_CITY
    assert by_code["36110"].kind is Kind.SPECIAL_SELF_GOVERNING_CITY
    assert by_code["50000"].kind is Kind.SPECIAL_SELF_GOVERNING_PROVINCE
    assert by_code["47940"].name == "울릉군"
    assert by_code["47940"].population == 9_077
    assert by_code["42110"].population == 286_000  # under the diffusion cap of 300,000

    kinds = [r.kind for r in rows]
    assert kinds.count(Kind.CITY) == 11
    assert kinds.count(Kind.COUNTY) == 3
    assert kinds.count(Kind.DISTRICT) == 2
    assert sorted(r.code for r in rows if r.language == "en") == ["41590", "46820"]


def test_utf8_with_bom_parses(tmp_path: Path) -> None:
    path = write_csv(tmp_path, sample_text(), encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = parse(path)
    assert [r.model_dump() for r in rows] == [r.model_dump() for r in parse(SAMPLE)]


def test_values_are_stripped(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + " 41110 , 수원시 ,city, 1190987 ,최민준, smartcity@suwon.lg.example ,en\n")
    (row,) = parse(path)
    assert (row.code, row.name, row.population, row.email, row.language) == (
        "41110",
        "수원시",
        1_190_987,
        "smartcity@suwon.lg.example",
        "en",
    )


# --- broken files ---------------------------------------------------------------------


ROW_CASES = {
    "bad population": (
        SUWON.replace("1190987", "abc"),
        "row 2, column population = 'abc'",
        "no commas",
    ),
    "population with commas": (
        SUWON.replace("1190987", '"1,190,987"'),
        "row 2, column population = '1,190,987'",
        "a whole number of inhabitants",
    ),
    "zero population": (
        SUWON.replace("1190987", "0"),
        "row 2, column population = '0'",
        "a whole number of inhabitants",
    ),
    "unknown kind": (
        SUWON.replace(",city,", ",metropolis,"),
        "row 2, column kind = 'metropolis'",
        "expected one of special_city, metropolitan_city",
    ),
    "bad e-mail": (
        SUWON.replace("smartcity@suwon.lg.example", "smartcity-at-suwon"),
        "row 2, column email = 'smartcity-at-suwon'",
        "expected an e-mail address",
    ),
    "language jp": (
        SUWON.replace(",ko\n", ",jp\n"),
        "row 2, column language = 'jp'",
        "expected ko or en",
    ),
    "code of four digits": (
        SUWON.replace("41110", "4111"),
        "row 2, column code = '4111'",
        "expected a 5-digit administrative code",
    ),
    "empty name": (
        SUWON.replace("수원시", ""),
        "row 2, column name = ''",
        "expected the local government's name",
    ),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_broken_row_is_refused_with_file_row_column_value_and_fix(tmp_path: Path, case: str) -> None:
    row, where, fix = ROW_CASES[case]
    path = write_csv(tmp_path, HEADER + row)
    message = refusal(path)
    lines = message.splitlines()
    assert lines[-1] == "nothing was imported"
    assert len(lines) == 2, message
    assert lines[0].startswith(f"{path}: {where}: ")
    assert fix in lines[0]


def test_broken_row_is_numbered_from_the_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + SUWON + GOYANG + SUWON.replace("41110", "4111"))
    message = refusal(path)
    assert message.splitlines() == [
        f"{path}: row 4, column code = '4111': String should match pattern '^[0-9]{{5}}$';"
        " expected a 5-digit administrative code (행정표준코드), e.g. 41110",
        "nothing was imported",
    ]


def test_duplicate_code_names_both_rows(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + SUWON + GOYANG + SUWON.replace("수원시", "수원"))
    lines = refusal(path).splitlines()
    assert lines[-1] == "nothing was imported"
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: row 4, column code = '41110': ")
    assert "row 2" in lines[0]
    assert "one row per code" in lines[0]


def test_more_values_than_columns_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + SUWON.replace("1190987", "1,190,987"))
    lines = refusal(path).splitlines()
    assert lines[0] == f"{path}: row 2: more values than columns; quote a value that has a comma"
    assert lines[-1] == "nothing was imported"


def test_several_problems_are_all_reported_one_line_each(tmp_path: Path) -> None:
    text = (
        HEADER
        + SUWON.replace("1190987", "abc")  # row 2: population
        + GOYANG  # row 3: fine
        + "4128,고양,metropolis,100,정서준,smartcity@goyang.lg.example,jp\n"  # row 4: code, kind, language
        + GOYANG.replace("smartcity@", "@")  # row 5: e-mail, and a duplicate only if it were valid
        + SUWON.replace("41110", "41111")  # row 6: fine
    )
    path = write_csv(tmp_path, text)
    lines = refusal(path).splitlines()
    assert lines[-1] == "nothing was imported"
    problems = lines[:-1]
    assert all(line.startswith(f"{path}: row ") for line in problems)
    where = [line.split(" = ", 1)[0].removeprefix(f"{path}: ") for line in problems]
    assert where == [
        "row 2, column population",
        "row 4, column code",
        "row 4, column kind",
        "row 4, column language",
        "row 5, column email",
    ]


def test_missing_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER.replace(",email", "") + SUWON.replace(",smartcity@suwon.lg.example", ""))
    message = refusal(path)
    assert message.startswith(f"{path}: header must be code,name,kind,population,contact_name,email,language")
    assert "missing: email" in message
    assert "unknown" not in message


def test_unknown_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER.replace("language", "lang") + SUWON)
    message = refusal(path)
    assert message.startswith(f"{path}: header must be ")
    assert "missing: language" in message
    assert "unknown: 'lang'" in message


def test_header_only_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER)
    assert refusal(path) == f"{path}: no rows after the header; nothing was imported"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "")
    message = refusal(path)
    assert message.startswith(f"{path}: header must be ")


@pytest.mark.parametrize("encoding", ["cp949", "euc-kr"])
def test_not_utf8_says_save_as_csv_utf8(tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path, HEADER + SUWON, encoding=encoding)
    message = refusal(path)
    assert message.startswith(f"{path}: not UTF-8")
    assert "CSV UTF-8" in message


def test_missing_file_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path / "nowhere.csv")
    assert message.startswith(f"{tmp_path / 'nowhere.csv'}: cannot read")


FILE_LEVEL = {
    "missing column": HEADER.replace(",email", "") + SUWON,
    "unknown column": HEADER.replace("language", "lang") + SUWON,
    "header only": HEADER,
    "not UTF-8": None,
}


@pytest.mark.parametrize(
    "case",
    [
        "missing column",
        "unknown column",
        "header only",
        "not UTF-8",
    ],
)
def test_file_level_refusal_says_nothing_was_imported(tmp_path: Path, case: str) -> None:
    text = FILE_LEVEL[case]
    path = write_csv(tmp_path, HEADER + SUWON, encoding="cp949") if text is None else write_csv(tmp_path, text)
    message = refusal(path)
    assert message.startswith(f"{path}: ")
    assert message.endswith("nothing was imported")


def test_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + SUWON + "\n" + GOYANG.replace("41280", "4128"))
    lines = refusal(path).splitlines()
    assert lines[0].startswith(f"{path}: row 4, column code = '4128'")


# --- through the database (sqlite and postgres) -----------------------------------------


def applicant_rows(app: App) -> dict[str, dict[str, Any]]:
    with read(app.db) as conn:
        return {r["code"]: dict(r) for r in conn.execute(sa.select(APPLICANT)).mappings()}


def config_for(tmp_path: Path) -> Path:
    return config_copy(tmp_path, database_url=f"sqlite:///{tmp_path / 'unused.db'}")


@pytest.fixture
def gongmo(
    app: App, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """`gongmo --config COPY ...` against the app fixture's database; returns (code, stdout, stderr)."""
    config = config_for(tmp_path)
    monkeypatch.setenv("GONGMO_DATABASE_URL", db_url)

    def invoke(*args: str) -> tuple[int, str, str]:
        return run_cli(capsys, "--config", str(config), *args)

    return invoke


def broken_sample(tmp_path: Path) -> Path:
    """Nineteen new, valid rows and one bad one at the end."""
    lines = sample_text().splitlines()
    body = [("9" + line[1:]) for line in lines[1:]]  # new codes 9xxxx
    body[-1] = body[-1].replace(",ko", ",jp")
    return write_csv(tmp_path, "\n".join([lines[0], *body]) + "\n", name="broken.csv")


def test_broken_file_through_parse_and_store_writes_nothing(app: App, tmp_path: Path) -> None:
    before = applicant_rows(app)
    assert len(before) == 20
    path = broken_sample(tmp_path)
    with pytest.raises(InvalidInput) as info, write(app.db) as conn:
        store(conn, parse(path))
    assert str(info.value).splitlines()[0].startswith(f"{path}: row 21, column language = 'jp'")
    assert applicant_rows(app) == before


def test_broken_file_through_the_cli_writes_nothing(
    app: App, tmp_path: Path, gongmo: Callable[..., tuple[int, str, str]]
) -> None:
    before = applicant_rows(app)
    path = broken_sample(tmp_path)
    code, out, err = gongmo("applicants", "import", str(path))
    assert code == 1
    assert "Traceback" not in out + err
    assert err.splitlines() == [
        f"error: {path}: row 21, column language = 'jp': String should match pattern '^(ko|en)$'; expected ko or en",
        "error: nothing was imported",
    ]
    assert applicant_rows(app) == before


def test_reimporting_the_same_file_changes_nothing(
    app: App, tmp_path: Path, gongmo: Callable[..., tuple[int, str, str]]
) -> None:
    before = applicant_rows(app)
    with write(app.db) as conn:
        assert store(conn, parse(SAMPLE)) == ImportResult(created=0, updated=0, unchanged=20)
    code, out, err = gongmo("applicants", "import", str(SAMPLE))
    assert code == 0, err
    assert "20 rows: 0 created, 0 updated, 20 unchanged" in " ".join(out.split())
    assert applicant_rows(app) == before


def test_changing_one_population_updates_exactly_one_row(
    app: App, tmp_path: Path, gongmo: Callable[..., tuple[int, str, str]]
) -> None:
    before = applicant_rows(app)
    path = write_csv(tmp_path, sample_text().replace(",999998,", ",1000001,"), name="changed.csv")
    code, out, err = gongmo("applicants", "import", str(path))
    assert code == 0, err
    assert "20 rows: 0 created, 1 updated, 19 unchanged" in " ".join(out.split())
    after = applicant_rows(app)
    assert after["41590"]["population"] == 1_000_001
    assert after["41590"]["id"] == before["41590"]["id"]
    changed = {code for code in before if before[code] != after[code]}
    assert changed == {"41590"}
    assert set(after) == set(before)


def test_store_creates_updates_and_keeps(app: App, tmp_path: Path) -> None:
    text = sample_text().replace("smartcity@ulleung.lg.example", "it@ulleung.lg.example")
    text += "47170,안동시,city,154000,김안동,smartcity@andong.lg.example,ko\n"
    path = write_csv(tmp_path, text)
    with write(app.db) as conn:
        result = store(conn, parse(path))
    assert result == ImportResult(created=1, updated=1, unchanged=19)
    rows = applicant_rows(app)
    assert len(rows) == 21
    assert rows["47940"]["email"] == "it@ulleung.lg.example"
    assert rows["47170"]["name"] == "안동시"
    assert rows["47170"]["kind"] == "city"
    with write(app.db) as conn:
        assert store(conn, parse(path)) == ImportResult(created=0, updated=0, unchanged=21)


def test_module_constants_match_the_sample_header() -> None:
    assert sample_text().splitlines()[0] == ",".join(applicants.COLUMNS)


# --- bad input that once escaped, refused in one line: through the CLI, on SQLite and PostgreSQL ---------

LONG_NAME = "x" * 131_073  # one over the csv module's cell size limit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            HEADER + GOYANG + SUWON.replace("수원시", LONG_NAME),
            "row 3: a cell is longer than 131072 characters (or a quote is not closed); shorten it, or close the quote",
            id="cell-over-the-csv-limit",
        ),
        pytest.param(
            HEADER.replace("\n", ",code\n") + SUWON.replace("\n", ",99999\n"),
            "header must be code,name,kind,population,contact_name,email,language;"
            " named twice: code (keep one column of each name); nothing was imported",
            id="column-named-twice",
        ),
        pytest.param(
            HEADER.replace("\n", ",\n") + SUWON.replace("\n", ",\n"),
            "header must be code,name,kind,population,contact_name,email,language; unknown: ''; nothing was imported",
            id="unnamed-column",
        ),
        pytest.param(
            HEADER.replace("language", "language,\u200bnote") + SUWON.replace("\n", ",x\n"),
            "header must be code,name,kind,population,contact_name,email,language; unknown: '\\u200bnote';"
            " nothing was imported",
            id="invisible-character-in-a-column-name",
        ),
        pytest.param(
            HEADER + SUWON.replace("41110", "٤١١١٠"),
            "row 2, column code = '٤١١١٠': String should match pattern '^[0-9]{5}$';"
            " expected a 5-digit administrative code (행정표준코드), e.g. 41110",
            id="arabic-indic-digits",
        ),
        pytest.param(
            HEADER + SUWON.replace("41110", "４１１１０"),
            "row 2, column code = '４１１１０': String should match pattern '^[0-9]{5}$';"
            " expected a 5-digit administrative code (행정표준코드), e.g. 41110",
            id="fullwidth-digits",
        ),
        pytest.param(
            HEADER + SUWON.replace("1190987", "١١٩٠٩٨٧"),
            "row 2, column population = '١١٩٠٩٨٧': not a whole number;"
            " expected a whole number of inhabitants, e.g. 1190000 (no commas)",
            id="population-in-arabic-indic-digits",
        ),
        pytest.param(
            HEADER + SUWON.replace("수원시", "수원\x00시"),
            "row 2, column name = '수원\\x00시': has a control character (U+0000, NUL); delete it",
            id="nul",
        ),
        pytest.param(
            HEADER + SUWON.replace("최민준", "최민준\x1b[0m"),
            "row 2, column contact_name = '최민준\\x1b[0m': has a control character (U+001B, escape); delete it",
            id="escape",
        ),
    ],
)
def test_bad_input_that_once_escaped_is_refused_in_one_line_and_imports_nothing(
    app: App, tmp_path: Path, gongmo: Callable[..., tuple[int, str, str]], text: str, expected: str
) -> None:
    before = applicant_rows(app)
    path = write_csv(tmp_path, text, name="bad.csv")
    code, out, err = gongmo("applicants", "import", str(path))
    assert (code, out) == (1, "")
    last = [] if "header must be" in expected else ["error: nothing was imported"]
    assert err.splitlines() == [f"error: {path}: {expected}", *last]
    assert applicant_rows(app) == before


def test_a_long_value_is_shortened_in_the_refusal(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + SUWON.replace("수원시", "수" * 5_000))
    assert refusal(path).splitlines()[0] == (
        f"{path}: row 2, column name = '{'수' * 40}'... (5000 characters): String should have at most 60 characters;"
        " expected the local government's name, e.g. 수원시"
    )


# --- large files (issue 18, finding 9) ---------------------------------------------------


def test_a_large_file_is_streamed_and_its_refusal_shows_the_first_50_errors_and_a_count(tmp_path: Path) -> None:
    """~4 MB of rows with one error each: the refusal has 50 problem lines, the count of the others
    and the last line; the file is read as it goes (peak memory a small fraction of its size)."""
    import tracemalloc

    bad = 220_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(bad):
            f.write(f"{10000 + i % 90000},x,city,1,y,z@x.example,ko,extra\n")  # more values than columns
    size = path.stat().st_size
    assert size > 4_000_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput) as info:
            parse(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    lines = str(info.value).splitlines()
    assert len(lines) == 52
    assert lines[0] == f"{path}: row 2: more values than columns; quote a value that has a comma"
    assert lines[49] == f"{path}: row 51: more values than columns; quote a value that has a comma"
    assert lines[50] == f"{path}: ... and 219,950 more errors (fix these and import again)"
    assert lines[51] == "nothing was imported"
    assert peak < size / 4, f"peak {peak:,} bytes for a file of {size:,}"


def test_a_file_over_the_size_limit_is_refused_in_one_line_before_it_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + SUWON * 40)
    size = path.stat().st_size
    with pytest.raises(InvalidInput) as info:
        parse(path, max_bytes=1024)
    assert str(info.value) == (
        f"{path}: {size:,} bytes, more than the 1,024 an import takes ([gongmo] max_csv_bytes): split the file,"
        " or raise the limit in the config; nothing was imported"
    )
    # not read: bytes that are not UTF-8 would be refused as such if it were
    path.write_bytes(b"\xff" * 2000)
    with pytest.raises(InvalidInput, match=r"2,000 bytes, more than the 1,024"):
        parse(path, max_bytes=1024)
    assert len(parse(write_csv(tmp_path, HEADER + SUWON, "small.csv"), max_bytes=1024)) == 1


def test_the_size_limit_is_a_config_setting_of_20_mb_by_default(tmp_path: Path) -> None:
    from gongmo.workflow.core.config import load

    assert load(CONFIG).config.gongmo.max_csv_bytes == 20 * 1024 * 1024 == csvfile.MAX_CSV_BYTES
    changed = config_copy(
        tmp_path, ('environment = "development"', 'environment = "development"\nmax_csv_bytes = 4096')
    )
    assert load(changed).config.gongmo.max_csv_bytes == 4096


def test_a_byte_that_is_not_utf8_far_into_the_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_bytes((HEADER + SUWON.replace("41110", "41111") * 1).encode() + GOYANG.encode() * 3000 + b"\xff\n")
    with pytest.raises(InvalidInput) as info:
        parse(path)
    assert str(info.value) == f"{path}: not UTF-8; save the sheet as 'CSV UTF-8'; nothing was imported"


# --- contacts: the optional `contacts` column (applicant_contact, migration 0013) ------------------


def contacts(app: App, code: str) -> dict[str, str | None]:
    with read(app.db) as conn:
        return {r["email"]: r["name"] for r in applicants.contacts_of(conn, code)}


def with_contacts(cell: str, email: str = "smartcity@suwon.lg.example") -> str:
    return (
        HEADER.rstrip("\n")
        + ",contacts\n"
        + SUWON.replace("smartcity@suwon.lg.example", email).rstrip("\n")
        + f",{cell}\n"
    )


def test_every_imported_applicant_has_its_own_email_as_a_contact(app: App) -> None:
    assert contacts(app, "41110") == {"smartcity@suwon.lg.example": "최민준"}
    with read(app.db) as conn:
        assert len(conn.execute(sa.select(APPLICANT_CONTACT)).all()) == 20


def test_a_contacts_column_names_more_contacts_and_an_old_file_stays_valid(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path, with_contacts('"박지훈 <Park@Suwon.example>; lee@suwon.example"'))
    (row,) = parse(path)
    assert [(c.email, c.name) for c in row.contacts or []] == [
        ("Park@suwon.example", "박지훈"),
        ("lee@suwon.example", None),
    ]
    assert "contacts" not in row.model_dump()
    with write(app.db) as conn:
        assert store(conn, [row]) == ImportResult(created=0, updated=1, unchanged=0)  # its contacts alone changed
    assert contacts(app, "41110") == {
        "smartcity@suwon.lg.example": "최민준",
        "lee@suwon.example": None,
        "park@suwon.example": "박지훈",
    }
    with write(app.db) as conn:
        assert store(conn, parse(path)) == ImportResult(created=0, updated=0, unchanged=1)
    # The old file (no contacts column) keeps them; an empty cell of the column removes them.
    with write(app.db) as conn:
        assert store(conn, parse(SAMPLE)) == ImportResult(created=0, updated=0, unchanged=20)
    assert len(contacts(app, "41110")) == 3
    with write(app.db) as conn:
        assert store(conn, parse(write_csv(tmp_path, with_contacts(""), name="none.csv"))).updated == 1
    assert contacts(app, "41110") == {"smartcity@suwon.lg.example": "최민준"}


def test_a_replaced_own_email_leaves_and_contacts_added_by_hand_stay(app: App, tmp_path: Path) -> None:
    applicants.add_contact(app, "41110", "kept@suwon.example", name="이유진")
    text = sample_text().replace("smartcity@suwon.lg.example", "new@suwon.lg.example")
    with write(app.db) as conn:
        assert store(conn, parse(write_csv(tmp_path, text))) == ImportResult(created=0, updated=1, unchanged=19)
    assert contacts(app, "41110") == {"new@suwon.lg.example": "최민준", "kept@suwon.example": "이유진"}


def test_a_bad_contact_is_refused_naming_row_and_column_and_nothing_is_imported(app: App, tmp_path: Path) -> None:
    before = applicant_rows(app)
    path = write_csv(tmp_path, with_contacts("lee@suwon.example; not-an-address", email="new@suwon.lg.example"))
    message = refusal(path)
    assert message.startswith(f"{path}: row 2, column contacts = ") and "nothing was imported" in message, message
    assert "expected empty, or more contacts' e-mails separated by ';'" in message
    assert applicant_rows(app) == before and contacts(app, "41110") == {"smartcity@suwon.lg.example": "최민준"}


def test_removing_a_contact_keeps_the_own_email_and_refuses_strangers(app: App) -> None:
    applicants.add_contact(app, "41110", "Second@Suwon.example")
    with pytest.raises(Conflict, match="already a contact"):
        applicants.add_contact(app, "41110", "second@suwon.example")
    with pytest.raises(Conflict, match="own e-mail"):
        applicants.remove_contact(app, "41110", "smartcity@suwon.lg.example")
    with pytest.raises(NotFound, match="not a contact"):
        applicants.remove_contact(app, "41110", "third@suwon.example")
    with pytest.raises(NotFound, match="no applicant"):
        applicants.add_contact(app, "99999", "x@y.example")
    assert applicants.remove_contact(app, "41110", "second@suwon.example")["sessions_ended"] == 0
    assert contacts(app, "41110") == {"smartcity@suwon.lg.example": "최민준"}
