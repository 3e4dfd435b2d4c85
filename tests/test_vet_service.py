"""End to end: `epiplex vet --server` against the real server, real workers and real training.

The second CI run on unchanged data must train nothing: it is answered from the cached job
(`cached` in the report, the job count and the job's attempts unchanged), not judged by time.
"""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from app.testing import ServiceProcess
from estimators import synthetic

pytestmark = pytest.mark.slow

SIZE = 32 * 1024


def vet(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "vet", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_a_second_ci_run_on_unchanged_data_is_answered_from_cache_without_training(tmp_path):
    (tmp_path / "markov.txt").write_bytes(synthetic.MarkovSource(order=2, seed=0).sample(SIZE))
    (tmp_path / "noise.bin").write_bytes(synthetic.random_bytes(SIZE, seed=1))
    with ServiceProcess(tmp_path / "server", workers=1) as server, server.client() as client:
        common = ["--server", server.url, "--budget", "1e10", "--timeout", "300"]
        first = vet("markov.txt", *common, "--min-epiplexity", "0.01", "--max-entropy", "7.5",
                    "--report", "first.json", cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        dataset, = json.loads((tmp_path / "first.json").read_text())["datasets"]
        assert dataset["status"] == "passed" and dataset["cached"] is False
        assert dataset["figures"]["epiplexity_bits_per_byte"] > 0.01
        jobs = client.list_jobs()
        assert jobs.total == 1 and jobs.items[0].attempts == 1

        second = vet("markov.txt", *common, "--min-epiplexity", "0.01", "--max-entropy", "7.5",
                     "--report", "second.json", "--report", "second.md", cwd=tmp_path)
        assert second.returncode == 0, second.stdout + second.stderr
        again, = json.loads((tmp_path / "second.json").read_text())["datasets"]
        assert again["cached"] is True and again["job_id"] == dataset["job_id"]
        assert again["figures"] == dataset["figures"]
        assert "cached result" in second.stdout and "| yes |" in (tmp_path / "second.md").read_text()
        job = client.get_job(dataset["job_id"])
        assert client.list_jobs().total == 1 and job.attempts == 1  # nothing queued, nothing re-run

        # Noise against the accepted Markov dataset as the baseline: both checks fail.
        noisy = vet("noise.bin", *common, "--min-epiplexity", "0.01", "--baseline-dataset",
                    dataset["dataset_id"], "--max-drop", "50", "--junit", "noise.xml", cwd=tmp_path)
        assert noisy.returncode == 1, noisy.stdout + noisy.stderr
        cases = {case.get("name"): case for case in ET.parse(tmp_path / "noise.xml").getroot().iter("testcase")}
        assert set(cases) == {"min-epiplexity", "max-drop"}
        assert all(case.find("failure") is not None for case in cases.values())
        assert f"{dataset['figures']['epiplexity_bits_per_byte']:.4f}" in cases["max-drop"].find("failure").get("message")
        assert client.list_jobs().total == 2  # the noise job; the baseline's result was reused
