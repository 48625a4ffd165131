"""The daemon's one FastAPI app: the HTTP API (api/) with the console's pages beside it.

Pages are server-rendered (Jinja2, templates/ beside this file) with htmx for partial updates,
vendored in static/ with its licence; no build step, no external asset, no inline script.
The console lives under /office, the portals under /evaluator and /applicant (the API owns
/applications, /tracks, ...); / leads each person to its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from gongmo.states.errors import GongmoError
from gongmo.workflow.api import create_api
from gongmo.workflow.core import sessions
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.metrics import Metrics
from gongmo.workflow.web import (
    applicant,
    applications,
    auth,
    committee,
    evaluator,
    office,
    operations,
    pages,
    selection,
    tracks,
)

if TYPE_CHECKING:
    from gongmo.workflow.runtime.daemon import Daemon

STATIC = Path(__file__).parent / "static"
# Every page module's router, in the order of their routes.
ROUTERS = (
    auth.router,
    office.router,
    tracks.router,
    committee.router,
    selection.router,
    applications.router,
    operations.router,
)
# The portals' routers (evaluators, applicants): their pages refuse an office session, so the office's
# accessibility sweep over ROUTERS leaves them to the portals' own browser tests.
PORTAL_ROUTERS = (evaluator.router, applicant.router)


def create_app(app: App, daemon: Daemon | None = None, metrics: Metrics | None = None) -> FastAPI:
    api = create_api(app, daemon, metrics)
    pages.install(api)
    api.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (*ROUTERS, *PORTAL_ROUTERS):
        api.include_router(router)

    @api.get("/", include_in_schema=False)
    def home(request: Request) -> RedirectResponse:
        """Each person to its own pages: the office to /office, an evaluator to /evaluator, an
        applicant to /applicant; no session: the office's home, which asks to sign in."""
        try:
            found = auth.session(request)
        except GongmoError:
            return RedirectResponse("/office", status_code=303)
        return RedirectResponse(sessions.HOME.get(found.role, "/office"), status_code=303)

    return api
