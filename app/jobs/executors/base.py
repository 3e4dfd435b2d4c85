"""What an executor is: something that takes queued jobs from the store and runs `app.jobs.worker.run_job`.

An executor owns *where* jobs run (local processes, a Ray cluster); the rows in the database
own *what* state they are in. Most executors are an `app.jobs.dispatcher.Dispatcher` (the shared
claim, reap and cancel loop) driving their own `Runners`; `app.jobs.executors.make_executor`
picks one by `settings.executor`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from app.core.settings import Settings
from app.jobs.worker import WorkerConfig


class Executor(ABC):
    """Runs queued jobs until stopped."""

    name: str = "executor"

    @abstractmethod
    def start(self) -> None:
        """Begin taking jobs from the queue (returns at once)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop taking jobs; running ones go back to the queue so nothing is lost."""

    @abstractmethod
    def is_alive(self) -> bool:
        """True while the executor is taking jobs."""

    @abstractmethod
    def running_jobs(self) -> list[str]:
        """Ids of the jobs this executor is running now."""


def worker_config(settings: Settings) -> WorkerConfig:
    """The WorkerConfig every executor hands to `run_job`, built from the service settings."""
    settings.ensure_dirs()
    return WorkerConfig(
        database_url=settings.resolved_database_url,
        blob_dir=str(settings.blob_dir.resolve()), tmp_dir=str(settings.tmp_dir.resolve()),
        state_dir=str(settings.state_dir.resolve()),
        threads=settings.threads_per_job(),
        device=settings.device, heartbeat_seconds=settings.heartbeat_seconds,
        max_attempts=settings.max_attempts, log_level=settings.log_level,
        blob_url=settings.blob_url, s3_endpoint_url=settings.s3_endpoint_url)
