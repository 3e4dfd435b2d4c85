"""Vet through the service: score a dataset (and its baseline) by the ordinary cached jobs, then judge.

Scores are jobs, and jobs are keyed by dataset (content-addressed) and settings: vetting unchanged
data with unchanged settings finds the succeeded job and answers at once, training nothing.
The verdict itself is cheap arithmetic on the stored result, so it is computed on every request
rather than stored: thresholds can change between CI runs without invalidating any cache.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.schemas import VetCheck, VetFigures, VetOut, VetRequest
from app.auth import access
from app.auth.access import Caller
from app.core.errors import Conflict, ServiceError
from app.core.models import Dataset, Job
from app.jobs.service import submit_job
from app.services import Services
from app.vet.vetting import Check, Figures, Thresholds, Verdict, VetInputError


@dataclass(frozen=True)
class Submitted:
    dataset_id: str
    job_id: str
    baseline_dataset_id: str | None
    baseline_job_id: str | None
    cached: bool


def _queue(services: Services, session: Session, caller: Caller, dataset_id: str,
           body: VetRequest) -> tuple[str, bool]:
    """The job scoring `dataset_id` under the request's settings, and whether it had already succeeded."""
    submitted = submit_job(session, services, caller, dataset_id, body.job_settings())
    return submitted.job.id, not submitted.queued and submitted.job.status == "succeeded"


def submit(services: Services, caller: Caller, body: VetRequest) -> Submitted:
    """Queue (or find) the jobs a verdict needs, on datasets the caller may see."""
    with services.sessions() as session:
        if body.dataset_id is not None:
            dataset = access.get_dataset(session, caller, body.dataset_id)
        else:
            # The caller's own upload of these bytes first, else a public one it may see.
            dataset = session.scalar(select(Dataset).where(
                Dataset.sha256 == body.sha256, Dataset.format == body.format, access.visible_datasets(caller))
                .order_by((Dataset.owner_id == caller.owner_id).desc(), Dataset.created_at))
            if dataset is None:
                raise ServiceError(f"no dataset with sha256 {body.sha256} in format {body.format!r}; "
                                      "upload it first (POST /v1/datasets)", 404)
        if body.baseline_dataset_id is not None:
            access.get_dataset(session, caller, body.baseline_dataset_id, kind="baseline dataset")
        job_id, cached = _queue(services, session, caller, dataset.id, body)
        baseline_job_id = None
        if body.baseline_dataset_id is not None:
            baseline_job_id, baseline_cached = _queue(services, session, caller, body.baseline_dataset_id, body)
            cached = cached and baseline_cached
        return Submitted(dataset.id, job_id, body.baseline_dataset_id, baseline_job_id, cached)


def answer(services: Services, submitted: Submitted, body: VetRequest) -> VetOut:
    """The verdict if every job it needs has succeeded; else `pending` or `error`."""
    with services.sessions() as session:
        job = session.get(Job, submitted.job_id)
        baseline_job = session.get(Job, submitted.baseline_job_id) if submitted.baseline_job_id else None
        if job is None or (submitted.baseline_job_id and baseline_job is None):
            raise Conflict("a job this verdict needs was deleted with its dataset; send the request again")
    jobs = [job] + ([baseline_job] if baseline_job else [])
    out = VetOut(status="pending", cached=submitted.cached, dataset_id=submitted.dataset_id, job_id=job.id,
                 job_status=job.status, progress=sum(j.progress for j in jobs) / len(jobs),
                 baseline_dataset_id=submitted.baseline_dataset_id, baseline_job_id=submitted.baseline_job_id)
    ended = [j for j in jobs if j.status in ("failed", "canceled")]
    if ended:
        role = "baseline " if ended[0] is baseline_job else ""
        out.status, out.error = "error", f"{role}job {ended[0].id} {ended[0].status}: {ended[0].error or 'no reason given'}"
        return out
    if any(j.status != "succeeded" for j in jobs):
        return out
    try:
        figures = Figures.from_result(job.result)
        baseline = (Figures.from_dict(body.baseline.model_dump()) if body.baseline
                    else Figures.from_result(baseline_job.result) if baseline_job else None)
        verdict = Verdict.judge(submitted.dataset_id, figures,
                                Thresholds(**body.thresholds.model_dump()), baseline,
                                warnings=list((job.result or {}).get("warnings") or []))
    except VetInputError as error:
        out.status, out.error = "error", str(error)
        return out
    out.status, out.passed = verdict.status, verdict.status == "passed"
    out.checks = [VetCheck(**check.to_dict()) for check in verdict.checks]
    out.figures = VetFigures(**figures.to_dict())
    out.baseline = VetFigures(**baseline.to_dict()) if baseline else None
    out.warnings = verdict.warnings
    return out




def verdict_of(name: str, out: VetOut, **about) -> Verdict:
    """The report writers' Verdict for a service answer that is not pending (passed, failed or error)."""
    if out.status == "error":
        return Verdict.failed_to_run(name, out.error or "the server could not vet it", **about)
    return Verdict(name, out.status, [Check(**check.model_dump()) for check in out.checks],
                   Figures.from_dict(out.figures.model_dump()),
                   Figures.from_dict(out.baseline.model_dump()) if out.baseline else None,
                   warnings=out.warnings, **about)
