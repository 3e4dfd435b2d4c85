"""Predicted transfer: a small model fitted on measured (source, target) pairs.

Features cost nothing beyond scoring: both datasets' S_T and H_T per byte and their sizes.
Ridge regression on standardised features, judged by leave-one-out rank correlation and error,
so users see how far to trust it. With too few pairs it declines to predict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_PAIRS = 8
RIDGE = 1.0
FEATURES = ("source_epiplexity_bits_per_byte", "source_entropy_bits_per_byte",
            "source_log2_bytes_coded", "target_epiplexity_bits_per_byte",
            "target_entropy_bits_per_byte", "target_log2_bytes_coded")


def _log2_size(result: dict) -> float:
    """log2 of the bytes coded; results from before `bytes_coded` existed carry only `bytes`."""
    dataset = result["dataset"]
    return math.log2(max(1, dataset.get("bytes_coded") or dataset["bytes"]))


def features(source: dict, target: dict) -> list[float]:
    """Feature vector from two results' top-level figures (the scoring JSON contract)."""
    return [source["epiplexity_bits_per_byte"], source["entropy_bits_per_byte"],
            _log2_size(source),
            target["epiplexity_bits_per_byte"], target["entropy_bits_per_byte"],
            _log2_size(target)]


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    weights = np.linalg.solve(z.T @ z + RIDGE * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return mean, scale, weights, float(y.mean())


def _rank(values: np.ndarray) -> np.ndarray:
    order = values.argsort()
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _rank(a), _rank(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class TransferPredictor:
    """Fitted on `pairs` measured pairs; `quality` says how well it predicts held-out pairs."""

    pairs: int
    quality: dict
    _params: tuple | None = None

    @property
    def ready(self) -> bool:
        return self._params is not None

    def predict(self, source: dict, target: dict) -> float | None:
        """Predicted transfer bits per byte of the target, or None when too few pairs."""
        if self._params is None:
            return None
        mean, scale, weights, bias = self._params
        return float(((np.array(features(source, target)) - mean) / scale) @ weights + bias)


def fit(rows: list[tuple[dict, dict, float]]) -> TransferPredictor:
    """Fit on (source result, target result, measured transfer bits per byte) rows."""
    if len(rows) < MIN_PAIRS:
        return TransferPredictor(len(rows), {
            "message": f"too few measured pairs to predict ({len(rows)} of {MIN_PAIRS} needed)"})
    x = np.array([features(s, t) for s, t, _ in rows])
    y = np.array([v for _, _, v in rows])
    held_out = np.empty(len(y))
    for i in range(len(y)):  # leave-one-out
        keep = np.arange(len(y)) != i
        mean, scale, weights, bias = _fit(x[keep], y[keep])
        held_out[i] = ((x[i] - mean) / scale) @ weights + bias
    quality = {"loo_spearman": spearman(held_out, y),
               "loo_mae_bits_per_byte": float(np.abs(held_out - y).mean()),
               "baseline_mae_bits_per_byte": float(np.abs(y - y.mean()).mean()),
               "features": list(FEATURES)}
    return TransferPredictor(len(rows), quality, _fit(x, y))
