"""Measured transfer: bits saved coding B by a coder that holds A's model, over one that does not.

Two prequential single passes over the same B tokens, same seed and settings, capped at a fixed
small budget: one from scratch, one starting from A's model. Transfer is always the transformer
family's: the model the source's sweep trained at the preset's largest size.

What is reported, and why:
- `warm_start_bits` = code(B | scratch) - code(B | start from A), signed. Negative is real
  interference for this learner at this budget, but mostly an artefact: a model trained on
  text gives bytes it never saw almost no probability, and the few optimiser steps of a small
  budget do not undo that (a 16-symbol source scores about -3 bits/byte on random bytes).
- `transfer_bits` = code(B | scratch) - code(B | the Bayes mixture of both starts), the bits
  A saves a coder that may use it. The mixture costs at most one bit over the better start,
  so transfer is never below -1 bit: holding A cannot hurt more than the bit that says to
  ignore it (as conditional information in MDL). This is the figure means and rankings use.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Callable

from estimators import flops, prequential
from estimators.data import DataFormatError, load, split
from estimators.presets import PRESETS


@dataclass(frozen=True)
class TransferResult:
    source_sha256: str
    target_sha256: str
    transfer_bits: float  # code(B | scratch) - code(B | mixture of scratch and A); >= -1 bit
    transfer_bits_per_byte: float  # per byte of B coded
    scratch_code_bits: float
    transfer_code_bits: float  # the run started from A's model
    warm_start_bits: float  # scratch_code_bits - transfer_code_bits: negative is interference
    warm_start_bits_per_byte: float
    target_bytes_coded: int
    target_tokens_coded: int
    budget_flops: float  # of each of the two runs
    model: dict
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def measure(model_path: str | os.PathLike, target, *, format: str = "bytes",
            preset: str = "quick", seed: int = 0, device: str = "auto",
            threads: int | None = None,
            progress: Callable[[float, str], None] | None = None) -> TransferResult:
    """Transfer from the saved source model at `model_path` to `target` (path or bytes).

    `progress(fraction, message)` is called as the two runs consume target tokens."""
    from estimators.training import cap_threads, load_model, pick_device

    cap_threads(threads)
    dev = pick_device(device)
    source, meta = load_model(model_path, dev)
    cfg_model = source.cfg
    data = load(target, format)
    if data.vocab_size > cfg_model.vocab_size:
        raise DataFormatError(f"the target uses {data.vocab_size} token ids but the source model "
                              f"knows {cfg_model.vocab_size}")
    budget_tokens = PRESETS[preset].transfer_tokens
    target_split = split(data.tokens, cfg_model.context, seed, PRESETS[preset].heldout_tokens)
    cfg = prequential.RunConfig(cfg_model, seed, meta["learning_rate"],
                                meta["hidden_learning_rate"], meta["batch_sequences"],
                                budget_tokens, len(data.tokens))
    total = 2 * min(budget_tokens, target_split.train_tokens)
    done = 0

    def tick(label: str) -> Callable[[int], None]:
        def report(tokens: int) -> None:
            nonlocal done
            done += tokens
            if progress:
                progress(min(1.0, done / total), label)
        return report

    scratch = prequential.run(target_split, cfg, dev, tick("coding the target from scratch"),
                              evaluate=False)
    warm = prequential.run(target_split, cfg, dev, tick("coding the target from the source"),
                           evaluate=False, init_state=source.state_dict())
    coded = scratch.tokens_trained
    coded_bytes = coded * data.token_bytes
    warm_start = scratch.online_bits - warm.online_bits
    saved = scratch.online_bits - mixture_code_bits(scratch.online_bits, warm.online_bits)
    return TransferResult(
        source_sha256=meta.get("dataset_sha256", ""), target_sha256=data.sha256,
        transfer_bits=saved, transfer_bits_per_byte=saved / max(1, coded_bytes),
        scratch_code_bits=scratch.online_bits, transfer_code_bits=warm.online_bits,
        warm_start_bits=warm_start, warm_start_bits_per_byte=warm_start / max(1, coded_bytes),
        target_bytes_coded=coded_bytes, target_tokens_coded=coded,
        budget_flops=flops.train_flops(scratch.params, coded),
        model={"family": "transformer", "params": scratch.params, "width": cfg_model.width,
               "depth": cfg_model.depth, "context": cfg_model.context},
        seed=seed)


def mixture_code_bits(a_bits: float, b_bits: float) -> float:
    """Code length of a half-half Bayes mixture of two sequential codes of the same data:
    -log2(2^-a/2 + 2^-b/2), between min(a, b) and min(a, b) + 1."""
    low, gap = min(a_bits, b_bits), abs(a_bits - b_bits)
    return low + 1.0 - math.log2(1.0 + 2.0 ** -gap)


def measure_from_source(source, targets: list, *, format: str = "bytes",
                        target_format: str | None = None, preset: str = "quick", seed: int = 0,
                        device: str = "auto", threads: int | None = None,
                        progress=None) -> list[TransferResult]:
    """Train the source once (the preset's largest model) and measure transfer to each target."""
    from estimators.sweep import estimate

    for target in targets:  # a target that cannot be read fails before the source trains
        load(target, target_format or format)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "source.pt")
        estimate(source, format=format, preset=preset, seed=seed, device=device,
                 threads=threads, model_out=model_path, progress=progress)
        return [measure(model_path, t, format=target_format or format, preset=preset, seed=seed,
                        device=device, threads=threads) for t in targets]
