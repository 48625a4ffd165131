"""What every scenario returns (rows), the machine they ran on, the table and the JSON."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Goal:
    """A target on the ratio gongmo / baseline: at most (<=) or at least (>=) `value`."""

    op: str
    value: float
    label: str = ""

    def met(self, ratio: float | None) -> bool | None:
        if ratio is None:
            return None
        return ratio <= self.value if self.op == "<=" else ratio >= self.value

    def text(self) -> str:
        return self.label or f"{'≤' if self.op == '<=' else '≥'} {self.value:g}x"


@dataclass
class Row:
    scenario: str
    db: str
    n: int
    gongmo: float
    baseline: float | None
    unit: str
    ratio: float | None
    target: str | None
    met: bool | None
    group: str = ""  # the scenario's name in `python -m bench --only NAME` (set by bench.__main__)
    extra: dict[str, Any] = field(default_factory=dict)


def row(
    scenario: str,
    db: str,
    n: int,
    gongmo: float,
    baseline: float | None,
    unit: str,
    goal: Goal | None = None,
    **extra: Any,
) -> Row:
    ratio = round(gongmo / baseline, 3) if baseline else None
    return Row(
        scenario=scenario,
        db=db,
        n=n,
        gongmo=round(gongmo, 3),
        baseline=round(baseline, 3) if baseline is not None else None,
        unit=unit,
        ratio=ratio,
        target=goal.text() if goal else None,
        met=goal.met(ratio) if goal else None,
        extra=extra,
    )


def machine(versions: dict[str, str]) -> dict[str, Any]:
    import aiosmtplib
    import sqlalchemy

    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "aiosmtplib": aiosmtplib.__version__,
    }
    if "postgres" in versions:
        info["postgresql"] = versions["postgres"]
    return info


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f} {unit}" if value >= 1000 else f"{value:,.3g} {unit}"


def print_table(rows: list[Row], info: dict[str, Any], console: Console | None = None) -> None:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=140)  # a log or a pipe: no wrapping
    table = Table(title="gongmo benchmarks (gongmo next to a raw baseline, same run)")
    for name, justify in (
        ("scenario", "left"),
        ("db", "left"),
        ("N", "right"),
        ("gongmo", "right"),
        ("baseline", "right"),
        ("ratio", "right"),
        ("target", "left"),
        ("met", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[r.met]
        table.add_row(
            r.scenario,
            r.db,
            f"{r.n:,}",
            _figure(r.gongmo, r.unit),
            _figure(r.baseline, r.unit),
            f"{r.ratio:.2f}x" if r.ratio is not None else "—",
            r.target or "",
            met,
        )
    console.print(table)
    pg = f", PostgreSQL {info['postgresql']}" if "postgresql" in info else ""
    console.print(f"machine: {info['cores']} cores, Python {info['python']}, SQLite {info['sqlite']}{pg}")


def write_json(path: Path, rows: list[Row], info: dict[str, Any], **meta: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": info, **meta, "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
