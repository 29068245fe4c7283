"""Feature drift: PSI of a sliding window of served readings against training.

The reference distribution ships with the model (`Scorer.reference`, bins and
proportions per feature). The window holds the last `drift_window` feature
rows in a ring buffer; PSI is computed on demand (GET /v1/drift, /metrics).
"""

import threading
from collections.abc import Mapping

import numpy as np
from cloudguard_model.contract import FeatureReference
from cloudguard_model.features import FEATURE_NAMES, NUMERIC_COLUMNS

_EPSILON = 1e-4
# Reference keys may name engineered features or raw AI4I columns.
_COLUMN_OF = {name: i for i, name in enumerate(FEATURE_NAMES)} | {
    column: i + 1 for i, column in enumerate(NUMERIC_COLUMNS)
}


def psi(values: np.ndarray, reference: FeatureReference) -> float:
    """Population stability index of `values` against a reference histogram."""
    edges = np.asarray(reference.bin_edges, dtype=np.float64)
    expected = np.asarray(reference.proportions, dtype=np.float64)
    bins = np.searchsorted(edges, values, side="left")
    counts = np.bincount(bins, minlength=len(expected)).astype(np.float64)
    actual = np.clip(counts / max(len(values), 1), _EPSILON, None)
    expected = np.clip(expected, _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class DriftMonitor:
    """Ring buffer of recent feature rows; thread-safe."""

    def __init__(self, window: int) -> None:
        self._rows = np.zeros((window, len(FEATURE_NAMES)), dtype=np.float64)
        self._next = 0
        self._filled = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._filled

    def observe(self, features: np.ndarray) -> None:
        """Add feature rows (FEATURE_NAMES order); the oldest fall out."""
        window = len(self._rows)
        features = features[-window:]
        with self._lock:
            count = len(features)
            end = self._next + count
            if end <= window:
                self._rows[self._next : end] = features
            else:
                split = window - self._next
                self._rows[self._next :] = features[:split]
                self._rows[: count - split] = features[split:]
            self._next = end % window
            self._filled = min(window, self._filled + count)

    def report(self, reference: Mapping[str, FeatureReference]) -> dict[str, float]:
        """PSI per feature the reference covers; empty until readings arrive."""
        with self._lock:
            window = self._rows[: self._filled].copy()
        if not len(window):
            return {}
        return {
            name: round(psi(window[:, _COLUMN_OF[name]], ref), 6)
            for name, ref in reference.items()
            if name in _COLUMN_OF
        }
