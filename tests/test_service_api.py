"""The HTTP API against a real server (no workers): datasets, jobs, errors, operations.

Jobs here never run (workers=0); where a result is needed, the test plays the worker through
`app.jobs.store`, the same functions a real worker calls.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import time

import httpx
import numpy as np
import pytest

from sqlalchemy import update

import estimators
from app.core.models import Job, utcnow
from app.jobs import store
from app.jobs.settings import JobSettings, config_key
from app.testing import ServiceProcess

MAX_UPLOAD = 256 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory, module_database_url):
    with ServiceProcess(tmp_path_factory.mktemp("api"), workers=0,
                        env={"EPIPLEX_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
                             "EPIPLEX_DATABASE_URL": module_database_url}) as service:
        yield service
    # Bad input must be answered, never crash a handler: the log holds no errors at all.
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


def upload(http, data: bytes, **params) -> httpx.Response:
    return http.post("/v1/datasets", params=params, content=data, headers={"content-type": "application/octet-stream"})


def fake_result(sha256: str, size: int, epiplexity_bpb: float, entropy_bpb: float) -> dict:
    """A result in the estimator's contract, with a two-point curve."""
    def point(budget, s, h):
        return {"budget_flops": budget, "epiplexity_bits": s * size, "entropy_bits": h * size,
                "epiplexity_bits_per_byte": s, "entropy_bits_per_byte": h,
                "model": {"params": 1000, "width": 32, "depth": 1, "context": 64}, "ci95": None}
    return {"epiplexity_bits": epiplexity_bpb * size, "entropy_bits": entropy_bpb * size,
            "epiplexity_bits_per_byte": epiplexity_bpb, "entropy_bits_per_byte": entropy_bpb,
            "curve": [point(1e10, epiplexity_bpb / 2, entropy_bpb + 1), point(1e12, epiplexity_bpb, entropy_bpb)],
            "baselines": {"zstd_bits_per_byte": 6.0, "lzma_bits_per_byte": 5.5},
            "dataset": {"bytes": size, "tokens": size, "sha256": sha256, "format": "bytes", "vocab_size": 256},
            "estimator": "prequential", "seeds": [0], "flops_spent": 2e12, "seconds": 1.0,
            "warnings": [], "version": "test", "preset": "quick"}


# --- datasets -------------------------------------------------------------------------------

def test_raw_upload_returns_201_with_hash_size_and_name(http):
    data = os.urandom(10_000)
    response = upload(http, data, name="noise.bin", format="bytes")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (body["bytes"], body["name"], body["format"]) == (10_000, "noise.bin", "bytes")
    assert body["id"].startswith("ds_") and body["created_at"].endswith("Z")


def test_same_bytes_again_return_200_and_the_same_record(http):
    data = os.urandom(5000)
    first = upload(http, data, name="a")
    second = http.post("/v1/datasets", files={"file": ("other-name.bin", data)})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()


def test_same_bytes_in_another_format_are_another_dataset_sharing_the_blob(http, server):
    data = b"hello world\n" * 100
    as_bytes = upload(http, data, format="bytes").json()
    as_text = upload(http, data, format="text").json()
    assert as_bytes["id"] != as_text["id"] and as_bytes["sha256"] == as_text["sha256"]
    assert len(list((server.data_dir / "blobs").rglob(f"{as_bytes['sha256']}.zst"))) == 1


def test_multipart_upload_takes_the_file_name_and_compresses_at_rest(http):
    data = b"abcabcabc" * 5000
    response = http.post("/v1/datasets", params={"format": "text"}, files={"file": ("corpus.txt", data)})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "corpus.txt" and body["bytes"] == len(data)
    assert body["stored_bytes"] < len(data) // 20


def test_download_returns_exactly_the_uploaded_bytes(http):
    data = os.urandom(70_000)
    dataset = upload(http, data).json()
    response = http.get(f"/v1/datasets/{dataset['id']}/content")
    assert response.status_code == 200 and response.content == data


def test_list_is_paginated_newest_first(http):
    ids = [upload(http, os.urandom(100), name=f"page-{i}").json()["id"] for i in range(3)]
    page = http.get("/v1/datasets", params={"limit": 2}).json()
    assert page["limit"] == 2 and page["total"] >= 3 and len(page["items"]) == 2
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    next_page = http.get("/v1/datasets", params={"limit": 2, "offset": 2}).json()
    assert next_page["items"][0]["id"] == ids[0]


def test_delete_removes_record_jobs_and_unshared_blob(http, server):
    data = os.urandom(3000)
    dataset = upload(http, data).json()
    job = http.post("/v1/jobs", json={"dataset_id": dataset["id"]}).json()
    assert http.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    assert http.get(f"/v1/datasets/{dataset['id']}").status_code == 404
    assert http.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert not list((server.data_dir / "blobs").rglob(f"{dataset['sha256']}.zst"))
    assert upload(http, data).status_code == 201  # uploading again after a delete starts afresh


# --- bad input: never a 500 -----------------------------------------------------------------

def test_oversize_upload_is_413_with_a_message(http):
    for send in (lambda d: upload(http, d),  # Content-Length known up front
                 lambda d: http.post("/v1/datasets", content=iter([d[:1000], d[1000:]]),  # chunked
                                     headers={"content-type": "application/octet-stream"}),
                 lambda d: http.post("/v1/datasets", files={"file": ("big", d)})):
        response = send(os.urandom(MAX_UPLOAD + 1))
        assert response.status_code == 413, response.text
        assert str(MAX_UPLOAD) in response.json()["detail"]


def test_an_upload_cut_off_midway_stores_nothing(http, server):
    before = http.get("/v1/datasets").json()["total"]
    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"POST /v1/datasets?name=cut HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n")
        raw.sendall(os.urandom(30_000))
    time.sleep(0.5)
    assert http.get("/v1/datasets").json()["total"] == before
    assert not list((server.data_dir / "tmp").glob("upload-*"))


def test_a_long_file_name_is_cut_to_500_characters_and_an_overlong_format_is_422(http):
    # PostgreSQL enforces column widths that SQLite ignores: both must answer the same.
    response = http.post("/v1/datasets", files={"file": ("n" * 600 + ".bin", os.urandom(1000))})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "n" * 500
    response = upload(http, b'{"f": "x"}\n', format="jsonl:" + "f" * 250)
    assert response.status_code == 422 and "200 characters" in response.text, response.text


def test_upload_at_exactly_the_limit_is_accepted(http):
    assert http.post("/v1/datasets", content=iter([os.urandom(MAX_UPLOAD)]),
                     headers={"content-type": "application/octet-stream"}).status_code == 201


@pytest.mark.parametrize("fmt", ["weird", "jsonl", "csv:", "bytes:x"])
def test_unknown_format_is_422_with_a_message(http, fmt):
    response = upload(http, b"data", format=fmt)
    assert response.status_code == 422
    assert "format" in response.json()["detail"]


@pytest.mark.parametrize("fmt,data", [
    ("text", b"valid start \xff\xfe invalid utf-8"),
    ("jsonl:text", b"not json at all\n"),
    ("jsonl:text", b'{"other": "field"}\n'),
    ("csv:body", b"title,author\nx,y\n"),
    ("tokens", b"this is not a .npy file"),
])
def test_body_not_matching_its_format_is_422_with_a_message(http, fmt, data):
    response = upload(http, data, format=fmt)
    assert response.status_code == 422, response.text
    assert "does not match" in response.json()["detail"]


def test_matching_structured_formats_are_accepted(http):
    assert upload(http, b'{"text": "a"}\n{"text": "b"}\n', format="jsonl:text").status_code == 201
    assert upload(http, b"title,body\nx,hello\ny,world\n", format="csv:body").status_code == 201


def test_empty_upload_and_multipart_without_file_are_422(http):
    assert upload(http, b"").status_code == 422
    response = http.post("/v1/datasets", files={"not_file": ("x", b"abc")})
    assert response.status_code == 422 and "file" in response.json()["detail"]


def test_query_parameters_sent_as_form_fields_are_422_not_ignored(http):
    before = http.get("/v1/datasets").json()
    response = http.post("/v1/datasets", data={"format": "jsonl:text"},
                         files={"file": ("x.jsonl", b'{"text": "a"}\n')})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "form field(s) 'format' are not read from the body: give them in the query string "
        "(POST /v1/datasets?format=...); nothing was stored")
    assert http.get("/v1/datasets").json() == before
    other = http.post("/v1/datasets", data={"note": "kept out"}, files={"file": ("y.txt", b"abc")})
    assert other.status_code == 201 and other.json()["name"] == "y.txt"


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/datasets/ds_missing"), ("GET", "/v1/datasets/ds_missing/content"),
    ("DELETE", "/v1/datasets/ds_missing"), ("GET", "/v1/jobs/job_missing"),
    ("POST", "/v1/jobs/job_missing/cancel"), ("GET", "/v1/jobs/job_missing/events"),
])
def test_unknown_ids_are_404_with_a_message(http, method, path):
    response = http.request(method, path)
    assert response.status_code == 404
    assert "missing" in response.json()["detail"]


def test_job_for_unknown_dataset_is_404(http):
    response = http.post("/v1/jobs", json={"dataset_id": "ds_nope"})
    assert response.status_code == 404 and "ds_nope" in response.json()["detail"]


@pytest.mark.parametrize("body,needle", [
    (b'{"dataset_id": ', "JSON"),
    (b"[1, 2", "JSON"),
    (b"{}", "dataset_id"),
    (b'{"dataset_id": "x", "seeds": 0}', "seeds"),
    (b'{"dataset_id": "x", "budgets": [-1]}', "budgets"),
    (b'{"dataset_id": "x", "estimator": "guess"}', "estimator"),
    (b'{"dataset_id": "x", "colour": "red"}', "colour"),
])
def test_invalid_job_bodies_are_422_with_a_message(http, body, needle):
    response = http.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert needle.lower() in response.json()["detail"].lower()


def test_unknown_preset_and_preset_with_budgets_are_422(http):
    dataset = upload(http, os.urandom(64)).json()
    unknown = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "huge"})
    assert unknown.status_code == 422 and "quick" in unknown.json()["detail"]
    both = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "quick", "budgets": [1e9]})
    assert both.status_code == 422 and "not both" in both.json()["detail"]


def test_bad_query_parameters_are_422(http):
    assert http.get("/v1/leaderboard", params={"sort": "name"}).status_code == 422
    assert http.get("/v1/datasets", params={"limit": 0}).status_code == 422
    assert http.get("/v1/jobs", params={"status": "sleeping"}).status_code == 422


# --- jobs -----------------------------------------------------------------------------------

def test_job_is_queued_202_and_same_settings_return_it_200(http):
    dataset = upload(http, os.urandom(256)).json()
    first = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "quick"})
    assert first.status_code == 202
    job = first.json()
    assert (job["status"], job["progress"], job["attempts"], job["result"]) == ("queued", 0.0, 0, None)
    again = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "quick", "seeds": 1})
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    other = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "quick", "seeds": 2})
    assert other.status_code == 202 and other.json()["id"] != job["id"]
    by_budget = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "budgets": [1e10, 1e9, 1e10]})
    assert by_budget.status_code == 202 and by_budget.json()["budgets"] == [1e9, 1e10]


def test_default_preset_applies_when_neither_preset_nor_budgets_given(http):
    dataset = upload(http, os.urandom(300)).json()
    implicit = http.post("/v1/jobs", json={"dataset_id": dataset["id"]}).json()
    explicit = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "quick"})
    assert implicit["preset"] == "quick" and explicit.json()["id"] == implicit["id"]


def test_cancel_then_resubmit_queues_the_same_job_again(http):
    dataset = upload(http, os.urandom(400)).json()
    job = http.post("/v1/jobs", json={"dataset_id": dataset["id"]}).json()
    canceled = http.post(f"/v1/jobs/{job['id']}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    again = http.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "canceled" in again.json()["detail"]
    resubmitted = http.post("/v1/jobs", json={"dataset_id": dataset["id"]})
    assert resubmitted.status_code == 202
    assert (resubmitted.json()["id"], resubmitted.json()["status"]) == (job["id"], "queued")


def test_list_jobs_filters_by_status_and_dataset(http):
    dataset = upload(http, os.urandom(500)).json()
    kept = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "seeds": 1}).json()
    dropped = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "seeds": 3}).json()
    http.post(f"/v1/jobs/{dropped['id']}/cancel")
    mine = http.get("/v1/jobs", params={"dataset_id": dataset["id"]}).json()
    assert mine["total"] == 2
    queued = http.get("/v1/jobs", params={"dataset_id": dataset["id"], "status": "queued"}).json()
    assert [j["id"] for j in queued["items"]] == [kept["id"]]


def test_events_stream_progress_then_the_final_status(http):
    dataset = upload(http, os.urandom(600)).json()
    job = http.post("/v1/jobs", json={"dataset_id": dataset["id"]}).json()
    http.post(f"/v1/jobs/{job['id']}/cancel")
    with http.stream("GET", f"/v1/jobs/{job['id']}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    events = [block.split("\n") for block in text.strip().split("\n\n")]
    assert [lines[0] for lines in events] == ["event: progress", "event: canceled"]
    assert json.loads(events[-1][1].removeprefix("data: "))["status"] == "canceled"


# --- results and leaderboard ----------------------------------------------------------------

def _succeed(http, sessions, data: bytes, name: str, s_bpb: float, h_bpb: float, **job_settings) -> dict:
    """Upload `data`, queue a job and complete it as a worker would, with the given figures."""
    dataset = upload(http, data, name=name).json()
    job = http.post("/v1/jobs", json={"dataset_id": dataset["id"], **job_settings}).json()
    claim = store.Claim(job["id"], attempt=1, lease=1)
    with sessions() as session, session.begin():  # claim exactly this job, whatever else is queued
        session.execute(update(Job).where(Job.id == job["id"])
                        .values(status="running", attempts=1, lease=1, heartbeat_at=utcnow()))
    assert store.complete(sessions, claim, fake_result(dataset["sha256"], len(data), s_bpb, h_bpb), 1.5)
    return http.get(f"/v1/jobs/{job['id']}").json()


def test_succeeded_job_returns_the_result_unchanged_and_is_cached(http, sessions):
    data = os.urandom(700)
    job = _succeed(http, sessions, data, "cached", 0.5, 7.0)
    assert job["status"] == "succeeded" and job["progress"] == 1.0
    assert job["result"] == fake_result(job["result"]["dataset"]["sha256"], 700, 0.5, 7.0)
    again = http.post("/v1/jobs", json={"dataset_id": job["dataset_id"]})
    assert again.status_code == 200 and again.json()["result"] == job["result"]


def test_leaderboard_ranks_latest_results_and_filters_by_budget(http, sessions):
    low = _succeed(http, sessions, os.urandom(800), "lb-low", 0.1, 7.9, preset="standard")
    high = _succeed(http, sessions, os.urandom(800), "lb-high", 2.0, 3.0, preset="standard")
    board = http.get("/v1/leaderboard", params={"preset": "standard"}).json()
    assert [e["name"] for e in board["items"]] == ["lb-high", "lb-low"]
    top = board["items"][0]
    assert (top["rank"], top["job_id"], top["epiplexity_bits_per_byte"], top["entropy_bits_per_byte"],
            top["zstd_bits_per_byte"], top["bytes"]) == (1, high["id"], 2.0, 3.0, 6.0, 800)
    by_entropy = http.get("/v1/leaderboard", params={"preset": "standard", "sort": "entropy_bits_per_byte",
                                                     "order": "asc"}).json()
    assert [e["name"] for e in by_entropy["items"]] == ["lb-high", "lb-low"]
    at_budget = http.get("/v1/leaderboard", params={"preset": "standard", "budget": 1e10}).json()
    assert [(e["budget_flops"], e["epiplexity_bits_per_byte"]) for e in at_budget["items"]] == [(1e10, 1.0), (1e10, 0.05)]
    assert http.get("/v1/leaderboard", params={"preset": "standard", "budget": 5e10}).json()["total"] == 0
    # A newer result for the same dataset replaces the older one on the board.
    _succeed(http, sessions, os.urandom(800), "lb-low", 0.1, 7.9, preset="standard")
    newer = _succeed(http, sessions, bytes(low["result"]["dataset"]["sha256"], "ascii"), "lb-x", 9.0, 1.0,
                     preset="standard")
    board = http.get("/v1/leaderboard", params={"preset": "standard", "limit": 1}).json()
    assert board["total"] == 4 and board["items"][0]["job_id"] == newer["id"]


def test_a_job_of_fewer_families_ranks_only_in_the_views_of_the_families_it_ran(http, sessions):
    data = os.urandom(900)
    every = _succeed(http, sessions, data, "families", 0.5, 7.0, preset="standard")
    assert every["families"] is None
    listed = http.post("/v1/jobs", json={"dataset_id": every["dataset_id"], "preset": "standard",
                                         "families": ["context-mixing", "transformer"]})
    assert listed.status_code == 200 and listed.json()["id"] == every["id"]  # every family: the same job
    queued = http.post("/v1/jobs", json={"dataset_id": every["dataset_id"], "preset": "standard",
                                         "families": ["context-mixing"]})
    assert queued.status_code == 202 and queued.json()["families"] == ["context-mixing"]
    counting = queued.json()
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == counting["id"])
                        .values(status="running", attempts=1, lease=1, heartbeat_at=utcnow()))
    result = fake_result(every["result"]["dataset"]["sha256"], len(data), 0.1, 7.5)
    result["families"] = {"context-mixing": result["curve"]}
    assert store.complete(sessions, store.Claim(counting["id"], attempt=1, lease=1), result, 1.0)

    def ranked(**params) -> str:
        board = http.get("/v1/leaderboard", params={"preset": "standard", **params}).json()
        return next(e["job_id"] for e in board["items"] if e["dataset_id"] == every["dataset_id"])

    # The newer result pooled one family: the headline, a minimum over every family, keeps the older.
    assert ranked() == every["id"]
    assert ranked(family="context-mixing") == counting["id"]
    assert ranked(family="transformer") == every["id"]


@pytest.mark.parametrize("path, body", [
    ("/v1/jobs", {"transfer": True}),
    ("/v1/transfer", {"targets": "panel"}),
])
def test_transfer_without_the_transformer_family_is_422(http, path, body):
    dataset = upload(http, os.urandom(600), name="no-transformer").json()
    source = {"dataset_id": dataset["id"]} if path == "/v1/jobs" else {"source": dataset["id"]}
    response = http.post(path, json={**source, **body, "families": ["context-mixing"]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == ("transfer is measured with the source's trained transformer: include "
                                         "'transformer' in families, or leave families out")


def test_an_unknown_family_is_422_naming_the_choices(http):
    dataset = upload(http, os.urandom(500), name="unknown-family").json()
    response = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "families": ["lstm"]})
    assert response.status_code == 422
    assert "families.0: Input should be 'transformer' or 'context-mixing'" in response.json()["detail"]


# --- operations -----------------------------------------------------------------------------

def test_health_readiness_and_metrics(http):
    assert http.get("/healthz").json() == {"status": "ok", "detail": {}}
    ready = http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["detail"]["executor"].startswith("none")
    metrics = http.get("/metrics").text
    for name in ("epiplex_jobs{status=\"queued\"}", "epiplex_queue_depth", "epiplex_job_seconds_bucket",
                 "epiplex_http_requests_total", "epiplex_datasets"):
        assert name in metrics, name


def test_openapi_describes_every_result_field(http):
    schemas = http.get("/openapi.json").json()["components"]["schemas"]
    for model in ("DatasetOut", "JobOut", "LeaderboardEntry"):
        fields = schemas[model]["properties"]
        undocumented = [f for f, spec in fields.items() if "description" not in spec
                        and f not in ("created_at", "started_at", "finished_at", "dataset_id", "name", "estimator", "preset")]
        assert not undocumented, (model, undocumented)


# --- Python client --------------------------------------------------------------------------

def test_client_score_uploads_queues_and_gives_up_waiting_after_its_timeout(server):
    from app.client import EpiplexError, JobTimeout

    with server.client() as client:
        with pytest.raises(JobTimeout) as timed_out:  # no workers here: the job stays queued
            client.score(os.urandom(900), name="client", preset="quick", timeout=0.3)
        job = timed_out.value.job
        assert job.status == "queued" and client.get_job(job.id).dataset_id == job.dataset_id
        assert client.get_dataset(job.dataset_id).name == "client"
        with pytest.raises(EpiplexError) as missing:
            client.get_job("job_missing")
        assert missing.value.status_code == 404 and "job_missing" in missing.value.detail


# --- units and caches -----------------------------------------------------------------------

def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("array,message", [
    (np.array([0, 1, 70_000], dtype=np.int64), "token id 70,000 is above the largest allowed id, 65,535"),
    (np.array([5, 2 ** 40], dtype=np.int64), "token id 1,099,511,627,776 is above the largest allowed id"),
    (np.array([1, -2], dtype=np.int32), "token ids must be non-negative, found -2"),
    (np.array([0.5, 1.0]), "tokens must be an integer array, got dtype float64"),
    (np.zeros(0, dtype=np.uint16), "the token array is empty"),
])
def test_token_uploads_outside_the_vocabulary_contract_are_422_at_upload(http, array, message):
    response = upload(http, _npy(array), format="tokens")
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]


def test_the_vocabulary_cap_answer_says_how_to_fix_the_data(http):
    detail = upload(http, _npy(np.array([3, 5_000_000])), format="tokens").json()["detail"]
    assert "capped at 65,536 ids" in detail and "Remap the ids you use to 0..N-1" in detail
    at_the_cap = upload(http, _npy(np.array([0, 65_535, 7], dtype=np.uint16)), format="tokens")
    assert at_the_cap.status_code == 201, at_the_cap.text


@pytest.mark.parametrize("fmt,data", [
    ("jsonl:text", b'{"text": ""}\n{"text": ""}\n'),
    ("csv:body", b"id,body\n1,\n2,\n"),
])
def test_records_whose_values_are_all_empty_are_422(http, fmt, data):
    response = upload(http, data, format=fmt)
    assert response.status_code == 422, response.text
    assert "value is empty: there is nothing to code" in response.json()["detail"]


def test_a_result_cached_by_other_estimator_code_is_not_served(http, sessions):
    data = os.urandom(1100)
    dataset = upload(http, data, name="stale-code").json()
    current = JobSettings(preset="quick").resolved("quick")
    assert current["code"] == estimators.code_hash()
    stale = config_key({**current, "code": "0" * 64})
    with sessions() as session:
        session.add(Job(id="job_stale_code", dataset_id=dataset["id"], config_key=stale, score_key=stale,
                        preset="quick", estimator="prequential", seeds=1, status="succeeded", progress=1.0,
                        attempts=1, finished_at=utcnow(),
                        result=fake_result(dataset["sha256"], len(data), 0.5, 7.0)))
        session.commit()
    response = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "quick"})
    assert response.status_code == 202 and response.json()["id"] != "job_stale_code"
    with sessions() as session:
        assert session.get(Job, response.json()["id"]).config_key == config_key(current)


def test_leaderboard_shows_the_bytes_coded_beside_the_upload_size(http, sessions):
    data = b'{"text": "abcd", "id": 12345}\n' * 50
    dataset = upload(http, data, name="lb-coded", format="jsonl:text").json()
    job = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "preset": "deep"}).json()
    result = fake_result(dataset["sha256"], len(data), 0.5, 2.0)
    result["dataset"] |= {"bytes_coded": 4 * 50 + 2 * 49, "tokens": 4 * 50 + 2 * 49, "format": "jsonl:text"}
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == job["id"])
                        .values(status="running", attempts=1, lease=1, heartbeat_at=utcnow()))
    assert store.complete(sessions, store.Claim(job["id"], 1, 1), result, 1.0)
    entry = http.get("/v1/leaderboard", params={"preset": "deep"}).json()["items"][0]
    assert (entry["name"], entry["bytes"], entry["bytes_coded"]) == ("lb-coded", len(data), 298)
    assert http.get(f"/v1/jobs/{job['id']}").json()["result"]["dataset"]["bytes_coded"] == 298
