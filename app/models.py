"""Database tables: datasets, jobs (the durable queue) and the result curves the leaderboard reads."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Dataset(Base):
    """One uploaded dataset: content (by sha256) read in one format. Blobs are shared by sha256."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("sha256", "format", name="uq_datasets_sha256_format"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    bytes: Mapped[int] = mapped_column(Integer)
    stored_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    jobs: Mapped[list[Job]] = relationship(back_populates="dataset", cascade="all, delete-orphan",
                                           passive_deletes=True)


class Job(Base):
    """A scoring job and its queue state; the row is the record of truth for every executor."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("dataset_id", "config_key", name="uq_jobs_dataset_config"),
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_dataset_status_finished", "dataset_id", "status", "finished_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    # sha256 of the canonical settings: same dataset + same key = same job (and cached result).
    config_key: Mapped[str] = mapped_column(String(64))
    preset: Mapped[str | None] = mapped_column(String(50))
    budgets: Mapped[list[float] | None] = mapped_column(JSON)
    estimator: Mapped[str] = mapped_column(String(50))
    seeds: Mapped[int] = mapped_column(Integer)

    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    # attempts doubles as a fencing token: a worker writes only while the row's attempt is its own.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
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


JOB_STATUSES = ("queued", "running", "succeeded", "failed", "canceled")
TERMINAL_STATUSES = ("succeeded", "failed", "canceled")
