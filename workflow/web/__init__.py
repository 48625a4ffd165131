"""The browser side of gongmo: the office console (and, later, the evaluators' and applicants'
portals), served by `gongmo daemon` from the same FastAPI app as the HTTP API; see `create_app`."""

from gongmo.workflow.web.server import create_app

__all__ = ["create_app"]
