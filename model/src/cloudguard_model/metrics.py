"""Metrics for a rare-failure classifier, and the choice of decision threshold.

Accuracy is never reported: with 3.4 % failures, "never fails" scores 96.6 %.
The threshold is chosen on validation data only; `choose_threshold` never sees
the holdout.
"""

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    roc_auc_score,
)

from cloudguard_model.errors import TrainingError

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

PREDICTABLE_LIFT = 5.0
"""A failure mode whose PR-AUC is under this multiple of its base rate is
reported as mostly random: the model barely beats guessing the base rate."""


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    objective: str
    value: float
    """Validation F1 (objective f1) or expected cost per row (objective cost)."""


def confusion(labels: npt.ArrayLike, decisions: npt.ArrayLike) -> dict[str, int]:
    y = np.asarray(labels).astype(bool)
    d = np.asarray(decisions).astype(bool)
    return {
        "tp": int(np.sum(y & d)),
        "fp": int(np.sum(~y & d)),
        "fn": int(np.sum(y & ~d)),
        "tn": int(np.sum(~y & ~d)),
    }


def _f1(counts: dict[str, int]) -> float:
    denominator = 2 * counts["tp"] + counts["fp"] + counts["fn"]
    return 2 * counts["tp"] / denominator if denominator else 0.0


def _sweep(
    labels: npt.NDArray[np.bool_], probabilities: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Candidate thresholds (each distinct score) with TP and FP counts at each."""
    order = np.argsort(-probabilities, kind="stable")
    scores = probabilities[order]
    hits = labels[order]
    tp = np.cumsum(hits)
    fp = np.cumsum(~hits)
    # Keep the last index of each run of equal scores: ">= score" takes them all.
    last = np.r_[scores[1:] != scores[:-1], True]
    return scores[last], tp[last].astype(np.int64), fp[last].astype(np.int64)


def _logit_midpoint(lower: float, upper: float) -> float:
    eps = 1e-9
    low, high = np.clip([lower, upper], eps, 1 - eps)
    middle = (np.log(low / (1 - low)) + np.log(high / (1 - high))) / 2
    return float(1 / (1 + np.exp(-middle)))


def choose_threshold(
    labels: npt.ArrayLike,
    probabilities: npt.ArrayLike,
    *,
    objective: Literal["f1", "cost"] = "f1",
    missed_failure_cost: float = 10.0,
    false_alarm_cost: float = 1.0,
    tolerance: float = 0.0,
) -> ThresholdChoice:
    """Pick the decision threshold on validation data.

    Every gap between two distinct validation scores is a candidate. Candidates
    whose validation score (F1, or expected cost) is within `tolerance` of the
    best tie; among ties the one nearest the calibrated optimum wins: best F1
    / 2 for F1 (the F1-optimal threshold of a calibrated model), the cost ratio
    false_alarm / (false_alarm + missed) for cost. Inside the chosen gap the
    cut sits at that optimum when it falls in the gap, else midway (log-odds).
    """
    y = np.asarray(labels).astype(bool)
    p = np.asarray(probabilities, dtype=np.float64)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise TrainingError(
            f"validation split has {positives} failures in {len(y)} rows; "
            "threshold choice needs both classes: use more data or a larger "
            "validation_fraction"
        )

    uppers, tp, fp = _sweep(y, p)
    lowers = np.r_[uppers[1:], 0.0]
    fn = positives - tp
    if objective == "f1":
        values = 2 * tp / (2 * tp + fp + fn)
        ties = values >= values.max() - tolerance - 1e-12
        target = float(values.max()) / 2.0
    else:
        values = (fn * missed_failure_cost + fp * false_alarm_cost) / len(y)
        ties = values <= values.min() * (1.0 + tolerance) + 1e-12
        target = false_alarm_cost / (false_alarm_cost + missed_failure_cost)

    # Distance from the target to each candidate gap (lower, upper].
    inside = (lowers < target) & (target <= uppers)
    distance = np.where(
        inside, 0.0, np.minimum(np.abs(lowers - target), np.abs(uppers - target))
    )
    index = int(np.argmin(np.where(ties, distance, np.inf)))
    if inside[index]:
        threshold = target
    else:
        threshold = _logit_midpoint(float(lowers[index]), float(uppers[index]))
    value = float(values[index])
    logger.info(
        "event=threshold_chosen objective=%s threshold=%.4f value=%.4f",
        objective,
        threshold,
        value,
    )
    return ThresholdChoice(threshold=threshold, objective=objective, value=value)


def binary_metrics(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, threshold: float
) -> dict[str, float]:
    """PR-AUC, ROC-AUC, precision, recall, F1, Brier and the confusion matrix."""
    y = np.asarray(labels).astype(int)
    p = np.asarray(probabilities, dtype=np.float64)
    counts = confusion(y, p >= threshold)
    predicted = counts["tp"] + counts["fp"]
    actual = counts["tp"] + counts["fn"]
    both_classes = 0 < y.sum() < len(y)

    return {
        "pr_auc": float(average_precision_score(y, p))
        if both_classes
        else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "precision": counts["tp"] / predicted if predicted else 0.0,
        "recall": counts["tp"] / actual if actual else 0.0,
        "f1": _f1(counts),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "rows": float(len(y)),
        **{key: float(value) for key, value in counts.items()},
    }


def mode_metrics(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike
) -> dict[str, float]:
    """Ranking quality of one failure-mode head, and whether it beats chance."""
    y = np.asarray(labels).astype(int)
    p = np.asarray(probabilities, dtype=np.float64)
    positives = int(y.sum())
    base_rate = positives / len(y) if len(y) else 0.0
    if positives == 0 or positives == len(y):
        return {"positives": float(positives), "base_rate": base_rate}
    pr_auc = float(average_precision_score(y, p))
    return {
        "positives": float(positives),
        "base_rate": base_rate,
        "pr_auc": pr_auc,
        "roc_auc": float(roc_auc_score(y, p)),
        "lift": pr_auc / base_rate,
        "predictable": float(pr_auc >= PREDICTABLE_LIFT * base_rate and pr_auc >= 0.3),
    }
