"""The blending size of the count family: a valid code, honest evaluations, the rates it reaches."""
import lzma

import numpy as np
import pytest

from estimators import count_family, estimate, panel, synthetic
from estimators.blending import BlendingConfig, BlendingModel
from estimators.holdout import Holdout
from estimators.data import load

BLEND = next(cfg for cfg in count_family.SIZES if isinstance(cfg, BlendingConfig))
BAYES = next(cfg for cfg in count_family.SIZES if isinstance(cfg, BlendingConfig) and cfg.bayes)
CRAMMED = BlendingConfig("test-crammed", (0, 1, 2, 3, 4, 6), table_bits=3)  # 8 slots: collisions
CRAMMED_BAYES = BlendingConfig("test-crammed-bayes", (0, 1, 2, 3, 4, 6), table_bits=3, bayes=True)
NO_HOLDOUT = Holdout(shift=30, every=2)  # first held-out byte at 1 GiB: all bytes train


def per_byte_bits(cfg: BlendingConfig, data: bytes, holdout: Holdout = NO_HOLDOUT):
    array = np.frombuffer(data, dtype=np.uint8)
    out = np.zeros(len(array))
    model = cfg.model()
    bits, coded = model.code(array, 0, len(array), holdout, per_byte=out)
    return out, bits, coded, model


def state(model: BlendingModel) -> list[np.ndarray]:
    return [a.copy() for a in (model.counts, model.sums, model.short, model.weights)]


@pytest.mark.parametrize("cfg", [BLEND.fitted(4096), CRAMMED, BAYES.fitted(4096), CRAMMED_BAYES],
                         ids=lambda c: c.name)
def test_next_byte_probabilities_sum_to_one_even_when_contexts_share_a_slot(cfg):
    prefix = panel.python_source(900)
    probabilities = [2.0 ** -per_byte_bits(cfg, prefix + bytes([value]))[0][-1]
                     for value in range(256)]
    assert min(probabilities) > 0
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-9)
    # it did learn something from the prefix (a Bayes size, whose posterior favours long
    # orders on text, at least the alphabet: this context is new, and 55 bytes were seen)
    assert max(probabilities) > (0.015 if cfg.bayes else 0.05)


@pytest.mark.parametrize("cfg", [BLEND.fitted(6000), CRAMMED, BAYES.fitted(6000), CRAMMED_BAYES],
                         ids=lambda c: c.name)
def test_code_length_of_a_prefix_never_depends_on_later_bytes(cfg):
    text = panel.python_source(6000)
    changed = text[:3000] + bytes(reversed(text[3000:]))
    first, total, coded, _ = per_byte_bits(cfg, text)
    second, _, _, _ = per_byte_bits(cfg, changed)
    assert coded == len(text) and total == pytest.approx(first.sum())
    assert np.array_equal(first[:3000], second[:3000])
    assert not np.array_equal(first[3000:], second[3000:])


def test_a_short_slot_that_is_full_gives_its_least_counted_byte_away_and_stays_valid():
    # 64 symbols at random: an order-2 context meets about 35 distinct bytes, more than a slot holds
    data = synthetic.random_bytes(1 << 18, seed=4, alphabet=bytes(range(64)))
    model = BLEND.fitted(len(data)).model()
    model.code(np.frombuffer(data, np.uint8), 0, len(data), NO_HOLDOUT)
    used = model.short[model.short[:, 0] != 0]
    counts, distinct = used[:, 2:] >> 8, used[:, 1] >> 24
    assert distinct.max() == 30  # some slots are full
    assert np.array_equal(counts.sum(1), used[:, 1] & 0xFFFFFF)  # the sum is the counts' sum
    assert all((counts[i, :d] > 0).all() and (counts[i, d:] == 0).all()
               for i, d in enumerate(distinct))


@pytest.mark.parametrize("cfg", [BLEND, BAYES], ids=lambda c: c.name)
def test_evaluating_codes_every_held_out_block_and_changes_nothing(cfg):
    data = np.frombuffer(panel.python_source(64 << 10), np.uint8)
    holdout = Holdout.for_size(len(data))
    model = cfg.fitted(len(data)).model()
    online, coded = model.code(data, 0, len(data), holdout)
    before = state(model)
    bits, count = model.evaluate(data, len(data), holdout)
    assert all(np.array_equal(a, b) for a, b in zip(before, state(model)))
    assert count.sum() == holdout.mask(len(data)).sum()
    again, _ = model.evaluate(data, len(data), holdout)
    assert np.array_equal(bits, again)
    # the final model codes held-out source well below the uniform code and its own pass (a
    # Bayes size, which does not back off from a new context to a shorter one, 2.6 bits/byte)
    assert bits.sum() / count.sum() < 0.95 * online / coded < 8 * (0.35 if cfg.bayes else 0.3)


def test_a_frozen_block_cannot_count_what_it_reads():
    # a held-out block of one byte amid random ones: frozen, the model never learned it and
    # pays about 8 bits a byte; adaptively it learns the run as it reads (0.18 bits/byte)
    data = np.frombuffer(synthetic.random_bytes(1 << 16, seed=2), np.uint8).copy()
    holdout = Holdout.for_size(len(data))
    start = holdout.block_starts(len(data))[3]
    data[start:start + (1 << holdout.shift)] = 7
    model = BLEND.fitted(len(data)).model()
    model.code(data, 0, len(data), holdout)
    frozen, adaptive, _ = model.evaluate_both_ways(data, len(data), holdout)
    assert frozen[3] / (1 << holdout.shift) > 5
    assert adaptive[3] / (1 << holdout.shift) < 0.25


def test_random_bytes_have_no_structure_and_cost_eight_bits():
    data = load(synthetic.random_bytes(256 << 10, seed=12))
    last = count_family.run(data, BLEND, [1e15])["checkpoints"][-1]
    size = 256 << 10
    assert abs(last["epiplexity_bits"]) / size < 0.01
    assert last["entropy_bits"] / size == pytest.approx(8.0, abs=0.01)


@pytest.mark.parametrize("order,alphabet,concentration,slack", [(1, 256, 0.5, 0.025),
                                                                 (2, 16, 0.3, 0.02),
                                                                 (3, 4, 0.3, 0.01)])
def test_a_markov_chain_is_coded_near_its_rate_and_below_lzma(order, alphabet, concentration,
                                                             slack):
    # H of the final model: 2.4% above the rate of order 1 over 256 symbols (where counts of
    # 65,536 pairs are thin at 256 KiB), 1.6% above order 2 over 16 (0.7% from the held-out
    # blocks alone, before `estimators/pairing.py`: they were 0.2% easier than the sample)
    source = synthetic.MarkovSource(order, alphabet, concentration, seed=order)
    raw = source.sample(256 << 10, seed=9)
    last = count_family.run(load(raw), BLEND, [1e15])["checkpoints"][-1]
    entropy = last["entropy_bits"] / len(raw)
    assert source.entropy_rate_bits * 0.995 < entropy < source.entropy_rate_bits * (1 + slack)
    total = (last["entropy_bits"] + last["epiplexity_bits"]) / len(raw)
    assert total < 8 * len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)) / len(raw)


@pytest.mark.parametrize("cfg", [BLEND, BAYES], ids=lambda c: c.name)
def test_state_bytes_are_what_the_model_holds(cfg):
    fitted = cfg.fitted(1 << 16)
    model = fitted.model()
    held = sum(a.nbytes for a in (model.counts, model.sums, model.short, model.weights))
    assert fitted.state_bytes == held


@pytest.mark.parametrize("order,alphabet,concentration", [(7, 2, 1.0), (6, 2, 0.5)])
def test_a_chain_of_high_order_over_few_symbols_is_coded_from_its_exact_context(
        order, alphabet, concentration):
    # `blend-order8` counts the chain's own context, where `cm-order24` mixes its orders bit by
    # bit: H 1.0025 times the sample's oracle for both chains, against 1.0092 and 1.0155
    source = synthetic.MarkovSource(order, alphabet, concentration, seed=order)
    raw = source.sample(256 << 10, seed=9)
    oracle = source.bits(raw).mean()
    sizes = {cfg.name: cfg for cfg in count_family.SIZES}
    last = {name: count_family.run(load(raw), sizes[name], [1e15])["checkpoints"][-1]
            for name in ("blend-order8", "cm-order24")}
    entropy = last["blend-order8"]["entropy_bits"] / len(raw)
    assert oracle * 0.995 < entropy < oracle * 1.005
    total = {name: point["entropy_bits"] + point["epiplexity_bits"] for name, point in last.items()}
    assert total["blend-order8"] < total["cm-order24"]


@pytest.mark.parametrize("order,alphabet,concentration,seed", [(6, 4, 0.1, 2), (3, 16, 0.3, 6)])
def test_the_posterior_mixture_codes_a_chain_near_the_bayes_bound(order, alphabet, concentration,
                                                                   seed):
    # 4,096 states for 256 KiB: the Bayes bound given the chain's order, alphabet and Dirichlet
    # law is 1.0319 and 1.0467 times the sample's oracle. `bayes-order8` learns all three and
    # its final model codes the held-out bytes at 1.0350 and 1.0505 times it; the count
    # family's winner before, `cm-order24` and `cm-order4`, at 1.0475 and 1.0585.
    source = synthetic.MarkovSource(order, alphabet, concentration, seed=seed)
    raw = source.sample(256 << 10, seed=1)
    oracle, bound = source.bits(raw).mean(), source.posterior_bits(raw).mean()
    result = estimate(raw, preset="quick", families=["context-mixing"])
    top = result.curve[-1]
    assert top.model["name"] == "bayes-order8"
    assert oracle * 0.995 < top.entropy_bits_per_byte < bound * 1.006
    model = BAYES.fitted(len(raw)).model()
    model.code(np.frombuffer(raw, np.uint8), 0, len(raw), NO_HOLDOUT)
    # the posterior rests on the chain's own order
    per_order = model.weights[:-1].reshape(len(BAYES.orders), -1).sum(1)  # last: uniform
    assert BAYES.orders[int(per_order.argmax())] == order and per_order.max() > 0.99
