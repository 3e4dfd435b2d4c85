"""Requential coding against prequential, seeds and reproducibility."""
import estimators
from estimators import synthetic

MARKOV = synthetic.MarkovSource(order=1, alphabet=16, seed=5)
DATA = MARKOV.sample(96 * 1024, seed=6)


def test_requential_is_checked_against_its_teachers_prequential_code():
    # S_req <= S_preq is the expected law; where the student lags (small data) it can fail,
    # and then, and only then, the result must say so.
    req = estimators.estimate(DATA[:48 * 1024], estimator="requential", budgets=[3e10],
                              families=["transformer"])  # the law concerns the requential runs
    assert req.epiplexity_bits > 0
    assert req.entropy_bits_per_byte > MARKOV.entropy_rate_bits
    affordable = [c for run in req.runs for c in run["checkpoints"] if c["compute_flops"] <= 3e10]
    chosen = min(affordable, key=lambda c: c["epiplexity_bits"] + c["entropy_bits"])
    noise = 2 * chosen["heldout_stderr"] * chosen["tokens_trained"]
    fails = chosen["epiplexity_bits"] > max(chosen["extra"]["prequential_epiplexity_bits"], 0) + noise
    assert any("S_req <= S_preq fails" in w for w in req.warnings) == fails


def test_a_fixed_seed_reproduces_the_same_result():
    first = estimators.estimate(DATA, budgets=[1e10, 3e10]).to_dict()
    second = estimators.estimate(DATA, budgets=[1e10, 3e10]).to_dict()
    for result in (first, second):
        result.pop("seconds")
        for run in result["runs"]:
            run.pop("seconds")
    assert first == second


def test_several_seeds_give_a_mean_and_an_interval():
    result = estimators.estimate(DATA, budgets=[1e10, 3e10], seeds=3)
    assert result.seeds == [0, 1, 2]
    for point in result.curve:
        ci = point.ci95["entropy_bits"]
        assert ci["low"] <= point.entropy_bits <= ci["high"]


def test_a_requential_code_longer_than_its_teachers_prequential_code_is_flagged():
    from estimators.sweep import _run_warnings

    checkpoint = {"compute_flops": 1e9, "epiplexity_bits": 5000.0, "entropy_bits": 1e5,
                  "heldout_bits_per_token": 3.0, "heldout_stderr": 0.001, "tokens_trained": 1000,
                  "extra": {"prequential_epiplexity_bits": 2000.0}}
    run = {"estimator": "requential", "checkpoints": [checkpoint]}
    warnings = _run_warnings(run, 1e9)
    assert len(warnings) == 1 and "S_req <= S_preq fails" in warnings[0]
    honest = dict(checkpoint, epiplexity_bits=1500.0)
    assert _run_warnings({"estimator": "requential", "checkpoints": [honest]}, 1e9) == []
