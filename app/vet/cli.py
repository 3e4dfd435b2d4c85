"""`epiplex vet`: check datasets against thresholds, locally or through a server; exit 0, 1 or 2.

Exit codes: 0 every check passed; 1 some check failed; 2 nothing could be decided for some
dataset (usage, input, or a service that could not answer), with a message saying what to fix.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.jobs.settings import JobSettings
from app.vet import reports
from app.vet.config import load_config
from app.vet.inputs import DatasetSource, materialize, resolve
from app.vet.reports import VetSummary
from app.vet.vetting import Figures, Thresholds, Verdict, VetInputError, load_baseline
from estimators.data import sha256_of
from estimators.frontier import FAMILIES

DEFAULT_TIMEOUT_SECONDS = 3600.0
SERVER_POLL_SECONDS = 1.0
LOCAL_ONLY = ("seed", "device", "threads", "cache-dir")

DESCRIPTION = """Check datasets against thresholds on what a compute-bounded learner finds in them,
print a table, write reports, and exit 0 (all passed), 1 (a check failed) or 2 (usage or input
error). Every figure is read at the largest budget of the sweep, per byte of the dataset.

Checks:
  min-epiplexity    S_T / bytes >= BITS_PER_BYTE: the data holds structure to learn
                    (uniform random bytes: ~0; text and code: clearly above 0)
  max-entropy       H_T / bytes <= BITS_PER_BYTE: how much stays unpredictable (random: 8)
  max-zstd-ratio    zstd-19 compressed size / original size <= RATIO, i.e. zstd bits per
                    byte / 8: ~1.0 for random, encrypted or already-compressed bytes,
                    ~0.2-0.3 for text and code. No learner involved, so it holds at any
                    budget (a learner's H_T can sit above zstd at small budgets)
  max-drop          S_T / bytes fell at most PERCENT below the baseline's
  max-entropy-rise  H_T / bytes rose at most PERCENT above the baseline's

Each PATH is a file (one dataset), a quoted glob (one dataset per match) or a directory
(one dataset made of all its shards, in path order). Settings can also come from
[tool.epiplex] in pyproject.toml or from epiplex.toml (keys are the long option names,
e.g. min-epiplexity = 0.05, paths = ["data/"]); options on the command line win."""


@dataclass
class Plan:
    """Everything a run needs, merged from the command line and the config file, and checked."""

    sources: list[DatasetSource]
    thresholds: Thresholds
    settings: dict[str, Any]
    server: str | None
    baselines: dict[str, Figures]  # by dataset name
    baseline_source: str | None
    baseline_dataset: str | None
    reports: list[tuple[Path, str]]
    timeout: float
    local: dict[str, Any]


def add_vet_command(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "vet", help="check datasets against thresholds (for CI): exit 0 pass, 1 fail, 2 error",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files, quoted globs or directories of shards")
    parser.add_argument("--config", metavar="FILE", help="settings file (default: the nearest epiplex.toml, "
                        "or [tool.epiplex] of the nearest pyproject.toml)")
    parser.add_argument("--server", metavar="URL", help="vet through this Epiplex server (results cached "
                        "there); default: train here")
    how = parser.add_argument_group("how to score")
    how.add_argument("--format", help="how to read the data: bytes | text | jsonl:FIELD | csv:COLUMN | tokens "
                     "(default bytes)")
    ladder = how.add_mutually_exclusive_group()
    ladder.add_argument("--preset", help="model sizes and budget ladder: quick, standard, deep (default quick)")
    ladder.add_argument("--budget", type=float, nargs="+", metavar="FLOPS", help="budgets in FLOPs instead of "
                        "the preset's ladder (e.g. 1e10 1e11)")
    how.add_argument("--estimator", help="prequential (default) or requential")
    how.add_argument("--seeds", type=int, help="independent training seeds (default 1)")
    how.add_argument("--families", nargs="+", metavar="FAMILY", help="observer families pooled: "
                     f"{', '.join(FAMILIES)} (default every one)")
    how.add_argument("--seed", type=int, help="first seed (local runs; default 0)")
    how.add_argument("--device", help="cpu, cuda or auto (local runs; default auto)")
    how.add_argument("--threads", type=int, help="cap on CPU threads (local runs)")
    how.add_argument("--cache-dir", metavar="DIR", help="local runs: keep finished training runs here, "
                     "so a re-run on unchanged data and settings trains nothing (e.g. a CI cache)")
    how.add_argument("--timeout", type=float, metavar="SECONDS", help="with --server: how long to wait for "
                     f"results (default {DEFAULT_TIMEOUT_SECONDS:g}); the jobs keep running after it")
    limits = parser.add_argument_group("thresholds (figures at the largest budget)")
    limits.add_argument("--min-epiplexity", type=float, metavar="BITS_PER_BYTE",
                        help="fail when epiplexity S_T per byte is below this")
    limits.add_argument("--max-entropy", type=float, metavar="BITS_PER_BYTE",
                        help="fail when time-bounded entropy H_T per byte is above this")
    limits.add_argument("--max-zstd-ratio", type=float, metavar="RATIO",
                        help="fail when zstd-19 compressed size / original size (zstd bits per byte / 8) is "
                        "above this; ~1.0 for random or compressed bytes, ~0.2-0.3 for text")
    regression = parser.add_argument_group("regression against an accepted result")
    base = regression.add_mutually_exclusive_group()
    base.add_argument("--baseline", metavar="RESULT.json", help="an earlier result: `epiplex vet --report "
                      "x.json` (matched by dataset name), `epiplex score --json`, or a job from the API")
    base.add_argument("--baseline-dataset", metavar="ID", help="with --server: a dataset id whose result "
                      "under the same settings is the baseline")
    regression.add_argument("--max-drop", type=float, metavar="PERCENT",
                            help="fail when S_T per byte is more than PERCENT below the baseline's")
    regression.add_argument("--max-entropy-rise", type=float, metavar="PERCENT",
                            help="fail when H_T per byte is more than PERCENT above the baseline's")
    out = parser.add_argument_group("reports")
    out.add_argument("--report", action="append", metavar="FILE", help="write a report; the type follows "
                     "the extension: .md (job summary, PR comment), .html or .json; repeatable")
    out.add_argument("--junit", metavar="FILE.xml", help="write JUnit XML: one test case per check")
    parser.set_defaults(func=run_vet)
    return parser


def _merged(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line options over config-file values; either-or pairs come whole from one side."""
    config = load_config(args.config)
    options = dict(config.values)
    given = {key: value for key, value in vars(args).items()
             if key not in ("func", "command", "config") and value not in (None, [])}
    for pair in (("preset", "budget"), ("baseline", "baseline_dataset")):
        if any(key in given for key in pair):
            for key in pair:
                options.pop(key, None)
    if "preset" in options and "budget" in options:
        raise VetInputError(f"{config.source}: give either preset or budget, not both")
    if "baseline" in options and "baseline_dataset" in options:
        raise VetInputError(f"{config.source}: give either baseline or baseline-dataset, not both")
    options.update(given)
    options["_given"] = set(given)
    return options


def plan(args: argparse.Namespace) -> Plan:
    """Check the whole request before any training, so a mistake costs seconds, not a sweep."""
    from estimators.data import DataFormatError, check_format

    o = _merged(args)
    fmt = o.get("format", "bytes")
    try:
        check_format(fmt)
    except DataFormatError as error:
        raise VetInputError(str(error)) from None
    try:  # a budget given on the command line replaces the configured preset
        job = JobSettings(preset=None if o.get("budget") else o.get("preset", "quick"), budgets=o.get("budget"),
                          estimator=o.get("estimator", "prequential"), seeds=o.get("seeds", 1),
                          families=o.get("families"))
    except ValidationError as error:
        raise VetInputError(_as_flags(error)) from None
    thresholds = Thresholds(o.get("min_epiplexity"), o.get("max_entropy"), o.get("max_zstd_ratio"),
                            o.get("max_drop"), o.get("max_entropy_rise"))
    if thresholds.empty:
        raise VetInputError("no thresholds: give --min-epiplexity, --max-entropy, --max-zstd-ratio or "
                            "--max-drop (or set them in [tool.epiplex] of pyproject.toml)")
    server = o.get("server")
    baseline_path, baseline_dataset = o.get("baseline"), o.get("baseline_dataset")
    if thresholds.against_baseline and not (baseline_path or baseline_dataset):
        raise VetInputError("--max-drop and --max-entropy-rise compare with a baseline: "
                            "give --baseline RESULT.json or --baseline-dataset ID")
    if (baseline_path or baseline_dataset) and not thresholds.against_baseline:
        raise VetInputError("a baseline is given but nothing compares with it: add --max-drop PERCENT "
                            "and/or --max-entropy-rise PERCENT")
    if baseline_dataset and not server:
        raise VetInputError("--baseline-dataset names a dataset on a server: add --server URL, or compare "
                            "with a local file through --baseline RESULT.json")
    if server:
        wrong = [f"--{key}" for key in LOCAL_ONLY if key.replace("-", "_") in o["_given"]]
        if wrong:
            raise VetInputError(f"{', '.join(wrong)} apply to local runs only; the server's workers use its "
                                "own settings (drop them, or drop --server)")
    timeout = o.get("timeout", DEFAULT_TIMEOUT_SECONDS)
    if timeout <= 0:
        raise VetInputError("--timeout must be positive (seconds)")
    targets = [(Path(path), kind) for path in o.get("report") or [] for kind in [_kind(path)]]
    if o.get("junit"):
        targets.append((Path(o["junit"]), "junit"))
    sources = resolve(o.get("paths") or [])
    baselines = {source.name: load_baseline(baseline_path, source.name) for source in sources} \
        if baseline_path else {}
    settings = {"where": server or "local", "format": fmt, **job.model_dump()}
    local = {"seed": o.get("seed", 0), "device": o.get("device", "auto"), "threads": o.get("threads"),
             "state_dir": o.get("cache_dir")}
    described = f"{baseline_path}" if baseline_path else (f"dataset {baseline_dataset} on {server}"
                                                          if baseline_dataset else None)
    return Plan(sources, thresholds, settings, server, baselines, described, baseline_dataset, targets,
                timeout, local)


def _as_flags(error: ValidationError) -> str:
    """Pydantic's complaints about the job settings, named by the flags that set them."""
    def one(problem: dict) -> str:
        field = str(problem["loc"][0]) if problem["loc"] else ""
        flag = {"budgets": "--budget", "": "--preset/--budget"}.get(field, f"--{field}")
        reason = problem["ctx"]["error"] if problem["type"] == "value_error" else problem["msg"]
        return f"{flag}: {reason}"

    return "; ".join(one(problem) for problem in error.errors())


def _kind(path: str) -> str:
    try:
        kind = reports.report_kind(path)
    except ValueError as error:
        raise VetInputError(str(error)) from None
    if kind == "junit":
        raise VetInputError(f"write JUnit XML with --junit {path}; --report takes .md, .html or .json")
    return kind


def _vet_locally(plan: Plan, source: DatasetSource, path: Path) -> Verdict:
    import estimators
    from estimators.cli import ProgressBar
    from estimators.data import DataFormatError

    s, files = plan.settings, [str(file) for file in source.files]
    bar = ProgressBar()
    try:
        result = estimators.estimate(str(path), format=s["format"], preset=s["preset"], budgets=s["budgets"],
                                     estimator=s["estimator"], seeds=s["seeds"], families=s["families"],
                                     progress=bar,
                                     **plan.local).to_dict()
    except (DataFormatError, FileNotFoundError, ValueError) as error:
        return Verdict.failed_to_run(source.name, str(error), files=files)
    finally:
        bar.close()
    return Verdict.judge(source.name, Figures.from_result(result), plan.thresholds,
                         plan.baselines.get(source.name), files=files, sha256=result["dataset"]["sha256"],
                         warnings=list(result["warnings"]))


def _vet_on_server(plan: Plan, client, source: DatasetSource, path: Path, deadline: float) -> Verdict:
    from app.client import EpiplexError

    s, files = plan.settings, [str(file) for file in source.files]
    sha = sha256_of(path)
    body: dict[str, Any] = {"sha256": sha, "format": s["format"], "preset": s["preset"], "budgets": s["budgets"],
                            "estimator": s["estimator"], "seeds": s["seeds"], "families": s["families"],
                            "thresholds": _api_thresholds(plan.thresholds),
                            "wait": max(0.0, min(10.0, deadline - time.monotonic()))}
    if source.name in plan.baselines:
        body["baseline"] = plan.baselines[source.name].to_dict()
    elif plan.baseline_dataset:
        body["baseline_dataset_id"] = plan.baseline_dataset
    try:
        out = client.vet(body)
    except EpiplexError as error:
        if error.status_code != 404 or "sha256" not in error.detail:
            raise
        # The server has not seen these bytes: upload them once (content-addressed), then vet.
        try:
            dataset = client.upload(path, name=source.name, format=s["format"])
        except EpiplexError as upload_error:
            return Verdict.failed_to_run(source.name, f"upload refused: {upload_error.detail}", files=files)
        out = client.vet(body | {"sha256": None, "dataset_id": dataset.id})
    cached = out.cached
    body = body | {"sha256": None, "dataset_id": out.dataset_id}
    shown = None
    while out.status == "pending":
        # Follow the jobs (never re-POST while they run: a POST re-queues a failed job).
        job_ids = [out.job_id] + ([out.baseline_job_id] if out.baseline_job_id else [])
        jobs = [client.get_job(job_id) for job_id in job_ids]
        progress = sum(job.progress for job in jobs) / len(jobs)
        if (jobs[0].status, int(progress * 10)) != shown:  # a line per tenth, not per poll
            shown = (jobs[0].status, int(progress * 10))
            print(f"  {source.name}: {jobs[0].status}, {progress:.0%} (job {jobs[0].id})", file=sys.stderr,
                  flush=True)
        failed = [job for job in jobs if job.status in ("failed", "canceled")]
        if failed:
            return Verdict.failed_to_run(source.name, f"job {failed[0].id} {failed[0].status}: {failed[0].error}",
                                         files=files, job_id=out.job_id, dataset_id=out.dataset_id, sha256=sha)
        if all(job.status == "succeeded" for job in jobs):
            out = client.vet(body | {"wait": 0.0})
            continue
        if time.monotonic() >= deadline:
            return Verdict.failed_to_run(
                source.name, f"no result within {plan.timeout:g} s (job {out.job_id} {jobs[0].status}, "
                f"{progress:.0%}); it keeps running on the server: run again later to get the cached "
                "verdict, or raise --timeout", files=files, job_id=out.job_id, dataset_id=out.dataset_id, sha256=sha)
        time.sleep(SERVER_POLL_SECONDS)
    about = {"files": files, "cached": cached, "job_id": out.job_id, "dataset_id": out.dataset_id, "sha256": sha}
    from app.vet.service import verdict_of

    return verdict_of(source.name, out, **about)


def _api_thresholds(thresholds: Thresholds) -> dict[str, float]:
    return {key: value for key, value in thresholds.to_dict().items() if value is not None}


def _run(plan: Plan) -> list[Verdict]:
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="epiplex-vet-") as workdir:
        client = None
        if plan.server:
            from app.client import EpiplexClient

            client = EpiplexClient(plan.server)
        try:
            deadline = time.monotonic() + plan.timeout
            for number, source in enumerate(plan.sources, 1):
                print(f"vetting {source.name} ({number}/{len(plan.sources)})", file=sys.stderr, flush=True)
                try:
                    path = materialize(source, plan.settings["format"], workdir)
                except (VetInputError, OSError) as error:
                    verdicts.append(Verdict.failed_to_run(source.name, str(error),
                                                          files=[str(f) for f in source.files]))
                    continue
                if client is None:
                    verdicts.append(_vet_locally(plan, source, path))
                else:
                    verdicts.append(_vet_on_server(plan, client, source, path, deadline))
        finally:
            if client is not None:
                client.close()
    return verdicts


def run_vet(args: argparse.Namespace) -> int:
    import httpx

    from app.client import EpiplexError

    started = time.monotonic()
    the_plan = None
    try:
        the_plan = plan(args)
        verdicts = _run(the_plan)
    except VetInputError as error:
        print(f"epiplex vet: {error}", file=sys.stderr)
        return 2
    except EpiplexError as error:
        print(f"epiplex vet: the server refused the request: {error.detail}", file=sys.stderr)
        return 2
    except httpx.HTTPError as error:
        print(f"epiplex vet: cannot reach the server at {the_plan.server if the_plan else args.server}: {error} "
              "(is it running? check --server)", file=sys.stderr)
        return 2
    import estimators

    summary = VetSummary(verdicts, the_plan.thresholds, the_plan.settings, the_plan.baseline_source,
                         estimators.__version__, time.monotonic() - started)
    for target, kind in the_plan.reports:
        try:
            reports.write(summary, target, kind)
        except OSError as error:
            print(f"epiplex vet: cannot write {target}: {error}", file=sys.stderr)
            return 2
    print(reports.table(summary))
    return summary.exit_code
