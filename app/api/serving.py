"""Serving the API from one or more processes on one port.

One Python process answers HTTP on about one core (the GIL), so `api_processes` > 1 adds helper
processes. The first process is the service: it migrates the database, clears what a crash left,
collects garbage and runs the job executor. Helpers only answer HTTP: each is started once the
first is ready (so nothing it stores can be cleared as a crash's leftovers) and dies with the
first process (PR_SET_PDEATHSIG), so a kill -9 leaves nothing serving. The first process finishes
starting (and /readyz answers) once its helpers serve: connections made earlier, kept alive,
would all stay with the first.

All of them bind the port with SO_REUSEPORT, so the kernel spreads connections evenly (one shared
socket let the busiest process accept most keep-alive connections). The port is first bound
without it, so a port already in use, by anything, still fails the start.

HTTP metrics are summed over the processes (prometheus_client's multiprocess mode, files under
DATA_DIR/metrics). Per-key rate limits are counted by each process on its own. Everything else
lives in the database or the blob store.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from app.core.settings import Settings

log = logging.getLogger("epiplex.serve")
PR_SET_PDEATHSIG = 1
HELPER_START_SECONDS = 60
HELPER_STOP_SECONDS = 10


def reserve_port(settings: Settings) -> Settings:
    """The settings with the port to serve on (a free one for port 0); OSError if it is taken."""
    with _bind(settings.host, settings.port, reuse_port=False) as probe:
        return settings.model_copy(update={"port": probe.getsockname()[1]})


def serve(settings: Settings) -> None:
    """Run the service (and its helper processes) on `reserve_port`'s port until stopped."""
    if sys.platform != "linux" and settings.api_processes > 1:
        # Spreading connections (SO_REUSEPORT) and dying with the parent (PR_SET_PDEATHSIG) are Linux's.
        log.info("one API process: helper processes need Linux", extra={"platform": sys.platform})
        settings = settings.model_copy(update={"api_processes": 1})
    if settings.api_processes > 1:
        _share_metrics(settings.data_dir / "metrics")
    from app.api.app import create_app

    helpers = ApiHelpers(settings)

    def started() -> None:
        helpers.start()
        _freeze_startup_objects()

    # Stopped in the lifespan: after a graceful shutdown uvicorn re-raises SIGTERM, and no `finally` runs.
    _run_uvicorn(create_app(settings, on_started=started, on_stopping=helpers.stop), settings)


def _freeze_startup_objects() -> None:
    """Keep what starting made (modules, app, ORM mappings) out of the garbage collector's full
    passes, which then scan only what requests made since: under `bench/bench_load.py` at 200
    requests/s they paused a process for 101 ms on average (at most 128), 12 ms (at most 21) after."""
    gc.freeze()


def _share_metrics(directory: Path) -> None:
    """prometheus_client chooses how to keep values when it is imported: this must come first."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("metrics are shared between processes only if set up before prometheus_client is imported")
    shutil.rmtree(directory, ignore_errors=True)  # counts of an earlier run
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())  # helpers inherit it


def _bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048, reuse_port=reuse_port)


class ApiHelpers:
    """The helper processes of one server: started when it is ready, stopped when it stops."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.processes: list[multiprocessing.Process] = []

    def start(self) -> None:
        # spawn, never fork: a forked copy of a threaded process (executor, pools) can hang.
        context = multiprocessing.get_context("spawn")
        started = []
        for number in range(1, self.settings.api_processes):
            ready = context.Event()
            process = context.Process(target=_serve_helper, name=f"epiplex-api-{number}", daemon=True,
                                      args=(self.settings, os.getpid(), ready))
            process.start()
            self.processes.append(process)
            started.append(ready)
        deadline = time.monotonic() + HELPER_START_SECONDS
        for ready, process in zip(started, self.processes):  # a helper that fails to start is not waited for
            while not ready.wait(0.1) and process.is_alive() and time.monotonic() < deadline:
                pass
        serving = sum(ready.is_set() for ready in started)
        if serving < len(started):
            log.warning("API helper processes not serving", extra={"started": len(started), "serving": serving})
        elif started:
            log.info("API helper processes serving", extra={"count": serving})

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process in self.processes:
            process.join(HELPER_STOP_SECONDS)
            if process.is_alive():
                process.kill()


def _serve_helper(settings: Settings, parent_pid: int, ready) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the first process died before the line above took effect
        return
    from app.api.app import create_app
    from app.core.logs import setup_logging

    setup_logging(settings.log_level)

    def started() -> None:
        _freeze_startup_objects()
        ready.set()

    _run_uvicorn(create_app(settings, primary=False, on_started=started), settings)


def _run_uvicorn(app, settings: Settings) -> None:
    import uvicorn

    config = uvicorn.Config(app, log_config=None, access_log=settings.access_log, timeout_graceful_shutdown=10)
    uvicorn.Server(config).run(sockets=[_bind(settings.host, settings.port, reuse_port=settings.api_processes > 1)])
