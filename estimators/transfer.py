"""Measured transfer: bits saved coding B when training starts from A's model, not from scratch.

Both runs are prequential single passes over the same B tokens with the same seed and
settings, capped at a fixed small budget; the difference of their online code lengths is
the transfer (positive: A helped; negative: A's habits cost bits on B).
"""
from __future__ import annotations

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
    transfer_bits: float  # code(B | scratch) - code(B | start from A)
    transfer_bits_per_byte: float  # per byte of B coded
    scratch_code_bits: float
    transfer_code_bits: float
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
    coded_bytes = round(coded * data.bytes / len(data.tokens))
    saved = scratch.online_bits - warm.online_bits
    return TransferResult(
        source_sha256=meta.get("dataset_sha256", ""), target_sha256=data.sha256,
        transfer_bits=saved, transfer_bits_per_byte=saved / max(1, coded_bytes),
        scratch_code_bits=scratch.online_bits, transfer_code_bits=warm.online_bits,
        target_bytes_coded=coded_bytes, target_tokens_coded=coded,
        budget_flops=flops.train_flops(scratch.params, coded),
        model={"params": scratch.params, "width": cfg_model.width, "depth": cfg_model.depth,
               "context": cfg_model.context},
        seed=seed)


def measure_from_source(source, targets: list, *, format: str = "bytes",
                        target_format: str | None = None, preset: str = "quick", seed: int = 0,
                        device: str = "auto", threads: int | None = None,
                        progress=None) -> list[TransferResult]:
    """Train the source once (the preset's largest model) and measure transfer to each target."""
    from estimators.sweep import estimate

    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "source.pt")
        estimate(source, format=format, preset=preset, seed=seed, device=device,
                 threads=threads, model_out=model_path, progress=progress)
        return [measure(model_path, t, format=target_format or format, preset=preset, seed=seed,
                        device=device, threads=threads) for t in targets]
