"""A real S3-compatible server for tests: moto's standalone `moto_server` on a free loopback port."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.testing import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "epiplex-test", "AWS_SECRET_ACCESS_KEY": "epiplex-test",
               "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer:
    """`moto_server` in a child process; `env(bucket)` gives the service settings that use it."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        binary = Path(sys.executable).with_name("moto_server")
        if not binary.exists() and shutil.which("moto_server") is None:
            raise RuntimeError("moto_server not found: install the test extra "
                               "(pip install -e '.[test]', which brings moto[server])")
        command = str(binary) if binary.exists() else "moto_server"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(self.port)],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.process.returncode}: "
                                   f"{self.log_path.read_text()[-2000:]}")
            try:
                httpx.get(self.url, timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def env(self, bucket: str, prefix: str = "epiplex") -> dict[str, str]:
        return {**CREDENTIALS, "EPIPLEX_BLOB_URL": f"s3://{bucket}/{prefix}", "EPIPLEX_S3_ENDPOINT_URL": self.url}

    def use_credentials(self) -> None:
        """Put the test credentials into this process's environment (boto3 reads them there)."""
        os.environ.update(CREDENTIALS)
