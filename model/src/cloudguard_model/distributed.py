"""Train the heads on a Dask cluster with XGBoost's Dask integration.

For data that outgrows one machine: the workers read the data set themselves
(partitioned CSV or Parquet), build the same features with the same shared
feature step, and train through `xgboost.dask` on `DaskQuantileDMatrix`.
Everything else (validation, the time-ordered split, the threshold, the
holdout metrics, MLflow) is the single-machine code path, fed with the
boosters trained here. See docs/decisions/0103-cluster-training.md.

The driver streams the file twice in bounded chunks (validation, holdout
scoring); the workers need the data at the same URI (for s3:// that means
`s3fs` installed on the workers).
"""

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import dask.dataframe as dd
import numpy as np
import pandas as pd
import xgboost as xgb
from distributed.comm.addressing import get_address_host
from xgboost import dask as dxgb
from xgboost.collective import Config as CollConfig

from cloudguard_model.config import TrainConfig
from cloudguard_model.dataio import TRAINING_COLUMNS, UDI_COLUMN, detect_format
from cloudguard_model.errors import TrainingError
from cloudguard_model.features import (
    DEFAULT_TYPE_CODES,
    FAILURE_MODES,
    FEATURE_NAMES,
    INPUT_COLUMNS,
    LABEL_COLUMN,
    features_from_frame,
)
from cloudguard_model.fitting import FIT, VALIDATION, Heads, SplitPlan

logger = logging.getLogger(__name__)

_BLOCK_BYTES = "64MB"
_MIN_MODE_POSITIVES = 5


@dataclass
class ClusterHeads:
    heads: Heads
    validation_labels: np.ndarray[Any, Any]
    """Columns `Machine failure` then FAILURE_MODES."""
    validation_probability: np.ndarray[Any, Any]
    sample: pd.DataFrame
    """Training rows (raw inputs and label) for the drift reference."""
    fit_rows: int


def _with_features(frame: pd.DataFrame, plan: SplitPlan) -> pd.DataFrame:
    """One partition: roles, features and labels (runs on the workers)."""
    out = pd.DataFrame(
        features_from_frame(frame, DEFAULT_TYPE_CODES),
        columns=list(FEATURE_NAMES),
        index=frame.index,
    )
    out["_role"] = plan.roles(frame[UDI_COLUMN].to_numpy())
    for column in (LABEL_COLUMN, *FAILURE_MODES):
        out[column] = frame[column].astype(np.float32)
    for column in INPUT_COLUMNS:
        out[f"_raw_{column}"] = frame[column]
    return out


def tracker_host(client: Any) -> str:
    """Where XGBoost's tracker listens: the scheduler's host.

    The tracker runs on the scheduler, so its host is the one address every
    worker already reaches; an in-process cluster gets loopback. Stating it
    keeps XGBoost from guessing an address by probing the network.
    """
    address: str = client.scheduler.address
    if address.startswith("inproc://"):
        return "127.0.0.1"
    return str(get_address_host(address)).strip("[]")


def read_partitions(uri: str) -> dd.DataFrame:
    """The data set as a Dask DataFrame of the training columns."""
    if detect_format(uri) == "parquet":
        frame = dd.read_parquet(uri, columns=list(TRAINING_COLUMNS))
    else:
        frame = dd.read_csv(uri, usecols=list(TRAINING_COLUMNS), blocksize=_BLOCK_BYTES)
    return cast(dd.DataFrame, frame)


def _train(
    client: Any,
    config: TrainConfig,
    fit: dd.DataFrame,
    validation: dd.DataFrame,
    label: str,
    *,
    rounds: int,
    metric: str,
    rows: int,
) -> xgb.Booster:
    features = list(FEATURE_NAMES)
    train_matrix = dxgb.DaskQuantileDMatrix(
        client, fit[features], fit[label], max_bin=config.max_bin
    )
    validation_matrix = dxgb.DaskQuantileDMatrix(
        client,
        validation[features],
        validation[label],
        max_bin=config.max_bin,
        ref=train_matrix,
    )
    mode = label != LABEL_COLUMN
    params = config.head_params(rows, mode=mode, metric=metric)
    params.pop("nthread", None)
    output = dxgb.train(
        client,
        params,
        train_matrix,
        coll_cfg=CollConfig(tracker_host_ip=tracker_host(client)),
        num_boost_round=rounds,
        evals=[(validation_matrix, "validation")],
        early_stopping_rounds=config.patience(mode=mode),
        verbose_eval=False,
    )
    booster: xgb.Booster = output["booster"]
    return booster[: int(booster.best_iteration) + 1]


def train_heads_on_cluster(
    client: Any, data_uri: str, plan: SplitPlan, config: TrainConfig
) -> ClusterHeads:
    """Failure and mode heads trained on the cluster behind `client`."""
    started = time.perf_counter()
    meta = _with_features(read_partitions(data_uri)._meta, plan)
    frame = read_partitions(data_uri).map_partitions(  # type: ignore[no-untyped-call]
        _with_features, plan, meta=meta
    )
    fit = frame[frame["_role"] == FIT].persist()
    validation = frame[frame["_role"] == VALIDATION].persist()

    label_columns = [LABEL_COLUMN, *FAILURE_MODES]
    fit_positives = fit[label_columns].sum().compute()
    rows = int(fit.shape[0].compute())
    validation_labels = validation[label_columns].compute().to_numpy(dtype=np.float32)
    if fit_positives[LABEL_COLUMN] == 0 or validation_labels[:, 0].sum() == 0:
        raise TrainingError(
            "fit or validation split has no failures; train on more (or later) data"
        )

    failure = _train(
        client,
        config,
        fit,
        validation,
        LABEL_COLUMN,
        rounds=config.num_boost_round,
        metric="aucpr",
        rows=rows,
    )
    modes: dict[str, xgb.Booster] = {}
    constant: dict[str, float] = {}
    for mode in FAILURE_MODES:
        if fit_positives[mode] < _MIN_MODE_POSITIVES:
            constant[mode] = float(fit_positives[mode]) / max(1, rows)
            continue
        modes[mode] = _train(
            client,
            config,
            fit,
            validation,
            mode,
            rounds=config.mode_boost_round,
            metric="logloss",
            rows=rows,
        )

    share = min(1.0, config.sample_rows / max(1, rows))
    raw = [f"_raw_{column}" for column in INPUT_COLUMNS]
    sample = (
        fit[[*raw, LABEL_COLUMN]]
        .sample(frac=share, random_state=config.seed)
        .compute()
        .rename(columns=dict(zip(raw, INPUT_COLUMNS, strict=True)))
        .reset_index(drop=True)
    )
    probability = dxgb.inplace_predict(client, failure, validation[list(FEATURE_NAMES)])
    heads = Heads(failure, modes, constant, time.perf_counter() - started)
    logger.info(
        "event=cluster_heads_trained rows=%d trees=%d seconds=%.2f",
        rows,
        failure.num_boosted_rounds(),
        heads.seconds,
    )
    return ClusterHeads(
        heads=heads,
        validation_labels=validation_labels,
        validation_probability=np.asarray(probability.compute(), dtype=np.float64),
        sample=sample,
        fit_rows=rows,
    )
