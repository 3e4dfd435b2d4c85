"""A cache of leaderboard pages, keyed by the request and a cheap fingerprint of the data.

Ranking joins every succeeded job with its dataset and the transfer rows (~10 ms for 1,000
datasets); the fingerprint is a few indexed aggregates (well under a millisecond). Any change
that can alter a page changes the fingerprint: a job succeeding (count, newest finish), a listed
dataset deleted (its jobs go too), published or hidden (public count among listed datasets),
transfer measured (count, newest measurement), the panel edited (its member ids). An upload alone
lists nothing new, so it leaves the cached pages valid. Workers write results from other
processes, so nothing in memory could be told of a change; the fingerprint is read from the
database on every request instead.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.models import Dataset, Job, TransferRow

T = TypeVar("T")
MAX_ENTRIES = 256


def data_fingerprint(session: Session) -> tuple:
    succeeded = Job.status == "succeeded"
    ranked = Dataset.id.in_(select(Job.dataset_id).where(succeeded))  # only these are listed
    aggregates = (
        # A dataset deleted takes its jobs with it, so deletions change these two as well.
        select(func.count(Job.id)).where(succeeded), select(func.max(Job.finished_at)).where(succeeded),
        # Publishing or hiding a listed dataset changes how many of them are public.
        select(func.count(Dataset.id)).where(Dataset.visibility == "public", ranked),
        select(func.count(TransferRow.id)), select(func.max(TransferRow.measured_at)))
    counts = session.execute(select(*(a.scalar_subquery() for a in aggregates))).one()  # one round trip
    panel = tuple(session.scalars(select(Dataset.id).where(Dataset.panel_source.is_not(None))
                                  .order_by(Dataset.id)))
    return (*counts, panel)


class PageCache:
    """Least-recently-used pages; thread-safe (sync routes run in a thread pool)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value
