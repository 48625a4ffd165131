"""Reading a spreadsheet's CSV export, shared by the importers (applicants, evaluators,
score sheets): a file over `[gongmo] max_csv_bytes` is refused before it is read, the rest
is streamed row by row (never the whole file in memory), and a refusal shows the first 50
problems with a count of the others, each with its row, column, value and fix."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from gongmo.states.errors import InvalidInput

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
