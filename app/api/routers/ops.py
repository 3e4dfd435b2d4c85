"""Operations: liveness, readiness and Prometheus metrics."""
from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep
from app.api.schemas import Health
from app.core.db import head_revision, schema_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up and answering. Touches no database and, being async, runs on the event
    loop itself: it never queues behind routes that hold the thread pool busy with queries."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(services: ServicesDep) -> JSONResponse:
    """Ready to take work: the database answers at the newest schema and the executor runs."""
    detail: dict = {}
    try:
        with services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        detail["schema"] = schema_revision(services.engine)
        schema_ok = detail["schema"] == head_revision()
    except Exception as error:
        detail["database"] = f"unavailable: {error}"
        schema_ok = False
    executor = services.executor
    if executor:
        detail["executor"] = executor.name if executor.is_alive() else "stopped"
    elif not services.primary and services.settings.workers > 0:  # this helper lives only as long as it
        detail["executor"] = f"{services.settings.executor}, in the first API process (pid {os.getppid()})"
    else:
        detail["executor"] = "none (workers=0)"
    ok = schema_ok and (executor is None or executor.is_alive())
    return JSONResponse(Health(status="ok" if ok else "unavailable", detail=detail).model_dump(),
                        status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    body = await run_in_threadpool(generate_latest, request.app.state.scrape_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
