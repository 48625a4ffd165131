"""The HTTP API (FastAPI), served by `gongmo daemon`; see `create_api`."""

from gongmo.workflow.api.server import create_api

__all__ = ["create_api"]
