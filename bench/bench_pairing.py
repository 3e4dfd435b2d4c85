"""How far the count family's held-out loss L lies from the truth, with and without pairing.

    .venv/bin/python bench/bench_pairing.py [--samples 6]

For samples of Markov chains, one size of the count family makes its pass, then L is measured
on the held-out blocks as they are (uncorrected) and corrected by the online code
(`estimators/pairing.py`). The truth is what the same final model, frozen, codes 1 MiB more
of the chain in: the loss a held-out estimate stands for. Prints the error's mean and spread
over the samples, in bits per byte, beside the standard error a run reports (its mean over the
samples), which should be about the spread.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import machine  # noqa: E402
from estimators import blending, context_mixing, count_family, synthetic  # noqa: E402
from estimators.holdout import LEARNING, Holdout  # noqa: E402
from estimators.pairing import PairedLoss  # noqa: E402

FRESH = 1 << 20  # the truth's own noise: 0.004 bits/byte with 64 KiB
# (size name, bytes, order, symbols, concentration)
CASES = [("cm-order1", 32 << 10, 1, 16, 0.3), ("blend-order4", 256 << 10, 1, 4, 0.3),
         ("cm-order2", 256 << 10, 2, 16, 0.3), ("cm-order4", 128 << 10, 3, 4, 0.5)]


def frozen_bits(model, data: np.ndarray, start: int) -> float:
    """Bits per byte of data[start:] under the model as it is, learning nothing."""
    view = Holdout(30, 16).view(len(data), len(data) + 1, LEARNING)  # nothing held out there
    if isinstance(model, blending.BlendingModel):
        bits, count = blending._code(data, start, len(data), view, False, *model._args(),
                                     np.zeros(1), False, *model._saves(1))
    else:
        bits, count, _ = context_mixing._code(
            data, start, len(data), view, False, *model._kernel_args(), model.state.copy(),
            model.stretch, model.rates, np.zeros(1), False, np.zeros(1, dtype=np.int64),
            np.zeros(1), 0)
    return bits / count


def errors(name: str, size: int, order: int, symbols: int, concentration: float,
           seed: int) -> tuple[float, float, float]:
    """Uncorrected and corrected L less the truth, and the standard error a run reports for
    the corrected L, for one sample."""
    source = synthetic.MarkovSource(order, symbols, concentration, seed=seed)
    data = np.frombuffer(source.sample(size + FRESH, seed=seed + 50), np.uint8).copy()
    holdout = Holdout.for_size(size)
    model = count_family.SIZES[[c.name for c in count_family.SIZES].index(name)].fitted(
        size).model()
    pairing = PairedLoss(holdout, size)
    count_family.learn(model, data[:size], 0, size, holdout, pairing)
    bits, count = model.evaluate(data[:size], size, holdout)
    corrected, _ = pairing.corrected(bits, count, size)
    truth = frozen_bits(model, data, size)
    first, end = holdout.strata(size)
    reported = count_family._stratified_error(corrected / count, (end - first).astype(float))
    return bits.sum() / count.sum() - truth, corrected.sum() / count.sum() - truth, reported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6)
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print("| size, data | uncorrected: mean, spread | corrected: mean, spread | "
          "reported standard error: mean |\n|---|---|---|---|")
    for name, size, order, symbols, concentration in CASES:
        found = np.array([errors(name, size, order, symbols, concentration, seed)
                          for seed in range(args.samples)])
        mean, spread = found.mean(0), found.std(0, ddof=1)
        print(f"| `{name}`, {size >> 10} KiB of order {order} over {symbols} ({concentration}) | "
              f"{mean[0]:+.4f}, {spread[0]:.4f} | {mean[1]:+.4f}, {spread[1]:.4f} | "
              f"{mean[2]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
