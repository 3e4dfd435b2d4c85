"""One model of job settings: the API's requests and the vet CLI check them the same way."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.api.schemas import JobCreate, TransferRequest, VetRequest
from app.cli import build_parser
from app.jobs.settings import JobSettings, config_key
from app.vet.cli import plan
from app.vet.vetting import VetInputError


@pytest.mark.parametrize("model, extra", [
    (JobSettings, {}), (JobCreate, {"dataset_id": "ds_1"}), (TransferRequest, {"source": "ds_1", "targets": "panel"}),
    (VetRequest, {"dataset_id": "ds_1", "thresholds": {"min_epiplexity_bits_per_byte": 0.1}}),
])
@pytest.mark.parametrize("settings, message", [
    ({"preset": "huge"}, "unknown preset 'huge'; known: quick, standard, deep"),
    ({"preset": "quick", "budgets": [1e9]}, "give either preset or budgets, not both"),
    ({"budgets": [1e9, -1.0]}, "budgets must be positive, finite FLOP counts"),
    ({"budgets": []}, "at least 1 item"),
    ({"seeds": 17}, "less than or equal to 16"),
    ({"estimator": "bayes"}, "'prequential' or 'requential'"),
    ({"families": ["lstm"]}, "families.0\n  Input should be 'transformer' or 'context-mixing'"),
    ({"families": []}, "families\n  List should have at least 1 item"),
])
def test_every_request_rejects_the_same_settings_the_same_way(model, extra, settings, message):
    with pytest.raises(ValidationError) as error:
        model(**extra, **settings)
    assert message in str(error.value)


def test_settings_resolve_to_the_key_that_deduplicates_jobs():
    request = JobCreate(dataset_id="ds_1", budgets=[2e9, 1e9, 2e9], seeds=2)
    assert request.job_settings() == JobSettings(budgets=[1e9, 2e9], seeds=2)
    resolved = request.job_settings().resolved(default_preset="quick")
    assert resolved["preset"] is None and resolved["budgets"] == [1e9, 2e9] and resolved["seeds"] == 2
    by_default = JobSettings().resolved("quick")
    assert by_default["preset"] == "quick" and by_default["estimator"] == "prequential"
    assert config_key(by_default) == config_key(JobSettings(preset="quick").resolved("standard"))
    assert config_key(by_default) != config_key(JobSettings(preset="standard").resolved("quick"))


def test_families_resolve_to_one_key_however_they_are_listed():
    every = JobSettings().resolved("quick")
    assert "families" not in every  # so the key of a job pooling every family is the one from before
    assert JobSettings(families=["context-mixing", "transformer", "context-mixing"]).families is None
    assert config_key(JobSettings(families=["context-mixing", "transformer"]).resolved("quick")) == config_key(every)
    counting = JobSettings(families=["context-mixing", "context-mixing"]).resolved("quick")
    assert counting["families"] == ["context-mixing"] and config_key(counting) != config_key(every)


@pytest.mark.parametrize("flags, message", [
    (["--preset", "huge"], "--preset: unknown preset 'huge'"),
    (["--budget", "1e9", "-1"], "--budget: budgets must be positive"),
    (["--seeds", "17"], "--seeds: Input should be less than or equal to 16"),
    (["--families", "transformer", "ngram"], "--families: Input should be 'transformer' or 'context-mixing'"),
])
def test_the_vet_cli_checks_settings_with_the_same_model_and_names_the_flag(tmp_path, monkeypatch, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.bin").write_bytes(b"x" * 64)
    args = build_parser().parse_args(["vet", "data.bin", "--min-epiplexity", "0.01", *flags])
    with pytest.raises(VetInputError) as error:
        plan(args)
    assert message in str(error.value)
