"""End to end: the real server, real worker processes and the real estimators on tiny files.

Each test starts `epiplex serve` on a free loopback port with a temp data dir. Files are
32 KiB and jobs use the `quick` preset so the whole module stays within a CI budget.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from app.testing import ServiceProcess, process_alive

pytestmark = pytest.mark.slow

SIZE = 32 * 1024
JOB_TIMEOUT = 300


def random_bytes(seed: int) -> bytes:
    import random

    return random.Random(seed).randbytes(SIZE)


def job_row(data_dir: Path, job_id: str) -> dict:
    """The job's durable row, read straight from the database as an operator would."""
    with sqlite3.connect(data_dir / "epiplex.db", timeout=30) as connection:
        connection.row_factory = sqlite3.Row
        return dict(connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())


def wait_for(condition, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def test_random_bytes_score_as_noise_and_reach_the_leaderboard(tmp_path):
    data = random_bytes(1)
    with ServiceProcess(tmp_path, workers=1) as server, server.client() as client:
        dataset = client.upload(data, name="random-32k")
        job = client.create_job(dataset.id, preset="quick")
        with httpx.stream("GET", f"{server.url}/v1/jobs/{job.id}/events", timeout=JOB_TIMEOUT) as events:
            stream = "".join(events.iter_text())
        assert "event: progress" in stream and stream.rstrip().split("\n\n")[-1].startswith("event: succeeded")

        job = client.get_job(job.id)
        assert job.status == "succeeded", job.error
        result = job.result
        # Calibration: uniform random bytes hold no learnable structure and 8 bits of noise per byte.
        assert abs(result["entropy_bits_per_byte"] - 8.0) <= 0.02 * 8.0, result["entropy_bits_per_byte"]
        assert result["epiplexity_bits_per_byte"] < 0.05, result["epiplexity_bits_per_byte"]
        assert result["dataset"]["sha256"] == dataset.sha256 and result["dataset"]["bytes"] == SIZE
        assert result["preset"] == "quick" and result["baselines"]["zstd_bits_per_byte"] > 7.9
        assert job.progress == 1.0 and job.attempts == 1 and job.seconds > 0

        # Same dataset, same settings: the same job with its cached result, at once.
        again = client.create_job(dataset.id, preset="quick")
        assert again.id == job.id and again.result == result

        board = client.leaderboard()
        entry = next(e for e in board.items if e.dataset_id == dataset.id)
        assert (entry.job_id, entry.name, entry.bytes) == (job.id, "random-32k", SIZE)
        assert entry.entropy_bits_per_byte == result["entropy_bits_per_byte"]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'epiplex_jobs{status="succeeded"} 1.0' in metrics
        assert "epiplex_job_seconds_count 1.0" in metrics

        # One family alone is a job of its own, scored by that family only; the headline keeps
        # the result of every family.
        counting = client.create_job(dataset.id, preset="quick", families=["context-mixing"])
        counting = client.wait(counting.id, timeout=JOB_TIMEOUT)
        assert (counting.status, counting.families) == ("succeeded", ["context-mixing"]), counting.error
        assert counting.id != job.id and list(counting.result["families"]) == ["context-mixing"]
        assert {run["family"] for run in counting.result["runs"]} == {"context-mixing"}
        assert next(e for e in client.leaderboard().items if e.dataset_id == dataset.id).job_id == job.id

        # Too little data for the preset: failed at once, not retried, saying what to give.
        tiny = client.create_job(client.upload(data[:100], name="tiny").id, preset="quick")
        tiny = client.wait(tiny.id, timeout=JOB_TIMEOUT)
        assert (tiny.status, tiny.attempts) == ("failed", 1)
        assert tiny.error == ("the data cannot be scored: the dataset is too small to train any model "
                              "of the preset: give at least 256 tokens (transformer 513, "
                              "context-mixing 256)")


def test_worker_killed_mid_job_is_rerun_to_success_and_upload_is_intact(tmp_path):
    data = random_bytes(2)
    with ServiceProcess(tmp_path, workers=1) as server, server.client() as client:
        dataset = client.upload(data, name="crash")
        job = client.create_job(dataset.id, preset="quick")
        # Mid-job: one training run of the sweep is finished and saved, the next one is going.
        saved = wait_for(lambda: sorted((tmp_path / "state" / job.id).glob("run-*.json")), 120, "a saved run")
        row = job_row(tmp_path, job.id)
        assert (row["status"], row["attempts"]) == ("running", 1) and row["progress"] < 1, row
        os.kill(row["worker_pid"], signal.SIGKILL)
        saved_run = json.loads(saved[0].read_text())

        finished = client.wait(job.id, timeout=JOB_TIMEOUT)
        assert finished.status == "succeeded", finished.error
        assert finished.attempts == 2, finished
        # The re-run resumed: the run saved by the killed attempt is in the result, not re-trained.
        runs = [(r["model"], r["seconds"]) for r in finished.result["runs"]]
        assert (saved_run["model"], saved_run["seconds"]) in runs, (saved_run, runs)
        assert '"message": "worker crashed"' in server.log_path.read_text()
        assert '"exitcode": -9' in server.log_path.read_text()
        assert client.download(dataset.id) == data
        assert client.get_dataset(dataset.id).sha256 == dataset.sha256


def test_job_queued_when_server_stops_runs_after_restart(tmp_path):
    data = random_bytes(3)
    with ServiceProcess(tmp_path, workers=0) as server, server.client() as client:
        dataset = client.upload(data, name="restart")
        job = client.create_job(dataset.id, preset="quick")
        assert job.status == "queued"
    with ServiceProcess(tmp_path, workers=1) as server, server.client() as client:
        finished = client.wait(job.id, timeout=JOB_TIMEOUT)
        assert finished.status == "succeeded", finished.error
        assert client.download(dataset.id) == data


def test_server_killed_mid_job_resumes_after_restart(tmp_path):
    data = random_bytes(4)
    server = ServiceProcess(tmp_path, workers=1).start()
    try:
        with server.client() as client:
            dataset = client.upload(data, name="power-cut")
            job = client.create_job(dataset.id, preset="quick")
        row = wait_for(lambda: (r := job_row(tmp_path, job.id))["worker_pid"] and r, 60, "a worker to start")
        server.kill()  # SIGKILL: no chance to hand the job back
        # The orphaned worker notices its parent is gone and exits rather than train unsupervised.
        wait_for(lambda: not process_alive(row["worker_pid"]), 10, "the orphaned worker to exit")
    finally:
        server.kill()
    with ServiceProcess(tmp_path, workers=1) as server, server.client() as client:
        finished = client.wait(job.id, timeout=JOB_TIMEOUT)
        assert finished.status == "succeeded", finished.error
        # Re-queued at start (app.jobs.recovery), not by the reaper; the server's death is not the
        # job's fault, so the killed attempt does not count.
        assert finished.attempts == 1
        assert client.download(dataset.id) == data
