"""One model of a job's settings (preset or budgets, estimator, seeds, families) and their validation.

The API's requests (jobs, transfer, vet) extend it, and the vet CLI builds it from flags, so a
setting is checked once, the same way everywhere. Allowed values come from `estimators.presets`
and `estimators.frontier`.
"""
from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.errors import ServiceError
from estimators.frontier import FAMILIES
from estimators.presets import PRESETS

EstimatorName = Literal["prequential", "requential"]
FamilyName = Literal[FAMILIES]
MAX_SEEDS = 16
MAX_BUDGETS = 32


def present(field: str, json_type: str) -> dict:
    """JSON schema: `field` is given and not null (for rules across fields)."""
    return {"required": [field], "properties": {field: {"type": json_type}}}


NOT_PRESET_AND_BUDGETS = {"allOf": [present("preset", "string"), present("budgets", "array")]}


class JobSettings(BaseModel):
    """What decides a job's result besides its data."""

    # The JSON schema states what the validators check, so generated clients (and fuzzers) know it.
    model_config = ConfigDict(json_schema_extra={"not": NOT_PRESET_AND_BUDGETS})

    preset: str | None = Field(None, description="Named sweep (quick, standard, deep); the service "
                               "default when neither preset nor budgets is given.",
                               json_schema_extra={"enum": [*PRESETS, None]})
    budgets: list[float] | None = Field(None, min_length=1, max_length=MAX_BUDGETS,
                                        description="Compute budgets in FLOPs; replaces the preset's ladder.",
                                        json_schema_extra={"items": {"type": "number", "exclusiveMinimum": 0}})
    estimator: EstimatorName = Field("prequential", description="prequential (cheap) or requential (accurate).")
    seeds: int = Field(1, ge=1, le=MAX_SEEDS, description="Independent training seeds; >1 gives 95% intervals.")
    families: list[FamilyName] | None = Field(
        None, min_length=1, description="Observer families pooled on the frontier (default: every one, "
        "the headline being the minimum over them). A result of fewer families is not ranked on the "
        "leaderboard's headline, only in its own families' views.")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str | None) -> str | None:
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        return preset

    @field_validator("budgets")
    @classmethod
    def _positive_budgets(cls, budgets: list[float] | None) -> list[float] | None:
        """Budgets sorted and deduplicated; each must be a positive, finite FLOP count."""
        if budgets is not None and any(not (b > 0 and b < float("inf")) for b in budgets):
            raise ValueError("budgets must be positive, finite FLOP counts")
        return sorted(set(budgets)) if budgets is not None else None

    @field_validator("families")
    @classmethod
    def _canonical_families(cls, families: list[str] | None) -> list[str] | None:
        """Each family once, in the frontier's order; all of them is the default (None): one job."""
        if families is None:
            return None
        chosen = [family for family in FAMILIES if family in families]
        return None if len(chosen) == len(FAMILIES) else chosen

    @model_validator(mode="after")
    def _preset_or_budgets(self) -> JobSettings:
        if self.preset is not None and self.budgets is not None:
            raise ValueError("give either preset or budgets, not both")
        return self

    def job_settings(self) -> JobSettings:
        """Only the settings, without whatever a request adds around them."""
        return JobSettings(preset=self.preset, budgets=self.budgets, estimator=self.estimator, seeds=self.seeds,
                           families=self.families)

    def resolved(self, default_preset: str) -> dict:
        """The settings that decide a job's result, normalised; their hash (`config_key`) deduplicates jobs."""
        import estimators

        preset = None if self.budgets is not None else (self.preset or default_preset)
        if preset is not None and preset not in estimators.PRESETS:  # a misconfigured service default
            raise ServiceError(f"unknown preset {preset!r}; known: {', '.join(estimators.PRESETS)}")
        # The hash of the estimators' code (presets included) is part of the key: any change to
        # them scores afresh instead of answering from a result computed by older code.
        # Every family (None) stays out of the key, which so stays that of results from before.
        return {"preset": preset, "budgets": self.budgets, "estimator": self.estimator,
                "seeds": self.seeds, "code": estimators.code_hash(),
                **({"families": self.families} if self.families else {})}


def config_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
