"""Schemathesis against a live server: generated requests from /openapi.json, every check, and
stateful sequences along the spec's links (upload -> read, score, delete). Bounded examples keep
the group within its CI budget; the server runs without workers (jobs stay queued)."""
from __future__ import annotations

import copy

import httpx

import hypothesis
import pytest
import schemathesis

from app.api.app import create_app
from app.core.settings import Settings
from app.testing import ServiceProcess

pytestmark = pytest.mark.fuzz

EXAMPLES = 25
SETTINGS = hypothesis.settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                               suppress_health_check=list(hypothesis.HealthCheck))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServiceProcess(tmp_path_factory.mktemp("fuzz"), workers=0,
                        env={"EPIPLEX_MAX_UPLOAD_BYTES": str(1 << 20)}) as service:
        yield service
    # Nothing the fuzzer sent may reach the generic error handler.
    assert '"level": "ERROR"' not in service.log_path.read_text(), service.log_tail()


# Whether uploaded bytes match their declared format (UTF-8 text, JSONL with the field, a .npy
# array) is beyond JSON Schema, so schema-valid uploads may be refused with 422.
# A slow answer on a busy CI machine is not a contract failure: 30 s rather than the default 10 s.
CONFIG = schemathesis.Config.from_dict({"request-timeout": 30, "operations": [{
    "include-operation-id": "upload_dataset_v1_datasets_post",
    # Any bytes are a valid raw upload, so there is no schema-violating upload to refuse.
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", "422"]},
               "negative_data_rejection": {"enabled": False}}}]})
MAX_WAIT_SECONDS = 1.0  # jobs never run here (no workers): a long vet wait would only idle



def key_free(spec: dict) -> dict:
    """The spec as this key-free server enforces it (the loopback quick start): without the bearer
    scheme, which applies once a key exists; tests/test_auth_* cover keys."""
    spec = copy.deepcopy(spec)
    for path in spec["paths"].values():
        for operation in path.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    spec.get("components", {}).pop("securitySchemes", None)
    return spec


# The spec the server serves, built here too so that pytest can list one test per operation.
schema = schemathesis.openapi.from_dict(key_free(create_app(Settings(workers=0)).openapi()), config=CONFIG)


def short_wait(case) -> None:
    if isinstance(case.body, dict) and isinstance(case.body.get("wait"), (int, float)):
        case.body["wait"] = min(case.body["wait"], MAX_WAIT_SECONDS)


@schema.parametrize()
@hypothesis.settings(SETTINGS)
def test_every_operation_conforms(case, server):
    short_wait(case)
    case.call_and_validate(base_url=server.url)


def test_stateful_links_conform(server):
    served = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    api_schema = schemathesis.openapi.from_dict(key_free(served), config=CONFIG)
    api_schema.config.update(base_url=server.url)

    class Workflow(api_schema.as_state_machine()):
        def before_call(self, case) -> None:
            short_wait(case)

    Workflow.run(settings=hypothesis.settings(SETTINGS, max_examples=15, stateful_step_count=6))
