"""FLOP accounting: 6*N*D for training matches what the model's matmuls really do."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from estimators import PRESETS, flops
from estimators.models import GPT, GPTConfig
from estimators.training import token_bits

SIZES = sorted({size for preset in PRESETS.values() for size in preset.sizes})


@pytest.mark.parametrize("width,depth,context", SIZES)
def test_six_n_d_is_within_ten_percent_of_the_matmuls(width, depth, context):
    batch = 2
    with torch.device("meta"):  # shapes only: the counter needs no arithmetic (20 s at 768x12)
        model = GPT(GPTConfig(256, width, depth, context))
        x = torch.randint(0, 256, (batch, context + 1))
    assert model.num_params() == flops.count_params(256, width, depth, context)
    with FlopCounterMode(display=False) as counter:
        token_bits(model(x[:, :-1]), x[:, 1:]).mean().backward()
    linear = counter.get_flop_counts()["Global"][torch.ops.aten.mm]  # every linear, fwd + bwd
    tokens = batch * context
    # Causal attention (QK^T and AV over the visible half; on meta tensors the counter sees
    # attention as the full square, on a CPU not at all): 2 * depth * context * width per token
    # forward (Kaplan et al. 2020), x3.
    attention = 3 * 2 * depth * context * width * tokens
    actual = linear + attention
    estimated = flops.train_flops(model.num_params(), tokens)
    assert abs(estimated - actual) / actual < 0.10


def test_evaluation_costs_a_third_of_training():
    assert flops.eval_flops(1000, 10) * 3 == flops.train_flops(1000, 10)
