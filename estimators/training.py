"""Pieces every training run shares: device and threads, optimiser, EMA, held-out loss in bits."""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from estimators.data import Split
from estimators.frontier import price_ahead
from estimators.models import GPT

LN2 = math.log(2.0)
EVAL_BATCH_TOKENS = 16384
MIN_EVAL_TOKENS = 2048


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}: use cpu, cuda or auto")
    return torch.device(name)


def cpu_has_bf16_matmul() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than fp32."""
    if "AMX" in torch.backends.cpu.get_cpu_capability():
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def precision(device: torch.device) -> str:
    """The matmul precision training runs in: "bf16" (autocast) or "fp32"."""
    if os.environ.get("EPIPLEX_PRECISION") == "fp32":  # a switch for benchmarks and checks
        return "fp32"
    return "bf16" if device.type == "cuda" or cpu_has_bf16_matmul() else "fp32"


def autocast(device: torch.device):
    """bf16 matmuls on a GPU and on CPUs with bf16 hardware; fp32 elsewhere, where bf16 is
    slower. Losses and optimiser state stay fp32 either way."""
    return torch.autocast(device.type, dtype=torch.bfloat16,
                          enabled=precision(device) == "bf16")


def cap_threads(threads: int | None) -> int:
    """Cap intra-op threads; concurrent jobs must share the cores, not oversubscribe them.
    Returns the cap: `threads`, else $EPIPLEX_THREADS, else every core."""
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a whole number >= 1, not {threads!r} "
                         "(leave it out to use every core)")
    threads = max(1, threads or int(os.environ.get("EPIPLEX_THREADS", 0)) or os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads


@dataclass
class Checkpoint:
    """One (compute, S, H) point of a run: the model after `tokens_trained` training tokens."""

    tokens_trained: int
    compute_flops: float
    epiplexity_bits: float
    entropy_bits: float
    heldout_bits_per_token: float
    heldout_stderr: float  # standard error of the held-out loss, bits per token
    extra: dict = field(default_factory=dict)


def checkpoint_entropy(final: float, stderr: float, split: Split, reached: int, cfg) -> float:
    """H of a checkpoint that has learned from the training sequences before `reached`: every
    token of the data at its held-out loss `final`, except the training tokens ahead of it,
    which it has not learned from and which `frontier.price_ahead` prices conservatively.
    (`cfg` is the run's: `dataset_tokens`, `model.vocab_size`.)"""
    ahead = split.train_tokens - reached * split.context
    price = price_ahead(final, stderr, math.log2(cfg.model.vocab_size))
    return final * (cfg.dataset_tokens - ahead) + price * ahead


def checkpoint_steps(batch_sizes: list[int], context: int) -> set[int]:
    """Steps after which to evaluate: one per doubling of training tokens, and the last."""
    tokens = np.cumsum(batch_sizes) * context
    total, steps, target = tokens[-1], set(), tokens[0]
    while target < total:
        steps.add(int(np.searchsorted(tokens, target)))
        target *= 2
    steps.add(len(batch_sizes) - 1)
    return steps


class Adam:
    """Adam over parameter groups, one fused kernel call per group: the update torch.optim.Adam
    makes with `fused=True`, called directly. torch.optim's wrappers import torch._dynamo on
    first use, about 2 s in every fresh process (and a lane waits on the import lock for it).
    `param_groups` are dicts with "params" and "lr", as in torch.optim."""

    def __init__(self, groups: list[dict], betas: tuple[float, float], eps: float):
        self.param_groups = groups
        self.betas, self.eps = betas, eps
        self._state = [([torch.zeros_like(p) for p in g["params"]],
                        [torch.zeros_like(p) for p in g["params"]],
                        [torch.zeros((), dtype=torch.float32, device=p.device) for p in g["params"]])
                       for g in groups]

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for group, (exp_avgs, exp_avg_sqs, steps) in zip(self.param_groups, self._state):
            params = group["params"]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(params, [p.grad for p in params], exp_avgs, exp_avg_sqs, [], steps,
                               amsgrad=False, lr=group["lr"], beta1=self.betas[0],
                               beta2=self.betas[1], weight_decay=0.0, eps=self.eps,
                               maximize=False, grad_scale=None, found_inf=None)


def make_optimizer(model: GPT, lr: float, hidden_lr: float) -> Adam:
    """Adam with muP groups (the fused kernel: one pass over each parameter; the same update
    as the per-tensor loop, measured in bench/)."""
    return Adam(model.param_groups(lr, hidden_lr), betas=(0.9, 0.95), eps=1e-10)


def set_lr(opt: Adam, base: list[float], step: int, warmup: int) -> None:
    """Linear warm-up over `warmup` steps, then constant (a prequential run never decays)."""
    scale = min(1.0, (step + 1) / warmup)
    for group, lr in zip(opt.param_groups, base):
        group["lr"] = lr * scale


class EMA:
    """Polyak-style average whose window grows with training (about the last tenth of steps),
    so it smooths step noise without lagging far behind a model that is still learning."""

    def __init__(self, model: GPT):
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.steps = 0

    @torch.no_grad()
    def update(self, model: GPT) -> None:
        self.steps += 1
        weight = 1.0 / (1.0 + self.steps / 10.0)
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), weight)


def token_bits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Code length of each target under the logits, in bits, shape (batch, time). The softmax
    runs over the contiguous last axis (a (batch, vocab, time) view would be copied twice)."""
    flat = logits.float().reshape(-1, logits.shape[-1])
    return (F.cross_entropy(flat, targets.reshape(-1), reduction="none") / LN2).view(targets.shape)


def eval_sequences(heldout_count: int, context: int, trained_tokens: int) -> int:
    """Held-out sequences a checkpoint evaluates: as many tokens as were trained (at least
    MIN_EVAL_TOKENS), up to the whole slice. Early checkpoints are cheap and many, so a full
    evaluation would cost more than their training; the stderr records the extra noise."""
    wanted = max(MIN_EVAL_TOKENS, trained_tokens) // context
    return max(1, min(heldout_count, wanted))


@torch.inference_mode()
def mean_bits(model: GPT, split: Split, starts: np.ndarray,
              device: torch.device) -> tuple[float, float]:
    """Mean bits per token of `model` on the sequences at `starts`, and its standard error:
    from the spread of the sequences' means, or of one sequence's tokens when it is the only
    one (small data). Left unknown (NaN), that error counted as none: a transformer scored
    1 KiB of random bytes at 7.99 bits/byte and won the frontier, and the result was not
    valid JSON."""
    per_sequence = []
    step = max(1, EVAL_BATCH_TOKENS // split.context)
    for i in range(0, len(starts), step):
        seq = torch.from_numpy(split.sequences(starts[i:i + step])).to(device)
        with autocast(device):
            logits = model(seq[:, :-1])
        per_sequence.append(token_bits(logits, seq[:, 1:]).double().cpu())
    bits = torch.cat(per_sequence)
    losses = bits.mean(1) if len(bits) > 1 else bits.reshape(-1)
    return bits.mean().item(), losses.std().item() / math.sqrt(len(losses))


def heldout_loss(model: GPT, split: Split, device: torch.device,
                 sequences: int | None = None) -> tuple[float, float]:
    """Mean bits per token on the held-out slice (or `sequences` of it, spread through the
    stream), and its stderr."""
    starts = split.heldout if sequences is None else split.heldout_sample(sequences)
    return mean_bits(model, split, starts, device)


def save_model(model: GPT, path, **meta) -> None:
    """Write a trained model with its config and how it was trained (for transfer)."""
    import dataclasses

    payload = {"config": dataclasses.asdict(model.cfg),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **meta}
    tmp = f"{path}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_model(path, device: torch.device) -> tuple[GPT, dict]:
    """A model written by `save_model`, and its metadata."""
    from estimators.models import GPTConfig

    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**payload.pop("config")))
    model.load_state_dict(payload.pop("state_dict"))
    return model.to(device), payload
