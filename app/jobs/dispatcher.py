"""The claim, reap and cancel loop every executor shares, apart from where the attempts run.

A `Dispatcher` claims queued jobs while its runners have room, fails the attempt of a runner that
ended without recording an outcome (re-queued until `max_attempts`), stops runners whose job was
canceled, deleted or taken over, and reaps jobs whose heartbeat went stale (their worker died
with a previous server). The `Runners` it is given own the processes (or tasks) themselves.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import session_scope
from app.core.models import Job
from app.core.settings import Settings
from app.jobs import store
from app.jobs.executors.base import Executor
from app.jobs.store import Claim

log = logging.getLogger("epiplex.executor")


class Runners(Protocol):
    """Where attempts run: start one per claim, say which ended and how, stop them."""

    def capacity(self) -> int:
        """How many attempts may run at once."""

    def launch(self, claim: Claim) -> int | None:
        """Start running the claimed attempt; returns its process id where it has one."""

    def running(self) -> list[Claim]:
        """The attempts started and not yet collected."""

    def collect_exited(self) -> list[tuple[Claim, int | None]]:
        """Attempts that ended since the last call, each with its exit code (negative: killed by that signal)."""

    def terminate(self, job_id: str) -> None:
        """Stop the attempt of this job (its row is no longer its own)."""

    def shutdown(self) -> list[Claim]:
        """Stop every attempt and wait for them; returns their claims."""


class Dispatcher(Executor):
    """Runs the loop in one supervisor thread, every `settings.poll_seconds`."""

    def __init__(self, name: str, settings: Settings, factory: sessionmaker[Session], runners: Runners) -> None:
        self.name = name
        self._settings = settings
        self._factory = factory
        self._runners = runners
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name=f"{self.name}-executor", daemon=True)
        self._thread.start()
        log.info(f"{self.name} executor started", extra={"workers": self._runners.capacity()})

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def running_jobs(self) -> list[str]:
        return [claim.job_id for claim in self._runners.running()]

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join()
        for claim in self._runners.shutdown():
            # Not the job's fault: the attempt does not count. (No-op if the worker finished first.)
            if store.release(self._factory, claim):
                log.info("job handed back to the queue", extra={"job_id": claim.job_id})

    def _supervise(self) -> None:
        last_reap = 0.0
        while not self._stopping.is_set():
            try:
                self._collect_exited()
                self._stop_unowned()
                if time.monotonic() - last_reap >= self._settings.heartbeat_seconds:
                    last_reap = time.monotonic()
                    for job_id in store.reap_stale(self._factory, self._settings.stale_after_seconds,
                                                   self._settings.max_attempts):
                        log.warning("stale job reaped", extra={"job_id": job_id})
                self._fill_slots()
            except Exception:  # the supervisor must outlive a busy database or a failed spawn
                log.exception("executor tick failed")
            self._stopping.wait(self._settings.poll_seconds)

    def _fill_slots(self) -> None:
        while len(self._runners.running()) < self._runners.capacity() and not self._stopping.is_set():
            claim = store.claim_next(self._factory)
            if claim is None:
                return
            try:
                pid = self._runners.launch(claim)
            except Exception as error:
                store.fail_attempt(self._factory, claim, f"could not start worker: {error}",
                                   self._settings.max_attempts)
                raise
            if pid is not None:
                store.attach_worker(self._factory, claim, pid)
            log.info("worker started", extra={"job_id": claim.job_id, "attempt": claim.attempt,
                                              "worker_pid": pid})

    def _collect_exited(self) -> None:
        for claim, code in self._runners.collect_exited():
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            # A worker that ended normally has already written its outcome; this only changes
            # rows still marked running by this attempt, i.e. crashed workers.
            status = store.fail_attempt(self._factory, claim, f"worker process {how}",
                                        self._settings.max_attempts)
            if status is not None:
                log.warning("worker crashed", extra={"job_id": claim.job_id, "exitcode": code,
                                                     "job_status": status})

    def _stop_unowned(self) -> None:
        """Terminate runners whose job was canceled, deleted or taken over."""
        claims = self._runners.running()
        if not claims:
            return
        with session_scope(self._factory) as session:
            rows = session.execute(select(Job.id, Job.attempts, Job.status)
                                   .where(Job.id.in_([c.job_id for c in claims]))).all()
        current = {job_id: (attempts, status) for job_id, attempts, status in rows}
        for claim in claims:
            # A worker that has just stored its success is exiting on its own: leave it be.
            if current.get(claim.job_id) not in ((claim.attempt, "running"), (claim.attempt, "succeeded")):
                log.info("stopping worker of a job that is no longer running", extra={"job_id": claim.job_id})
                self._runners.terminate(claim.job_id)
