"""The pages in a real browser: Debian's Chromium driven by Playwright, against the real server
with a real worker (one quick job on 16 KiB of Python source, scored through the upload form).

Every page visit also checks that the browser logged no error and that no request left the
server's origin. Screenshots of each page land in artifacts/screenshots/ (git-ignored).
"""
from __future__ import annotations

import os
import sysconfig
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.core.ids import new_id
from app.core.models import Job, utcnow
from app.jobs import store
from app.testing import ServiceProcess

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
JOB_TIMEOUT_MS = 300_000

OCTET = {"content-type": "application/octet-stream"}  # raw uploads declare their type (CORS-safe)


def source_sample(size: int = 16 * 1024) -> bytes:
    """Python's own standard-library source: text with structure, on every machine."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    data = b"".join(path.read_bytes() for path in sorted(stdlib.glob("[a-c]*.py")))
    return data[:size]


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        except Exception as error:  # a browser that cannot start is a failure, never a skip
            pytest.fail(f"Chromium at {chromium} did not start: {error}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # A worker spawned on a busy 2-core machine can take seconds to import torch: no crash timings here.
    slow_is_fine = {"EPIPLEX_STALE_AFTER_SECONDS": "300", "EPIPLEX_HEARTBEAT_SECONDS": "2"}
    with ServiceProcess(tmp_path_factory.mktemp("browser"), workers=1, env=slow_is_fine) as service:
        yield service
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


class Watched:
    """A browser tab that records console errors, failed loads and requests to other origins."""

    def __init__(self, browser, origin: str, **context_options) -> None:
        self.origin = origin
        self.context = browser.new_context(base_url=origin, **context_options)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.requested: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", self._request)

    def _request(self, request) -> None:
        self.requested.append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(request.url)

    def shot(self, name: str, full_page: bool = False) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def check(self) -> None:
        assert self.errors == [], f"the browser console logged errors: {self.errors} (requests to other origins: {self.foreign})"
        assert self.foreign == [], f"requests left the origin {self.origin}: {self.foreign}"


@pytest.fixture()
def tab(browser, server):
    watched = Watched(browser, server.url, viewport={"width": 1440, "height": 900})
    yield watched
    watched.context.close()
    watched.check()


@pytest.fixture(scope="module")
def scored(browser, server):
    """A dataset uploaded through the form and its job followed live to its result: (dataset id, job id, tab)."""
    watched = Watched(browser, server.url, viewport={"width": 1440, "height": 900})
    page = watched.page
    page.goto("/upload")
    watched.shot("upload")
    page.set_input_files("#file", files=[{"name": "stdlib-16k.py", "mimeType": "text/x-python",
                                          "buffer": source_sample()}])
    page.select_option("#format", "text")
    page.select_option("#preset", "quick")
    page.click("#submit")
    page.wait_for_url("**/jobs/job_*")
    job_id = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#progress")
    watched.shot("job-running")
    # The page follows the job's events and reloads into its result when it ends.
    ended = ", ".join(f"#job[data-status={s}]" for s in ("succeeded", "failed", "canceled"))
    page.wait_for_selector(ended, timeout=JOB_TIMEOUT_MS)
    status = page.text_content("#status")
    assert status == "succeeded", f"job {job_id} {status}: {page.text_content('#job')}"
    page.wait_for_selector("#curves-title")
    watched.shot("job")
    dataset_href = page.get_attribute("main a[href^='/datasets/']", "href")
    yield dataset_href.rsplit("/", 1)[1], job_id, watched, status
    watched.context.close()


def arrange_result(server, sessions, name: str, s_bpb: float, h_bpb: float, families: dict | None = None,
                   seeds: int = 1) -> str:
    """A dataset with a succeeded job written as a worker writes it (no training), for rankings."""
    data = name.encode() * 200
    dataset = httpx.post(f"{server.url}/v1/datasets", params={"name": name}, content=data, headers=OCTET).json()
    size = len(data)

    def point(budget: float, s: float, h: float, family: str) -> dict:
        spread = {"low": s * size * 0.9, "high": s * size * 1.1}
        return {"budget_flops": budget, "epiplexity_bits": s * size, "entropy_bits": h * size,
                "epiplexity_bits_per_byte": s, "entropy_bits_per_byte": h, "family": family,
                "model": {"params": 1000, "width": 32, "depth": 1, "context": 64},
                "ci95": {"epiplexity_bits": spread, "entropy_bits": spread} if seeds > 1 else None}

    def curve(family: str, scale: float = 1.0) -> list[dict]:
        return [point(b, s_bpb * scale * f, h_bpb + 1 - f, family) for b, f in ((1e9, 0), (1e10, .4), (1e11, .8), (1e12, 1))]

    result = {"epiplexity_bits": s_bpb * size, "entropy_bits": h_bpb * size, "epiplexity_bits_per_byte": s_bpb,
              "entropy_bits_per_byte": h_bpb, "curve": curve("transformer"),
              "baselines": {"zstd_bits_per_byte": h_bpb + 0.5, "lzma_bits_per_byte": h_bpb + 0.3},
              "dataset": {"bytes": size, "tokens": size, "sha256": dataset["sha256"], "format": "bytes",
                          "vocab_size": 256},
              "estimator": "prequential", "seeds": list(range(seeds)), "flops_spent": 2e12, "seconds": 1.0,
              "warnings": [], "version": "test", "preset": "quick", "tokenizer": "bytes", "device": "cpu"}
    if families:
        result["families"] = {family: curve(family, scale) for family, scale in families.items()}
    job_id = new_id("job")
    with sessions() as session:  # straight to running: the live worker must not claim it
        session.add(Job(id=job_id, dataset_id=dataset["id"], config_key=job_id, score_key=job_id, preset="quick",
                        estimator="prequential", seeds=seeds, status="running", progress=0.5, attempts=1, lease=1,
                        created_at=utcnow(), heartbeat_at=utcnow()))
        session.commit()
    assert store.complete(sessions, store.Claim(job_id, 1, 1), result, 1.0)
    return dataset["id"]


def test_upload_form_starts_a_job_whose_page_follows_it_live_to_its_result(scored, http):
    dataset_id, job_id, watched, status = scored
    assert status == "succeeded"
    job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded" and job["dataset_id"] == dataset_id
    assert job["result"]["dataset"]["format"] == "text" and job["result"]["preset"] == "quick"
    # The live view came from the server-sent events, not from polling.
    assert f"{watched.origin}/v1/jobs/{job_id}/events" in watched.requested
    page = watched.page
    shown = page.text_content("main")
    assert f"{job['result']['epiplexity_bits']:,.0f} bits" in shown
    assert f"{job['result']['entropy_bits_per_byte']:.4f} bits/byte" in shown
    watched.check()


def test_leaderboard_shows_the_dataset_and_resorts_when_a_header_is_clicked(scored, server, sessions, tab, http):
    dataset_id = scored[0]
    arrange_result(server, sessions, "arranged-structured", 2.5, 1.0)
    arrange_result(server, sessions, "arranged-noisy", 0.01, 7.9)
    page = tab.page
    page.goto("/")
    assert page.locator(f"tr[data-dataset='{dataset_id}']").count() == 1

    def names() -> list[str]:
        return page.locator("#board tbody tr td:nth-child(2)").all_text_contents()

    def figures(column: int) -> list[float]:
        return [float(text.split()[0].replace(",", "")) for text in
                page.locator(f"#board tbody tr td:nth-child({column})").all_text_contents()]

    assert figures(4) == sorted(figures(4), reverse=True)  # default: S bits/byte, highest first
    assert names()[0] == "arranged-structured"
    page.click("a[data-sort='entropy_bits_per_byte']")
    page.wait_for_url("**sort=entropy_bits_per_byte**")
    assert names()[0] == "arranged-noisy" and figures(5) == sorted(figures(5), reverse=True)
    page.click("a[data-sort='entropy_bits_per_byte']")  # the same header again: lowest first
    page.wait_for_url("**order=asc**")
    assert figures(5) == sorted(figures(5)) and names()[-1] == "arranged-noisy"
    assert page.get_attribute("th[aria-sort]", "aria-sort") == "ascending"
    # The page and its JSON twin rank the same rows.
    twin = http.get(page.get_attribute("a[rel='alternate']", "href")).json()
    assert [e["name"] for e in twin["items"]] == names()
    assert page.locator("svg.scatter circle.point").count() == len(names())
    assert page.locator("#mixed").count() == 0  # one preset, one estimator: comparable
    tab.shot("leaderboard")


def test_dataset_page_draws_one_curve_per_observer_family(scored, server, sessions, tab, http):
    dataset_id, job_id = scored[0], scored[1]
    result = http.get(f"/v1/jobs/{job_id}").json()["result"]
    families = sorted(result.get("families") or {"transformer": None})
    page = tab.page
    page.goto(f"/datasets/{dataset_id}")
    drawn = page.locator("svg.curves").first.locator("path.line[data-family]")
    assert sorted(drawn.evaluate_all("paths => paths.map(p => p.dataset.family)")) == families
    assert page.locator("svg.curves").count() == 2  # S_T and H_T
    assert page.locator("svg.curves .level").count() == 2  # zstd and lzma beside H_T
    assert result["dataset"]["sha256"] in page.text_content("main")
    tab.shot("dataset")

    # Two families and three seeds: two lines in each chart, each with a 95% band.
    two = arrange_result(server, sessions, "arranged-two-families", 1.5, 3.0,
                         families={"transformer": 1.0, "context-mixing": 0.6}, seeds=3)
    page.goto(f"/datasets/{two}")
    first = page.locator("svg.curves").first
    assert sorted(first.locator("path.line[data-family]").evaluate_all("ps => ps.map(p => p.dataset.family)")) \
        == ["context-mixing", "transformer"]
    assert first.locator("polygon.band").count() == 2
    page.goto("/?family=context-mixing")  # only results with that family's own curve are ranked
    ranked = page.locator("#board tbody tr td:nth-child(2)").all_text_contents()
    assert "arranged-two-families" in ranked and "arranged" not in " ".join(r for r in ranked if r != "arranged-two-families")


def test_bad_upload_shows_the_servers_message_inline(tab, server):
    invalid_utf8 = b"caf\xe9 is not UTF-8 \xff\xfe"
    expected = httpx.post(f"{server.url}/v1/datasets", params={"format": "text", "name": "bad.txt"},
                          content=invalid_utf8, headers=OCTET).json()["detail"]
    page = tab.page
    page.goto("/upload")
    page.set_input_files("#file", files=[{"name": "bad.txt", "mimeType": "text/plain", "buffer": invalid_utf8}])
    page.select_option("#format", "text")
    page.click("#submit")
    page.wait_for_selector("#problem:not([hidden])")
    assert page.text_content("#problem") == expected and "does not match format 'text'" in expected
    assert page.url.endswith("/upload")
    tab.shot("upload-error")
    # 4xx answers show up as failed loads in the console; this one was expected, the rest must be clean.
    tab.errors = [e for e in tab.errors if "422" not in e]


def test_the_upload_form_can_score_with_one_observer_family(tab, http):
    page = tab.page
    page.goto("/upload")
    page.set_input_files("#file", files=[{"name": "one-family.py", "mimeType": "text/x-python",
                                          "buffer": source_sample()[::-1]}])
    page.select_option("#families", "context-mixing")
    page.click("#submit")
    page.wait_for_url("**/jobs/job_*")
    assert http.get(f"/v1/jobs/{page.url.rsplit('/', 1)[1]}").json()["families"] == ["context-mixing"]
    assert "families context-mixing." in page.text_content("main")


def test_job_page_cancels_and_retries(tab, server, http):
    dataset = http.post("/v1/datasets", params={"name": "to-cancel"}, content=os.urandom(8192), headers=OCTET).json()
    job = http.post("/v1/jobs", json={"dataset_id": dataset["id"], "budgets": [1e9, 1e10]}).json()
    page = tab.page
    page.goto(f"/jobs/{job['id']}")
    page.click("#cancel")
    page.wait_for_selector("#retry:not([hidden])")
    assert page.text_content("#status") == "canceled"
    assert http.get(f"/v1/jobs/{job['id']}").json()["status"] == "canceled"
    page.click("#retry")
    page.wait_for_url(f"**/jobs/{job['id']}")
    page.wait_for_selector("#job[data-status=queued], #job[data-status=running], #job[data-status=succeeded]")
    assert http.get(f"/v1/jobs/{job['id']}").json()["status"] in ("queued", "running", "succeeded")
    http.post(f"/v1/jobs/{job['id']}/cancel")  # spare the worker


def test_vet_page_matches_the_cli_report_and_the_json_verdict(scored, tab, http):
    dataset_id = scored[0]
    verdict = http.post("/v1/vet", json={"dataset_id": dataset_id, "preset": "quick",
                                         "thresholds": {"min_epiplexity_bits_per_byte": 0.01,
                                                        "max_entropy_bits_per_byte": 0.5}}).json()
    page = tab.page
    page.goto(f"/vet?dataset_id={dataset_id}&preset=quick&min_epiplexity=0.01&max_entropy=0.5")
    rows = page.locator(".vet-report tbody tr")
    assert rows.count() == len(verdict["checks"]) == 2
    for row, check in zip(rows.all(), verdict["checks"]):
        cells = row.locator("td").all_text_contents()
        assert cells[1] == check["name"] and cells[4] == ("pass" if check["passed"] else "FAIL")
    assert "Epiplex vet:" in page.text_content(".vet-report h1")
    tab.shot("vet")


def test_api_docs_render_from_local_assets(tab):
    page = tab.page
    page.goto("/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Epiplex" in page.text_content(".swagger-ui .info .title")
    page.goto("/redoc")
    page.wait_for_selector("h1")
    assert "Epiplex" in page.text_content("h1")
    assert any(url.endswith("/static/vendor/redoc/redoc.standalone.js") for url in tab.requested)


def test_pages_read_at_375px_in_the_dark_and_work_from_the_keyboard(scored, browser, server):
    dataset_id, job_id = scored[0], scored[1]
    phone = Watched(browser, server.url, viewport={"width": 375, "height": 812}, color_scheme="dark")
    page = phone.page
    try:
        for name, path in (("leaderboard", "/"), ("dataset", f"/datasets/{dataset_id}"), ("job", f"/jobs/{job_id}"),
                           ("upload", "/upload"), ("vet", "/vet")):
            page.goto(path)
            # Wide tables scroll inside their own box; the page itself never scrolls sideways.
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, name
            phone.shot(f"{name}-375-dark")
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
        page.goto("/")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # Sorting is a link: Tab to a header and press Enter.
        header = page.locator("a[data-sort='total_bits_per_byte']")
        header.focus()
        page.keyboard.press("Enter")
        page.wait_for_url("**sort=total_bits_per_byte**")
    finally:
        phone.context.close()
    phone.check()
