"""API schemas (pydantic), kept apart from the database models; field descriptions feed /docs."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

from app.jobs.settings import NOT_PRESET_AND_BUDGETS, JobSettings, present
from app.vet.vetting import REGRESSION_THRESHOLDS, THRESHOLD_NAMES

Visibility = Literal["public", "private"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled"]
LeaderboardSort = Literal["epiplexity_bits_per_byte", "entropy_bits_per_byte", "epiplexity_bits",
                          "mean_transfer_bits_per_byte",
                          "entropy_bits", "total_bits", "total_bits_per_byte"]

T = TypeVar("T")


def _assume_utc(moment: datetime) -> datetime:
    # SQLite returns stored datetimes without a zone; every stored time is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_assume_utc)]


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="Number of items matching the query, over all pages.")
    limit: int = Field(description="Largest page size asked for.")
    offset: int = Field(description="Items skipped before this page.")


class DatasetOut(BaseModel):
    """An uploaded dataset. Uploads are content-addressed: the same bytes in the same format are one dataset."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Dataset id, used by jobs.")
    sha256: str = Field(description="SHA-256 of the uploaded bytes (hex).")
    bytes: int = Field(description="Size of the upload in bytes, uncompressed.")
    stored_bytes: int = Field(description="Size at rest after zstd compression.")
    name: str = Field(description="Name given at first upload (file name for multipart uploads).")
    format: str = Field(description="How the bytes are read: bytes | text | jsonl:FIELD | csv:COLUMN | tokens.")
    created_at: UtcDatetime = Field(description="First upload time (UTC).")
    panel: bool = Field(False, description="In the reference panel of transfer targets (see /v1/panel).")
    visibility: Visibility = Field("public", description="private: seen only by the key that uploaded it and "
                                   "admins (others get 404); public: seen by every key. Without keys, all public.")


class DatasetPatch(BaseModel):
    """What the owner (or an admin) may change about a dataset."""

    model_config = ConfigDict(extra="forbid")

    visibility: Visibility = Field(description="public publishes the dataset (and its jobs) to every key.")


MAX_TRANSFER_TARGETS = 200
# In the JSON schema (the validator checks it too): a target list holds 1 to 200 ids.
TARGET_LIST_SIZE = {"minItems": 1, "maxItems": MAX_TRANSFER_TARGETS}


def transfer_targets(transfer: bool | list[str] | None) -> bool | list[str] | None:
    """Target ids deduplicated in order; ValueError for an empty or oversized list."""
    if isinstance(transfer, list):
        if not transfer:
            raise ValueError("give at least one target dataset id, or true for the reference panel")
        if len(transfer) > MAX_TRANSFER_TARGETS:
            raise ValueError(f"at most {MAX_TRANSFER_TARGETS} transfer targets per job")
        return list(dict.fromkeys(transfer))
    return transfer


class JobCreate(JobSettings):
    """A request to score a dataset. The same dataset and settings return the existing job."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(description="Id of an uploaded dataset.")
    transfer: StrictBool | list[str] | None = Field(
        None, description="After scoring, measure transfer from this dataset's trained model: `true` to "
        "every reference panel member, or a list of target dataset ids. Results: "
        "GET /v1/datasets/{id}/transfer.", json_schema_extra=TARGET_LIST_SIZE)

    @field_validator("transfer")
    @classmethod
    def _transfer_targets(cls, transfer: bool | list[str] | None) -> bool | list[str] | None:
        return transfer_targets(transfer)


class JobOut(BaseModel):
    """A scoring job and, once it succeeded, its result."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Job id.")
    dataset_id: str = Field(description="The dataset being scored.")
    status: JobStatus = Field(description="queued | running | succeeded | failed | canceled.")
    progress: float = Field(description="Fraction done, 0..1.")
    message: str | None = Field(None, description="Latest progress message from the worker.")
    preset: str | None = Field(None, description="Preset used (null when explicit budgets were given).")
    budgets: list[float] | None = Field(None, description="Explicit budgets in FLOPs, if given.")
    estimator: str = Field(description="prequential or requential.")
    seeds: int = Field(description="Number of seeds.")
    families: list[str] | None = Field(None, description="Observer families pooled; null: every one.")
    attempts: int = Field(description="Attempts started so far; a crashed attempt is retried.")
    error: str | None = Field(None, description="Why the job (or its last attempt) failed.")
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    seconds: float | None = Field(None, description="Wall-clock seconds of the successful attempt.")
    result: dict[str, Any] | None = Field(
        None, description="The estimator's result contract, unchanged: epiplexity_bits, entropy_bits, "
        "their per-byte figures (per byte coded: dataset.bytes_coded), the curve over budgets, baselines "
        "(zstd, lzma bits/byte), dataset, estimator, seeds, flops_spent, seconds, warnings, version, "
        "code_hash, preset. All units are bits.")
    transfer: dict[str, Any] | None = Field(
        None, description="Transfer asked of this job: `targets` (dataset ids) and the `preset` it is measured "
        "with; the measured rows are at GET /v1/datasets/{dataset_id}/transfer.")


class LeaderboardEntry(BaseModel):
    """A dataset ranked by its latest succeeded result."""

    rank: int = Field(description="1-based position under the requested sort.")
    dataset_id: str
    name: str
    bytes: int = Field(description="Dataset size in bytes, as uploaded.")
    bytes_coded: int | None = Field(None, description="Bytes the learner coded, the per-byte figures' "
                                    "denominator: the selected JSONL field or CSV column's text, or tokens x "
                                    "token width; null for results from before it was recorded.")
    epiplexity_bits_per_byte: float = Field(description="Structure extracted, bits per byte coded "
                                            "(S_T / bytes_coded).")
    entropy_bits_per_byte: float = Field(description="Time-bounded entropy, bits per byte coded "
                                         "(H_T / bytes_coded).")
    epiplexity_bits: float = Field(description="Total epiplexity S_T in bits.")
    entropy_bits: float = Field(description="Total time-bounded entropy H_T in bits.")
    total_bits: float | None = Field(None, description="S_T + H_T in bits: the two-part code length.")
    total_bits_per_byte: float | None = Field(None, description="(S_T + H_T) per byte.")
    family: str | None = Field(None, description="Observer family the figures are read from; null = the "
                               "headline (the minimum over every family pooled).")
    zstd_bits_per_byte: float | None = Field(None, description="zstd baseline, bits per byte.")
    budget_flops: float | None = Field(None, description="Budget the figures are read at; null = the "
                                       "job's largest budget.")
    mean_transfer_bits_per_byte: float | None = Field(
        None, description="Mean measured transfer (transfer_bits_per_byte) from this result's model to the "
        "reference panel members measured so far, bits saved per byte of target; null when none is measured.")
    transfer_panel_targets: int = Field(0, description="Panel members the mean is taken over.")
    preset: str | None = None
    estimator: str
    job_id: str = Field(description="The job whose result is shown.")
    finished_at: UtcDatetime


class LeaderboardPage(Page[LeaderboardEntry]):
    """A page of the leaderboard, saying whether its rows were all scored the same way."""

    settings: list[str] = Field(default_factory=list, description="Each distinct preset (or budget list) and "
                                "estimator among the ranked results.")
    comparable: bool = Field(True, description="False when the ranking mixes settings (see `settings`): "
                             "filter by preset or budget, and estimator, for rows that compare.")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: dict[str, Any] = Field(default_factory=dict)


VetStatus = Literal["passed", "failed", "pending", "error"]


class VetThresholds(BaseModel):
    """Limits a dataset must respect; leave a field out to skip its check. Figures at the largest budget.
    The fields are `app.vet.vetting.Thresholds` (a test keeps the two in step)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={  # at least one is set
        "anyOf": [present(name, "number") for name in THRESHOLD_NAMES]})

    min_epiplexity_bits_per_byte: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Check `min-epiplexity`: S_T per byte must be at least this.")
    max_entropy_bits_per_byte: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Check `max-entropy`: H_T per byte must be at most this.")
    max_zstd_ratio: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Check `max-zstd-ratio`: zstd-19's compressed size over the "
        "original size (zstd bits per byte / 8) must be at most this (random or compressed bytes: ~1.0; "
        "text and code: ~0.2-0.3).")
    max_epiplexity_drop_percent: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Check `max-drop`: S_T per byte may fall at most this many "
        "percent below the baseline's.")
    max_entropy_rise_percent: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Check `max-entropy-rise`: H_T per byte may rise at most "
        "this many percent above the baseline's.")


class VetFigures(BaseModel):
    """Headline figures of a result, read at its largest budget (bits, bits per byte)."""

    epiplexity_bits_per_byte: float
    entropy_bits_per_byte: float
    zstd_bits_per_byte: float | None = None
    lzma_bits_per_byte: float | None = None
    epiplexity_bits: float | None = None
    entropy_bits: float | None = None
    bytes: int | None = None
    budget_flops: float | None = Field(None, description="Budget the figures are read at (FLOPs).")
    preset: str | None = None
    estimator: str | None = None
    epiplexity_stderr_bits_per_byte: float | None = Field(
        None, description="One standard error of S per byte from the held-out estimate.")


class VetRequest(JobSettings):
    """Vet one dataset: score it (or reuse its cached score) and check it against thresholds."""

    # The rules `_consistent` checks, stated in the JSON schema too.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        {"not": NOT_PRESET_AND_BUDGETS},
        {"oneOf": [present("dataset_id", "string"), present("sha256", "string")]},
        {"not": {"allOf": [present("baseline", "object"), present("baseline_dataset_id", "string")]}},
        {"anyOf": [{"not": {"required": ["thresholds"], "properties": {"thresholds": {
            "anyOf": [present(name, "number") for name in REGRESSION_THRESHOLDS]}}}},
                   present("baseline", "object"), present("baseline_dataset_id", "string")]},
    ]})

    dataset_id: str | None = Field(None, description="Id of an uploaded dataset (as POST /v1/datasets returns).")
    sha256: str | None = Field(None, pattern="^[0-9a-f]{64}$", description="Instead of dataset_id: the SHA-256 of "
                               "an uploaded dataset's bytes, so a client can skip re-uploading unchanged data.")
    format: str = Field("bytes", description="With sha256: the format the dataset was uploaded in.")
    thresholds: VetThresholds
    baseline: VetFigures | None = Field(None, description="Figures of an earlier accepted result to compare with.")
    baseline_dataset_id: str | None = Field(None, description="Or: a dataset whose result, under the same "
                                            "settings, is the baseline (scored first if it has none yet).")
    wait: float = Field(0.0, ge=0, le=600, description="Seconds to wait for the verdict; when it is not ready "
                        "by then the answer is 202 with status `pending` and the job ids to follow.")

    @model_validator(mode="after")
    def _consistent(self) -> VetRequest:
        if (self.dataset_id is None) == (self.sha256 is None):
            raise ValueError("give exactly one of dataset_id and sha256")
        if self.baseline is not None and self.baseline_dataset_id is not None:
            raise ValueError("give either baseline or baseline_dataset_id, not both")
        limits = self.thresholds
        if all(value is None for value in limits.model_dump().values()):
            raise ValueError("thresholds: set at least one")
        against_baseline = any(getattr(limits, name) is not None for name in REGRESSION_THRESHOLDS)
        if against_baseline and self.baseline is None and self.baseline_dataset_id is None:
            raise ValueError("max_epiplexity_drop_percent and max_entropy_rise_percent need baseline or "
                             "baseline_dataset_id")
        return self


class VetCheck(BaseModel):
    """One threshold applied: the measured value, the limit, and whether it held."""

    name: str = Field(description="min-epiplexity | max-entropy | max-zstd-ratio | max-drop | max-entropy-rise")
    passed: bool
    measured: float = Field(description="The measured value, in `unit`.")
    threshold: float
    comparison: Literal[">=", "<="] = Field(description="How measured must compare with threshold to pass.")
    unit: str = Field(description="bits/byte, % (change against the baseline), or empty for a ratio.")
    detail: str = Field(description="One readable sentence with both values.")
    baseline_value: float | None = Field(None, description="Regression checks: the baseline's figure (bits/byte).")
    current_value: float | None = Field(None, description="Regression checks: this dataset's figure (bits/byte).")


class VetOut(BaseModel):
    """A verdict (or, while its jobs run, where to follow them)."""

    status: VetStatus = Field(description="passed | failed | pending (jobs still running) | error (a job failed).")
    passed: bool | None = Field(None, description="True when every check held; null until there is a verdict.")
    cached: bool = Field(description="True when every result needed was already computed: this request "
                         "queued and trained nothing.")
    dataset_id: str
    job_id: str = Field(description="The scoring job; follow it at /v1/jobs/{job_id} (or its /events).")
    job_status: JobStatus
    progress: float = Field(description="Fraction done of the jobs this verdict waits for, 0..1.")
    baseline_dataset_id: str | None = None
    baseline_job_id: str | None = None
    checks: list[VetCheck] = Field(default_factory=list)
    figures: VetFigures | None = None
    baseline: VetFigures | None = None
    warnings: list[str] = Field(default_factory=list, description="The estimator's warnings, and notes on "
                                "comparing with a baseline measured under other settings.")
    error: str | None = Field(None, description="Why there is no verdict (status `error`).")


# --- transfer and the reference panel -------------------------------------------------------

class PanelAdd(BaseModel):
    """Add an uploaded dataset to the reference panel of transfer targets."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(description="Id of an uploaded dataset.")
    description: str | None = Field(None, max_length=1000, description="What the dataset is, for readers.")


class PanelMemberOut(BaseModel):
    """A reference panel member: a target every transfer request with `true`/`panel` is measured to."""

    dataset_id: str
    name: str
    description: str | None = None
    builtin: bool = Field(description="One of the built-in members (generated, or read from Python's own "
                          "files); false for datasets an operator added.")
    bytes: int
    format: str
    sha256: str


class TransferRequest(JobSettings):
    """Measure transfer from `source` to `targets`, reusing the source's trained model when it has one."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="Id of the source dataset.")
    targets: list[str] | Literal["panel"] = Field(
        description='Target dataset ids, or "panel" for every reference panel member.',
        json_schema_extra=TARGET_LIST_SIZE)

    @field_validator("targets")
    @classmethod
    def _transfer_targets(cls, targets: list[str] | str) -> list[str] | str:
        return targets if isinstance(targets, str) else transfer_targets(targets)


class MeasuredTransfer(BaseModel):
    """Transfer measured from the dataset's trained model to one target (estimators.transfer)."""

    target_dataset_id: str
    target_name: str
    target_panel: bool = Field(description="The target is a reference panel member.")
    transfer_bits: float = Field(description="Bits a coder holding the source model saves on the target: the "
                                 "scratch code minus the code of a Bayes mixture of the scratch and warm-started "
                                 "runs. Never below -1 bit; this is what means and rankings use.")
    transfer_bits_per_byte: float = Field(description="transfer_bits per byte of the target coded.")
    warm_start_bits: float = Field(description="scratch_code_bits - transfer_code_bits, signed: negative when "
                                   "starting from the source model cost bits (interference). Not averaged.")
    warm_start_bits_per_byte: float = Field(description="warm_start_bits per byte of the target coded.")
    scratch_code_bits: float = Field(description="Prequential code length of the target from scratch, bits.")
    transfer_code_bits: float = Field(description="Prequential code length of the target from the source model, bits.")
    target_bytes_coded: int
    target_tokens_coded: int
    budget_flops: float = Field(description="Training FLOPs of each of the two runs on the target.")
    preset: str = Field(description="Preset the measurement used (its transfer budget).")
    seed: int
    model: dict[str, Any] = Field(description="The source model: family (the transformer), params, width, "
                                  "depth, context.")
    job_id: str | None = Field(None, description="The job that measured it.")
    measured_at: UtcDatetime


class PredictedTransfer(BaseModel):
    """Predicted transfer to a target not measured yet."""

    target_dataset_id: str
    target_name: str
    target_panel: bool
    predicted_transfer_bits_per_byte: float | None = Field(
        description="Predicted bits saved per byte of the target; null when there is no prediction (see note).")
    note: str | None = Field(None, description="Why there is no prediction, or a warning when the predictor "
                             "does no better than guessing the mean.")


class PredictorQuality(BaseModel):
    """How well the predictor does on pairs it did not see (leave-one-out over the measured pairs)."""

    loo_spearman: float | None = Field(description="Rank correlation of held-out predictions with the "
                                       "measurements; null when undefined (all equal).")
    loo_mae_bits_per_byte: float = Field(description="Mean absolute error of held-out predictions.")
    baseline_mae_bits_per_byte: float = Field(description="Error of always predicting the mean: the "
                                              "predictor is worth reading only when well below this.")
    features: list[str]


class PredictorInfo(BaseModel):
    """The predictor behind `predicted`: fitted on every measured pair in the database."""

    pairs: int = Field(description="Measured pairs it was fitted on (those with both datasets scored).")
    ready: bool = Field(description="False with too few pairs: then nothing is predicted.")
    quality: PredictorQuality | None = None
    message: str | None = Field(None, description="Why it does not predict, or why its predictions should not "
                                "be relied on (held-out error no better than guessing the mean).")


class DatasetTransferOut(BaseModel):
    """Measured transfer from a dataset to its targets, and predictions for the rest of the panel."""

    dataset_id: str
    name: str
    measured: list[MeasuredTransfer]
    predicted: list[PredictedTransfer] = Field(description="Panel members (and any `targets` asked for) "
                                               "without a measurement from this dataset.")
    predictor: PredictorInfo
