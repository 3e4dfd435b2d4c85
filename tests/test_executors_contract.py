"""One contract for every executor: a job runs to its result, its progress never goes backwards,
cancel stops it, and a worker killed mid-job still ends in a result (the next attempt resumes).

The local executor runs attempts in spawned processes; the Ray executor runs them on a real local
Ray cluster (2 CPUs) that the session starts, its runs spread over Ray tasks. Each job is a
4-run sweep (the quick preset's model size x 4 seeds, at one budget of 1e10 FLOPs) on 16 KiB
so the module stays quick.
"""
from __future__ import annotations

import hashlib
import os
import random
import signal
import time

import pytest

from app.auth.access import Caller
from app.core.models import Dataset, Job
from app.core.settings import Settings
from app.jobs.service import cancel_job, submit_job
from app.jobs.settings import JobSettings
from app.services import Services

pytestmark = pytest.mark.slow
EXECUTORS = [pytest.param("local", id="local"), pytest.param("ray", id="ray", marks=pytest.mark.ray)]
DATA_BYTES = 16 << 10
TERMINAL = ("succeeded", "failed", "canceled")


@pytest.fixture(scope="module", params=EXECUTORS)
def services(request, tmp_path_factory):
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    settings = Settings(data_dir=tmp_path_factory.mktemp(f"contract-{request.param}"), executor=request.param,
                        workers=1, device="cpu", heartbeat_seconds=0.5, poll_seconds=0.1,
                        stale_after_seconds=120, ray_address="auto", ray_cpus_per_run=1)
    running = Services.start(settings)
    yield running
    running.stop()


def transformer_runs(result: dict) -> list[dict]:
    """The sweep's runs that depend on a seed (the count family's are made once per size)."""
    return [run for run in result["runs"] if run.get("family") == "transformer"]


def _dataset(services: Services, seed: int) -> str:
    """A learnable dataset (a noisy repeating pattern) stored through the service's blob store."""
    rng = random.Random(seed)
    data = bytes((i * 7 + rng.randrange(4)) % 256 for i in range(DATA_BYTES))
    writer = services.blobs.writer(len(data), keep_raw=False)
    try:
        writer.write(data)
        blob = writer.commit()
    finally:
        writer.close()
    dataset_id = f"ds_contract_{seed}"
    with services.sessions() as session:
        session.add(Dataset(id=dataset_id, sha256=blob.sha256, format="bytes", name=str(seed),
                            bytes=blob.bytes, stored_bytes=blob.stored_bytes))
        session.commit()
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    return dataset_id


def _submit(services: Services, dataset_id: str, settings: JobSettings = JobSettings(budgets=[1e10], seeds=4)) -> str:
    with services.sessions() as session:
        return submit_job(session, services, Caller(), dataset_id, settings).job.id


def _job(services: Services, job_id: str) -> Job:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def _wait(services: Services, job_id: str, until, timeout: float = 600.0) -> tuple[Job, list[float]]:
    """Poll the job until `until(job)`; returns it and every progress value seen on the way."""
    seen: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = _job(services, job_id)
        seen.append(job.progress)
        if until(job):
            return job, seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job.status} {job.progress} {job.message}")


def test_job_runs_to_its_result_and_progress_never_goes_backwards(services):
    dataset_id = _dataset(services, seed=1)
    job_id = _submit(services, dataset_id)
    job, seen = _wait(services, job_id, lambda j: j.status in TERMINAL)
    assert job.status == "succeeded", job.error
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert any(0 < p < 1 for p in seen)  # it reported progress on the way, not just at the end
    result = job.result
    assert result["seeds"] == [0, 1, 2, 3]
    assert sorted((r["seed"], r["model"]["width"]) for r in transformer_runs(result)) == [(s, 48) for s in range(4)]
    assert result["dataset"]["bytes"] == DATA_BYTES and result["epiplexity_bits"] > 0
    assert job.epiplexity_bits == result["epiplexity_bits"]


def test_a_job_of_one_family_makes_that_familys_runs_alone(services):
    job_id = _submit(services, _dataset(services, seed=4), JobSettings(budgets=[1e10], families=["context-mixing"]))
    job, _ = _wait(services, job_id, lambda j: j.status in TERMINAL)
    assert (job.status, job.families) == ("succeeded", ["context-mixing"]), job.error
    assert {run["family"] for run in job.result["runs"]} == {"context-mixing"}
    assert list(job.result["families"]) == ["context-mixing"]


def test_cancel_stops_a_running_job(services):
    job_id = _submit(services, _dataset(services, seed=2))
    _wait(services, job_id, lambda j: j.status == "running" and j.progress > 0)
    with services.sessions() as session:
        assert cancel_job(session, Caller(), job_id).status == "canceled"
    deadline = time.monotonic() + 60
    while job_id in services.executor.running_jobs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job_id not in services.executor.running_jobs()
    job = _job(services, job_id)
    assert job.status == "canceled" and job.result is None


def test_worker_killed_mid_job_still_ends_in_a_result(services):
    job_id = _submit(services, _dataset(services, seed=3))
    job, _ = _wait(services, job_id, lambda j: j.status in TERMINAL or (
        j.status == "running" and j.worker_pid and j.progress > 0.2))
    assert job.status == "running", f"the job ended ({job.status}) before it could be killed mid-way"
    os.kill(job.worker_pid, signal.SIGKILL)
    job, seen = _wait(services, job_id, lambda j: j.status in TERMINAL)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2  # the killed attempt counted, the next one resumed and finished
    assert seen == sorted(seen)
    assert len(transformer_runs(job.result)) == 4
