"""The pages without a browser: the same facts as their JSON twins, units, comparability, local docs."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.core.ids import new_id
from app.core.models import Job, utcnow
from app.core.settings import Settings
from app.jobs import store
from app.web import units
from app.web.charts import Level, Series, curve_chart

OCTET = {"content-type": "application/octet-stream"}  # raw uploads declare their type (CORS-safe)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("web"), workers=0, access_log=False)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as test_client:
        yield test_client


def succeed(client, name: str, s_bpb: float, h_bpb: float, preset: str | None = "quick",
            estimator: str = "prequential", families: dict[str, float] | None = None) -> str:
    """A dataset with a succeeded job, stored the way a worker stores it."""
    data = name.encode() * 100
    dataset = client.post("/v1/datasets", params={"name": name}, content=data, headers=OCTET).json()
    size = len(data)

    def curve(family: str, scale: float) -> list[dict]:
        return [{"budget_flops": b, "epiplexity_bits": s_bpb * scale * f * size, "entropy_bits": (h_bpb + 1 - f) * size,
                 "epiplexity_bits_per_byte": s_bpb * scale * f, "entropy_bits_per_byte": h_bpb + 1 - f,
                 "model": {"params": 10, "width": 8, "depth": 1, "context": 8}, "ci95": None, "family": family}
                for b, f in ((1e10, 0.5), (1e12, 1.0))]

    result = {"epiplexity_bits": s_bpb * size, "entropy_bits": h_bpb * size, "epiplexity_bits_per_byte": s_bpb,
              "entropy_bits_per_byte": h_bpb, "curve": curve("transformer", 1.0),
              "baselines": {"zstd_bits_per_byte": 6.0, "lzma_bits_per_byte": 5.5},
              "dataset": {"bytes": size, "tokens": size, "sha256": dataset["sha256"], "format": "bytes", "vocab_size": 256},
              "estimator": estimator, "seeds": [0], "flops_spent": 2e12, "seconds": 1.0, "warnings": [],
              "version": "test", "preset": preset}
    if families:
        result["families"] = {family: curve(family, scale) for family, scale in families.items()}
    services = client.app.state.services
    job_id = new_id("job")
    with services.sessions() as session:
        session.add(Job(id=job_id, dataset_id=dataset["id"], config_key=job_id, score_key=job_id, preset=preset,
                        budgets=None if preset else [1e10, 1e12], estimator=estimator, seeds=1, status="running",
                        attempts=1, lease=1, progress=0.5, created_at=utcnow()))
        session.commit()
    assert store.complete(services.sessions, store.Claim(job_id, 1, 1), result, 1.0)
    return dataset["id"]


def test_units_are_always_written_out():
    assert units.bits(489374.4) == "489,374 bits"
    assert units.bits_per_byte(0.46667) == "0.4667 bits/byte"
    assert units.flops(1e12) == "1e12 FLOPs" and units.flops(3.2e11) == "3.2e11 FLOPs"
    assert units.size(32768) == "32,768 bytes (32.0 KiB)" and units.size(1) == "1 byte"


def test_curve_chart_draws_a_line_per_series_on_a_log_axis_with_levels_and_bands():
    svg = curve_chart("t", [Series("transformer", [(1e9, 0.0), (1e12, 0.5)], family="transformer",
                                   band=[(1e9, 0.0, 0.1), (1e12, 0.4, 0.6)]),
                            Series("context-mixing", [(1e9, 0.0), (1e12, 0.7)], family="context-mixing")],
                      "S_T (bits/byte)", [Level("zstd", 2.0)])
    assert re.findall(r'data-family="([^"]+)"', svg) == ["transformer", "context-mixing"]
    assert svg.count("<polygon") == 1 and ">1e9<" in svg and ">1e12<" in svg and ">1e10<" in svg


def test_leaderboard_ranks_by_s_plus_h_and_by_one_family_like_its_json_twin(client):
    a = succeed(client, "lb-a", 1.0, 2.0, families={"transformer": 1.0, "context-mixing": 2.0})
    b = succeed(client, "lb-b", 0.5, 4.0)
    board = client.get("/v1/leaderboard", params={"sort": "total_bits_per_byte", "order": "asc"}).json()
    ids = [e["dataset_id"] for e in board["items"]]
    assert ids.index(a) < ids.index(b) and board["items"][0]["total_bits_per_byte"] == pytest.approx(3.0)
    assert board["comparable"] is True and board["settings"] == ["preset quick, prequential"]
    family = client.get("/v1/leaderboard", params={"family": "context-mixing"}).json()
    assert [e["dataset_id"] for e in family["items"]] == [a]  # lb-b has no context-mixing curve
    assert family["items"][0]["epiplexity_bits_per_byte"] == pytest.approx(2.0)
    page = client.get("/", params={"sort": "total_bits_per_byte", "order": "asc"})
    assert page.status_code == 200
    assert re.fullmatch(r"app;dur=[0-9.]+, cpu;dur=[0-9.]+", page.headers["server-timing"])
    rows = re.findall(r'<tr data-dataset="([^"]+)"', page.text)
    assert rows == ids and "3.0000 bits/byte" in page.text


def test_a_ranking_that_mixes_settings_says_so(client):
    succeed(client, "mixed-requential", 0.3, 5.0, estimator="requential")
    comparable = client.get("/").text  # default: the most common preset and estimator only
    assert 'id="mixed"' not in comparable and "mixed-requential" not in comparable
    mixed = client.get("/", params={"estimator": "all"}).text
    assert 'id="mixed"' in mixed and "preset quick, requential" in mixed and "mixed-requential" in mixed
    assert client.get("/v1/leaderboard").json()["comparable"] is False


def test_the_dataset_page_shows_the_result_of_every_family_over_a_newer_one_of_fewer(client):
    dataset_id = succeed(client, "page-of-families", 0.3, 5.0)
    every = client.get("/v1/jobs", params={"dataset_id": dataset_id}).json()["items"][0]["id"]
    services = client.app.state.services
    with services.sessions() as session:
        result = session.get(Job, every).result
        session.add(Job(id="job_fewer_families", dataset_id=dataset_id, config_key="fewer", score_key="fewer",
                        preset="quick", estimator="prequential", seeds=1, families=["context-mixing"],
                        status="running", attempts=1, lease=1, progress=0.5, created_at=utcnow()))
        session.commit()
    fewer = {**result, "epiplexity_bits_per_byte": 0.1, "families": {"context-mixing": result["curve"]}}
    assert store.complete(services.sessions, store.Claim("job_fewer_families", 1, 1), fewer, 1.0)
    text = re.sub(r"<[^>]+>", "", client.get(f"/datasets/{dataset_id}").text)
    assert f"Figures from job {every}, its latest succeeded job of every observer family." in text
    assert "quick, prequential, 1 seed, context-mixing alone" in text
    assert "prequential, preset quick, families transformer, seeds 0," in text  # a result from before families


def test_the_curve_table_gives_s_per_byte_with_its_standard_error(client):
    dataset_id = succeed(client, "page-with-errors", 0.3, 5.0)
    job_id = client.get("/v1/jobs", params={"dataset_id": dataset_id}).json()["items"][0]["id"]
    with client.app.state.services.sessions() as session:
        job = session.get(Job, job_id)
        curve = [{**p, "epiplexity_stderr_bits_per_byte": 0.0125} for p in job.result["curve"]]
        job.result = {**job.result, "curve": curve}
        session.commit()
    text = re.sub(r"<[^>]+>", "", client.get(f"/datasets/{dataset_id}").text)
    assert "0.3000 bits/byte ± 0.0125" in text


def test_unknown_ids_give_a_404_page_with_the_api_sentence(client):
    page = client.get("/datasets/ds_nope")
    assert page.status_code == 404 and "dataset &#39;ds_nope&#39; not found" in page.text
    assert client.get("/jobs/job_nope").status_code == 404


def test_vet_page_reuses_the_cli_report_and_shows_bad_thresholds_inline(client):
    dataset = client.post("/v1/datasets", params={"name": "vet-me"}, content=b"vet me " * 100, headers=OCTET).json()
    query = {"dataset_id": dataset["id"], "max_entropy": "7", "preset": "quick"}
    waiting = client.get("/vet", params=query)
    assert waiting.status_code == 200 and "waiting for the score" in waiting.text
    job_id = re.search(r'data-job="([^"]+)"', waiting.text).group(1)
    services = client.app.state.services
    with services.sessions() as session:  # play the worker: the job the page queued succeeds
        job = session.get(Job, job_id)
        job.status, job.attempts, job.lease = "running", 1, 1
        session.commit()
    result = {"epiplexity_bits": 140.0, "entropy_bits": 2100.0, "epiplexity_bits_per_byte": 0.2,
              "entropy_bits_per_byte": 3.0, "curve": [], "baselines": {"zstd_bits_per_byte": 1.0},
              "dataset": {"bytes": 700}, "estimator": "prequential", "preset": "quick", "warnings": []}
    assert store.complete(services.sessions, store.Claim(job_id, 1, 1), result, 1.0)
    page = client.get("/vet", params=query).text
    verdict = client.post("/v1/vet", json={"dataset_id": dataset["id"], "preset": "quick",
                                           "thresholds": {"max_entropy_bits_per_byte": 7.0}}).json()
    assert verdict["status"] == "passed" and verdict["job_id"] == job_id
    assert "Epiplex vet: 1 of 1 dataset passed" in page
    assert "<td>max-entropy</td><td class='num'>3.0000 bits/byte</td><td class='num'>&lt;= 7.0000 bits/byte</td>" in page
    bad = client.get("/vet", params={**query, "min_epiplexity": "-1"})
    assert bad.status_code == 422 and "greater than or equal to 0" in bad.text


def test_the_vet_page_vets_with_one_observer_family(client):
    dataset = client.post("/v1/datasets", params={"name": "vet-one-family"}, content=b"one family " * 100,
                          headers=OCTET).json()
    page = client.get("/vet", params={"dataset_id": dataset["id"], "max_entropy": "7", "families": "context-mixing"})
    assert page.status_code == 200 and "waiting for the score" in page.text
    job_id = re.search(r'data-job="([^"]+)"', page.text).group(1)
    assert client.get(f"/v1/jobs/{job_id}").json()["families"] == ["context-mixing"]
    assert '<option value="context-mixing" selected>context-mixing alone</option>' in page.text


def test_docs_and_redoc_load_only_local_assets(client):
    for path in ("/docs", "/redoc"):
        html = client.get(path).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert urls and all(u.startswith("/") for u in urls), urls
        for url in urls:
            if url.startswith("/static/"):
                assert client.get(url).status_code == 200, url
    assert '"validatorUrl": null' in client.get("/docs").text
