"""The job function: score one attempt of one job with the real `estimators.estimate`, keep the
trained model, and measure transfer to the job's targets when it asks (`app.transfer.step`).

It knows nothing of which executor called it: the local executor runs it in a freshly
spawned process, a Ray executor would run it as a task. Everything it needs travels in a
picklable `WorkerConfig`; everything it reports goes to the job's row through `app.jobs.store`.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.db import make_engine, make_session_factory, session_scope
from app.core.models import Dataset, Job
from app.jobs import store
from app.jobs.store import Claim, JobLost
from app.storage import open_storage
from app.transfer.step import keep_model, measure_targets, model_file, reusable_scoring

log = logging.getLogger("epiplex.worker")

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
PROGRESS_WRITE_SECONDS = 0.5  # at most two progress writes a second per job


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to run a job, whichever process or machine it runs on."""

    database_url: str
    blob_dir: str
    tmp_dir: str
    state_dir: str
    threads: int
    device: str
    heartbeat_seconds: float
    max_attempts: int
    log_level: str = "INFO"
    blob_url: str | None = None  # s3://bucket/prefix when blobs live in object storage
    s3_endpoint_url: str | None = None


def cap_threads(threads: int) -> None:
    """Cap BLAS/OpenMP pools; must run before torch is first imported in this process."""
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)


class _Reporter:
    """Heartbeats and progress from a side thread, so a slow step never looks like a dead worker."""

    def __init__(self, factory, claim: Claim, heartbeat_seconds: float) -> None:
        self._factory, self._claim = factory, claim
        self._heartbeat_seconds = heartbeat_seconds
        self._latest: tuple[float, str] | None = None
        self._written: tuple[float, str] | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-reporter", daemon=True)

    def __enter__(self) -> _Reporter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def progress(self, fraction: float, message: str = "") -> None:
        """The estimator's progress callback; raises JobLost to unwind a job nobody wants."""
        if self.lost.is_set():
            raise JobLost()
        self._latest = (float(fraction), str(message))

    def _run(self) -> None:
        last_beat = 0.0
        while not self._stop.wait(PROGRESS_WRITE_SECONDS):
            latest = self._latest
            due = time.monotonic() - last_beat >= self._heartbeat_seconds
            if latest == self._written and not due:
                continue
            try:
                owned = store.heartbeat(self._factory, self._claim,
                                        *(latest if latest else (None, None)))
            except Exception:  # a locked or busy database: try again on the next tick
                log.warning("heartbeat failed", exc_info=True)
                continue
            self._written, last_beat = latest, time.monotonic()
            if not owned:
                self.lost.set()


def run_job(claim: Claim, config: WorkerConfig, score: Callable[..., Any] | None = None) -> str | None:
    """Run one attempt of a job to its end; returns the job's status afterwards (None if lost).

    `score` replaces `estimators.estimate` (same arguments and result), e.g. to spread the
    sweep's runs over a Ray cluster."""
    cap_threads(config.threads)
    import estimators  # torch-free until estimate() is called
    from estimators.data import DataFormatError

    score = score or estimators.estimate

    engine = make_engine(config.database_url)
    factory = make_session_factory(engine)
    blobs = open_storage(config.blob_url, Path(config.blob_dir), Path(config.tmp_dir), config.s3_endpoint_url)
    # Named by lease: a stale worker of the same job must not read or delete this attempt's copy.
    data_path = Path(config.tmp_dir) / f"job-{claim.job_id}-{claim.lease}.data"
    state_dir = Path(config.state_dir) / claim.job_id
    model_dir = Path(config.tmp_dir) / f"job-{claim.job_id}-{claim.lease}.model"  # kept in the store
    started = time.monotonic()
    try:
        with session_scope(factory) as session:
            job = session.get(Job, claim.job_id)
            dataset = session.get(Dataset, job.dataset_id) if job else None
        if job is None or dataset is None:
            return None
        log.info("job starting", extra={"job_id": job.id, "attempt": claim.attempt,
                                        "dataset_id": dataset.id, "threads": config.threads})
        # Scoring gets half the progress bar when transfer follows it, all of it otherwise.
        share = 0.5 if job.transfer else 1.0
        with _Reporter(factory, claim, config.heartbeat_seconds) as reporter:
            reused = reusable_scoring(factory, job, blobs, model_dir)
            if reused:
                result, model_path, scored_by, model = reused
                reporter.progress(share, f"scored by job {scored_by}; reusing its result and model")
            else:
                model_path = model_file(job)
                model = model_dir / Path(model_path).name
                model_dir.mkdir(parents=True, exist_ok=True)
                blobs.restore_to(dataset.sha256, data_path)
                state_dir.mkdir(parents=True, exist_ok=True)
                result = score(
                    str(data_path), format=dataset.format, preset=job.preset, budgets=job.budgets,
                    estimator=job.estimator, seeds=job.seeds, families=job.families, device=config.device,
                    progress=lambda f, m="": reporter.progress(f * share, m), state_dir=str(state_dir),
                    threads=config.threads, model_out=str(model)).to_dict()
                if model.is_file():
                    keep_model(blobs, model_path, model)
                else:  # no transformer run fitted the data: no model to keep
                    model_path = None
            if job.transfer:
                skipped = measure_targets(
                    factory, claim, job, model, result["seeds"][0], blobs,
                    Path(config.tmp_dir), config.device, config.threads,
                    lambda f, m: reporter.progress(share + f * (1 - share), m))
                result = {**result, "warnings": [*result.get("warnings", []), *skipped]}
        seconds = time.monotonic() - started
        if not store.complete(factory, claim, result, seconds, model_path=model_path):
            return None
        shutil.rmtree(state_dir, ignore_errors=True)  # the cached result replaces the saved steps
        log.info("job succeeded", extra={"job_id": job.id, "seconds": round(seconds, 3)})
        return "succeeded"
    except JobLost:
        log.info("job no longer ours; stopping", extra={"job_id": claim.job_id})
        return None
    except DataFormatError as error:  # the data will not change, so retrying cannot help
        return store.fail_attempt(factory, claim, f"the data cannot be scored: {error}",
                                  config.max_attempts, retryable=False)
    except Exception as error:
        log.exception("job attempt failed", extra={"job_id": claim.job_id, "attempt": claim.attempt})
        return store.fail_attempt(factory, claim, f"{type(error).__name__}: {error}", config.max_attempts)
    finally:
        data_path.unlink(missing_ok=True)
        shutil.rmtree(model_dir, ignore_errors=True)
        engine.dispose()
