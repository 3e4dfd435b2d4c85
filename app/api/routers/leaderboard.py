"""/v1/leaderboard: datasets ranked by their latest succeeded result."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.deps import PageLimit, PageOffset, SessionDep
from app.api.leaderboard_cache import PageCache, data_fingerprint
from app.api.schemas import LeaderboardEntry, LeaderboardSort, Page
from app.core.models import CurvePointRow, Dataset, Job, TransferRow

router = APIRouter(prefix="/v1/leaderboard", tags=["leaderboard"])

BUDGET_RELATIVE_TOLERANCE = 1e-6  # budgets arrive as floats; 1e12 and 1.0000000001e12 are one budget


@router.get("", response_model=Page[LeaderboardEntry])
def leaderboard(
    request: Request, session: SessionDep,
    sort: Annotated[LeaderboardSort, Query(description="Figure to rank by.")] = "epiplexity_bits_per_byte",
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    preset: Annotated[str | None, Query(description="Only results of this preset.")] = None,
    estimator: Annotated[str | None, Query(description="Only results of this estimator.")] = None,
    budget: Annotated[float | None, Query(gt=0, allow_inf_nan=False, description="Rank by S_T and H_T at this "
                                          "budget (FLOPs); only results whose curve has it.")] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> Page[LeaderboardEntry]:
    """One entry per dataset, from its most recent succeeded job that passes the filters.

    `mean_transfer_bits_per_byte` is the mean measured transfer from that job's model (its scoring
    settings) to the reference panel members measured so far; entries without one sort last."""
    cache = getattr(request.app.state, "leaderboard_cache", None)
    if cache is None:
        cache = request.app.state.leaderboard_cache = PageCache()
    key = (data_fingerprint(session), sort, order, preset, estimator, budget, limit, offset)
    return cache.get_or_compute(key, lambda: rank(session, sort, order, preset, estimator, budget, limit, offset))


def rank(session: Session, sort: str, order: str, preset: str | None, estimator: str | None,
         budget: float | None, limit: int, offset: int) -> Page[LeaderboardEntry]:
    """The page, computed from the database."""
    figures = CurvePointRow if budget is not None else Job
    newest_first = func.row_number().over(partition_by=Job.dataset_id,
                                          order_by=(Job.finished_at.desc(), Job.id.desc()))
    columns = [Job.id.label("job_id"), Job.dataset_id, Job.score_key, Job.preset, Job.estimator, Job.finished_at,
               Job.zstd_bits_per_byte, figures.epiplexity_bits, figures.entropy_bits,
               figures.epiplexity_bits_per_byte, figures.entropy_bits_per_byte, newest_first.label("newest")]
    if budget is not None:
        columns.append(CurvePointRow.budget_flops)
    candidates = select(*columns).where(Job.status == "succeeded")
    if budget is not None:
        candidates = candidates.join(CurvePointRow, (CurvePointRow.job_id == Job.id) & CurvePointRow.budget_flops
                                     .between(budget * (1 - BUDGET_RELATIVE_TOLERANCE),
                                              budget * (1 + BUDGET_RELATIVE_TOLERANCE)))
    if preset is not None:
        candidates = candidates.where(Job.preset == preset)
    if estimator is not None:
        candidates = candidates.where(Job.estimator == estimator)
    latest = candidates.subquery()
    panel_target = select(Dataset.id).where(Dataset.panel_source.is_not(None))
    transfer = (select(TransferRow.source_dataset_id, TransferRow.score_key,
                       func.avg(TransferRow.transfer_bits_per_byte).label("mean_transfer_bits_per_byte"),
                       func.count(func.distinct(TransferRow.target_dataset_id)).label("transfer_panel_targets"))
                .where(TransferRow.target_dataset_id.in_(panel_target))
                .group_by(TransferRow.source_dataset_id, TransferRow.score_key).subquery())
    ranked = (select(latest, Dataset.name, Dataset.bytes, transfer.c.mean_transfer_bits_per_byte,
                     transfer.c.transfer_panel_targets)
              .join(Dataset, Dataset.id == latest.c.dataset_id)
              .outerjoin(transfer, (transfer.c.source_dataset_id == latest.c.dataset_id)
                         & (transfer.c.score_key == latest.c.score_key))
              .where(latest.c.newest == 1))
    total = session.scalar(select(func.count()).select_from(ranked.subquery()))
    key = transfer.c[sort] if sort == "mean_transfer_bits_per_byte" else latest.c[sort]
    key = (key.desc() if order == "desc" else key.asc()).nulls_last()
    rows = session.execute(ranked.order_by(key, latest.c.dataset_id).limit(limit).offset(offset)).mappings().all()
    entries = [LeaderboardEntry(
        rank=offset + i + 1, dataset_id=row["dataset_id"], name=row["name"], bytes=row["bytes"],
        epiplexity_bits_per_byte=row["epiplexity_bits_per_byte"], entropy_bits_per_byte=row["entropy_bits_per_byte"],
        epiplexity_bits=row["epiplexity_bits"], entropy_bits=row["entropy_bits"],
        zstd_bits_per_byte=row["zstd_bits_per_byte"], budget_flops=row.get("budget_flops"),
        mean_transfer_bits_per_byte=row["mean_transfer_bits_per_byte"],
        transfer_panel_targets=row["transfer_panel_targets"] or 0,
        preset=row["preset"], estimator=row["estimator"], job_id=row["job_id"], finished_at=row["finished_at"],
    ) for i, row in enumerate(rows)]
    return Page(items=entries, total=total, limit=limit, offset=offset)
