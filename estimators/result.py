"""Typed results of an estimate; `to_dict()` is the JSON contract the service returns unchanged."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ModelSize:
    """One member of the model family: its parameter count and shape."""

    params: int
    width: int
    depth: int
    context: int


@dataclass(frozen=True)
class CurvePoint:
    """S_T and H_T at one compute budget, read off the frontier of all runs: `family` and
    `model` name the point that won (family "uniform": the untrained code)."""

    budget_flops: float
    epiplexity_bits: float
    entropy_bits: float
    epiplexity_bits_per_byte: float
    entropy_bits_per_byte: float
    model: dict
    ci95: dict | None = None
    family: str = "uniform"
    # Standard errors from the held-out estimate of the final model's loss, which S subtracts
    # and H takes (0 for the untrained code, whose length is exact); with several seeds, of
    # their mean. `ci95` is the spread over seeds instead.
    epiplexity_stderr_bits: float = 0.0
    entropy_stderr_bits: float = 0.0
    epiplexity_stderr_bits_per_byte: float = 0.0
    entropy_stderr_bits_per_byte: float = 0.0


@dataclass(frozen=True)
class DatasetInfo:
    """What was scored: `bytes` as uploaded, `bytes_coded` the per-byte figures' denominator
    (the selected field's text, or tokens x token width; see `estimators.data`)."""

    bytes: int
    bytes_coded: int
    tokens: int
    sha256: str
    format: str
    vocab_size: int


@dataclass
class EstimateResult:
    """Epiplexity and time-bounded entropy of one dataset; figures at the largest budget on top."""

    epiplexity_bits: float
    entropy_bits: float
    epiplexity_bits_per_byte: float
    entropy_bits_per_byte: float
    curve: list[CurvePoint]
    baselines: dict
    dataset: DatasetInfo
    estimator: str
    seeds: list[int]
    flops_spent: float
    seconds: float
    warnings: list[str] = field(default_factory=list)
    version: str = ""
    code_hash: str = ""  # sha256 of the estimators' source: what caches are keyed by
    preset: str | None = None
    model_family: str = "gpt-prenorm-mup"
    tokenizer: str = "bytes"
    device: str = "cpu"
    runs: list[dict] = field(default_factory=list)  # every run's checkpoints: the raw curves
    frontier: list[dict] = field(default_factory=list)  # lower convex hull of S+H (first seed)
    # The same curve read off each family's points alone (plus the uniform code), e.g. the
    # paper's transformer-only figure; the headline `curve` is the minimum over all of them.
    families: dict[str, list[CurvePoint]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
