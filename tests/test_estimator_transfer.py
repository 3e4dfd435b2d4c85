"""Measured and predicted transfer, and the reference panel."""
import json
import subprocess
import sys

import math

import numpy as np
import pytest

from estimators import panel, synthetic, transfer, transfer_model

SOURCE = synthetic.MarkovSource(order=1, alphabet=16, seed=11)
OTHER = synthetic.MarkovSource(order=1, alphabet=16, seed=12)


@pytest.fixture(scope="module")
def from_markov():
    targets = [SOURCE.sample(48 * 1024, seed=2), OTHER.sample(48 * 1024, seed=3),
               synthetic.random_bytes(48 * 1024, seed=3)]
    return transfer.measure_from_source(SOURCE.sample(96 * 1024, seed=1), targets)


def test_shared_structure_transfers_positively_and_more_than_unrelated_data(from_markov):
    same, unrelated, _ = from_markov
    assert same.transfer_bits > 0 and same.transfer_bits_per_byte > 0.05
    assert same.transfer_bits_per_byte > unrelated.transfer_bits_per_byte
    assert same.warm_start_bits == pytest.approx(same.scratch_code_bits - same.transfer_code_bits)
    # when A's start wins clearly, the mixture's price is the one bit that says so
    assert same.transfer_bits == pytest.approx(same.warm_start_bits - 1.0)
    assert same.target_bytes_coded == same.target_tokens_coded > 0
    assert same.model["family"] == "transformer"


def test_a_source_that_never_saw_most_byte_values_costs_random_targets_nothing(from_markov):
    noise = from_markov[2]
    # Starting from A's model is much worse on bytes A never saw: the raw warm start shows it...
    assert noise.warm_start_bits_per_byte < -0.5
    assert noise.transfer_code_bits > noise.scratch_code_bits
    # ...but a coder holding A loses at most the bit that says to ignore A: transfer ~ 0.
    assert -1.0 <= noise.transfer_bits <= 0.0
    assert abs(noise.transfer_bits_per_byte) < 1e-4


def test_the_mixture_code_is_within_one_bit_of_the_better_code():
    assert transfer.mixture_code_bits(500.0, 500.0) == pytest.approx(500.0)
    assert transfer.mixture_code_bits(10.0, 12.0) == pytest.approx(11.0 - math.log2(1.25))
    assert transfer.mixture_code_bits(3e5, 1e5) == pytest.approx(1e5 + 1.0)
    assert transfer.mixture_code_bits(1e5, 3e5) == transfer.mixture_code_bits(3e5, 1e5)


def test_random_bytes_as_a_source_transfer_nothing():
    targets = [SOURCE.sample(32 * 1024, seed=4), synthetic.periodic_bytes(32 * 1024)]
    for result in transfer.measure_from_source(synthetic.random_bytes(64 * 1024), targets):
        assert abs(result.transfer_bits_per_byte) < 0.01


def test_the_same_seed_reproduces_the_same_figures(from_markov):
    again = transfer.measure_from_source(SOURCE.sample(96 * 1024, seed=1),
                                         [SOURCE.sample(48 * 1024, seed=2)])
    assert again[0].to_dict() == from_markov[0].to_dict()


def test_cli_prints_one_json_object_per_target(tmp_path):
    source, target = tmp_path / "a.txt", tmp_path / "b.txt"
    source.write_bytes(SOURCE.sample(32 * 1024, seed=5))
    target.write_bytes(SOURCE.sample(16 * 1024, seed=6))
    done = subprocess.run([sys.executable, "-m", "estimators", "transfer", str(source),
                           str(target), "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert set(row) >= {"transfer_bits", "transfer_bits_per_byte", "scratch_code_bits",
                        "transfer_code_bits", "warm_start_bits", "warm_start_bits_per_byte"}


def test_a_target_that_cannot_be_read_fails_before_the_source_trains(tmp_path):
    source = tmp_path / "a.txt"
    source.write_bytes(SOURCE.sample(32 * 1024, seed=5))
    done = subprocess.run([sys.executable, "-m", "estimators", "transfer", str(source),
                           str(tmp_path / "missing.txt")], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 2
    assert done.stderr.endswith(f"epiplex transfer: no such file: {tmp_path / 'missing.txt'}\n")
    assert "done" not in done.stderr  # no progress: nothing was trained


def test_the_panel_builds_offline_from_generators_and_pythons_own_files():
    built = panel.build(16 * 1024)
    assert set(built) == {m.name for m in panel.PANEL}
    assert all(len(data) == 16 * 1024 for data in built.values())
    assert b"def " in built["python-stdlib"]
    assert built["docstrings"].decode("utf-8").count(" ") > 1000
    assert panel.build(16 * 1024) == built  # deterministic


def _result(s, h, size):
    return {"epiplexity_bits_per_byte": s, "entropy_bits_per_byte": h, "dataset": {"bytes": size}}


def test_the_predictor_declines_with_too_few_pairs():
    rows = [(_result(0.1, 2, 1000), _result(0.2, 3, 1000), 0.1)] * 3
    predictor = transfer_model.fit(rows)
    assert not predictor.ready and predictor.pairs == 3
    assert "too few" in predictor.quality["message"]
    assert predictor.predict(rows[0][0], rows[0][1]) is None


def test_the_predictor_learns_a_real_relation_and_reports_its_quality():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(30):
        s_a, s_b = rng.uniform(0, 1, 2)
        source, target = _result(s_a, 8 - s_a, 4096), _result(s_b, 8 - s_b, 4096)
        rows.append((source, target, 0.5 * s_a - 0.2 + rng.normal(0, 0.01)))
    predictor = transfer_model.fit(rows)
    assert predictor.ready and predictor.pairs == 30
    assert predictor.quality["loo_spearman"] > 0.9
    assert predictor.quality["loo_mae_bits_per_byte"] < predictor.quality["baseline_mae_bits_per_byte"]
    assert predictor.predict(_result(0.8, 7.2, 4096), _result(0.5, 7.5, 4096)) == \
        pytest.approx(0.2, abs=0.05)
