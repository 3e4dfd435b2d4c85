"""/v1/leaderboard: datasets ranked by their latest succeeded result (see `app.leaderboard.service`)."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from app.api.deps import CallerDep, PageLimit, PageOffset, SessionDep
from app.api.leaderboard_cache import PageCache, data_fingerprint
from app.api.schemas import LeaderboardPage, LeaderboardSort
from app.leaderboard.service import LeaderboardQuery, rank

router = APIRouter(prefix="/v1/leaderboard", tags=["leaderboard"])


@router.get("", response_model=LeaderboardPage)
def leaderboard(
    request: Request, session: SessionDep, caller: CallerDep,
    sort: Annotated[LeaderboardSort, Query(description="Figure to rank by.")] = "epiplexity_bits_per_byte",
    order: Annotated[Literal["desc", "asc"], Query()] = "desc",
    preset: Annotated[str | None, Query(description="Only results of this preset.")] = None,
    estimator: Annotated[str | None, Query(description="Only results of this estimator.")] = None,
    budget: Annotated[float | None, Query(gt=0, allow_inf_nan=False, description="Rank by S_T and H_T at this budget (FLOPs); "
                                          "only results whose curve has it.")] = None,
    family: Annotated[str | None, Query(max_length=100, description="Rank by this observer family's own "
                                        "curve (e.g. transformer); results without it drop out.")] = None,
    limit: PageLimit = 50,
    offset: PageOffset = 0,
) -> Response:
    """One entry per dataset the caller may see (public ones and its own), from its most recent
    succeeded job that passes the filters.

    `mean_transfer_bits_per_byte` is the mean measured transfer from that job's model (its scoring
    settings) to the reference panel members measured so far; entries without one sort last. It
    averages `transfer_bits_per_byte`, the bits a coder holding the model saves (never below -1 bit
    per target), not the signed warm-start difference, so one target the source never saw the
    byte values of cannot swamp the mean.
    `comparable` is false when the ranked results were scored with different settings."""
    cache = getattr(request.app.state, "leaderboard_cache", None)
    if cache is None:
        cache = request.app.state.leaderboard_cache = PageCache()
    query = LeaderboardQuery(sort=sort, order=order, preset=preset, estimator=estimator, budget=budget,
                             family=family, limit=limit, offset=offset)
    # Pages differ by who asks: what a caller sees depends on its key.
    key = (data_fingerprint(session), caller.key_id, caller.sees_everything, query)
    page = cache.get_or_compute(key, lambda: rank(session, caller, query).model_dump_json(by_alias=True))
    return Response(page, media_type="application/json")
