"""The transfer step of a job, run in the worker after scoring: measure transfer to each target.

The job's trained source model is kept in the blob store (`objects/models/DATASET_ID/JOB_ID/`,
S3 in a cluster, so any node can fetch it) so that transfer never trains the source again: a
later job with the same scoring settings reuses the succeeded job's result and model. Each
target is coded twice, from the source model and from scratch
(`estimators.transfer.measure`), and its row is stored at once, so a re-run after a crash
measures only the targets still missing; so does a later job asking for the same pairs.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import session_scope
from app.core.models import Dataset, Job, TransferRow
from app.jobs import store
from app.jobs.store import Claim, JobLost
from app.storage import BlobStorage

log = logging.getLogger("epiplex.worker")

ROW_FIELDS = ("transfer_bits", "transfer_bits_per_byte", "scratch_code_bits", "transfer_code_bits",
              "target_bytes_coded", "target_tokens_coded", "budget_flops", "model")


def model_file(job: Job) -> str:
    """The name a job's trained source model is kept under (the job's `model_path`)."""
    return f"{job.dataset_id}/{job.id}.pt"


MODELS = "models"  # the blob store's object group of kept models, one group per dataset


def _model_prefix(model_path: str) -> str:
    return f"{MODELS}/" + model_path.removesuffix(".pt")


def keep_model(blobs: BlobStorage, model_path: str, local: Path) -> None:
    """Store the model file `local` as the kept model `model_path`."""
    blobs.put_object(f"{_model_prefix(model_path)}/{local.name}", local)


def fetch_model(blobs: BlobStorage, model_path: str, folder: Path) -> Path | None:
    """The kept model `model_path`, copied into `folder`; None when the store has no such model."""
    name = Path(model_path).name
    return folder / name if name in blobs.get_objects(_model_prefix(model_path), folder) else None


def delete_models(blobs: BlobStorage, dataset_id: str) -> None:
    """Remove every model kept from the dataset's jobs."""
    blobs.delete_objects(f"{MODELS}/{dataset_id}")


def reusable_scoring(factory: sessionmaker[Session], job: Job, blobs: BlobStorage,
                     folder: Path) -> tuple[dict, str, str, Path] | None:
    """(result, model path, job id, model file fetched into `folder`) of a succeeded job with the
    same dataset and scoring settings whose model is still kept, newest first; None when the
    dataset must be scored."""
    if job.score_key is None:
        return None
    with session_scope(factory) as session:
        rows = session.execute(
            select(Job.id, Job.result, Job.model_path)
            .where(Job.dataset_id == job.dataset_id, Job.score_key == job.score_key, Job.id != job.id,
                   Job.status == "succeeded", Job.model_path.is_not(None))
            .order_by(Job.finished_at.desc())).all()
    for job_id, result, path in rows:
        if result and (local := fetch_model(blobs, path, folder)) is not None:
            return result, path, job_id, local
    return None


def measure_targets(factory: sessionmaker[Session], claim: Claim, job: Job, model_path: Path, seed: int,
                    blobs: BlobStorage, tmp_dir: Path, device: str, threads: int,
                    progress: Callable[[float, str], None]) -> list[str]:
    """Measure and store transfer from `model_path` to each of the job's targets not measured yet.

    Returns warnings for targets that could not be measured (deleted, or data the source model
    cannot read); `progress(fraction of this step, message)` raises JobLost to stop early."""
    from estimators.data import DataFormatError
    from estimators.transfer import measure

    targets: list[str] = list(job.transfer["targets"])
    preset: str = job.transfer["preset"]
    with session_scope(factory) as session:
        done = set(session.scalars(select(TransferRow.target_dataset_id).where(
            TransferRow.source_dataset_id == job.dataset_id, TransferRow.score_key == job.score_key,
            TransferRow.preset == preset, TransferRow.seed == seed,
            TransferRow.target_dataset_id.in_(targets))))
        found = {d.id: (d.name, d.sha256, d.format)
                 for d in session.scalars(select(Dataset).where(Dataset.id.in_(targets)))}
    warnings = []
    for i, target_id in enumerate(targets):
        if target_id in done:
            continue
        if target_id not in found:
            warnings.append(f"transfer to dataset {target_id} skipped: it was deleted")
            continue
        name, sha256, fmt = found[target_id]
        progress(i / len(targets), f"transfer to {name} ({i + 1} of {len(targets)})")
        data_path = tmp_dir / f"job-{claim.job_id}-{claim.lease}.target"
        try:
            blobs.restore_to(sha256, data_path)
            result = measure(model_path, str(data_path), format=fmt, preset=preset, seed=seed,
                             device=device, threads=threads,
                             progress=lambda f, m, i=i: progress((i + f) / len(targets),
                                                                 f"{name}: {m}")).to_dict()
        except DataFormatError as error:
            warnings.append(f"transfer to {name} ({target_id}) skipped: {error}")
            continue
        finally:
            data_path.unlink(missing_ok=True)
        row = {"source_dataset_id": job.dataset_id, "target_dataset_id": target_id, "preset": preset,
               "seed": seed, "score_key": job.score_key, **{k: result[k] for k in ROW_FIELDS}}
        if not store.save_transfer(factory, claim, row):
            raise JobLost()
        log.info("transfer measured", extra={"job_id": job.id, "target_dataset_id": target_id,
                                             "transfer_bits_per_byte": round(result["transfer_bits_per_byte"], 5)})
    progress(1.0, "transfer measured")
    return warnings
