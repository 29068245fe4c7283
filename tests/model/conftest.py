"""Fixtures for the trainer tests: one real training run, shared by the area.

`trained` runs `cloudguard train --json` on the shipped data set once per
session, against a SQLite tracking store under a temporary directory, and
hands back the parsed JSON and the tracking URI.
"""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # MLflow warns about `Any` hints in its own response types while importing
    # mlflow.pyfunc (once per process); that is not what these tests check.
    warnings.filterwarnings("ignore", message=".*inferred as AnyType.*")
    import mlflow.pyfunc  # noqa: F401


@dataclass(frozen=True)
class Trained:
    payload: dict[str, Any]
    tracking_uri: str
    run_key: str


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Trained:
    """One `cloudguard train --json` run on the shipped data set."""
    from cloudguard_cli.main import app
    from typer.testing import CliRunner

    store = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
    run_key = "2026-12-04T00:00:00Z"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            str(dataset_path),
            "--tracking-uri",
            tracking_uri,
            "--run-key",
            run_key,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    return Trained(payload=payload, tracking_uri=tracking_uri, run_key=run_key)


@pytest.fixture
def tracking(trained: Trained, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point MLflow at the shared training run's store for one test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.tracking_uri)
    return trained.tracking_uri
