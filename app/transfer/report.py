"""Measured and predicted transfer of a dataset, read from the database.

Predictions come from `estimators.transfer_model`, fitted on every measured pair in the database
whose two datasets have a scoring result (the features are their figures, which cost nothing
beyond scoring). The fit is cached on its exact inputs, so it is redone only when pairs or
figures change, and it declines to predict while there are too few pairs.
"""
from __future__ import annotations

import math
from functools import lru_cache

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from app.core.models import Dataset, Job, TransferRow
from app.transfer.panel import members as panel_members
from app.api.schemas import (DatasetTransferOut, MeasuredTransfer, PredictedTransfer, PredictorInfo,
                         PredictorQuality)

# One dataset's figures as transfer_model.features reads them (the scoring result's contract).
Figures = dict


class _ScoredFigures:
    """Headline figures of succeeded jobs: by (dataset, scoring settings), and each dataset's newest
    of every observer family (a job of fewer families stands only for its own settings)."""

    def __init__(self, session: Session, dataset_ids: set[str] | None = None) -> None:
        # Size is the bytes coded; results from before it was recorded fall back to the upload size.
        query = (select(Job.dataset_id, Job.score_key, Job.epiplexity_bits_per_byte, Job.entropy_bits_per_byte,
                        func.coalesce(Job.bytes_coded, Dataset.bytes), Job.families)
                 .join(Dataset, Dataset.id == Job.dataset_id)
                 .where(Job.status == "succeeded", Job.epiplexity_bits_per_byte.is_not(None),
                        Job.entropy_bits_per_byte.is_not(None))
                 .order_by(Job.finished_at, Job.id))
        if dataset_ids is not None:
            query = query.where(Job.dataset_id.in_(dataset_ids))
        self.by_key: dict[tuple[str, str | None], Figures] = {}
        self.newest: dict[str, tuple[str | None, Figures]] = {}
        for dataset_id, score_key, s_bpb, h_bpb, size, families in session.execute(query):
            figures = _unflatten(s_bpb, h_bpb, size)
            self.by_key[(dataset_id, score_key)] = figures
            if families is None:
                self.newest[dataset_id] = (score_key, figures)

    def get(self, dataset_id: str, score_key: str | None) -> Figures | None:
        """Figures under the same scoring settings when there are some, else the newest."""
        exact = self.by_key.get((dataset_id, score_key))
        return exact if exact is not None else self.newest.get(dataset_id, (None, None))[1]


def training_pairs(session: Session) -> list[tuple[Figures, Figures, float]]:
    """(source figures, target figures, measured bits/byte) for every measured pair both of whose
    datasets have been scored; the source's figures are those of the model that was measured."""
    rows = session.execute(select(TransferRow.source_dataset_id, TransferRow.target_dataset_id,
                                  TransferRow.score_key, TransferRow.transfer_bits_per_byte)
                           .order_by(TransferRow.id)).all()
    figures = _ScoredFigures(session, {r[0] for r in rows} | {r[1] for r in rows})
    pairs = []
    for source_id, target_id, score_key, measured in rows:
        source, target = figures.get(source_id, score_key), figures.get(target_id, score_key)
        if source is not None and target is not None and math.isfinite(measured):
            pairs.append((source, target, measured))
    return pairs


def _flatten(figures: Figures) -> tuple[float, float, int]:
    return figures["epiplexity_bits_per_byte"], figures["entropy_bits_per_byte"], figures["dataset"]["bytes_coded"]


def _unflatten(s_bpb: float, h_bpb: float, size: int) -> Figures:
    return {"epiplexity_bits_per_byte": s_bpb, "entropy_bits_per_byte": h_bpb, "dataset": {"bytes_coded": size}}


@lru_cache(maxsize=8)
def _fit(pairs: tuple[tuple[tuple, tuple, float], ...]):
    from estimators import transfer_model

    return transfer_model.fit([(_unflatten(*s), _unflatten(*t), y) for s, t, y in pairs])


def fit_predictor(session: Session):
    """The transfer predictor fitted on every usable measured pair (an `estimators.transfer_model.TransferPredictor`)."""
    return _fit(tuple((_flatten(s), _flatten(t), y) for s, t, y in training_pairs(session)))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def no_better_than_the_mean(predictor) -> str | None:
    """A warning when the predictor's held-out error is no smaller than always guessing the mean."""
    q = predictor.quality
    if predictor.ready and not q["loo_mae_bits_per_byte"] < q["baseline_mae_bits_per_byte"]:
        return (f"on held-out pairs the predictor errs by {q['loo_mae_bits_per_byte']:.3f} bits/byte, no better "
                f"than always guessing the mean ({q['baseline_mae_bits_per_byte']:.3f}): do not rely on its values")
    return None


def predictor_info(predictor) -> PredictorInfo:
    if not predictor.ready:
        return PredictorInfo(pairs=predictor.pairs, ready=False, message=predictor.quality.get("message"))
    q = predictor.quality
    return PredictorInfo(pairs=predictor.pairs, ready=True, message=no_better_than_the_mean(predictor),
                         quality=PredictorQuality(
                             loo_spearman=_finite(q["loo_spearman"]), loo_mae_bits_per_byte=q["loo_mae_bits_per_byte"],
                             baseline_mae_bits_per_byte=q["baseline_mae_bits_per_byte"], features=q["features"]))


def dataset_transfer(session: Session, dataset: Dataset, extra_targets: list[Dataset] = (),
                     visible: ColumnElement[bool] | None = None) -> DatasetTransferOut:
    """Measured rows from `dataset` to targets matching `visible` (all by default), and predictions for
    panel members (and `extra_targets`) not measured."""
    rows = session.execute(select(TransferRow, Dataset)
                           .join(Dataset, Dataset.id == TransferRow.target_dataset_id)
                           .where(TransferRow.source_dataset_id == dataset.id, true() if visible is None else visible)
                           .order_by(Dataset.name, TransferRow.measured_at)).all()
    measured = [MeasuredTransfer(
        target_dataset_id=target.id, target_name=target.name, target_panel=target.panel,
        transfer_bits=row.transfer_bits, transfer_bits_per_byte=row.transfer_bits_per_byte,
        scratch_code_bits=row.scratch_code_bits, transfer_code_bits=row.transfer_code_bits,
        warm_start_bits=row.scratch_code_bits - row.transfer_code_bits,
        warm_start_bits_per_byte=(row.scratch_code_bits - row.transfer_code_bits) / max(1, row.target_bytes_coded),
        target_bytes_coded=row.target_bytes_coded, target_tokens_coded=row.target_tokens_coded,
        budget_flops=row.budget_flops, preset=row.preset, seed=row.seed, model=row.model, job_id=row.job_id,
        measured_at=row.measured_at) for row, target in rows]

    done = {m.target_dataset_id for m in measured} | {dataset.id}
    candidates = {d.id: d for d in [*panel_members(session), *extra_targets] if d.id not in done}
    predictor = fit_predictor(session)
    figures = _ScoredFigures(session, set(candidates) | {dataset.id})
    source_key, source = figures.newest.get(dataset.id, (None, None))
    predicted = []
    for target in sorted(candidates.values(), key=lambda d: (d.name, d.id)):
        target_figures = figures.get(target.id, source_key)
        value, note = None, None
        if not predictor.ready:
            note = predictor.quality.get("message")
        elif source is None:
            note = "this dataset has no succeeded scoring job yet"
        elif target_figures is None:
            note = "the target has no succeeded scoring job yet (a transfer request to it queues one)"
        else:
            value, note = predictor.predict(source, target_figures), no_better_than_the_mean(predictor)
        predicted.append(PredictedTransfer(target_dataset_id=target.id, target_name=target.name,
                                           target_panel=target.panel, predicted_transfer_bits_per_byte=value,
                                           note=note))
    return DatasetTransferOut(dataset_id=dataset.id, name=dataset.name, measured=measured, predicted=predicted,
                              predictor=predictor_info(predictor))
