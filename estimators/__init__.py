"""Epiplex estimators: epiplexity and time-bounded entropy of a dataset, in bits.

Importing this package does not import torch; `estimate` loads it on first call,
so a web process can read presets, formats and result types without it.
"""
from estimators.presets import PRESETS, Preset
from estimators.result import CurvePoint, DatasetInfo, EstimateResult, ModelSize

__version__ = "0.1.0"

__all__ = ["estimate", "PRESETS", "Preset", "EstimateResult", "CurvePoint", "DatasetInfo",
           "ModelSize", "__version__"]


def estimate(source, **options) -> EstimateResult:
    """Score `source` (a path or bytes); see `estimators.sweep.estimate` for the options."""
    from estimators.sweep import estimate as _estimate

    return _estimate(source, **options)
