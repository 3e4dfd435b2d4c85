"""End to end: transfer through the real server, real worker processes and real training.

A Markov source is scored with transfer to a second sample of the same source and to unrelated
data; a later transfer request reuses the source's kept model instead of training it again.
Files are 16-32 KiB and the source is scored at one small budget, so the module stays quick.
"""
from __future__ import annotations

import json

import httpx
import pytest

from app.testing import ServiceProcess
from estimators import synthetic

pytestmark = pytest.mark.slow

SOURCE = synthetic.MarkovSource(order=1, alphabet=16, seed=11)
UNRELATED = synthetic.MarkovSource(order=1, alphabet=16, seed=12)
BUDGETS = [1e10]
JOB_TIMEOUT = 300


def wait_all(client, timeout: float = JOB_TIMEOUT) -> None:
    for job in client.list_jobs(limit=500).items:
        finished = client.wait(job.id, timeout=timeout)
        assert finished.status == "succeeded", finished.error


def test_shared_structure_transfers_more_than_unrelated_data_and_the_model_is_reused(tmp_path):
    with ServiceProcess(tmp_path, workers=1, env={"EPIPLEX_PANEL_BYTES": "4096"}) as server, \
            server.client() as client:
        source = client.upload(SOURCE.sample(32 * 1024, seed=1), name="markov-a")
        same = client.upload(SOURCE.sample(16 * 1024, seed=2), name="markov-a-again")
        unrelated = client.upload(UNRELATED.sample(16 * 1024, seed=3), name="markov-b")

        job = client.create_job(source.id, budgets=BUDGETS, transfer=[same.id, unrelated.id])
        assert job.transfer == {"targets": sorted([same.id, unrelated.id]), "preset": "quick"}
        # The targets are queued for scoring with the same settings: predictions need their figures.
        queued = {j.dataset_id: j for j in client.list_jobs().items}
        assert set(queued) == {source.id, same.id, unrelated.id}
        assert queued[same.id].transfer is None and queued[same.id].budgets == BUDGETS
        with httpx.stream("GET", f"{server.url}/v1/jobs/{job.id}/events", timeout=JOB_TIMEOUT) as events:
            progress = [json.loads(line[len("data: "):]) for line in events.iter_lines()
                        if line.startswith("data: ")]
        # Progress only moves forward, through the transfer step too (scoring fills the first half;
        # the events sample it twice a second, so a quick step may show no event of its own).
        fractions = [p["progress"] for p in progress]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, progress
        during = [p for p in progress if (p["message"] or "").startswith("transfer to ")]
        assert all(0.5 <= p["progress"] < 1 for p in during), progress
        job = client.get_job(job.id)
        assert job.status == "succeeded", job.error
        assert server.log_path.read_text().count('"message": "transfer measured"') == 2
        assert job.progress == 1.0 and job.result["epiplexity_bits_per_byte"] > 0
        wait_all(client)

        report = client.dataset_transfer(source.id)
        rows = {row.target_dataset_id: row for row in report.measured}
        assert set(rows) == {same.id, unrelated.id}
        near, far = rows[same.id], rows[unrelated.id]
        assert near.transfer_bits > 0 and near.transfer_bits_per_byte > 0.05, near
        assert near.transfer_bits_per_byte > far.transfer_bits_per_byte, (near, far)
        assert near.warm_start_bits == pytest.approx(near.scratch_code_bits - near.transfer_code_bits)
        assert near.transfer_bits == pytest.approx(near.warm_start_bits - 1.0)  # the mixture's one bit
        assert near.model["family"] == "transformer"
        assert near.transfer_bits_per_byte == pytest.approx(near.transfer_bits / near.target_bytes_coded)
        assert (near.preset, near.seed, near.job_id, near.target_name) == ("quick", 0, job.id, "markov-a-again")
        assert near.budget_flops > 0 and near.model["params"] > 0
        # Two pairs are far too few to learn from: the service says so instead of guessing.
        assert report.predictor.pairs == 2 and not report.predictor.ready
        assert "too few measured pairs" in report.predictor.message
        assert report.predicted and all(p.predicted_transfer_bits_per_byte is None and "too few" in p.note
                                        for p in report.predicted)
        assert {p.target_name for p in report.predicted} == {f"panel/{name}" for name in (
            "markov-order1", "markov-order3", "eca-rule54", "eca-rule30", "arithmetic", "toy-grammar",
            "python-stdlib", "docstrings")}
        kept = tmp_path / "blobs" / "objects" / "models" / source.id  # the blob store: any node reaches it
        assert [p.relative_to(kept).as_posix() for p in kept.rglob("*.pt")] == [f"{job.id}/{job.id}.pt"]
        assert not list((tmp_path / "tmp").glob("*.model"))  # the worker's copy went with the job

        # A separate transfer request reuses the kept model and result: nothing is trained again.
        later = client.upload(SOURCE.sample(16 * 1024, seed=4), name="markov-a-third")
        follow = client.transfer(source.id, targets=[later.id, same.id], budgets=BUDGETS, wait=True, timeout=JOB_TIMEOUT)
        assert follow.status == "succeeded", follow.error
        assert follow.id != job.id and follow.result == job.result
        assert [p.relative_to(kept).as_posix() for p in kept.rglob("*.pt")] == [f"{job.id}/{job.id}.pt"]
        report = client.dataset_transfer(source.id)
        rows = {row.target_dataset_id: row for row in report.measured}
        assert rows[same.id].job_id == job.id  # measured once, not again
        assert rows[later.id].job_id == follow.id and rows[later.id].transfer_bits_per_byte > 0.05

        # The leaderboard ranks by mean measured transfer to the panel once a target joins it.
        client.add_to_panel(same.id, description="a second sample of the source")
        board = client.leaderboard(sort="mean_transfer_bits_per_byte", budget=None)
        assert board.items[0].dataset_id == source.id
        assert board.items[0].mean_transfer_bits_per_byte == pytest.approx(near.transfer_bits_per_byte)
        assert board.items[0].transfer_panel_targets == 1
        assert all(entry.mean_transfer_bits_per_byte is None for entry in board.items[1:])

        client.delete_dataset(source.id)  # its kept model goes with it
        assert not kept.exists()
    assert '"level": "ERROR"' not in server.log_path.read_text(), server.log_tail()
