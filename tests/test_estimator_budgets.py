"""Budgets are true: a checkpoint's compute counts everything spent to reach it, no run spends
past the budget it serves, the count matches the matmuls done, and a larger preset never
reports a longer code than a smaller one."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import estimators
from estimators import PRESETS, count_family, prequential, requential, synthetic
from estimators.data import load, split
from estimators.models import GPTConfig
from estimators.sweep import _Sweep, resolve

MARKOV = synthetic.MarkovSource(order=1, alphabet=16, seed=21)
DATA = MARKOV.sample(40 * 1024, seed=22)
CPU = torch.device("cpu")


def assert_honest(run: dict) -> None:
    computes = [c["compute_flops"] for c in run["checkpoints"]]
    assert computes == sorted(computes) and computes[0] > 0
    assert computes[-1] == run["flops_spent"]
    assert run["flops_spent"] <= run["budget_flops"]


@pytest.mark.parametrize("estimator", ["prequential", "requential"])
def test_every_checkpoint_counts_all_spent_and_no_run_passes_its_budget(estimator):
    # requential's student takes 8 steps per sample: its runs cost 7x, so it stops a rung lower
    budgets = [3e9, 3e10, 2e11] if estimator == "prequential" else [3e9, 3e10]
    result = estimators.estimate(DATA, estimator=estimator, budgets=budgets)
    for run in result.runs:
        assert_honest(run)
    assert result.flops_spent == pytest.approx(sum(r["flops_spent"] for r in result.runs))


def test_a_requential_run_is_planned_at_its_real_cost():
    # 3e9 FLOPs buy less than a pass: the plan must spend most of it, and not a FLOP more.
    result = estimators.estimate(DATA, estimator="requential", budgets=[3e9], families=["transformer"])
    for run in result.runs:
        assert_honest(run)
        assert run["flops_spent"] > 0.6 * 3e9  # steps are coarse: each costs 56N per token


def small_split(kib: int = 12, context: int = 128):
    tokens = np.frombuffer(MARKOV.sample(kib * 1024, seed=23), dtype=np.uint8)
    return split(tokens, context, 0, 1024)


def config(replay_epochs: int = 0, context: int = 128) -> prequential.RunConfig:
    return prequential.RunConfig(GPTConfig(256, 64, 2, context), 0, 3e-2, 2e-3, 8, 10 ** 9,
                                 12 * 1024, replay_epochs)


# Requential samples token by token, so it gets less data and a shorter context.
@pytest.mark.parametrize("module,replay_epochs,kib,context", [
    (prequential, 0, 12, 128), (prequential, 3, 12, 128), (requential, 0, 4, 96)])
def test_counted_flops_match_the_matmuls_of_the_whole_run(module, replay_epochs, kib, context):
    data_split, cfg = small_split(kib, context), config(replay_epochs, context)
    with FlopCounterMode(display=False) as counter:  # every linear layer, fwd + bwd
        result = module.run(data_split, cfg, CPU)
    n, depth, width = result.params, 2, 64
    # As in test_estimator_flops: attention's fused kernel is invisible to the counter, and
    # costs 2*depth*context*width per forward token; each 2N counted is one forward token.
    attention = result.flops_spent / (2 * n) * 2 * depth * context * width
    actual = counter.get_total_flops() + attention
    assert abs(result.flops_spent - actual) / actual < 0.10


@pytest.mark.parametrize("module,budget", [(prequential, math.inf), (requential, 0.0)])
def test_a_one_pass_run_spends_exactly_what_was_planned(module, budget):
    # A zero budget leaves the requential teacher no room to wait for its student.
    data_split, cfg = small_split(4, 64), replace(config(context=64), budget_flops=budget)
    result = module.run(data_split, cfg, CPU)
    planned = module.planned_flops(prequential.train_schedule(data_split, cfg), 64,
                                   result.params, len(data_split.heldout))
    assert result.flops_spent == pytest.approx(planned, rel=1e-12)


def plan(preset: str, data: bytes, budgets=None) -> list:
    chosen, ladder = resolve(preset, budgets)
    return _Sweep(load(data), chosen, ladder, "prequential", [0], CPU, None, None).plan


@pytest.mark.parametrize("size", [64 * 1024, 1 << 20, 16 << 20])
def test_each_preset_makes_every_run_of_the_one_it_includes(size):
    data = synthetic.constant_bytes(size)
    for preset in PRESETS.values():
        if preset.includes:
            assert set(plan(preset.includes, data)) <= set(plan(preset.name, data))
            assert set(plan(preset.includes, data, [1e10, 1e11])) <= \
                set(plan(preset.name, data, [1e10, 1e11]))


def test_a_rung_above_one_pass_buys_replay_epochs_of_the_size_that_makes_most_steps():
    # quick stays one pass itself, but its 48x2 size, with quick's settings, is standard's
    # replay: 25 epochs of it (6 Mi tokens a block boundary) make some 3,400 steps in 1e13, a
    # 192x3 one about 110
    runs = plan("standard", synthetic.constant_bytes(256 * 1024))
    top = PRESETS["standard"].budgets[-1]
    replays = [r for r in runs if r.replay_epochs]
    assert [(r.preset.name, r.size, r.replay_epochs) for r in replays] == \
        [("quick", (48, 2, 128), 25)]
    assert 0.5 * top < replays[0].planned_flops <= top
    assert replays[0].cap == (2047 - 102) * 128  # every sequence but the 5% held out


@pytest.mark.parametrize("kib,epochs", [(192, 32), (384, 16), (512, 12)])
def test_a_replay_trains_at_most_max_replay_tokens_a_block_boundary(kib, epochs):
    # what bounds a replay's wall time: at 512 KiB, 1e13 bought 18 epochs and the sweep took
    # 343 s, every family; 12 took 189 s. Smaller files still buy the most of the rung.
    standard = PRESETS["standard"]
    data = load(synthetic.constant_bytes(kib << 10))
    sweep = _Sweep(data, standard, list(standard.budgets), "prequential", [0], CPU, None, None)
    (replay,) = [r for r in sweep.plan if r.replay_epochs]
    assert replay.replay_epochs == epochs
    assert epochs * replay.cap <= standard.max_replay_tokens < (epochs + 1) * replay.cap or \
        epochs == standard.max_replay_epochs
    assert not [w for w in sweep.warnings if "too small for the budget" in w]


@pytest.mark.parametrize("kib,top", [(256, 1e11), (12 << 10, 1e11), (24 << 10, 1e12)])
def test_every_rung_of_quick_buys_something_from_256_kib(kib, top):
    # quick's top rung was 1e12 for all data, and a 256 KiB file repeated its 1.5e11 pass there.
    # The transformer's pass serves 1e11 at most; 1e12 joins where a count-family size needs
    # more than 1e11 to code the data: from 12.8 MiB.
    data = load(synthetic.constant_bytes(kib << 10))
    sweep = _Sweep(data, *resolve("quick", None), "prequential", [0], CPU, None, None)
    assert sweep.budgets[-1] == top and sweep.budgets[:3] == [1e9, 1e10, 1e11]
    assert 0.5e11 < max(r.planned_flops for r in sweep.plan) <= 1e11
    assert not [w for w in sweep.warnings if "too small for the budget" in w]
    needs = max(count_family.checkpoint_stops(cfg, len(data.tokens), [*sweep.budgets[:3], 1e12])
                [-1][1] for cfg in count_family.SIZES)
    assert (needs > 1e11) == (top == 1e12)
    transformer_only = _Sweep(data, *resolve("quick", None), "prequential", [0], CPU, None,
                              None, ["transformer"])
    assert transformer_only.budgets == [1e9, 1e10, 1e11]  # the rung is the count family's


def test_budgets_given_are_kept_even_where_they_are_a_preset_s_own():
    data = load(synthetic.constant_bytes(24 << 20))
    sweep = _Sweep(data, *resolve("quick", [1e9, 1e10, 1e11]), "prequential", [0], CPU, None, None)
    assert sweep.budgets == [1e9, 1e10, 1e11]  # quick's own ladder gets 1e12 at this size
    given = _Sweep(data, *resolve("quick", [1e10, 1e12]), "prequential", [0], CPU, None, None)
    assert max(r.planned_flops for r in given.plan) > 1e11  # the transformer serves 1e12 here


def test_no_replay_where_a_single_pass_already_spends_most_of_the_rung():
    # 1 MiB: the 192x3 pass spends 9.9e12 of 1e13, so a replay run would buy that rung a
    # second time; at 256 KiB (above) no pass comes near it
    runs = plan("standard", synthetic.constant_bytes(1 << 20))
    assert [r.replay_epochs for r in runs] == [0, 0, 0]
    assert max(r.planned_flops for r in runs) > 0.5 * PRESETS["standard"].budgets[-1]


def test_the_larger_preset_never_reports_a_longer_code():
    budgets = [1e9, 1e10]
    small = estimators.estimate(DATA[:24 * 1024], preset="quick", budgets=budgets)
    large = estimators.estimate(DATA[:24 * 1024], preset="standard", budgets=budgets)
    strip = lambda runs: [{k: v for k, v in r.items() if k != "seconds"} for r in runs]  # noqa
    assert all(run in strip(large.runs) for run in strip(small.runs))
    assert len(large.runs) > len(small.runs)
    for a, b in zip(small.curve, large.curve):
        assert b.epiplexity_bits + b.entropy_bits <= a.epiplexity_bits + a.entropy_bits
