"""The count family's part of a sweep: one run per size, saved like the transformer's runs."""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from functools import partial
from typing import Callable

from estimators import code_hash, count_family

# One count-family operation takes about as long as this many transformer FLOPs (2-core AMD
# EPYC, 1 MiB: 0.74 G operations/s against 33 GFLOP/s on one thread). It only shares out the
# progress bar between the families and orders a cluster's runs longest first.
OPERATION_IN_FLOPS = 40
# What a size's label says until its first bytes are coded: the first run after installing or
# changing the estimators compiles the kernels (60-80 s on 2 cores), later ones load them.
STARTING = ("(loading its kernels; the first run after installing or upgrading compiles them, "
            "about a minute)")


def count_family_run(sweep, cfg, tick: Callable[..., None] | None = None) -> dict | None:
    """One count-family size's run, saved in `sweep.state_dir` like the transformer's runs so
    that a re-run (or the assembling call of a cluster's sweep) reloads it."""
    data, budgets = sweep.data, list(sweep.budgets)
    key = {"sha256": data.sha256, "format": data.format, "family": count_family.FAMILY,
           "config": asdict(cfg), "budgets": budgets, "code": code_hash()}
    path = sweep._state_file(key)
    if path and path.exists():
        if tick:
            tick(len(data.tokens), saved=True)
        return json.loads(path.read_text())
    if tick:
        tick(0, starting=True)  # a label at once: compiling the kernels takes a minute
    run = count_family.run(data, cfg, budgets, tick)
    if path:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(run))
        os.replace(tmp, path)  # atomic, as for the transformer's runs
    return run


def planned_work(sweep, cfg) -> float:
    """One size's planned work in transformer-FLOP equivalents (to share out progress and order
    runs): its pass and held-out evaluations, as far as the budgets let it go."""
    width = sweep.data.token_bytes
    stops = count_family.checkpoint_stops(cfg, len(sweep.data.tokens) * width, sweep.budgets,
                                          width)
    return OPERATION_IN_FLOPS * (stops[-1][1] if stops else 0.0)


class CountFamilyRuns:
    """One run of every count-family size, capped by the sweep's largest budget: one task per
    size, so that the sizes share the lanes with the transformer's runs."""

    def __init__(self, sweep) -> None:
        self._sweep = sweep
        self._planned = max(1, len(sweep.data.tokens) * len(count_family.SIZES))
        self._done = 0
        self._lock = threading.Lock()  # sizes on several lanes count into one total

    @property
    def work(self) -> list[float]:
        """Each size's planned work, in the order of `count_family.SIZES`."""
        return [planned_work(self._sweep, cfg) for cfg in count_family.SIZES]

    @property
    def memory(self) -> list[int]:
        """Bytes of each size's tables on this data, in the order of `count_family.SIZES`."""
        size = len(self._sweep.data.tokens) * self._sweep.data.token_bytes
        return [cfg.fitted(size).state_bytes for cfg in count_family.SIZES]

    @property
    def fraction(self) -> float:
        """The share of the family's bytes coded so far (saved runs count as coded)."""
        return min(1.0, self._done / self._planned)

    def tasks(self) -> list[Callable[[], dict | None]]:
        """One task per size, in the order of `count_family.SIZES`: each returns its run."""
        return [partial(self._make, cfg) for cfg in count_family.SIZES]

    def _make(self, cfg) -> dict | None:
        name = f"{count_family.FAMILY} {cfg.name}"

        def tick(count: int, saved: bool = False, starting: bool = False) -> None:
            with self._lock:
                self._done += count
            self._sweep.note(f"{name} (saved)" if saved else f"{name} {STARTING}" if starting
                             else name)

        return count_family_run(self._sweep, cfg, tick)
