"""Crash soak: 25 trials of kill -9 during uploads and during jobs, each followed by a restart.

Passes when nothing acknowledged is lost and everything finishes: every upload answered 201/200
is there with its sha256, every listed dataset downloads whole, no orphan file is left in the
blob or temp directories, and every job ends `succeeded`. Tiny data and one small budget keep
the 25 trials within the soak group's CI budget.
"""
from __future__ import annotations

import hashlib
import random
import threading
import time

import httpx
import pytest

from app.testing import ServiceProcess

pytestmark = [pytest.mark.slow, pytest.mark.soak]

TRIALS = 25
JOB_DATASETS = 3  # distinct jobs, killed again and again (the same request answers the same job)
JOB_BODY = {"budgets": [1e9]}

OCTET = {"content-type": "application/octet-stream"}  # raw uploads declare their type (CORS-safe)


class Uploader(threading.Thread):
    """Uploads a stream of small and larger payloads until told to stop; keeps what was acknowledged."""

    def __init__(self, url: str, rng: random.Random, acknowledged: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.rng, self.acknowledged = url, rng, acknowledged
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stopping.is_set():
                size = self.rng.choice([2_000, 30_000, 3_000_000])  # big ones are often cut mid-body
                data = self.rng.randbytes(size)
                try:
                    if self.rng.random() < 0.5:
                        response = client.post("/v1/datasets", content=data, headers=OCTET)
                    else:
                        response = client.post("/v1/datasets", files={"file": ("soak.bin", data)})
                except httpx.TransportError:
                    return  # the server was killed under us: the upload was never acknowledged
                if response.status_code in (200, 201):
                    self.acknowledged[response.json()["id"]] = hashlib.sha256(data).hexdigest()


def sha256_of_download(client: httpx.Client, dataset_id: str) -> str:
    response = client.get(f"/v1/datasets/{dataset_id}/content")
    assert response.status_code == 200, response.text
    return hashlib.sha256(response.content).hexdigest()


def list_all_datasets(client: httpx.Client) -> list[dict]:
    """Every dataset, page by page (a fast machine uploads more than one page holds)."""
    items: list[dict] = []
    while True:
        page = client.get("/v1/datasets", params={"limit": 500, "offset": len(items)}).json()
        items += page["items"]
        if len(items) >= page["total"] or not page["items"]:
            assert len(items) == page["total"]
            return items


def test_kill_nine_during_uploads_and_jobs_loses_nothing(tmp_path):
    rng = random.Random(2026)
    acknowledged: dict[str, str] = {}
    job_ids: set[str] = set()
    # The reaper's timeout is left long: recovery must come from re-queueing at start, not from it.
    service = ServiceProcess(tmp_path / "soak", workers=1, env={"EPIPLEX_STALE_AFTER_SECONDS": "300"})
    try:
        for trial in range(TRIALS):
            service.start()
            uploader = Uploader(service.url, rng, acknowledged)
            uploader.start()
            with httpx.Client(base_url=service.url, timeout=30) as client:
                if trial % 2:  # kill while a job runs
                    data = b"soak job %d " % (trial % JOB_DATASETS) * 400
                    dataset = client.post("/v1/datasets", content=data, headers=OCTET).json()
                    acknowledged[dataset["id"]] = hashlib.sha256(data).hexdigest()
                    job = client.post("/v1/jobs", json={"dataset_id": dataset["id"], **JOB_BODY}).json()
                    job_ids.add(job["id"])
                    # One worker: this job may wait behind another; either way a job is killed mid-run.
                    deadline = time.monotonic() + 60
                    while not client.get("/v1/jobs", params={"status": "running"}).json()["total"]:
                        if all(client.get(f"/v1/jobs/{j}").json()["status"] == "succeeded" for j in job_ids):
                            break  # every job is done already: this trial only kills uploads
                        assert time.monotonic() < deadline, service.log_tail()
                        time.sleep(0.05)
                    time.sleep(rng.uniform(0.0, 1.5))
                else:  # kill in the middle of uploads
                    time.sleep(rng.uniform(0.3, 1.2))
            service.kill()
            uploader.stopping.set()
            uploader.join(30)

        service.start()
        with httpx.Client(base_url=service.url, timeout=60) as client:
            deadline = time.monotonic() + 300
            for job_id in sorted(job_ids):
                while (job := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
                    assert time.monotonic() < deadline, service.log_tail()
                    time.sleep(0.2)
                assert job["status"] == "succeeded", job
            items = list_all_datasets(client)
            by_id = {item["id"]: item for item in items}
            assert len(by_id) == len(items)  # pages neither repeat nor skip
            for dataset_id, sha256 in acknowledged.items():
                assert by_id[dataset_id]["sha256"] == sha256
            for item in items:  # nothing half-written: every listed dataset downloads whole
                assert sha256_of_download(client, item["id"]) == item["sha256"]
        service.stop()
        blob_names = {path.name.removesuffix(".zst") for path in (service.data_dir / "blobs").glob("??/*.zst")}
        assert blob_names == {item["sha256"] for item in items}  # no orphan blob
        assert list((service.data_dir / "tmp").iterdir()) == []  # no leftover upload
        assert len(job_ids) == JOB_DATASETS and len(acknowledged) > TRIALS
    finally:
        service.kill()
