"""The training runs of a sweep, one at a time: a seam for running them on many machines.

`estimate` makes its runs (each transformer size x seed, then each count-family size) one after
another. A cluster can instead list them with `sweep_runs`, make each one anywhere with
`make_run` into a `state_dir`, gather the saved run files into one `state_dir` and call
`estimate` with it: every run is then reloaded instead of made, and the result is the same as a
one-machine sweep.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from estimators import count_family
from estimators.count_sweep import count_family_run, planned_work
from estimators.frontier import check_families
from estimators.planning import check_enough_data
from estimators.sweep import ProgressCallback, _Sweep, resolve


def _sweep(source, format: str, preset: str | None, budgets: Sequence[float] | None, estimator: str,
           seeds: int, seed: int, device, progress: ProgressCallback | None, state_dir: Path | None,
           vocab_size: int | None, families: Sequence[str] | None) -> _Sweep:
    from estimators.data import load

    chosen, ladder = resolve(preset, budgets)
    data = load(source, format, vocab_size=vocab_size)
    families = check_families(families)
    sweep = _Sweep(data, chosen, ladder, estimator, [seed + i for i in range(seeds)], device,
                   progress, state_dir, families)
    check_enough_data(data, chosen, families)
    return sweep


def sweep_runs(source, *, format: str = "bytes", preset: str | None = "quick",
               budgets: Sequence[float] | None = None, estimator: str = "prequential", seeds: int = 1,
               seed: int = 0, vocab_size: int | None = None,
               families: Sequence[str] | None = None) -> list[dict]:
    """The runs `estimate` would make with these options: {"family", "seed", "size",
    "replay_epochs", "keeps_model", "work", "memory"} each (`keeps_model`: the run whose model
    `model_out` keeps; `work`: planned FLOPs, or their equivalent in time for a count-family run,
    to start the longest first; `memory`: bytes a count-family run's process may hold, for a
    scheduler to place it, None for a transformer run, whose model is small). Count-family runs
    are deterministic: their seed is None.

    Needs no torch: it only reads the data and plans the runs."""
    sweep = _sweep(source, format, preset, budgets, estimator, seeds, seed, None, None, None, vocab_size,
                   families)
    kept = sweep.model_run()
    stream_bytes = len(sweep.data.tokens) * sweep.data.token_bytes
    return [{"family": "transformer", "seed": s, "size": list(run.size), "replay_epochs": run.replay_epochs,
             "keeps_model": run is kept, "work": run.planned_flops, "memory": None} if s is not None else
            {"family": count_family.FAMILY, "seed": None, "size": run.name, "replay_epochs": 0,
             "keeps_model": False, "work": planned_work(sweep, run),
             "memory": count_family.run_memory_bytes(run, stream_bytes)}
            for s, run in _runs(sweep)]


def _runs(sweep: _Sweep) -> list:
    """(seed, planned transformer run) for each seed and size, then (None, count-family size),
    of the families the sweep pools."""
    counted = count_family.SIZES if count_family.FAMILY in sweep.families else ()
    return [(s, run) for s in sweep.seeds for run in sweep.plan] + [(None, cfg) for cfg in counted]


def make_run(source, index: int, *, state_dir: str | os.PathLike, format: str = "bytes",
             preset: str | None = "quick", budgets: Sequence[float] | None = None,
             estimator: str = "prequential", seeds: int = 1, seed: int = 0, device: str = "auto",
             threads: int | None = None, vocab_size: int | None = None, keep_model: bool = False,
             progress: ProgressCallback | None = None, families: Sequence[str] | None = None) -> dict:
    """Make run `index` of `sweep_runs(...)` and save it in `state_dir` (reloaded if already there).
    A count-family run gets no model kept and no progress (it takes seconds).

    With `keep_model`, the run's trained model is saved beside it, as `estimate(model_out=...)`
    needs for the run it keeps (the largest single pass of the first seed)."""
    from estimators.training import cap_threads, pick_device

    cap_threads(threads)
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    sweep = _sweep(source, format, preset, budgets, estimator, seeds, seed, pick_device(device), progress,
                   state, vocab_size, families)
    runs = _runs(sweep)
    if not 0 <= index < len(runs):
        raise IndexError(f"run {index} of a sweep of {len(runs)} runs")
    s, run = runs[index]
    if s is None:
        return count_family_run(sweep, run)
    model_out = state / f"model-{index}.tmp" if keep_model else None
    try:
        return sweep.run_one(run, s, model_out)
    finally:
        if model_out is not None:
            model_out.unlink(missing_ok=True)


def kept_run(runs: list[dict], seed: int = 0) -> int | None:
    """Index of the run whose model `estimate(model_out=...)` keeps (the largest single pass of
    `seed`), or None when the plan has none."""
    return next((i for i, run in enumerate(runs) if run["seed"] == seed and run["keeps_model"]), None)
