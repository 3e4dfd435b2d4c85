"""A sweep's runs on parallel lanes: threads of one process, each keeping one core busy.

Torch and the count family's numba kernels release the GIL while they compute, so `lanes`
threads use that many cores without starting processes (no second torch import, no fork after
torch). The caller fixes each run's intra-op threads before the lanes start, so a result never
depends on which run finished first. Only the calling thread reports progress (`report`, every
`REPORT_SECONDS`): the lanes only queue their ticks for it, and raise `Stopped` at their next
tick once `stopping` is set.

Each task may name the memory it holds while it runs (a count-family size's tables, a
compressor's window). A lane that frees takes the first task, in order, that fits beside those
running within `memory_cap`; one that fits beside nothing runs alone. On 100 MiB the two
largest count-family sizes (490 and 842 MiB of tables) ran at once and quick peaked at 1.83-1.95
GiB, against a goal of 2.
"""
from __future__ import annotations

import math
import threading
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
REPORT_SECONDS = 0.25  # how often the calling thread reports progress while the lanes work


class Stopped(Exception):
    """Raised in a lane's tick: the sweep it serves has failed or was stopped."""


def run_in_lanes(tasks: list[Callable[[], T]], lanes: int, report: Callable[[], None],
                 stopping: threading.Event, memory: Sequence[float] = (),
                 memory_cap: float = math.inf) -> list[T]:
    """Each task's result, in order. One lane runs them here, in order; more lanes take them
    in order as each frees, keeping the `memory` of the tasks running at once (bytes, one
    figure per task; none: 0) within `memory_cap`. An exception in a task or in `report` stops
    every lane and is raised here."""
    if lanes <= 1:
        return [task() for task in tasks]
    needs = list(memory) or [0.0] * len(tasks)
    results: list = [None] * len(tasks)
    pending, failures = list(range(len(tasks))), []
    held = [0.0]  # memory of the tasks running now
    changed = threading.Condition()

    def fitting() -> int | None:  # under `changed`
        return next((i for i in pending if held[0] == 0 or held[0] + needs[i] <= memory_cap),
                    None)

    def lane() -> None:
        while True:
            with changed:
                while pending and not stopping.is_set() and (task := fitting()) is None:
                    changed.wait()
                if not pending or stopping.is_set():
                    return
                pending.remove(task)
                held[0] += needs[task]
            try:
                results[task] = tasks[task]()
            except BaseException as error:  # noqa: BLE001 - handed to the calling thread
                failures.append(error)
                stopping.set()
            finally:
                with changed:
                    held[0] -= needs[task]
                    changed.notify_all()

    threads = [threading.Thread(target=lane, name=f"epiplex-lane-{k}", daemon=True)
               for k in range(min(lanes, len(tasks)))]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            next(thread for thread in threads if thread.is_alive()).join(REPORT_SECONDS)
            if failures:
                raise failures[0]  # the first: the others are the lanes it stopped
            report()
        if failures:
            raise failures[0]
        return results
    except BaseException:
        stopping.set()  # the lanes still running end at their next tick
        with changed:
            changed.notify_all()
        raise
