"""LocalExecutor: runs each job in a freshly spawned worker process on this machine."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.process import BaseProcess

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import Job
from app.queue import store
from app.queue.base import Executor, worker_config
from app.queue.store import Claim
from app.settings import Settings
from app.worker import WorkerConfig

log = logging.getLogger("epiplex.executor")

STOP_GRACE_SECONDS = 5.0


def _process_main(claim: Claim, config: WorkerConfig, parent_pid: int) -> None:
    """Entry point of a spawned worker process."""
    from app.logs import setup_logging
    from app.worker import run_job

    setup_logging(config.log_level)
    # Ctrl-C in a terminal reaches the whole process group; the parent decides what happens to
    # jobs on shutdown (it hands them back to the queue), so workers leave SIGINT to it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    run_job(claim, config)


def _exit_with_parent(parent_pid: int) -> None:
    # An orphan would train on, unsupervised, beside the next server's workers; die instead and
    # let the reaper re-queue the job once the heartbeat goes stale.
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(3)


class LocalExecutor(Executor):
    """Up to `settings.workers` worker processes, each started fresh with the 'spawn' method.

    Spawn, never fork: a forked child of a process that has run torch inherits its thread
    pools in a broken state. A supervisor thread claims queued jobs, notices crashed workers
    (re-queueing their job at once), stops workers whose job was canceled, and reaps jobs
    whose heartbeat went stale (their worker died with a previous server).
    """

    name = "local"

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        self._settings = settings
        self._factory = factory
        self._config = worker_config(settings)
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[str, tuple[Claim, BaseProcess]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._supervise, name="local-executor", daemon=True)
        self._thread.start()
        log.info("local executor started", extra={"workers": self._settings.workers,
                                                  "threads_per_job": self._config.threads})

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def running_jobs(self) -> list[str]:
        with self._lock:
            return list(self._processes)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread:
            self._thread.join()
        with self._lock:
            running = list(self._processes.values())
            self._processes.clear()
        for claim, process in running:
            process.terminate()
        for claim, process in running:
            process.join(STOP_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
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
        while len(self._processes) < self._settings.workers and not self._stopping.is_set():
            claim = store.claim_next(self._factory)
            if claim is None:
                return
            process = self._context.Process(target=_process_main, name=f"epiplex-job-{claim.job_id}",
                                            args=(claim, self._config, os.getpid()))
            try:
                process.start()
            except Exception as error:
                store.fail_attempt(self._factory, claim, f"could not start worker: {error}",
                                   self._settings.max_attempts)
                raise
            with self._lock:
                self._processes[claim.job_id] = (claim, process)
            store.attach_worker(self._factory, claim, process.pid)
            log.info("worker started", extra={"job_id": claim.job_id, "attempt": claim.attempt,
                                              "worker_pid": process.pid})

    def _collect_exited(self) -> None:
        with self._lock:
            exited = [(job_id, entry) for job_id, entry in self._processes.items()
                      if not entry[1].is_alive()]
            for job_id, _ in exited:
                del self._processes[job_id]
        for job_id, (claim, process) in exited:
            process.join()
            code = process.exitcode
            for leftover in self._settings.tmp_dir.glob(f"job-{job_id}-*"):
                leftover.unlink(missing_ok=True)
            # A worker that ended normally has already written its outcome; this only changes
            # rows still marked running by this attempt, i.e. crashed workers.
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            status = store.fail_attempt(self._factory, claim, f"worker process {how}",
                                        self._settings.max_attempts)
            if status is not None:
                log.warning("worker crashed", extra={"job_id": job_id, "exitcode": code,
                                                     "job_status": status})

    def _stop_unowned(self) -> None:
        """Terminate workers whose job was canceled, deleted or taken over."""
        with self._lock:
            claims = [claim for claim, _ in self._processes.values()]
        if not claims:
            return
        with session_scope(self._factory) as session:
            rows = session.execute(select(Job.id, Job.attempts, Job.status)
                                   .where(Job.id.in_([c.job_id for c in claims]))).all()
        current = {job_id: (attempts, status) for job_id, attempts, status in rows}
        for claim in claims:
            # A worker that has just stored its success is exiting on its own: leave it be.
            if current.get(claim.job_id) not in ((claim.attempt, "running"), (claim.attempt, "succeeded")):
                with self._lock:
                    entry = self._processes.get(claim.job_id)
                if entry:
                    log.info("stopping worker of a job that is no longer running",
                             extra={"job_id": claim.job_id})
                    entry[1].terminate()
