"""Executors run queued jobs somewhere; `base` says what one is, `make_executor` picks one by name."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from app.core.settings import Settings
    from app.jobs.executors.base import Executor


def make_executor(settings: Settings, factory: sessionmaker[Session]) -> Executor:
    """The executor `settings.executor` names (local or ray), not yet started."""
    if settings.executor == "local":
        from app.jobs.executors.local import LocalExecutor

        return LocalExecutor(settings, factory)
    if settings.executor == "ray":
        from app.jobs.executors.ray import RayExecutor

        return RayExecutor(settings, factory)
    raise ValueError(f"unknown executor {settings.executor!r}; known: local, ray")
