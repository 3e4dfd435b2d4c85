"""The pages under `/` (leaderboard, dataset, job, upload, vet), their static assets, and local API docs."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages, `/static` and `/docs` + `/redoc` (create the app with docs_url=redoc_url=None)."""
    from app.web import docs, pages
    from app.web.timing import ServerTiming

    app.add_middleware(ServerTiming)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
