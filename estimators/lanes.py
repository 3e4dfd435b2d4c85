"""A sweep's runs on parallel lanes: threads of one process, each keeping one core busy.

Torch and the count family's numba kernels release the GIL while they compute, so `lanes`
threads use that many cores without starting processes (no second torch import, no fork after
torch). The caller fixes each run's intra-op threads before the lanes start, so a result never
depends on which run finished first. Only the calling thread reports progress (`report`, every
`REPORT_SECONDS`): the lanes only queue their ticks for it, and raise `Stopped` at their next
tick once `stopping` is set.
"""
from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Callable, TypeVar

T = TypeVar("T")
REPORT_SECONDS = 0.25  # how often the calling thread reports progress while the lanes work


class Stopped(Exception):
    """Raised in a lane's tick: the sweep it serves has failed or was stopped."""


def run_in_lanes(tasks: list[Callable[[], T]], lanes: int, report: Callable[[], None],
                 stopping: threading.Event) -> list[T]:
    """Each task's result, in order. One lane runs them here, in order; more lanes take them
    in order as each frees. An exception in a task or in `report` stops every lane and is
    raised here."""
    if lanes <= 1:
        return [task() for task in tasks]
    pool = ThreadPoolExecutor(lanes, thread_name_prefix="epiplex-lane")
    try:
        futures = [pool.submit(task) for task in tasks]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, REPORT_SECONDS, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # a failed run fails the sweep
            report()
        return [future.result() for future in futures]
    except BaseException:
        stopping.set()  # the lanes still running end at their next tick
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
