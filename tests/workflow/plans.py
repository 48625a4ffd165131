"""A plan's documents in test set-ups: a plan is received only with every required document
(issue 21), so a test that submits attaches them first.

    attach(app, TRACK, "41590")                      # plan (PDF) and budget (XLSX), as the office
    submit(app, TRACK, "41590", 8_000_000_000, 8_000_000_000, ADMIN, "계획", "climate_crisis")
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from gongmo.states.lifecycle import Role
from gongmo.workflow.core import samples
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read
from gongmo.workflow.core.lookups import applicant_by_code, application_of, track_by_key
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.steps import Moved

OFFICE = Actor("office", Role.ADMIN)
# What each kind gets, by default: a sample of a type the shipped config accepts for it.
SAMPLE_FILES = {
    "plan": ("사업계획서.pdf", samples.pdf),
    "budget": ("사업비_산출내역서.xlsx", samples.xlsx),
    "annex": ("부속서류.pdf", samples.pdf),
}


def application_id(app: App, track_key: str, applicant_code: str) -> int | None:
    """The applicant's application in the track, if it has one."""
    with read(app.db) as conn:
        track = track_by_key(conn, app.loaded.config, track_key)
        row = application_of(conn, track["id"], applicant_by_code(conn, applicant_code)["id"])
    return int(row["id"]) if row else None


def attach(app: App, track_key: str, applicant_code: str, kinds: Iterable[str] | None = None) -> int:
    """Upload a sample of each kind (default: plan and budget) to the applicant's application in the
    track, starting the application first if it has none; returns the application's id. The clock
    must be inside the receipt window."""
    found = application_id(app, track_key, applicant_code)
    if found is None:
        found = app.moves.start(track_key, applicant_code, OFFICE)
    for kind in ("plan", "budget") if kinds is None else kinds:
        name, make = SAMPLE_FILES[kind]
        app.moves.uploads.add(found, kind, name, io.BytesIO(make()), OFFICE)
    return found


def submit(
    app: App,
    track_key: str,
    applicant_code: str,
    national: int,
    local: int,
    *args: Any,
    answers: Mapping[str, object] | None = None,
    **kwargs: Any,
) -> Moved:
    """attach(), then app.moves.submit(track_key, applicant_code, national, local, *args, answers=..., **kwargs)."""
    attach(app, track_key, applicant_code)
    return app.moves.submit(track_key, applicant_code, national, local, *args, answers=answers, **kwargs)


def document_count(app: App) -> int:
    """How many document rows the database holds (a refusal stores none)."""
    from gongmo.workflow.core.models import DOCUMENT

    with read(app.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(DOCUMENT)).scalar_one())
