"""The FastAPI application: routers per resource, one error shape, metrics, lifespan."""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from app.auth.guard import AccessGuard
from app.auth.openapi import route_options
from app.api.routers import datasets, jobs, leaderboard, ops, panel, transfer, vet
from app.core.errors import ServiceError, describe_problems
from app.core.metrics import HttpMetrics, JobCollector
from app.core.settings import Settings
from app.services import Services

log = logging.getLogger("epiplex.api")

DESCRIPTION = """Epiplex scores how much *learnable structure* (epiplexity, S_T) and how much
*unpredictable noise* (time-bounded entropy, H_T) a dataset holds for a compute-bounded learner.
Upload a dataset, queue a job, read the curve of S_T and H_T over compute budgets, compare on
the leaderboard. All figures are in **bits** (totals) or **bits per byte** of the upload."""


def create_app(settings: Settings | None = None, run_executor: bool = True) -> FastAPI:
    """The service as an ASGI app; starting it migrates the database and starts the executor."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = Services.start(settings, run_executor=run_executor)
        app.state.services = services
        app.state.metrics_registry.register(JobCollector(services))
        try:
            yield
        finally:
            services.stop()

    app = FastAPI(title="Epiplex", version=_version(), description=DESCRIPTION, lifespan=lifespan)
    app.state.metrics_registry = CollectorRegistry()
    app.add_middleware(AccessGuard, settings=settings)
    app.add_middleware(HttpMetrics, registry=app.state.metrics_registry)
    for module in (datasets, jobs, leaderboard, ops, panel, transfer, vet):
        app.include_router(module.router, **route_options(module.router))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        # One readable sentence in `detail` (like every other error), the pieces in `errors`.
        problems = error.errors()
        return JSONResponse(status_code=422, content={
            "detail": describe_problems(problems) or "invalid request",
            "errors": jsonable_encoder(problems, custom_encoder={Exception: str})})

    @app.exception_handler(ServiceError)
    async def refused(_request: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse(status_code=error.status_code, content={"detail": error.detail}, headers=error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _error: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(status_code=500, content={"detail": "internal error; see the server log"})

    return app


def _version() -> str:
    import estimators

    return estimators.__version__
