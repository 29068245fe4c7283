"""What a registered CloudGuard model promises its callers.

The registered model is an MLflow pyfunc. `predict(DataFrame)` is the portable
path (gate, batch scoring, `mlflow models serve`); the service takes the fast
path instead: it unwraps the python model and calls `Scorer.score` with numpy
arrays, so no DataFrame is built per request.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from cloudguard_model.features import FAILURE_MODES

PROBABILITY_COLUMN: Final = "failure_probability"
DECISION_COLUMN: Final = "failure"
MODE_COLUMN: Final = "failure_mode"
MODE_PROBABILITY_COLUMNS: Final = tuple(f"{mode}_probability" for mode in FAILURE_MODES)
PREDICTION_COLUMNS: Final = (
    PROBABILITY_COLUMN,
    DECISION_COLUMN,
    MODE_COLUMN,
    *MODE_PROBABILITY_COLUMNS,
)
"""Columns of the DataFrame that the pyfunc's predict returns, in order."""


@dataclass(frozen=True)
class Scores:
    """Scores for a batch of readings, one row per reading."""

    probability: npt.NDArray[np.float64]
    """Probability of `Machine failure`, shape (n,)."""
    failure: npt.NDArray[np.bool_]
    """Decision at the model's own threshold, shape (n,)."""
    mode_probability: npt.NDArray[np.float64]
    """Probability of each of FAILURE_MODES, shape (n, 5)."""
    contributions: npt.NDArray[np.float64] | None = None
    """Per-feature contributions to the failure log-odds, shape (n, features + 1),
    the last column being the bias; only when asked for."""


@dataclass(frozen=True)
class FeatureReference:
    """Training distribution of one feature, for drift (PSI) in serving."""

    bin_edges: tuple[float, ...]
    """Inner edges; bins are (-inf, e0], (e0, e1], ..., (e_last, inf)."""
    proportions: tuple[float, ...]
    """Share of training rows per bin; len(bin_edges) + 1 entries."""


@runtime_checkable
class Scorer(Protocol):
    """The fast path that a loaded CloudGuard model exposes."""

    threshold: float
    feature_names: Sequence[str]
    type_codes: Mapping[str, int]
    reference: Mapping[str, FeatureReference]

    def score(
        self,
        types: Sequence[str] | npt.NDArray[np.object_],
        numeric: npt.ArrayLike,
        *,
        explain: bool = False,
    ) -> Scores:
        """Score raw readings (NUMERIC_COLUMNS order); explain adds contributions."""
        ...


@dataclass(frozen=True)
class SafeBand:
    """Range of one feature where failures are rare, to phrase contributions in
    plant terms (e.g. "power 9,400 W is above the safe band 3,500-9,000 W").

    A loaded FailureModel exposes `safe_bands: Mapping[str, SafeBand]` keyed by
    feature name; features without a band are absent.
    """

    low: float | None
    """Below this value failures become likely; None when there is no floor."""
    high: float | None
    """Above this value failures become likely; None when there is no ceiling."""
    unit: str
    source: str
    """`physics` (the data set's documented limits) or `data` (the 1st-99th
    percentile of training rows that did not fail)."""
