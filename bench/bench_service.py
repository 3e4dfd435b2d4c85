"""Service benchmark: upload throughput and leaderboard latency on loopback, against the real server.

    python bench/bench_service.py [--upload-mib 100] [--repeats 3] [--datasets 1000] [--requests 1000]

Starts `epiplex serve` (no workers) on a free 127.0.0.1 port with a temp data dir, then:
  * uploads --upload-mib MiB streamed in 1 MiB chunks (random bytes and text-like bytes), MB/s;
  * seeds --datasets datasets with succeeded results straight into the database (training
    1,000 jobs would measure the estimator, not the service) and times --requests leaderboard
    calls one after another (p50/p99), bounded by --max-seconds per phase.
Goals (issue 3): upload >= 200 MB/s, leaderboard p99 < 50 ms.
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db import make_engine, make_session_factory  # noqa: E402
from app.core.models import CurvePointRow, Dataset, Job, utcnow  # noqa: E402
from app.testing import ServiceProcess  # noqa: E402
from machine import machine  # noqa: E402

MIB = 1 << 20
BUDGETS = (1e9, 1e10, 1e11, 1e12)




def http_stack() -> str:
    """uvicorn picks httptools and uvloop when installed; without them uploads run ~1.5x slower."""
    import importlib.util

    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return f"uvicorn with {parser} + {loop}"


def text_like(size: int, rng: random.Random) -> bytes:
    words = [bytes(rng.choice(b"etaoinshrdlucmfwyp") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
    block = b" ".join(rng.choice(words) for _ in range(200_000))
    return (block * (size // len(block) + 1))[:size]


def time_upload(url: str, payload: bytes) -> float:
    """Seconds to stream `payload` in 1 MiB writes and get the 201 back.

    The stdlib client sends with little overhead of its own, so on a 2-core machine the figure
    is the server's, not the client's (httpx costs a core of its own at these rates).
    """
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
    view = memoryview(payload)
    started = time.perf_counter()
    connection.request("POST", "/v1/datasets?name=bench&format=bytes",
                       body=(view[i:i + MIB] for i in range(0, len(view), MIB)),
                       headers={"Content-Length": str(len(payload)), "Content-Type": "application/octet-stream"})
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    if response.status != 201:
        raise RuntimeError(f"upload failed: {response.status} {body[:200]!r}")
    return elapsed


def seed_leaderboard(database_url: str, count: int, rng: random.Random) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    now = utcnow()
    with sessions() as session:
        for i in range(count):
            size = rng.randint(10_000, 10_000_000)
            s_bpb, h_bpb = rng.uniform(0, 3), rng.uniform(0, 8)
            dataset_id, job_id = f"ds_bench{i:06d}", f"job_bench{i:06d}"
            session.add(Dataset(id=dataset_id, sha256=f"{i:064x}", format="bytes", name=f"dataset-{i}",
                                bytes=size, stored_bytes=size // 2, created_at=now))
            session.add(Job(id=job_id, dataset_id=dataset_id, config_key="bench", preset="quick",
                            estimator="prequential", seeds=1, status="succeeded", progress=1.0, attempts=1,
                            created_at=now, finished_at=now + timedelta(seconds=i), seconds=10.0,
                            result={"note": "seeded by bench"}, epiplexity_bits=s_bpb * size,
                            entropy_bits=h_bpb * size, epiplexity_bits_per_byte=s_bpb,
                            entropy_bits_per_byte=h_bpb, zstd_bits_per_byte=rng.uniform(h_bpb, 8.5)))
            for budget in BUDGETS:
                scale = BUDGETS.index(budget) / (len(BUDGETS) - 1)
                session.add(CurvePointRow(job_id=job_id, budget_flops=budget, epiplexity_bits=s_bpb * scale * size,
                                          entropy_bits=(h_bpb + 1 - scale) * size,
                                          epiplexity_bits_per_byte=s_bpb * scale,
                                          entropy_bits_per_byte=h_bpb + 1 - scale))
        session.commit()
    engine.dispose()


def time_requests(http: httpx.Client, params: dict, requests: int, max_seconds: float) -> list[float]:
    http.get("/v1/leaderboard", params=params).raise_for_status()  # warm-up
    latencies: list[float] = []
    deadline = time.monotonic() + max_seconds
    while len(latencies) < requests and time.monotonic() < deadline:
        started = time.perf_counter()
        response = http.get("/v1/leaderboard", params=params)
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upload-mib", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound per latency phase")
    args = parser.parse_args()
    rng = random.Random(0)
    rows: list[tuple[str, str, str]] = []

    with tempfile.TemporaryDirectory(prefix="epiplex-bench-") as tmp:
        service = ServiceProcess(Path(tmp), workers=0,
                                 env={"EPIPLEX_MAX_UPLOAD_BYTES": str((args.upload_mib + 1) * MIB)})
        with service, httpx.Client(base_url=service.url, timeout=300) as http:
            size = args.upload_mib * MIB
            for kind, payload in (("random bytes", os.urandom(size)), ("text-like bytes", text_like(size, rng))):
                payload = bytearray(payload)
                speeds = []
                for repeat in range(args.repeats):
                    payload[:8] = repeat.to_bytes(8, "little")  # new content each time: no dedup shortcut
                    speeds.append(size / time_upload(service.url, bytes(payload)) / 1e6)
                rows.append((f"upload {args.upload_mib} MiB, {kind} (MB/s)",
                             f"median {statistics.median(speeds):.0f}, best {max(speeds):.0f}", ">= 200"))

            seed_leaderboard(f"sqlite:///{Path(tmp) / 'epiplex.db'}", args.datasets, rng)
            for label, params in (("default sort", {}),
                                  ("at budget 1e11, by entropy", {"budget": 1e11, "sort": "entropy_bits_per_byte"})):
                latencies = time_requests(http, params, args.requests, args.max_seconds)
                rows.append((f"leaderboard, {args.datasets} datasets, {label} (ms)",
                             f"p50 {percentile(latencies, 50) * 1e3:.1f}, p99 {percentile(latencies, 99) * 1e3:.1f}"
                             f" ({len(latencies)} requests)", "p99 < 50"))

    print(f"machine: {machine()}")
    print(f"server:  {http_stack()}, SQLite (WAL), 127.0.0.1")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<38}  goal")
    for measure, result, goal in rows:
        print(f"{measure:<{width}}  {result:<38}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
