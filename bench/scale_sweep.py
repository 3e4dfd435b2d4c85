"""Scale-out benchmarks (issue 8).

    .venv/bin/python bench/bench_scale.py sweep [--mib 1] [--budget 1e11] [--seeds 4]

`bench_sweep`: one 4-run sweep (the quick preset's model size x 4 seeds) on 1 MiB of
text-like bytes, scored end to end through the service's executors: the local executor with one
worker process given one core, as each Ray worker has, then given both (the default on 2 cores: its
runs on two lanes), against the Ray executor on a local 2-CPU cluster whose runs each ask for 1 CPU
(two 1-CPU workers): first on the fresh cluster (its worker processes import torch), then a second
job on the same cluster, as a long-running cluster serves jobs. Prints submit-to-result wall time
and the ratios (goal: Ray >= 1.7x faster on 2 cores).
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.auth.access import Caller
from app.core.models import Dataset, Job  # noqa: E402
from app.core.settings import Settings  # noqa: E402
from app.jobs.service import submit_job  # noqa: E402
from app.jobs.settings import JobSettings  # noqa: E402
from app.services import Services  # noqa: E402
from machine import machine  # noqa: E402




def text_like(size: int, seed: int = 0) -> bytes:
    """Words from a small vocabulary: structure a model learns, unlike random bytes."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"etaoinshrdlucmfwy") for _ in range(rng.randint(2, 8))) for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + (b"\n" if rng.random() < 0.1 else b" ")
    return bytes(out[:size])


def _score_once(settings: Settings, data: bytes, job_settings: JobSettings) -> tuple[float, dict]:
    """Seconds from submit to succeeded for one job on a fresh service with `settings`."""
    services = Services.start(settings)
    try:
        writer = services.blobs.writer(len(data), keep_raw=False)
        try:
            writer.write(data)
            blob = writer.commit()
        finally:
            writer.close()
        with services.sessions() as session:
            session.add(Dataset(id="ds_bench", sha256=blob.sha256, format="bytes", name="bench",
                                bytes=blob.bytes, stored_bytes=blob.stored_bytes))
            session.commit()
            started = time.monotonic()
            job_id = submit_job(session, services, Caller(), "ds_bench", job_settings).job.id
        while True:
            with services.sessions() as session:
                job = session.get(Job, job_id)
                if job.status in ("succeeded", "failed", "canceled"):
                    if job.status != "succeeded":
                        raise RuntimeError(f"bench job {job.status}: {job.error}")
                    return time.monotonic() - started, job.result
            time.sleep(0.2)
    finally:
        services.stop()


def _local(cores: int) -> str:
    return f"local, 1 worker, {cores} core{'s' * (cores > 1)}"


def bench_sweep(mib: float = 1.0, budget: float = 1e11, seeds: int = 4) -> dict:
    import ray

    data = text_like(int(mib * (1 << 20)))
    job_settings = JobSettings(budgets=[budget], seeds=seeds)
    common = {"device": "cpu", "heartbeat_seconds": 1.0, "poll_seconds": 0.1, "stale_after_seconds": 600}
    rows = {}
    with tempfile.TemporaryDirectory() as root:
        for cores in (1, 2):  # one core, as each Ray worker has; then both, the default here
            local = Settings(data_dir=Path(root) / f"local-{cores}", executor="local", workers=1,
                             cores_per_worker=cores, **common)
            rows[_local(cores)] = _score_once(local, data, job_settings)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for cluster in ("cold", "warm"):  # a fresh cluster, then the same one for a second job
                on_ray = Settings(data_dir=Path(root) / f"ray-{cluster}", executor="ray", workers=1,
                                  ray_cpus_per_run=1, **common)
                rows[f"ray, {cluster} cluster"] = _score_once(on_ray, data, job_settings)
        finally:
            ray.shutdown()
    local_result = rows[_local(1)][1]
    transformer = sum(run.get("family") == "transformer" for run in local_result["runs"])
    counting = len(local_result["runs"]) - transformer
    print(f"sweep: {transformer} transformer runs ({seeds} seeds x {transformer // seeds} sizes) and "
          f"{counting} count-family runs, {mib:g} MiB, budget {budget:.0e} FLOPs")
    print(f"machine: {machine()}")
    print(f"{'executor':<28}{'seconds':>9}{'S bits':>12}")
    for name, (seconds, result) in rows.items():
        print(f"{name:<28}{seconds:>9.1f}{result['epiplexity_bits']:>12.0f}")
    ratios = {}
    for cores in (1, 2):
        ratios[cores] = {cluster: rows[_local(cores)][0] / rows[f"ray, {cluster} cluster"][0] for cluster in ("cold", "warm")}
        print(f"speed-up over {cores} local core{'s' * (cores > 1)}: {ratios[cores]['cold']:.2f}x cold cluster, "
              f"{ratios[cores]['warm']:.2f}x warm   goal >= 1.7x")
    return {"seconds": {name: row[0] for name, row in rows.items()}, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="local executor vs Ray on a 4-run sweep")
    sweep.add_argument("--mib", type=float, default=1.0)
    sweep.add_argument("--budget", type=float, default=1e11, help="the sweep's one budget, FLOPs")
    sweep.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args(argv)
    if args.command == "sweep":
        bench_sweep(args.mib, args.budget, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
