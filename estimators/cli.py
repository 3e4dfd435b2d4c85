"""`epiplex score`: measure a dataset from the command line (also `python -m estimators score`)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from estimators.frontier import FAMILIES
from estimators.presets import ESTIMATORS, FORMATS_HELP, PRESETS

INTERRUPTED = 130  # the shell's exit status for a command ended by Ctrl-C (128 + SIGINT)


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


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                        help="where the transformer trains (default auto: a GPU when present)")


def add_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that trains locally."""
    parser.add_argument("--format", default="bytes", help=f"how to read the data: {FORMATS_HELP}")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=list(PRESETS), default="quick",
                       help="model sizes and budget ladder (default quick)")
    group.add_argument("--budget", type=float, nargs="+", metavar="FLOPS",
                       help="budgets to report, in FLOPs (e.g. 1e10 1e11); uses quick's sizes")
    parser.add_argument("--estimator", choices=ESTIMATORS, default="prequential",
                        help="prequential (default): the online code; requential: a student "
                        "distilled from the teacher's samples, 2-10x the compute")
    parser.add_argument("--families", choices=FAMILIES, nargs="+", default=None, metavar="FAMILY",
                        help="observer families on the frontier (default all: "
                             f"{' '.join(FAMILIES)}); the headline is their minimum")
    parser.add_argument("--seeds", type=int, default=1, help="repeat with N seeds for a 95%% interval")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU cores to use (default all): the runs share them, one core each")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")


def estimate_options(args: argparse.Namespace) -> dict:
    return {"format": args.format, "preset": args.preset, "budgets": args.budget,
            "estimator": args.estimator, "seeds": args.seeds, "seed": args.seed,
            "device": args.device, "threads": args.threads,
            "families": getattr(args, "families", None)}


def model_name(point: dict) -> str:
    """The winning family and model of a curve point, as a table shows it."""
    m, family = point["model"], point.get("family", "transformer")
    if not m["params"]:
        return "untrained (uniform code)"
    label = m.get("name") or f"{m['width']}x{m['depth']}"
    return f"{family} {label} ({m['params']:,})"


def format_table(result: dict) -> str:
    """The curve, the baselines and the warnings as plain text."""
    d = result["dataset"]
    lines = [f"dataset  {d['bytes']:,} bytes, {d['bytes_coded']:,} coded (per-byte figures' "
             f"denominator), {d['tokens']:,} tokens, format {d['format']}, sha256 {d['sha256'][:12]}",
             f"method   {result['estimator']}, preset {result['preset'] or 'custom'}, "
             f"families {' and '.join(result['families'])}, "
             f"seeds {result['seeds']}, {result['flops_spent']:.2g} FLOPs in "
             f"{result['seconds']:.1f}s on {result['device']}", "",
             f"{'budget':>9}  {'S bits':>12}  {'S bits/B':>9}  {'+/-':>6}  {'H bits/B':>9}  "
             "family / model"]
    for c in result["curve"]:
        name = model_name(c)
        ci = ""
        if c.get("ci95"):
            lo, hi = c["ci95"]["epiplexity_bits"]["low"], c["ci95"]["epiplexity_bits"]["high"]
            ci = f"  S 95% [{lo:,.0f}, {hi:,.0f}]"
        lines.append(f"{c['budget_flops']:>9.1e}  {c['epiplexity_bits']:>12,.0f}  "
                     f"{c['epiplexity_bits_per_byte']:>9.4f}  "
                     f"{c.get('epiplexity_stderr_bits_per_byte', 0.0):>6.4f}  "
                     f"{c['entropy_bits_per_byte']:>9.4f}  {name}{ci}")
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
        result = estimate(args.path, progress=bar, state_dir=args.state_dir,
                          **estimate_options(args)).to_dict()
    except (DataFormatError, FileNotFoundError, ValueError) as e:
        bar.close()
        print(f"epiplex score: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.close()
        return interrupted("epiplex score: interrupted; " + (
            f"the runs finished so far are kept in {args.state_dir}, and the same command "
            "resumes from them" if args.state_dir else
            "--state-dir DIR keeps finished runs for the next try"))
    bar.close()
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def add_score_command(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "score", help="measure epiplexity and time-bounded entropy of a file",
        description="Train compute-bounded predictors on PATH and report S_T and H_T in bits.")
    parser.add_argument("path", help="the dataset file")
    add_options(parser)
    parser.add_argument("--state-dir", metavar="DIR",
                        help="keep each finished run in DIR: run again after Ctrl-C or a crash, "
                             "the same command resumes from them (keyed by the data, the "
                             "settings and the estimators' code)")
    parser.set_defaults(func=run_score)
    return parser


def run_transfer(args: argparse.Namespace) -> int:
    from estimators import panel
    from estimators.data import DataFormatError
    from estimators.transfer import measure_from_source

    targets = [(path, path) for path in args.targets]
    if args.panel:
        targets += list(panel.build().items())
    if not targets:
        print("epiplex transfer: give TARGET files or --panel", file=sys.stderr)
        return 2
    bar = ProgressBar()
    try:
        results = measure_from_source(
            args.source, [data for _, data in targets],
            format=args.format, target_format=args.target_format, preset=args.preset,
            seed=args.seed, device=args.device, threads=args.threads, progress=bar)
    except (DataFormatError, FileNotFoundError, ValueError) as e:
        bar.close()
        print(f"epiplex transfer: {e}", file=sys.stderr)
        return 2
    bar.close()
    rows = [{"target": name, **r.to_dict()} for (name, _), r in zip(targets, results)]
    if args.json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows))
        return 0
    print(f"{'target':<28} {'saved bits':>12} {'bits/B':>8} {'scratch b/B':>11} "
          f"{'from A b/B':>10} {'warm start b/B':>14}")
    for row in rows:
        n = row["target_bytes_coded"]
        print(f"{str(row['target'])[-28:]:<28} {row['transfer_bits']:>12,.0f} "
              f"{row['transfer_bits_per_byte']:>8.4f} {row['scratch_code_bits'] / n:>11.4f} "
              f"{row['transfer_code_bits'] / n:>10.4f} {row['warm_start_bits_per_byte']:>14.4f}")
    print("saved bits: what holding A saves (never below -1 bit); warm start: starting from A's "
          "model instead of scratch (negative: A's habits cost bits)")
    return 0


def add_transfer_command(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "transfer", help="measure how much training on SOURCE helps code each TARGET",
        description="Train on SOURCE (the preset's largest model), then code each TARGET with a "
                    "model started from it and with one started from scratch; report the bits "
                    "saved (negative: SOURCE hurt).")
    parser.add_argument("source", help="the source dataset file")
    parser.add_argument("targets", nargs="*", help="target dataset files")
    parser.add_argument("--panel", action="store_true", help="also every built-in panel dataset")
    parser.add_argument("--format", default="bytes", help=f"source format: {FORMATS_HELP}")
    parser.add_argument("--target-format", default=None, help="target format (default: --format)")
    parser.add_argument("--preset", choices=list(PRESETS), default="quick")
    parser.add_argument("--seed", type=int, default=0)
    add_device_option(parser)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per target (a list when several)")
    parser.set_defaults(func=run_transfer)
    return parser


def interrupted(line: str) -> int:
    """Ctrl-C: `line` on stderr, and exit status 130. Where torch has run, the process ends at
    once: a lane (a daemon thread) still inside torch aborts the interpreter's shutdown
    ("terminate called without an active exception"), and every finished run is already on
    disk. Elsewhere (`serve`: its API process never imports torch) it exits as usual, so that
    exit handlers such as Ray's shutdown run."""
    print(line, file=sys.stderr)
    if "torch" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED)
    return INTERRUPTED


def run_command(prog: str, args: argparse.Namespace) -> int:
    """Run the chosen command; Ctrl-C ends it with a line, not a traceback."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return interrupted(f"\n{prog} {args.command}: interrupted")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m estimators")
    commands = parser.add_subparsers(dest="command", required=True)
    add_score_command(commands)
    add_transfer_command(commands)
    return run_command(parser.prog, parser.parse_args(argv))
