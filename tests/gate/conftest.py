"""Fixtures for the gate tests: a frozen evaluation set and test subjects.

Subjects are real pyfunc models (tests/gate/subject_model.py, logged "from
code") registered on a real tracking server, with the provenance the trainer
records: the training run's `data_sha256` and `evaluation_sha256` params and
the version's `cloudguard.data_sha256` tag.
"""

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cloudguard_model import names
from cloudguard_model.gate import GateSettings
from cloudguard_model.registry import TAG_TRAINING_DATA_SHA256, RegistrySettings

with warnings.catch_warnings():
    # MLflow warns about `Any` hints in its own response types while importing
    # mlflow.pyfunc (once per process); that is not what these tests check.
    warnings.filterwarnings("ignore", message=".*inferred as AnyType.*")
    import mlflow.pyfunc  # noqa: F401

SUBJECT_FILE = Path(__file__).with_name("subject_model.py")

CHAMPION = {"kind": "rules", "noise": 2.0, "seed": 1}
BETTER = {"kind": "rules", "noise": 0.0, "seed": 1}
WORSE = {"kind": "rules", "noise": 3.0, "seed": 1}
NEVER_FAILS = {"kind": "constant", "probability": 0.01}
SLICE_BROKEN = {"kind": "rules", "noise": 0.0, "seed": 1, "degrade_type": "H"}

Register = Callable[..., str]


@pytest.fixture(scope="session")
def evaluation_set(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Any:
    """The frozen evaluation set (latest 20 % of UDIs), made the product's way."""
    from cloudguard_model.evalset import freeze_evaluation_set

    out = tmp_path_factory.mktemp("evaluation") / "evaluation.csv"
    return freeze_evaluation_set(str(dataset_path), str(out), fraction=0.2)


@pytest.fixture(scope="session")
def training_frame(dataset_path: Path, evaluation_set: Any) -> pd.DataFrame:
    """The rows a model may learn from: everything but the evaluation UDIs."""
    frame = pd.read_csv(dataset_path)
    return frame[~frame["UDI"].isin(evaluation_set.frame["UDI"])].reset_index(drop=True)


@pytest.fixture(scope="session")
def shuffled_label_config(training_frame: pd.DataFrame) -> dict[str, Any]:
    """A logistic model fitted on the training rows with shuffled labels."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    columns = [
        "Air temperature [K]",
        "Process temperature [K]",
        "Rotational speed [rpm]",
        "Torque [Nm]",
        "Tool wear [min]",
    ]
    values = training_frame[columns].to_numpy(dtype=float)
    mean, scale = values.mean(axis=0), values.std(axis=0)
    labels = np.random.default_rng(7).permutation(
        training_frame["Machine failure"].to_numpy()
    )
    fitted = LogisticRegression().fit((values - mean) / scale, labels)
    return {
        "kind": "linear",
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": fitted.coef_[0].tolist(),
        "intercept": float(fitted.intercept_[0]),
        "threshold": 0.5,
    }


def register_subject(
    tracking_uri: str,
    config: Mapping[str, Any],
    *,
    evaluation_sha256: str,
    data_sha256: str = "0" * 64,
    label: str = "subject",
) -> str:
    """Log and register one subject; return its version (no alias set)."""
    import os

    import mlflow

    # A subject needs no copy of the workspace's uv.lock: skip that upload,
    # for this call only.
    saved = os.environ.get("MLFLOW_LOG_UV_FILES")
    os.environ["MLFLOW_LOG_UV_FILES"] = "false"
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        mlflow.set_experiment(names.EXPERIMENT_NAME)
        with mlflow.start_run(run_name=f"subject-{label}"):
            mlflow.log_params(
                {"data_sha256": data_sha256, "evaluation_sha256": evaluation_sha256}
            )
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(SUBJECT_FILE),
                model_config=dict(config),
                pip_requirements=["mlflow", "pandas", "numpy"],
            )
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_LOG_UV_FILES", None)
        else:
            os.environ["MLFLOW_LOG_UV_FILES"] = saved
    version = mlflow.register_model(
        info.model_uri, names.MODEL_NAME, tags={TAG_TRAINING_DATA_SHA256: data_sha256}
    )
    return str(version.version)


def gate_settings(tracking_uri: str, state: Path) -> GateSettings:
    """Settings for one test: its own record prefix and lock, short waits."""
    return GateSettings(
        tracking_uri=tracking_uri,
        decisions_uri=str(state / "decisions"),
        lock_uri=str(state / "promotion.lock"),
        lock_wait_s=10.0,
        registry=RegistrySettings(timeout_s=5, max_retries=1, backoff_factor=1),
    )


def set_aliases(tracking_uri: str, **aliases: str | None) -> None:
    """Arrange the registry: set or delete each alias (None deletes)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    current = client.get_registered_model(names.MODEL_NAME).aliases
    for alias, version in aliases.items():
        if version is None:
            if alias in current:
                client.delete_registered_model_alias(names.MODEL_NAME, alias)
        else:
            client.set_registered_model_alias(names.MODEL_NAME, alias, version)


def aliases_of(tracking_uri: str) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    model = client.get_registered_model(names.MODEL_NAME)
    return {alias: str(version) for alias, version in model.aliases.items()}


class Kit:
    """The helpers above, handed to test modules as the `kit` fixture."""

    CHAMPION = CHAMPION
    BETTER = BETTER
    WORSE = WORSE
    NEVER_FAILS = NEVER_FAILS
    SLICE_BROKEN = SLICE_BROKEN
    register = staticmethod(register_subject)
    settings = staticmethod(gate_settings)
    set_aliases = staticmethod(set_aliases)
    aliases_of = staticmethod(aliases_of)


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
