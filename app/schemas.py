"""API schemas (pydantic), kept apart from the database models; field descriptions feed /docs."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
EstimatorName = Literal["prequential", "requential"]
LeaderboardSort = Literal["epiplexity_bits_per_byte", "entropy_bits_per_byte", "epiplexity_bits"]

T = TypeVar("T")


def _assume_utc(moment: datetime) -> datetime:
    # SQLite returns stored datetimes without a zone; every stored time is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_assume_utc)]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="Number of items matching the query, over all pages.")
    limit: int = Field(description="Largest page size asked for.")
    offset: int = Field(description="Items skipped before this page.")


class DatasetOut(BaseModel):
    """An uploaded dataset. Uploads are content-addressed: the same bytes in the same format are one dataset."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Dataset id, used by jobs.")
    sha256: str = Field(description="SHA-256 of the uploaded bytes (hex).")
    bytes: int = Field(description="Size of the upload in bytes, uncompressed.")
    stored_bytes: int = Field(description="Size at rest after zstd compression.")
    name: str = Field(description="Name given at first upload (file name for multipart uploads).")
    format: str = Field(description="How the bytes are read: bytes | text | jsonl:FIELD | csv:COLUMN | tokens.")
    created_at: UtcDatetime = Field(description="First upload time (UTC).")


class JobCreate(BaseModel):
    """A request to score a dataset. The same dataset and settings return the existing job."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(description="Id of an uploaded dataset.")
    preset: str | None = Field(None, description="Named sweep (quick, standard, deep); the service "
                               "default when neither preset nor budgets is given.")
    budgets: list[float] | None = Field(None, min_length=1, max_length=32,
                                        description="Compute budgets in FLOPs; replaces the preset's ladder.")
    estimator: EstimatorName = Field("prequential", description="prequential (cheap) or requential (accurate).")
    seeds: int = Field(1, ge=1, le=16, description="Independent training seeds; >1 gives 95% intervals.")

    @field_validator("budgets")
    @classmethod
    def _positive_budgets(cls, budgets: list[float] | None) -> list[float] | None:
        if budgets is not None and any(not (b > 0 and b < float("inf")) for b in budgets):
            raise ValueError("budgets must be positive, finite FLOP counts")
        return sorted(set(budgets)) if budgets is not None else None


class JobOut(BaseModel):
    """A scoring job and, once it succeeded, its result."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Job id.")
    dataset_id: str = Field(description="The dataset being scored.")
    status: JobStatus = Field(description="queued | running | succeeded | failed | canceled.")
    progress: float = Field(description="Fraction done, 0..1.")
    message: str | None = Field(None, description="Latest progress message from the worker.")
    preset: str | None = Field(None, description="Preset used (null when explicit budgets were given).")
    budgets: list[float] | None = Field(None, description="Explicit budgets in FLOPs, if given.")
    estimator: str = Field(description="prequential or requential.")
    seeds: int = Field(description="Number of seeds.")
    attempts: int = Field(description="Attempts started so far; a crashed attempt is retried.")
    error: str | None = Field(None, description="Why the job (or its last attempt) failed.")
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    seconds: float | None = Field(None, description="Wall-clock seconds of the successful attempt.")
    result: dict[str, Any] | None = Field(
        None, description="The estimator's result contract, unchanged: epiplexity_bits, entropy_bits, "
        "their per-byte figures, the curve over budgets, baselines (zstd, lzma bits/byte), dataset, "
        "estimator, seeds, flops_spent, seconds, warnings, version, preset. All units are bits.")


class LeaderboardEntry(BaseModel):
    """A dataset ranked by its latest succeeded result."""

    rank: int = Field(description="1-based position under the requested sort.")
    dataset_id: str
    name: str
    bytes: int = Field(description="Dataset size in bytes.")
    epiplexity_bits_per_byte: float = Field(description="Structure extracted, bits per byte (S_T / bytes).")
    entropy_bits_per_byte: float = Field(description="Time-bounded entropy, bits per byte (H_T / bytes).")
    epiplexity_bits: float = Field(description="Total epiplexity S_T in bits.")
    entropy_bits: float = Field(description="Total time-bounded entropy H_T in bits.")
    zstd_bits_per_byte: float | None = Field(None, description="zstd baseline, bits per byte.")
    budget_flops: float | None = Field(None, description="Budget the figures are read at; null = the "
                                       "job's largest budget.")
    preset: str | None = None
    estimator: str
    job_id: str = Field(description="The job whose result is shown.")
    finished_at: UtcDatetime


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: dict[str, Any] = Field(default_factory=dict)
