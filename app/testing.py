"""Run the real service as a subprocess on a free loopback port (for tests and the bench)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.client import EpiplexClient

# Short timings so crash and restart scenarios play out in seconds, not minutes; stale after
# 20 s because a worker on a busy 2-core machine can take 5 s or more to import torch.
FAST_TIMINGS = {"EPIPLEX_HEARTBEAT_SECONDS": "0.5", "EPIPLEX_STALE_AFTER_SECONDS": "20",
                "EPIPLEX_POLL_SECONDS": "0.1", "EPIPLEX_DEVICE": "cpu"}


def process_alive(pid: int) -> bool:
    """Whether any thread of the process still runs (Linux /proc). A killed process's main thread
    can be a zombie while another thread is still exiting and holding its files, sockets included."""
    states = []
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            pass  # that thread is gone
    return any(state not in ("Z", "X") for state in states)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServiceProcess:
    """`epiplex serve` in a child process, bound to 127.0.0.1; a context manager that stops it."""

    def __init__(self, data_dir: Path, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.workers = workers
        self.env = {**os.environ, **FAST_TIMINGS, "EPIPLEX_ACCESS_LOG": "false", **(env or {})}
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def database_url(self) -> str:
        """The database the server uses: EPIPLEX_DATABASE_URL, or its SQLite file."""
        return self.env.get("EPIPLEX_DATABASE_URL") or f"sqlite:///{self.data_dir / 'epiplex.db'}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 60.0) -> EpiplexClient:
        return EpiplexClient(self.url, timeout=timeout)

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--workers", str(self.workers)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """Graceful stop (SIGTERM): running jobs go back to the queue."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode if self.process else None

    def kill(self) -> None:
        """Abrupt stop (SIGKILL), as in a power cut; workers notice and exit on their own."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServiceProcess:
        # `with ServiceProcess(...).start() as s` must not start a second server (it leaked one)
        running = self.process is not None and self.process.poll() is None
        return self if running else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
