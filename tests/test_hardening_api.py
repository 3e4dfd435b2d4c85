"""Limits and error answers against a real server (no workers): every bad input is a 4xx that
says what to fix, never a 500, and nothing the client sent is echoed back raw."""
from __future__ import annotations

import io
import json
import socket
import time

import numpy as np
import pytest

from app.testing import ServiceProcess

JSON_LIMIT = 1 << 20  # the default

OCTET = {"content-type": "application/octet-stream"}  # raw uploads declare their type (CORS-safe)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServiceProcess(tmp_path_factory.mktemp("hardening"), workers=0) as service:
        yield service
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


@pytest.fixture(scope="module")
def dataset_id(server):
    import httpx

    response = httpx.post(f"{server.url}/v1/datasets", content=b"hardening " * 200, params={"name": "h"}, headers=OCTET)
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


def assert_422_shape(response, field: str) -> dict:
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"detail", "errors"} and isinstance(body["errors"], list)
    assert field in body["detail"], body
    return body


# --- integers beyond range, non-finite numbers ----------------------------------------------

@pytest.mark.parametrize("path", ["/v1/datasets", "/v1/jobs", "/v1/leaderboard"])
def test_offset_beyond_64_bits_is_422(http, path):
    body = assert_422_shape(http.get(path, params={"offset": str(2 ** 63)}), "offset")
    assert body["errors"][0]["loc"] == ["query", "offset"]
    assert "less than or equal to 1000000000" in body["detail"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize("template,field", [
    ('{{"dataset_id": "{ds}", "budgets": [{n}]}}', "budgets"),
    ('{{"dataset_id": "{ds}", "seeds": {n}}}', "seeds"),
])
def test_non_finite_job_settings_are_422_without_echo(http, dataset_id, number, template, field):
    response = http.post("/v1/jobs", content=template.format(ds=dataset_id, n=number),
                         headers={"content-type": "application/json"})
    assert_422_shape(response, field)
    assert all(raw not in response.text for raw in (number, "Infinity", "NaN", "inf,", "inf]"))


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e400"])
@pytest.mark.parametrize("template,field", [
    ('{{"dataset_id": "{ds}", "thresholds": {{"max_zstd_ratio": {n}}}}}', "max_zstd_ratio"),
    ('{{"dataset_id": "{ds}", "thresholds": {{"max_zstd_ratio": 1}}, "wait": {n}}}', "wait"),
])
def test_non_finite_vet_numbers_are_422_without_echo(http, dataset_id, number, template, field):
    response = http.post("/v1/vet", content=template.format(ds=dataset_id, n=number),
                         headers={"content-type": "application/json"})
    assert_422_shape(response, field)
    assert number not in response.text


@pytest.mark.parametrize("budget", ["inf", "nan", "1e400"])
def test_non_finite_leaderboard_budget_is_422(http, budget):
    assert_422_shape(http.get("/v1/leaderboard", params={"budget": budget}), "budget")


# --- body limits and echo ------------------------------------------------------------------------

def test_json_body_over_the_limit_is_413(http):
    huge = json.dumps({"dataset_id": "x" * (JSON_LIMIT + 10)})
    response = http.post("/v1/jobs", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert f"limit of {JSON_LIMIT} bytes" in response.json()["detail"]


def test_chunked_json_body_over_the_limit_is_413(http):
    def chunks():
        yield b'{"dataset_id": "'
        for _ in range(20):
            yield b"y" * (64 << 10)
        yield b'"}'

    response = http.post("/v1/panel", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_not_found_does_not_echo_a_long_id(http):
    long_id = "z" * 500_000
    response = http.post("/v1/jobs", json={"dataset_id": long_id})
    assert response.status_code == 404
    assert len(response.text) < 400 and "not found" in response.json()["detail"]


def test_malformed_json_is_422_in_the_documented_shape(http):
    response = http.post("/v1/jobs", content=b'{"dataset_id": ', headers={"content-type": "application/json"})
    body = assert_422_shape(response, "invalid JSON")
    assert body["errors"][0]["type"] == "json_invalid"


# --- uploads ---------------------------------------------------------------------------------------

def stored_state(http, server) -> tuple[int, list[str]]:
    total = http.get("/v1/datasets").json()["total"]
    leftovers = sorted(p.name for p in (server.data_dir / "tmp").iterdir())
    return total, leftovers


def test_truncated_multipart_is_400_and_stores_nothing(http, server):
    before = stored_state(http, server)
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n"
            + b"partial data " * 100)  # no closing boundary
    response = http.post("/v1/datasets", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert response.status_code == 400 and "closing boundary" in response.json()["detail"]
    assert stored_state(http, server) == (before[0], [])


def test_malformed_multipart_is_400(http):
    body = b"--XyZ\r\nNone--XyZ--\r\n"
    response = http.post("/v1/datasets", content=body, headers={"content-type": "multipart/form-data; boundary=XyZ"})
    assert response.status_code == 400 and "malformed multipart" in response.json()["detail"]


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("data,fmt,needle", [
    (b'{"text": ""}\n{"text": ""}\n', "jsonl:text", "every 'text' value is empty"),
    (b"text,other\n,1\n,2\n", "csv:text", "empty"),
    (npy_bytes(np.zeros(0, dtype=np.int32)), "tokens", "the token array is empty"),
])
def test_empty_content_is_422_at_upload(http, server, data, fmt, needle):
    before = stored_state(http, server)
    response = http.post("/v1/datasets", content=data, params={"format": fmt}, headers=OCTET)
    body = assert_422_shape(response, needle)
    assert body["errors"] == []
    assert stored_state(http, server) == (before[0], [])


# --- contract --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,allowed", [
    ("PUT", "/v1/datasets", "GET, POST"),
    ("POST", "/v1/datasets/ds_x", "DELETE, GET, PATCH"),
    ("DELETE", "/v1/jobs", "GET, POST"),
    ("HEAD", "/v1/jobs/job_x", "GET"),
])
def test_405_lists_every_allowed_method(http, method, path, allowed):
    response = http.request(method, path)
    assert response.status_code == 405 and response.headers["allow"] == allowed
    if method != "HEAD":
        assert method in response.json()["detail"]


def test_spec_documents_the_upload_body_and_error_shapes(http):
    spec = http.get("/openapi.json").json()
    upload = spec["paths"]["/v1/datasets"]["post"]
    assert set(upload["requestBody"]["content"]) == {"application/octet-stream", "multipart/form-data"}
    assert {"200", "201", "400", "413", "422"} <= set(upload["responses"])
    assert upload["responses"]["201"]["links"]["GetDataset"]["parameters"] == {"dataset_id": "$response.body#/id"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            invalid = operation["responses"].get("422")
            if invalid:
                assert invalid["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationErrorOut"), path
    assert "HTTPValidationError" not in spec["components"]["schemas"]


# --- health and waiting --------------------------------------------------------------------------

def test_healthz_runs_on_the_event_loop_and_readyz_checks_the_database(http):
    import inspect

    from app.api.routers import ops

    assert inspect.iscoroutinefunction(ops.healthz)  # never queued behind the thread pool's DB work
    assert http.get("/healthz").json() == {"status": "ok", "detail": {}}
    ready = http.get("/readyz").json()
    assert ready["status"] == "ok" and ready["detail"]["schema"]


def test_vet_wait_stops_when_the_client_hangs_up(server, dataset_id):
    body = json.dumps({"dataset_id": dataset_id, "budgets": [1e9], "thresholds": {"max_zstd_ratio": 1},
                       "wait": 300}).encode()
    request = (f"POST /v1/vet HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(request)
        time.sleep(1.0)  # the server is now polling for the verdict (no workers: it never comes)
    deadline = time.monotonic() + 20
    while "vet wait abandoned by the client" not in server.log_path.read_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)


def test_cached_leaderboard_follows_new_results_and_deletions(http, sessions):
    from sqlalchemy import update

    from app.core.models import Job, utcnow
    from app.jobs import store
    from test_service_api import fake_result

    before = http.get("/v1/leaderboard").json()["total"]
    data = b"cache me " * 300
    dataset = http.post("/v1/datasets", content=data, params={"name": "cached"}, headers=OCTET).json()
    job = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "budgets": [1e12]}).json()
    assert http.get("/v1/leaderboard").json()["total"] == before  # cached page, no result yet
    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job["id"]).values(status="running", attempts=1, lease=1,
                                                                      heartbeat_at=utcnow()))
    result = fake_result(dataset["sha256"], len(data), 1.25, 3.0)
    assert store.complete(sessions, store.Claim(job["id"], 1, 1), result, 1.0)
    board = http.get("/v1/leaderboard").json()
    assert board["total"] == before + 1
    assert [e["epiplexity_bits_per_byte"] for e in board["items"] if e["dataset_id"] == dataset["id"]] == [1.25]
    assert http.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert http.get("/v1/leaderboard").json()["total"] == before


def test_an_upload_alone_keeps_the_cached_leaderboard_valid(http, sessions):
    from app.api.leaderboard_cache import data_fingerprint

    with sessions() as session:
        before = data_fingerprint(session)
    assert http.post("/v1/datasets", content=b"not ranked yet " * 100, headers=OCTET).status_code == 201
    with sessions() as session:
        assert data_fingerprint(session) == before  # nothing new is listed until a job succeeds
