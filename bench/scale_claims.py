"""Scaling benchmark. Claims: N concurrent claimer processes empty a queue of J jobs through
`app.jobs.store.claim_next`, on PostgreSQL (FOR UPDATE SKIP LOCKED) and, for contrast, SQLite.

    python bench/bench_scale.py claims [--jobs 10000] [--claimers 4]

Each claimer is a freshly spawned process with its own engine, as executors on separate nodes
would be. The PostgreSQL server is a throwaway one (`app.testing_postgres`) on 127.0.0.1 with
fsync on. Checks: every job is claimed exactly once. Reports claims per second (wall time from
the common start to the last claim). Goal (issue 8): no job claimed twice.
"""
from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from app.core.db import make_engine, make_session_factory, run_migrations  # noqa: E402
from app.core.models import Dataset, Job, utcnow  # noqa: E402
from app.jobs import store  # noqa: E402
from app.testing_postgres import PG_BIN_DIR, PostgresServer  # noqa: E402
from machine import machine  # noqa: E402

START_DELAY_SECONDS = 5.0  # lets every spawned claimer import and connect before the common start




def _queue(database_url: str, jobs: int) -> None:
    engine = make_engine(database_url)
    run_migrations(engine)
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(insert(Dataset), [{"id": "ds", "sha256": "0" * 64, "format": "bytes", "name": "bench",
                                              "bytes": 1, "stored_bytes": 1, "created_at": now}])
        connection.execute(insert(Job), [
            {"id": f"job{n:06d}", "dataset_id": "ds", "config_key": f"k{n}", "preset": "quick",
             "estimator": "prequential", "seeds": 1, "status": "queued", "progress": 0.0, "attempts": 0,
             "lease": 0, "created_at": now + timedelta(microseconds=n)} for n in range(jobs)])
    engine.dispose()


def _claim_until_empty(database_url: str, start_at: float) -> tuple[list[str], float]:
    """One claimer: claims until the queue is empty; returns the job ids and when it finished."""
    engine = make_engine(database_url)
    factory = make_session_factory(engine)
    with engine.connect():  # connect before the clock starts
        pass
    time.sleep(max(0.0, start_at - time.time()))
    claimed = []
    while (claim := store.claim_next(factory)) is not None:
        claimed.append(claim.job_id)
    finished = time.time()
    engine.dispose()
    return claimed, finished


def _claims_run(backend: str, database_url: str, jobs: int, claimers: int) -> dict:
    _queue(database_url, jobs)
    start_at = time.time() + START_DELAY_SECONDS
    with multiprocessing.get_context("spawn").Pool(claimers) as pool:
        results = pool.starmap(_claim_until_empty, [(database_url, start_at)] * claimers)
    seconds = max(finished for _, finished in results) - start_at
    counts = Counter(job_id for claimed, _ in results for job_id in claimed)
    return {"backend": backend, "claimers": claimers, "jobs": jobs, "claimed": len(counts),
            "twice": sum(1 for n in counts.values() if n > 1), "per_claimer": [len(c) for c, _ in results],
            "seconds": seconds, "claims_per_second": sum(counts.values()) / seconds}


def bench_claims(jobs: int = 10_000, claimers: int = 4) -> list[dict]:
    """Claims per second with `claimers` processes on PostgreSQL and on SQLite; no job twice."""
    rows = []
    with PostgresServer(durable=True) as server:
        rows.append(_claims_run("PostgreSQL 15 (SKIP LOCKED)", server.create_database(), jobs, claimers))
    with tempfile.TemporaryDirectory(prefix="epiplex-bench-") as tmp:
        rows.append(_claims_run("SQLite (WAL)", f"sqlite:///{tmp}/claims.db", jobs, claimers))
    return rows


def print_claims(rows: list[dict]) -> None:
    print(f"{'backend':<28} {'claimers':>8} {'jobs':>7} {'claimed':>8} {'twice':>6} {'seconds':>8} "
          f"{'claims/s':>9}  per claimer")
    for r in rows:
        print(f"{r['backend']:<28} {r['claimers']:>8} {r['jobs']:>7} {r['claimed']:>8} {r['twice']:>6} "
              f"{r['seconds']:>8.2f} {r['claims_per_second']:>9.0f}  {r['per_claimer']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--claimers", type=int, default=4)
    args = parser.parse_args(argv)
    postgres = subprocess.run([str(PG_BIN_DIR / "postgres"), "--version"], capture_output=True, text=True)
    print(f"machine: {machine()}; {postgres.stdout.strip()} on 127.0.0.1, fsync on")
    print()
    rows = bench_claims(args.jobs, args.claimers)
    print_claims(rows)
    return 0 if all(r["twice"] == 0 and r["claimed"] == r["jobs"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
