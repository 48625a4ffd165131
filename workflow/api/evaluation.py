"""The committee's sheets, the ranking and the selection."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path

from gongmo.states.errors import InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.states.scoring import PARTS
from gongmo.workflow.api import schemas
from gongmo.workflow.api.deps import Admin, AdminOrEvaluator, AppId, Gongmo, TrackKey, check_access, track_id
from gongmo.workflow.api.errors import Forbidden, responses
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import EVALUATOR, SCORE
from gongmo.workflow.stages import committee, selection

router = APIRouter(tags=["evaluation"])
Part = Annotated[str, Path(pattern="^(written|presentation)$", description="written or presentation")]


@router.put("/applications/{application_id}/scores/{part}", responses=responses(401, 403, 404, 409, 422))
def put_sheet(
    a: Gongmo, who: AdminOrEvaluator, application_id: AppId, part: Part, body: schemas.SheetIn
) -> dict[str, Any]:
    """An evaluator's whole sheet for one part (every criterion); sending it
    again corrects it (the event log keeps the old points)."""
    if who.role == Role.EVALUATOR:
        if body.evaluator is not None and body.evaluator.lower() != who.subject:
            raise Forbidden(f"field evaluator = {body.evaluator!r}: an evaluator token enters its own sheets only")
        email = who.subject
        with read(a.db) as conn:
            check_access(a, conn, who, application_id)
    elif body.evaluator is None:
        raise InvalidInput("field evaluator is missing: an admin token names whose sheet it enters (an e-mail)")
    else:
        email = body.evaluator
    points = {k: str(v) for k, v in body.points.items()}
    sheet = committee.SheetInput(str(application_id), email, part, points)
    committee.enter_sheet(a, sheet, who.actor)
    return {"application_id": application_id, "evaluator": email.lower(), "part": part, "points": points}


@router.get("/applications/{application_id}/scores", responses=responses(401, 403, 404, 422))
def get_sheets(a: Gongmo, who: AdminOrEvaluator, application_id: AppId) -> list[dict[str, Any]]:
    """The sheets entered (an evaluator token: its own only)."""
    query = (
        sa.select(EVALUATOR.c.email, SCORE.c.part, SCORE.c.criterion, SCORE.c.points_x100, SCORE.c.entered_at)
        .join(EVALUATOR, EVALUATOR.c.id == SCORE.c.evaluator_id)
        .where(SCORE.c.application_id == application_id)
        .order_by(EVALUATOR.c.email, SCORE.c.part, SCORE.c.criterion)
    )
    if who.role == Role.EVALUATOR:
        query = query.where(SCORE.c.evaluator_id == who.evaluator_id)
    with read(a.db) as conn:
        check_access(a, conn, who, application_id)
        sheets: dict[tuple[str, str], dict[str, Any]] = {}
        for email, part, criterion, x100, at in conn.execute(query):
            sheet = sheets.setdefault((email, part), {"evaluator": email, "part": part, "points": {}, "entered_at": at})
            sheet["points"][criterion] = str(Decimal(x100) / 100)
            sheet["entered_at"] = max(sheet["entered_at"], at)
    return sorted(sheets.values(), key=lambda s: (PARTS.index(s["part"]), s["evaluator"]))


@router.get("/tracks/{track}/ranking", responses=responses(401, 403, 404, 422))
def ranking(a: Gongmo, who: Admin, track: TrackKey) -> dict[str, Any]:
    """Every scored application of the track, ranked, with each component and tie-break."""
    with read(a.db) as conn:
        track_id(a, conn, track)
    result = selection.ranking(a, track)
    return {"track": track, "incomplete": result.incomplete, "rows": selection.table(result)}


@router.post("/tracks/{track}/selection", responses=responses(401, 403, 404, 409, 422))
def select(a: Gongmo, who: Admin, track: TrackKey, body: schemas.SelectionIn) -> dict[str, Any]:
    """The selection within slots and budget: a dry run, or with `confirm`
    every decision applied in one transaction (notices held for release)."""
    with read(a.db) as conn:
        track_id(a, conn, track)
    result = selection.select(a, track, who.actor, body.confirm)
    return {
        "track": track,
        "applied": result.applied,
        "selected": result.count("select"),
        "waitlisted": result.count("waitlist"),
        "not_selected": result.count("reject"),
        "rows": selection.table(result.ranking, result.decisions),
    }
