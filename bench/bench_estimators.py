"""Estimator speed: training throughput and model-FLOP utilisation per preset size, the
trainer end to end at one thread (fp32 against bf16 autocast, fused against per-tensor Adam,
the share of checkpoint evaluations), and the wall time of `epiplex score` on 1 MiB at the
quick and standard presets, and at standard on 512 KiB of Python source (its longest replay).

    .venv/bin/python bench/bench_estimators.py [--threads N] [--device cpu|cuda] [--skip-presets]

MFU = FLOPs/s divided by this machine's own matmul peak, measured in the same run (a large
fp32 matmul on CPU, bf16 on a GPU). On a shared machine absolute figures move with the load;
ratios measured within one run are the reliable part.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import torch

import numpy as np

from estimators import PRESETS, panel, prequential, synthetic
from estimators.data import split
from estimators.models import GPT, GPTConfig
from estimators.training import cpu_has_bf16_matmul, make_optimizer, pick_device, token_bits
from machine import machine




def matmul_peak(device: torch.device, size: int = 2048, trials: int = 7,
                repeats: int = 3) -> float:
    """FLOP/s of the fastest of `trials` timings of a large matmul: the machine's peak. One
    timing of ten at one thread read 92 GFLOP/s in one run and 68 a minute later, which would
    have put the same trainer at 53% or 72% MFU."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    a @ a
    sync(device)
    fastest = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ a
        sync(device)
        fastest = min(fastest, time.perf_counter() - start)
    return repeats * 2 * size ** 3 / fastest


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
        opt.zero_grad()
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


# The child's own peak: VmHWM starts afresh with its address space, while Linux carries ru_maxrss
# over exec from the forked copy of this process (gigabytes after the deep-size throughput row).
REPORT_PEAK = """
import resource, runpy, sys
sys.argv[0] = "estimators"
try:
    runpy.run_module("estimators", run_name="__main__")
finally:
    try:
        with open("/proc/self/status") as status:
            peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(peak, file=sys.stderr)
"""


def end_to_end(device: torch.device, precision: str, evaluate: bool = True,
               size: int = 512 * 1024) -> tuple[float, float, float]:
    """(FLOPs/s counted, training FLOPs/s, final held-out loss) of one pass of the 128x2x256
    trainer over `size` bytes of a Markov source, with its checkpoint evaluations."""
    os.environ["EPIPLEX_PRECISION"] = precision
    tokens = np.frombuffer(synthetic.MarkovSource(order=2, seed=0).sample(size), dtype=np.uint8)
    data = split(tokens, 256, 0, 65536)
    cfg = prequential.RunConfig(GPTConfig(256, 128, 2, 256), 0, 3e-2, 2e-3, 32, 10 ** 12,
                                len(tokens))
    prequential.run(split(tokens[:16384], 256, 0, 1024), cfg, device)  # warm up kernels
    result = prequential.run(data, cfg, device, evaluate=evaluate)
    os.environ.pop("EPIPLEX_PRECISION")
    trained = 6 * result.params * result.tokens_trained
    final = result.checkpoints[-1].heldout_bits_per_token if evaluate else float("nan")
    return result.flops_spent / result.seconds, trained / result.seconds, final


def adam_kernels(device: torch.device, steps: int = 12) -> tuple[float, float]:
    """(fused / per-tensor Adam step time ratio, largest weight difference after `steps`): the
    trainer's fused Adam against torch.optim's per-tensor loop."""
    times, weights = [], []
    for fused in (False, True):
        torch.manual_seed(0)
        model = GPT(GPTConfig(256, 128, 2, 256)).to(device)
        opt = make_optimizer(model, 3e-2, 2e-3) if fused else torch.optim.Adam(
            model.param_groups(3e-2, 2e-3), betas=(0.9, 0.95), eps=1e-10, foreach=True)
        x = torch.randint(0, 256, (32, 257), generator=torch.Generator().manual_seed(1)).to(device)
        start = time.perf_counter()
        for _ in range(steps):
            loss = token_bits(model(x[:, :-1]), x[:, 1:]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        sync(device)
        times.append(time.perf_counter() - start)
        weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    return times[0] / times[1], (weights[0] - weights[1]).abs().max().item()


def trainer_table(device: torch.device, peak: float) -> None:
    print(f"\ntrainer end to end, 128x2x256, one pass over 512 KiB, {torch.get_num_threads()} "
          "thread(s):")
    print(f"{'variant':<34} {'GFLOP/s':>8} {'MFU':>6} {'train MFU':>9} {'held-out':>9}")
    rows = [("fp32, fused Adam, with evaluations", "fp32", True),
            ("fp32, fused Adam, no evaluations", "fp32", False)]
    if device.type == "cuda" or cpu_has_bf16_matmul():
        rows.append(("bf16 autocast, with evaluations", "bf16", True))
    for name, precision, evaluate in rows:
        counted, trained, final = end_to_end(device, precision, evaluate)
        print(f"{name:<34} {counted / 1e9:>8.1f} {counted / peak:>6.1%} {trained / peak:>9.1%} "
              f"{final:>9.4f}")
    if len(rows) == 2:
        print("(bf16 autocast: this CPU has neither avx512_bf16 nor AMX, so it runs fp32)")
    speedup, difference = adam_kernels(device)
    print(f"fused Adam: {speedup:.2f}x the per-tensor step; weights differ by at most "
          f"{difference:.1e} after 12 steps")


def preset_wall_time(preset: str, data: bytes) -> tuple[float, float]:
    """(seconds, peak resident MiB) of `epiplex score --preset PRESET` on `data`."""
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(data)
        f.flush()
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", REPORT_PEAK, "score", f.name, "--preset",
                               preset, "--json"], check=True, capture_output=True, text=True)
        peak_kib = int(done.stderr.strip().splitlines()[-1])
        return time.perf_counter() - start, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-presets", action="store_true",
                        help="skip the quick and standard wall times (minutes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    peak = matmul_peak(device)
    print(f"machine: {machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
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
    torch.set_num_threads(1)
    trainer_table(device, matmul_peak(device))
    torch.set_num_threads(args.threads)
    if args.skip_presets:
        return
    markov = synthetic.MarkovSource(order=2, seed=0).sample(1 << 20)
    for preset, name, data in (
            ("quick", "1 MiB", markov), ("standard", "1 MiB", markov),
            # files just under 512 KiB make standard's longest replay (`max_replay_tokens`)
            ("standard", "512 KiB of Python source", panel.python_source(512 << 10))):
        seconds, peak_mib = preset_wall_time(preset, data)
        print(f"\nepiplex score --preset {preset} on {name}: {seconds:.1f} s wall, "
              f"peak memory {peak_mib:.0f} MiB")

if __name__ == "__main__":
    main()
