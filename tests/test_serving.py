"""Serving from several API processes on one port (app.api.serving): every process answers, the
metrics add up over them, only the first runs jobs, and none outlives the first."""
from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app.testing import ServiceProcess, free_port, process_alive

REQUESTS = 40


def access_log_pids(service: ServiceProcess) -> list[int]:
    lines = service.log_path.read_text().splitlines()
    return [json.loads(line)["pid"] for line in lines if '"uvicorn.access"' in line]


def helper_pids(service: ServiceProcess) -> set[int]:
    started = re.findall(r"Started server process \[(\d+)\]", service.log_path.read_text())
    return {int(pid) for pid in started} - {service.process.pid}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServiceProcess(tmp_path_factory.mktemp("serving"), workers=1, env={"EPIPLEX_ACCESS_LOG": "true"}) as service:
        yield service


def test_every_api_process_answers_and_metrics_count_them_all(server):
    for _ in range(REQUESTS):  # a new connection each: the kernel spreads connections, not requests
        assert httpx.get(f"{server.url}/v1/datasets").status_code == 200
    pids = access_log_pids(server)
    assert len(set(pids)) == 2 and server.process.pid in pids, f"requests by process: {pids}"
    for _ in range(4):  # whichever process answers the scrape reports the sum
        metrics = httpx.get(f"{server.url}/metrics").text
        line = 'epiplex_http_requests_total{method="GET",route="/v1/datasets",status="200"}'
        assert f"{line} {float(REQUESTS)}" in metrics, [m for m in metrics.splitlines() if line in m]


def test_readiness_from_a_helper_names_the_first_process_as_the_executor(server):
    answers = {httpx.get(f"{server.url}/readyz").json()["detail"]["executor"] for _ in range(REQUESTS)}
    assert answers == {"local", f"local, in the first API process (pid {server.process.pid})"}, answers


def test_helpers_die_with_a_killed_server_and_the_port_is_free_again(tmp_path):
    service = ServiceProcess(tmp_path, workers=0).start()
    helpers = helper_pids(service)
    assert len(helpers) == 1, service.log_tail()
    service.kill()  # SIGKILL: no clean-up code runs in the first process
    deadline = time.monotonic() + 10
    while any(process_alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(process_alive(pid) for pid in helpers), "a helper outlived the killed server"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", service.port))  # nothing holds the port


def test_one_api_process_starts_no_helper(tmp_path):
    with ServiceProcess(tmp_path, workers=0, env={"EPIPLEX_API_PROCESSES": "1"}) as service:
        assert httpx.get(f"{service.url}/v1/datasets").status_code == 200
        assert helper_pids(service) == set()


def test_a_port_in_use_is_a_one_line_error(tmp_path):
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--data-dir",
                               str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"epiplex serve: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_a_stopped_server_stops_its_helpers(tmp_path):
    service = ServiceProcess(tmp_path, workers=0).start()
    helpers = helper_pids(service)
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    assert helpers and not any(process_alive(pid) for pid in helpers)
    stopped = [json.loads(line)["pid"] for line in service.log_path.read_text().splitlines()
               if "Finished server process" in line]
    assert helpers <= set(stopped), "a helper was killed instead of finishing its requests"
