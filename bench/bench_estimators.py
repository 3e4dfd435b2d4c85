"""Estimator speed: training throughput and model-FLOP utilisation per preset size, and the
wall time of `epiplex score --preset quick` on 1 MiB.

    .venv/bin/python bench/bench_estimators.py [--threads N] [--device cpu|cuda]

MFU = 6*N*tokens/s divided by this machine's own matmul peak, measured in the same run
(a large fp32 matmul on CPU, bf16 on a GPU).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import torch

from estimators import PRESETS, synthetic
from estimators.models import GPT, GPTConfig
from estimators.training import make_optimizer, pick_device, token_bits


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    a @ a
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    sync(device)
    return repeats * 2 * size ** 3 / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def throughput(width: int, depth: int, context: int, batch_tokens: int,
               device: torch.device, steps: int = 8) -> tuple[int, float]:
    """(params, training tokens per second) for one optimiser step size of the preset."""
    model = GPT(GPTConfig(256, width, depth, context)).to(device)
    opt = make_optimizer(model, 3e-2, 2e-3)
    x = torch.randint(0, 256, (max(1, batch_tokens // context), context + 1), device=device)

    def step():
        loss = token_bits(model(x[:, :-1]), x[:, 1:]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return model.num_params(), steps * x.shape[0] * context / (time.perf_counter() - start)


REPORT_PEAK = """
import resource, runpy, sys
sys.argv[0] = "estimators"
try:
    runpy.run_module("estimators", run_name="__main__")
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def quick_wall_time() -> tuple[float, float]:
    """(seconds, peak resident MiB) of `epiplex score --preset quick` on 1 MiB of text."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(synthetic.MarkovSource(order=2, seed=0).sample(1 << 20))
        f.flush()
        start = time.perf_counter()
        # The child reports its own peak: RUSAGE_CHILDREN would count this process's pages too.
        done = subprocess.run([sys.executable, "-c", REPORT_PEAK, "score", f.name, "--preset",
                               "quick", "--json"], check=True, capture_output=True, text=True)
        peak_kib = int(done.stderr.strip().splitlines()[-1])
        return time.perf_counter() - start, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    peak = matmul_peak(device)
    print(f"machine: {machine()}, device {device}")
    print(f"measured matmul peak: {peak / 1e9:.0f} GFLOP/s\n")
    print(f"{'preset':<9} {'size':<12} {'params':>10} {'tokens/s':>10} {'GFLOP/s':>8} {'MFU':>6}")
    seen = set()
    for preset in PRESETS.values():
        for width, depth, context in preset.sizes:
            if (width, depth, context) in seen or (device.type == "cpu" and width > 256):
                continue
            seen.add((width, depth, context))
            params, rate = throughput(width, depth, context, preset.batch_tokens, device)
            achieved = 6 * params * rate
            print(f"{preset.name:<9} {f'{width}x{depth}x{context}':<12} {params:>10,} "
                  f"{rate:>10,.0f} {achieved / 1e9:>8.1f} {achieved / peak:>6.1%}")
    seconds, peak_mib = quick_wall_time()
    print(f"\nepiplex score --preset quick on 1 MiB: {seconds:.1f} s wall, "
          f"peak memory {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
