"""Requential estimate: the cost of teaching a student what the teacher learned.

A teacher trains on the real data (exactly the prequential run). A student with the same
architecture and initialisation sees only sequences sampled from an EMA of the teacher; sending
each sampled batch to someone who holds the student costs about KL(teacher || student) bits per
token (relative-entropy coding), so the model's description length is
    S = sum over student tokens of KL(P_teacher || P_student)   (bits)
    H = D * (student's held-out loss on real data)
While the running KL exceeds `max_kl` the teacher is frozen and the student catches up,
which keeps the code short. A fixed teacher would make this the prequential code again,
so on the same run S_req <= S_preq.
"""
from __future__ import annotations

import time

import torch

from estimators import flops
from estimators.data import Split
from estimators.prequential import Learner, Progress, RunConfig, RunResult, train_schedule
from estimators.training import LN2, Checkpoint, autocast, checkpoint_steps, heldout_loss, token_bits

MAX_KL_BITS = 0.1  # running KL per token above which the teacher waits for the student
SAMPLER_SEED_OFFSET = 7919  # sampling randomness is shared with the receiver, so it is free


def kl_bits(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary KL(teacher || student) per position, in bits."""
    t = torch.log_softmax(teacher_logits.float(), -1)
    s = torch.log_softmax(student_logits.float(), -1)
    return (t.exp() * (t - s)).sum(-1) / LN2


def _first_tokens(previous: torch.Tensor | None, size: int, vocab_size: int,
                  generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Where each sampled sequence starts: tokens drawn from the previous sample, so the
    teacher continues its own text; the very first (teacher still uniform) start anywhere.
    The randomness is shared with the receiver, so the starts cost no bits."""
    if previous is None:
        return torch.randint(0, vocab_size, (size,), generator=generator, device=device)
    pool = previous.reshape(-1)
    return pool[torch.randint(0, len(pool), (size,), generator=generator, device=device)]


def run(split: Split, cfg: RunConfig, device: torch.device, progress: Progress | None = None,
        keep_model: bool = False, max_kl: float = MAX_KL_BITS) -> RunResult:
    """Train teacher and student side by side and log (compute, S_req, H) at log-spaced steps."""
    start = time.perf_counter()
    teacher, student = Learner(cfg, device), Learner(cfg, device)
    n = teacher.model.num_params()
    sampler = torch.Generator(device=device).manual_seed(cfg.seed + SAMPLER_SEED_OFFSET)
    sizes = train_schedule(split, cfg)
    checkpoints_at = checkpoint_steps(sizes, split.context)
    max_student_steps = 2 * len(sizes)
    teacher_bits = kl_total = running_kl = 0.0
    trained = student_tokens = offset = step = 0
    spent = 0.0
    checkpoints: list[Checkpoint] = []
    sample = None
    while step < len(sizes):
        size = sizes[step]
        frozen = running_kl > max_kl and student.steps < max_student_steps - (len(sizes) - step)
        if not frozen:
            seq = torch.from_numpy(split.sequences(split.train[offset:offset + size])).to(device)
            offset += size
            with autocast(device):
                logits = teacher.model(seq[:, :-1])
            bits = token_bits(logits, seq[:, 1:])
            teacher.step(bits.mean())
            teacher_bits += bits.sum().item()
            trained += bits.numel()
            spent += flops.train_flops(n, bits.numel())
            if progress:
                progress(bits.numel())

        first = _first_tokens(sample, size, cfg.model.vocab_size, sampler, device)
        with torch.no_grad(), autocast(device):
            sample = teacher.ema.model.sample(size, split.context + 1, sampler, first)
            target = teacher.ema.model(sample[:, :-1])
        with autocast(device):
            predicted = student.model(sample[:, :-1])
        kl = kl_bits(target, predicted)
        kl_total += kl.sum().item()  # coded before the student learns from it
        student.step(kl.mean())
        running_kl = 0.9 * running_kl + 0.1 * kl.mean().item()
        student_tokens += kl.numel()
        spent += flops.train_flops(n, kl.numel()) + 2 * flops.eval_flops(n, kl.numel())

        if not frozen and step in checkpoints_at:
            final, stderr = heldout_loss(student.ema.model, split, device)
            teacher_final, _ = heldout_loss(teacher.ema.model, split, device)
            spent += 2 * flops.eval_flops(n, split.heldout_tokens)
            checkpoints.append(Checkpoint(
                tokens_trained=trained,
                compute_flops=spent,
                epiplexity_bits=kl_total,
                entropy_bits=final * cfg.dataset_tokens,
                heldout_bits_per_token=final, heldout_stderr=stderr,
                extra={"student_tokens": student_tokens,
                       "teacher_heldout_bits_per_token": teacher_final,
                       "prequential_epiplexity_bits": teacher_bits - teacher_final * trained}))
        if not frozen:
            step += 1
    # The teacher is the model that learned from real data: it is what transfers.
    return RunResult("requential", cfg, n, checkpoints, spent, time.perf_counter() - start,
                     online_bits=teacher_bits, tokens_trained=trained,
                     model=teacher.ema.model if keep_model else None)
