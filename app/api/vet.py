"""/v1/vet: check a dataset against thresholds, scoring it through the ordinary (cached) jobs.

Scores are jobs, and jobs are keyed by dataset (content-addressed) and settings: vetting unchanged
data with unchanged settings finds the succeeded job and answers at once, training nothing.
The verdict itself is cheap arithmetic on the stored result, so it is computed on every request
rather than stored: thresholds can change between CI runs without invalidating any cache.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep, not_found
from app.api.jobs import create_job
from app.models import Dataset, Job
from app.schemas import JobCreate, VetCheck, VetFigures, VetOut, VetRequest
from app.services import Services
from app.vetting import Figures, Thresholds, Verdict, VetInputError

router = APIRouter(prefix="/v1/vet", tags=["vet"])

WAIT_POLL_SECONDS = 0.25

VET_DOC = """Vet a dataset (by `dataset_id`, or by the `sha256` of an upload) against thresholds.

The dataset is scored by the ordinary job for these settings (the same one `POST /v1/jobs`
would give), and the baseline dataset too when `baseline_dataset_id` is set. **200** with the
verdict per check and the measured values once the results exist; with `wait` the request
waits up to that many seconds for them. Otherwise **202** with `status: pending` and the job
ids: follow `/v1/jobs/{job_id}` (or its `/events`) and send the same request again, which is
then answered from the cached result (`cached: true` means nothing was queued or trained).
`status: error` when a job failed (e.g. the data does not match its format)."""


@dataclass(frozen=True)
class _Submitted:
    dataset_id: str
    job_id: str
    baseline_dataset_id: str | None
    baseline_job_id: str | None
    cached: bool


def _queue(services: Services, session, dataset_id: str, body: VetRequest) -> tuple[str, bool]:
    """The job scoring `dataset_id` under the request's settings, and whether it had already succeeded."""
    response = create_job(JobCreate(dataset_id=dataset_id, preset=body.preset, budgets=body.budgets,
                                    estimator=body.estimator, seeds=body.seeds), session, services)
    job = json.loads(response.body)
    return job["id"], response.status_code == 200 and job["status"] == "succeeded"


def _submit(services: Services, body: VetRequest) -> _Submitted:
    with services.sessions() as session:
        if body.dataset_id is not None:
            dataset = session.get(Dataset, body.dataset_id)
            if dataset is None:
                raise not_found("dataset", body.dataset_id)
        else:
            dataset = session.scalar(select(Dataset).where(Dataset.sha256 == body.sha256,
                                                           Dataset.format == body.format))
            if dataset is None:
                raise HTTPException(404, f"no dataset with sha256 {body.sha256} in format {body.format!r}; "
                                         "upload it first (POST /v1/datasets)")
        if body.baseline_dataset_id is not None and session.get(Dataset, body.baseline_dataset_id) is None:
            raise not_found("baseline dataset", body.baseline_dataset_id)
        job_id, cached = _queue(services, session, dataset.id, body)
        baseline_job_id = None
        if body.baseline_dataset_id is not None:
            baseline_job_id, baseline_cached = _queue(services, session, body.baseline_dataset_id, body)
            cached = cached and baseline_cached
        return _Submitted(dataset.id, job_id, body.baseline_dataset_id, baseline_job_id, cached)


def _answer(services: Services, submitted: _Submitted, body: VetRequest) -> VetOut:
    """The verdict if every job it needs has succeeded; else `pending` or `error`."""
    with services.sessions() as session:
        job = session.get(Job, submitted.job_id)
        baseline_job = session.get(Job, submitted.baseline_job_id) if submitted.baseline_job_id else None
        if job is None or (submitted.baseline_job_id and baseline_job is None):
            raise HTTPException(409, "a job this verdict needs was deleted with its dataset; send the request again")
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


@router.post("", response_model=VetOut, description=VET_DOC,
             responses={202: {"model": VetOut, "description": "Not ready within `wait`: status pending, "
                              "with the job ids to follow."},
                        404: {"description": "No such dataset (or baseline dataset)."},
                        422: {"description": "Invalid thresholds or settings."}})
async def vet(body: VetRequest, services: ServicesDep) -> JSONResponse:
    submitted = await run_in_threadpool(_submit, services, body)
    deadline = time.monotonic() + body.wait
    while True:
        out = await run_in_threadpool(_answer, services, submitted, body)
        if out.status != "pending" or time.monotonic() >= deadline:
            break
        await asyncio.sleep(WAIT_POLL_SECONDS)
    return JSONResponse(out.model_dump(mode="json"), status_code=202 if out.status == "pending" else 200)
