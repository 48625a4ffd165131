"""The eligibility checklist: every rule of a track checked against what an
application and its applicant state. Recorded when an application enters
preliminary review, by the UPDATE that moves it (moves.py: a single move's
fields, a bulk chunk's one UPDATE); the review stage reads it.

The stored checklist is the JSON list of the rule lines, each
{"rule", "passed", "value", "expected"}: byte for byte what
json.dumps([c._asdict() for c in checks], ensure_ascii=False, separators=(",", ":"))
gives (a test holds the two equal). It is put together from one JSON piece per
line (`encode`), and a line's piece is encoded once and remembered: across a
track most lines repeat (the kind, the years, the type, the amounts at the cap),
so a receipt close of 100,000 plans encodes a few hundred pieces, not 600,000.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from fractions import Fraction
from json.encoder import encode_basestring as _json_string  # the C encoder's own string escaping
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.eligibility import Check, Facts, Rules, answer_checks, lines
from gongmo.workflow.core.config import Track
from gongmo.workflow.core.models import APPLICANT, APPLICATION


def rules_of(track: Track) -> Rules:
    e, f = track.eligibility, track.funding
    return Rules(
        kinds=frozenset(k.value for k in e.kinds),
        national_cap_krw=f.national_cap_krw,
        years=f.years,
        national_min_krw=f.national_min_krw,
        local_match_ratio=Fraction(str(f.local_match_ratio)),
        population_below=e.population_below,
        types=tuple(e.types),
        answer_rules=tuple(e.answers),
        questions=tuple(track.questions),
    )


# What an application and its applicant state, as the checklist reads them (Facts' names, in this order).
FACT_NAMES = ("national_krw", "local_krw", "years", "project_type", "answers", "kind", "population")
FACT_COLUMNS = (*(APPLICATION.c[name] for name in FACT_NAMES[:5]), APPLICANT.c.kind, APPLICANT.c.population)
FACTS = sa.select(APPLICATION.c.id, *FACT_COLUMNS).join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)


def with_facts(query: sa.Select[Any]) -> sa.Select[Any]:
    """A query of applications that also reads their facts (a bulk move's chunk reads them with its lock)."""
    return query.add_columns(*FACT_COLUMNS).join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)


def facts_of(r: Any, track: Track) -> Facts:
    """The Facts of a row with FACT_NAMES as attributes."""
    return facts_from(tuple(getattr(r, name) for name in FACT_NAMES), track)


def facts_from(values: Sequence[Any], track: Track) -> Facts:
    """The Facts of FACT_COLUMNS' values, in that order."""
    national_krw, local_krw, years, project_type, answers, kind, population = values
    return Facts(
        kind=kind,
        population=population,
        national_krw=national_krw,  # a missing amount fails its rule, it is not 0
        local_krw=local_krw,
        years=years or track.funding.years,
        project_type=project_type,
        answers=json.loads(answers) if answers else {},  # as submit stored them (normalised)
    )


# -- the stored form ----------------------------------------------------------------------------

_PIECE = '{"rule":%s,"passed":%s,"value":%s,"expected":%s}'
_PIECES: dict[Check, str] = {}  # a line -> its JSON piece (bounded: cleared when full)
_PIECES_MAX = 65_536


def piece(line: Check) -> str:
    """One line as JSON, as json.dumps(line._asdict(), ensure_ascii=False, separators=(",", ":"))."""
    rule, passed, value, expected = line
    if not (type(passed) is bool and type(rule) is str and type(value) is str and type(expected) is str):
        # not the types a line has (and 1 == True: such a line must not find a remembered one)
        return json.dumps(line._asdict(), ensure_ascii=False, separators=(",", ":"))
    found = _PIECES.get(line)
    if found is None:
        found = _PIECE % (
            _json_string(rule),
            "true" if passed else "false",
            _json_string(value),
            _json_string(expected),
        )
        if len(_PIECES) >= _PIECES_MAX:
            _PIECES.clear()
        _PIECES[line] = found
    return found


def encode(checks: Iterable[Check]) -> str:
    """A checklist as stored: the JSON list of its lines' pieces."""
    return "[" + ",".join(map(piece, checks)) + "]"


class Checklists:
    """The checklists of many applications of one track, as stored, each distinct line made once:
    a fixed rule's line is remembered by the values it reads (states/eligibility.Line.reads, taken
    from the row's FACT_COLUMNS values: they turn into the same Facts for every row of the track),
    as its JSON piece and whether it passed; the Facts are built only to make a line not made yet,
    and for the lines on answers, made for each application. The same text as
    encode(check(rules, facts_from(values))) (a test holds the two equal)."""

    REMEMBERED = 4_096  # lines kept per rule (nearly every applicant has a population of its own)

    def __init__(self, track: Track) -> None:
        self.track = track
        self.rules = rules_of(track)
        # per fixed rule: what it reads from the values, the lines made (by those), how to make one
        self._made: dict[str, dict[Hashable, tuple[str, bool]]] = {}
        self._lines: list[tuple[Callable[[Sequence[Any]], Hashable], dict[Hashable, tuple[str, bool]], Any]] = []
        for line in lines(self.rules):
            made = self._made.setdefault(line.rule, {})
            self._lines.append((itemgetter(*(FACT_NAMES.index(name) for name in line.reads)), made, line.make))

    def of(self, values: Sequence[Any]) -> tuple[str, bool]:
        """One application's checklist as stored, and whether it passed every rule; `values` are
        its FACT_COLUMNS, in that order."""
        rules, facts = self.rules, None
        parts, eligible = [], True
        for reads, made, make in self._lines:
            key = reads(values)
            found = made.get(key)
            if found is None:
                facts = facts or facts_from(values, self.track)
                line = make(rules, facts)
                if len(made) >= self.REMEMBERED:
                    made.clear()
                made[key] = found = (piece(line), line.passed)
            parts.append(found[0])
            eligible = eligible and found[1]
        if rules.answer_rules:
            for line in answer_checks(rules, facts or facts_from(values, self.track)):
                parts.append(piece(line))
                eligible = eligible and line.passed
        return "[" + ",".join(parts) + "]", eligible


def checked(conn: Connection, ids: Sequence[int], track: Track) -> dict[int, tuple[str, bool]]:
    """Every rule checked for these applications: id -> (the checklist as stored, eligible)."""
    checklists = Checklists(track)
    return {r[0]: checklists.of(tuple(r)[1:]) for r in conn.execute(FACTS.where(APPLICATION.c.id.in_(ids)))}


def record_checks(conn: Connection, ids: list[int], track: Track) -> int:
    """Check every rule for these applications and store the checklists (on their own UPDATE:
    the Mover writes them with the move's UPDATE instead)."""
    updates = [
        {"b_id": i, "b_checklist": text, "b_eligible": ok} for i, (text, ok) in checked(conn, ids, track).items()
    ]
    if updates:
        conn.execute(
            sa.update(APPLICATION)
            .where(APPLICATION.c.id == sa.bindparam("b_id"))
            .values(checklist=sa.bindparam("b_checklist"), eligible=sa.bindparam("b_eligible")),
            updates,
        )
    return len(updates)
