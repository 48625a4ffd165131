"""The HTTP API (FastAPI), served by `gongmo daemon`; see `create_api`."""

from workflow.api.app import create_api

__all__ = ["create_api"]
