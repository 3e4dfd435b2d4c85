"""Web pages benchmark: leaderboard page server time with many datasets, and page weight with assets.

    python bench/bench_web.py [--datasets 1000] [--requests 200] [--max-seconds 60]

Starts `epiplex serve` (no workers) on a free 127.0.0.1 port with a temp data dir, seeds
--datasets datasets with succeeded results (full result documents with curves and per-family
curves, like real jobs write) straight into the database, then:
  * requests the leaderboard page (`/`) one after another and reads the app's own time from its
    `Server-Timing` header (p50/p99), for the default view, at a budget, and one observer family;
  * weighs each page with everything it loads (stylesheet, scripts, icon), uncompressed.
Goals (issue 9): leaderboard page < 100 ms server time with 1,000 datasets; page + assets < 300 KB.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import make_engine, make_session_factory  # noqa: E402
from app.core.models import CurvePointRow, Dataset, Job, utcnow  # noqa: E402
from app.testing import ServiceProcess  # noqa: E402
from bench.bench_service import percentile  # noqa: E402
from machine import machine  # noqa: E402

BUDGETS = (1e9, 1e10, 1e11, 1e12)
FAMILIES = ("transformer", "context-mixing")
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')


def curve(size: int, s_bpb: float, h_bpb: float, family: str | None) -> list[dict]:
    points = []
    for i, budget in enumerate(BUDGETS):
        scale = i / (len(BUDGETS) - 1)
        s, h = s_bpb * scale, h_bpb + 1 - scale
        points.append({"budget_flops": budget, "epiplexity_bits": s * size, "entropy_bits": h * size,
                       "epiplexity_bits_per_byte": s, "entropy_bits_per_byte": h, "ci95": None,
                       "model": {"params": 139904, "width": 64, "depth": 2, "context": 128},
                       **({"family": family} if family else {})})
    return points


def seed(database_url: str, count: int, rng: random.Random) -> None:
    """`count` datasets, each with one succeeded quick-preset job and a full result document."""
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    now = utcnow()
    with sessions() as session:
        for i in range(count):
            size = rng.randint(10_000, 10_000_000)
            s_bpb, h_bpb = rng.uniform(0, 3), rng.uniform(0, 7)
            dataset_id, job_id = f"ds_bench{i:06d}", f"job_bench{i:06d}"
            headline = curve(size, s_bpb, h_bpb, "transformer")
            result = {"epiplexity_bits": s_bpb * size, "entropy_bits": h_bpb * size,
                      "epiplexity_bits_per_byte": s_bpb, "entropy_bits_per_byte": h_bpb, "curve": headline,
                      "families": {f: curve(size, s_bpb * (1 - k / 3), h_bpb + k / 3, f) for k, f in enumerate(FAMILIES)},
                      "baselines": {"zstd_bits_per_byte": h_bpb + 0.5, "lzma_bits_per_byte": h_bpb + 0.4},
                      "dataset": {"bytes": size, "tokens": size, "sha256": f"{i:064x}", "format": "bytes",
                                  "vocab_size": 256},
                      "estimator": "prequential", "seeds": [0], "flops_spent": 1.5e12, "seconds": 20.0,
                      "warnings": [], "version": "bench", "preset": "quick", "runs": [], "frontier": []}
            session.add(Dataset(id=dataset_id, sha256=f"{i:064x}", format="bytes", name=f"dataset-{i}",
                                bytes=size, stored_bytes=size // 2, created_at=now))
            session.add(Job(id=job_id, dataset_id=dataset_id, config_key="bench", score_key="bench", preset="quick",
                            estimator="prequential", seeds=1, status="succeeded", progress=1.0, attempts=1,
                            created_at=now, finished_at=now + timedelta(seconds=i), seconds=20.0, result=result,
                            epiplexity_bits=s_bpb * size, entropy_bits=h_bpb * size, epiplexity_bits_per_byte=s_bpb,
                            entropy_bits_per_byte=h_bpb, zstd_bits_per_byte=h_bpb + 0.5))
            for point in headline:
                session.add(CurvePointRow(job_id=job_id, **{k: point[k] for k in (
                    "budget_flops", "epiplexity_bits", "entropy_bits", "epiplexity_bits_per_byte",
                    "entropy_bits_per_byte")}))
        session.commit()
    engine.dispose()


def server_ms(http: httpx.Client, path: str, params: dict, requests: int,
              max_seconds: float) -> tuple[list[float], list[float]]:
    """The app's own wall and CPU time per request (its Server-Timing header), after a warm-up request."""
    http.get(path, params=params).raise_for_status()
    wall: list[float] = []
    cpu: list[float] = []
    deadline = time.monotonic() + max_seconds
    while len(wall) < requests and time.monotonic() < deadline:
        response = http.get(path, params=params)
        response.raise_for_status()
        timings = dict(part.strip().split(";dur=") for part in response.headers["server-timing"].split(","))
        wall.append(float(timings["app"]))
        cpu.append(float(timings["cpu"]))
    return wall, cpu


def weight(http: httpx.Client, path: str) -> tuple[int, int]:
    """(bytes of the page, bytes of the page and every asset it loads), uncompressed."""
    page = http.get(path)
    page.raise_for_status()
    assets = sum(len(http.get(url).content) for url in sorted(set(ASSET.findall(page.text))))
    return len(page.content), len(page.content) + assets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound per latency phase")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="epiplex-bench-web-") as tmp:
        service = ServiceProcess(Path(tmp), workers=0)
        with service, httpx.Client(base_url=service.url, timeout=60) as http:
            seed(f"sqlite:///{Path(tmp) / 'epiplex.db'}", args.datasets, random.Random(0))
            for label, params in (("default view (100 rows)", {}),
                                  ("at budget 1e11, by S+H", {"budget": "1e11", "sort": "total_bits_per_byte"}),
                                  ("transformer family only", {"family": "transformer"})):
                wall, cpu = server_ms(http, "/", params, args.requests, args.max_seconds)
                rows.append((f"leaderboard page, {args.datasets} datasets, {label}: wall (ms)",
                             f"p50 {percentile(wall, 50):.1f}, p99 {percentile(wall, 99):.1f} ({len(wall)} requests)",
                             "< 100"))
                rows.append(("  same, CPU time of the server process (ms)",
                             f"p50 {percentile(cpu, 50):.1f}, p99 {percentile(cpu, 99):.1f}", "< 100"))
            first = "ds_bench000000"
            job = "job_bench000000"
            for label, path in (("leaderboard", "/"), ("dataset", f"/datasets/{first}"), ("job", f"/jobs/{job}"),
                                ("upload", "/upload"), ("vet", "/vet")):
                page_bytes, total = weight(http, path)
                rows.append((f"{label} page + assets (KB)", f"{total / 1000:.1f} (page {page_bytes / 1000:.1f})",
                             "< 300"))
    print(f"machine: {machine()}")
    print(f"load:    {os.getloadavg()[0]:.1f} (1-minute load average; above the core count, wall times "
          "mostly measure waiting for a core)")
    print("server:  epiplex serve, SQLite (WAL), 127.0.0.1; times from the app's Server-Timing header")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<40}  goal")
    for measure, result, goal in rows:
        print(f"{measure:<{width}}  {result:<40}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
