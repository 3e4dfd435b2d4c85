"""Quotas per key, read from the database: stored bytes, queued or running jobs, FLOPs per day.

Admin keys and requests without keys (keys off) have none. Going over raises QuotaExceeded, a
429 whose message names the limit and whose Retry-After says when asking again may succeed.
Request rates are limited separately, in memory (`app.auth.guard`).
"""
from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.access import Caller
from app.core.errors import ServiceError
from app.core.models import Dataset, FlopsCharge, Job, utcnow
from app.core.settings import Settings

DAY = timedelta(days=1)
# Bytes are freed by deleting datasets, not by waiting; an hour is a polite "not soon".
STORED_BYTES_RETRY_SECONDS = 3600
ACTIVE_JOBS_RETRY_SECONDS = 60


class QuotaExceeded(ServiceError):
    status_code = 429

    def __init__(self, detail: str, retry_after_seconds: float) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_seconds)))}


def _limited(caller: Caller, limit: float) -> bool:
    return bool(limit) and caller.key_id is not None and not caller.admin


def planned_flops(resolved: dict) -> float:
    """FLOPs a job with these resolved settings plans to spend: every budget, for every seed."""
    from estimators.presets import PRESETS

    budgets = resolved["budgets"] or PRESETS[resolved["preset"]].all_budgets
    return float(sum(budgets)) * resolved["seeds"]


def check_stored_bytes(session: Session, settings: Settings, caller: Caller, adding: int) -> None:
    """QuotaExceeded when the caller's datasets plus `adding` bytes go over `quota_stored_bytes`."""
    limit = settings.quota_stored_bytes
    if not _limited(caller, limit):
        return
    used = session.scalar(select(func.coalesce(func.sum(Dataset.bytes), 0)).where(Dataset.owner_id == caller.owner_id))
    if used + adding > limit:
        raise QuotaExceeded(f"stored-bytes quota: {caller.describe()} keeps {used} bytes and this upload adds "
                            f"{adding}, over the limit of {limit} bytes (EPIPLEX_QUOTA_STORED_BYTES); "
                            "delete datasets to make room", STORED_BYTES_RETRY_SECONDS)


def charge_job(session: Session, caller: Caller, job_id: str, flops: float) -> None:
    """Record that a key queued (or re-queued) a job planning `flops`; committed with the job."""
    if caller.key_id is not None:
        session.add(FlopsCharge(owner_id=caller.owner_id, job_id=job_id, flops=flops, charged_at=utcnow()))


def check_new_job(session: Session, settings: Settings, caller: Caller, flops: float, jobs: int = 1) -> None:
    """QuotaExceeded when `jobs` more jobs planning `flops` each would pass the active-jobs or the
    FLOPs-per-day quota (every queueing counts, so cancelling and queueing again is charged again)."""
    if jobs <= 0:
        return
    flops *= jobs
    if _limited(caller, settings.quota_active_jobs):
        active = session.scalar(select(func.count()).select_from(Job).where(
            Job.owner_id == caller.owner_id, Job.status.in_(("queued", "running"))))
        if active + jobs > settings.quota_active_jobs:
            raise QuotaExceeded(f"active-jobs quota: {caller.describe()} has {active} queued or running jobs "
                                f"and this request queues {jobs}, the limit is {settings.quota_active_jobs} (EPIPLEX_QUOTA_ACTIVE_JOBS); wait "
                                "for one to end or cancel one", ACTIVE_JOBS_RETRY_SECONDS)
    limit = settings.quota_flops_per_day
    if not _limited(caller, limit):
        return
    since = utcnow() - DAY
    rows = session.execute(select(FlopsCharge.charged_at, FlopsCharge.flops)
                           .where(FlopsCharge.owner_id == caller.owner_id, FlopsCharge.charged_at >= since)
                           .order_by(FlopsCharge.charged_at)).all()
    used = sum(flops_ for _, flops_ in rows)
    if used + flops > limit:
        # Room comes back as the oldest charges leave the 24 h window: wait until enough have.
        retry, freed = DAY.total_seconds(), 0.0
        for created_at, job_flops in rows:
            freed += job_flops
            if used - freed + flops <= limit:
                created_at = created_at if created_at.tzinfo else created_at.replace(tzinfo=since.tzinfo)
                retry = (created_at + DAY - utcnow()).total_seconds()
                break
        raise QuotaExceeded(f"FLOPs-per-day quota: {caller.describe()} queued jobs planning {used:.3g} FLOPs in "
                            f"the last 24 h and this request plans {flops:.3g}, over the limit of {limit:.3g} "
                            "(EPIPLEX_QUOTA_FLOPS_PER_DAY); use a smaller preset, fewer budgets or seeds, or wait",
                            retry)
