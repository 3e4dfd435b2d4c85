"""The one place that counts FLOPs: training 6*N*D, evaluation 2*N*D, N = all parameters."""
from __future__ import annotations


def train_flops(params: int, tokens: int) -> float:
    return 6.0 * params * tokens


def eval_flops(params: int, tokens: int) -> float:
    return 2.0 * params * tokens


def count_params(vocab_size: int, width: int, depth: int, context: int) -> int:
    """Parameters of `models.GPT` without building it (embeddings, blocks, norms, readout)."""
    block = 12 * width * width + 4 * width  # qkv, proj, up, down; two LayerNorms
    return 2 * vocab_size * width + context * width + depth * block + 2 * width


def sample_flops(params: int, tokens: int) -> float:
    """Drawing tokens one at a time with cached keys and values: one forward pass each."""
    return 2.0 * params * tokens
