"""The transfer and panel API against a real server with no workers: requests, errors, leaderboard.

Nothing trains here; where measured rows are needed the test writes them the way a worker does,
through `app.jobs.store`, so every figure read back is one that was stored.
"""
from __future__ import annotations

import os

import pytest
from sqlalchemy import select, update

from app.core.models import Dataset, Job, TransferRow
from app.jobs import store
from app.testing import ServiceProcess

BUILTIN_NAMES = {f"panel/{name}" for name in ("markov-order1", "markov-order3", "eca-rule54", "eca-rule30",
                                              "arithmetic", "toy-grammar", "python-stdlib", "docstrings")}


@pytest.fixture(scope="module")
def server(tmp_path_factory, module_database_url):
    with ServiceProcess(tmp_path_factory.mktemp("transfer-api"), workers=0,
                        env={"EPIPLEX_PANEL_BYTES": "2048", "EPIPLEX_DATABASE_URL": module_database_url}) as service:
        yield service
    # Bad input must be answered, never crash a handler: the log holds no errors at all.
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


def upload(http, data: bytes | None = None, name: str = "data") -> dict:
    response = http.post("/v1/datasets", params={"name": name}, content=data or os.urandom(4096),
                         headers={"content-type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    return response.json()


def panel_ids(http) -> dict[str, str]:
    response = http.get("/v1/panel")
    assert response.status_code == 200, response.text
    return {member["name"]: member["dataset_id"] for member in response.json()["items"]}


def scored_result(sha256: str, size: int, epiplexity_bpb: float, entropy_bpb: float) -> dict:
    """A scoring result in the estimator's contract, with a one-point curve."""
    figures = {"epiplexity_bits": epiplexity_bpb * size, "entropy_bits": entropy_bpb * size,
               "epiplexity_bits_per_byte": epiplexity_bpb, "entropy_bits_per_byte": entropy_bpb}
    return {**figures, "curve": [{"budget_flops": 1e12, **figures, "model": {"params": 10}, "ci95": None}],
            "baselines": {"zstd_bits_per_byte": 6.0, "lzma_bits_per_byte": 5.5},
            "dataset": {"bytes": size, "tokens": size, "sha256": sha256, "format": "bytes", "vocab_size": 256},
            "estimator": "prequential", "seeds": [0], "flops_spent": 1e12, "seconds": 1.0, "warnings": [],
            "version": "test", "preset": "quick"}


def transfer_row(warm_start_bpb: float, coded: int = 1000, scratch: float = 5000.0) -> dict:
    """Figures of a measured pair as `estimators.transfer.measure` reports them, for a warm start that
    saves `warm_start_bpb` bits per byte over scratch (negative: it cost bits)."""
    from estimators.transfer import mixture_code_bits

    warm = scratch - warm_start_bpb * coded
    saved = scratch - mixture_code_bits(scratch, warm)
    return {"transfer_bits": saved, "transfer_bits_per_byte": saved / coded, "scratch_code_bits": scratch,
            "transfer_code_bits": warm, "target_bytes_coded": coded, "target_tokens_coded": coded}


def play_worker(sessions, job_id: str, epiplexity_bpb: float, transfer_rows: dict[str, float] = {}) -> None:
    """Claim the job, store transfer rows for it and complete it with a result, as a worker would.

    `transfer_rows` maps each target to the warm start's bits per byte (see `transfer_row`)."""
    with sessions() as session:
        session.execute(update(Job).where(Job.status == "queued", Job.id != job_id).values(status="canceled"))
        job = session.get(Job, job_id)
        dataset = session.get(Dataset, job.dataset_id)
        session.commit()
    claim = store.claim_next(sessions)
    assert claim is not None and claim.job_id == job_id
    for target_id, bpb in transfer_rows.items():
        assert store.save_transfer(sessions, claim, {
            "source_dataset_id": job.dataset_id, "target_dataset_id": target_id, "preset": "quick", "seed": 0,
            "score_key": job.score_key, **transfer_row(bpb), "budget_flops": 1e9, "model": {"params": 10}})
    assert store.complete(sessions, claim, scored_result(dataset.sha256, dataset.bytes, epiplexity_bpb, 7.0), 1.0)


# --- the panel ------------------------------------------------------------------------------

def test_the_builtin_panel_is_stored_once_as_panel_datasets(http):
    first = http.get("/v1/panel").json()
    assert {m["name"] for m in first["items"]} >= BUILTIN_NAMES
    builtin = [m for m in first["items"] if m["builtin"]]
    assert len(builtin) == 8 and all(m["bytes"] == 2048 and m["description"] for m in builtin)
    assert http.get("/v1/panel").json() == first  # stored once: the same datasets every time
    datasets = {d["id"]: d for d in http.get("/v1/datasets", params={"limit": 500}).json()["items"]}
    assert all(datasets[m["dataset_id"]]["panel"] is True for m in builtin)
    content = http.get(f"/v1/datasets/{panel_ids(http)['panel/python-stdlib']}/content").content
    assert len(content) == 2048 and b"import" in content


def test_operators_add_and_remove_panel_members(http):
    dataset = upload(http, name="operator-target")
    added = http.post("/v1/panel", json={"dataset_id": dataset["id"], "description": "ours"})
    assert added.status_code == 201, added.text
    assert added.json() | {} == {"dataset_id": dataset["id"], "name": "operator-target", "description": "ours",
                                 "builtin": False, "bytes": 4096, "format": "bytes", "sha256": dataset["sha256"]}
    assert http.post("/v1/panel", json={"dataset_id": dataset["id"]}).status_code == 200
    assert dataset["id"] in panel_ids(http).values()
    assert http.get(f"/v1/datasets/{dataset['id']}").json()["panel"] is True

    assert http.delete(f"/v1/panel/{dataset['id']}").status_code == 204
    assert dataset["id"] not in panel_ids(http).values()
    again = http.delete(f"/v1/panel/{dataset['id']}")
    assert again.status_code == 404 and "is not in the panel" in again.json()["detail"]
    assert http.get(f"/v1/datasets/{dataset['id']}").status_code == 200  # the dataset itself stays


def test_a_removed_builtin_member_stays_removed(http):
    member = panel_ids(http)["panel/eca-rule30"]
    assert http.delete(f"/v1/panel/{member}").status_code == 204
    assert "panel/eca-rule30" not in panel_ids(http)
    assert http.post("/v1/panel", json={"dataset_id": member}).status_code == 201  # and back, as an operator's
    assert next(m for m in http.get("/v1/panel").json()["items"] if m["dataset_id"] == member)["builtin"] is False


@pytest.mark.parametrize("method, path, body, status, detail", [
    ("POST", "/v1/panel", {"dataset_id": "ds_nope"}, 404, "dataset 'ds_nope' not found"),
    ("POST", "/v1/panel", {}, 422, "dataset_id: Field required"),
    ("POST", "/v1/panel", {"dataset_id": "x", "colour": "red"}, 422, "colour: Extra inputs are not permitted"),
    ("DELETE", "/v1/panel/ds_nope", None, 404, "dataset 'ds_nope' not found"),
    ("GET", "/v1/datasets/ds_nope/transfer", None, 404, "dataset 'ds_nope' not found"),
    ("POST", "/v1/transfer", {"source": "ds_nope", "targets": "panel"}, 404, "source dataset 'ds_nope' not found"),
    ("POST", "/v1/transfer", {"source": "x", "targets": "all"}, 422, "targets"),
    ("POST", "/v1/transfer", {"source": "x"}, 422, "targets: Field required"),
])
def test_bad_panel_and_transfer_requests_get_clear_errors(http, method, path, body, status, detail):
    response = http.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


# --- transfer requests ----------------------------------------------------------------------

@pytest.mark.parametrize("transfer, status, detail", [
    (["ds_missing"], 404, "transfer target dataset(s) not found: 'ds_missing'"),
    ([], 422, "give at least one target dataset id"),
    ("yes", 422, "transfer"),
    ("self", 422, "cannot be its own transfer target"),
])
def test_bad_transfer_targets_in_a_job_get_clear_errors(http, transfer, status, detail):
    source = upload(http)
    body = {"dataset_id": source["id"], "transfer": [source["id"]] if transfer == "self" else transfer}
    response = http.post("/v1/jobs", json=body)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


def test_transfer_is_part_of_the_job_key_and_targets_are_queued_for_scoring(http, sessions):
    source, target = upload(http, name="src"), upload(http, name="tgt")
    plain = http.post("/v1/jobs", json={"dataset_id": source["id"], "budgets": [1e9]}).json()
    with_transfer = http.post("/v1/jobs", json={"dataset_id": source["id"], "budgets": [1e9],
                                                "transfer": [target["id"]]})
    assert with_transfer.status_code == 202
    job = with_transfer.json()
    assert job["id"] != plain["id"] and job["transfer"] == {"targets": [target["id"]], "preset": "quick"}
    repeat = http.post("/v1/transfer", json={"source": source["id"], "targets": [target["id"]], "budgets": [1e9]})
    assert repeat.status_code == 200 and repeat.json()["id"] == job["id"]
    with sessions() as session:
        jobs = session.scalars(select(Job).where(Job.dataset_id.in_([source["id"], target["id"]]))).all()
        assert len({j.score_key for j in jobs}) == 1  # one scoring setting shared by all three
        assert [(j.transfer, j.budgets) for j in jobs if j.dataset_id == target["id"]] == [(None, [1e9])]


def test_transfer_to_the_panel_targets_every_member_but_the_source(http, sessions):
    members = panel_ids(http)
    source = members["panel/toy-grammar"]
    response = http.post("/v1/transfer", json={"source": source, "targets": "panel", "preset": "quick"})
    assert response.status_code == 202, response.text
    assert response.json()["transfer"]["targets"] == sorted(set(members.values()) - {source})
    with sessions() as session:
        scored = set(session.scalars(select(Job.dataset_id).where(Job.transfer.is_(None), Job.preset == "quick")))
    assert scored >= set(members.values()) - {source}


# --- reading transfer -----------------------------------------------------------------------

def test_measured_rows_and_a_predictor_that_declines_with_too_few_pairs(http, sessions):
    source, near, far = upload(http, name="s"), upload(http, name="near"), upload(http, name="far")
    job = http.post("/v1/jobs", json={"dataset_id": source["id"], "preset": "standard",
                                      "transfer": [near["id"], far["id"]]}).json()
    play_worker(sessions, job["id"], 0.4, {near["id"]: 0.3, far["id"]: -0.2})
    body = http.get(f"/v1/datasets/{source['id']}/transfer").json()
    assert [(r["target_name"], r["transfer_bits_per_byte"], r["job_id"], r["preset"]) for r in body["measured"]] == \
        [("far", pytest.approx(-0.001), job["id"], "quick"), ("near", pytest.approx(0.299), job["id"], "quick")]
    far_row, near_row = body["measured"]
    assert near_row["transfer_bits"] == pytest.approx(299) and near_row["warm_start_bits"] == 300
    assert near_row["scratch_code_bits"] - near_row["transfer_code_bits"] == 300
    # the warm start cost `far` bits; a coder holding the source ignores it for one bit
    assert (far_row["warm_start_bits"], far_row["warm_start_bits_per_byte"]) == (-200, -0.2)
    assert far_row["transfer_bits"] == pytest.approx(-1.0)
    assert body["predictor"]["ready"] is False and body["predictor"]["quality"] is None
    assert "too few measured pairs" in body["predictor"]["message"]
    predicted = {p["target_dataset_id"]: p for p in body["predicted"]}
    assert set(predicted) >= set(panel_ids(http).values()) and near["id"] not in predicted
    assert all(p["predicted_transfer_bits_per_byte"] is None and "too few" in p["note"] for p in predicted.values())
    asked = http.get(f"/v1/datasets/{source['id']}/transfer", params={"targets": f"{near['id']},ds_gone"})
    assert asked.status_code == 404 and "ds_gone" in asked.json()["detail"]


def test_the_leaderboard_sorts_by_mean_transfer_to_the_panel_with_unmeasured_last(http, sessions):
    members = list(panel_ids(http).values())[:2]
    good, poor, unmeasured = upload(http, name="good"), upload(http, name="poor"), upload(http, name="none")
    mixed = upload(http, name="mixed")  # helps one member; the other has byte values it never saw
    for dataset, rows in ((good, {members[0]: 0.5, members[1]: 0.3}), (poor, {members[0]: -0.1}), (unmeasured, {}),
                          (mixed, {members[0]: 0.5, members[1]: -3.3})):
        body = {"dataset_id": dataset["id"], "preset": "deep"}
        if rows:
            body["transfer"] = list(rows)
        job = http.post("/v1/jobs", json=body).json()
        play_worker(sessions, job["id"], 0.2, rows)
    board = http.get("/v1/leaderboard", params={"sort": "mean_transfer_bits_per_byte", "preset": "deep"}).json()
    entries = [(e["name"], e["mean_transfer_bits_per_byte"], e["transfer_panel_targets"]) for e in board["items"]]
    # The mean is of the bits holding the model saves: a -3.3 bits/byte warm start counts as the
    # one bit of ignoring the model, not as -3.3.
    assert entries == [("good", pytest.approx(0.399), 2), ("mixed", pytest.approx((0.499 - 0.001) / 2), 2),
                       ("poor", pytest.approx(-0.001), 1), ("none", None, 0)]
    ascending = http.get("/v1/leaderboard", params={"sort": "mean_transfer_bits_per_byte", "order": "asc",
                                                    "preset": "deep"}).json()
    assert [e["name"] for e in ascending["items"]] == ["poor", "mixed", "good", "none"]
    with sessions() as session:  # the rows are real rows, one per pair
        assert session.scalar(select(TransferRow.transfer_code_bits).where(
            TransferRow.source_dataset_id == poor["id"])) == 5100.0
