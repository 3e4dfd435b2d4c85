"""How far the count family's held-out loss L lies from the truth, with and without pairing.

    .venv/bin/python bench/bench_pairing.py [--samples 6]
    .venv/bin/python bench/bench_pairing.py --drawn-chains 40 [--size-kib 256]
    .venv/bin/python bench/bench_pairing.py --rotations [--size-kib 256]

For samples of Markov chains, one size of the count family makes its pass, then L is measured
on the held-out blocks as they are (uncorrected) and corrected by the online code
(`estimators/pairing.py`). The truth is what the same final model, frozen, codes 1 MiB more
of the chain in: the loss a held-out estimate stands for. Prints the error's mean and spread
over the samples, in bits per byte, beside the standard error a run reports (its mean over the
samples), which should be about the spread.

`--drawn-chains K` draws K Markov chains instead (orders 1-5, 2-16 symbols, rows from
Dirichlet laws of concentration 0.05-1, so many nearly deterministic) and sets L of two sizes
beside the loss the same final model has over the whole sample: its loss on the held-out
blocks over what the true probabilities code them in, times what they code the sample in (the
oracle is known for every byte, so this takes the draw of blocks out). Prints the relative
error's mean, root mean square and largest, and how many runs err by more than 2% and 5%.

`--rotations` measures the same on real text, where no oracle is known: each rotation of the
held-out slice (`Holdout.rotation`) holds out another block of every stratum, so the
`every` runs together hold out every block once, and what their final models code all the
blocks in is the truth that one slice estimates. For each text and size, prints the error of
L, uncorrected and corrected, over the rotations (mean and root mean square), beside the
standard error the runs report, and the same for S.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import machine  # noqa: E402
from estimators import blending, context_mixing, count_family, panel, synthetic  # noqa: E402
from estimators.holdout import LEARNING, Holdout  # noqa: E402

SIZES = {cfg.name: cfg for cfg in count_family.SIZES}
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
    run = count_family.slice_run(SIZES[name], data[:size], Holdout.for_size(size))
    truth = frozen_bits(run["model"], data, size)
    return run["uncorrected"] - truth, run["corrected"] - truth, run["stderr"]


def drawn_chains(count: int, seed: int = 123,
                 orders: tuple[int, int] = (1, 5)) -> list[synthetic.MarkovSource]:
    """`count` chains whose order (within `orders`), alphabet and concentration are drawn from
    `seed`; at most 4,096 states each (an alphabet too large for the lowest order is not drawn,
    and the order is lowered until the chain fits)."""
    rng = np.random.default_rng(seed)
    alphabets = [s for s in (2, 3, 4, 6, 8, 16) if s ** orders[0] <= 4096]
    chains = []
    for i in range(count):
        order = int(rng.integers(orders[0], orders[1] + 1))
        symbols = int(rng.choice(alphabets))
        while symbols ** order > 4096:
            order -= 1
        concentration = float(rng.choice([0.05, 0.1, 0.3, 0.5, 1.0]))
        chains.append(synthetic.MarkovSource(order, symbols, concentration, seed=1000 + i))
    return chains


def relative_errors(source: synthetic.MarkovSource, size: int, names: list[str],
                    seed: int) -> list[tuple[float, float]] | None:
    """For each size named, the uncorrected and corrected L over the sample's truth, less 1;
    None for a chain that codes the sample in under 0.002 bits/byte (nearly no bits to share)."""
    sample = source.sample(size, seed=seed)
    oracle = source.bits(sample)
    data = np.frombuffer(sample, np.uint8).copy()
    if oracle.mean() < 0.002:
        return None
    holdout = Holdout.for_size(size)
    block = 1 << holdout.shift
    oracle_blocks = np.array([oracle[s:s + block].sum() for s in holdout.block_starts(size)])
    found = []
    for name in names:
        run = count_family.slice_run(SIZES[name], data, holdout)
        truth = run["bits"].sum() / oracle_blocks.sum() * oracle.mean()
        found.append((run["uncorrected"] / truth - 1, run["corrected"] / truth - 1))
    return found


def drawn_chains_table(count: int, size: int) -> None:
    names = ["blend-order4", "cm-order4"]
    found = [e for i, source in enumerate(drawn_chains(count))
             for e in (relative_errors(source, size, names, seed=i) or [])]
    print(f"{count} drawn chains, {size >> 10} KiB, sizes {', '.join(names)}: {len(found)} runs\n")
    print("| L | mean error | root mean square | largest | beyond 2% | beyond 5% |\n"
          "|---|---|---|---|---|---|")
    for column, label in enumerate(("uncorrected", "corrected")):
        error = np.array([f[column] for f in found])
        print(f"| {label} | {error.mean():+.4f} | {np.sqrt((error ** 2).mean()):.4f} | "
              f"{np.abs(error).max():.4f} | {(np.abs(error) > 0.02).sum()} | "
              f"{(np.abs(error) > 0.05).sum()} |")


TEXTS = {"Python source": panel.python_source, "docstrings": panel.docstrings}
TEXTS |= {f"{label}, lines shuffled": (lambda size, make=make:
                                       synthetic.shuffled_lines(make(size), seed=6))
          for label, make in TEXTS.items()}


def rotations_table(size: int, name: str = "cm-order6") -> None:
    """The error of L and S of each text over every rotation of the slice (module docstring)."""
    print(f"`{name}`, {size >> 10} KiB, every rotation of the held-out slice; L and S in bits "
          "per byte, errors against the truth as mean, root mean square\n")
    print("| text | KiB | truth L | uncorrected L | corrected L | reported s.e. | truth S | "
          "S error |\n|---|---|---|---|---|---|---|---|")
    for label, make in TEXTS.items():
        data = np.frombuffer(make(size), np.uint8).copy()  # docstrings: 861 KiB at most
        runs, truth = count_family.every_rotation(SIZES[name], data)
        # S of each run with its training bytes at the truth, against S as it reads it
        s_true = np.array([(r["online"] - truth * r["coded"]) / len(data) for r in runs])
        s_read = np.array([(r["online"] - r["training"] * r["coded"]) / len(data) for r in runs])

        def errors(error: np.ndarray) -> str:
            return f"{error.mean():+.4f}, {np.sqrt((error ** 2).mean()):.4f}"
        loss = {key: errors(np.array([r[key] for r in runs]) - truth)
                for key in ("uncorrected", "corrected")}
        print(f"| {label} | {len(data) >> 10} | {truth:.4f} | {loss['uncorrected']} | "
              f"{loss['corrected']} | {np.mean([r['stderr'] for r in runs]):.4f} | "
              f"{s_true.mean():.4f} | {errors(s_read - s_true)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--drawn-chains", type=int, metavar="K",
                        help="K drawn chains, L against the final model's loss on the sample")
    parser.add_argument("--rotations", action="store_true",
                        help="real text, L and S against every rotation of the held-out slice")
    parser.add_argument("--size-kib", type=int, default=256,
                        help="with --drawn-chains or --rotations")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    if args.rotations:
        return rotations_table(args.size_kib << 10)
    if args.drawn_chains:
        return drawn_chains_table(args.drawn_chains, args.size_kib << 10)
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
