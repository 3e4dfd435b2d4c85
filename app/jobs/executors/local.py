"""The local executor: each attempt runs in a freshly spawned worker process on this machine."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import Settings
from app.jobs.dispatcher import Dispatcher
from app.jobs.executors.base import worker_config
from app.jobs.store import Claim
from app.jobs.worker import WorkerConfig

STOP_GRACE_SECONDS = 5.0


def _process_main(claim: Claim, config: WorkerConfig, parent_pid: int) -> None:
    """Entry point of a spawned worker process."""
    from app.core.logs import setup_logging
    from app.jobs.worker import run_job

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


def _remove(attempt_file: Path) -> None:
    """Delete an attempt's copy of its data or its kept model's folder (`run_job`)."""
    if attempt_file.is_dir():
        shutil.rmtree(attempt_file, ignore_errors=True)
    else:
        attempt_file.unlink(missing_ok=True)


class LocalProcesses:
    """Up to `settings.workers` worker processes, each started fresh with the 'spawn' method.

    Spawn, never fork: a forked child of a process that has run torch inherits its thread
    pools in a broken state.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.config = worker_config(settings)
        self._context = multiprocessing.get_context("spawn")
        self._processes: dict[str, tuple[Claim, BaseProcess]] = {}
        self._lock = threading.Lock()

    def capacity(self) -> int:
        return self._settings.workers

    def launch(self, claim: Claim) -> int | None:
        process = self._context.Process(target=_process_main, name=f"epiplex-job-{claim.job_id}",
                                        args=(claim, self.config, os.getpid()))
        process.start()
        with self._lock:
            self._processes[claim.job_id] = (claim, process)
        return process.pid

    def running(self) -> list[Claim]:
        with self._lock:
            return [claim for claim, _ in self._processes.values()]

    def collect_exited(self) -> list[tuple[Claim, int | None]]:
        with self._lock:
            exited = [entry for entry in self._processes.values() if not entry[1].is_alive()]
            for claim, _ in exited:
                del self._processes[claim.job_id]
        for claim, process in exited:
            process.join()
            # This attempt's leftovers and those of earlier ones killed before they could clean
            # up (leases only grow); a newer attempt of the same job may be running.
            for leftover in self._settings.tmp_dir.glob(f"job-{claim.job_id}-*.*"):
                lease = leftover.name.removeprefix(f"job-{claim.job_id}-").split(".")[0]
                if lease.isdigit() and int(lease) <= claim.lease:
                    _remove(leftover)
        return [(claim, process.exitcode) for claim, process in exited]

    def terminate(self, job_id: str) -> None:
        with self._lock:
            entry = self._processes.get(job_id)
        if entry:
            entry[1].terminate()

    def shutdown(self) -> list[Claim]:
        with self._lock:
            running = list(self._processes.values())
            self._processes.clear()
        for _, process in running:
            process.terminate()
        for _, process in running:
            process.join(STOP_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        self.clear_attempt_files()
        return [claim for claim, _ in running]

    def clear_attempt_files(self) -> None:
        """Remove every attempt's files from tmp; only while none of our workers runs.

        Leftovers also come from workers that exited but were never collected: a job can end
        just before its server is killed or stopped."""
        for leftover in self._settings.tmp_dir.glob("job-*"):
            _remove(leftover)


class LocalExecutor(Dispatcher):
    """The shared claim/reap/cancel loop driving local worker processes."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        super().__init__("local", settings, factory, LocalProcesses(settings))

    def start(self) -> None:
        self._runners.clear_attempt_files()  # none runs yet: what is there is a dead server's
        super().start()
