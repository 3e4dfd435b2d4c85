"""POST /v1/vet against a real server with no workers: the test plays the worker.

Jobs complete through `app.jobs.store`, the functions a real worker calls, with figures
chosen to sit on either side of the thresholds; the real training path is in test_vet_service.
"""
from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import func, select, update

from app.api.schemas import VetOut
from app.client import EpiplexClient
from app.core.models import Job, utcnow
from app.jobs import store
from app.testing import ServiceProcess

STRUCTURE = {"min_epiplexity_bits_per_byte": 0.01, "max_entropy_bits_per_byte": 7.5}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServiceProcess(tmp_path_factory.mktemp("vet-api"), workers=0) as service:
        yield service
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


def result(size: int, epiplexity_bpb: float, entropy_bpb: float, zstd_bpb: float) -> dict:
    """A result in the estimator's contract, read at its one budget."""
    point = {"budget_flops": 1e10, "epiplexity_bits": epiplexity_bpb * size, "entropy_bits": entropy_bpb * size,
             "epiplexity_bits_per_byte": epiplexity_bpb, "entropy_bits_per_byte": entropy_bpb,
             "model": {"params": 1000, "width": 32, "depth": 1, "context": 64}, "ci95": None}
    return {"epiplexity_bits": epiplexity_bpb * size, "entropy_bits": entropy_bpb * size,
            "epiplexity_bits_per_byte": epiplexity_bpb, "entropy_bits_per_byte": entropy_bpb, "curve": [point],
            "baselines": {"zstd_bits_per_byte": zstd_bpb, "lzma_bits_per_byte": zstd_bpb},
            "dataset": {"bytes": size, "tokens": size, "sha256": "0" * 64, "format": "bytes", "vocab_size": 256},
            "estimator": "prequential", "seeds": [0], "flops_spent": 1e10, "seconds": 1.0,
            "warnings": ["a warning from the estimator"], "version": "test", "preset": None}


def play_worker(sessions, job_id: str, outcome: dict | str) -> None:
    """Run the job as a worker would: complete it with `outcome`, or fail it with that reason."""
    claim = store.Claim(job_id, attempt=1, lease=1)
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(status="running", attempts=1, lease=1,
                                                                   heartbeat_at=utcnow()))
    if isinstance(outcome, dict):
        assert store.complete(sessions, claim, outcome, 1.0)
    else:
        assert store.fail_attempt(sessions, claim, outcome, max_attempts=1, retryable=False) == "failed"


def job_count(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Job))


def upload(http, data: bytes) -> dict:
    return http.post("/v1/datasets", params={"name": "vet"}, content=data,
                     headers={"content-type": "application/octet-stream"}).json()


def test_a_new_dataset_is_pending_with_its_job_then_judged_from_the_cached_result(http, sessions):
    dataset = upload(http, os.urandom(1000))
    body = {"dataset_id": dataset["id"], "budgets": [1e10], "thresholds": STRUCTURE}
    pending = http.post("/v1/vet", json=body)
    assert pending.status_code == 202
    out = VetOut.model_validate(pending.json())
    assert (out.status, out.passed, out.cached, out.job_status, out.checks) == ("pending", None, False, "queued", [])
    play_worker(sessions, out.job_id, result(1000, 0.0, 8.0, 8.0024))
    jobs_before = job_count(sessions)

    answer = http.post("/v1/vet", json=body)
    assert answer.status_code == 200
    out = VetOut.model_validate(answer.json())
    assert (out.status, out.passed, out.cached, out.job_id) == ("failed", False, True, pending.json()["job_id"])
    assert [(c.name, c.passed, c.measured, c.threshold) for c in out.checks] == [
        ("min-epiplexity", False, 0.0, 0.01), ("max-entropy", False, 8.0, 7.5)]
    assert out.figures.zstd_bits_per_byte == 8.0024 and out.figures.budget_flops == 1e10
    assert out.warnings == ["a warning from the estimator"]
    assert job_count(sessions) == jobs_before  # the cached answer queued nothing


def test_thresholds_change_the_verdict_without_a_new_job(http, sessions):
    dataset = upload(http, os.urandom(1001))
    body = {"dataset_id": dataset["id"], "budgets": [1e10], "thresholds": STRUCTURE}
    job_id = http.post("/v1/vet", json=body).json()["job_id"]
    play_worker(sessions, job_id, result(1001, 0.2, 3.1, 3.5))
    passed = http.post("/v1/vet", json=body).json()
    assert passed["status"] == "passed" and passed["passed"] is True
    stricter = http.post("/v1/vet", json=body | {"thresholds": {"max_zstd_ratio": 0.4}}).json()
    assert stricter["status"] == "failed" and stricter["job_id"] == job_id and stricter["cached"] is True
    check, = stricter["checks"]
    assert check["name"] == "max-zstd-ratio" and check["measured"] == pytest.approx(3.5 / 8)


def test_a_dataset_is_found_by_its_sha256_so_unchanged_data_is_not_uploaded_again(http, sessions):
    data = os.urandom(1002)
    sha = hashlib.sha256(data).hexdigest()
    unknown = http.post("/v1/vet", json={"sha256": sha, "thresholds": STRUCTURE})
    assert unknown.status_code == 404 and "upload it first" in unknown.json()["detail"]
    dataset = upload(http, data)
    by_hash = http.post("/v1/vet", json={"sha256": sha, "thresholds": STRUCTURE}).json()
    by_id = http.post("/v1/vet", json={"dataset_id": dataset["id"], "thresholds": STRUCTURE}).json()
    assert by_hash["dataset_id"] == dataset["id"] and by_hash["job_id"] == by_id["job_id"]


def test_wait_returns_the_verdict_once_the_job_ends(server, sessions):
    import threading

    with EpiplexClient(server.url) as client:
        dataset = client.upload(os.urandom(1003))
        body = {"dataset_id": dataset.id, "budgets": [1e10], "thresholds": STRUCTURE, "wait": 30}
        first = client.vet(body | {"wait": 0})
        worker = threading.Timer(1.0, play_worker, (sessions, first.job_id, result(1003, 0.3, 2.9, 3.4)))
        worker.start()
        out = client.vet(body)
        worker.join()
    assert out.status == "passed" and out.cached is False and out.job_id == first.job_id


def test_a_baseline_dataset_is_scored_under_the_same_settings_and_compared(http, sessions):
    accepted, candidate = upload(http, os.urandom(1004)), upload(http, os.urandom(1005))
    body = {"dataset_id": candidate["id"], "budgets": [1e10], "baseline_dataset_id": accepted["id"],
            "thresholds": {"max_epiplexity_drop_percent": 20, "max_entropy_rise_percent": 20}}
    pending = http.post("/v1/vet", json=body).json()
    assert pending["status"] == "pending" and pending["baseline_job_id"] not in (None, pending["job_id"])
    play_worker(sessions, pending["job_id"], result(1005, 0.1, 3.3, 3.5))
    assert http.post("/v1/vet", json=body).json()["status"] == "pending"  # the baseline is still running
    play_worker(sessions, pending["baseline_job_id"], result(1004, 0.2, 3.0, 3.5))
    out = http.post("/v1/vet", json=body).json()
    drop, rise = out["checks"]
    assert out["status"] == "failed" and out["cached"] is True
    assert (drop["name"], drop["passed"], drop["measured"]) == ("max-drop", False, pytest.approx(50.0))
    assert (drop["baseline_value"], drop["current_value"]) == (0.2, 0.1)
    assert (rise["name"], rise["passed"], rise["measured"]) == ("max-entropy-rise", True, pytest.approx(10.0))
    assert out["baseline"]["epiplexity_bits_per_byte"] == 0.2


def test_baseline_figures_can_be_sent_inline(http, sessions):
    dataset = upload(http, os.urandom(1006))
    body = {"dataset_id": dataset["id"], "budgets": [1e10], "thresholds": {"max_epiplexity_drop_percent": 10},
            "baseline": {"epiplexity_bits_per_byte": 0.25, "entropy_bits_per_byte": 3.0}}
    play_worker(sessions, http.post("/v1/vet", json=body).json()["job_id"], result(1006, 0.24, 3.0, 3.5))
    check, = http.post("/v1/vet", json=body).json()["checks"]
    assert check["passed"] and check["measured"] == pytest.approx(4.0)


def test_a_job_failing_while_the_request_waits_is_an_error_with_its_reason(server, sessions):
    import threading

    with EpiplexClient(server.url) as client:
        dataset = client.upload(os.urandom(1007))
        body = {"dataset_id": dataset.id, "budgets": [1e10], "thresholds": STRUCTURE}
        job_id = client.vet(body).job_id
        worker = threading.Timer(1.0, play_worker, (sessions, job_id, "data does not match its format: bad"))
        worker.start()
        out = client.vet(body | {"wait": 30})
        worker.join()
        assert (out.status, out.passed, out.job_status) == ("error", None, "failed")
        assert out.error == f"job {job_id} failed: data does not match its format: bad"
        # Asked again later, a failed job is queued again, as POST /v1/jobs does: a retry.
        again = client.vet(body)
    assert (again.status, again.job_status, again.job_id) == ("pending", "queued", job_id)


@pytest.mark.parametrize("body, needle", [
    ({"thresholds": STRUCTURE}, "exactly one of dataset_id and sha256"),
    ({"dataset_id": "ds_x", "thresholds": {}}, "set at least one"),
    ({"dataset_id": "ds_x", "thresholds": {"max_epiplexity_drop_percent": 5}}, "need baseline"),
    ({"dataset_id": "ds_x", "thresholds": {"max_entropy_bits_per_byte": -1}}, "greater than or equal to 0"),
    ({"dataset_id": "ds_x", "thresholds": {"max_entropy": 7}}, "Extra inputs are not permitted"),
    ({"dataset_id": "ds_x", "thresholds": STRUCTURE, "wait": 601}, "less than or equal to 600"),
    ({"dataset_id": "ds_x", "thresholds": STRUCTURE, "budgets": [-1]}, "positive"),
])
def test_invalid_requests_are_422_with_a_message(http, body, needle):
    answer = http.post("/v1/vet", json=body)
    assert answer.status_code == 422 and needle in answer.json()["detail"], answer.json()


def test_unknown_datasets_are_404(http):
    missing = http.post("/v1/vet", json={"dataset_id": "ds_missing", "thresholds": STRUCTURE})
    assert missing.status_code == 404 and "ds_missing" in missing.json()["detail"]
    dataset = upload(http, os.urandom(1008))
    missing = http.post("/v1/vet", json={"dataset_id": dataset["id"], "baseline_dataset_id": "ds_gone",
                                         "thresholds": {"max_epiplexity_drop_percent": 5}})
    assert missing.status_code == 404 and "baseline dataset 'ds_gone'" in missing.json()["detail"]


def test_the_cli_gives_up_after_its_timeout_and_a_later_run_reads_the_cached_verdict(server, sessions, tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "noise.bin").write_bytes(os.urandom(1009))
    command = [sys.executable, "-m", "app.cli", "vet", "noise.bin", "--server", server.url, "--budget", "1e10",
               "--min-epiplexity", "0.01", "--report", "vet.json"]
    waiting = subprocess.run(command + ["--timeout", "1"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert waiting.returncode == 2, waiting.stdout + waiting.stderr
    assert "no result within 1 s" in waiting.stdout and "run again later" in waiting.stdout
    job_id = json.loads((tmp_path / "vet.json").read_text())["datasets"][0]["job_id"]

    play_worker(sessions, job_id, result(1009, 0.0, 8.0, 8.0024))
    later = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert later.returncode == 1, later.stdout + later.stderr
    dataset, = json.loads((tmp_path / "vet.json").read_text())["datasets"]
    assert (dataset["job_id"], dataset["cached"], dataset["status"]) == (job_id, True, "failed")
    assert dataset["checks"][0]["measured"] == 0.0
