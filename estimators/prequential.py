"""Prequential estimate: the area under a learning curve, above its final loss.

Each batch is coded with the model *before* it trains on that batch, so the running sum of
online losses is an honest code length. After d training tokens, with L the EMA model's
held-out loss (bits/token) and D the dataset's tokens:
    S = sum(online bits) - L * d        H = L * D

Replay (block-wise prequential coding, Blier & Ollivier 2018): at each block boundary (every
doubling of the coded prefix) the learner first trains `replay_epochs` more epochs on the
tokens already coded, early-stopped on a slice of them, then codes the next block. No token
is coded by a model that saw it, so the code stays valid; extra compute buys a shorter code
when the data is smaller than the budget. Every FLOP spent, replay and evaluations included,
is in the compute of every later checkpoint.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from estimators import flops
from estimators.data import Split, batch_schedule
from estimators.models import GPT, GPTConfig
from estimators.training import (EMA, Checkpoint, autocast, checkpoint_entropy, checkpoint_steps,
                                 eval_sequences, heldout_loss, make_optimizer, mean_bits, set_lr,
                                 token_bits)

WARMUP_STEPS = 8
REPLAY_VALIDATION_EVERY = 10  # every 10th coded sequence early-stops replay and is not replayed

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
    replay_epochs: int = 0  # epochs over the coded prefix before each new block (0: one pass)
    budget_flops: float = math.inf  # the budget the run serves; a run never spends past it


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
    online_token_bits: np.ndarray | None = None  # each coded token's bits, in coding order


def train_schedule(split: Split, cfg: RunConfig) -> list[int]:
    usable = min(len(split.train), max(1, cfg.max_train_tokens // split.context))
    return batch_schedule(usable, cfg.batch_sequences)


_SEEDING = threading.Lock()  # runs on parallel lanes seed the global generator one at a time


def init_model(cfg: RunConfig, device: torch.device) -> GPT:
    with _SEEDING:
        torch.manual_seed(cfg.seed)
        model = GPT(cfg.model)
    return model.to(device)


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
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.ema.update(self.model)
        self.steps += 1


def replay_slices(prefix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The coded prefix cut into (sequences replayed, early-stopping slice)."""
    stop = np.zeros(len(prefix), dtype=bool)
    stop[::REPLAY_VALIDATION_EVERY] = True
    return prefix[~stop], prefix[stop]


def replay_flops(params: int, prefix_sequences: int, context: int, epochs: int) -> float:
    """The most a replay at one boundary spends: an evaluation of the early-stopping slice,
    then each epoch's training and evaluation (early stopping only spends less)."""
    stop = -(-prefix_sequences // REPLAY_VALIDATION_EVERY)
    replayed = prefix_sequences - stop
    if not epochs or not replayed:
        return 0.0
    per_epoch = flops.train_flops(params, replayed * context) + flops.eval_flops(params, stop * context)
    return flops.eval_flops(params, stop * context) + epochs * per_epoch


def planned_flops(sizes: list[int], context: int, params: int, heldout_count: int,
                  replay_epochs: int = 0) -> float:
    """What a prequential run over `sizes` spends if every replay epoch runs: the same walk
    as `run`, without training. The sweep plans runs with it, so none passes its budget."""
    spent, used = 0.0, 0
    boundaries = checkpoint_steps(sizes, context)
    for step, size in enumerate(sizes):
        used += size
        spent += flops.train_flops(params, size * context)
        if step in boundaries:
            spent += replay_flops(params, used, context, replay_epochs)
            spent += flops.eval_flops(params, eval_sequences(heldout_count, context, used * context)
                                      * context)
    return spent


def _snapshot(learner: Learner) -> tuple[dict, dict]:
    return ({k: v.clone() for k, v in learner.model.state_dict().items()},
            {k: v.clone() for k, v in learner.ema.model.state_dict().items()})


def replay(learner: Learner, split: Split, prefix: np.ndarray, cfg: RunConfig,
           device: torch.device) -> float:
    """Train up to `cfg.replay_epochs` epochs on the coded `prefix`, keeping the weights that
    code the early-stopping slice best; the FLOPs spent."""
    replayed, stop = replay_slices(prefix)
    n, context = learner.model.num_params(), split.context
    if not cfg.replay_epochs or not len(replayed):
        return 0.0
    best, _ = mean_bits(learner.model, split, stop, device)
    spent = flops.eval_flops(n, len(stop) * context)
    kept = _snapshot(learner)
    order = np.random.default_rng([cfg.seed, len(prefix)])
    for _ in range(cfg.replay_epochs):
        shuffled = order.permutation(replayed)
        for i in range(0, len(shuffled), cfg.batch_sequences):
            seq = torch.from_numpy(split.sequences(shuffled[i:i + cfg.batch_sequences])).to(device)
            with autocast(device):
                logits = learner.model(seq[:, :-1])
            learner.step(token_bits(logits, seq[:, 1:]).mean())
        loss, _ = mean_bits(learner.model, split, stop, device)
        spent += flops.train_flops(n, len(replayed) * context) + flops.eval_flops(n, len(stop) * context)
        if loss >= best:
            break
        best, kept = loss, _snapshot(learner)
    learner.model.load_state_dict(kept[0])
    learner.ema.model.load_state_dict(kept[1])
    return spent


def run(split: Split, cfg: RunConfig, device: torch.device, progress: Progress | None = None,
        keep_model: bool = False, init_state: dict | None = None,
        evaluate: bool = True, keep_token_bits: bool = False) -> RunResult:
    """Code the training sequences once, in order (replaying the coded prefix at each block
    boundary when `cfg.replay_epochs`), and log (compute, S, H) at every boundary.

    `init_state` starts from trained weights instead of the seed's initialisation (transfer);
    `evaluate=False` skips the held-out checkpoints when only the online code is wanted;
    `keep_token_bits` keeps every token's code length (for checking the code's validity)."""
    start = time.perf_counter()
    learner = Learner(cfg, device, init_state)
    n = learner.model.num_params()
    sizes = train_schedule(split, cfg)
    boundaries = checkpoint_steps(sizes, split.context)
    online_bits, trained, spent, offset = 0.0, 0, 0.0, 0
    checkpoints: list[Checkpoint] = []
    coded: list[torch.Tensor] = []
    for step, size in enumerate(sizes):
        seq = torch.from_numpy(split.sequences(split.train[offset:offset + size])).to(device)
        offset += size
        with autocast(device):
            logits = learner.model(seq[:, :-1])
        bits = token_bits(logits, seq[:, 1:])
        learner.step(bits.mean())
        online_bits += bits.sum().item()
        if keep_token_bits:
            coded.append(bits.detach().reshape(-1).cpu())
        trained += bits.numel()
        spent += flops.train_flops(n, bits.numel())
        if progress:
            progress(bits.numel())
        if step not in boundaries:
            continue
        spent += replay(learner, split, split.train[:offset], cfg, device)
        if evaluate:
            count = eval_sequences(len(split.heldout), split.context, trained)
            final, stderr = heldout_loss(learner.ema.model, split, device, count)
            spent += flops.eval_flops(n, count * split.context)
            checkpoints.append(Checkpoint(
                tokens_trained=trained, compute_flops=spent,
                epiplexity_bits=online_bits - final * trained,
                entropy_bits=checkpoint_entropy(final, stderr, split, offset, cfg),
                heldout_bits_per_token=final, heldout_stderr=stderr,
                extra={"online_bits": online_bits, "replay_epochs": cfg.replay_epochs}))
    return RunResult("prequential", cfg, n, checkpoints, spent, time.perf_counter() - start,
                     online_bits=online_bits, tokens_trained=trained,
                     model=learner.ema.model if keep_model else None,
                     online_token_bits=torch.cat(coded).numpy() if keep_token_bits else None)
