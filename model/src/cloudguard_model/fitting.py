"""Fit the boosters from data streamed in chunks, with time-ordered splits.

Rows are assigned to a role by `UDI` (time order): the latest share is the
holdout (or the frozen evaluation set's UDIs are), the latest share of what
remains is the validation split, the rest is fitted. Data reaches XGBoost
through a `DataIter` into a `QuantileDMatrix`, so memory holds the quantised
matrix and one chunk of raw rows, never the whole file as a DataFrame.
"""

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from cloudguard_model.config import TrainConfig
from cloudguard_model.contract import FeatureReference, SafeBand
from cloudguard_model.dataio import (
    TRAINING_COLUMNS,
    UDI_COLUMN,
    LocalData,
    iter_typed_chunks,
)
from cloudguard_model.errors import TrainingError
from cloudguard_model.features import (
    DEFAULT_TYPE_CODES,
    FAILURE_MODES,
    FEATURE_NAMES,
    HEAT_DISSIPATION_MIN_DIFFERENCE_K,
    INPUT_COLUMNS,
    LABEL_COLUMN,
    POWER_BAND_W,
    features_from_frame,
)
from cloudguard_model.pyfunc import FailureModel, ModelMetadata

logger = logging.getLogger(__name__)

FIT: Final = 0
VALIDATION: Final = 1
HOLDOUT: Final = 2
EXCLUDED: Final = 3
"""Rows of the evaluation set found in the training data: never trained on."""

_MIN_MODE_POSITIVES: Final = 5
_LABELS: Final = (LABEL_COLUMN, *FAILURE_MODES)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SplitPlan:
    """Which UDIs play which role; decided before any model sees the data."""

    validation_from: int
    """First UDI of the validation split (training rows at or after it)."""
    holdout_from: int | None
    """First UDI of the holdout; None when an evaluation set is the holdout."""
    excluded: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.empty(0, dtype=np.int64)
    )
    """Sorted UDIs of the evaluation set; excluded from fit and validation."""

    def roles(self, udi: npt.ArrayLike) -> npt.NDArray[np.int8]:
        values = np.asarray(udi, dtype=np.int64)
        role = np.where(values >= self.validation_from, VALIDATION, FIT).astype(np.int8)
        if self.holdout_from is not None:
            role[values >= self.holdout_from] = HOLDOUT
        if self.excluded.size:
            role[np.isin(values, self.excluded, assume_unique=False)] = EXCLUDED
        return role


def plan_split(
    udis: npt.ArrayLike,
    config: TrainConfig,
    evaluation_udis: npt.ArrayLike | None = None,
) -> SplitPlan:
    """Time-ordered split of all UDIs in the data (see module docstring)."""
    ordered = np.sort(np.asarray(udis, dtype=np.int64))
    excluded = np.empty(0, dtype=np.int64)
    holdout_from: int | None = None
    if evaluation_udis is not None:
        excluded = np.unique(np.asarray(evaluation_udis, dtype=np.int64))
        training = ordered[~np.isin(ordered, excluded)]
    else:
        cut = len(ordered) - round(len(ordered) * config.holdout_fraction)
        if cut <= 0 or cut >= len(ordered):
            raise TrainingError(f"{len(ordered)} rows are too few for a holdout")
        holdout_from = int(ordered[cut])
        training = ordered[:cut]

    cut = len(training) - round(len(training) * config.validation_fraction)
    if cut <= 0 or cut >= len(training):
        raise TrainingError(
            f"{len(training)} training rows are too few for a validation split"
        )
    return SplitPlan(
        validation_from=int(training[cut]), holdout_from=holdout_from, excluded=excluded
    )


class _RoleIter(xgb.DataIter):
    """Feeds one role's rows to XGBoost chunk by chunk; collects labels once."""

    def __init__(
        self,
        data: LocalData,
        plan: SplitPlan,
        role: int,
        config: TrainConfig,
        sample_stride: int = 0,
    ) -> None:
        super().__init__(release_data=True)
        self._data = data
        self._plan = plan
        self._role = role
        self._config = config
        self._sample_stride = sample_stride
        self._chunks: Iterator[pd.DataFrame] | None = None
        self._first_pass = True
        self._labels: list[npt.NDArray[np.float32]] = []
        self._samples: list[pd.DataFrame] = []
        self.rows = 0

    def reset(self) -> None:
        if self._chunks is not None:
            self._first_pass = False
        self._chunks = None

    def next(self, input_data: Callable[..., None]) -> bool:
        if self._chunks is None:
            self._chunks = iter_typed_chunks(
                self._data, TRAINING_COLUMNS, self._config.chunk_rows
            )
        for chunk in self._chunks:
            rows = chunk[self._plan.roles(chunk[UDI_COLUMN].to_numpy()) == self._role]
            if rows.empty:
                continue
            labels = rows[list(_LABELS)].to_numpy(dtype=np.float32)
            input_data(
                data=features_from_frame(rows, DEFAULT_TYPE_CODES),
                label=labels[:, 0],
                feature_names=list(FEATURE_NAMES),
            )
            if self._first_pass:
                self._collect(rows, labels)
            return True
        return False

    def _collect(self, rows: pd.DataFrame, labels: npt.NDArray[np.float32]) -> None:
        self.rows += len(rows)
        self._labels.append(labels)
        if self._sample_stride:
            self._samples.append(
                rows.iloc[:: self._sample_stride][[*INPUT_COLUMNS, LABEL_COLUMN]]
            )

    def labels(self) -> npt.NDArray[np.float32]:
        """All labels of this role, columns `Machine failure` then FAILURE_MODES."""
        if not self._labels:
            return np.empty((0, len(_LABELS)), dtype=np.float32)
        return np.concatenate(self._labels)

    def sample(self) -> pd.DataFrame:
        if not self._samples:
            return pd.DataFrame(columns=[*INPUT_COLUMNS, LABEL_COLUMN])
        return pd.concat(self._samples, ignore_index=True)


@dataclass
class Matrices:
    """The quantised fit and validation matrices and their labels."""

    fit: xgb.QuantileDMatrix
    validation: xgb.QuantileDMatrix
    fit_labels: npt.NDArray[np.float32]
    validation_labels: npt.NDArray[np.float32]
    sample: pd.DataFrame
    seconds: float


def build_matrices(
    data: LocalData, plan: SplitPlan, config: TrainConfig, total_rows: int
) -> Matrices:
    """Stream the data into XGBoost: one QuantileDMatrix per split."""
    started = time.perf_counter()
    stride = max(1, total_rows // config.sample_rows)
    fit_iter = _RoleIter(data, plan, FIT, config, sample_stride=stride)
    fit = xgb.QuantileDMatrix(
        fit_iter,
        max_bin=config.max_bin,
        nthread=config.threads(total_rows),
    )
    validation_iter = _RoleIter(data, plan, VALIDATION, config)
    validation = xgb.QuantileDMatrix(
        validation_iter,
        ref=fit,
        max_bin=config.max_bin,
        nthread=config.threads(total_rows),
    )
    matrices = Matrices(
        fit=fit,
        validation=validation,
        fit_labels=fit_iter.labels(),
        validation_labels=validation_iter.labels(),
        sample=fit_iter.sample(),
        seconds=time.perf_counter() - started,
    )
    logger.info(
        "event=matrices_built fit_rows=%d validation_rows=%d seconds=%.2f",
        fit.num_row(),
        validation.num_row(),
        matrices.seconds,
    )
    return matrices


def _train_head(
    matrices: Matrices,
    column: int,
    config: TrainConfig,
    *,
    rounds: int,
    metric: str,
) -> xgb.Booster:
    matrices.fit.set_label(matrices.fit_labels[:, column])
    matrices.validation.set_label(matrices.validation_labels[:, column])
    mode = column > 0
    params = config.head_params(len(matrices.fit_labels), mode=mode, metric=metric)
    booster = xgb.train(
        params,
        matrices.fit,
        num_boost_round=rounds,
        evals=[(matrices.validation, "validation")],
        early_stopping_rounds=config.patience(mode=mode),
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    # Keep only the trees up to the best validation round.
    return booster[: best + 1]


@dataclass
class Heads:
    failure: xgb.Booster
    modes: dict[str, xgb.Booster]
    constant_modes: dict[str, float]
    seconds: float


def train_heads(matrices: Matrices, config: TrainConfig) -> Heads:
    """The failure head, then one head per failure mode, on the same matrices."""
    started = time.perf_counter()
    for name, labels in (
        ("fit", matrices.fit_labels),
        ("validation", matrices.validation_labels),
    ):
        positives = int(labels[:, 0].sum()) if len(labels) else 0
        if positives == 0 or positives == len(labels):
            raise TrainingError(
                f"the {name} split has {positives} failures in {len(labels)} rows; "
                "both classes are needed: train on more (or later) data"
            )

    failure = _train_head(
        matrices, 0, config, rounds=config.num_boost_round, metric="aucpr"
    )
    modes: dict[str, xgb.Booster] = {}
    constant: dict[str, float] = {}
    for column, mode in enumerate(FAILURE_MODES, start=1):
        positives = int(matrices.fit_labels[:, column].sum())
        if positives < _MIN_MODE_POSITIVES:
            constant[mode] = positives / max(1, len(matrices.fit_labels))
            logger.warning(
                "event=mode_head_skipped mode=%s positives=%d reason=too_few",
                mode,
                positives,
            )
            continue
        modes[mode] = _train_head(
            matrices, column, config, rounds=config.mode_boost_round, metric="logloss"
        )
    matrices.fit.set_label(matrices.fit_labels[:, 0])
    matrices.validation.set_label(matrices.validation_labels[:, 0])

    heads = Heads(failure, modes, constant, time.perf_counter() - started)
    logger.info(
        "event=heads_trained failure_trees=%d seconds=%.2f",
        failure.num_boosted_rounds(),
        heads.seconds,
    )
    return heads


def feature_reference(features: FloatArray, bins: int) -> dict[str, FeatureReference]:
    """Quantile bins of each training feature, for drift checks in serving."""
    reference: dict[str, FeatureReference] = {}
    quantiles = np.linspace(0, 1, bins + 1)[1:-1]
    for column, name in enumerate(FEATURE_NAMES):
        values = features[:, column]
        values = values[np.isfinite(values)]
        edges = (
            np.unique(np.quantile(values, quantiles)) if values.size else np.empty(0)
        )
        counts = np.bincount(
            np.searchsorted(edges, values, side="left"), minlength=edges.size + 1
        )
        proportions = counts / max(1, counts.sum())
        reference[name] = FeatureReference(
            bin_edges=tuple(float(edge) for edge in edges),
            proportions=tuple(float(share) for share in proportions),
        )
    return reference


_UNITS: Final = {
    "air_temperature_k": "K",
    "process_temperature_k": "K",
    "rotational_speed_rpm": "rpm",
    "torque_nm": "Nm",
    "tool_wear_min": "min",
    "temperature_difference_k": "K",
    "power_w": "W",
    "tool_strain_min_nm": "min*Nm",
    "tool_strain_ratio": "",
    "power_band_margin_w": "W",
    "heat_dissipation_margin": "",
}


def safe_bands(features: FloatArray, labels: npt.ArrayLike) -> dict[str, SafeBand]:
    """Physical limits where the data set documents them; elsewhere the 1st-99th
    percentile of training rows that did not fail."""
    low_power, high_power = POWER_BAND_W
    bands = {
        "power_w": SafeBand(low_power, high_power, "W", "physics"),
        "power_band_margin_w": SafeBand(0.0, None, "W", "physics"),
        "temperature_difference_k": SafeBand(
            HEAT_DISSIPATION_MIN_DIFFERENCE_K, None, "K", "physics"
        ),
        "heat_dissipation_margin": SafeBand(0.0, None, "", "physics"),
        "tool_strain_ratio": SafeBand(None, 1.0, "", "physics"),
    }
    healthy = features[np.asarray(labels) == 0]
    for column, name in enumerate(FEATURE_NAMES):
        if name in bands or name == "type_code" or healthy.size == 0:
            continue
        low, high = np.quantile(healthy[:, column], [0.01, 0.99])
        bands[name] = SafeBand(float(low), float(high), _UNITS.get(name, ""), "data")
    return bands


def assemble_model(
    heads: Heads, threshold: float, sample: pd.DataFrame, config: TrainConfig
) -> FailureModel:
    """The pyfunc model from trained heads and a sample of training rows."""
    features = features_from_frame(sample, DEFAULT_TYPE_CODES)
    metadata = ModelMetadata(
        threshold=threshold,
        type_codes=dict(DEFAULT_TYPE_CODES),
        feature_names=tuple(FEATURE_NAMES),
        reference=feature_reference(features, config.reference_bins),
        safe_bands=safe_bands(features, sample[LABEL_COLUMN].to_numpy()),
        mode_base_rates=dict(heads.constant_modes),
        constant_modes=tuple(heads.constant_modes),
    )
    return FailureModel.from_parts(heads.failure, heads.modes, metadata)


@dataclass
class HoldoutScores:
    labels: npt.NDArray[np.float32]
    """Columns `Machine failure` then FAILURE_MODES."""
    probability: FloatArray
    mode_probability: FloatArray


def score_frame(model: FailureModel, frame: pd.DataFrame) -> HoldoutScores:
    """Score labelled rows through the model's own serving path."""
    scores = model.score(
        frame[INPUT_COLUMNS[0]].astype(str).to_numpy(dtype=object),
        frame[list(INPUT_COLUMNS[1:])].to_numpy(dtype=np.float64),
    )
    return HoldoutScores(
        labels=frame[list(_LABELS)].to_numpy(dtype=np.float32),
        probability=scores.probability,
        mode_probability=scores.mode_probability,
    )


def score_role(
    model: FailureModel, data: LocalData, plan: SplitPlan, role: int, chunk_rows: int
) -> HoldoutScores:
    """Score one role's rows chunk by chunk; keeps only labels and scores."""
    parts: list[HoldoutScores] = []
    for chunk in iter_typed_chunks(data, TRAINING_COLUMNS, chunk_rows):
        rows = chunk[plan.roles(chunk[UDI_COLUMN].to_numpy()) == role]
        if not rows.empty:
            parts.append(score_frame(model, rows))
    if not parts:
        raise TrainingError("the holdout has no rows; check holdout_fraction")
    return HoldoutScores(
        labels=np.concatenate([part.labels for part in parts]),
        probability=np.concatenate([part.probability for part in parts]),
        mode_probability=np.concatenate([part.mode_probability for part in parts]),
    )


def validation_probabilities(heads: Heads, matrices: Matrices) -> FloatArray:
    """Failure probabilities on the validation matrix (threshold choice)."""
    return np.asarray(heads.failure.predict(matrices.validation), dtype=np.float64)


def describe(plan: SplitPlan) -> dict[str, Any]:
    return {
        "validation_from_udi": plan.validation_from,
        "holdout_from_udi": plan.holdout_from,
        "excluded_udis": int(plan.excluded.size),
    }
