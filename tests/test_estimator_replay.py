"""Replay (block-wise prequential coding): still a valid code, and compute buys a shorter one."""
import numpy as np
import pytest
import torch

from estimators import prequential, synthetic
from estimators.data import split
from estimators.models import GPTConfig
from estimators.training import checkpoint_steps

MARKOV = synthetic.MarkovSource(order=1, alphabet=16, seed=11)
TOKENS = np.frombuffer(MARKOV.sample(24 * 1024, seed=12), dtype=np.uint8)
CONTEXT = 64
CPU = torch.device("cpu")


def config(replay_epochs: int) -> prequential.RunConfig:
    return prequential.RunConfig(GPTConfig(256, 32, 1, CONTEXT), seed=0, learning_rate=3e-2,
                                 hidden_learning_rate=2e-3, batch_sequences=16,
                                 max_train_tokens=10 ** 9, dataset_tokens=len(TOKENS),
                                 replay_epochs=replay_epochs)


def code(tokens: np.ndarray, replay_epochs: int) -> prequential.RunResult:
    return prequential.run(split(tokens, CONTEXT, 0, 2048), config(replay_epochs), CPU,
                           keep_token_bits=True)


@pytest.fixture(scope="module")
def replayed():
    return code(TOKENS, replay_epochs=4)


def test_changing_later_bytes_never_changes_the_code_of_earlier_ones(replayed):
    data_split = split(TOKENS, CONTEXT, 0, 2048)
    sizes = prequential.train_schedule(data_split, config(4))
    boundary = sorted(checkpoint_steps(sizes, CONTEXT))[-3]  # a replay happened right after it
    coded = sum(sizes[:boundary + 1])  # sequences coded before the change
    changed = TOKENS.copy()
    rng = np.random.default_rng(0)
    for start in data_split.train[coded:]:  # rewrite the inside of every later sequence
        changed[start + 1:start + CONTEXT] = rng.integers(0, 256, CONTEXT - 1)
    other = code(changed, replay_epochs=4)
    cut = coded * CONTEXT
    assert np.array_equal(replayed.online_token_bits[:cut], other.online_token_bits[:cut])
    # the change is real: random bytes cost far more than the Markov tokens they replace
    assert other.online_token_bits[cut:].mean() > replayed.online_token_bits[cut:].mean() + 1


def test_the_code_is_the_sum_of_per_token_code_lengths(replayed):
    assert replayed.online_token_bits.shape == (replayed.tokens_trained,)
    assert replayed.online_token_bits.sum() == pytest.approx(replayed.online_bits, rel=1e-6)


def test_replay_buys_a_shorter_code_with_more_compute(replayed):
    one_pass = code(TOKENS, replay_epochs=0)
    assert replayed.flops_spent > 2 * one_pass.flops_spent
    assert replayed.online_bits < 0.97 * one_pass.online_bits
    best = lambda r: min(c.epiplexity_bits + c.entropy_bits for c in r.checkpoints)  # noqa: E731
    assert best(replayed) < best(one_pass)
