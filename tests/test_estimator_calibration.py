"""Calibration laws from DESIGN.md, at the quick preset on a few hundred KiB of data."""
import numpy as np
import pytest

import estimators
from estimators import synthetic
from estimators.data import DataFormatError

SIZE = 256 * 1024
MARKOV = synthetic.MarkovSource(order=1, alphabet=16, seed=1)


@pytest.fixture(scope="module")
def random_result():
    return estimators.estimate(synthetic.random_bytes(SIZE, seed=3), preset="quick")


@pytest.fixture(scope="module")
def constant_result():
    return estimators.estimate(synthetic.constant_bytes(SIZE), preset="quick")


@pytest.fixture(scope="module")
def markov_result():
    return estimators.estimate(MARKOV.sample(SIZE, seed=2), preset="quick")


def test_random_bytes_have_eight_bits_per_byte_and_no_structure(random_result):
    assert abs(random_result.entropy_bits_per_byte - 8.0) < 0.08
    assert random_result.epiplexity_bits_per_byte < 0.01
    for point in random_result.curve:
        assert point.epiplexity_bits_per_byte < 0.01
        assert abs(point.entropy_bits_per_byte - 8.0) < 0.08


def test_constant_stream_has_almost_no_structure_and_no_entropy(constant_result):
    assert constant_result.epiplexity_bits_per_byte < 0.05
    assert constant_result.entropy_bits_per_byte < 0.05


def test_periodic_stream_is_tiny_in_both():
    result = estimators.estimate(synthetic.periodic_bytes(SIZE), preset="quick")
    assert result.epiplexity_bits_per_byte < 0.05
    assert result.entropy_bits_per_byte < 0.05


def test_markov_entropy_stays_above_the_rate_and_approaches_it(markov_result):
    # Beyond noise: this sample is easier than the rate (its true probabilities code it at
    # 2.4393 bits/byte, the rate is 2.4431), and H, the final model's loss over the sample,
    # comes out at 2.4383; its error's spread is 0.005-0.007 on such chains
    # (`bench/bench_pairing.py`). Before the first stratum's held-out block was corrected
    # too, that block, 0.10 bits/byte harder than the sample, put H at 2.4456.
    rate = MARKOV.entropy_rate_bits
    oracle = MARKOV.bits(MARKOV.sample(SIZE, seed=2)).mean()
    per_byte = [p.entropy_bits_per_byte for p in markov_result.curve]
    assert oracle < rate
    assert all(h > 0.995 * oracle for h in per_byte)
    assert per_byte[-1] <= per_byte[0]  # never further from the rate at a larger budget
    assert per_byte[-1] - rate < 0.25


def test_no_transformer_checkpoint_prices_unread_data_below_its_entropy():
    # 1 KiB random blocks alternating with zero ones: 4 bits/byte whatever codes them. A
    # checkpoint 2% into the pass drew held-out sequences mostly from zero blocks (3.75
    # bits/token, standard error 0.61), priced the 98% it had not read by that mean, and the
    # transformer's curve read 3.768 from 1e10 FLOPs on, the headline's too.
    data = synthetic.alternating_blocks(SIZE)
    result = estimators.estimate(data, preset="quick", families=["transformer"])
    totals = [p.epiplexity_bits_per_byte + p.entropy_bits_per_byte for p in result.curve]
    assert min(totals) > 4.0, totals


def test_markov_carries_more_structure_than_noise_or_a_constant(
        markov_result, random_result, constant_result):
    # The transformer (the paper's observer) must find the chain's structure. The headline, the
    # minimum over families, may sit within noise of zero here: a count model codes an order-1
    # chain online almost as well as its final model does, so little is left to call structure.
    learned = markov_result.families["transformer"][-1]
    assert learned.epiplexity_bits_per_byte > 3 * random_result.epiplexity_bits_per_byte
    assert learned.epiplexity_bits_per_byte > 3 * constant_result.epiplexity_bits_per_byte
    assert learned.epiplexity_bits > 1000
    assert abs(markov_result.epiplexity_bits_per_byte) < 0.05


def test_mdl_never_rises_with_budget(markov_result):
    totals = [p.epiplexity_bits + p.entropy_bits for p in markov_result.curve]
    assert all(b <= a + 1e-6 for a, b in zip(totals, totals[1:]))


def test_each_budget_carries_the_noise_of_its_held_out_estimate(markov_result, random_result):
    for point in markov_result.curve:
        chosen, = [(c, run) for run in markov_result.runs for c in run["checkpoints"]
                   if c["entropy_bits"] == point.entropy_bits]
        c, run = chosen
        assert point.epiplexity_stderr_bits == pytest.approx(
            c["heldout_stderr"] * c["tokens_trained"])
        assert point.entropy_stderr_bits == pytest.approx(
            c["heldout_stderr"] * run["dataset_tokens"])
        assert 0 < point.epiplexity_stderr_bits < 0.01 * SIZE  # 0.0024 bits/byte measured
        assert point.epiplexity_stderr_bits_per_byte == pytest.approx(
            point.epiplexity_stderr_bits / SIZE)
    # the untrained code's length is exact
    assert all(p.epiplexity_stderr_bits == p.entropy_stderr_bits == 0 for p in random_result.curve)


def test_compressors_are_reported_beside_the_learner(random_result, markov_result):
    assert random_result.baselines["zstd_bits_per_byte"] > 7.9
    assert markov_result.baselines["lzma_bits_per_byte"] > MARKOV.entropy_rate_bits
    assert markov_result.entropy_bits_per_byte < markov_result.baselines["zstd_bits_per_byte"]


def test_result_names_what_made_it(markov_result):
    d = markov_result.to_dict()
    assert d["estimator"] == "prequential" and d["seeds"] == [0] and d["preset"] == "quick"
    assert d["dataset"]["bytes"] == SIZE and len(d["dataset"]["sha256"]) == 64
    assert d["version"] == estimators.__version__ and d["flops_spent"] > 0
    for point in d["curve"]:
        assert point["family"] in ("transformer", "context-mixing", "uniform")
        shape = {"width", "depth"} if point["family"] == "transformer" else {"name", "orders"}
        assert set(point["model"]) >= {"params"} | shape
        assert point["budget_flops"] > 0


def test_random_bytes_warn_that_epiplexity_is_zero(random_result):
    assert any("epiplexity is zero" in w for w in random_result.warnings)


def test_words_that_drift_through_the_alphabet_are_not_negative_structure():
    # Sorted words drift through the alphabet: the online code follows them, and the final
    # model, however it relearns before a held-out block, codes it worse than the online code
    # paid for the bytes around it: S = -0.136 bits/byte, with a warning that it came out
    # negative, until a block could be coded as the pass, standing before it, coded it.
    rng = np.random.default_rng(3)
    words = {"".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(3, 12)))
             for _ in range(12000)}
    data = "\n".join(sorted(words)).encode()[:1 << 16]
    result = estimators.estimate(data, preset="quick", families=["context-mixing"])
    assert abs(result.epiplexity_bits_per_byte) < 0.01  # 0.001 bits/byte
    assert any("within noise of zero" in w for w in result.warnings)
    assert not any("came out negative" in w for w in result.warnings)


def test_random_words_carry_their_rate_in_the_choice_of_each_word():
    data = synthetic.random_words(1 << 18, seed=2)
    words = data.split(b" ")
    assert set(words[:-1]) == set(synthetic.WORDS)
    assert len(words) * np.log2(5) / len(data) == pytest.approx(synthetic.words_rate_bits(), rel=0.005)
    assert synthetic.words_rate_bits() == pytest.approx(np.log2(5) / 5.4)


def test_words_that_do_not_drift_are_not_called_drifting():
    # 108 KB of five words drawn at random: the final model codes held-out data at least as
    # well as the online code paid. Held-out blocks that paid for naming the shorter of two
    # codes alike, and strata priced with the cut contexts after their blocks, put S at -175
    # bits with a warning of drift, and H at 0.4361 bits/byte (the rate is 0.4300); now S is
    # 361 bits and H 0.4308.
    top = estimators.estimate(synthetic.random_words(107_928, seed=1), preset="quick",
                              families=["context-mixing"])
    rate = synthetic.words_rate_bits()
    assert top.epiplexity_bits > 0
    assert not any("came out negative" in w for w in top.warnings)
    assert rate < top.entropy_bits_per_byte < rate * 1.01


def test_a_checkpoint_within_noise_of_the_uniform_code_is_no_frontier_point():
    from estimators.frontier import untrained_point
    from estimators.sweep import _points

    prior = untrained_point(1000, 256)  # 8,000 bits, exactly

    def checkpoint(flops: float, total: float, stderr: float) -> dict:
        return {"compute_flops": flops, "epiplexity_bits": 0.0, "entropy_bits": total,
                "heldout_stderr": stderr, "tokens_trained": 100}
    run = {"dataset_tokens": 1000, "checkpoints": [
        checkpoint(1e6, 7990.0, 0.01),  # 10 bits under, inside twice its noise (20 bits)
        checkpoint(2e6, 7970.0, 0.01),  # 30 bits under: beyond it
        checkpoint(3e6, 7999.0, float("nan"))]}  # one held-out sequence: no noise measured
    assert [p.compute_flops for p in _points([run], prior, 0)] == [0.0, 2e6, 3e6]


def _run(*checkpoints: tuple[int, float], spent: float = 1e12, planned: float = 1e12) -> dict:
    return {"estimator": "prequential", "budget_flops": planned, "checkpoints": [
        {"tokens_trained": tokens, "heldout_bits_per_token": loss, "compute_flops": spent}
        for tokens, loss in checkpoints]}


def test_the_not_flattened_warning_reads_the_fall_per_doubling_of_data():
    from estimators.sweep import _run_warnings

    # a transformer's checkpoints a doubling apart: 2.5% lower over the last doubling
    warned = _run_warnings(_run((1000, 2.0), (2000, 1.95)), 1e12)
    assert warned == ["the loss curve has not flattened at 1e+12 FLOPs (held-out loss 2.000 -> "
                      "1.950 bits/token from 1,000 to 2,000 tokens trained): more data or "
                      "compute would lower H further"]
    # the same run having spent its data at 1.2e11 of 1e13 FLOPs: more compute would not help
    warned = _run_warnings(_run((1000, 2.0), (2000, 1.95), spent=1.2e11, planned=1e13), 1e13)
    assert warned == ["the loss curve has not flattened at 1e+13 FLOPs (held-out loss 2.000 -> "
                      "1.950 bits/token from 1,000 to 2,000 tokens trained): more data (this "
                      "run had spent its data at 1.2e+11 FLOPs) would lower H further"]
    # a run planned for a lower rung spent all of its own budget: more compute may help
    warned = _run_warnings(_run((1000, 2.0), (2000, 1.95), spent=1e11, planned=1e11), 1e13)
    assert warned == ["the loss curve has not flattened at 1e+13 FLOPs (held-out loss 2.000 -> "
                      "1.950 bits/token from 1,000 to 2,000 tokens trained): more data or "
                      "compute would lower H further"]
    # the same fall over six doublings (count-family checkpoints sit at budgets): 0.4% each
    assert _run_warnings(_run((1000, 2.0), (64000, 1.95)), 1e12) == []
    assert _run_warnings(_run((1000, 2.0), (64000, 1.7)), 1e12) != []  # 2.5% a doubling


def test_count_family_flatness_is_read_on_the_data_both_checkpoints_learned_from():
    from estimators.sweep import _run_warnings

    def count_run(learned: float, earlier: float) -> dict:
        run = _run((4594, 8.005), (41312, 3.643))  # the whole file's price: 8.005 -> 3.643
        first, last = run["checkpoints"]
        first["extra"] = {"learned_bits_per_token": learned, "earlier_bits_per_token": None}
        last["extra"] = {"learned_bits_per_token": 3.643, "earlier_bits_per_token": earlier}
        return run
    # random bytes, then a phrase: both models code the random bytes alike
    assert _run_warnings(count_run(8.004, 8.003), 1e12) == []
    assert _run_warnings(count_run(2.0, 1.8), 1e12) == [
        "the loss curve has not flattened at 1e+12 FLOPs (held-out loss 2.000 -> 1.800 "
        "bits/token over the data both had seen, from 4,594 to 41,312 tokens trained): "
        "more data or compute would lower H further"]


def test_data_too_small_for_the_transformer_is_scored_by_the_count_family():
    """300 bytes: fewer than the smallest transformer's four sequences of 128, enough for one
    stratum of the count family's held-out blocks; under 256 bytes no family can learn."""
    text = (b"def f(x):\n    return x + 1\n" * 12)[:300]
    small = estimators.estimate(text, preset="quick")
    assert small.curve[-1].family == "context-mixing" and not any(
        run["family"] == "transformer" for run in small.runs)
    assert small.epiplexity_bits_per_byte + small.entropy_bits_per_byte \
        < min(small.baselines["zstd_bits_per_byte"], small.baselines["lzma_bits_per_byte"])
    assert "skipped the 48x2 model: the data has fewer than 513 tokens it needs" in small.warnings
    noise = estimators.estimate(synthetic.random_bytes(300, seed=1), preset="quick")
    assert (noise.epiplexity_bits_per_byte, noise.entropy_bits_per_byte) == (0.0, 8.0)
    too_small = "the dataset is too small to train any model of the preset: give at least "
    with pytest.raises(DataFormatError) as refused:
        estimators.estimate(text[:255], preset="quick")
    assert str(refused.value) == too_small + "256 tokens (transformer 513, context-mixing 256)"
    with pytest.raises(DataFormatError) as refused:
        estimators.estimate(text, preset="standard", families=["transformer"])
    assert str(refused.value) == too_small + "513 tokens"  # the smallest size, quick's
    # too short for standard's own sizes (1,025 tokens), not for the quick size it includes
    longer = estimators.estimate((text * 3)[:700], preset="standard", budgets=[1e9],
                                 families=["transformer"])
    assert longer.runs and all(run["family"] == "transformer" for run in longer.runs)
