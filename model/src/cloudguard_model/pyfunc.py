"""The registered model: XGBoost boosters behind the shared feature step.

`FailureModel` is an MLflow pyfunc whose artifacts are one XGBoost-flavour
model per head (`failure` plus one per failure mode) and a JSON file with the
threshold, type codes, feature names, drift reference and safe bands. After
loading it satisfies `contract.Scorer`: the service calls `score` with numpy
arrays and no DataFrame is built on that path.
"""

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import mlflow
import mlflow.pyfunc
import mlflow.xgboost
import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from cloudguard_model.contract import (
    DECISION_COLUMN,
    MODE_COLUMN,
    MODE_PROBABILITY_COLUMNS,
    PREDICTION_COLUMNS,
    PROBABILITY_COLUMN,
    FeatureReference,
    SafeBand,
    Scores,
)
from cloudguard_model.errors import CloudGuardModelError
from cloudguard_model.features import (
    FAILURE_MODES,
    FEATURE_NAMES,
    build_features,
    frame_to_inputs,
)

logger = logging.getLogger(__name__)

FAILURE_HEAD: Final = "failure"
METADATA_ARTIFACT: Final = "metadata"
NO_MODE: Final = "none"
"""`failure_mode` value for a reading the model does not flag."""


def mode_artifact(mode: str) -> str:
    return f"mode_{mode}"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything besides the boosters that travels with the model."""

    threshold: float
    type_codes: dict[str, int]
    feature_names: tuple[str, ...]
    reference: dict[str, FeatureReference]
    safe_bands: dict[str, SafeBand]
    mode_base_rates: dict[str, float]
    """Share of training rows per failure mode; used as a constant probability
    for a mode that had too few examples to train a head."""
    constant_modes: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        raw = json.loads(text)
        return cls(
            threshold=float(raw["threshold"]),
            type_codes={k: int(v) for k, v in raw["type_codes"].items()},
            feature_names=tuple(raw["feature_names"]),
            reference={
                name: FeatureReference(
                    bin_edges=tuple(value["bin_edges"]),
                    proportions=tuple(value["proportions"]),
                )
                for name, value in raw["reference"].items()
            },
            safe_bands={
                name: SafeBand(**value) for name, value in raw["safe_bands"].items()
            },
            mode_base_rates={k: float(v) for k, v in raw["mode_base_rates"].items()},
            constant_modes=tuple(raw.get("constant_modes", ())),
        )


class ModelLoadError(CloudGuardModelError):
    """The model's artifacts do not match what this code expects."""


class FailureModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Failure probability, decision and per-mode probabilities from raw readings."""

    threshold: float
    feature_names: Sequence[str]
    type_codes: Mapping[str, int]
    reference: Mapping[str, FeatureReference]
    safe_bands: Mapping[str, SafeBand]

    def __init__(self) -> None:
        self._failure: xgb.Booster | None = None
        self._modes: dict[str, xgb.Booster] = {}
        self._metadata: ModelMetadata | None = None

    @classmethod
    def from_parts(
        cls,
        failure: xgb.Booster,
        modes: Mapping[str, xgb.Booster],
        metadata: ModelMetadata,
    ) -> "FailureModel":
        """A ready model from in-memory boosters (training-time evaluation)."""
        model = cls()
        model._attach(failure, dict(modes), metadata)
        return model

    def _attach(
        self,
        failure: xgb.Booster,
        modes: dict[str, xgb.Booster],
        metadata: ModelMetadata,
    ) -> None:
        if (
            tuple(metadata.feature_names)
            != FEATURE_NAMES[: len(metadata.feature_names)]
        ):
            raise ModelLoadError(
                f"model features {list(metadata.feature_names)} do not match this "
                f"code's feature step {list(FEATURE_NAMES)}; install the "
                "cloudguard-model version the model was trained with"
            )
        # One thread per call: the service gets its parallelism from concurrent
        # requests, and OpenMP threads on a busy host spin instead of working.
        for booster in (failure, *modes.values()):
            booster.set_param({"nthread": 1})
        self._failure = failure
        self._modes = modes
        self._metadata = metadata
        self.threshold = metadata.threshold
        self.feature_names = metadata.feature_names
        self.type_codes = metadata.type_codes
        self.reference = metadata.reference
        self.safe_bands = metadata.safe_bands

    def load_context(self, context: Any) -> None:
        artifacts: Mapping[str, str] = context.artifacts
        metadata = ModelMetadata.from_json(
            Path(artifacts[METADATA_ARTIFACT]).read_text(encoding="utf-8")
        )
        failure = mlflow.xgboost.load_model(artifacts[FAILURE_HEAD])
        modes = {
            mode: mlflow.xgboost.load_model(artifacts[mode_artifact(mode)])
            for mode in FAILURE_MODES
            if mode not in metadata.constant_modes
        }
        self._attach(failure, modes, metadata)
        logger.info(
            "event=model_loaded threshold=%.4f features=%d",
            metadata.threshold,
            len(metadata.feature_names),
        )

    def _require(self) -> tuple[xgb.Booster, ModelMetadata]:
        if self._failure is None or self._metadata is None:
            raise ModelLoadError("FailureModel used before load_context")
        return self._failure, self._metadata

    @property
    def metadata(self) -> ModelMetadata:
        """Threshold, type codes, features, reference and bands of this model."""
        return self._require()[1]

    def features(
        self, types: Sequence[str] | npt.NDArray[np.object_], numeric: npt.ArrayLike
    ) -> npt.NDArray[np.float64]:
        """The model's feature matrix for raw readings (NUMERIC_COLUMNS order)."""
        _, metadata = self._require()
        matrix = build_features(types, numeric, metadata.type_codes)
        return matrix[:, : len(metadata.feature_names)]

    def score(
        self,
        types: Sequence[str] | npt.NDArray[np.object_],
        numeric: npt.ArrayLike,
        *,
        explain: bool = False,
    ) -> Scores:
        """Score raw readings; `explain` adds per-feature log-odds contributions."""
        failure, metadata = self._require()
        matrix = self.features(types, numeric)
        rows = matrix.shape[0]

        probability = np.asarray(failure.inplace_predict(matrix), dtype=np.float64)
        mode_probability = np.empty((rows, len(FAILURE_MODES)), dtype=np.float64)
        for column, mode in enumerate(FAILURE_MODES):
            booster = self._modes.get(mode)
            if booster is None:
                mode_probability[:, column] = metadata.mode_base_rates.get(mode, 0.0)
            else:
                mode_probability[:, column] = booster.inplace_predict(matrix)

        contributions = None
        if explain:
            dmatrix = xgb.DMatrix(matrix, feature_names=list(metadata.feature_names))
            contributions = np.asarray(
                failure.predict(dmatrix, pred_contribs=True), dtype=np.float64
            )
        return Scores(
            probability=probability,
            failure=probability >= metadata.threshold,
            mode_probability=mode_probability,
            contributions=contributions,
        )

    def predict(
        self,
        context: Any,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Portable path: a DataFrame of raw readings in, PREDICTION_COLUMNS out."""
        types, numeric = frame_to_inputs(model_input)
        scores = self.score(types, numeric)
        likeliest = np.asarray(FAILURE_MODES, dtype=object)[
            np.argmax(scores.mode_probability, axis=1)
        ]
        frame = pd.DataFrame(
            {
                PROBABILITY_COLUMN: scores.probability,
                DECISION_COLUMN: scores.failure,
                MODE_COLUMN: np.where(scores.failure, likeliest, NO_MODE),
            }
        )
        for column, name in enumerate(MODE_PROBABILITY_COLUMNS):
            frame[name] = scores.mode_probability[:, column]
        return frame[list(PREDICTION_COLUMNS)]
