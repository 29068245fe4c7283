"""Training configuration: one typed object, each field documented here.

Defaults train the shipped AI4I data set to the product's quality targets on a
laptop; a YAML file (`cloudguard train --config`) overrides any field.
"""

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from cloudguard_model.errors import ConfigError
from cloudguard_model.features import FEATURE_NAMES, INPUT_COLUMNS, check_no_leakage

ThresholdObjective = Literal["f1", "cost"]

MONOTONE_FEATURES: dict[str, int] = {
    "rotational_speed_rpm": -1,
    "tool_wear_min": 1,
    "tool_strain_min_nm": 1,
    "tool_strain_ratio": 1,
    "power_band_margin_w": -1,
    "heat_dissipation_margin": -1,
}
"""Physics the model must respect: risk never falls as the tool wears or
strains, and never rises as power or heat dissipation move into their safe
band or as speed (which carries heat away) rises; the high-speed, low-power
failure is the power margin's job. Constraints keep the sparse failure
examples from bending the score the wrong way near a limit."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides which model comes out of a training run."""

    input_columns: tuple[str, ...] = INPUT_COLUMNS
    """Raw columns the model reads. Only the six AI4I readings are allowed;
    identifiers, the label and failure-mode flags are refused (leakage)."""
    seed: int = 7
    """Seed for XGBoost; the same data and config give the same model."""
    max_depth: int = 4
    learning_rate: float = 0.05
    max_bin: int = 1024
    """Histogram bins per feature; many bins let splits sit close to the
    physical limits (e.g. 3,500 W) that decide failures."""
    min_child_weight: float = 1.0
    subsample: float = 1.0
    colsample_bytree: float = 1.0
    num_boost_round: int = 2000
    """Upper bound on trees for the failure head; early stopping picks fewer."""
    early_stopping_rounds: int = 100
    mode_boost_round: int = 300
    """Upper bound on trees for each failure-mode head."""
    mode_learning_rate: float = 0.15
    mode_early_stopping_rounds: int = 20
    """Mode heads say what is likely to fail, not whether: they learn faster
    and stop sooner than the failure head, which keeps five extra heads from
    dominating training time."""
    nthread: int = 0
    """XGBoost threads; 0 picks 1 thread under `parallel_rows` training rows
    (threads only add synchronisation there) and every core above."""
    parallel_rows: int = 500_000
    validation_fraction: float = 0.2
    """Latest share of the training rows (by UDI) used to stop early and to
    choose the decision threshold; never the holdout."""
    holdout_fraction: float = 0.2
    """Latest share of all rows (by UDI) held out when no evaluation set is
    given."""
    monotone: bool = True
    """Apply MONOTONE_FEATURES as XGBoost monotone constraints."""
    threshold_objective: ThresholdObjective = "f1"
    """How the decision threshold is chosen on validation data: best F1, or
    lowest expected cost with the two costs below."""
    missed_failure_cost: float = 10.0
    """Cost of a failure the model did not flag (threshold_objective=cost)."""
    false_alarm_cost: float = 1.0
    """Cost of an alarm on a machine that did not fail (threshold_objective=cost)."""
    threshold_tolerance: float = 0.04
    """Validation scores this close to the best count as ties (F1 points, or a
    relative share of the best cost); among ties the threshold nearest the
    calibrated optimum (best F1 / 2, or the cost ratio) wins, which keeps a
    few validation rows from dragging the threshold around."""
    chunk_rows: int = 250_000
    """Rows read per chunk when streaming data into XGBoost."""
    reference_bins: int = 10
    """Quantile bins per feature in the drift reference stored with the model."""
    sample_rows: int = 100_000
    """Training rows kept in memory for the drift reference and safe bands."""

    def __post_init__(self) -> None:
        check_no_leakage(self.input_columns)
        unknown = [c for c in self.input_columns if c not in INPUT_COLUMNS]
        if unknown:
            raise ConfigError(
                f"input_columns {unknown} are not AI4I readings; "
                f"choose from {list(INPUT_COLUMNS)}"
            )
        if set(self.input_columns) != set(INPUT_COLUMNS):
            raise ConfigError(
                f"input_columns {list(self.input_columns)} must list all of "
                f"{list(INPUT_COLUMNS)}: every derived feature needs them"
            )
        for name in ("validation_fraction", "holdout_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise ConfigError(f"{name}={value} must be between 0 and 0.5")
        if self.threshold_objective not in ("f1", "cost"):
            raise ConfigError(
                f"threshold_objective={self.threshold_objective!r}: use 'f1' or 'cost'"
            )
        if self.missed_failure_cost <= 0 or self.false_alarm_cost <= 0:
            raise ConfigError("missed_failure_cost and false_alarm_cost must be > 0")
        if not 0.0 <= self.threshold_tolerance < 0.5:
            raise ConfigError(
                f"threshold_tolerance={self.threshold_tolerance} must be in [0, 0.5)"
            )
        for name in _AT_LEAST_ONE:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")
        if self.reference_bins < 2:
            raise ConfigError(
                f"reference_bins={self.reference_bins} must be at least 2 (drift "
                "needs bins to compare)"
            )
        if self.chunk_rows < 1_000:
            raise ConfigError(f"chunk_rows={self.chunk_rows} must be at least 1000")

    def threads(self, rows: int) -> int:
        """Threads for a data set of `rows` rows (see `nthread`)."""
        if self.nthread > 0:
            return self.nthread
        return 1 if rows < self.parallel_rows else max(1, os.cpu_count() or 1)

    def xgb_params(self, rows: int = 0) -> dict[str, Any]:
        """XGBoost booster parameters for a binary head on `rows` rows."""
        params: dict[str, Any] = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "max_bin": self.max_bin,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "seed": self.seed,
            "nthread": self.threads(rows),
        }
        if self.monotone:
            directions = (MONOTONE_FEATURES.get(name, 0) for name in FEATURE_NAMES)
            params["monotone_constraints"] = "(" + ",".join(map(str, directions)) + ")"
        return params

    def head_params(self, rows: int, *, mode: bool, metric: str) -> dict[str, Any]:
        """Parameters of the failure head (mode=False) or of a mode head."""
        params = {**self.xgb_params(rows), "eval_metric": metric}
        if mode:
            params["eta"] = self.mode_learning_rate
        return params

    def patience(self, *, mode: bool) -> int:
        """Early-stopping rounds for the failure head or a mode head."""
        return self.mode_early_stopping_rounds if mode else self.early_stopping_rounds

    def as_params(self) -> dict[str, str]:
        """Flat string parameters for MLflow."""
        return {key: str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "TrainConfig":
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown training settings {unknown}; known: {sorted(known)}"
            )
        cleaned = {name: _typed(name, value) for name, value in values.items()}
        return cls(**cleaned)

    @classmethod
    def from_yaml(cls, path: Path) -> "TrainConfig":
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read training config {path}: {error}") from error
        if not isinstance(values, Mapping):
            raise ConfigError(f"{path}: expected a mapping of settings at top level")
        return cls.from_mapping(values)


_AT_LEAST_ONE: Final = (
    "max_depth",
    "max_bin",
    "num_boost_round",
    "early_stopping_rounds",
    "mode_boost_round",
    "mode_early_stopping_rounds",
    "parallel_rows",
    "sample_rows",
)
_DEFAULTS: Final = TrainConfig()


def _typed(name: str, value: Any) -> Any:
    """`value` checked against the type of the setting's default."""
    default = getattr(_DEFAULTS, name)
    if isinstance(default, tuple):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{name}={value!r} must be a list of column names")
        return tuple(str(item) for item in value)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"{name}={value!r} must be a {type(default).__name__} "
            f"(the default is {default!r})"
        )
    return float(value) if isinstance(default, float) else value
