"""Requential coding against prequential, seeds and reproducibility."""
from dataclasses import asdict

import numpy as np
import pytest
import torch

import estimators
from estimators import PRESETS, requential, synthetic
from estimators.data import split
from estimators.models import GPTConfig
from estimators.prequential import RunConfig
from estimators.sweep import _run_warnings

MARKOV = synthetic.MarkovSource(order=1, alphabet=16, seed=5)
DATA = MARKOV.sample(96 * 1024, seed=6)


def test_requential_is_checked_against_its_teachers_prequential_code():
    # S_req <= S_preq is the expected law; where the student lags (small data) it can fail,
    # and then, and only then, the result must say so.
    req = estimators.estimate(DATA[:48 * 1024], estimator="requential", budgets=[3e10],
                              families=["transformer"])  # the law concerns the requential runs
    assert req.epiplexity_bits > 0
    assert req.entropy_bits_per_byte > MARKOV.entropy_rate_bits
    affordable = [c for run in req.runs if run["estimator"] == "requential"
                  for c in run["checkpoints"] if c["compute_flops"] <= 3e10]
    chosen = min(affordable, key=lambda c: c["epiplexity_bits"] + c["entropy_bits"])
    noise = 2 * chosen["heldout_stderr"] * chosen["tokens_trained"]
    fails = chosen["epiplexity_bits"] > max(chosen["extra"]["prequential_epiplexity_bits"], 0) + noise
    assert any("S_req <= S_preq fails" in w for w in req.warnings) == fails


@pytest.mark.parametrize("size", PRESETS["quick"].sizes)
def test_requential_code_is_no_longer_than_its_teachers_prequential_code(size):
    # The law S_req <= S_preq at every checkpoint of a quick-preset run capped by quick's top
    # budget, on a Markov source of another order: the student tracks its teacher, so teaching
    # what the teacher knows costs less than the teacher's own prequential code.
    quick, (width, depth, context) = PRESETS["quick"], size
    tokens = np.frombuffer(synthetic.MarkovSource(order=2, alphabet=8, seed=11)
                           .sample(16 * 1024, seed=12), dtype=np.uint8)
    data_split = split(tokens, context, 0, quick.heldout_tokens)
    cfg = RunConfig(GPTConfig(256, width, depth, context), 0, quick.learning_rate,
                    quick.hidden_learning_rate, quick.batch_tokens // context, len(tokens),
                    len(tokens), 0, quick.budgets[-1])
    result = requential.run(data_split, cfg, torch.device("cpu"))
    assert result.tokens_trained > 12 * 1024  # the law is checked well past the first steps
    for c in result.checkpoints:
        assert 0 <= c.epiplexity_bits <= c.extra["prequential_epiplexity_bits"], c
    run = {"estimator": "requential", "checkpoints": [asdict(c) for c in result.checkpoints]}
    assert _run_warnings(run, quick.budgets[-1]) == []


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
    checkpoint = {"compute_flops": 1e9, "epiplexity_bits": 5000.0, "entropy_bits": 1e5,
                  "heldout_bits_per_token": 3.0, "heldout_stderr": 0.001, "tokens_trained": 1000,
                  "extra": {"prequential_epiplexity_bits": 2000.0}}
    run = {"estimator": "requential", "checkpoints": [checkpoint]}
    warnings = _run_warnings(run, 1e9)
    assert len(warnings) == 1 and "S_req <= S_preq fails" in warnings[0]
    honest = dict(checkpoint, epiplexity_bits=1500.0)
    assert _run_warnings({"estimator": "requential", "checkpoints": [honest]}, 1e9) == []
