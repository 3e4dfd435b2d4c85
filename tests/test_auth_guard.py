"""The loopback guard of a key-free server: Host must be a loopback name (DNS rebinding), keyless
state changes need a non-simple content type and no foreign Origin (cross-site requests), a
non-loopback bind needs a key, and keys switch on as soon as one exists."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from app.auth.cli import open_bind_refusal, open_sessions
from app.auth.guard import KEY_CHECK_SECONDS
from app.auth.keys import create_key
from app.core.settings import Settings
from app.testing import ServiceProcess, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServiceProcess(tmp_path_factory.mktemp("guard"), workers=0) as service:
        yield service
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


def count(http) -> int:
    return http.get("/v1/datasets").json()["total"]


def test_a_non_loopback_host_header_is_421_on_every_path(http, server):
    for path in ("/v1/datasets", "/healthz", "/docs"):
        response = http.get(path, headers={"Host": f"attacker.example:{server.port}"})
        assert response.status_code == 421, path
        assert "'attacker.example:" in response.json()["detail"] and "not a loopback name" in response.json()["detail"]
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost", f"[::1]:{server.port}"):
        assert http.get("/v1/datasets", headers={"Host": host}).status_code == 200, host


def test_the_quick_start_needs_no_key_and_stores_public_data(http):
    created = http.post("/v1/datasets", content=os.urandom(500), headers={"content-type": "application/octet-stream"})
    assert created.status_code == 201 and created.json()["visibility"] == "public"
    job = http.post("/v1/jobs", json={"dataset_id": created.json()["id"]})
    assert job.status_code == 202
    assert http.post(f"/v1/jobs/{job.json()['id']}/cancel").status_code == 200  # no body, no type needed


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "text/csv"])
def test_a_keyless_upload_a_browser_could_forge_is_415_and_stores_nothing(http, content_type):
    before = count(http)
    headers = {"content-type": content_type} if content_type else {}
    response = http.post("/v1/datasets", content=b"x" * 300, headers=headers)
    assert response.status_code == 415, response.text
    assert "application/octet-stream" in response.json()["detail"]
    assert count(http) == before


def test_a_json_body_sent_as_text_plain_is_415(http):
    response = http.post("/v1/jobs", content=b'{"dataset_id": "x"}', headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_a_cross_origin_state_change_is_403_even_as_multipart(http, server):
    before = count(http)
    foreign = http.post("/v1/datasets", files={"file": ("a.bin", os.urandom(300))},
                        headers={"Origin": "http://attacker.example"})
    assert foreign.status_code == 403 and "cross-origin" in foreign.json()["detail"]
    assert http.post("/v1/datasets", files={"file": ("a.bin", os.urandom(300))},
                     headers={"Origin": "null"}).status_code == 403
    assert count(http) == before
    same = http.post("/v1/datasets", files={"file": ("a.bin", os.urandom(300))}, headers={"Origin": server.url})
    assert same.status_code == 201
    assert http.get("/v1/datasets", headers={"Origin": "http://attacker.example"}).status_code == 200  # reads pass


def test_serve_refuses_a_non_loopback_address_without_a_key(tmp_path):
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port()),
                           "--data-dir", str(tmp_path), "--workers", "0"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epiplex serve: refusing to serve 0.0.0.0 without an API key")
    assert "--insecure-no-auth" in lines[0]


def test_a_non_loopback_bind_is_allowed_with_a_key_or_the_explicit_opt_out(tmp_path):
    assert open_bind_refusal(Settings(data_dir=tmp_path, host="::1")) is None
    assert open_bind_refusal(Settings(data_dir=tmp_path, host="0.0.0.0", insecure_no_auth=True)) is None
    assert "refusing" in open_bind_refusal(Settings(data_dir=tmp_path, host="192.0.2.1"))
    engine, sessions = open_sessions(Settings(data_dir=tmp_path))
    with sessions() as session:
        create_key(session, "ops", admin=True)
    engine.dispose()
    assert open_bind_refusal(Settings(data_dir=tmp_path, host="0.0.0.0")) is None


def test_keys_switch_on_once_one_exists_even_after_it_is_revoked(tmp_path):
    with ServiceProcess(tmp_path, workers=0) as service, httpx.Client(base_url=service.url, timeout=30) as http:
        assert http.get("/v1/datasets").status_code == 200
        engine, sessions = open_sessions(Settings(data_dir=tmp_path))
        with sessions() as session:
            secret = create_key(session, "first").secret
        time.sleep(KEY_CHECK_SECONDS)  # the guard looks for a first key at most this often
        assert http.get("/v1/datasets").status_code == 401
        assert http.get("/v1/datasets", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        from app.auth.keys import revoke_key

        with sessions() as session:
            revoke_key(session, "first")
        engine.dispose()
        assert http.get("/v1/datasets").status_code == 401, "revoking the last key must not open the service"
