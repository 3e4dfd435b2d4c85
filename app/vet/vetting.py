"""Vetting: thresholds on a dataset's scores, checked into verdicts that carry the measured values.

Torch-free and web-free: the `epiplex vet` command and `POST /v1/vet` both turn an estimator
result (the JSON contract) into `Figures`, then `evaluate` them against `Thresholds` and, when
given, an earlier accepted result (`baseline`). Every figure is read at the result's largest
budget; all units are bits per byte of the dataset as uploaded, ratios and percentages.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

Status = Literal["passed", "failed", "error"]


class VetInputError(ValueError):
    """Usage or input that cannot be vetted; the message says what to fix (exit code 2)."""


REGRESSION_THRESHOLDS = ("max_epiplexity_drop_percent", "max_entropy_rise_percent")  # need a baseline


@dataclass(frozen=True)
class Thresholds:
    """Limits a dataset must respect; None leaves a check out.

    - min_epiplexity_bits_per_byte: S_T / bytes must be at least this (structure to learn).
    - max_entropy_bits_per_byte: H_T / bytes must be at most this (noise to the learner).
    - max_zstd_ratio: zstd-19's compressed size over the original size (zstd bits per byte / 8)
      must be at most this. Random, encrypted or already-compressed bytes sit at ~1.0; text and
      code near 0.2-0.3. It needs no training, so it flags junk whatever the budget; a learner's
      H_T / zstd is no such gate, as small budgets leave H_T above zstd even on clean text.
    - max_epiplexity_drop_percent: against the baseline, S_T per byte may fall at most this much.
    - max_entropy_rise_percent: against the baseline, H_T per byte may rise at most this much.
    """

    min_epiplexity_bits_per_byte: float | None = None
    max_entropy_bits_per_byte: float | None = None
    max_zstd_ratio: float | None = None
    max_epiplexity_drop_percent: float | None = None
    max_entropy_rise_percent: float | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise VetInputError(f"{item.name} must be a non-negative number, got {value!r}")

    @property
    def empty(self) -> bool:
        return all(getattr(self, item.name) is None for item in fields(self))

    @property
    def against_baseline(self) -> bool:
        """True when a check compares with a baseline (so one must be given)."""
        return any(getattr(self, name) is not None for name in REGRESSION_THRESHOLDS)

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


THRESHOLD_NAMES = tuple(item.name for item in fields(Thresholds))


@dataclass(frozen=True)
class Figures:
    """The headline figures of one result, at its largest budget."""

    epiplexity_bits_per_byte: float
    entropy_bits_per_byte: float
    zstd_bits_per_byte: float | None = None
    lzma_bits_per_byte: float | None = None
    epiplexity_bits: float | None = None
    entropy_bits: float | None = None
    bytes: int | None = None
    budget_flops: float | None = None
    preset: str | None = None
    estimator: str | None = None
    # one standard error of S per byte from the held-out estimate (None for older results)
    epiplexity_stderr_bits_per_byte: float | None = None

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> Figures:
        """Read the figures from an estimator result (the service's `result`, unchanged)."""
        missing = [key for key in ("epiplexity_bits_per_byte", "entropy_bits_per_byte") if key not in result]
        if missing:
            raise VetInputError(f"not an Epiplex result: no {', '.join(missing)}")
        baselines = result.get("baselines") or {}
        curve = result.get("curve") or []
        return cls(
            epiplexity_bits_per_byte=float(result["epiplexity_bits_per_byte"]),
            entropy_bits_per_byte=float(result["entropy_bits_per_byte"]),
            zstd_bits_per_byte=_float_or_none(baselines.get("zstd_bits_per_byte")),
            lzma_bits_per_byte=_float_or_none(baselines.get("lzma_bits_per_byte")),
            epiplexity_bits=_float_or_none(result.get("epiplexity_bits")),
            entropy_bits=_float_or_none(result.get("entropy_bits")),
            bytes=(result.get("dataset") or {}).get("bytes"),
            budget_flops=float(curve[-1]["budget_flops"]) if curve else None,
            preset=result.get("preset"), estimator=result.get("estimator"),
            epiplexity_stderr_bits_per_byte=_float_or_none(
                curve[-1].get("epiplexity_stderr_bits_per_byte") if curve else None))

    @classmethod
    def from_dict(cls, figures: dict[str, Any]) -> Figures:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in figures.items() if key in known})

    @property
    def zstd_ratio(self) -> float | None:
        """zstd-19's compressed size over the original (its bits per byte / 8); None without it."""
        return None if self.zstd_bits_per_byte is None else self.zstd_bits_per_byte / 8.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One threshold applied to one dataset: what was measured, the limit, and the verdict."""

    name: str
    passed: bool
    measured: float
    threshold: float
    comparison: Literal[">=", "<="]
    unit: str
    detail: str
    baseline_value: float | None = None  # regression checks: the baseline's figure...
    current_value: float | None = None  # ...and this dataset's, in bits/byte

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def format_value(value: float, unit: str) -> str:
    """How a measured value or threshold is written in tables and reports."""
    if math.isinf(value):
        return "inf" + ("%" if unit == "%" else f" {unit}")
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:.4f} {unit}" if unit else f"{value:.4f}"


def _limit(name: str, measured: float, threshold: float, comparison: str, unit: str, what: str) -> Check:
    passed = measured >= threshold if comparison == ">=" else measured <= threshold
    bound = "minimum" if comparison == ">=" else "maximum"
    verb = "meets" if passed else ("is below" if comparison == ">=" else "is above")
    detail = f"{what} {format_value(measured, unit)} {verb} the {bound} {format_value(threshold, unit)}"
    return Check(name, passed, measured, threshold, comparison, unit, detail)


# Per-byte figures are read to 4 decimals; a change from (near) zero is measured against this,
# so it stays a finite percentage (and JSON-safe) instead of an infinite one.
PERCENT_FLOOR_BITS_PER_BYTE = 1e-3


def percent_change(baseline: float, current: float) -> float:
    """Change from baseline to current, in percent of the baseline (floored at 0.001 bits/byte)."""
    return 100.0 * (current - baseline) / max(abs(baseline), PERCENT_FLOOR_BITS_PER_BYTE)


def evaluate(figures: Figures, thresholds: Thresholds, baseline: Figures | None = None) -> list[Check]:
    """Apply every threshold that is set; regression checks need `baseline`."""
    if thresholds.against_baseline and baseline is None:
        raise VetInputError("--max-drop and --max-entropy-rise compare with a baseline: "
                            "give --baseline RESULT.json or --baseline-dataset ID")
    checks = []
    if thresholds.min_epiplexity_bits_per_byte is not None:
        checks.append(_limit("min-epiplexity", figures.epiplexity_bits_per_byte,
                             thresholds.min_epiplexity_bits_per_byte, ">=", "bits/byte", "epiplexity"))
    if thresholds.max_entropy_bits_per_byte is not None:
        checks.append(_limit("max-entropy", figures.entropy_bits_per_byte,
                             thresholds.max_entropy_bits_per_byte, "<=", "bits/byte", "time-bounded entropy"))
    if thresholds.max_zstd_ratio is not None:
        ratio = figures.zstd_ratio
        if ratio is None:
            raise VetInputError("--max-zstd-ratio needs the zstd baseline, which this result lacks")
        checks.append(_limit("max-zstd-ratio", ratio, thresholds.max_zstd_ratio, "<=", "",
                             "zstd compressed / original size"))
    if thresholds.max_epiplexity_drop_percent is not None:
        checks.append(_regression("max-drop", "epiplexity", "dropped", -1.0,
                                  baseline.epiplexity_bits_per_byte, figures.epiplexity_bits_per_byte,
                                  thresholds.max_epiplexity_drop_percent))
    if thresholds.max_entropy_rise_percent is not None:
        checks.append(_regression("max-entropy-rise", "time-bounded entropy", "rose", 1.0,
                                  baseline.entropy_bits_per_byte, figures.entropy_bits_per_byte,
                                  thresholds.max_entropy_rise_percent))
    return checks


def _regression(name: str, what: str, verb: str, sign: float, before: float, now: float,
                limit: float) -> Check:
    """A figure may move against us (sign -1: falling, +1: rising) by at most `limit` percent."""
    moved = sign * percent_change(before, now)
    passed = moved <= limit
    detail = (f"{what} {before:.4f} -> {now:.4f} bits/byte (baseline -> now): "
              f"{verb if moved > 0 else 'changed'} {format_value(max(moved, 0.0), '%')}, "
              f"{'within' if passed else 'more than'} the allowed {format_value(limit, '%')}")
    return Check(name, passed, moved, limit, "<=", "%", detail, before, now)


def comparability_warnings(figures: Figures, baseline: Figures | None) -> list[str]:
    """Why a baseline comparison may mislead: it was measured under other settings."""
    if baseline is None:
        return []
    notes = []
    for name in ("preset", "estimator", "budget_flops"):
        ours, theirs = getattr(figures, name), getattr(baseline, name)
        if ours is not None and theirs is not None and ours != theirs:
            notes.append(f"the baseline was measured with {name} {theirs}, this dataset with {ours}: "
                         "the comparison mixes settings")
    return notes


@dataclass
class Verdict:
    """One dataset's outcome: its checks, its figures, and where they came from."""

    name: str
    status: Status
    checks: list[Check] = field(default_factory=list)
    figures: Figures | None = None
    baseline: Figures | None = None
    files: list[str] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    cached: bool | None = None  # service runs: answered from an earlier result, without training
    job_id: str | None = None
    dataset_id: str | None = None
    sha256: str | None = None

    @classmethod
    def judge(cls, name: str, figures: Figures, thresholds: Thresholds,
              baseline: Figures | None = None, **about: Any) -> Verdict:
        checks = evaluate(figures, thresholds, baseline)
        status: Status = "passed" if all(check.passed for check in checks) else "failed"
        verdict = cls(name, status, checks, figures, baseline, **about)
        verdict.warnings = verdict.warnings + comparability_warnings(figures, baseline)
        return verdict

    @classmethod
    def failed_to_run(cls, name: str, error: str, **about: Any) -> Verdict:
        return cls(name, "error", error=error, **about)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "files": self.files,
                "checks": [check.to_dict() for check in self.checks],
                "figures": self.figures.to_dict() if self.figures else None,
                "baseline": self.baseline.to_dict() if self.baseline else None,
                "error": self.error, "warnings": self.warnings, "cached": self.cached,
                "job_id": self.job_id, "dataset_id": self.dataset_id, "sha256": self.sha256}


def exit_code(verdicts: list[Verdict]) -> int:
    """0 when every check of every dataset passed, 1 when any failed, 2 when any could not be vetted."""
    if any(verdict.status == "error" for verdict in verdicts):
        return 2
    return 1 if any(verdict.status == "failed" for verdict in verdicts) else 0


def load_baseline(path: str | Path, name: str | None = None) -> Figures:
    """Figures of an earlier accepted result, from any JSON Epiplex writes.

    Accepts `epiplex score --json` output (the result contract), a job from `GET /v1/jobs/ID`
    (its `result`), a `POST /v1/vet` answer (its `figures`), or a report from
    `epiplex vet --report out.json`; a report with several datasets is matched by `name`.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise VetInputError(f"baseline {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VetInputError(f"baseline {path} is not readable JSON: {error}") from None
    if not isinstance(document, dict):
        raise VetInputError(f"baseline {path}: expected a JSON object")
    try:
        if isinstance(document.get("datasets"), list):
            return _from_report(document["datasets"], name, path)
        if isinstance(document.get("result"), dict):
            return Figures.from_result(document["result"])
        if isinstance(document.get("figures"), dict):
            return Figures.from_dict(document["figures"])
        return Figures.from_result(document)
    except (TypeError, ValueError, KeyError) as error:
        if isinstance(error, VetInputError):
            raise VetInputError(f"baseline {path}: {error}") from None
        raise VetInputError(f"baseline {path}: unexpected content ({error})") from None


def _from_report(datasets: list[dict], name: str | None, path: Path) -> Figures:
    scored = [entry for entry in datasets if entry.get("figures")]
    if not scored:
        raise VetInputError("the report holds no scored dataset")
    if len(scored) == 1:
        return Figures.from_dict(scored[0]["figures"])
    for entry in scored:
        if entry.get("name") == name:
            return Figures.from_dict(entry["figures"])
    names = ", ".join(str(entry.get("name")) for entry in scored)
    raise VetInputError(f"the report holds several datasets ({names}) and none is named {name!r}")
