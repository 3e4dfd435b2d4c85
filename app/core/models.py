"""Database tables: datasets, jobs (the durable queue), the result curves the leaderboard reads,
and measured transfer between datasets."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    """One uploaded dataset: content (by sha256) read in one format. Blobs are shared by sha256."""

    __tablename__ = "datasets"
    # Content-addressed per owner: the same bytes from another key are another record (sharing the blob).
    __table_args__ = (UniqueConstraint("owner_id", "sha256", "format", name="uq_datasets_owner_sha256_format"),
                      Index("ix_datasets_newest", "created_at", "id"))  # list pages, newest first

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    # 64-bit: PostgreSQL's INTEGER stops at 2 GiB (SQLite's is 64-bit already).
    bytes: Mapped[int] = mapped_column(BigInteger)
    stored_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # In the reference panel of transfer targets: "builtin" (estimators.panel) or "operator"; null if not.
    panel_source: Mapped[str | None] = mapped_column(String(20), index=True)
    panel_description: Mapped[str | None] = mapped_column(Text)
    # The API key that uploaded it ("" without keys: no owner); private ones are seen by it and admins.
    owner_id: Mapped[str] = mapped_column(String(32), default="", server_default="", index=True)
    visibility: Mapped[str] = mapped_column(String(10), default="public", server_default="public")

    jobs: Mapped[list[Job]] = relationship(back_populates="dataset", cascade="all, delete-orphan",
                                           passive_deletes=True)

    @property
    def panel(self) -> bool:
        return self.panel_source is not None


class Job(Base):
    """A scoring job and its queue state; the row is the record of truth for every executor."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("dataset_id", "config_key", name="uq_jobs_dataset_config"),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_status_finished", "status", "finished_at"),  # the leaderboard's fingerprint
        Index("ix_jobs_newest", "created_at", "id"),  # list pages, newest first
        Index("ix_jobs_dataset_status_finished", "dataset_id", "status", "finished_at"),
        Index("ix_jobs_dataset_score_key", "dataset_id", "score_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    # sha256 of the canonical settings: same dataset + same key = same job (and cached result).
    config_key: Mapped[str] = mapped_column(String(64))
    preset: Mapped[str | None] = mapped_column(String(50))
    budgets: Mapped[list[float] | None] = mapped_column(JSON)
    estimator: Mapped[str] = mapped_column(String(50))
    seeds: Mapped[int] = mapped_column(Integer)
    # The observer families pooled, in the frontier's order; None: every family.
    families: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    # sha256 of the scoring settings alone (config_key without the transfer request): jobs that
    # share it share one scoring result and one trained model.
    score_key: Mapped[str | None] = mapped_column(String(64))
    # {"targets": [dataset ids], "preset": name}: measure transfer to these after scoring.
    transfer: Mapped[dict | None] = mapped_column(JSON(none_as_null=True))
    # The name of the source model kept for transfer in the blob store (app.transfer.step).
    model_path: Mapped[str | None] = mapped_column(String(500))
    # The API key that submitted it ("" without keys).
    owner_id: Mapped[str] = mapped_column(String(32), default="", server_default="", index=True)

    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # Attempts spent since the job was (re)submitted; a resubmission starts again from 0.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The fencing token: every claim increments it and nothing ever lowers it, so no two attempts
    # of a job (even across a resubmission) share one; a worker writes only while it is its own.
    lease: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker_pid: Mapped[int | None] = mapped_column(Integer)
    worker_host: Mapped[str | None] = mapped_column(String(255))

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seconds: Mapped[float | None] = mapped_column(Float)

    result: Mapped[dict | None] = mapped_column(JSON)
    # Headline figures copied out of `result` so the leaderboard sorts without parsing JSON.
    epiplexity_bits: Mapped[float | None] = mapped_column(Float)
    entropy_bits: Mapped[float | None] = mapped_column(Float)
    epiplexity_bits_per_byte: Mapped[float | None] = mapped_column(Float)
    entropy_bits_per_byte: Mapped[float | None] = mapped_column(Float)
    zstd_bits_per_byte: Mapped[float | None] = mapped_column(Float)
    # The per-byte figures' denominator: the bytes the learner coded (null for older results).
    bytes_coded: Mapped[int | None] = mapped_column(Integer)

    dataset: Mapped[Dataset] = relationship(back_populates="jobs")
    curve_points: Mapped[list[CurvePointRow]] = relationship(cascade="all, delete-orphan",
                                                             passive_deletes=True)


class CurvePointRow(Base):
    """S_T and H_T of one succeeded job at one budget: lets the leaderboard rank at any budget."""

    __tablename__ = "curve_points"
    __table_args__ = (Index("ix_curve_points_budget", "budget_flops"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    budget_flops: Mapped[float] = mapped_column(Float, primary_key=True)
    epiplexity_bits: Mapped[float] = mapped_column(Float)
    entropy_bits: Mapped[float] = mapped_column(Float)
    epiplexity_bits_per_byte: Mapped[float] = mapped_column(Float)
    entropy_bits_per_byte: Mapped[float] = mapped_column(Float)


class TransferRow(Base):
    """Measured transfer from one source model to one target dataset (estimators.transfer.measure).

    One row per (source, target, preset, seed) and source model: `score_key` names the scoring
    settings that trained the source model, so a model from other settings is a different row."""

    __tablename__ = "transfer_results"
    __table_args__ = (
        UniqueConstraint("source_dataset_id", "target_dataset_id", "preset", "seed", "score_key",
                         name="uq_transfer_pair"),
        Index("ix_transfer_target", "target_dataset_id"),
        Index("ix_transfer_measured", "measured_at"),  # the leaderboard's fingerprint
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    target_dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    score_key: Mapped[str] = mapped_column(String(64))
    preset: Mapped[str] = mapped_column(String(50))
    seed: Mapped[int] = mapped_column(Integer)
    transfer_bits: Mapped[float] = mapped_column(Float)
    transfer_bits_per_byte: Mapped[float] = mapped_column(Float)
    scratch_code_bits: Mapped[float] = mapped_column(Float)
    transfer_code_bits: Mapped[float] = mapped_column(Float)
    target_bytes_coded: Mapped[int] = mapped_column(Integer)
    target_tokens_coded: Mapped[int] = mapped_column(Integer)
    budget_flops: Mapped[float] = mapped_column(Float)
    model: Mapped[dict] = mapped_column(JSON)
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key: only the sha256 of the secret is kept; `revoked_at` set means it opens nothing."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The key's first characters, to recognise it in `epiplex keys list` without storing it.
    prefix: Mapped[str] = mapped_column(String(16))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FlopsCharge(Base):
    """FLOPs a key's job planned when it was queued (again): the FLOPs-per-day quota sums a day of these."""

    __tablename__ = "flops_charges"
    __table_args__ = (Index("ix_flops_charges_owner_at", "owner_id", "charged_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_id: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str] = mapped_column(String(32))
    flops: Mapped[float] = mapped_column(Float)
    charged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ServiceState(Base):
    """Small facts the service records once, e.g. that the built-in panel has been stored."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


VISIBILITIES = ("public", "private")
JOB_STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
TERMINAL_STATUSES = ("succeeded", "failed", "canceled")
