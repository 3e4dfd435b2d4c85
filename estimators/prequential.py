"""Prequential estimate: the area under a single-pass learning curve, above its final loss.

Each batch is coded with the model *before* it trains on that batch, so the running sum of
online losses is an honest code length. After d training tokens, with L the EMA model's
held-out loss (bits/token) and D the dataset's tokens:
    S = sum(online bits) - L * d        H = L * D
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

from estimators import flops
from estimators.data import Split, batch_schedule
from estimators.models import GPT, GPTConfig
from estimators.training import (EMA, Checkpoint, autocast, checkpoint_steps, heldout_loss,
                                 make_optimizer, set_lr, token_bits)

WARMUP_STEPS = 8

Progress = Callable[[int], None]  # called with the number of training tokens just consumed


@dataclass(frozen=True)
class RunConfig:
    """One training run of the sweep: a model size, a seed and how far to train."""

    model: GPTConfig
    seed: int
    learning_rate: float  # embeddings, readout and norms
    hidden_learning_rate: float  # hidden matrices at the base width (muP scales it)
    batch_sequences: int  # full batch, in sequences of `model.context` tokens
    max_train_tokens: int  # stop early when the budget allows less than one pass
    dataset_tokens: int  # D: the whole dataset is what H codes


@dataclass
class RunResult:
    estimator: str
    config: RunConfig
    params: int
    checkpoints: list[Checkpoint]
    flops_spent: float
    seconds: float
    online_bits: float = 0.0  # the prequential code of the training tokens
    tokens_trained: int = 0
    model: GPT | None = None  # the EMA model, when asked to keep it


def train_schedule(split: Split, cfg: RunConfig) -> list[int]:
    usable = min(len(split.train), max(1, cfg.max_train_tokens // split.context))
    return batch_schedule(usable, cfg.batch_sequences)


def init_model(cfg: RunConfig, device: torch.device) -> GPT:
    torch.manual_seed(cfg.seed)
    return GPT(cfg.model).to(device)


class Learner:
    """A model, its Adam optimiser with warm-up, and its EMA: one learner of a run."""

    def __init__(self, cfg: RunConfig, device: torch.device, init_state: dict | None = None):
        self.model = init_model(cfg, device)
        if init_state is not None:
            self.model.load_state_dict(init_state)
        self.opt = make_optimizer(self.model, cfg.learning_rate, cfg.hidden_learning_rate)
        self.base_lrs = [g["lr"] for g in self.opt.param_groups]
        self.ema = EMA(self.model)
        self.steps = 0

    def step(self, loss: torch.Tensor) -> None:
        set_lr(self.opt, self.base_lrs, self.steps, WARMUP_STEPS)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update(self.model)
        self.steps += 1


def run(split: Split, cfg: RunConfig, device: torch.device, progress: Progress | None = None,
        keep_model: bool = False, init_state: dict | None = None,
        evaluate: bool = True) -> RunResult:
    """Train once over the training sequences and log (compute, S, H) at log-spaced steps.

    `init_state` starts from trained weights instead of the seed's initialisation (transfer);
    `evaluate=False` skips the held-out checkpoints when only the online code is wanted."""
    start = time.perf_counter()
    learner = Learner(cfg, device, init_state)
    n = learner.model.num_params()
    sizes = train_schedule(split, cfg)
    checkpoints_at = checkpoint_steps(sizes, split.context)
    online_bits, trained, spent, offset = 0.0, 0, 0.0, 0
    checkpoints: list[Checkpoint] = []
    for step, size in enumerate(sizes):
        seq = torch.from_numpy(split.sequences(split.train[offset:offset + size])).to(device)
        offset += size
        with autocast(device):
            logits = learner.model(seq[:, :-1])
        bits = token_bits(logits, seq[:, 1:])
        learner.step(bits.mean())
        online_bits += bits.sum().item()
        trained += bits.numel()
        spent += flops.train_flops(n, bits.numel())
        if progress:
            progress(bits.numel())
        if evaluate and step in checkpoints_at:
            final, stderr = heldout_loss(learner.ema.model, split, device)
            spent += flops.eval_flops(n, split.heldout_tokens)
            checkpoints.append(Checkpoint(
                tokens_trained=trained,
                compute_flops=flops.train_flops(n, trained) + flops.eval_flops(n, split.heldout_tokens),
                epiplexity_bits=online_bits - final * trained,
                entropy_bits=final * cfg.dataset_tokens,
                heldout_bits_per_token=final, heldout_stderr=stderr,
                extra={"online_bits": online_bits}))
    return RunResult("prequential", cfg, n, checkpoints, spent, time.perf_counter() - start,
                     online_bits=online_bits, tokens_trained=trained,
                     model=learner.ema.model if keep_model else None)

