"""The pages under `/`: the same service functions as the JSON API, rendered with Jinja2.

Every page links its JSON twin (the /v1 route holding the same facts). Nothing here calls the
API over HTTP; the scripts a page carries call the API of its own origin.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from app.api.deps import CallerDep, ServicesDep, SessionDep
from app.api.schemas import DatasetOut, JobOut, LeaderboardSort, VetRequest
from app.core.errors import ServiceError, describe_problems
from app.auth.access import get_dataset, get_job
from app.jobs import service as jobs_service
from app.leaderboard.service import LeaderboardQuery, facets, rank
from app.transfer.service import transfer_report
from app.vet import reports, service as vet_service
from app.web import units
from app.web.figures import dataset_charts, leaderboard_scatter, transfer_cells
from estimators.frontier import FAMILIES

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters.update(units.FILTERS)
TEMPLATES.env.globals["observer_families"] = FAMILIES
router = APIRouter(include_in_schema=False)

# Columns of the leaderboard: (sort key, header, unit shown under it).
COLUMNS = [("epiplexity_bits_per_byte", "S", "bits/byte"), ("entropy_bits_per_byte", "H", "bits/byte"),
           ("total_bits_per_byte", "S + H", "bits/byte"), ("epiplexity_bits", "S total", "bits"),
           ("entropy_bits", "H total", "bits"), ("total_bits", "S + H total", "bits"),
           ("mean_transfer_bits_per_byte", "mean transfer", "bits/byte")]
ALL = "all"  # a filter value meaning "do not filter", chosen on purpose (rows may then mix settings)
FORMATS = [("bytes", "bytes: any file, one token per byte"), ("text", "text: UTF-8"),
           ("jsonl", "jsonl: one JSON object per line, a field"), ("csv", "csv: a column"),
           ("tokens", "tokens: token ids (.npy or raw integers)")]


def page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def refused(request: Request, error: ServiceError) -> HTMLResponse:
    """The service's 4xx as a page, with the same sentence the JSON API gives."""
    return page(request, "error.html", status_code=error.status_code, title=f"{error.status_code}",
                detail=error.detail)


@router.get("/", response_class=HTMLResponse)
def leaderboard_page(
    request: Request, session: SessionDep, caller: CallerDep,
    sort: LeaderboardSort = "epiplexity_bits_per_byte", order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    preset: str | None = None, estimator: str | None = None, budget: str | None = None,
    family: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """Datasets ranked; comparable by default: the most common preset and estimator unless asked otherwise."""
    found = facets(session)
    budget_value = _float_or_none(budget)
    if preset is None and budget_value is None and found.presets:
        preset = found.presets[0][0]
    if estimator is None and found.estimators:
        estimator = found.estimators[0][0]
    query = LeaderboardQuery(sort=sort, order=order, preset=None if preset in (ALL, "") else preset,
                             estimator=None if estimator in (ALL, "") else estimator, budget=budget_value,
                             family=family or None, limit=limit, offset=offset)
    board = rank(session, caller, query)
    chosen = {"preset": preset or ALL, "estimator": estimator or ALL, "budget": budget or "",
              "family": family or ""}
    api = {k: v for k, v in {"sort": sort, "order": order, "preset": query.preset, "estimator": query.estimator,
                             "budget": query.budget, "family": query.family, "limit": limit,
                             "offset": offset}.items() if v is not None}

    def sort_link(key: str) -> str:
        flip = "asc" if key == sort and order == "desc" else "desc"
        return "?" + urlencode({**chosen, "sort": key, "order": flip})

    def page_link(new_offset: int) -> str:
        return "?" + urlencode({**chosen, "sort": sort, "order": order, "limit": limit, "offset": new_offset})

    return page(request, "leaderboard.html", title="Leaderboard", board=board, facets=found, chosen=chosen,
                sort=sort, order=order, columns=COLUMNS, sort_link=sort_link, page_link=page_link, query=query,
                json_url="/v1/leaderboard?" + urlencode(api), scatter=leaderboard_scatter(board, query))


def _float_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value > 0 else None


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(dataset_id: str, request: Request, session: SessionDep, services: ServicesDep,
                 caller: CallerDep) -> HTMLResponse:
    try:
        dataset = DatasetOut.model_validate(get_dataset(session, caller, dataset_id))
        transfer = transfer_report(session, services, caller, dataset_id, [])
    except ServiceError as error:
        return refused(request, error)
    jobs, total_jobs = jobs_service.list_jobs(session, caller, dataset_id=dataset_id, limit=100)
    jobs = [JobOut.model_validate(job) for job in jobs]
    succeeded = [job for job in jobs if job.status == "succeeded"]
    latest = next((job for job in succeeded if job.families is None), succeeded[0] if succeeded else None)
    result = latest.result if latest else None
    return page(request, "dataset.html", title=dataset.name, dataset=dataset, jobs=jobs, total_jobs=total_jobs,
                latest=latest, result=result, charts=dataset_charts(result), transfer=transfer,
                transfer_cells=transfer_cells(transfer), json_url=f"/v1/datasets/{dataset_id}")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, session: SessionDep, caller: CallerDep) -> HTMLResponse:
    try:
        job = JobOut.model_validate(get_job(session, caller, job_id))
        dataset = DatasetOut.model_validate(get_dataset(session, caller, job.dataset_id))
    except ServiceError as error:
        return refused(request, error)
    retry = {"dataset_id": job.dataset_id, "estimator": job.estimator, "seeds": job.seeds,
             **({"budgets": job.budgets} if job.budgets else {"preset": job.preset}),
             **({"families": job.families} if job.families else {}),
             **({"transfer": job.transfer["targets"]} if job.transfer else {})}
    return page(request, "job.html", title=f"Job {job.id}", job=job, dataset=dataset, retry=retry,
                result=job.result, charts=dataset_charts(job.result), json_url=f"/v1/jobs/{job_id}")


@router.get("/upload", response_class=HTMLResponse)
def upload_page(request: Request, services: ServicesDep) -> HTMLResponse:
    import estimators

    return page(request, "upload.html", title="Upload a dataset", formats=FORMATS,
                presets=list(estimators.PRESETS), default_preset=services.settings.default_preset,
                max_upload_bytes=services.settings.max_upload_bytes, json_url="/docs#/datasets")


# Query parameters of the vet page -> fields of the /v1/vet request.
VET_THRESHOLDS = {"min_epiplexity": "min_epiplexity_bits_per_byte", "max_entropy": "max_entropy_bits_per_byte",
                  "max_zstd_ratio": "max_zstd_ratio", "max_drop": "max_epiplexity_drop_percent",
                  "max_entropy_rise": "max_entropy_rise_percent"}


@router.get("/vet", response_class=HTMLResponse)
async def vet_page(request: Request, services: ServicesDep, caller: CallerDep) -> HTMLResponse:
    """A form; with a dataset and thresholds, the verdict of POST /v1/vet as the CLI's HTML report shows it."""
    params = dict(request.query_params)
    body = {"thresholds": {field: params[name] for name, field in VET_THRESHOLDS.items() if params.get(name)}}
    for name in ("dataset_id", "baseline_dataset_id", "preset", "estimator", "seeds"):
        if params.get(name):
            body[name] = params[name]
    if families := [f for f in request.query_params.getlist("families") if f]:
        body["families"] = families
    context = {"title": "Vet a dataset", "params": params, "fields": VET_THRESHOLDS, "json_url": "/docs#/vet"}
    if "dataset_id" not in body:
        return page(request, "vet.html", **context)
    try:
        vet_request = VetRequest.model_validate(body)
        submitted = await run_in_threadpool(vet_service.submit, services, caller, vet_request)
        out = await run_in_threadpool(vet_service.answer, services, submitted, vet_request)
    except ValidationError as error:
        return page(request, "vet.html", status_code=422, problem=describe_problems(error.errors()), **context)
    except ServiceError as error:
        return page(request, "vet.html", status_code=error.status_code, problem=error.detail, **context)
    context.update(out=out, request_json=vet_request.model_dump_json(exclude_none=True, exclude={"wait"}))
    if out.status != "pending":
        import estimators

        settings = {"where": "server", **vet_request.job_settings().model_dump(exclude_none=True)}
        if "budgets" not in settings:
            settings.setdefault("preset", services.settings.default_preset)
        name = get_dataset_name(services, caller, out.dataset_id)
        summary = reports.VetSummary([vet_service.verdict_of(name, out, cached=out.cached, job_id=out.job_id,
                                                             dataset_id=out.dataset_id)],
                                     vet_service.Thresholds(**vet_request.thresholds.model_dump()), settings,
                                     version=estimators.__version__)
        context.update(report=reports.html_fragment(summary), report_style=reports.HTML_STYLE)
    return page(request, "vet.html", **context)


def get_dataset_name(services, caller, dataset_id: str) -> str:
    with services.sessions() as session:
        return get_dataset(session, caller, dataset_id).name
