"""Rank datasets by their latest succeeded result: what `/v1/leaderboard` and the `/` page both call.

The headline ranks results that pooled every observer family; a job run with fewer
(`families`) ranks only in the views of the families it ran.

The headline figures (the minimum over observer families) are ranked in SQL. Asking for one
observer family reads that family's own curve out of each result (`result["families"]`, or the
headline curve of a result from before families existed) and ranks in Python.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from app.api.schemas import LeaderboardEntry, LeaderboardPage
from app.auth.access import Caller, visible_datasets
from app.core.models import CurvePointRow, Dataset, Job, TransferRow

BUDGET_RELATIVE_TOLERANCE = 1e-6  # budgets arrive as floats; 1e12 and 1.0000000001e12 are one budget
# Results written before per-family curves name their model family instead: this is its family.
FAMILY_OF_MODEL = {"gpt-prenorm-mup": "transformer"}
FIGURES = ("epiplexity_bits", "entropy_bits", "epiplexity_bits_per_byte", "entropy_bits_per_byte")


@dataclass(frozen=True)
class LeaderboardQuery:
    """What to rank by and which results take part; the defaults rank every dataset by S per byte."""

    sort: str = "epiplexity_bits_per_byte"
    order: Literal["desc", "asc"] = "desc"
    preset: str | None = None
    estimator: str | None = None
    budget: float | None = None
    family: str | None = None
    limit: int = 50
    offset: int = 0


def same_budget(a: float, b: float) -> bool:
    return abs(a - b) <= BUDGET_RELATIVE_TOLERANCE * max(abs(a), abs(b))


def family_curves(result: dict | None) -> dict[str, list[dict]]:
    """{observer family: its curve points} of one result, old results (one family) included."""
    result = result or {}
    if result.get("families"):
        return result["families"]
    family = result.get("model_family", "gpt-prenorm-mup")
    return {FAMILY_OF_MODEL.get(family, family): result.get("curve") or []}


def rank(session: Session, caller: Caller, query: LeaderboardQuery) -> LeaderboardPage:
    """One entry per dataset the caller may see (public ones and its own), from its most recent
    succeeded job that passes the filters."""
    figures = CurvePointRow if query.budget is not None else Job
    newest_first = func.row_number().over(partition_by=Job.dataset_id,
                                          order_by=(Job.finished_at.desc(), Job.id.desc()))
    columns = [Job.id.label("job_id"), Job.dataset_id, Job.score_key, Job.preset, Job.budgets, Job.estimator,
               Job.finished_at, Job.zstd_bits_per_byte, Job.bytes_coded, *(getattr(figures, name) for name in FIGURES),
               (figures.epiplexity_bits + figures.entropy_bits).label("total_bits"),
               (figures.epiplexity_bits_per_byte + figures.entropy_bits_per_byte).label("total_bits_per_byte"),
               newest_first.label("newest")]
    if query.budget is not None:
        columns.append(CurvePointRow.budget_flops)
    candidates = select(*columns).where(Job.status == "succeeded")
    if query.budget is not None:
        low, high = query.budget * (1 - BUDGET_RELATIVE_TOLERANCE), query.budget * (1 + BUDGET_RELATIVE_TOLERANCE)
        candidates = candidates.join(CurvePointRow, (CurvePointRow.job_id == Job.id)
                                     & CurvePointRow.budget_flops.between(low, high))
    if query.preset is not None:
        candidates = candidates.where(Job.preset == query.preset)
    if query.estimator is not None:
        candidates = candidates.where(Job.estimator == query.estimator)
    candidates = candidates.where(_pooled(query.family))
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
              .where(latest.c.newest == 1, visible_datasets(caller)))
    total, settings = _count_and_settings(session, ranked)
    if query.family is not None:
        rows, total = _rank_family(session, ranked, query)
    else:
        key = transfer.c[query.sort] if query.sort == "mean_transfer_bits_per_byte" else latest.c[query.sort]
        key = (key.desc() if query.order == "desc" else key.asc()).nulls_last()
        rows = session.execute(ranked.order_by(key, latest.c.dataset_id)
                               .limit(query.limit).offset(query.offset)).mappings().all()
    entries = [_entry(query.offset + i + 1, row, query.family) for i, row in enumerate(rows)]
    return LeaderboardPage(items=entries, total=total, limit=query.limit, offset=query.offset,
                           settings=settings, comparable=len(settings) <= 1)


def _pooled(family: str | None):
    """Jobs whose result ranks in a view: every family's (families NULL) for the headline, the
    minimum over all of them; for one family's view also the jobs that ran it among fewer."""
    every = Job.families.is_(None)
    return every if family is None else every | cast(Job.families, String).contains(f'"{family}"')


# Per-family curves of succeeded jobs, by (job id, finished at): a finished result never changes,
# so each is read out of its JSON once per process rather than on every page view.
_FAMILY_CACHE: dict[tuple[str, object], dict[str, list[dict]]] = {}
_FAMILY_CACHE_LIMIT = 200_000


def _curves_of(session: Session, rows: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """{job id: {family: curve}} for the rows, reading from the database only what is not cached."""
    missing = [r["job_id"] for r in rows if (r["job_id"], r["finished_at"]) not in _FAMILY_CACHE]
    for start in range(0, len(missing), 500):
        chunk = missing[start:start + 500]
        for job_id, finished_at, families, curve, model_family in session.execute(
                select(Job.id, Job.finished_at, Job.result["families"], Job.result["curve"],
                       Job.result["model_family"]).where(Job.id.in_(chunk))):
            if len(_FAMILY_CACHE) >= _FAMILY_CACHE_LIMIT:
                _FAMILY_CACHE.clear()
            _FAMILY_CACHE[(job_id, finished_at)] = family_curves(
                {"families": families, "curve": curve, "model_family": model_family or "gpt-prenorm-mup"})
    return {r["job_id"]: _FAMILY_CACHE.get((r["job_id"], r["finished_at"]), {}) for r in rows}


def _rank_family(session: Session, ranked, query: LeaderboardQuery) -> tuple[list[dict], int]:
    """Rows re-read from `query.family`'s own curve, ranked and paged; results without it drop out."""
    candidates = [dict(row) for row in session.execute(ranked).mappings()]
    curves = _curves_of(session, candidates)
    rows = []
    for row in candidates:
        curve = curves[row["job_id"]].get(query.family)
        if not curve:
            continue
        point = (next((p for p in curve if same_budget(p["budget_flops"], query.budget)), None)
                 if query.budget is not None else curve[-1])
        if point is None:
            continue
        row.update({name: point[name] for name in FIGURES})
        row["total_bits"] = point["epiplexity_bits"] + point["entropy_bits"]
        row["total_bits_per_byte"] = point["epiplexity_bits_per_byte"] + point["entropy_bits_per_byte"]
        rows.append(row)
    present = [r for r in rows if r[query.sort] is not None]
    present.sort(key=lambda r: r["dataset_id"])
    present.sort(key=lambda r: r[query.sort], reverse=query.order == "desc")
    ordered = present + sorted((r for r in rows if r[query.sort] is None), key=lambda r: r["dataset_id"])
    return ordered[query.offset:query.offset + query.limit], len(rows)


def _count_and_settings(session: Session, ranked) -> tuple[int, list[str]]:
    """How many results are ranked, and each distinct (preset or budgets, estimator) among them."""
    spanned = ranked.subquery()
    total, found = 0, set()
    for preset, estimator, count in session.execute(
            select(spanned.c.preset, spanned.c.estimator, func.count())
            .group_by(spanned.c.preset, spanned.c.estimator)):
        total += count
        if preset is not None:
            found.add(describe_settings(preset, None, estimator))
        else:  # explicit budgets (rare): JSON lists, compared in Python
            for (budgets,) in session.execute(select(spanned.c.budgets).where(
                    spanned.c.preset.is_(None), spanned.c.estimator == estimator)):
                found.add(describe_settings(None, budgets, estimator))
    return total, sorted(found)


def describe_settings(preset: str | None, budgets: list[float] | None, estimator: str) -> str:
    if preset is not None:
        return f"preset {preset}, {estimator}"
    return f"budgets {', '.join(f'{b:.0e}' for b in budgets or [])} FLOPs, {estimator}"


def _entry(rank_: int, row, family: str | None) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank=rank_, dataset_id=row["dataset_id"], name=row["name"], bytes=row["bytes"],
        bytes_coded=row["bytes_coded"],
        epiplexity_bits_per_byte=row["epiplexity_bits_per_byte"], entropy_bits_per_byte=row["entropy_bits_per_byte"],
        epiplexity_bits=row["epiplexity_bits"], entropy_bits=row["entropy_bits"],
        total_bits=row["total_bits"], total_bits_per_byte=row["total_bits_per_byte"],
        zstd_bits_per_byte=row["zstd_bits_per_byte"], budget_flops=row.get("budget_flops"),
        mean_transfer_bits_per_byte=row["mean_transfer_bits_per_byte"],
        transfer_panel_targets=row["transfer_panel_targets"] or 0, family=family,
        preset=row["preset"], estimator=row["estimator"], job_id=row["job_id"], finished_at=row["finished_at"])


@dataclass(frozen=True)
class Facets:
    """The choices the filters offer: presets and estimators with their number of results, budgets."""

    presets: list[tuple[str, int]]
    estimators: list[tuple[str, int]]
    budgets: list[float]
    families: list[str]


def facets(session: Session) -> Facets:
    """What succeeded results exist, to fill the leaderboard's filters (and pick a comparable default)."""
    succeeded = Job.status == "succeeded"
    presets = session.execute(select(Job.preset, func.count()).where(succeeded, Job.preset.is_not(None))
                              .group_by(Job.preset).order_by(func.count().desc(), Job.preset)).all()
    estimators = session.execute(select(Job.estimator, func.count()).where(succeeded)
                                 .group_by(Job.estimator).order_by(func.count().desc(), Job.estimator)).all()
    budgets: list[float] = []
    for (budget,) in session.execute(select(CurvePointRow.budget_flops).distinct().order_by(CurvePointRow.budget_flops)):
        if not budgets or not same_budget(budgets[-1], budget):
            budgets.append(budget)
    from estimators import frontier

    return Facets(presets=[tuple(p) for p in presets], estimators=[tuple(e) for e in estimators],
                  budgets=budgets, families=list(getattr(frontier, "FAMILIES", ("transformer",))))
