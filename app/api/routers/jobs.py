"""/v1/jobs: submit (deduplicated by dataset + settings), read, list, cancel, stream progress."""
from __future__ import annotations

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import CallerDep, PageLimit, PageOffset, ServicesDep, SessionDep, not_found
from app.api.schemas import JobCreate, JobOut, JobStatus, Page
from app.auth import access
from app.auth.access import Caller
from app.core.errors import NotFound
from app.core.models import TERMINAL_STATUSES
from app.jobs import service
from app.jobs.service import Submitted
from app.services import Services

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

EVENT_POLL_SECONDS = 0.5
EVENT_KEEPALIVE_SECONDS = 15.0


def job_response(submitted: Submitted) -> JSONResponse:
    """202 when the submission queued the job, 200 when an existing job answers it as it is."""
    return JSONResponse(JobOut.model_validate(submitted.job).model_dump(mode="json"),
                        status_code=202 if submitted.queued else 200)


@router.post("", response_model=JobOut, status_code=202,
             responses={200: {"model": JobOut, "description": "Same dataset and settings: the existing job, "
                              "with its result if it already succeeded."},
                        404: {"description": "No such dataset."}, 422: {"description": "Invalid settings."}})
def create_job(body: JobCreate, session: SessionDep, services: ServicesDep, caller: CallerDep) -> JSONResponse:
    """Queue a scoring job (202); a failed or canceled job with the same settings is queued again.

    With `transfer`, the job then measures transfer to the targets (the key includes them), and
    each target is queued for scoring with the same settings: predictions need its figures."""
    return job_response(service.submit_job(session, services, caller, body.dataset_id, body.job_settings(),
                                           body.transfer))


@router.get("", response_model=Page[JobOut])
def list_jobs(session: SessionDep, caller: CallerDep,
              status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
              dataset_id: Annotated[str | None, Query(description="Only jobs of this dataset.")] = None,
              include_result: Annotated[bool, Query(description="Include each job's result.")] = False,
              limit: PageLimit = 50,
              offset: PageOffset = 0) -> Page[JobOut]:
    """Jobs the caller may see (those of datasets it sees), newest first; results are left out unless
    `include_result` is set."""
    jobs, total = service.list_jobs(session, caller, status=status, dataset_id=dataset_id, limit=limit,
                                    offset=offset)
    items = [JobOut.model_validate(job) for job in jobs]
    if not include_result:
        items = [item.model_copy(update={"result": None}) for item in items]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobOut, responses={404: {"description": "No such job."}})
def get_job(job_id: str, session: SessionDep, caller: CallerDep) -> JobOut:
    return JobOut.model_validate(access.get_job(session, caller, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut,
             responses={404: {"description": "No such job."}, 409: {"description": "The job already ended."}})
def cancel_job(job_id: str, session: SessionDep, caller: CallerDep) -> JobOut:
    """Cancel a queued or running job; a running worker is stopped within a second or so.
    The key that submitted it, the dataset's owner or an admin only."""
    return JobOut.model_validate(service.cancel_job(session, caller, job_id))


def _snapshot(services: Services, caller: Caller, job_id: str) -> dict | None:
    with services.sessions() as session:
        try:
            job = access.get_job(session, caller, job_id)
        except NotFound:
            return None
        return {"id": job.id, "status": job.status, "progress": job.progress, "message": job.message,
                "attempts": job.attempts, "error": job.error}


@router.get("/{job_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}}, 404: {"description": "No such job."}})
async def job_events(job_id: str, request: Request, services: ServicesDep, caller: CallerDep) -> StreamingResponse:
    """Server-sent events: a `progress` event on every change, then one named after the final status."""
    if await run_in_threadpool(_snapshot, services, caller, job_id) is None:
        raise not_found("job", job_id)

    async def events():
        last, quiet = None, 0.0
        while not await request.is_disconnected():
            snapshot = await run_in_threadpool(_snapshot, services, caller, job_id)
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
