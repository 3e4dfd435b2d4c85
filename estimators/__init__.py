"""Epiplex estimators: epiplexity and time-bounded entropy of a dataset, in bits.

Importing this package does not import torch; `estimate` loads it on first call,
so a web process can read presets, formats and result types without it.
"""
import functools
import hashlib
from pathlib import Path

from estimators.presets import PRESETS, Preset
from estimators.result import CurvePoint, DatasetInfo, EstimateResult, ModelSize

__version__ = "0.1.0"  # for people; caches are keyed by `code_hash`, which no one has to bump

__all__ = ["estimate", "code_hash", "PRESETS", "Preset", "EstimateResult", "CurvePoint",
           "DatasetInfo", "ModelSize", "__version__"]


@functools.lru_cache(maxsize=None)
def source_hash(root: Path) -> str:
    """sha256 over the source of every module under `root` (paths and bytes, in path order)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_hash() -> str:
    """`source_hash` of this package.

    Presets live in the package, so settings are covered too. Saved runs, cached results and
    compiled kernels (`estimators.kernels`) are keyed by it: any change to the estimators scores
    afresh instead of serving stale figures."""
    return source_hash(Path(__file__).resolve().parent)


def estimate(source, **options) -> EstimateResult:
    """Score `source` (a path or bytes); see `estimators.sweep.estimate` for the options."""
    from estimators.sweep import estimate as _estimate

    return _estimate(source, **options)
