"""`epiplex score`: measure a dataset from the command line (also `python -m estimators score`)."""
from __future__ import annotations

import argparse
import json
import sys
import time

from estimators.presets import ESTIMATORS, FORMATS_HELP, PRESETS


class ProgressBar:
    """A one-line bar on stderr; on a non-terminal, a line every tenth of the way."""

    def __init__(self, stream=sys.stderr, width: int = 30):
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self.started = time.perf_counter()
        self.last_tenth = -1

    def __call__(self, fraction: float, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        if self.tty:
            filled = int(self.width * fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {fraction:6.1%} {elapsed:5.0f}s {message[:40]:<40}")
            self.stream.flush()
        elif int(fraction * 10) > self.last_tenth:
            self.last_tenth = int(fraction * 10)
            self.stream.write(f"{fraction:6.1%} {elapsed:5.0f}s {message}\n")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that trains locally."""
    parser.add_argument("--format", default="bytes", help=f"how to read the data: {FORMATS_HELP}")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=list(PRESETS), default="quick",
                       help="model sizes and budget ladder (default quick)")
    group.add_argument("--budget", type=float, nargs="+", metavar="FLOPS",
                       help="budgets to report, in FLOPs (e.g. 1e10 1e11); uses quick's sizes")
    parser.add_argument("--estimator", choices=ESTIMATORS, default="prequential")
    parser.add_argument("--seeds", type=int, default=1, help="repeat with N seeds for a 95%% interval")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="cap on CPU threads")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")


def estimate_options(args: argparse.Namespace) -> dict:
    return {"format": args.format, "preset": args.preset, "budgets": args.budget,
            "estimator": args.estimator, "seeds": args.seeds, "seed": args.seed,
            "device": args.device, "threads": args.threads}


def format_table(result: dict) -> str:
    """The curve, the baselines and the warnings as plain text."""
    d = result["dataset"]
    lines = [f"dataset  {d['bytes']:,} bytes, {d['tokens']:,} tokens, format {d['format']}, "
             f"sha256 {d['sha256'][:12]}",
             f"method   {result['estimator']}, preset {result['preset'] or 'custom'}, "
             f"seeds {result['seeds']}, {result['flops_spent']:.2g} FLOPs in "
             f"{result['seconds']:.1f}s on {result['device']}", "",
             f"{'budget':>9}  {'S bits':>12}  {'S bits/B':>9}  {'H bits/B':>9}  model"]
    for c in result["curve"]:
        m = c["model"]
        name = "untrained" if not m["params"] else f"{m['width']}x{m['depth']} ({m['params']:,})"
        ci = ""
        if c.get("ci95"):
            lo, hi = c["ci95"]["epiplexity_bits"]["low"], c["ci95"]["epiplexity_bits"]["high"]
            ci = f"  S 95% [{lo:,.0f}, {hi:,.0f}]"
        lines.append(f"{c['budget_flops']:>9.1e}  {c['epiplexity_bits']:>12,.0f}  "
                     f"{c['epiplexity_bits_per_byte']:>9.4f}  {c['entropy_bits_per_byte']:>9.4f}"
                     f"  {name}{ci}")
    b = result["baselines"]
    lines += ["", f"baselines  zstd-19 {b['zstd_bits_per_byte']:.4f} bits/B, "
                  f"lzma {b['lzma_bits_per_byte']:.4f} bits/B"]
    lines += [f"warning: {w}" for w in result["warnings"]]
    return "\n".join(lines)


def run_score(args: argparse.Namespace) -> int:
    from estimators import estimate
    from estimators.data import DataFormatError

    bar = ProgressBar()
    try:
        result = estimate(args.path, progress=bar, **estimate_options(args)).to_dict()
    except (DataFormatError, FileNotFoundError, ValueError) as e:
        bar.close()
        print(f"epiplex score: {e}", file=sys.stderr)
        return 2
    bar.close()
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def add_score_command(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "score", help="measure epiplexity and time-bounded entropy of a file",
        description="Train compute-bounded predictors on PATH and report S_T and H_T in bits.")
    parser.add_argument("path", help="the dataset file")
    add_options(parser)
    parser.set_defaults(func=run_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m estimators")
    add_score_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)
