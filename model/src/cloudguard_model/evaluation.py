"""Score champion and challenger on the same frozen evaluation set.

The gate compares models only through an `EvaluationReport`: metrics of both
versions on one evaluation set, identified by its sha256. Recall, precision and
F1 are taken at each model's own threshold (the `failure` column of its
prediction), because that is the decision a plant sees.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from cloudguard_model.contract import DECISION_COLUMN, PROBABILITY_COLUMN
from cloudguard_model.errors import GateError
from cloudguard_model.features import INPUT_COLUMNS, LABEL_COLUMN, TYPE_COLUMN

logger = logging.getLogger(__name__)

METRIC_DIRECTIONS: Final[Mapping[str, int]] = {
    "pr_auc": 1,
    "roc_auc": 1,
    "recall": 1,
    "precision": 1,
    "f1": 1,
    "accuracy": 1,
    "brier": -1,
}
"""Metrics the gate knows: +1 when higher is better, -1 when lower is better."""

REPORT_FORMAT: Final = "cloudguard.evaluation/v1"


class EvaluationError(GateError):
    """A model or the evaluation set cannot be scored as the gate requires."""


@dataclass(frozen=True)
class ModelScore:
    """One registered version scored on the evaluation set."""

    version: str
    run_id: str | None
    threshold: float | None
    metrics: dict[str, float | None]
    slices: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Metrics per slice value (product type), plus `rows` and `positives`."""
    training_data_sha256: str | None = None


@dataclass(frozen=True)
class EvaluationReport:
    """Champion and challenger on the same frozen evaluation set."""

    evaluation_uri: str
    evaluation_sha256: str
    rows: int
    positives: int
    slice_column: str
    challenger: ModelScore
    champion: ModelScore | None
    champion_note: str
    """Why there is no champion (first promotion, dangling alias), or ''."""
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": REPORT_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvaluationReport":
        if data.get("format") != REPORT_FORMAT:
            raise EvaluationError(
                f"report format {data.get('format')!r} is not {REPORT_FORMAT!r}; "
                "produce the report with `cloudguard evaluate`"
            )
        champion = data.get("champion")
        try:
            return cls(
                evaluation_uri=str(data["evaluation_uri"]),
                evaluation_sha256=str(data["evaluation_sha256"]),
                rows=int(data["rows"]),
                positives=int(data["positives"]),
                slice_column=str(data["slice_column"]),
                challenger=ModelScore(**data["challenger"]),
                champion=ModelScore(**champion) if champion else None,
                champion_note=str(data.get("champion_note", "")),
                created_at=str(data["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise EvaluationError(
                f"malformed evaluation report ({error!r}); produce it with "
                "`cloudguard evaluate --out`"
            ) from error


def _ranking_metrics(
    labels: npt.NDArray[np.bool_], probability: npt.NDArray[np.float64]
) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        # Ranking metrics are undefined with one class; the gate fails closed.
        return {"pr_auc": None, "roc_auc": None}
    return {
        "pr_auc": float(average_precision_score(labels, probability)),
        "roc_auc": float(roc_auc_score(labels, probability)),
    }


def compute_metrics(
    labels: npt.ArrayLike, probability: npt.ArrayLike, decision: npt.ArrayLike
) -> dict[str, float | None]:
    """Gate metrics for one model on one set of rows.

    A metric that is undefined on these rows (no failures, no alarms) is None
    for the ranking metrics and recall; precision with no alarms is 0.0.
    """
    truth = np.asarray(labels, dtype=bool)
    scores = np.asarray(probability, dtype=np.float64)
    alarms = np.asarray(decision, dtype=bool)
    true_positives = int((truth & alarms).sum())
    positives = int(truth.sum())
    predicted = int(alarms.sum())

    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / positives if positives else None
    if recall is None or precision + recall == 0:
        f1: float | None = None if recall is None else 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)

    return {
        **_ranking_metrics(truth, scores),
        "recall": recall,
        "precision": precision,
        "f1": f1,
        "accuracy": float((truth == alarms).mean()) if len(truth) else None,
        "brier": float(np.mean((scores - truth) ** 2)) if len(truth) else None,
    }


def check_evaluation_frame(frame: pd.DataFrame, slice_column: str) -> None:
    """Refuse an evaluation set that cannot judge a failure model."""
    needed = [*INPUT_COLUMNS, LABEL_COLUMN, slice_column]
    missing = [column for column in dict.fromkeys(needed) if column not in frame]
    if missing:
        raise EvaluationError(
            f"evaluation set lacks columns {missing}; freeze it from AI4I data "
            "with `cloudguard data freeze-evaluation`"
        )
    positives = int(frame[LABEL_COLUMN].astype(bool).sum())
    if len(frame) == 0 or positives == 0 or positives == len(frame):
        raise EvaluationError(
            f"evaluation set has {len(frame)} rows and {positives} failures; it "
            "needs both failures and normal readings to compare models"
        )


def score_predictions(
    frame: pd.DataFrame,
    prediction: pd.DataFrame,
    slice_column: str = TYPE_COLUMN,
    slice_values: Sequence[str] = (),
) -> tuple[dict[str, float | None], dict[str, dict[str, float | None]]]:
    """Overall and per-slice metrics of one model's predictions on `frame`."""
    for column in (PROBABILITY_COLUMN, DECISION_COLUMN):
        if column not in prediction:
            raise EvaluationError(
                f"model output lacks column {column!r} (has "
                f"{list(prediction.columns)}); it does not follow "
                "cloudguard_model.contract"
            )
    if len(prediction) != len(frame):
        raise EvaluationError(
            f"model returned {len(prediction)} rows for {len(frame)} readings"
        )
    probability = prediction[PROBABILITY_COLUMN].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(probability)) or np.any(
        (probability < 0) | (probability > 1)
    ):
        raise EvaluationError(
            "model returned failure probabilities outside [0, 1] or not finite"
        )
    decision = prediction[DECISION_COLUMN].to_numpy(dtype=bool)
    labels = frame[LABEL_COLUMN].to_numpy(dtype=bool)

    overall = compute_metrics(labels, probability, decision)
    slices: dict[str, dict[str, float | None]] = {}
    values = frame[slice_column].astype(str).to_numpy()
    for value in slice_values:
        rows = values == value
        slices[value] = {
            **compute_metrics(labels[rows], probability[rows], decision[rows]),
            "rows": float(rows.sum()),
            "positives": float(labels[rows].sum()),
        }
    return overall, slices


def model_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """Only the raw input columns: a model never sees labels or identifiers."""
    return frame.loc[:, list(INPUT_COLUMNS)].copy()
