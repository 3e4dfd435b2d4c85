"""A small typed client for the Epiplex API (used by the tests, the bench and the README)."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from app.api.schemas import (DatasetOut, DatasetTransferOut, JobOut, LeaderboardEntry, Page, PanelMemberOut, VetOut,
                         VetRequest)

TERMINAL = ("succeeded", "failed", "canceled")


class EpiplexError(Exception):
    """The API answered with an error; `status_code` and the server's `detail` say which."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"HTTP {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


class JobTimeout(TimeoutError):
    """The job did not finish within the time given to `wait` or `score`; it keeps running."""

    def __init__(self, job: JobOut) -> None:
        super().__init__(f"job {job.id} still {job.status} ({job.progress:.0%})")
        self.job = job


API_KEY_ENV = "EPIPLEX_API_KEY"
# Raw uploads declare their type: the server refuses keyless bodies a browser could forge (text/plain, forms).
RAW = {"Content-Type": "application/octet-stream"}


class EpiplexClient:
    """`EpiplexClient("http://127.0.0.1:8000")`; usable as a context manager.

    `api_key` (default: the EPIPLEX_API_KEY environment variable) is sent as `Authorization: Bearer`."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None, api_key: str | None = None) -> None:
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "").strip()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport, headers=headers)

    def __enter__(self) -> EpiplexClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise EpiplexError(response.status_code, str(detail))
        return response

    def upload(self, source: str | os.PathLike | bytes | BinaryIO, name: str | None = None,
               format: str = "bytes", visibility: str | None = None) -> DatasetOut:
        """Stream a file (path or open binary file) or bytes; returns the new or existing dataset.
        `visibility` public or private (with a key the server's default is private)."""
        params = {"format": format, **({"visibility": visibility} if visibility else {})}
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            params["name"] = name or path.name
            with open(path, "rb") as handle:
                response = self._request("POST", "/v1/datasets", params=params, content=_chunks(handle),
                                         headers=RAW)
        else:
            if name:
                params["name"] = name
            content = source if isinstance(source, bytes) else _chunks(source)
            response = self._request("POST", "/v1/datasets", params=params, content=content, headers=RAW)
        return DatasetOut.model_validate(response.json())

    def get_dataset(self, dataset_id: str) -> DatasetOut:
        return DatasetOut.model_validate(self._request("GET", f"/v1/datasets/{dataset_id}").json())

    def list_datasets(self, limit: int = 50, offset: int = 0) -> Page[DatasetOut]:
        response = self._request("GET", "/v1/datasets", params={"limit": limit, "offset": offset})
        return Page[DatasetOut].model_validate(response.json())

    def download(self, dataset_id: str) -> bytes:
        return self._request("GET", f"/v1/datasets/{dataset_id}/content").content

    def set_visibility(self, dataset_id: str, visibility: str) -> DatasetOut:
        """Publish (public) or hide (private) a dataset you own."""
        response = self._request("PATCH", f"/v1/datasets/{dataset_id}", json={"visibility": visibility})
        return DatasetOut.model_validate(response.json())

    def delete_dataset(self, dataset_id: str) -> None:
        self._request("DELETE", f"/v1/datasets/{dataset_id}")

    def create_job(self, dataset_id: str, preset: str | None = None, budgets: list[float] | None = None,
                   estimator: str = "prequential", seeds: int = 1,
                   transfer: bool | list[str] | None = None, families: list[str] | None = None) -> JobOut:
        """Queue a job (or get the existing one with the same settings); `transfer` (True for the
        reference panel, or target dataset ids) also measures transfer after scoring; `families`
        limits the observer families pooled (default: every one)."""
        body: dict[str, Any] = {"dataset_id": dataset_id, "estimator": estimator, "seeds": seeds}
        if preset is not None:
            body["preset"] = preset
        if budgets is not None:
            body["budgets"] = budgets
        if families is not None:
            body["families"] = families
        if transfer is not None:
            body["transfer"] = transfer
        return JobOut.model_validate(self._request("POST", "/v1/jobs", json=body).json())

    def get_job(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._request("GET", f"/v1/jobs/{job_id}").json())

    def list_jobs(self, status: str | None = None, dataset_id: str | None = None,
                  limit: int = 50, offset: int = 0) -> Page[JobOut]:
        params = {k: v for k, v in {"status": status, "dataset_id": dataset_id,
                                    "limit": limit, "offset": offset}.items() if v is not None}
        return Page[JobOut].model_validate(self._request("GET", "/v1/jobs", params=params).json())

    def cancel(self, job_id: str) -> JobOut:
        return JobOut.model_validate(self._request("POST", f"/v1/jobs/{job_id}/cancel").json())

    def wait(self, job_id: str, timeout: float = 600.0, poll_seconds: float = 0.5) -> JobOut:
        """Poll until the job ends; raises JobTimeout (the job keeps running) after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.status in TERMINAL:
                return job
            if time.monotonic() >= deadline:
                raise JobTimeout(job)
            time.sleep(poll_seconds)

    def score(self, source: str | os.PathLike | bytes, format: str = "bytes", preset: str | None = None,
              budgets: list[float] | None = None, estimator: str = "prequential", seeds: int = 1,
              name: str | None = None, timeout: float = 600.0, families: list[str] | None = None) -> JobOut:
        """Upload, queue and wait: the finished job (check `status`; `result` holds the figures)."""
        dataset = self.upload(source, name=name, format=format)
        job = self.create_job(dataset.id, preset=preset, budgets=budgets, estimator=estimator, seeds=seeds,
                              families=families)
        return self.wait(job.id, timeout=timeout)

    def transfer(self, source_id: str, targets: list[str] | str = "panel", preset: str | None = None,
                 budgets: list[float] | None = None, wait: bool = False, timeout: float = 600.0) -> JobOut:
        """Measure transfer from a dataset to `targets` (ids, or "panel"): the job, finished when `wait`.

        The rows are read with `dataset_transfer`."""
        body: dict[str, Any] = {"source": source_id, "targets": targets}
        if preset is not None:
            body["preset"] = preset
        if budgets is not None:
            body["budgets"] = budgets
        job = JobOut.model_validate(self._request("POST", "/v1/transfer", json=body).json())
        return self.wait(job.id, timeout=timeout) if wait else job

    def dataset_transfer(self, dataset_id: str, targets: list[str] | None = None) -> DatasetTransferOut:
        """Measured transfer from a dataset, and predictions for the panel (and `targets`) not measured."""
        params = {"targets": ",".join(targets)} if targets else None
        response = self._request("GET", f"/v1/datasets/{dataset_id}/transfer", params=params)
        return DatasetTransferOut.model_validate(response.json())

    def panel(self) -> list[PanelMemberOut]:
        """The reference panel's members (the built-in ones are stored on first use)."""
        return Page[PanelMemberOut].model_validate(self._request("GET", "/v1/panel").json()).items

    def add_to_panel(self, dataset_id: str, description: str | None = None) -> PanelMemberOut:
        body = {"dataset_id": dataset_id, **({"description": description} if description else {})}
        return PanelMemberOut.model_validate(self._request("POST", "/v1/panel", json=body).json())

    def remove_from_panel(self, dataset_id: str) -> None:
        self._request("DELETE", f"/v1/panel/{dataset_id}")

    def leaderboard(self, sort: str = "epiplexity_bits_per_byte", order: str = "desc",
                    preset: str | None = None, budget: float | None = None, estimator: str | None = None,
                    limit: int = 50, offset: int = 0) -> Page[LeaderboardEntry]:
        params = {k: v for k, v in {"sort": sort, "order": order, "preset": preset, "budget": budget,
                                    "estimator": estimator, "limit": limit, "offset": offset}.items()
                  if v is not None}
        return Page[LeaderboardEntry].model_validate(self._request("GET", "/v1/leaderboard", params=params).json())

    def vet(self, request: VetRequest | dict[str, Any]) -> VetOut:
        """Vet a dataset against thresholds (POST /v1/vet); `status` stays pending until its jobs end."""
        body = request if isinstance(request, VetRequest) else VetRequest.model_validate(request)
        # The server holds the request open for up to `wait` seconds: read for that long and more.
        timeout = httpx.Timeout(self._http.timeout.connect, read=(self._http.timeout.read or 60.0) + body.wait)
        response = self._request("POST", "/v1/vet", json=body.model_dump(mode="json", exclude_none=True),
                                 timeout=timeout)
        return VetOut.model_validate(response.json())

    def ready(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False


def _chunks(handle: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := handle.read(size):
        yield chunk
