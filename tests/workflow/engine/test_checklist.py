"""The checklist as stored: put together from per-line pieces, each distinct line made once per
chunk (engine/checklist.py), and the same text json.dumps makes of check()'s lines."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gongmo.states.eligibility import check
from gongmo.workflow.core.config import Track, load
from gongmo.workflow.engine.checklist import FACT_NAMES, Checklists, encode, facts_of, piece, rules_of
from tests.conftest import CONFIG

TRACKS = ("strong-small-2024", "hub-2024", "public-private-2022", "living-lab-2022")


def track(key: str) -> Track:
    return load(Path(CONFIG)).config.track(key)[1]


def row(**values: Any) -> SimpleNamespace:
    """A row of checklist.FACTS: a passing plan of 8 bn + 8 bn over 3 years, changed by `values`."""
    base = {"id": 1, "national_krw": 8_000_000_000, "local_krw": 8_000_000_000, "years": 3}
    base |= {"project_type": "climate_crisis", "answers": None, "kind": "city", "population": 100_000}
    return SimpleNamespace(**(base | values))


def facts(r: SimpleNamespace) -> tuple[Any, ...]:
    """The row's FACT_COLUMNS values, as a bulk move's chunk reads them."""
    return tuple(getattr(r, name) for name in FACT_NAMES)


MEMBERS = [{"kind": "local_government", "name": "수원시"}, {"kind": "private_company", "name": 'A "주식회사"'}]
ROWS = [
    row(),
    row(population=999_999),
    row(population=1_000_000, kind="province"),
    row(national_krw=None, local_krw=None),
    row(national_krw=0, local_krw=0),
    row(national_krw=9_000_000_000, local_krw=1),
    row(years=None),
    row(years=4, project_type=None),
    row(project_type="local_extinction", population=250_000),
    row(answers=json.dumps({"consortium": MEMBERS, "technology": "IoT\n\\ 센서 \u2028"}, ensure_ascii=False)),
    row(answers=json.dumps({"consortium": [*MEMBERS, {"kind": "university", "name": "대학"}]})),
    row(answers=json.dumps({"living_lab": True})),
    row(answers=json.dumps({"living_lab": False})),
    row(),  # again: every line remembered
]


@pytest.mark.parametrize("key", TRACKS)
def test_a_checklist_is_what_json_dumps_makes_of_its_lines(key: str) -> None:
    cfg = track(key)
    rules = rules_of(cfg)
    checklists = Checklists(cfg)
    for r in ROWS:
        lines = check(rules, facts_of(r, cfg))
        expected = json.dumps([c._asdict() for c in lines], ensure_ascii=False, separators=(",", ":"))
        eligible = all(c.passed for c in lines)
        assert checklists.of(facts(r)) == (expected, eligible)
        assert encode(lines) == expected


def test_lines_are_made_once_per_distinct_value_they_read() -> None:
    cfg = track("strong-small-2024")
    checklists = Checklists(cfg)
    for population in (100_000, 200_000, 100_000, 200_000):
        checklists.of(facts(row(population=population)))
    made = checklists._made
    assert sorted(made["population"]) == [100_000, 200_000]
    assert list(made["kind"]) == ["city"]
    assert list(made["local_match"]) == [(8_000_000_000, 8_000_000_000)]


def test_remembered_lines_are_bounded() -> None:
    cfg = track("strong-small-2024")
    checklists = Checklists(cfg)
    checklists.REMEMBERED = 10
    for population in range(1, 100):
        text, eligible = checklists.of(facts(row(population=population)))
        assert f'"value":"{population:,}"' in text and eligible
    assert len(checklists._made["population"]) <= 10


def test_a_piece_of_unexpected_types_is_still_json() -> None:
    odd = check(rules_of(track("strong-small-2024")), facts_of(row(), track("strong-small-2024")))[0]._replace(passed=1)
    assert piece(odd) == json.dumps(odd._asdict(), ensure_ascii=False, separators=(",", ":"))
