"""The eligibility checklist: every rule of a track checked against what an
application and its applicant state. Recorded when an application enters
preliminary review (an effect, effects.py); the review stage reads it."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.eligibility import Facts, Rules, check
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


# What an application and its applicant state, as the checklist reads them.
FACTS = sa.select(
    APPLICATION.c.id,
    APPLICATION.c.national_krw,
    APPLICATION.c.local_krw,
    APPLICATION.c.years,
    APPLICATION.c.project_type,
    APPLICATION.c.answers,
    APPLICANT.c.kind,
    APPLICANT.c.population,
).join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)


def facts_of(r: Any, track: Track) -> Facts:
    return Facts(
        kind=r.kind,
        population=r.population,
        national_krw=r.national_krw,  # a missing amount fails its rule, it is not 0
        local_krw=r.local_krw,
        years=r.years or track.funding.years,
        project_type=r.project_type,
        answers=json.loads(r.answers) if r.answers else {},  # as submit stored them (normalised)
    )


def record_checks(conn: Connection, ids: list[int], track: Track) -> int:
    """Check every rule for these applications and store the checklists."""
    rules = rules_of(track)
    updates = []
    for r in conn.execute(FACTS.where(APPLICATION.c.id.in_(ids))):
        facts = facts_of(r, track)
        checks = check(rules, facts)
        updates.append(
            {
                "b_id": r.id,
                "b_checklist": json.dumps([c.__dict__ for c in checks], ensure_ascii=False, separators=(",", ":")),
                "b_eligible": all(c.passed for c in checks),
            }
        )
    if updates:
        conn.execute(
            sa.update(APPLICATION)
            .where(APPLICATION.c.id == sa.bindparam("b_id"))
            .values(checklist=sa.bindparam("b_checklist"), eligible=sa.bindparam("b_eligible")),
            updates,
        )
    return len(updates)
