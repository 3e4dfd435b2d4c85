"""The FastAPI application: routers per resource, error answers, limits, metrics, lifespan."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from app.auth.guard import AccessGuard
from app.auth.openapi import route_options
from app.api.routers import datasets, jobs, leaderboard, ops, panel, transfer, vet
from app.api.contract import contract_openapi
from app.api.errors import install_error_handlers
from app.api.limits import JsonBodyLimit
from app import web
from app.core.metrics import HttpMetrics, JobCollector, scrape_registry
from app.core.settings import Settings
from app.services import Services

DESCRIPTION = """Epiplex scores how much *learnable structure* (epiplexity, S_T) and how much
*unpredictable noise* (time-bounded entropy, H_T) a dataset holds for a compute-bounded learner.
Upload a dataset, queue a job, read the curve of S_T and H_T over compute budgets, compare on
the leaderboard. All figures are in **bits** (totals) or **bits per byte** of the upload."""


def create_app(settings: Settings | None = None, run_executor: bool = True, primary: bool = True,
               on_started: Callable[[], None] | None = None, on_stopping: Callable[[], None] | None = None) -> FastAPI:
    """The service as an ASGI app; starting it migrates the database and starts the executor.

    `primary=False` is an extra API process of a running service (`app.api.serving`): no
    executor, no migrations, no clean-up of the shared data directory. `on_started` runs once the
    services are up, `on_stopping` before they stop (the helper processes' start and stop)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        services = Services.start(settings, run_executor=run_executor, primary=primary)
        app.state.services = services
        app.state.scrape_registry = scrape_registry(app.state.metrics_registry)
        app.state.scrape_registry.register(JobCollector(services))
        if on_started:
            on_started()
        try:
            yield
        finally:
            if on_stopping:
                on_stopping()
            services.stop()

    # docs_url/redoc_url off: app.web serves /docs and /redoc with local assets (no CDN).
    app = FastAPI(title="Epiplex", version=_version(), description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.metrics_registry = CollectorRegistry()
    app.add_middleware(AccessGuard, settings=settings)
    app.add_middleware(HttpMetrics, registry=app.state.metrics_registry)
    app.add_middleware(JsonBodyLimit, max_bytes=settings.max_json_body_bytes)
    for module in (datasets, jobs, leaderboard, ops, panel, transfer, vet):
        app.include_router(module.router, **route_options(module.router))
    web.install(app)

    install_error_handlers(app)
    app.openapi = lambda: contract_openapi(app)
    return app


def _version() -> str:
    import estimators

    return estimators.__version__
