"""`train_model`: validate, fit, evaluate on a time-ordered holdout, log, register.

One call does the whole run. The holdout is the frozen evaluation set when one
is given (its UDIs never reach training), else the latest 20 % of rows by UDI.
The threshold is chosen on the latest 20 % of the training rows. Every run
logs lineage (data URI and sha256, git commit, row counts, feature list,
threshold), metrics and plots to MLflow, registers a version of
`cloudguard-failure` and points the `challenger` alias at it.
"""

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec, DataType, Schema, TensorSpec

from cloudguard_model import names
from cloudguard_model.config import TrainConfig
from cloudguard_model.contract import (
    DECISION_COLUMN,
    MODE_COLUMN,
    MODE_PROBABILITY_COLUMNS,
    PROBABILITY_COLUMN,
)
from cloudguard_model.dataio import LocalData, materialize
from cloudguard_model.evalset import EvaluationSet, load_evaluation_set
from cloudguard_model.features import FAILURE_MODES, FEATURE_NAMES, INPUT_COLUMNS
from cloudguard_model.fitting import (
    HOLDOUT,
    Heads,
    HoldoutScores,
    SplitPlan,
    assemble_model,
    build_matrices,
    describe,
    plan_split,
    score_frame,
    score_role,
    train_heads,
    validation_probabilities,
)
from cloudguard_model.lineage import code_commit
from cloudguard_model.metrics import binary_metrics, choose_threshold, mode_metrics
from cloudguard_model.pyfunc import (
    FAILURE_HEAD,
    METADATA_ARTIFACT,
    FailureModel,
    mode_artifact,
)
from cloudguard_model.validation import (
    ValidationReport,
    raise_for_report,
    validate_local,
)

logger = logging.getLogger(__name__)

RUN_KEY_TAG: Final = "cloudguard.run_key"
DATA_SHA_TAG: Final = "cloudguard.data_sha256"
GIT_COMMIT_TAG: Final = "cloudguard.git_commit"
MODEL_ARTIFACT: Final = "model"


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced (or, with reused=True, found registered)."""

    run_id: str
    version: str
    model_uri: str
    metrics: dict[str, float]
    threshold: float
    data_sha256: str
    reused: bool = False


@dataclass
class FitOutcome:
    """A trained model and its numbers, before anything is logged."""

    model: FailureModel
    heads: Heads
    plan: SplitPlan
    report: ValidationReport
    metrics: dict[str, float]
    holdout: HoldoutScores
    validation_labels: np.ndarray[Any, Any]
    validation_probability: np.ndarray[Any, Any]
    sample: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)


def _holdout_metrics(scores: HoldoutScores, threshold: float) -> dict[str, float]:
    metrics = {
        f"holdout_{key}": value
        for key, value in binary_metrics(
            scores.labels[:, 0], scores.probability, threshold
        ).items()
    }
    for column, mode in enumerate(FAILURE_MODES):
        for key, value in mode_metrics(
            scores.labels[:, column + 1], scores.mode_probability[:, column]
        ).items():
            metrics[f"mode_{mode}_{key}"] = value
    return metrics


def fit_model(
    data: LocalData,
    config: TrainConfig,
    evaluation: EvaluationSet | None = None,
    *,
    dask_client: Any | None = None,
) -> FitOutcome:
    """Validate, split by time, train the heads, choose the threshold, evaluate.

    No MLflow here: the bench and the reproducibility test call this directly.
    With a `dask_client` the heads train on that cluster (reading `data.uri`);
    validation, threshold and holdout metrics stay on this machine.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    report = validate_local(data, config.chunk_rows)
    raise_for_report(report)
    timings["validate_seconds"] = time.perf_counter() - started

    evaluation_udis = None if evaluation is None else evaluation.frame["UDI"]
    plan = plan_split(report.udis, config, evaluation_udis)

    if dask_client is None:
        matrices = build_matrices(data, plan, config, report.rows)
        timings["matrix_seconds"] = matrices.seconds
        heads = train_heads(matrices, config)
        validation_probability = validation_probabilities(heads, matrices)
        validation_labels = matrices.validation_labels
        fit_rows, sample = len(matrices.fit_labels), matrices.sample
    else:
        from cloudguard_model.distributed import train_heads_on_cluster

        cluster = train_heads_on_cluster(dask_client, data.uri, plan, config)
        heads = cluster.heads
        validation_probability = cluster.validation_probability
        validation_labels = cluster.validation_labels
        fit_rows, sample = cluster.fit_rows, cluster.sample
    timings["boost_seconds"] = heads.seconds

    choice = choose_threshold(
        validation_labels[:, 0],
        validation_probability,
        objective=config.threshold_objective,
        missed_failure_cost=config.missed_failure_cost,
        false_alarm_cost=config.false_alarm_cost,
        tolerance=config.threshold_tolerance,
    )
    model = assemble_model(heads, choice.threshold, sample, config)

    started = time.perf_counter()
    if evaluation is not None:
        holdout = score_frame(model, evaluation.frame)
    else:
        holdout = score_role(model, data, plan, HOLDOUT, config.chunk_rows)
    timings["score_seconds"] = time.perf_counter() - started

    metrics = _metrics(
        validation_labels[:, 0], validation_probability, choice.threshold, holdout
    )
    metrics["rows_fit"] = float(fit_rows)
    metrics["failure_trees"] = float(heads.failure.num_boosted_rounds())
    return FitOutcome(
        model=model,
        heads=heads,
        plan=plan,
        report=report,
        metrics=metrics,
        holdout=holdout,
        validation_labels=validation_labels[:, 0],
        validation_probability=validation_probability,
        sample=sample,
        timings=timings,
    )


def _metrics(
    validation_labels: np.ndarray[Any, Any],
    validation_probability: np.ndarray[Any, Any],
    threshold: float,
    holdout: HoldoutScores,
) -> dict[str, float]:
    metrics = _holdout_metrics(holdout, threshold)
    validation = binary_metrics(validation_labels, validation_probability, threshold)
    metrics.update({f"validation_{key}": value for key, value in validation.items()})
    metrics["threshold"] = threshold
    metrics["rows_validation"] = float(len(validation_labels))
    metrics["rows_holdout"] = float(len(holdout.labels))
    return metrics


def _find_run_key(client: MlflowClient, run_key: str) -> Any | None:
    for version in client.search_model_versions(f"name='{names.MODEL_NAME}'"):
        if version.tags.get(RUN_KEY_TAG) == run_key:
            return version
    return None


def _reused_result(client: MlflowClient, version: Any) -> TrainResult:
    run = client.get_run(version.run_id)
    metrics = {key: float(value) for key, value in run.data.metrics.items()}
    logger.info(
        "event=train_reused version=%s run_key=%s",
        version.version,
        version.tags.get(RUN_KEY_TAG),
    )
    return TrainResult(
        run_id=version.run_id,
        version=str(version.version),
        model_uri=f"models:/{names.MODEL_NAME}/{version.version}",
        metrics=metrics,
        threshold=metrics.get("threshold", float("nan")),
        data_sha256=version.tags.get(DATA_SHA_TAG, ""),
        reused=True,
    )


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {key: value for key, value in metrics.items() if np.isfinite(value)}


def _log_model(outcome: FitOutcome, directory: Path) -> Any:
    """Save each booster with the XGBoost flavour and log the pyfunc around them."""
    import mlflow.xgboost

    artifacts: dict[str, str] = {}
    failure_path = directory / FAILURE_HEAD
    requirements = _requirements()
    mlflow.xgboost.save_model(
        outcome.heads.failure, str(failure_path), pip_requirements=requirements
    )
    artifacts[FAILURE_HEAD] = str(failure_path)
    for mode, booster in outcome.heads.modes.items():
        path = directory / mode_artifact(mode)
        mlflow.xgboost.save_model(booster, str(path), pip_requirements=requirements)
        artifacts[mode_artifact(mode)] = str(path)
    metadata_path = directory / "metadata.json"
    metadata_path.write_text(outcome.model.metadata.to_json(), encoding="utf-8")
    artifacts[METADATA_ARTIFACT] = str(metadata_path)

    example = input_example(outcome.sample)
    signature = ModelSignature(inputs=input_schema(), outputs=output_schema())
    return mlflow.pyfunc.log_model(
        name=MODEL_ARTIFACT,
        python_model=type(outcome.model)(),
        artifacts=artifacts,
        signature=signature,
        input_example=example,
        pip_requirements=requirements,
    )


"""Readings the AI4I data records as whole numbers (CSV reads them as int64)."""


_INTEGER_INPUTS: Final = ("Rotational speed [rpm]", "Tool wear [min]")


def input_schema() -> Schema:
    """The pyfunc input: the six raw readings, typed as the AI4I CSV holds them."""
    specs: list[ColSpec | TensorSpec] = [ColSpec(DataType.string, INPUT_COLUMNS[0])]
    for column in INPUT_COLUMNS[1:]:
        kind = DataType.long if column in _INTEGER_INPUTS else DataType.double
        specs.append(ColSpec(kind, column))
    return Schema(specs)


def input_example(sample: pd.DataFrame) -> pd.DataFrame:
    example = sample[list(INPUT_COLUMNS)].head(5).reset_index(drop=True)
    for column in _INTEGER_INPUTS:
        example[column] = example[column].round().astype("int64")
    return example


def output_schema() -> Schema:
    """The pyfunc output: contract.PREDICTION_COLUMNS."""
    return Schema(
        [
            ColSpec(DataType.double, PROBABILITY_COLUMN),
            ColSpec(DataType.boolean, DECISION_COLUMN),
            ColSpec(DataType.string, MODE_COLUMN),
            *(ColSpec(DataType.double, name) for name in MODE_PROBABILITY_COLUMNS),
        ]
    )


def _requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for package in ("cloudguard-model", "mlflow-skinny", "xgboost", "numpy", "pandas"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def train_model(
    data_uri: str,
    *,
    config: TrainConfig | None = None,
    tracking_uri: str | None = None,
    evaluation_uri: str | None = None,
    run_key: str | None = None,
    dask_scheduler: str | None = None,
) -> TrainResult:
    """Train, evaluate, log and register a model; see the module docstring.

    With a `run_key` that a registered version already carries, nothing is
    trained and that version comes back with `reused=True`. With a
    `dask_scheduler` address (e.g. tcp://10.0.0.5:8786) the boosters train on
    that Dask cluster, whose workers read `data_uri` themselves.
    """
    config = config or TrainConfig()
    with _tracking(tracking_uri):
        return _train(data_uri, config, evaluation_uri, run_key, dask_scheduler)


@contextmanager
def _tracking(tracking_uri: str | None) -> Iterator[None]:
    """Use `tracking_uri` for this call only; the process-wide URI is restored."""
    if not tracking_uri:
        yield
        return
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    # MLflow unsets MLFLOW_TRACKING_URI when it restores an unset URI; put the
    # caller's variable back so the process keeps its configuration.
    previous = os.environ.get(names.ENV_TRACKING_URI)
    try:
        with _use_tracking_uri(tracking_uri):
            yield
    finally:
        if previous is not None:
            os.environ[names.ENV_TRACKING_URI] = previous


@contextmanager
def _dask_client(address: str | None) -> Iterator[Any | None]:
    if address is None:
        yield None
        return
    from distributed import Client

    with Client(address, timeout=30) as client:  # type: ignore[no-untyped-call]
        logger.info("event=dask_connected scheduler=%s", address)
        yield client


def _train(
    data_uri: str,
    config: TrainConfig,
    evaluation_uri: str | None,
    run_key: str | None,
    dask_scheduler: str | None = None,
) -> TrainResult:
    client = MlflowClient()
    if run_key:
        existing = _find_run_key(client, run_key)
        if existing is not None:
            return _reused_result(client, existing)

    evaluation = load_evaluation_set(evaluation_uri) if evaluation_uri else None
    commit = code_commit()
    started = time.perf_counter()
    with materialize(data_uri) as data, _dask_client(dask_scheduler) as dask_client:
        outcome = fit_model(data, config, evaluation, dask_client=dask_client)
        data_sha256 = data.sha256
    train_seconds = time.perf_counter() - started

    mlflow.set_experiment(names.EXPERIMENT_NAME)
    with mlflow.start_run(run_name=f"train-{data_sha256[:8]}") as run:
        mlflow.log_params(config.as_params())
        mlflow.log_params(
            {
                "data_uri": data_uri,
                "data_sha256": data_sha256,
                "evaluation_uri": evaluation_uri or "",
                "evaluation_sha256": evaluation.sha256 if evaluation else "",
                "git_commit": commit,
                "features": ",".join(FEATURE_NAMES),
                "threshold": f"{outcome.model.threshold:.6f}",
                "rows_total": str(outcome.report.rows),
                **{key: str(value) for key, value in describe(outcome.plan).items()},
            }
        )
        mlflow.set_tags(
            {
                DATA_SHA_TAG: data_sha256,
                GIT_COMMIT_TAG: commit,
                **({RUN_KEY_TAG: run_key} if run_key else {}),
            }
        )
        metrics = {**outcome.metrics, **outcome.timings, "train_seconds": train_seconds}
        mlflow.log_metrics(_finite(metrics))
        mlflow.log_dict(outcome.report.as_dict(), "validation_report.json")
        mlflow.log_dict({"features": list(FEATURE_NAMES)}, "features.json")

        with tempfile.TemporaryDirectory(prefix="cloudguard-train-") as directory:
            from cloudguard_model.plots import write_plots

            plots = Path(directory) / "plots"
            write_plots(outcome, plots)
            mlflow.log_artifacts(str(plots), "plots")
            model_info = _log_model(outcome, Path(directory) / "heads")

    version = _register(client, model_info.model_uri, data_sha256, commit, run_key)
    logger.info(
        "event=train_done run_id=%s version=%s f1=%.4f pr_auc=%.4f threshold=%.4f",
        run.info.run_id,
        version,
        metrics["holdout_f1"],
        metrics["holdout_pr_auc"],
        outcome.model.threshold,
    )
    return TrainResult(
        run_id=run.info.run_id,
        version=version,
        model_uri=f"models:/{names.MODEL_NAME}/{version}",
        metrics=metrics,
        threshold=outcome.model.threshold,
        data_sha256=data_sha256,
    )


def _register(
    client: MlflowClient,
    model_uri: str,
    data_sha256: str,
    commit: str,
    run_key: str | None,
) -> str:
    tags = {DATA_SHA_TAG: data_sha256, GIT_COMMIT_TAG: commit}
    if run_key:
        tags[RUN_KEY_TAG] = run_key
    registered = mlflow.register_model(model_uri, names.MODEL_NAME, tags=tags)
    version = str(registered.version)
    client.set_registered_model_alias(names.MODEL_NAME, names.ALIAS_CHALLENGER, version)
    logger.info(
        "event=model_registered name=%s version=%s alias=%s",
        names.MODEL_NAME,
        version,
        names.ALIAS_CHALLENGER,
    )
    return version
