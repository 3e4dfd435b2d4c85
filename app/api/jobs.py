"""/v1/jobs: submit (deduplicated by dataset + settings), read, list, cancel, stream progress."""
from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServicesDep, SessionDep, not_found
from app.ids import new_id
from app.models import TERMINAL_STATUSES, Dataset, Job, utcnow
from app.panel import ensure_builtin, members as panel_members
from app.schemas import JobCreate, JobOut, JobStatus, Page
from app.services import Services

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

EVENT_POLL_SECONDS = 0.5
EVENT_KEEPALIVE_SECONDS = 15.0


def job_settings(request: JobCreate, default_preset: str) -> dict:
    """The settings that decide a job's result, normalised; their hash deduplicates jobs."""
    import estimators
    from estimators.presets import ESTIMATORS

    if request.preset is not None and request.budgets is not None:
        raise HTTPException(422, "give either preset or budgets, not both")
    preset = None if request.budgets is not None else (request.preset or default_preset)
    if preset is not None and preset not in estimators.PRESETS:
        raise HTTPException(422, f"unknown preset {preset!r}; known: {', '.join(estimators.PRESETS)}")
    if request.estimator not in ESTIMATORS:
        raise HTTPException(422, f"unknown estimator {request.estimator!r}; known: {', '.join(ESTIMATORS)}")
    # The estimators' version is part of the key: a new version scores afresh instead of
    # answering from a result computed by older code.
    return {"preset": preset, "budgets": request.budgets, "estimator": request.estimator,
            "seeds": request.seeds, "version": estimators.__version__}


def config_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def transfer_request(request: JobCreate, settings: dict, session: Session, services: Services) -> dict | None:
    """The job's transfer request resolved to target ids ({"targets", "preset"}), or None."""
    if not request.transfer:
        return None
    if request.transfer is True:
        ensure_builtin(services)
        session.commit()  # end the read snapshot taken before the members were stored, to see them
        targets = [d.id for d in panel_members(session) if d.id != request.dataset_id]
        if not targets:
            raise HTTPException(422, "the reference panel has no member to measure transfer to; "
                                     "add one with POST /v1/panel")
    else:
        targets = request.transfer
        if request.dataset_id in targets:
            raise HTTPException(422, "a dataset cannot be its own transfer target: its model was trained "
                                     "on the very bytes it would code")
        known = set(session.scalars(select(Dataset.id).where(Dataset.id.in_(targets))))
        missing = [t for t in targets if t not in known]
        if missing:
            raise HTTPException(404, f"transfer target dataset(s) not found: {', '.join(map(repr, missing))}")
    # Explicit budgets name no preset; the transfer budget then comes from the default preset.
    return {"targets": sorted(targets), "preset": settings["preset"] or services.settings.default_preset}


def _job_response(job: Job, status_code: int) -> JSONResponse:
    return JSONResponse(JobOut.model_validate(job).model_dump(mode="json"), status_code=status_code)


@router.post("", response_model=JobOut, status_code=202,
             responses={200: {"model": JobOut, "description": "Same dataset and settings: the existing job, "
                              "with its result if it already succeeded."},
                        404: {"description": "No such dataset."}, 422: {"description": "Invalid settings."}})
def create_job(body: JobCreate, session: SessionDep, services: ServicesDep) -> JSONResponse:
    """Queue a scoring job (202); a failed or canceled job with the same settings is queued again.

    With `transfer`, the job then measures transfer to the targets (the key includes them), and
    each target is queued for scoring with the same settings: predictions need its figures."""
    if session.get(Dataset, body.dataset_id) is None:
        raise not_found("dataset", body.dataset_id)
    settings = job_settings(body, services.settings.default_preset)
    transfer = transfer_request(body, settings, session, services)
    score_key = config_key(settings)
    key = config_key({**settings, "transfer": transfer}) if transfer else score_key
    response = _get_or_create(session, body.dataset_id, settings, key, score_key, transfer)
    for target_id in (transfer or {}).get("targets", ()):
        if session.scalar(select(Job.id).where(Job.dataset_id == target_id, Job.score_key == score_key)) is None:
            _get_or_create(session, target_id, settings, score_key, score_key, None)
    return response


def _get_or_create(session: Session, dataset_id: str, settings: dict, key: str, score_key: str,
                   transfer: dict | None) -> JSONResponse:
    existing = session.scalar(select(Job).where(Job.dataset_id == dataset_id, Job.config_key == key))
    if existing is not None:
        if existing.status in ("failed", "canceled"):
            existing.status, existing.attempts, existing.progress = "queued", 0, 0.0
            existing.error = existing.finished_at = existing.message = None
            session.commit()
            return _job_response(existing, 202)
        return _job_response(existing, 200)
    job = Job(id=new_id("job"), dataset_id=dataset_id, config_key=key, score_key=score_key,
              preset=settings["preset"], budgets=settings["budgets"], estimator=settings["estimator"],
              seeds=settings["seeds"], transfer=transfer, status="queued", progress=0.0, attempts=0,
              created_at=utcnow())
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # an identical request won the race
        session.rollback()
        job = session.scalar(select(Job).where(Job.dataset_id == dataset_id, Job.config_key == key))
        return _job_response(job, 200)
    return _job_response(job, 202)


@router.get("", response_model=Page[JobOut])
def list_jobs(session: SessionDep,
              status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
              dataset_id: Annotated[str | None, Query(description="Only jobs of this dataset.")] = None,
              include_result: Annotated[bool, Query(description="Include each job's result.")] = False,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0)] = 0) -> Page[JobOut]:
    """Jobs, newest first; results are left out unless `include_result` is set."""
    query = select(Job)
    if status is not None:
        query = query.where(Job.status == status)
    if dataset_id is not None:
        query = query.where(Job.dataset_id == dataset_id)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    jobs = session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)).all()
    items = [JobOut.model_validate(job) for job in jobs]
    if not include_result:
        items = [item.model_copy(update={"result": None}) for item in items]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobOut, responses={404: {"description": "No such job."}})
def get_job(job_id: str, session: SessionDep) -> JobOut:
    job = session.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    return JobOut.model_validate(job)


@router.post("/{job_id}/cancel", response_model=JobOut,
             responses={404: {"description": "No such job."}, 409: {"description": "The job already ended."}})
def cancel_job(job_id: str, session: SessionDep) -> JobOut:
    """Cancel a queued or running job; a running worker is stopped within a second or so."""
    job = session.get(Job, job_id)
    if job is None:
        raise not_found("job", job_id)
    changed = session.execute(update(Job).where(Job.id == job_id, Job.status.in_(("queued", "running")))
                              .values(status="canceled", finished_at=utcnow(), message="canceled")).rowcount
    session.commit()
    session.refresh(job)
    if not changed:
        raise HTTPException(409, f"job {job_id!r} already {job.status}")
    return JobOut.model_validate(job)


def _snapshot(services: Services, job_id: str) -> dict | None:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        return {"id": job.id, "status": job.status, "progress": job.progress, "message": job.message,
                "attempts": job.attempts, "error": job.error}


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 404: {"description": "No such job."}})
async def job_events(job_id: str, request: Request, services: ServicesDep) -> StreamingResponse:
    """Server-sent events: a `progress` event on every change, then one named after the final status."""
    if await run_in_threadpool(_snapshot, services, job_id) is None:
        raise not_found("job", job_id)

    async def events():
        last, quiet = None, 0.0
        while not await request.is_disconnected():
            snapshot = await run_in_threadpool(_snapshot, services, job_id)
            if snapshot is None:
                yield f"event: deleted\ndata: {json.dumps({'id': job_id})}\n\n"
                return
            if snapshot != last:
                yield f"event: progress\ndata: {json.dumps(snapshot)}\n\n"
                last, quiet = snapshot, 0.0
            if snapshot["status"] in TERMINAL_STATUSES:
                yield f"event: {snapshot['status']}\ndata: {json.dumps(snapshot)}\n\n"
                return
            if quiet >= EVENT_KEEPALIVE_SECONDS:  # keeps proxies from closing an idle stream
                yield ": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(EVENT_POLL_SECONDS)
            quiet += EVENT_POLL_SECONDS

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
