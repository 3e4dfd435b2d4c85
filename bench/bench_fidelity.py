"""Fidelity: Epiplex against known truths and against compressors, on generated data.

    bench/fidelity [--preset quick|standard] [--size-kib 256]

Generates the sources of tests/test_laws.py (Markov chains with exact entropy rates, periodic
text, cellular-automaton rows, Python source and its shuffles, Python's compiled extension
modules, random and constant bytes),
scores each with every family, and prints S, H and S+H at the top budget beside the truth,
lzma and zstd -19, all in bits per byte. A compressor below S+H would mean the observer is
loose by that much.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import estimators  # noqa: E402
from machine import machine  # noqa: E402
from estimators import panel, synthetic  # noqa: E402


def sources(size: int) -> list[tuple[str, bytes, str]]:
    """(name, data, truth of S+H in bits/byte as text) for each law-checking source."""
    rows = [("random bytes", synthetic.random_bytes(size, seed=5), "8 (S 0)"),
            ("constant", synthetic.constant_bytes(size), "0")]
    for label, source in [
            ("Markov order 2, 16 symbols", synthetic.MarkovSource(2, 16, 1.0, seed=11)),
            ("Markov order 3, 4 symbols", synthetic.MarkovSource(3, 4, 0.5, seed=12)),
            ("Markov order 1, 16 symbols", synthetic.MarkovSource(1, 16, 0.3, seed=1))]:
        rows.append((label, source.sample(size, seed=3), f"H >= {source.entropy_rate_bits:.3f}"))
    rows.append(("24-byte sentence repeated", synthetic.repeated_sentence(size), "~0"))
    for rule in (15, 30, 54, 90, 110, 150):
        rows.append((f"CA rows, rule {rule}", synthetic.ca_rows(size, rule, seed=4),
                     f"~{64 / size:.5f}"))  # only the random first row is entropy
    python = panel.python_source(size)
    rows += [("Python stdlib source", python, "?"),
             ("  same, lines shuffled", synthetic.shuffled_lines(python, seed=6), "?"),
             ("  same, bytes shuffled", synthetic.shuffled_bytes(python, seed=6), "?"),
             ("Python's compiled modules", panel.machine_code(size), "?")]
    return rows


def _total(point) -> str:
    if point is None:
        return "not run"
    return f"{point.epiplexity_bits_per_byte + point.entropy_bits_per_byte:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=list(estimators.PRESETS))
    parser.add_argument("--size-kib", type=int, default=256)
    parser.add_argument("--families", nargs="+", default=None,
                        help="observer families (default all); one family alone can only "
                             "report an S+H at or above the all-family headline")
    args = parser.parse_args()
    size = args.size_kib * 1024
    print(f"machine: {machine()}")
    families = " ".join(args.families) if args.families else "every family"
    print(f"preset {args.preset}, {args.size_kib} KiB per source, {families}; bits per byte "
          "at the top budget\n")
    header = (f"| {'source':<28} | {'truth':>12} | {'S':>7} | {'H':>7} | {'S+H':>7} | "
              f"{'lzma':>7} | {'zstd-19':>7} | {'transformer':>11} | winner      | seconds |")
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for name, data, truth in sources(size):
        started = time.perf_counter()
        r = estimators.estimate(data, preset=args.preset, families=args.families)
        top = r.curve[-1]
        own = r.families.get("transformer", [None])[-1]
        winner = top.model.get("name", "uniform") if top.family != "uniform" else "uniform"
        print(f"| {name:<28} | {truth:>12} | {top.epiplexity_bits_per_byte:>7.4f} | "
              f"{top.entropy_bits_per_byte:>7.4f} | "
              f"{top.epiplexity_bits_per_byte + top.entropy_bits_per_byte:>7.4f} | "
              f"{r.baselines['lzma_bits_per_byte']:>7.4f} | "
              f"{r.baselines['zstd_bits_per_byte']:>7.4f} | "
              f"{_total(own):>11} | "
              f"{winner:<11} | {time.perf_counter() - started:>7.1f} |", flush=True)


if __name__ == "__main__":
    main()
