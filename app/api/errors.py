"""Error answers: one shape per kind, no raw echo of what the client sent, `Allow` on 405.

Every error body has a readable `detail` sentence. Validation errors (422) add `errors`: where
and what, without the offending input, which may be huge or (NaN, Infinity) not JSON at all.
"""
from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from app.core.errors import ServiceError, describe_problems

log = logging.getLogger("epiplex.api")

MAX_MESSAGE_CHARS = 300  # a message quoting a client's value quotes at most this much of it
MAX_LOC_PART_CHARS = 100


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _problem(error: dict) -> dict:
    loc = [part if isinstance(part, int) else clip(str(part), MAX_LOC_PART_CHARS) for part in error.get("loc", ())]
    message = "invalid JSON: " + str(error.get("ctx", {}).get("error", "")) \
        if error.get("type") == "json_invalid" else str(error.get("msg", "invalid"))
    return {"loc": loc, "msg": clip(message), "type": str(error.get("type", "value_error"))}


async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
    problems = [_problem(e) for e in error.errors()]
    return JSONResponse(status_code=422, content={
        "detail": clip(describe_problems(problems), 2000) or "invalid request", "errors": problems})


def error_body(status_code: int, detail: str) -> dict:
    """`{"detail"}`; a 422 also has `errors` (empty when the problem is not one field's), so that
    every 422 has the same shape."""
    body: dict = {"detail": clip(detail, 2000)}
    if status_code == 422:
        body["errors"] = []
    return body


async def refused(_request: Request, error: ServiceError) -> JSONResponse:
    return JSONResponse(status_code=error.status_code, content=error_body(error.status_code, error.detail),
                        headers=error.headers)  # e.g. Retry-After on a 429


async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """Starlette's errors in our shape; a 405 lists every method the path accepts, not just one route's."""
    if error.status_code == 405:
        allowed = allowed_methods(request)
        return JSONResponse(status_code=405, headers={"Allow": ", ".join(allowed)}, content={
            "detail": f"method {request.method} not allowed here; use {' or '.join(allowed)}"})
    if not isinstance(error.detail, str):
        return await http_exception_handler(request, error)
    return JSONResponse(status_code=error.status_code, content=error_body(error.status_code, error.detail),
                        headers=error.headers)


def allowed_methods(request: Request) -> list[str]:
    """Methods of every route whose path matches: the API's, read from its OpenAPI paths (routers
    are nested, so one route only knows its own method), and plain routes such as /docs."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= set(route.methods)
    for pattern, path_methods in _path_methods(request.app):
        if pattern.fullmatch(request.url.path):
            methods |= path_methods
    return sorted(methods)


def _path_methods(app: FastAPI) -> list[tuple[re.Pattern, set[str]]]:
    cached = getattr(app.state, "path_methods", None)
    if cached is None:
        cached = []
        for template, operations in app.openapi().get("paths", {}).items():
            pattern = re.compile(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)))
            cached.append((pattern, {method.upper() for method in operations}))
        app.state.path_methods = cached
    return cached


async def unexpected(request: Request, _error: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return JSONResponse(status_code=500, content={"detail": "internal error; see the server log"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ServiceError, refused)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
