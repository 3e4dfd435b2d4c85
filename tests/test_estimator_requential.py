"""Requential coding against prequential, seeds and reproducibility."""
import estimators
from estimators import synthetic

MARKOV = synthetic.MarkovSource(order=1, alphabet=16, seed=5)
DATA = MARKOV.sample(96 * 1024, seed=6)


def test_requential_is_at_most_prequential_on_the_same_run():
    req = estimators.estimate(DATA, estimator="requential", preset="quick")
    for run in req.runs:
        last = run["checkpoints"][-1]
        assert last["epiplexity_bits"] <= last["extra"]["prequential_epiplexity_bits"]
    assert req.epiplexity_bits > 0
    assert req.entropy_bits_per_byte > MARKOV.entropy_rate_bits


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
