"""/v1/vet: check a dataset against thresholds (see `app.vet.service`), waiting up to `wait` seconds."""
from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import CallerDep, ServicesDep
from app.api.schemas import VetOut, VetRequest
from app.vet import service

log = logging.getLogger("epiplex.api.vet")
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


@router.post("", response_model=VetOut, description=VET_DOC,
             responses={202: {"model": VetOut, "description": "Not ready within `wait`: status pending, "
                              "with the job ids to follow."},
                        404: {"description": "No such dataset (or baseline dataset)."},
                        422: {"description": "Invalid thresholds or settings."}})
async def vet(body: VetRequest, request: Request, services: ServicesDep, caller: CallerDep) -> JSONResponse:
    submitted = await run_in_threadpool(service.submit, services, caller, body)
    deadline = time.monotonic() + body.wait
    while True:
        out = await run_in_threadpool(service.answer, services, submitted, body)
        if out.status != "pending" or time.monotonic() >= deadline:
            break
        if await request.is_disconnected():  # nobody is waiting for the answer any more
            log.info("vet wait abandoned by the client", extra={"job_id": out.job_id})
            return Response(status_code=204)
        await asyncio.sleep(WAIT_POLL_SECONDS)
    return JSONResponse(out.model_dump(mode="json"), status_code=202 if out.status == "pending" else 200)
