"""`estimate`: run a budget sweep over model sizes and seeds and return S_T, H_T and baselines.

For each seed and model size one single-pass run logs (compute, S, H) at log-spaced
checkpoints; all points of a seed, plus the untrained model, are pooled and at each budget
the best two-part code within it gives S_T and H_T. Seeds give a mean and a 95% interval.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import time
from collections import deque
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from estimators import __version__, code_hash
from estimators.baselines import COMPRESSOR_MEMORY_BYTES, compressor_baselines
from estimators.count_sweep import CountFamilyRuns
from estimators.data import TokenData, load, split
from estimators.frontier import (FAMILIES, UNIFORM, Point, best_within, check_families,
                                 lower_hull, untrained_point)
from estimators.lanes import Stopped, run_in_lanes
from estimators.planning import UNREACHABLE_FRACTION, PlannedRun, SweepPlan, check_enough_data
from estimators.presets import ESTIMATORS, PRESETS, Preset
from estimators.result import CurvePoint, DatasetInfo, EstimateResult

ProgressCallback = Callable[[float, str], None]
# The most memory the runs on a sweep's lanes hold at once (count-family tables, compressors'
# windows): with the interpreter, torch and the data, quick on 100 MiB then peaks well under
# 2 GiB. Its two largest count-family sizes (522 and 907 MiB of tables) never run at once.
LANE_MEMORY_BYTES = 1 << 30
FLAT_TOLERANCE = 0.01  # relative fall of held-out loss per doubling of data, at the end
FLAT_FLOOR_BITS = 0.005  # ...and at least this many bits/token, so a solved task counts as flat


def resolve(preset: str | None, budgets: Sequence[float] | None) -> tuple[Preset, list[float]]:
    """The preset to take sizes and settings from, and the budgets to report: those given, or
    the preset's whole ladder, which `_Sweep` fits to the data."""
    name = preset or "quick"
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}: use one of {', '.join(PRESETS)}")
    chosen = PRESETS[name]
    if budgets:
        if any(not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0) for b in budgets):
            raise ValueError("budgets must be positive numbers of FLOPs, e.g. 1e11")
        return chosen, sorted(float(b) for b in budgets)
    return chosen, list(chosen.all_budgets)


_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228}


def _t_quantile(dof: int) -> float:
    """Two-sided 95% Student-t quantile: a table up to 10, Cornish-Fisher beyond."""
    if dof in _T95:
        return _T95[dof]
    z = 1.959964
    return z + (z ** 3 + z) / (4 * dof) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * dof ** 2)


def _interval(values: list[float]) -> dict:
    mean = float(np.mean(values))
    half = _t_quantile(len(values) - 1) * float(np.std(values, ddof=1)) / math.sqrt(len(values))
    return {"low": mean - half, "high": mean + half}


class _Sweep:
    """Everything one `estimate` call shares: data, settings, progress and saved runs."""

    def __init__(self, data: TokenData, preset: Preset, budgets: list[float], estimator: str,
                 seeds: list[int], device, progress: ProgressCallback | None,
                 state_dir: Path | None, families: Sequence[str] = FAMILIES):
        self.data, self.preset = data, preset
        self.estimator, self.seeds, self.device = estimator, seeds, device
        self.progress, self.state_dir, self.families = progress, state_dir, tuple(families)
        planned = SweepPlan(data, preset, budgets, estimator, self.families)
        self.budgets, self.plan, self.warnings = planned.budgets, planned.runs, planned.warnings
        self.total_flops = sum(r.planned_flops for r in self.plan) * len(seeds) or 1.0
        self.done_flops = 0.0
        self.label = ""  # what the last tick was about
        self.stopping = threading.Event()  # set when the sweep failed: runs on lanes end
        self._count_lock = threading.Lock()

    @property
    def fraction(self) -> float:
        """The share of the transformer's planned FLOPs done so far."""
        return min(1.0, self.done_flops / self.total_flops)

    def _tick(self, planned_flops: float, label: str) -> None:
        with self._count_lock:  # runs on several lanes count into one total
            self.done_flops += planned_flops
        self.note(label)

    def note(self, label: str) -> None:
        """After each stretch of any run's work, on whichever lane made it: stop if the sweep
        is stopping, else pass the tick on to `progress`."""
        if self.stopping.is_set():
            raise Stopped()
        self.label = label
        if self.progress:
            self.progress(self.fraction, label)

    def _state_file(self, key: dict) -> Path | None:
        if self.state_dir is None:
            return None
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.state_dir / f"run-{digest}.json"

    def run_config(self, run: PlannedRun, seed: int):
        from estimators.models import GPTConfig
        from estimators.prequential import RunConfig

        width, depth, context = run.size
        return RunConfig(GPTConfig(self.data.vocab_size, width, depth, context), seed,
                         run.preset.learning_rate, run.preset.hidden_learning_rate,
                         max(1, run.preset.batch_tokens // context), run.cap,
                         len(self.data.tokens), run.replay_epochs, run.budget_flops)

    def model_meta(self, cfg) -> dict:
        """What a saved model needs beside its weights to be trained on further (transfer)."""
        return {"learning_rate": cfg.learning_rate, "batch_sequences": cfg.batch_sequences,
                "hidden_learning_rate": cfg.hidden_learning_rate, "seed": cfg.seed,
                "dataset_sha256": self.data.sha256, "version": __version__,
                "code_hash": code_hash()}

    def keep_untrained(self, path: Path, seed: int) -> None:
        """No trained model beat the uniform code by more than noise: the data taught nothing,
        so what transfers is the untrained model, the initialisation a run from scratch gets."""
        import torch

        from estimators.models import GPT
        from estimators.training import save_model

        run = self.model_run() or PlannedRun(self.preset, self.preset.sizes[0], 0, 0, 0.0, 0.0)
        cfg = self.run_config(run, seed)
        torch.manual_seed(seed)
        save_model(GPT(cfg.model), path, **self.model_meta(cfg), untrained=True)

    def model_run(self) -> PlannedRun | None:
        """The run whose model is kept for transfer: the largest single pass of the plan."""
        passes = [r for r in self.plan if r.replay_epochs == 0]
        return passes[-1] if passes else None

    def run_one(self, run: PlannedRun, seed: int, model_out: Path | None = None) -> dict:
        """One training run as a plain dict, reloaded from `state_dir` when already done.

        With `model_out`, the run's trained (EMA) model is written there too."""
        from estimators import prequential, requential
        from estimators.training import precision, save_model

        width, depth, context = run.size
        cfg = self.run_config(run, seed)
        key = {"sha256": self.data.sha256, "format": self.data.format, "estimator": self.estimator,
               "config": asdict(cfg), "heldout": run.preset.heldout_tokens,
               "precision": precision(self.device), "code": code_hash()}
        path = self._state_file(key)
        label = f"{self.estimator} {width}x{depth}" + \
            (f" replay {run.replay_epochs}" if run.replay_epochs else "") + f" seed {seed}"
        saved_model = path.with_suffix(".pt") if path else None
        if path and path.exists() and (model_out is None or saved_model.exists()):
            self._tick(run.planned_flops, f"{label} (saved)")
            if model_out is not None:
                shutil.copyfile(saved_model, model_out)
            return json.loads(path.read_text())
        data_split = split(self.data.tokens, context, seed, run.preset.heldout_tokens)
        module = requential if self.estimator == "requential" else prequential
        per_token = run.planned_flops / run.cap
        result = module.run(data_split, cfg, self.device,
                            lambda t: self._tick(t * per_token, label),
                            keep_model=model_out is not None)
        if model_out is not None:
            save_model(result.model, model_out, **self.model_meta(cfg))
            if saved_model:
                shutil.copyfile(model_out, saved_model)
        record = {
            "estimator": self.estimator, "seed": seed, "params": result.params,
            "model": {"params": result.params, "width": width, "depth": depth, "context": context},
            "tokens_trained": result.checkpoints[-1].tokens_trained,
            "dataset_tokens": len(self.data.tokens), "preset": run.preset.name,
            "replay_epochs": run.replay_epochs, "budget_flops": run.budget_flops,
            "precision": precision(self.device),
            "flops_spent": result.flops_spent, "seconds": result.seconds,
            "checkpoints": [asdict(c) for c in result.checkpoints],
        }
        if path:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            os.replace(tmp, path)  # atomic: a crash never leaves half a run behind
        return record


def _points(runs: list[dict], prior: Point, first_run: int) -> list[Point]:
    """The untrained point and every checkpoint of `runs` that codes the data shorter by more
    than twice the noise of its held-out estimate, as frontier points; `first_run` is runs[0]'s
    index.

    The uniform code's length is exact, a checkpoint's an estimate: on random bytes a barely
    trained transformer scored 7.9999 bits/byte on its held-out sample, 0.0001 under the
    uniform code and well inside its noise, and the frontier reported it as learned structure."""
    points = [prior]
    for i, run in enumerate(runs, start=first_run):
        for c in run["checkpoints"]:
            noise = c["heldout_stderr"] if math.isfinite(c["heldout_stderr"]) else 0.0
            point = Point(c["compute_flops"], c["epiplexity_bits"], c["entropy_bits"], i,
                          noise * c["tokens_trained"], noise * run["dataset_tokens"])
            if prior.total_bits - point.total_bits > 2 * point.entropy_stderr_bits:
                points.append(point)
    return points


def _run_warnings(run: dict, budget: float) -> list[str]:
    """Honesty checks on the run that the largest budget chose."""
    out, cps = [], run["checkpoints"]
    if len(cps) >= 2 and cps[-2]["tokens_trained"] > 0:
        before, last = cps[-2]["heldout_bits_per_token"], cps[-1]["heldout_bits_per_token"]
        where = ""
        if cps[-1].get("extra", {}).get("earlier_bits_per_token") is not None:
            # a count-family checkpoint prices the data ahead of it apart: both models on the
            # data the first had learned from (20,000 random bytes, then a phrase repeated: the
            # whole file's price fell from 8.005 to 3.643 bits/byte while neither model coded
            # the random bytes better than the other)
            before = cps[-2]["extra"]["learned_bits_per_token"]
            last = cps[-1]["extra"]["earlier_bits_per_token"]
            where = " over the data both had seen,"
        trained, more = cps[-2]["tokens_trained"], cps[-1]["tokens_trained"]
        # the fall per doubling of data (count-family checkpoints can be several doublings apart)
        doublings = max(1.0, math.log2(more / trained))
        if (before - last) / doublings > max(FLAT_TOLERANCE * before, FLAT_FLOOR_BITS):
            # a run stops short of its own budget only when its data is spent: more compute
            # cannot help it (a run planned for a lower rung can lose out to more compute)
            spent, planned = cps[-1]["compute_flops"], run["budget_flops"]
            remedy = "more data or compute" if spent >= planned * UNREACHABLE_FRACTION else \
                f"more data (this run had spent its data at {spent:.2g} FLOPs)"
            out.append(f"the loss curve has not flattened at {budget:.2g} FLOPs (held-out loss "
                       f"{before:.3f} -> {last:.3f} bits/token{where} from {trained:,} to {more:,} "
                       f"tokens trained): {remedy} would lower H further")
    if run["estimator"] == "requential":
        # Like with like: the checkpoint the budget chose, against the prequential code of the
        # same teacher after the same tokens (the requential code should never be longer).
        chosen = min((c for c in cps if c["compute_flops"] <= budget),
                     key=lambda c: c["epiplexity_bits"] + c["entropy_bits"], default=cps[-1])
        preq = chosen["extra"]["prequential_epiplexity_bits"]
        noise = 2 * chosen["heldout_stderr"] * chosen["tokens_trained"]
        if chosen["epiplexity_bits"] > max(preq, 0.0) + noise:
            out.append(f"requential S ({chosen['epiplexity_bits']:.0f} bits) exceeds the "
                       f"prequential S of its own teacher after the same "
                       f"{chosen['tokens_trained']} tokens ({preq:.0f} bits) at "
                       f"{budget:.2g} FLOPs: the student lagged, so S_req <= S_preq fails here")
    return out


UNTRAINED_MODEL = {"name": UNIFORM, "params": 0, "width": 0, "depth": 0, "context": 0,
                   "untrained": True}


def _family_of(runs: list[dict], point: Point) -> str:
    return runs[point.run]["family"] if point.run >= 0 else UNIFORM


def _read_curve(per_seed: list[list[Point]], ladder: list[float], runs: list[dict],
                data_bytes: int) -> list[CurvePoint]:
    """S_T and H_T at each budget: the best code within it, per seed, then the mean."""
    curve = []
    for budget in ladder:
        chosen_points = [best_within(points, budget) for points in per_seed]
        s_bits = [p.epiplexity_bits for p in chosen_points]
        h_bits = [p.entropy_bits for p in chosen_points]
        first = chosen_points[0]
        model = runs[first.run]["model"] if first.run >= 0 else UNTRAINED_MODEL
        ci95 = None
        if len(per_seed) > 1:
            ci95 = {"epiplexity_bits": _interval(s_bits), "entropy_bits": _interval(h_bits)}
        s_mean, h_mean = float(np.mean(s_bits)), float(np.mean(h_bits))
        s_error, h_error = (math.hypot(*errors) / len(errors) for errors in zip(
            *((p.stderr_bits, p.entropy_stderr_bits) for p in chosen_points)))
        curve.append(CurvePoint(budget, s_mean, h_mean, s_mean / data_bytes, h_mean / data_bytes,
                                model, ci95, _family_of(runs, first), s_error, h_error,
                                s_error / data_bytes, h_error / data_bytes))
    return curve


def _make_runs(sweep: _Sweep, counting: CountFamilyRuns | None, threads: int,
               model_out: str | os.PathLike | None, tick: ProgressCallback,
               report: Callable[[], None]) -> tuple[list[dict], list[list[dict]], dict]:
    """Every run of the sweep, and the compressors' baselines, on up to `threads` lanes:
    (count-family runs, each seed's transformer runs in plan order, baselines).

    On a CPU each lane takes one task at a time and each run computes with `threads // lanes`
    intra-op threads, so results do not depend on the order runs finish in. Every run's ticks
    go to `tick`; `report` hands them on, at once with one lane, every 0.25 s with more."""
    import torch

    plan, first_seed = sweep.plan, sweep.seeds[0]

    def kept(run: PlannedRun, s: int) -> Path | None:  # where the one run kept for transfer saves
        return Path(model_out) if model_out and s == first_seed and run is sweep.model_run() else None

    # Each transformer run and each count-family size is a task, all longest first so that
    # the lanes finish together; then the baselines. A transformer run's memory is small.
    pairs = [(s, i) for s in sweep.seeds for i in range(len(plan))]
    work = [plan[i].planned_flops for _, i in pairs] + (counting.work if counting else [])
    memory = [0] * len(pairs) + (counting.memory if counting else [])
    runs = [partial(sweep.run_one, plan[i], s, kept(plan[i], s)) for s, i in pairs] + (
        counting.tasks() if counting else [])
    order = sorted(range(len(runs)), key=lambda task: -work[task])
    tasks = [runs[task] for task in order] + [partial(compressor_baselines, sweep.data)]
    needs = [memory[task] for task in order] + [COMPRESSOR_MEMORY_BYTES]
    lanes = min(threads, len(tasks)) if sweep.device.type == "cpu" else 1
    sweep.progress = tick if lanes > 1 else lambda fraction, label: (tick(fraction, label), report())
    torch.set_num_threads(max(1, threads // lanes))
    try:
        made = run_in_lanes(tasks, lanes, report, sweep.stopping, needs, LANE_MEMORY_BYTES)
    finally:
        torch.set_num_threads(threads)
    baselines = made.pop()
    by_task = dict(zip(order, made))
    count_runs = [run for task in range(len(pairs), len(runs))
                  if (run := by_task.pop(task)) is not None]
    for run in by_task.values():
        run["family"] = "transformer"  # its model stays as saved: width, depth, context
    by_pair = {pairs[task]: run for task, run in by_task.items()}
    return count_runs, [[by_pair[s, i] for i in range(len(plan))] for s in sweep.seeds], baselines


def estimate(source, *, format: str = "bytes", preset: str | None = "quick",
             budgets: Sequence[float] | None = None, estimator: str = "prequential",
             seeds: int = 1, seed: int = 0, device: str = "auto",
             progress: ProgressCallback | None = None, state_dir: str | os.PathLike | None = None,
             threads: int | None = None, vocab_size: int | None = None,
             model_out: str | os.PathLike | None = None,
             families: Sequence[str] | None = None) -> EstimateResult:
    """Epiplexity S_T and time-bounded entropy H_T of `source` (path or bytes), in bits.

    `preset` picks model sizes and the budget ladder; `budgets` (FLOPs) overrides the ladder.
    `seeds` runs the sweep that many times (seed, seed+1, ...) for a 95% interval.
    `state_dir` saves each finished run so that a re-run resumes instead of starting over.
    `model_out` keeps the trained model of the largest size (first seed), for transfer.
    `families` picks the observer families pooled on the frontier (default: all of
    `frontier.FAMILIES`); the headline at each budget is the minimum over all of them.
    """
    started = time.perf_counter()
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}: use {' or '.join(ESTIMATORS)}")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError("seeds must be a whole number >= 1")
    chosen, ladder = resolve(preset, budgets)
    family_names = check_families(families)
    from estimators.training import cap_threads, pick_device

    threads = cap_threads(threads)
    dev = pick_device(device)
    data = load(source, format, vocab_size=vocab_size)
    state = Path(state_dir) if state_dir else None
    if state:
        try:
            state.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file there, no permission, a read-only disk
            why = "it is a file" if state.is_file() else e.strerror or str(e)
            raise ValueError(f"cannot keep runs in {state}: {why}; give a directory that can "
                             "be created and written") from None
    seed_list = [seed + i for i in range(seeds)]

    def overall() -> float:
        counted = counting.fraction if counting else 0.0
        return count_share * counted + (1 - count_share) * sweep.fraction

    ticks: deque[tuple[float, str]] = deque()  # queued by whichever lane ticked, in order
    order = threading.Lock()

    def tick(_fraction: float, label: str) -> None:
        if progress is None:
            return  # nobody reads them: a long sweep would queue millions
        with order:
            ticks.append((overall(), label))

    def report() -> None:  # on the calling thread only: it may raise to stop the sweep
        if progress and not ticks:
            progress(overall(), sweep.label)  # still working: also a liveness check
        while progress and ticks:
            progress(*ticks.popleft())

    sweep = _Sweep(data, chosen, ladder, estimator, seed_list, dev, None, state, family_names)
    ladder = sweep.budgets  # a preset's large-data rungs join where the count family needs them
    check_enough_data(data, chosen, family_names)
    counting = CountFamilyRuns(sweep) if "context-mixing" in family_names else None
    count_work = sum(counting.work) if counting else 0.0  # the families share the bar by work
    count_share = count_work / (count_work + (sweep.total_flops if sweep.plan else 0.0) or 1.0)
    runs, transformer_runs, baselines = _make_runs(sweep, counting, threads, model_out, tick, report)

    prior = untrained_point(len(data.tokens), data.vocab_size)
    shared = _points(runs, prior, first_run=0)[1:]  # deterministic: every seed pools them
    per_seed: list[list[Point]] = []
    for seed_runs in transformer_runs:
        per_seed.append(_points(seed_runs, prior, first_run=len(runs)) + shared)
        runs.extend(seed_runs)

    curve = _read_curve(per_seed, ladder, runs, data.bytes_coded)
    by_family = {name: _read_curve([[p for p in points if _family_of(runs, p) in (name, UNIFORM)]
                                    for points in per_seed], ladder, runs, data.bytes_coded)
                 for name in family_names}
    if curve[-1].family == UNIFORM and runs:
        sweep.warnings.append("epiplexity is zero: no trained model of any family coded the "
                              "data in fewer bits than the uniform code, so the data looks "
                              "random to these learners")

    if progress:
        progress(1.0, "done")
    top = per_seed[0]
    best = best_within(top, ladder[-1])
    # the kept model (transfer) is a transformer: judge it by the transformer's own frontier
    own = best_within([p for p in top if _family_of(runs, p) != "context-mixing"], ladder[-1])
    learned = own.run >= 0  # a trained point on the frontier beats the uniform code beyond noise
    if model_out and not learned:
        sweep.keep_untrained(Path(model_out), seed)
    if best.run >= 0:
        sweep.warnings.extend(_run_warnings(runs[best.run], ladder[-1]))
        if best.epiplexity_bits < -max(2 * best.stderr_bits, 1.0):  # a bit: one block has no spread
            sweep.warnings.append(
                f"epiplexity came out negative ({best.epiplexity_bits:.0f} bits, beyond its "
                f"noise of +/- {best.stderr_bits:.0f}): the final model codes held-out data "
                "worse than the online code paid, as on data whose statistics drift, so the "
                "split into S and H is unreliable here; S + H is still a valid code length")
        elif best.epiplexity_bits < 2 * best.stderr_bits:
            sweep.warnings.append(
                f"epiplexity ({best.epiplexity_bits:.0f} bits) is within noise of zero "
                f"(+/- {best.stderr_bits:.0f} bits from the held-out estimate)")
    final = curve[-1]
    return EstimateResult(
        epiplexity_bits=final.epiplexity_bits, entropy_bits=final.entropy_bits,
        epiplexity_bits_per_byte=final.epiplexity_bits_per_byte,
        entropy_bits_per_byte=final.entropy_bits_per_byte,
        curve=curve, baselines=baselines,
        dataset=DatasetInfo(data.bytes, data.bytes_coded, len(data.tokens), data.sha256,
                            data.format, data.vocab_size),
        estimator=estimator, seeds=seed_list,
        flops_spent=float(sum(r["flops_spent"] for r in runs)),
        seconds=time.perf_counter() - started, warnings=sweep.warnings, version=__version__,
        code_hash=code_hash(), preset=chosen.name if not budgets else None,
        tokenizer="bytes" if data.format != "tokens" else f"tokens (vocabulary {data.vocab_size})",
        device=str(dev), runs=runs,
        frontier=[{"compute_flops": p.compute_flops, "epiplexity_bits": p.epiplexity_bits,
                   "entropy_bits": p.entropy_bits, "family": _family_of(runs, p)}
                  for p in lower_hull(top)],
        families=by_family)
