"""Every refusal is JSON: {"error": one line naming the field, the value and
the fix, ...details}. Domain errors map to their HTTP status here, once."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from gongmo.states.errors import (
    Conflict,
    GongmoError,
    IllegalMove,
    InvalidInput,
    MissingReason,
    NotFound,
    NotPermitted,
    NotVisible,
    OutsideWindow,
    TooLarge,
    Wording,
)
from gongmo.workflow.core.config import ConfigError
from gongmo.workflow.core.db import DatabaseError

log = logging.getLogger("gongmo.api")


class Unauthorized(GongmoError):
    """No token, or one that is unknown or revoked."""


class Forbidden(GongmoError):
    """A token whose role or subject may not do this."""


class PreconditionRequired(GongmoError):
    """A write that must name the version it was decided on."""


class Error(BaseModel):
    """The body of every refusal."""

    error: str
    application: str | None = None
    state: str | None = None
    trigger: str | None = None
    allowed: list[str] | None = None
    opens: str | None = None
    closes: str | None = None
    field: str | None = None
    value: Any = None
    errors: list[dict[str, Any]] | None = None


STATUS: tuple[tuple[type[GongmoError], int], ...] = (
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotVisible, 403),
    (NotPermitted, 403),
    (NotFound, 404),
    (IllegalMove, 409),
    (Conflict, 409),
    (OutsideWindow, 409),
    (PreconditionRequired, 428),
    (TooLarge, 413),
    (MissingReason, 422),
    (InvalidInput, 422),
    (ConfigError, 422),
    (DatabaseError, 503),
)


# The refusals each route may answer, for the OpenAPI document.
def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        401: "no token, or an unknown or revoked one",
        403: "the token's role or subject may not do this",
        404: "no such thing",
        409: "refused by the rules: an illegal move, a stale version, outside its window",
        413: "the body, or the file in it, is larger than the limit the message names",
        422: "invalid input: the message names the field, the value and the fix",
        428: "the write must name the version it was decided on (If-Match)",
        503: "the database cannot be reached",
    }
    return {code: {"model": Error, "description": text[code]} for code in codes}


def status_of(exc: GongmoError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 422


class ApiWording(Wording):
    """The API names an input by its body field: "body field 'reason'"."""

    def name(self, field: str) -> str:
        return f"body field '{field}'"

    def given(self, field: str, shown: str) -> str:
        return f"body field '{field}' = {shown}"

    def example(self, field: str, text: str) -> str:
        return f'{{"{field}": {text}}}'


API = ApiWording()


def say(exc: GongmoError) -> str:
    """The error as the API words it: one line."""
    return " ".join(exc.say(API).split("\n"))


def _json(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GongmoError)
    status = status_of(exc)
    body: dict[str, Any] = {"error": say(exc)}
    if exc.field is not None:
        body |= {"field": exc.field, "value": _json(exc.value)}
    if isinstance(exc, IllegalMove):
        body |= {"application": exc.application, "state": exc.state, "trigger": exc.trigger, "allowed": exc.allowed}
    if isinstance(exc, OutsideWindow) and exc.opens:
        body |= {"opens": exc.opens, "closes": exc.closes}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it (see the schema at /docs)",
    "int_parsing": "send a whole number",
    "int_type": "send a whole number",
    "bool_parsing": "send true or false",
    "bool_type": "send true or false",
    "json_invalid": "send valid JSON",
    "string_pattern_mismatch": "use only the characters the schema allows",
    "string_type": "send a string",
    "enum": "use one of the listed values",
    "model_attributes_type": "send a JSON object",
    "dict_type": "send a JSON object",
}


def _http(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (no such route, wrong method, a body it cannot
    read) in the same shape as every other."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and "multipart" in request.headers.get("content-type", ""):
        text = "body: not valid multipart/form-data; send the file in the form field 'file'"
        return JSONResponse({"error": text}, status_code=422)
    if exc.status_code == 400:  # the body could not be parsed (e.g. not UTF-8)
        return JSONResponse({"error": "body: not valid UTF-8 JSON; send valid JSON"}, status_code=422)
    text = f"{exc.detail}: {request.method} {request.url.path} (see /docs)"
    return JSONResponse({"error": text}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            where = f" at character {err['loc'][1]}" if len(err.get("loc", ())) > 1 else ""
            detail = (err.get("ctx") or {}).get("error", "")
            message = f"body: invalid JSON{where}" + (f" ({detail})" if detail else "") + "; send valid JSON"
            problems.append({"field": "body", "in": "body", "message": message})
            continue
        loc = [str(p) for p in err.get("loc", ())]
        field = ".".join(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc) or "body"
        where = loc[0] if loc else "body"
        value = err.get("input")
        fix = FIXES.get(str(err.get("type")), "")
        shown = "" if err.get("type") == "missing" else f" = {_short(value)}"
        message = f"{where} field '{field}'{shown}: {err.get('msg', 'invalid')}" + (f"; {fix}" if fix else "")
        problems.append({"field": field, "in": where, "message": message})
    return JSONResponse({"error": "; ".join(p["message"] for p in problems), "errors": problems}, status_code=422)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    ref = uuid.uuid4().hex[:12]
    log.error("internal error %s on %s %s", ref, request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": f"internal error {ref}: nothing was changed by it; the daemon's log has the details"},
        status_code=500,
    )


def install(api: FastAPI) -> None:
    api.add_exception_handler(GongmoError, _domain)
    api.add_exception_handler(StarletteHTTPException, _http)
    api.add_exception_handler(RequestValidationError, _validation)
    api.add_exception_handler(Exception, _unexpected)
