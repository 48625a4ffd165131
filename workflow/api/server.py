"""Build the FastAPI application around a wired gongmo App.

Routes are plain (sync) functions: FastAPI runs them on its thread pool, and
each opens its own short transaction through the engine, exactly as the CLI
does; the event loop only carries the HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from gongmo.workflow.api import applications, contests, documents, errors, evaluation, operations
from gongmo.workflow.api.limits import Limits
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.metrics import Metrics

if TYPE_CHECKING:
    from gongmo.workflow.runtime.daemon import Daemon

DESCRIPTION = """gongmo (공모) runs public funding contests end to end.

Every request but `/ping`, `/healthz` and `/metrics` carries an API token:
`Authorization: Bearer <token>`, created by `gongmo tokens create --role
admin|evaluator|applicant --subject ...`. An applicant token sees and acts on
its own applications only; an evaluator token sees the applications assigned
to it without a conflict of interest. Every action is recorded under the
token's subject.

A refusal is JSON: `{"error": "..."}`, one line naming the field, the value
and the fix. A transition needs the version it was decided on (`If-Match`,
the ETag of `GET /applications/{id}`): a stale one is refused with 409 and
changes nothing.

A request with a body is authenticated before its body is read, and a body
over `[api] max_body_bytes` (default 2 MB) is refused with 413. Limit the
request rate at the reverse proxy in front (see the README).
"""


def create_api(app: App, daemon: Daemon | None = None, metrics: Metrics | None = None) -> FastAPI:
    api = FastAPI(title="gongmo", version="1", description=DESCRIPTION)
    api.state.gongmo = app
    api.state.daemon = daemon
    api.state.metrics = metrics or (daemon.metrics if daemon is not None else Metrics(app))
    errors.install(api)
    api.add_middleware(Limits, gongmo=app, max_body_bytes=app.loaded.config.api.max_body_bytes)
    for module in (contests, applications, documents, evaluation, operations):
        api.include_router(module.router)
    return api
