"""Job state transitions on the durable rows; every executor and worker moves jobs only through here.

`lease` is the fencing token: every claim increments it and nothing lowers or resets it (unlike
`attempts`, which a resubmission sets back to 0). A worker holds (job_id, lease), and each write
is conditional on the row still being `running` under that lease, so a worker that was given up
on (re-queued, canceled, resubmitted, deleted) can never overwrite the job's newer state.

Claiming: PostgreSQL locks the oldest queued row with `FOR UPDATE SKIP LOCKED`, so concurrent
claimers never wait on or collide over one row; SQLite (one writer at a time) updates a row only
if it is still queued as it was read. Every function here retries for a while when
the database is unreachable (`retry_while_unreachable`), so a database restart costs no attempt.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import retry_while_unreachable, session_scope
from app.core.models import CurvePointRow, Job, TransferRow, utcnow


class JobLost(Exception):
    """The job stopped being ours (canceled, deleted or handed to another attempt)."""


@dataclass(frozen=True)
class Claim:
    """The right to run one attempt of one job."""

    job_id: str
    attempt: int  # 1 for the first attempt since the job was (re)submitted; counts towards max_attempts
    lease: int  # the fencing token, unique among all attempts the job ever had


def _owned(claim: Claim):
    return (Job.id == claim.job_id) & (Job.lease == claim.lease) & (Job.status == "running")


@retry_while_unreachable
def claim_next(factory: sessionmaker[Session]) -> Claim | None:
    """Move the oldest queued job to `running` and return the claim, or None when idle."""
    with session_scope(factory) as session:
        oldest = select(Job.id, Job.attempts, Job.lease).where(Job.status == "queued").order_by(Job.created_at)
        if session.get_bind().dialect.name == "postgresql":
            # Rows other claimers hold are skipped, not waited for: each claimer gets its own job.
            candidates = session.execute(oldest.limit(1).with_for_update(skip_locked=True)).all()
        else:
            candidates = session.execute(oldest.limit(5)).all()
        for job_id, attempts, lease in candidates:
            claimed = session.execute(
                update(Job).where((Job.id == job_id) & (Job.status == "queued") & (Job.lease == lease)
                                  & (Job.attempts == attempts))
                .values(status="running", attempts=attempts + 1, lease=lease + 1, heartbeat_at=utcnow(),
                        started_at=utcnow(), worker_host=socket.gethostname(), worker_pid=None,
                        message=f"attempt {attempts + 1} starting")).rowcount
            if claimed:  # on SQLite another claimer may have won the race; then try the next row
                return Claim(job_id, attempts + 1, lease + 1)
    return None


@retry_while_unreachable
def attach_worker(factory: sessionmaker[Session], claim: Claim, pid: int) -> None:
    with session_scope(factory) as session:
        session.execute(update(Job).where(_owned(claim)).values(worker_pid=pid, heartbeat_at=utcnow()))


@retry_while_unreachable
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


@retry_while_unreachable
def still_owned(factory: sessionmaker[Session], claim: Claim) -> bool:
    with session_scope(factory) as session:
        return session.scalar(select(Job.id).where(_owned(claim))) is not None


@retry_while_unreachable
def complete(factory: sessionmaker[Session], claim: Claim, result: dict, seconds: float,
             model_path: str | None = None) -> bool:
    """Store a succeeded result (unchanged) and its leaderboard columns; False if no longer ours.

    `model_path` names the trained source model kept for transfer (`app.transfer.step`)."""
    baselines = result.get("baselines") or {}
    with session_scope(factory) as session:
        done = session.execute(update(Job).where(_owned(claim)).values(
            status="succeeded", progress=1.0, message="done", error=None, result=result,
            finished_at=utcnow(), seconds=seconds, model_path=model_path,
            epiplexity_bits=result.get("epiplexity_bits"),
            entropy_bits=result.get("entropy_bits"),
            epiplexity_bits_per_byte=result.get("epiplexity_bits_per_byte"),
            entropy_bits_per_byte=result.get("entropy_bits_per_byte"),
            zstd_bits_per_byte=baselines.get("zstd_bits_per_byte"),
            bytes_coded=(result.get("dataset") or {}).get("bytes_coded"))).rowcount == 1
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


@retry_while_unreachable
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


@retry_while_unreachable
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


@retry_while_unreachable
def release(factory: sessionmaker[Session], claim: Claim) -> bool:
    """Hand a job back to the queue without counting the attempt (the service is shutting down).

    The lease stays spent: the next claim gets a new one."""
    with session_scope(factory) as session:
        return session.execute(update(Job).where(_owned(claim)).values(
            status="queued", attempts=Job.attempts - 1, worker_pid=None,
            message="re-queued: service stopped")).rowcount == 1


@retry_while_unreachable
def reap_stale(factory: sessionmaker[Session], stale_after_seconds: float, max_attempts: int) -> list[str]:
    """Fail (and so re-queue or end) running jobs whose worker stopped heartbeating."""
    cutoff = utcnow() - timedelta(seconds=stale_after_seconds)
    with session_scope(factory) as session:
        stale = session.execute(select(Job.id, Job.attempts, Job.lease).where(
            (Job.status == "running") & (Job.heartbeat_at < cutoff))).all()
    reaped = []
    for job_id, attempt, lease in stale:
        reason = f"worker stopped heartbeating for over {stale_after_seconds:g} s"
        if fail_attempt(factory, Claim(job_id, attempt, lease), reason, max_attempts) is not None:
            reaped.append(job_id)
    return reaped


