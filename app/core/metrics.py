"""Prometheus metrics: HTTP traffic counted where it is served, job figures from the durable rows.

Job counts and durations come from the database at scrape time, so they are right after a
restart and whichever executor or process ran the jobs. With several API processes
(`app.api.serving`), HTTP counters use prometheus_client's multiprocess mode: each process writes
its own files under PROMETHEUS_MULTIPROC_DIR and a scrape, whichever process answers it, sums them.
"""
from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import case, func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.models import JOB_STATUSES, Dataset, Job

JOB_SECONDS_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class JobCollector:
    """Jobs by status, queue depth, job seconds (succeeded jobs), datasets and stored bytes."""

    def __init__(self, services) -> None:
        self._services = services

    def collect(self):
        with self._services.sessions() as session:
            by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            seconds = session.execute(select(
                func.count(Job.seconds), func.coalesce(func.sum(Job.seconds), 0.0),
                *[func.coalesce(func.sum(case((Job.seconds <= bound, 1), else_=0)), 0)
                  for bound in JOB_SECONDS_BUCKETS]).where(Job.status == "succeeded")).one()
            datasets, stored = session.execute(select(
                func.count(), func.coalesce(func.sum(Dataset.stored_bytes), 0))).one()
        jobs = GaugeMetricFamily("epiplex_jobs", "Jobs by status.", labels=["status"])
        for status in JOB_STATUSES:
            jobs.add_metric([status], by_status.get(status, 0))
        yield jobs
        yield GaugeMetricFamily("epiplex_queue_depth", "Jobs waiting for a worker.", value=by_status.get("queued", 0))
        count, total, *cumulative = seconds
        buckets = [(str(float(b)), c) for b, c in zip(JOB_SECONDS_BUCKETS, cumulative)] + [("+Inf", count)]
        yield HistogramMetricFamily("epiplex_job_seconds", "Wall-clock seconds of succeeded jobs.",
                                    buckets=buckets, sum_value=total)
        yield GaugeMetricFamily("epiplex_datasets", "Datasets stored.", value=datasets)
        yield GaugeMetricFamily("epiplex_stored_bytes", "Bytes of datasets at rest (compressed).", value=stored)
        # From the rows, not the executor: any API process may answer the scrape, and only one runs it.
        yield GaugeMetricFamily("epiplex_workers_busy", "Workers running a job now (one job each).",
                                value=by_status.get("running", 0))


def scrape_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What /metrics reports: this process's registry, or every process's files when shared
    (`app.api.serving` sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return own
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


class HttpMetrics:
    """ASGI middleware counting requests and their latency by route template (not raw path)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter("epiplex_http_requests", "HTTP requests.", ["method", "route", "status"],
                                registry=registry)
        self.latency = Histogram("epiplex_http_request_seconds", "HTTP request latency until the response "
                                 "starts.", ["method", "route"], registry=registry)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status_code = 500

        async def send_wrapper(message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                self.latency.labels(scope["method"], path).observe(time.perf_counter() - started)
                self.requests.labels(scope["method"], path, str(status_code)).inc()
            await send(message)

        await self.app(scope, receive, send_wrapper)
