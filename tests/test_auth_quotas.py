"""Quotas and rate limits per key: going over answers 429 with Retry-After and a message naming
the limit; admin keys have none; nothing is stored or queued by a refused request."""
from __future__ import annotations

import os

import httpx
import pytest

from app.auth.cli import open_sessions
from app.auth.keys import create_key
from app.auth.quotas import planned_flops
from app.core.settings import Settings
from app.testing import ServiceProcess

RAW = {"content-type": "application/octet-stream"}
BUDGET = 1e12  # one budget, one seed: a job plans 1e12 FLOPs
LIMITS = {"EPIPLEX_QUOTA_STORED_BYTES": "10000", "EPIPLEX_QUOTA_ACTIVE_JOBS": "2",
          "EPIPLEX_QUOTA_FLOPS_PER_DAY": "2.5e12", "EPIPLEX_RATE_LIMIT": "20/minute"}
NAMES = ("bytes", "jobs", "flops", "rate", "admin")


@pytest.fixture(scope="module")
def as_(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("quotas")
    engine, sessions = open_sessions(Settings(data_dir=data_dir))
    with sessions() as session:
        secrets = {name: create_key(session, name, admin=name == "admin").secret for name in NAMES}
    engine.dispose()
    with ServiceProcess(data_dir, workers=0, env=LIMITS) as service:
        clients = {name: httpx.Client(base_url=service.url, timeout=30, headers={"Authorization": f"Bearer {s}"})
                   for name, s in secrets.items()}
        yield clients
        for client in clients.values():
            client.close()


def upload(client: httpx.Client, size: int) -> httpx.Response:
    return client.post("/v1/datasets", content=os.urandom(size), headers=RAW)


def job(client: httpx.Client, dataset_id: str, budget: float = BUDGET) -> httpx.Response:
    return client.post("/v1/jobs", json={"dataset_id": dataset_id, "budgets": [budget]})


def assert_429(response: httpx.Response, limit: str, min_retry: int, max_retry: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["detail"].startswith(limit), response.json()["detail"]
    assert min_retry <= int(response.headers["retry-after"]) <= max_retry


def test_the_stored_bytes_quota_refuses_an_upload_and_keeps_nothing(as_):
    assert upload(as_["bytes"], 6000).status_code == 201
    refused = upload(as_["bytes"], 6000)
    assert_429(refused, "stored-bytes quota: key 'bytes' keeps 6000 bytes", 3600, 3600)
    assert "10000 bytes (EPIPLEX_QUOTA_STORED_BYTES)" in refused.json()["detail"]
    assert as_["bytes"].get("/v1/datasets").json()["total"] == 1
    assert upload(as_["bytes"], 4000).status_code == 201  # exactly at the limit is fine
    assert upload(as_["admin"], 20000).status_code == 201  # admins have no quota


def test_the_active_jobs_quota_counts_queued_and_running_jobs(as_):
    ids = [upload(as_["jobs"], 100).json()["id"] for _ in range(3)]
    first, second = job(as_["jobs"], ids[0], 1e9), job(as_["jobs"], ids[1], 1e9)  # small: FLOPs stay in quota
    assert (first.status_code, second.status_code) == (202, 202)
    assert_429(job(as_["jobs"], ids[2], 1e9), "active-jobs quota: key 'jobs' has 2 queued or running jobs "
               "and this request queues 1", 60, 60)
    assert job(as_["jobs"], ids[0], 1e9).status_code == 200  # an existing job costs nothing
    assert as_["jobs"].post(f"/v1/jobs/{first.json()['id']}/cancel").status_code == 200
    # Transfer to two unscored targets would queue three jobs: none is queued, not the first one.
    targets = [upload(as_["jobs"], 100).json()["id"] for _ in range(2)]
    plan = {"dataset_id": ids[2], "budgets": [1e9], "transfer": targets}
    assert_429(as_["jobs"].post("/v1/jobs", json=plan), "active-jobs quota: key 'jobs' has 1 queued or running "
               "jobs and this request queues 3", 60, 60)
    assert as_["jobs"].get("/v1/jobs", params={"dataset_id": ids[2]}).json()["total"] == 0
    assert job(as_["jobs"], ids[2], 1e9).status_code == 202


def test_the_flops_per_day_quota_charges_every_queueing_in_24_hours(as_):
    ids = [upload(as_["flops"], 100).json()["id"] for _ in range(2)]
    first = job(as_["flops"], ids[0])
    assert first.status_code == 202
    assert as_["flops"].post(f"/v1/jobs/{first.json()['id']}/cancel").status_code == 200
    again = job(as_["flops"], ids[0])  # the canceled job queued again: charged again
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert as_["flops"].post(f"/v1/jobs/{first.json()['id']}/cancel").status_code == 200
    refused = job(as_["flops"], ids[1])
    # The oldest charge leaves the 24 h window in just under a day: that is when there is room again.
    assert_429(refused, "FLOPs-per-day quota: key 'flops' queued jobs planning 2e+12 FLOPs", 86000, 86400)
    assert "limit of 2.5e+12 (EPIPLEX_QUOTA_FLOPS_PER_DAY)" in refused.json()["detail"]
    assert as_["flops"].get("/v1/jobs", params={"dataset_id": ids[1]}).json()["total"] == 0


def test_the_request_rate_is_limited_per_key(as_):
    answers = [as_["rate"].get("/v1/leaderboard").status_code for _ in range(21)]
    assert answers[:20] == [200] * 20
    refused = as_["rate"].get("/v1/leaderboard")
    assert_429(refused, "rate limit: key 'rate' may make 20 per 1 minute requests", 1, 60)
    assert as_["admin"].get("/v1/leaderboard").status_code == 200  # other keys keep their own allowance


def test_planned_flops_are_every_budget_for_every_seed():
    assert planned_flops({"preset": None, "budgets": [1e10, 1e12], "seeds": 3}) == pytest.approx(3.03e12)
    assert planned_flops({"preset": "quick", "budgets": None, "seeds": 1}) == pytest.approx(1.111e12)
