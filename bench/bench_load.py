"""Load test: a mixed read + upload load at fixed request rates, with locust (headless, as a library).

    python bench/bench_load.py [--datasets 1000] [--seconds 12] [--rates 100 200 400]

Starts `epiplex serve` with its defaults (two API processes, one job worker, idle) on a free
127.0.0.1 port with a temp data dir, seeds --datasets datasets with succeeded results in the
database, then runs locust at each rate for --warmup + --seconds (3 x 15 s = 45 s of load): rate / 5
users, each sending 5 requests/s on its own Poisson schedule, so together they arrive as
independent clients do (`poisson_arrivals`).
Latencies count after the warm-up (fresh connections, threads and statement caches made the first
second of every run slow); errors count from the start. Mix per 10 requests: 4 leaderboard, 2 dataset list,
2 dataset reads, 1 job list, 1 upload (2-20 KB). Prints p50/p99 (ms) and errors per endpoint.
Goals (issue 10): 0 errors; leaderboard p99 < 50 ms at 200 requests/s on 2 cores.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # before anything opens sockets: locust's users are greenlets

import argparse  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
from locust import FastHttpUser, task  # noqa: E402
from locust.env import Environment  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from app.core.settings import Settings  # noqa: E402
from app.testing import ServiceProcess  # noqa: E402
from bench_service import seed_leaderboard  # noqa: E402
from machine import machine  # noqa: E402

PER_USER_RATE = 5.0
DATASET_COUNT = 1000


def poisson_arrivals(rate: float):
    """A user's wait before its next request: its requests follow a fixed Poisson schedule of
    `rate` per second that responses never shift, so many users arrive as independent clients do.

    Locust's `constant_throughput` paces each user from its last request's actual start instead.
    A pause anywhere (server or client) then makes every user that waited fire in the same
    instant, and they stay in step for the rest of the run: a burst of 30-40 requests within 10 ms
    every 200 ms (measured with tcpdump on loopback), not a rate of 200 requests/s.
    A request that starts behind its schedule (its user still waited for the one before) records
    by how much in LATE_STARTS: latencies count from the actual start."""
    def wait(user: "ApiUser") -> float:
        user.next_at += user.rng.expovariate(rate)
        delay = user.next_at - time.perf_counter()
        if delay < 0:
            LATE_STARTS.append(-delay)
        return max(0.0, delay)
    return wait


LATE_STARTS: list[float] = []  # seconds behind schedule, per late request of the current run


class ApiUser(FastHttpUser):
    wait_time = poisson_arrivals(PER_USER_RATE)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.next_at = time.perf_counter()

    @task(4)
    def leaderboard(self) -> None:
        self.client.get("/v1/leaderboard?limit=50", name="GET /v1/leaderboard")

    @task(2)
    def list_datasets(self) -> None:
        self.client.get(f"/v1/datasets?limit=50&offset={self.rng.randrange(0, 950)}", name="GET /v1/datasets")

    @task(2)
    def read_dataset(self) -> None:
        number = self.rng.randrange(DATASET_COUNT)
        self.client.get(f"/v1/datasets/ds_bench{number:06d}", name="GET /v1/datasets/{id}")

    @task(1)
    def list_jobs(self) -> None:
        self.client.get("/v1/jobs?limit=20", name="GET /v1/jobs")

    @task(1)
    def upload(self) -> None:
        data = self.rng.randbytes(self.rng.randint(2_000, 20_000))
        with self.client.post("/v1/datasets?name=load", data=data, name="POST /v1/datasets",
                              catch_response=True) as response:
            if response.status_code not in (200, 201):
                response.failure(f"upload answered {response.status_code}")


def run_rate(host: str, rate: int, seconds: float, warmup: float) -> list[tuple]:
    environment = Environment(user_classes=[ApiUser], host=host)
    runner = environment.create_local_runner()
    users = max(1, round(rate / PER_USER_RATE))
    runner.start(users, spawn_rate=users)  # all at once: the whole run is at the target rate
    gevent.sleep(warmup)
    warmup_failures = {entry.name: entry.num_failures for entry in environment.stats.entries.values()}
    environment.stats.reset_all()  # latencies from here on; failures are counted from the start
    LATE_STARTS.clear()
    gevent.sleep(seconds)
    runner.quit()
    late = sum(delay > 0.01 for delay in LATE_STARTS)
    rows = []
    for entry in sorted(environment.stats.entries.values(), key=lambda e: e.name):
        rows.append((rate, entry.name, entry.num_requests, entry.num_failures + warmup_failures.get(entry.name, 0),
                     entry.get_response_time_percentile(0.5), entry.get_response_time_percentile(0.99), ""))
    total = environment.stats.total
    rows.append((rate, f"ALL ({total.num_requests / seconds:.0f} req/s achieved)", total.num_requests,
                 total.num_failures + sum(warmup_failures.values()), total.get_response_time_percentile(0.5),
                 total.get_response_time_percentile(0.99), late))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=int, default=DATASET_COUNT)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds at each rate before latencies count")
    parser.add_argument("--rates", type=int, nargs="+", default=[100, 200, 400])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with ServiceProcess(Path(tmp) / "load") as service:
            seed_leaderboard(f"sqlite:///{service.data_dir / 'epiplex.db'}", args.datasets, random.Random(0))
            rows = [row for rate in args.rates for row in run_rate(service.url, rate, args.seconds, args.warmup)]
    print(f"Machine: {machine()}")
    print(f"Server: `epiplex serve` defaults ({Settings().api_processes} API processes, 1 job worker), "
          f"{args.datasets} datasets with results; {args.warmup:g} s warm-up then {args.seconds:g} s per rate "
          "(errors counted over both), loopback")
    print("| target req/s | endpoint | requests | errors | p50 ms | p99 ms | sent > 10 ms late |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rate, name, count, failures, p50, p99, late in rows:
        print(f"| {rate} | {name} | {count} | {failures} | {p50:.0f} | {p99:.0f} | {late} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
