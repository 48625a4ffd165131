"""What every command group prints with: the console, tables, JSON, times in KST.

People get rich tables and one line per change; scripts get `--json` (one
JSON document on stdout). This module imports no command module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table as _Table

# soft_wrap: a message stays one line however long its path (the terminal wraps it; a log or a pipe keeps it whole)
console = Console(highlight=False, soft_wrap=True)


class RichTable(_Table):
    """A rich table whose long values wrap onto the next line (folded inside a word that is longer
    than its column: an e-mail, a deadline key), never cut to '…' at the terminal's width."""

    def add_column(self, header: Any = "", footer: Any = "", *, overflow: Any = "fold", **kwargs: Any) -> None:
        super().add_column(header, footer, overflow=overflow, **kwargs)


def done(as_json: bool, data: dict[str, Any], *lines: str) -> None:
    """What a command changed: `data` as one JSON object, or the lines for a person."""
    if as_json:
        print_json(data)
        return
    for line in lines:
        console.print(line, markup=False)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_default) + "\n")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def kst(value: datetime | None, zone: str = "Asia/Seoul") -> str:
    return "" if value is None else f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


def print_rows(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = RichTable(*header, title=title)
    for r in rows:
        table.add_row(*r)
    console.print(table)
