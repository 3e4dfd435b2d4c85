"""The one settings object of the service, read from EPIPLEX_* environment variables."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; `epiplex serve` flags override the environment."""

    model_config = SettingsConfigDict(env_prefix="EPIPLEX_", frozen=True)

    host: str = Field("127.0.0.1", description="Interface to bind; loopback unless told otherwise.")
    port: int = Field(8000, ge=0, le=65535)
    data_dir: Path = Field(Path("data"), description="Holds the SQLite database, blobs and job state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default is SQLite (WAL) at DATA_DIR/epiplex.db. PostgreSQL: "
        "postgresql+psycopg://USER:PASSWORD@HOST:5432/DB (needs the `postgres` extra).")
    executor: Literal["local", "ray"] = Field("local", description="Where jobs run: local worker "
                                              "processes, or tasks on a Ray cluster.")
    ray_address: str = Field("auto", description="Ray cluster to join with the ray executor: auto "
                             "(a cluster started on this machine with `ray start`), ray://HOST:PORT, "
                             "or local (start a private one in this process).")
    ray_cpus_per_run: float = Field(1.0, gt=0, description="CPUs each training run asks of the Ray "
                                    "cluster (its torch threads); a GPU too where the cluster has one.")
    blob_url: str | None = Field(None, description="Where dataset blobs live: s3://BUCKET/PREFIX for "
                                 "S3-compatible storage; default is DATA_DIR/blobs.")
    s3_endpoint_url: str | None = Field(None, description="Endpoint of S3-compatible storage (e.g. "
                                        "http://minio:9000); credentials come from the AWS_* variables.")
    blob_gc_grace_seconds: float = Field(3600.0, ge=0, description="Blobs no dataset uses are deleted "
                                         "once older than this (uploads in flight are younger).")
    blob_gc_interval_seconds: float = Field(3600.0, gt=0, description="How often orphan blobs are "
                                            "looked for (also once at start).")
    workers: int = Field(1, ge=0, description="Concurrent local worker processes; 0 runs the API only.")
    cores_per_worker: int | None = Field(None, ge=1, description="Cores a local worker's job computes on "
                                         "(its lanes and torch threads), at most the machine's; default: "
                                         "its cores / workers.")
    api_processes: int = Field(2, ge=1, le=64, description="Processes answering HTTP on the one port (one "
                               "Python process serves on about one core); the first also runs the executor. "
                               "Linux only: elsewhere 1.")
    max_upload_bytes: int = Field(1 << 30, ge=1, description="Larger uploads are refused with 413.")
    max_json_body_bytes: int = Field(1 << 20, ge=1024, description="Larger JSON request bodies are refused "
                                     "with 413 (uploads have max_upload_bytes).")
    zstd_level: int = Field(3, ge=1, le=19, description="Compression level of blobs at rest.")
    device: str = Field("auto", description="Device for training: cpu, cuda or auto.")
    default_preset: str = Field("quick", description="Preset used when a job names neither preset nor budgets.")
    heartbeat_seconds: float = Field(5.0, gt=0, description="How often a worker proves it is alive.")
    stale_after_seconds: float = Field(60.0, gt=0, description="A running job silent this long is re-queued.")
    max_attempts: int = Field(3, ge=1, description="Attempts before a repeatedly failing job ends failed.")
    poll_seconds: float = Field(0.5, gt=0, description="How often the executor looks for queued work.")
    panel_bytes: int = Field(64 * 1024, ge=1024, le=1 << 26,
                             description="Size of each built-in reference panel dataset, stored on first use.")
    # Access control (app.auth): keys, quotas per key, the loopback guard.
    auth: Literal["auto", "keys"] = Field("auto", description="auto: API keys are required as soon as one "
                                          "exists; keys: required even before.")
    insecure_no_auth: bool = Field(False, description="Serve a non-loopback address without any API key "
                                   "(anyone who reaches the port may do anything). Logged as a warning.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host names accepted besides "
                                     "the loopback ones while bound to loopback (e.g. behind a proxy).")
    quota_stored_bytes: int = Field(10 << 30, ge=0, description="Upload bytes one key may keep; 0: no limit.")
    quota_active_jobs: int = Field(16, ge=0, description="Queued or running jobs one key may have; 0: no limit.")
    quota_flops_per_day: float = Field(5e16, ge=0, allow_inf_nan=False,
                                       description="Planned FLOPs of the jobs one key submits in 24 h; 0: no limit.")
    rate_limit: str = Field("50/second", description="Requests per key, in the `limits` notation "
                            "(e.g. '50/second;1000/minute'); empty: no limit. Admin keys are exempt. Each API process "
                            "counts on its own.")
    log_level: str = Field("INFO")
    access_log: bool = Field(True, description="Log one line per HTTP request.")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'epiplex.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def state_dir(self) -> Path:
        """Per-job estimator state; completed budget steps saved here let a re-run resume."""
        return self.data_dir / "state"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    def threads_per_job(self) -> int:
        """Cores / concurrent jobs unless set, never more than the machine's: oversubscribed
        torch threads made jobs 14x slower."""
        cores = os.cpu_count() or 1
        if self.cores_per_worker:
            return min(self.cores_per_worker, cores)
        return max(1, cores // max(1, self.workers))

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.blob_dir, self.state_dir, self.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)
