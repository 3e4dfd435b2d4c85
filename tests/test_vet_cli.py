"""`epiplex vet` run locally, as CI runs it: real training on small files, real exit codes.

Thresholds come from calibration truths, not tuning: uniform random bytes hold no structure
(S ~ 0) and 8 bits/byte of noise; an order-2 Markov sample over 16 symbols holds structure a
small learner finds (S 0.13 bits/byte at 1e10 FLOPs on 32 KiB: 4,096 transition probabilities
to learn) and entropy near its rate of 2.67 bits/byte. An order-1 chain's 256 take so little
learning at this size that S is 0.002-0.03 (`bench/bench_pairing.py` sets L beside its truth).
"""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from estimators import synthetic

SIZE = 32 * 1024
FAST = ["--budget", "1e10", "--device", "cpu"]
STRUCTURE = ["--min-epiplexity", "0.01", "--max-entropy", "7.5", "--max-zstd-ratio", "0.95"]


def vet(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", "vet", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vet-data")
    (folder / "noise.bin").write_bytes(synthetic.random_bytes(SIZE, seed=1))
    (folder / "markov.txt").write_bytes(synthetic.MarkovSource(order=2, seed=0).sample(SIZE))
    return folder


@pytest.fixture(scope="module")
def markov_report(data) -> tuple[subprocess.CompletedProcess, dict]:
    """One vet of the Markov sample, shared: its JSON report is later runs' baseline."""
    done = vet("markov.txt", *FAST, *STRUCTURE, "--report", "markov.json", cwd=data)
    return done, json.loads((data / "markov.json").read_text())


def test_random_bytes_fail_min_epiplexity_with_exit_1_and_readable_reports(data):
    done = vet("noise.bin", *FAST, "--min-epiplexity", "0.01", "--max-zstd-ratio", "0.95",
               "--report", "noise.md", "--report", "noise.html",
               "--report", "noise.json", "--junit", "noise.xml", cwd=data)
    assert done.returncode == 1, done.stderr
    report = json.loads((data / "noise.json").read_text())
    dataset, = report["datasets"]
    check, compressed = dataset["checks"]
    assert (check["name"], check["passed"], check["threshold"]) == ("min-epiplexity", False, 0.01)
    assert (compressed["name"], compressed["passed"]) == ("max-zstd-ratio", False)
    assert compressed["measured"] > 0.99  # zstd cannot shrink random bytes
    assert check["measured"] < 0.01 and abs(dataset["figures"]["entropy_bits_per_byte"] - 8.0) < 0.08
    measured = f"{check['measured']:.4f} bits/byte"
    for name in ("noise.md", "noise.html"):
        text = (data / name).read_text()
        assert measured in text and "0.0100 bits/byte" in text and "noise.bin" in text, name
    suite = ET.parse(data / "noise.xml").getroot().find("testsuite")
    failures = [(case.get("classname"), case.get("name")) for case in suite.iter("testcase")
                if case.find("failure") is not None]
    assert failures == [("noise.bin", "min-epiplexity"), ("noise.bin", "max-zstd-ratio")]
    assert "min-epiplexity" in done.stdout and "FAIL" in done.stdout and "Traceback" not in done.stderr


def test_structured_data_passes_with_exit_0(markov_report):
    done, report = markov_report
    assert done.returncode == 0, done.stderr
    dataset, = report["datasets"]
    assert report["status"] == "passed" and dataset["status"] == "passed"
    assert [c["name"] for c in dataset["checks"]] == ["min-epiplexity", "max-entropy", "max-zstd-ratio"]
    figures = dataset["figures"]
    assert dataset["checks"][2]["measured"] == pytest.approx(figures["zstd_bits_per_byte"] / 8)
    assert figures["epiplexity_bits_per_byte"] > 0.01
    assert 2.66 < figures["entropy_bits_per_byte"] < 7.5  # above the source's entropy rate, 2.667
    assert figures["bytes"] == SIZE and figures["budget_flops"] == 1e10
    assert done.stdout.splitlines()[-1].startswith("PASS: 1 of 1 dataset passed")


def test_regression_fails_when_epiplexity_drops_more_than_max_drop(data, markov_report):
    _, report = markov_report
    baseline_s = report["datasets"][0]["figures"]["epiplexity_bits_per_byte"]
    done = vet("noise.bin", *FAST, "--baseline", "markov.json", "--max-drop", "50", "--junit", "drop.xml",
               "--report", "drop.json", cwd=data)
    assert done.returncode == 1, done.stderr
    check, = json.loads((data / "drop.json").read_text())["datasets"][0]["checks"]
    assert check["name"] == "max-drop" and not check["passed"]
    assert check["baseline_value"] == baseline_s and check["current_value"] < 0.01
    assert check["measured"] > 90  # percent: nearly all the structure is gone
    assert f"{baseline_s:.4f}" in done.stdout
    case, = ET.parse(data / "drop.xml").getroot().iter("testcase")
    assert case.get("name") == "max-drop" and case.find("failure") is not None


def test_unchanged_data_passes_its_own_baseline(data, markov_report):
    done = vet("markov.txt", *FAST, "--baseline", "markov.json", "--max-drop", "5", "--max-entropy-rise", "5",
               cwd=data)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "max-drop" in done.stdout and "max-entropy-rise" in done.stdout


def test_thresholds_and_paths_come_from_pyproject(tmp_path):
    shards = tmp_path / "data" / "noise"
    shards.mkdir(parents=True)
    noise = synthetic.random_bytes(SIZE, seed=2)
    (shards / "part-0.bin").write_bytes(noise[:SIZE // 2])
    (shards / "part-1.bin").write_bytes(noise[SIZE // 2:])
    (tmp_path / "pyproject.toml").write_text(
        '[tool.epiplex]\npaths = ["data/noise"]\nbudget = [1e10]\ndevice = "cpu"\nmin-epiplexity = 0.01\n'
        'report = "out/vet.json"\n')
    done = vet(cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    dataset, = json.loads((tmp_path / "out" / "vet.json").read_text())["datasets"]
    assert dataset["name"] == "data/noise" and len(dataset["files"]) == 2
    assert dataset["figures"]["bytes"] == SIZE  # the shards are one dataset
    assert dataset["checks"][0]["name"] == "min-epiplexity" and not dataset["checks"][0]["passed"]


@pytest.mark.parametrize("args, message", [
    (["missing.bin", "--min-epiplexity", "0.01"], "no such file or directory: 'missing.bin'"),
    (["noise.bin"], "no thresholds"),
    (["noise.bin", "--max-drop", "10"], "compare with a baseline"),
    (["noise.bin", "--min-epiplexity", "0.01", "--baseline", "markov.json"], "nothing compares with it"),
    (["noise.bin", "--baseline-dataset", "ds_1", "--max-drop", "10"], "add --server URL"),
    (["noise.bin", "--min-epiplexity", "-1"], "must be a non-negative number"),
    (["noise.bin", "--min-epiplexity", "0.01", "--report", "out.txt"], "name it .md, .html or .json"),
    (["noise.bin", "--min-epiplexity", "0.01", "--format", "yaml"], "unknown format 'yaml'"),
    (["noise.bin", "--min-epiplexity", "0.01", "--preset", "huge"], "unknown preset 'huge'"),
    (["noise.bin", "--min-epiplexity", "0.01", "--server", "http://127.0.0.1:1", "--device", "cpu"],
     "apply to local runs only"),
    (["noise.bin", "--min-epiplexity", "0.01", "--server", "http://127.0.0.1:1"], "cannot reach the server"),
    (["noise.bin", "--min-epiplexity", "x"], "invalid float value: 'x'"),
])
def test_usage_errors_exit_2_with_a_message_and_no_traceback(data, args, message):
    done = vet(*args, cwd=data)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_data_that_does_not_match_its_format_exits_2_and_is_named_in_the_reports(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"ok " * 100 + b"\xff\xfe" * 100)
    done = vet("bad.txt", "--format", "text", *FAST, "--min-epiplexity", "0.01", "--junit", "bad.xml", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "not valid UTF-8 text: bad byte at offset 300" in done.stdout
    case, = ET.parse(tmp_path / "bad.xml").getroot().iter("testcase")
    assert case.get("classname") == "bad.txt" and "offset 300" in case.find("error").get("message")


def test_a_bad_config_file_exits_2_naming_the_key(tmp_path):
    (tmp_path / "epiplex.toml").write_text("min-epiplexity = 0.01\nmax-entropie = 7\n")
    done = vet("x.bin", cwd=tmp_path)
    assert done.returncode == 2 and "unknown key 'max-entropie'" in done.stderr and "epiplex.toml" in done.stderr


def test_a_local_cache_dir_answers_the_second_run_without_training(data):
    first = vet("markov.txt", *FAST, *STRUCTURE, "--cache-dir", "cache", cwd=data)
    saved = sorted(p.name for p in (data / "cache").glob("run-*.json"))
    second = vet("markov.txt", *FAST, *STRUCTURE, "--cache-dir", "cache", cwd=data)
    assert first.returncode == second.returncode == 0, second.stderr
    assert saved and sorted(p.name for p in (data / "cache").glob("run-*.json")) == saved
    progress = [line for line in second.stderr.splitlines() if "prequential" in line]
    assert progress and all("(saved)" in line for line in progress)


def test_cache_dir_is_for_local_runs_only(data):
    done = vet("markov.txt", *FAST, *STRUCTURE, "--server", "http://127.0.0.1:9", "--cache-dir", "c",
               cwd=data)
    assert done.returncode == 2 and "--cache-dir" in done.stderr and "local runs only" in done.stderr
