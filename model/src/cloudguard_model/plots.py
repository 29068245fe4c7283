"""PNG plots of a training run: what a reviewer looks at before reading numbers.

Precision-recall curve (with the chosen threshold marked), confusion matrix,
feature importance (mean |SHAP| on a training sample), calibration curve, and
per-mode PR-AUC against each mode's base rate.
"""

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve

from cloudguard_model.features import FAILURE_MODES, INPUT_COLUMNS

if TYPE_CHECKING:
    from cloudguard_model.training import FitOutcome

_DPI = 110


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)


def _precision_recall(outcome: "FitOutcome", path: Path) -> None:
    labels = outcome.holdout.labels[:, 0]
    probability = outcome.holdout.probability
    precision, recall, _thresholds = precision_recall_curve(labels, probability)
    figure, axes = plt.subplots(figsize=(5.5, 4.5))
    axes.plot(recall, precision, label="holdout")
    chosen = outcome.model.threshold
    decided = probability >= chosen
    hits = float((decided & (labels == 1)).sum())
    axes.scatter(
        [hits / max(1.0, float(labels.sum()))],
        [hits / max(1.0, float(decided.sum()))],
        color="crimson",
        zorder=3,
        label=f"threshold {chosen:.3f}",
    )
    axes.axhline(labels.mean(), color="grey", linestyle=":", label="base rate")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
    axes.set_title(
        f"Machine failure: PR-AUC {outcome.metrics['holdout_pr_auc']:.3f}, "
        f"F1 {outcome.metrics['holdout_f1']:.3f}"
    )
    axes.legend(loc="lower left")
    _save(figure, path)


def _confusion(outcome: "FitOutcome", path: Path) -> None:
    m = outcome.metrics
    table = np.array(
        [[m["holdout_tn"], m["holdout_fp"]], [m["holdout_fn"], m["holdout_tp"]]]
    )
    figure, axes = plt.subplots(figsize=(4.5, 4))
    axes.imshow(np.log1p(table), cmap="Blues")
    for (row, column), value in np.ndenumerate(table):
        axes.text(column, row, f"{int(value)}", ha="center", va="center", fontsize=14)
    axes.set_xticks([0, 1], ["no alarm", "alarm"])
    axes.set_yticks([0, 1], ["ran fine", "failed"])
    axes.set_title(f"Holdout at threshold {outcome.model.threshold:.3f}")
    _save(figure, path)


def _importance(outcome: "FitOutcome", path: Path) -> None:
    sample = outcome.sample.head(5_000)
    scores = outcome.model.score(
        sample[INPUT_COLUMNS[0]].astype(str).to_numpy(dtype=object),
        sample[list(INPUT_COLUMNS[1:])].to_numpy(dtype=np.float64),
        explain=True,
    )
    assert scores.contributions is not None
    mean_abs = np.abs(scores.contributions[:, :-1]).mean(axis=0)
    order = np.argsort(mean_abs)
    names = np.asarray(outcome.model.feature_names)[order]
    figure, axes = plt.subplots(figsize=(6, 4.5))
    axes.barh(names, mean_abs[order], color="steelblue")
    axes.set_xlabel("mean |SHAP| (log-odds of failure)")
    axes.set_title("What drives the failure score")
    _save(figure, path)


def _calibration(outcome: "FitOutcome", path: Path) -> None:
    labels = outcome.holdout.labels[:, 0]
    observed, predicted = calibration_curve(
        labels, outcome.holdout.probability, n_bins=10, strategy="quantile"
    )
    figure, axes = plt.subplots(figsize=(5, 4.5))
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    axes.plot(predicted, observed, marker="o", label="holdout")
    axes.set(xlabel="predicted probability", ylabel="observed failure rate")
    axes.set_title(f"Calibration (Brier {outcome.metrics['holdout_brier']:.4f})")
    axes.legend(loc="upper left")
    _save(figure, path)


def _modes(outcome: "FitOutcome", path: Path) -> None:
    m = outcome.metrics
    pr_auc = [m.get(f"mode_{mode}_pr_auc", np.nan) for mode in FAILURE_MODES]
    base = [m.get(f"mode_{mode}_base_rate", np.nan) for mode in FAILURE_MODES]
    positions = np.arange(len(FAILURE_MODES))
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.bar(positions - 0.2, pr_auc, width=0.4, label="PR-AUC")
    axes.bar(positions + 0.2, base, width=0.4, label="base rate (chance)")
    axes.set_xticks(positions, FAILURE_MODES)
    axes.set_ylim(0, 1.05)
    axes.set_title("Failure modes on the holdout (TWF, RNF: mostly random)")
    axes.legend()
    _save(figure, path)


def write_plots(outcome: "FitOutcome", directory: Path) -> list[Path]:
    """Write every plot as PNG into `directory`; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    plots = {
        "precision_recall.png": _precision_recall,
        "confusion_matrix.png": _confusion,
        "feature_importance.png": _importance,
        "calibration.png": _calibration,
        "failure_modes.png": _modes,
    }
    paths = []
    for name, draw in plots.items():
        path = directory / name
        draw(outcome, path)
        paths.append(path)
    return paths
