"""`epiplex score` and the library's options: output, errors, warnings, resume."""
import json
import signal
import subprocess
import sys
import time

import estimators
from estimators import synthetic


def score(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "estimators", "score", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=600)


def test_json_output_is_exactly_one_object_with_the_contract(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(synthetic.random_bytes(64 * 1024))
    done = score(str(path), "--budget", "1e10", "3e10", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # fails on any extra line
    assert [c["budget_flops"] for c in result["curve"]] == [1e10, 3e10]
    assert abs(result["entropy_bits_per_byte"] - 8.0) < 0.08
    assert set(result["baselines"]) >= {"zstd_bits_per_byte", "lzma_bits_per_byte"}
    assert result["dataset"]["bytes"] == 64 * 1024


def test_table_output_reads_like_a_report(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes(synthetic.periodic_bytes(32 * 1024, b"hello world. "))
    done = score(str(path), "--format", "text", "--budget", "1e10")
    assert done.returncode == 0, done.stderr
    assert "budget" in done.stdout and "zstd-19" in done.stdout and "format text" in done.stdout
    header, row = done.stdout.splitlines()[3:5]  # S per byte, then its standard error
    assert header.split()[:5] == ["budget", "S", "bits", "S", "bits/B"] and header.split()[5] == "+/-"
    assert float(row.split()[3]) >= 0
    assert "preset custom, families transformer and context-mixing, seeds [0]" in done.stdout
    one = score(str(path), "--budget", "1e10", "--families", "context-mixing")
    assert one.returncode == 0 and "families context-mixing, seeds [0]" in one.stdout, one.stderr


def test_bad_input_exits_2_with_a_message(tmp_path):
    missing = score(str(tmp_path / "nope.bin"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    folder = score(str(tmp_path))
    assert folder.returncode == 2 and "is a directory: give a file" in folder.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff" * 2000)
    wrong = score(str(bad), "--format", "text")
    assert wrong.returncode == 2 and "not valid UTF-8" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_bad_options_exit_2_with_a_message_before_any_work(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(synthetic.random_bytes(4096))
    threads = score(str(path), "--threads", "0")
    assert threads.returncode == 2, threads.stderr  # 0 and -2 once ran silently
    assert "threads must be a whole number >= 1, not 0 (leave it out to use every core)" \
        in threads.stderr
    state = score(str(path), "--state-dir", str(path))  # a traceback (FileExistsError) once
    assert state.returncode == 2 and "Traceback" not in state.stderr
    assert f"cannot keep runs in {path}: it is a file; give a directory" in state.stderr


def test_small_data_for_the_budget_is_warned_about():
    result = estimators.estimate(synthetic.random_bytes(16 * 1024), budgets=[1e9, 1e13])
    warned = [w for w in result.warnings if "data too small for the budget" in w]
    assert len(warned) == 1 and "below the 1e+13 asked" in warned[0]
    assert "the quick preset does not replay small data, the standard and deep presets do" in warned[0]


def test_a_rerun_with_the_same_state_dir_resumes_from_saved_runs(tmp_path):
    data = synthetic.MarkovSource(seed=3).sample(32 * 1024)
    messages = []
    first = estimators.estimate(data, budgets=[1e10], state_dir=tmp_path)
    second = estimators.estimate(data, budgets=[1e10], state_dir=tmp_path,
                                 progress=lambda f, m: messages.append(m))
    assert messages[:-1] and all("(saved)" in m for m in messages[:-1])
    assert second.curve == first.curve


def test_ctrl_c_ends_a_score_with_one_line_and_keeps_its_finished_runs(tmp_path):
    """(Resuming from them: test_a_rerun_with_the_same_state_dir_resumes_from_saved_runs.)"""
    path, state = tmp_path / "chain.bin", tmp_path / "state"
    path.write_bytes(synthetic.MarkovSource(2, 16, 1.0, seed=11).sample(512 * 1024))
    command = [sys.executable, "-m", "estimators", "score", str(path), "--state-dir", str(state)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as run:
        while not list(state.glob("run-*.json")):  # Ctrl-C once a run is finished and kept
            assert run.poll() is None, run.communicate()[1]
            time.sleep(0.05)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=120)
    assert run.returncode == 130 and out == "" and "Traceback" not in err
    assert err.endswith(f"epiplex score: interrupted; the runs finished so far are kept in "
                        f"{state}, and the same command resumes from them\n")


def test_progress_is_reported_from_zero_to_one():
    fractions = []
    estimators.estimate(synthetic.constant_bytes(16 * 1024), budgets=[1e10],
                        progress=lambda f, m: fractions.append(f))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_a_budget_below_the_cheapest_run_gives_the_untrained_code_and_says_so():
    # 1e5: below one held-out evaluation of the count family too (about 1e6 operations)
    result = estimators.estimate(synthetic.periodic_bytes(64 * 1024), budgets=[1e5])
    assert result.entropy_bits_per_byte == 8.0 and result.epiplexity_bits == 0.0
    assert result.runs == []
    assert any("below the cheapest run" in w for w in result.warnings)
