"""The GitHub Actions step runs as GitHub would run it: its script, its environment, its files.

The composite action's `Vet datasets` script is taken from action.yml and run with bash, with
GITHUB_STEP_SUMMARY and GITHUB_OUTPUT pointing at files, and `epiplex` on PATH.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from estimators import synthetic

ACTION = Path(__file__).resolve().parents[1] / ".github" / "actions" / "epiplex-vet" / "action.yml"


def step_script(step_id: str) -> str:
    """The `run: |` block of the step with this id (a literal block: indentation ends it)."""
    lines = ACTION.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"id: {step_id}")
    run = next(i for i in range(start, len(lines)) if lines[i].strip() == "run: |")
    indent = len(lines[run + 1]) - len(lines[run + 1].lstrip())
    body = []
    for line in lines[run + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        body.append(line[indent:])
    return "\n".join(body) + "\n"


def run_step(tmp_path: Path, paths: str, args: str) -> tuple[subprocess.CompletedProcess, str, dict]:
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs.txt"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "VET_PATHS": paths, "VET_ARGS": args, "VET_SERVER": "", "PREFIX": "epiplex-vet",
           "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)}
    done = subprocess.run(["bash", "-c", step_script("vet")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return done, summary.read_text(), values


def test_the_action_fails_the_step_on_noise_and_puts_the_report_in_the_job_summary(tmp_path):
    assert (Path(sys.executable).parent / "epiplex").exists(), "install the project: pip install -e ."
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "noise.bin").write_bytes(synthetic.random_bytes(32 * 1024, seed=3))
    done, summary, outputs = run_step(tmp_path, "data/noise.bin", "--budget 1e10 --device cpu --min-epiplexity 0.01")
    assert done.returncode == 1, done.stdout + done.stderr
    assert outputs["exit-code"] == "1"
    assert "Epiplex vet: 0 of 1 dataset passed, 1 failed" in summary and "min-epiplexity" in summary
    assert "| `data/noise.bin` | min-epiplexity | 0.0000 bits/byte | >= 0.0100 bits/byte | ❌ fail |" in summary
    for key, name in (("json-report", "epiplex-vet.json"), ("junit-report", "epiplex-vet-junit.xml")):
        assert Path(outputs[key]) == tmp_path / name and (tmp_path / name).is_file()


def test_a_usage_error_exits_2_and_the_summary_says_so(tmp_path):
    done, summary, outputs = run_step(tmp_path, "missing.bin", "--min-epiplexity 0.01")
    assert done.returncode == 2 and outputs["exit-code"] == "2"
    assert "could not run (exit 2)" in summary and "no such file or directory" in done.stderr
