"""The Ray executor: each attempt of a job is a Ray task, and each run of its sweep (model size x
seed) is a Ray task of its own with a resource request, so one job spreads over the cluster.

    API process (Dispatcher)          claim / reap / cancel loop, as for local processes
      -> drive_job task (0 CPUs)      heartbeats, then `run_job` with a fanned-out `score`:
           -> train_run task x N      one run each (CPUs; a GPU where the cluster has one)
           -> `estimate` on the saved runs, which reloads them all: the same result as one machine

Saved runs live in the blob store under `objects/runs/JOB_ID/` (S3 in a cluster), never on a
node's disk, so a retried run task or a new attempt on another node resumes from them. A run
task killed with its worker is retried by Ray (`RUN_RETRIES`); a killed driver fails the
attempt, the dispatcher re-queues it, and the next attempt skips every run already saved.
The API process only talks to Ray; torch is imported in Ray's worker processes alone.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.core.settings import Settings
from app.jobs.dispatcher import Dispatcher
from app.jobs.executors.base import worker_config
from app.jobs.store import Claim
from app.jobs.worker import WorkerConfig

log = logging.getLogger("epiplex.executor.ray")

RUN_RETRIES = 2  # a run whose worker process died is started again this many times
STOP_GRACE_SECONDS = 5.0
ASSEMBLY_SHARE = 0.95  # progress at which all runs are done and the result is assembled


def runs_prefix(job_id: str) -> str:
    return f"runs/{job_id}"


def _storage(config: WorkerConfig):
    from app.storage import open_storage

    return open_storage(config.blob_url, Path(config.blob_dir), Path(config.tmp_dir), config.s3_endpoint_url)


def train_run(config: WorkerConfig, job_id: str, sha256: str, index: int, options: dict) -> str:
    """Ray task: make run `index` of the job's sweep and save it to the blob store; returns its file.

    The dataset is downloaded (sha-checked) to a local temp file for memory-mapped training."""
    from app.jobs.worker import cap_threads

    cap_threads(config.threads)
    from estimators.runs import make_run

    blobs = _storage(config)
    work = Path(config.tmp_dir) / f"ray-run-{job_id}-{index}-{uuid.uuid4().hex[:8]}"
    state = work / "state"
    try:
        work.mkdir(parents=True)
        before = set(blobs.get_objects(runs_prefix(job_id), state))  # a retry reloads saved runs
        data_path = blobs.restore_to(sha256, work / "data")
        make_run(str(data_path), index, state_dir=state, threads=config.threads, **options)
        made = sorted(p.name for p in state.glob("run-*") if p.name not in before and p.suffix in (".json", ".pt"))
        for name in made:
            blobs.put_object(f"{runs_prefix(job_id)}/{name}", state / name)
        return ",".join(made)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class FannedOutScore:
    """`estimators.estimate` with the runs made by `train_run` tasks; called by `run_job` in the
    driver task with estimate's own arguments."""

    def __init__(self, config: WorkerConfig, job_id: str, sha256: str, cpus_per_run: float) -> None:
        self._config, self._job_id, self._sha256 = config, job_id, sha256
        self._cpus = cpus_per_run

    def __call__(self, data_path: str, *, progress, state_dir: str, model_out: str | None = None,
                 threads: int | None = None, device: str = "auto", **options: Any):
        import ray

        import estimators
        from estimators.runs import kept_run, sweep_runs

        runs = sweep_runs(data_path, **options)
        gpus = 1 if device != "cpu" and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        run_device = "cuda" if gpus else "cpu"
        keep = kept_run(runs, options.get("seed", 0)) if model_out else None
        task, resources = ray.remote(train_run), {"num_cpus": self._cpus, "num_gpus": gpus}
        config = _with_threads(self._config, max(1, int(self._cpus)))
        longest_first = sorted(range(len(runs)), key=lambda index: -runs[index]["work"])
        pending = {task.options(**resources, **run_resources(runs[index]), max_retries=RUN_RETRIES).remote(
                       config, self._job_id, self._sha256, index,
                       {**options, "device": run_device, "keep_model": index == keep}): index
                   for index in longest_first}
        try:
            done = 0
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    ray.get(ref)  # a run that failed (after its retries) fails the attempt
                    del pending[ref]
                    done += 1
                # Also a liveness check: raises JobLost once the job was canceled or taken over.
                progress(ASSEMBLY_SHARE * done / max(1, len(runs)), f"{done} of {len(runs)} runs done")
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
        _storage(self._config).get_objects(runs_prefix(self._job_id), Path(state_dir))
        return estimators.estimate(
            data_path, progress=lambda f, m="": progress(ASSEMBLY_SHARE + (1 - ASSEMBLY_SHARE) * f, m),
            state_dir=state_dir, model_out=model_out, threads=threads, device="cpu", **options)


def run_resources(run: dict) -> dict:
    """Ray resources a run asks for beyond its CPUs: a count-family run's memory (its tables
    reach hundreds of MiB), so that Ray does not put more of them on a node than its RAM holds."""
    return {"memory": run["memory"]} if run["memory"] else {}


def _with_threads(config: WorkerConfig, threads: int) -> WorkerConfig:
    from dataclasses import replace

    return replace(config, threads=threads)


def drive_job(claim: Claim, config: WorkerConfig, cpus_per_run: float) -> str | None:
    """Ray task: one attempt of a job, its runs fanned out as tasks; returns the job's status."""
    from sqlalchemy import select

    from app.core.db import make_engine, make_session_factory, session_scope
    from app.core.logs import setup_logging
    from app.core.models import Dataset, Job
    from app.jobs import store
    from app.jobs.worker import run_job

    setup_logging(config.log_level)
    engine = make_engine(config.database_url)
    try:
        factory = make_session_factory(engine)
        store.attach_worker(factory, claim, os.getpid())  # where to look (or what to kill) for this job
        with session_scope(factory) as session:
            sha256 = session.scalar(select(Dataset.sha256).join(Job, Job.dataset_id == Dataset.id)
                                    .where(Job.id == claim.job_id))
    finally:
        engine.dispose()
    if sha256 is None:
        return None
    status = run_job(claim, config, score=FannedOutScore(config, claim.job_id, sha256, cpus_per_run))
    if status == "succeeded":  # the cached result replaces the saved runs
        _storage(config).delete_objects(runs_prefix(claim.job_id))
    return status


class RayTasks:
    """The dispatcher's runners on a Ray cluster: one `drive_job` task per running attempt."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.config = worker_config(settings)
        self._tasks: dict[str, tuple[Claim, Any]] = {}
        self._lock = threading.Lock()

    def capacity(self) -> int:
        return self._settings.workers

    def launch(self, claim: Claim) -> int | None:
        import ray

        # The driver mostly waits; it takes no CPU so that the runs get every core.
        driver = ray.remote(drive_job).options(num_cpus=0, max_retries=0, name=f"epiplex-job-{claim.job_id}")
        ref = driver.remote(claim, self.config, self._settings.ray_cpus_per_run)
        with self._lock:
            self._tasks[claim.job_id] = (claim, ref)
        return None  # the driver records its own pid, on whichever node it runs

    def running(self) -> list[Claim]:
        with self._lock:
            return [claim for claim, _ in self._tasks.values()]

    def collect_exited(self) -> list[tuple[Claim, int | None]]:
        import ray

        with self._lock:
            entries = list(self._tasks.values())
        if not entries:
            return []
        ready, _ = ray.wait([ref for _, ref in entries], num_returns=len(entries), timeout=0)
        exited = []
        for claim, ref in entries:
            if ref in ready:
                exited.append((claim, _exit_code(ref)))
                with self._lock:
                    self._tasks.pop(claim.job_id, None)
        return exited

    def terminate(self, job_id: str) -> None:
        import ray

        with self._lock:
            entry = self._tasks.get(job_id)
        if entry:
            ray.cancel(entry[1], force=True, recursive=True)

    def shutdown(self) -> list[Claim]:
        import ray

        with self._lock:
            entries = list(self._tasks.values())
            self._tasks.clear()
        for _, ref in entries:
            ray.cancel(ref, force=True, recursive=True)
        if entries:
            ray.wait([ref for _, ref in entries], num_returns=len(entries), timeout=STOP_GRACE_SECONDS)
        return [claim for claim, _ in entries]


def _exit_code(ref) -> int:
    """0 when the driver returned, -9 when its worker process died or it was canceled, 1 otherwise."""
    import ray
    from ray.exceptions import TaskCancelledError, WorkerCrashedError

    try:
        ray.get(ref, timeout=0)
        return 0
    except (WorkerCrashedError, TaskCancelledError):
        return -9
    except ray.exceptions.RayError:
        return 1


class RayExecutor(Dispatcher):
    """The shared claim/reap/cancel loop driving Ray tasks on the cluster at `settings.ray_address`."""

    def __init__(self, settings: Settings, factory: sessionmaker[Session]) -> None:
        super().__init__("ray", settings, factory, RayTasks(settings))

    def start(self) -> None:
        connect(self._settings.ray_address)
        super().start()


def connect(address: str) -> None:
    """Join the cluster at `address` (auto, ray://HOST:PORT, HOST:PORT), or start a private one
    for `local`; a no-op when this process is already connected."""
    import ray

    if ray.is_initialized():
        return
    if address == "local":
        ray.init(include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    log.info("connected to ray", extra={"address": address, "resources": ray.cluster_resources()})

