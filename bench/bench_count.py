"""Count family speed and memory: MB/s per core of each size, and peak memory on a large input.

    .venv/bin/python bench/bench_count.py [--large-mib 100] [--skip-large]
    .venv/bin/python bench/bench_count.py --against REV

Speed is CPU time of one core (numba, one thread) coding 1 MiB of Python source and 1 MiB of
random bytes, compilation excluded, the fastest of three passes; then the wall time of each
size's whole run in a quick sweep of the source (its pass and held-out evaluations). Peak
memory is the resident high-water mark of a fresh process that scores a `--large-mib` file with
the largest size, its held-out evaluations included, and nothing else loaded (no torch).
`--against REV` times the bitwise sizes' kernels (`estimators/context_mixing.py` and the modules
it draws on) against those of git revision REV instead: both packages imported in this process,
their passes interleaved, so that the drift of a shared machine falls on both alike; it also
checks they code alike.
"""
from __future__ import annotations

import argparse
import importlib
import io
import math
import os
import re
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from estimators import PRESETS, context_mixing, count_family, panel, synthetic  # noqa: E402
from estimators.holdout import Holdout  # noqa: E402
from estimators.data import load  # noqa: E402
from machine import machine  # noqa: E402




def speed(data: bytes, passes: int = 3) -> list[tuple[str, float, float]]:
    """(size, MB/s per core, bits/byte) of a learning pass over `data`, the fastest of
    `passes` (a virtual machine's neighbours slow single passes by up to 3x)."""
    array = np.frombuffer(data, dtype=np.uint8)
    holdout = Holdout.for_size(len(array))
    rows = []
    for cfg in count_family.SIZES:
        fitted = cfg.fitted(len(array))
        warm = fitted.model()  # compile, or load the compiled kernels, before timing
        warm.code(array, 0, 4096, holdout)
        warm.evaluate(array[:65536], 4096, Holdout.for_size(65536))
        fastest = math.inf
        for _ in range(passes):
            model = fitted.model()
            started = time.process_time()
            bits, coded = model.code(array, 0, len(array), holdout)
            fastest = min(fastest, time.process_time() - started)
        rows.append((cfg.name, coded / fastest / 1e6, bits / coded))
    return rows


def run_seconds(data: bytes, budgets: tuple[float, ...]) -> list[float]:
    """Wall seconds of each size's whole run as a sweep makes it: the pass and its held-out
    evaluations at the checkpoints `budgets` place."""
    loaded = load(data)
    seconds = []
    for cfg in count_family.SIZES:
        started = time.perf_counter()
        count_family.run(loaded, cfg, budgets)
        seconds.append(time.perf_counter() - started)
    return seconds


def large_input(path: str, mib: int) -> None:
    """Python source, a Markov chain and random bytes in turn, to `mib` MiB."""
    pieces = [panel.python_source(4 << 20), synthetic.MarkovSource(2, 16).sample(1 << 20),
              synthetic.random_bytes(1 << 20)]
    with open(path, "wb") as f:
        written, i = 0, 0
        while written < mib << 20:
            piece = pieces[i % len(pieces)][: (mib << 20) - written]
            f.write(piece)
            written += len(piece)
            i += 1


def peak_memory_child(path: str) -> None:
    data = load(path)
    started = time.perf_counter()
    run = count_family.run(data, count_family.SIZES[-1], [float("inf")])
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    last = run["checkpoints"][-1]
    print(f"{peak:.0f} {seconds:.1f} {last['tokens_trained']} "
          f"{(last['epiplexity_bits'] + last['entropy_bits']) / len(data.tokens):.4f}")


def kernels_at(rev: str):
    """`context_mixing` as it was at git revision `rev`, with the whole package of then
    (imported as `estimators_then`), so that a change to any module its kernels draw on
    (`match_model`, `records`, ...) is compared too."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "archive", rev, "estimators"], check=True,
                             capture_output=True, cwd=root)
    folder = tempfile.mkdtemp()  # left for numba's cache of the old kernels
    tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(folder, filter="data")
    package = Path(folder, "estimators_then")
    Path(folder, "estimators").rename(package)
    for path in package.rglob("*.py"):  # its imports of itself, under its name here
        path.write_text(re.sub(r"(?m)^(\s*)(from|import) estimators\b", r"\1\2 estimators_then",
                               path.read_text()))
    sys.path.insert(0, folder)
    return importlib.import_module("estimators_then.context_mixing")


def against(rev: str, passes: int = 7) -> None:
    """ns/byte of each bitwise size's learning pass on 1 MiB of source and of random bytes:
    the kernels of git revision `rev`, then this checkout's, the fastest of `passes` each."""
    modules = (kernels_at(rev), context_mixing)
    print(f"machine: {machine()}\n\n{'size':<12} {'data':<7} {rev + ' ns/B':>14} "
          f"{'now ns/B':>10} {'speed-up':>9}")
    arrays = {name: np.frombuffer(data, dtype=np.uint8)
              for name, data in (("source", panel.python_source(1 << 20)),
                                 ("random", synthetic.random_bytes(1 << 20)))}
    holdout = Holdout.for_size(1 << 20)
    for cfg in count_family.SIZES:
        if not isinstance(cfg, context_mixing.ContextMixingConfig):
            continue
        for name, array in arrays.items():
            fastest, bits = [math.inf, math.inf], [0.0, 0.0]
            for i in range(passes + 1):  # the first compiles the kernels, or loads them
                for k, module in enumerate(modules):
                    model = module.ContextMixingModel(cfg.fitted(len(array)))
                    started = time.process_time()
                    bits[k], _ = model.code(array, 0, len(array) if i else 4096, holdout)
                    if i:
                        fastest[k] = min(fastest[k], time.process_time() - started)
            same = "" if bits[0] == bits[1] else f"  (codes differ: {bits[0]} {bits[1]} bits)"
            print(f"{cfg.name:<12} {name:<7} {1e9 * fastest[0] / len(array):>14,.0f} "
                  f"{1e9 * fastest[1] / len(array):>10,.0f} {fastest[0] / fastest[1]:>8.2f}x"
                  f"{same}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large-mib", type=int, default=100)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--against", metavar="REV",
                        help="time the bitwise sizes' kernels against git revision REV's")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against:
        return against(args.against)
    if args.child:
        return peak_memory_child(args.child)
    print(f"machine: {machine()}\n")
    print(f"{'size':<12} {'contexts':>8}  {'source MB/s':>11} {'bits/B':>7}  "
          f"{'random MB/s':>11} {'bits/B':>7}  {'quick run s':>11}")
    text = panel.python_source(1 << 20)
    source = speed(text)
    noise = speed(synthetic.random_bytes(1 << 20))
    runs = run_seconds(text, PRESETS["quick"].all_budgets)
    for cfg, (name, s_rate, s_bits), (_, r_rate, r_bits), run in zip(count_family.SIZES, source,
                                                                      noise, runs):
        print(f"{name:<12} {cfg.contexts:>8}  {s_rate:>11.2f} {s_bits:>7.3f}  "
              f"{r_rate:>11.2f} {r_bits:>7.3f}  {run:>11.2f}")
    print("(quick run s: the whole run of a quick sweep on the source, evaluations included)")
    if args.skip_large:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "large.bin")
        large_input(path, args.large_mib)
        out = subprocess.run([sys.executable, __file__, "--child", path], check=True,
                             capture_output=True, text=True).stdout.split()
    peak, seconds, coded, bits = out
    print(f"\n{count_family.SIZES[-1].name} on {args.large_mib} MiB (source, Markov, random "
          f"in turn): peak memory {peak} MiB, {seconds} s wall for {int(coded):,} bytes coded "
          f"plus held-out evaluations, S+H {bits} bits/B")


if __name__ == "__main__":
    main()
