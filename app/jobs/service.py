"""The rules of jobs: submit (deduplicated by dataset + settings, resubmitting failed ones), cancel.

Routers, the transfer and the vet services call these; none of them calls another route.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth import access, quotas
from app.auth.access import Caller
from app.core.errors import Conflict, ServiceError
from app.core.ids import new_id
from app.core.models import Dataset, Job, utcnow
from app.jobs.settings import JobSettings, config_key
from app.services import Services
from app.transfer.panel import ensure_builtin, members as panel_members


@dataclass(frozen=True)
class Submitted:
    """The job a submission resolved to; `queued` is False when an existing job answers it as it is."""

    job: Job
    queued: bool


def submit_job(session: Session, services: Services, caller: Caller, dataset_id: str, settings: JobSettings,
               transfer: bool | list[str] | None = None) -> Submitted:
    """Queue a scoring job; a failed or canceled job with the same settings is queued again.

    With `transfer`, the job then measures transfer to the targets (the key includes them), and
    each target is queued for scoring with the same settings: predictions need its figures.
    Datasets the caller may not see are not found; new jobs count against the caller's quotas."""
    access.get_dataset(session, caller, dataset_id)
    resolved = settings.resolved(services.settings.default_preset)
    transfer_plan = _transfer_plan(session, services, caller, dataset_id, transfer, resolved)
    score_key = config_key(resolved)
    key = config_key({**resolved, "transfer": transfer_plan}) if transfer_plan else score_key
    charge = _QuotaCharge(services, caller, quotas.planned_flops(resolved))
    unscored = [target_id for target_id in (transfer_plan or {}).get("targets", ())
                if session.scalar(select(Job.id).where(Job.dataset_id == target_id,
                                                       Job.score_key == score_key)) is None]
    existing = session.scalar(select(Job.status).where(Job.dataset_id == dataset_id, Job.config_key == key))
    # All or nothing: a request over quota queues none of its jobs, not the first few.
    charge.check(session, jobs=len(unscored) + (existing in (None, "failed", "canceled")))
    submitted = _get_or_create(session, charge, dataset_id, resolved, key, score_key, transfer_plan)
    for target_id in unscored:
        _get_or_create(session, charge, target_id, resolved, score_key, score_key, None)
    return submitted


def list_jobs(session: Session, caller: Caller, status: str | None = None, dataset_id: str | None = None,
              limit: int = 50, offset: int = 0) -> tuple[list[Job], int]:
    """Jobs the caller may see (those of datasets it sees), newest first, optionally of one status or
    dataset, and how many match over all pages."""
    query = select(Job).join(Dataset, Dataset.id == Job.dataset_id).where(access.visible_datasets(caller))
    if status is not None:
        query = query.where(Job.status == status)
    if dataset_id is not None:
        query = query.where(Job.dataset_id == dataset_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    jobs = session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit).offset(offset)).all()
    return list(jobs), total


@dataclass(frozen=True)
class _QuotaCharge:
    """Who pays for a job about to be queued, and how many FLOPs it plans."""

    services: Services
    caller: Caller
    flops: float

    def check(self, session: Session, jobs: int = 1) -> None:
        quotas.check_new_job(session, self.services.settings, self.caller, self.flops, jobs)

    def record(self, session: Session, job_id: str) -> None:
        quotas.charge_job(session, self.caller, job_id, self.flops)


def cancel_job(session: Session, caller: Caller, job_id: str) -> Job:
    """Cancel a queued or running job; a running worker is stopped within a second or so.
    The job's submitter, its dataset's owner or an admin only (others who see it: Forbidden)."""
    job = access.get_job(session, caller, job_id)
    if job.owner_id != caller.owner_id:
        access.check_may_change(caller, job.dataset.owner_id, f"job {job_id!r}")
    changed = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(("queued", "running")))
                              .values(status="canceled", finished_at=utcnow(), message="canceled")).rowcount
    session.commit()
    session.refresh(job)
    if not changed:
        raise Conflict(f"job {job_id!r} already {job.status}")
    return job


def _transfer_plan(session: Session, services: Services, caller: Caller, dataset_id: str,
                   transfer: bool | list[str] | None, resolved: dict) -> dict | None:
    """The job's transfer request resolved to target ids ({"targets", "preset"}), or None."""
    if not transfer:
        return None
    families = resolved.get("families")  # None: every family
    if families and "transformer" not in families:
        raise ServiceError("transfer is measured with the source's trained transformer: include "
                           "'transformer' in families, or leave families out")
    if transfer is True:
        ensure_builtin(services)
        session.commit()  # end the read snapshot taken before the members were stored, to see them
        targets = [d.id for d in panel_members(session) if d.id != dataset_id]
        if not targets:
            raise ServiceError("the reference panel has no member to measure transfer to; "
                               "add one with POST /v1/panel")
    else:
        targets = transfer
        if dataset_id in targets:
            raise ServiceError("a dataset cannot be its own transfer target: its model was trained "
                               "on the very bytes it would code")
        known = set(session.scalars(select(Dataset.id).where(Dataset.id.in_(targets),
                                                             access.visible_datasets(caller))))
        missing = [t for t in targets if t not in known]
        if missing:
            raise ServiceError(f"transfer target dataset(s) not found: {', '.join(map(repr, missing))}", 404)
    # Explicit budgets name no preset; the transfer budget then comes from the default preset.
    return {"targets": sorted(targets), "preset": resolved["preset"] or services.settings.default_preset}


def _get_or_create(session: Session, charge: _QuotaCharge, dataset_id: str, resolved: dict, key: str,
                   score_key: str, transfer: dict | None) -> Submitted:
    existing = session.scalar(select(Job).where(Job.dataset_id == dataset_id, Job.config_key == key))
    if existing is not None:
        if existing.status in ("failed", "canceled"):
            charge.check(session)
            charge.record(session, existing.id)
            existing.status, existing.attempts, existing.progress = "queued", 0, 0.0
            existing.error = existing.finished_at = existing.message = None
            session.commit()
            return Submitted(existing, queued=True)
        return Submitted(existing, queued=False)
    charge.check(session)
    job = Job(id=new_id("job"), dataset_id=dataset_id, config_key=key, score_key=score_key,
              preset=resolved["preset"], budgets=resolved["budgets"], estimator=resolved["estimator"],
              seeds=resolved["seeds"], families=resolved.get("families"), transfer=transfer, status="queued",
              progress=0.0, attempts=0, created_at=utcnow(), owner_id=charge.caller.owner_id)
    session.add(job)
    charge.record(session, job.id)
    try:
        session.commit()
    except IntegrityError:  # an identical request won the race
        session.rollback()
        job = session.scalar(select(Job).where(Job.dataset_id == dataset_id, Job.config_key == key))
        return Submitted(job, queued=False)
    return Submitted(job, queued=True)
