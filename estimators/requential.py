"""Requential estimate: the cost of teaching a student what the teacher learned.

A teacher trains on the real data (exactly the prequential run). A student with the same
architecture and initialisation sees only sequences sampled from an EMA of the teacher, and
learns from them as a receiver could: cross-entropy on the sampled tokens, nothing else (the
teacher's full distribution would hand it the model for free). Sending each sampled token to
someone who holds the student costs about KL(teacher || student) bits (relative-entropy
coding), charged before the student learns from it, so
    S = sum over sampled positions of KL(P_teacher || P_student)   (bits)
    H = D * (student's held-out loss on real data)
While the running KL exceeds `max_kl` the teacher is frozen and the student catches up, as
far as the run's budget allows. A fixed teacher would make this the prequential code again,
so S_req <= S_preq is expected; the sweep warns where it fails.

The student learns from each sample with STUDENT_STEPS optimiser steps (the receiver holds the
sample, so only the first costs bits) at a lower learning rate than the teacher's. Per teacher
token the run spends 6N (teacher) + 2N (sampling, which also scores the sample)
+ STUDENT_STEPS * 6N (student), and two held-out evaluations at each checkpoint.
"""
from __future__ import annotations

import time
from dataclasses import replace

import torch

from estimators import flops
from estimators.data import Split
from estimators.prequential import Learner, Progress, RunConfig, RunResult, train_schedule
from estimators.training import (LN2, Checkpoint, autocast, checkpoint_entropy, checkpoint_steps,
                                 eval_sequences, heldout_loss, token_bits)

# Running KL per token above which the teacher waits for the student. Waiting charges every
# catch-up sample at the student's high KL and bought no lower H when measured (16 KiB order-1
# Markov: a 0.1 threshold gave S_req 7,262 bits, 0.3 gave 6,025, 1.0 never waited and gave
# 4,813, for the same H), so it is only a fallback for a student that lags badly.
MAX_KL_BITS = 1.0
# The student takes several optimiser steps on each sample once its KL is charged: the receiver
# holds the sample, so reusing it is free in bits and costs only FLOPs (counted). With a smaller
# learning rate than the teacher's, these steps let the student track the teacher closely;
# with one step per sample it lagged, and catching up cost several bits of KL per token
# (16 KiB order-1 Markov, quick 48x2: S_req 17,540 bits against S_preq 6,848; now 4,813).
STUDENT_STEPS = 8
STUDENT_LR_SCALE = 0.25  # student learning rates, as a fraction of the teacher's
SAMPLER_SEED_OFFSET = 7919  # sampling randomness is shared with the receiver, so it is free


def kl_bits(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """Full-vocabulary KL(teacher || student) per position, in bits."""
    t = torch.log_softmax(teacher_logits.float(), -1)
    s = torch.log_softmax(student_logits.float(), -1)
    return (t.exp() * (t - s)).sum(-1) / LN2


def student_step_flops(params: int, tokens: int) -> float:
    """Sampling `tokens` from the teacher (their logits come with them) and training on them
    STUDENT_STEPS times."""
    return flops.sample_flops(params, tokens) + STUDENT_STEPS * flops.train_flops(params, tokens)


def planned_steps(sizes: list[int], context: int, params: int, heldout_count: int) -> list[float]:
    """FLOPs spent by the end of each teacher step when the teacher never waits."""
    spent, used, out = 0.0, 0, []
    boundaries = checkpoint_steps(sizes, context)
    for step, size in enumerate(sizes):
        used += size
        spent += flops.train_flops(params, size * context) + student_step_flops(params, size * context)
        if step in boundaries:
            count = eval_sequences(heldout_count, context, used * context)
            spent += 2 * flops.eval_flops(params, count * context)
        out.append(spent)
    return out


def planned_flops(sizes: list[int], context: int, params: int, heldout_count: int,
                  replay_epochs: int = 0) -> float:
    """What a run over `sizes` spends: catch-up steps only use what its budget leaves over."""
    return planned_steps(sizes, context, params, heldout_count)[-1]


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
    teacher = Learner(cfg, device)
    student = Learner(replace(cfg, learning_rate=cfg.learning_rate * STUDENT_LR_SCALE,
                              hidden_learning_rate=cfg.hidden_learning_rate * STUDENT_LR_SCALE),
                      device)
    n, context = teacher.model.num_params(), split.context
    sampler = torch.Generator(device=device).manual_seed(cfg.seed + SAMPLER_SEED_OFFSET)
    sizes = train_schedule(split, cfg)
    checkpoints_at = checkpoint_steps(sizes, context)
    planned = planned_steps(sizes, context, n, len(split.heldout))
    max_samples = 2 * len(sizes)  # sample batches the student may take, catch-up included
    teacher_bits = kl_total = running_kl = spent = 0.0
    trained = student_tokens = offset = step = samples = 0
    checkpoints: list[Checkpoint] = []
    sample = None
    while step < len(sizes):
        size = sizes[step]
        # The teacher waits while the student lags, if the rest of the plan still fits.
        still_planned = planned[-1] - (planned[step - 1] if step else 0.0)
        frozen = (running_kl > max_kl
                  and samples < max_samples - (len(sizes) - step)
                  and spent + student_step_flops(n, size * context) + still_planned
                  <= cfg.budget_flops)
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
            sample, target = teacher.ema.model.sample(size, context + 1, sampler, first)
        with autocast(device):
            predicted = student.model(sample[:, :-1])
        kl = kl_bits(target, predicted.detach())  # charged before the student learns from it
        kl_total += kl.sum().item()
        student.step(token_bits(predicted, sample[:, 1:]).mean())
        for _ in range(STUDENT_STEPS - 1):
            with autocast(device):
                again = student.model(sample[:, :-1])
            student.step(token_bits(again, sample[:, 1:]).mean())
        running_kl = 0.9 * running_kl + 0.1 * kl.mean().item()
        student_tokens += kl.numel()
        samples += 1
        spent += student_step_flops(n, kl.numel())

        if not frozen and step in checkpoints_at:
            count = eval_sequences(len(split.heldout), context, trained)
            final, stderr = heldout_loss(student.ema.model, split, device, count)
            teacher_final, _ = heldout_loss(teacher.ema.model, split, device, count)
            spent += 2 * flops.eval_flops(n, count * context)
            checkpoints.append(Checkpoint(
                tokens_trained=trained,
                compute_flops=spent,
                epiplexity_bits=kl_total,
                entropy_bits=checkpoint_entropy(final, stderr, split, offset, cfg),
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
