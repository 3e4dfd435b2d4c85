"""Access control against a real server with keys: 401 everywhere without one, ownership and
visibility (404 for what a key may not see, 403 for what it sees but may not change), the
leaderboard, per-owner dedup, the panel, keys revoked while the server runs, and the client and
CLI sending EPIPLEX_API_KEY."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from app.api.app import create_app
from app.auth import keys as keys_module
from app.auth.cli import open_sessions
from app.cli import main
from app.client import EpiplexClient, EpiplexError
from app.core.models import Job, utcnow
from app.core.settings import Settings
from app.jobs import store
from app.testing import ServiceProcess
from test_service_api import fake_result

RAW = {"content-type": "application/octet-stream"}


def epiplex(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """`epiplex ARGS` in this process (quicker than a subprocess): exit code, stdout, stderr."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def create_key(data_dir: Path, name: str, admin: bool = False) -> str:
    engine, sessions = open_sessions(Settings(data_dir=data_dir))
    with sessions() as session:
        secret = keys_module.create_key(session, name, admin=admin).secret
    engine.dispose()
    return secret


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("auth")
    names = ("alice", "bob", "root", "temp")
    return data_dir, {name: create_key(data_dir, name, admin=name == "root") for name in names}


@pytest.fixture(scope="module")
def server(keys):
    with ServiceProcess(keys[0], workers=0) as service:
        yield service
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


@pytest.fixture(scope="module")
def as_(server, keys):
    """as_["alice"]: an httpx client sending alice's key."""
    clients = {name: httpx.Client(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {secret}"})
               for name, secret in keys[1].items()}
    yield clients
    for client in clients.values():
        client.close()


def upload(client: httpx.Client, data: bytes, **params) -> httpx.Response:
    return client.post("/v1/datasets", params=params, content=data, headers=RAW)


# --- keys ---------------------------------------------------------------------------------

def test_keys_create_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash(tmp_path, capsys):
    done = epiplex("keys", "create", "ci-bot", "--data-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    secret = done.stdout.splitlines()[-1]
    assert re.fullmatch(r"epx_[A-Za-z0-9_-]{43}", secret), done.stdout
    database = (tmp_path / "epiplex.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("*-wal"))
    assert secret.encode() not in database and hashlib.sha256(secret.encode()).hexdigest().encode() in database
    code, listed, _ = cli(capsys, "keys", "list", "--data-dir", str(tmp_path))
    assert code == 0 and "ci-bot" in listed and "active" in listed and secret not in listed
    code, _, err = cli(capsys, "keys", "create", "ci-bot", "--data-dir", str(tmp_path))
    assert code == 2 and "already exists" in err


def test_keys_create_reads_the_data_dir_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EPIPLEX_DATA_DIR", str(tmp_path / "d"))
    code, out, err = cli(capsys, "keys", "create", "env-key", "--admin")
    assert code == 0 and out.splitlines()[-1].startswith("epx_") and "admin key 'env-key'" in err
    assert (tmp_path / "d" / "epiplex.db").is_file()
    assert re.search(r"env-key\s+admin", cli(capsys, "keys", "list")[1])


def test_every_v1_route_answers_401_without_a_key_and_health_stays_open(server):
    paths = create_app().openapi()["paths"]
    routes = [(method.upper(), path) for path, ops in paths.items() for method in ops if path.startswith("/v1")]
    assert len(routes) >= 15 and ("PATCH", "/v1/datasets/{dataset_id}") in routes
    with httpx.Client(base_url=server.url, timeout=30) as anonymous:
        for method, path in routes:
            response = anonymous.request(method, re.sub(r"\{[^}]+\}", "x", path), json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer" and "API key" in response.json()["detail"]
            wrong = anonymous.request(method, re.sub(r"\{[^}]+\}", "x", path), json={},
                                      headers={"Authorization": "Bearer epx_not-a-key"})
            assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"], (method, path)
        for path in ("/healthz", "/readyz", "/metrics"):
            assert anonymous.get(path).status_code == 200, path


def test_a_revoked_key_stops_working_at_once(server, keys, as_, capsys):
    assert as_["temp"].get("/v1/datasets").status_code == 200
    code, out, _ = cli(capsys, "keys", "revoke", "temp", "--data-dir", str(keys[0]))
    assert code == 0 and "revoked key 'temp'" in out
    response = as_["temp"].get("/v1/datasets")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert re.search(r"temp .* revoked \d{4}-", cli(capsys, "keys", "list", "--data-dir", str(keys[0]))[1])
    code, _, err = cli(capsys, "keys", "revoke", "nobody", "--data-dir", str(keys[0]))
    assert code == 2 and "key 'nobody' not found" in err


# --- ownership and visibility -------------------------------------------------------------

def test_a_private_dataset_is_404_to_other_keys_and_seen_by_its_owner_and_admins(as_):
    data = os.urandom(2000)
    mine = upload(as_["alice"], data, name="secret.bin")
    assert mine.status_code == 201 and mine.json()["visibility"] == "private"
    ds = mine.json()["id"]
    for method, path in (("GET", f"/v1/datasets/{ds}"), ("GET", f"/v1/datasets/{ds}/content"),
                         ("DELETE", f"/v1/datasets/{ds}"), ("GET", f"/v1/datasets/{ds}/transfer")):
        response = as_["bob"].request(method, path)
        assert response.status_code == 404 and response.json()["detail"] == f"dataset {ds!r} not found", path
    assert ds not in [d["id"] for d in as_["bob"].get("/v1/datasets", params={"limit": 500}).json()["items"]]
    assert as_["bob"].post("/v1/jobs", json={"dataset_id": ds}).status_code == 404
    vet = {"sha256": hashlib.sha256(data).hexdigest(), "thresholds": {"min_epiplexity_bits_per_byte": 0.1}}
    assert as_["bob"].post("/v1/vet", json=vet).status_code == 404
    assert as_["alice"].get(f"/v1/datasets/{ds}/content").content == data
    assert as_["root"].get(f"/v1/datasets/{ds}").status_code == 200
    assert ds in [d["id"] for d in as_["alice"].get("/v1/datasets", params={"limit": 500}).json()["items"]]


def test_jobs_of_a_private_dataset_are_404_to_other_keys(as_):
    ds = upload(as_["alice"], os.urandom(1500)).json()["id"]
    job = as_["alice"].post("/v1/jobs", json={"dataset_id": ds}).json()["id"]
    for method, path in (("GET", f"/v1/jobs/{job}"), ("POST", f"/v1/jobs/{job}/cancel"),
                         ("GET", f"/v1/jobs/{job}/events")):
        response = as_["bob"].request(method, path)
        assert response.status_code == 404 and response.json()["detail"] == f"job {job!r} not found", path
    assert job not in [j["id"] for j in as_["bob"].get("/v1/jobs", params={"limit": 500}).json()["items"]]
    assert as_["alice"].get(f"/v1/jobs/{job}").status_code == 200
    assert as_["bob"].post("/v1/transfer", json={"source": ds, "targets": "panel"}).status_code == 404
    bobs = upload(as_["bob"], os.urandom(1500)).json()["id"]
    refused = as_["bob"].post("/v1/jobs", json={"dataset_id": bobs, "transfer": [ds]})
    assert refused.status_code == 404 and ds in refused.json()["detail"]


def test_a_published_dataset_is_seen_by_all_but_changed_only_by_its_owner_or_an_admin(as_):
    ds = upload(as_["alice"], os.urandom(1200)).json()["id"]
    job = as_["alice"].post("/v1/jobs", json={"dataset_id": ds}).json()["id"]
    assert as_["bob"].patch(f"/v1/datasets/{ds}", json={"visibility": "public"}).status_code == 404
    published = as_["alice"].patch(f"/v1/datasets/{ds}", json={"visibility": "public"})
    assert published.status_code == 200 and published.json()["visibility"] == "public"
    assert as_["bob"].get(f"/v1/datasets/{ds}").status_code == 200
    assert as_["bob"].get(f"/v1/jobs/{job}").status_code == 200
    for response in (as_["bob"].delete(f"/v1/datasets/{ds}"), as_["bob"].post(f"/v1/jobs/{job}/cancel"),
                     as_["bob"].patch(f"/v1/datasets/{ds}", json={"visibility": "private"})):
        assert response.status_code == 403, response.text
        assert "key 'bob' may not change" in response.json()["detail"]
    assert as_["root"].post(f"/v1/jobs/{job}/cancel").status_code == 200
    assert as_["root"].delete(f"/v1/datasets/{ds}").status_code == 204


def test_the_same_bytes_from_another_key_are_its_own_record_sharing_one_blob(as_, server):
    data = os.urandom(3000)
    alices, bobs = upload(as_["alice"], data).json(), upload(as_["bob"], data)
    assert bobs.status_code == 201, "a 200 would tell bob that someone else has these bytes"
    assert bobs.json()["id"] != alices["id"] and bobs.json()["sha256"] == alices["sha256"]
    again = upload(as_["alice"], data)
    assert again.status_code == 200 and again.json()["id"] == alices["id"]
    assert len(list((server.data_dir / "blobs").rglob(f"{alices['sha256']}.zst"))) == 1
    assert as_["alice"].delete(f"/v1/datasets/{alices['id']}").status_code == 204
    assert as_["bob"].get(f"/v1/datasets/{bobs.json()['id']}/content").content == data  # the blob stayed


def _succeed(client: httpx.Client, sessions, name: str, s_bpb: float, **params) -> str:
    data = os.urandom(900)
    dataset = upload(client, data, name=name, **params).json()
    job = client.post("/v1/jobs", json={"dataset_id": dataset["id"]}).json()
    with sessions() as session, session.begin():
        session.execute(update(Job).where(Job.id == job["id"]).values(status="running", attempts=1, lease=1,
                                                                        heartbeat_at=utcnow()))
    assert store.complete(sessions, store.Claim(job["id"], 1, 1), fake_result(dataset["sha256"], 900, s_bpb, 6.0), 1.0)
    return dataset["id"]


def test_the_leaderboard_shows_public_datasets_and_the_callers_own(as_, sessions):
    public = _succeed(as_["alice"], sessions, "lb-public", 0.9, visibility="public")
    alices = _succeed(as_["alice"], sessions, "lb-alice", 0.8)
    bobs = _succeed(as_["bob"], sessions, "lb-bob", 0.7)

    def board(name: str) -> set[str]:
        page = as_[name].get("/v1/leaderboard", params={"limit": 500}).json()
        assert page["total"] == len(page["items"])
        return {entry["dataset_id"] for entry in page["items"]} & {public, alices, bobs}

    assert board("alice") == {public, alices}
    assert board("bob") == {public, bobs}
    assert board("root") == {public, alices, bobs}
    # cached pages follow publishing and hiding
    assert as_["alice"].patch(f"/v1/datasets/{alices}", json={"visibility": "public"}).status_code == 200
    assert board("bob") == {public, alices, bobs}
    assert as_["alice"].patch(f"/v1/datasets/{alices}", json={"visibility": "private"}).status_code == 200
    assert board("bob") == {public, bobs}


def test_only_admin_keys_edit_the_panel(as_):
    ds = upload(as_["bob"], os.urandom(1100), visibility="public").json()["id"]
    refused = as_["bob"].post("/v1/panel", json={"dataset_id": ds})
    assert refused.status_code == 403 and "admin key" in refused.json()["detail"]
    assert as_["root"].post("/v1/panel", json={"dataset_id": ds}).status_code == 201
    assert ds in [m["dataset_id"] for m in as_["alice"].get("/v1/panel").json()["items"]]
    assert as_["alice"].delete(f"/v1/panel/{ds}").status_code == 403
    assert as_["root"].delete(f"/v1/panel/{ds}").status_code == 204


# --- the client and the CLI send EPIPLEX_API_KEY ------------------------------------------

def test_the_client_sends_the_key_from_EPIPLEX_API_KEY(server, keys, monkeypatch):
    monkeypatch.setenv("EPIPLEX_API_KEY", keys[1]["alice"])
    with EpiplexClient(server.url) as client:
        ds = client.upload(os.urandom(800), name="from-client")
        assert ds.visibility == "private" and client.get_dataset(ds.id).id == ds.id
    monkeypatch.delenv("EPIPLEX_API_KEY")
    with EpiplexClient(server.url) as client, pytest.raises(EpiplexError) as refused:
        client.list_datasets()
    assert refused.value.status_code == 401


def test_epiplex_vet_sends_the_key_from_EPIPLEX_API_KEY(server, keys, as_, tmp_path):
    data = os.urandom(4096)
    (tmp_path / "d.bin").write_bytes(data)
    args = ("vet", str(tmp_path / "d.bin"), "--server", server.url, "--timeout", "1", "--min-epiplexity", "0.1")
    without = epiplex(*args, env={"EPIPLEX_API_KEY": ""})
    assert without.returncode == 2 and "API key" in without.stderr, without.stderr
    with_key = epiplex(*args, env={"EPIPLEX_API_KEY": keys[1]["bob"]})
    assert "API key" not in with_key.stderr, with_key.stderr
    sha = hashlib.sha256(data).hexdigest()
    assert sha in [d["sha256"] for d in as_["bob"].get("/v1/datasets", params={"limit": 500}).json()["items"]]
    assert sha not in [d["sha256"] for d in as_["alice"].get("/v1/datasets", params={"limit": 500}).json()["items"]]
