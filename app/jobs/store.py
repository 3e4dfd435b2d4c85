"""Job state transitions on the durable rows; every executor and worker moves jobs only through here.

`attempts` is the fencing token: a worker holds (job_id, attempt), and each write is conditional
on the row still being `running` at that attempt, so a worker that was given up on (re-queued,
canceled, deleted) can never overwrite the job's newer state.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import session_scope
from app.core.models import CurvePointRow, Job, TransferRow, utcnow


class JobLost(Exception):
    """The job stopped being ours (canceled, deleted or handed to another attempt)."""


@dataclass(frozen=True)
class Claim:
    """The right to run one attempt of one job."""

    job_id: str
    attempt: int


def _owned(claim: Claim):
    return (Job.id == claim.job_id) & (Job.attempts == claim.attempt) & (Job.status == "running")


def claim_next(factory: sessionmaker[Session]) -> Claim | None:
    """Move the oldest queued job to `running` and return the claim, or None when idle."""
    with session_scope(factory) as session:
        for job_id, attempts in session.execute(
                select(Job.id, Job.attempts).where(Job.status == "queued")
                .order_by(Job.created_at).limit(5)):
            claimed = session.execute(
                update(Job).where((Job.id == job_id) & (Job.status == "queued"))
                .values(status="running", attempts=Job.attempts + 1, heartbeat_at=utcnow(),
                        started_at=utcnow(), worker_host=socket.gethostname(), worker_pid=None,
                        message=f"attempt {attempts + 1} starting")).rowcount
            if claimed:  # another claimer may have won the race; then try the next row
                return Claim(job_id, attempts + 1)
    return None


def attach_worker(factory: sessionmaker[Session], claim: Claim, pid: int) -> None:
    with session_scope(factory) as session:
        session.execute(update(Job).where(_owned(claim)).values(worker_pid=pid, heartbeat_at=utcnow()))


def heartbeat(factory: sessionmaker[Session], claim: Claim, progress: float | None = None,
              message: str | None = None) -> bool:
    """Record that the worker is alive (and how far it got); False once the job is no longer ours."""
    values: dict = {"heartbeat_at": utcnow()}
    if progress is not None:
        # Never backwards: a re-run attempt replays saved steps from 0 while the bar stays put.
        reported = min(1.0, max(0.0, float(progress)))
        values["progress"] = case((Job.progress > reported, Job.progress), else_=reported)
    if message is not None:
        values["message"] = message[:1000]
    with session_scope(factory) as session:
        return session.execute(update(Job).where(_owned(claim)).values(**values)).rowcount == 1


def still_owned(factory: sessionmaker[Session], claim: Claim) -> bool:
    with session_scope(factory) as session:
        return session.scalar(select(Job.id).where(_owned(claim))) is not None


def complete(factory: sessionmaker[Session], claim: Claim, result: dict, seconds: float,
             model_path: str | None = None) -> bool:
    """Store a succeeded result (unchanged) and its leaderboard columns; False if no longer ours.

    `model_path` (relative to the models dir) is the trained source model kept for transfer."""
    baselines = result.get("baselines") or {}
    with session_scope(factory) as session:
        done = session.execute(update(Job).where(_owned(claim)).values(
            status="succeeded", progress=1.0, message="done", error=None, result=result,
            finished_at=utcnow(), seconds=seconds, model_path=model_path,
            epiplexity_bits=result.get("epiplexity_bits"),
            entropy_bits=result.get("entropy_bits"),
            epiplexity_bits_per_byte=result.get("epiplexity_bits_per_byte"),
            entropy_bits_per_byte=result.get("entropy_bits_per_byte"),
            zstd_bits_per_byte=baselines.get("zstd_bits_per_byte"))).rowcount == 1
        if done:
            seen: set[float] = set()
            for point in result.get("curve") or []:
                budget = float(point["budget_flops"])
                if budget in seen:
                    continue
                seen.add(budget)
                session.add(CurvePointRow(
                    job_id=claim.job_id, budget_flops=budget,
                    epiplexity_bits=point["epiplexity_bits"], entropy_bits=point["entropy_bits"],
                    epiplexity_bits_per_byte=point["epiplexity_bits_per_byte"],
                    entropy_bits_per_byte=point["entropy_bits_per_byte"]))
        return done


def save_transfer(factory: sessionmaker[Session], claim: Claim, row: dict) -> bool:
    """Store one measured transfer row (replacing an older measurement of the same pair and
    settings); False, storing nothing, once the job is no longer this attempt's."""
    key = ("source_dataset_id", "target_dataset_id", "preset", "seed", "score_key")
    with session_scope(factory) as session:
        if session.scalar(select(Job.id).where(_owned(claim))) is None:
            return False
        existing = session.scalar(select(TransferRow).where(
            *(getattr(TransferRow, name) == row[name] for name in key)))
        if existing is None:
            session.add(TransferRow(**row, job_id=claim.job_id, measured_at=utcnow()))
            try:
                session.flush()
                return True
            except IntegrityError:  # another job measured the same pair a moment ago
                session.rollback()
                existing = session.scalar(select(TransferRow).where(
                    *(getattr(TransferRow, name) == row[name] for name in key)))
        for name, value in row.items():
            setattr(existing, name, value)
        existing.job_id, existing.measured_at = claim.job_id, utcnow()
        return True


def fail_attempt(factory: sessionmaker[Session], claim: Claim, reason: str, max_attempts: int,
                 retryable: bool = True) -> str | None:
    """End one attempt: re-queue it, or fail the job once attempts run out (or retrying is futile).

    Returns the job's new status, or None if the job was no longer this attempt's.
    """
    final = not retryable or claim.attempt >= max_attempts
    status = "failed" if final else "queued"
    if final and retryable:
        reason = f"{reason} (gave up after {claim.attempt} attempts)"
    values: dict = {"status": status, "error": reason[:4000], "worker_pid": None,
                    "message": "failed" if final else f"attempt {claim.attempt} failed; re-queued"}
    if final:
        values["finished_at"] = utcnow()
    with session_scope(factory) as session:
        changed = session.execute(update(Job).where(_owned(claim)).values(**values)).rowcount
    return status if changed else None


def release(factory: sessionmaker[Session], claim: Claim) -> bool:
    """Hand a job back to the queue without counting the attempt (the service is shutting down)."""
    with session_scope(factory) as session:
        return session.execute(update(Job).where(_owned(claim)).values(
            status="queued", attempts=Job.attempts - 1, worker_pid=None,
            message="re-queued: service stopped")).rowcount == 1


def reap_stale(factory: sessionmaker[Session], stale_after_seconds: float, max_attempts: int) -> list[str]:
    """Fail (and so re-queue or end) running jobs whose worker stopped heartbeating."""
    cutoff = utcnow() - timedelta(seconds=stale_after_seconds)
    with session_scope(factory) as session:
        stale = session.execute(select(Job.id, Job.attempts).where(
            (Job.status == "running") & (Job.heartbeat_at < cutoff))).all()
    reaped = []
    for job_id, attempt in stale:
        reason = f"worker stopped heartbeating for over {stale_after_seconds:g} s"
        if fail_attempt(factory, Claim(job_id, attempt), reason, max_attempts) is not None:
            reaped.append(job_id)
    return reaped


