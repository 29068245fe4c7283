"""The full `cloudguard train` run on the shipped data: quality, lineage,
registry, and the pyfunc round trip from the registry."""

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from cloudguard_model import names
from cloudguard_model.contract import PREDICTION_COLUMNS, Scorer
from cloudguard_model.errors import FeatureError
from cloudguard_model.features import FEATURE_NAMES, INPUT_COLUMNS, NUMERIC_COLUMNS
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow


def test_train_json_meets_the_quality_targets_on_the_time_ordered_holdout(trained):
    metrics = trained.payload["metrics"]

    assert metrics["holdout_f1"] >= 0.82
    assert metrics["holdout_pr_auc"] >= 0.80
    # The holdout is the latest 20 % of 10,000 rows; never shuffled.
    assert metrics["rows_holdout"] == 2000
    assert metrics["rows_fit"] + metrics["rows_validation"] == 8000
    assert trained.payload["reused"] is False
    assert trained.payload["model_uri"] == f"models:/{names.MODEL_NAME}/1"


def test_train_reports_every_metric_and_says_which_modes_are_random(trained):
    metrics = trained.payload["metrics"]

    for key in ("pr_auc", "roc_auc", "precision", "recall", "f1", "brier"):
        assert np.isfinite(metrics[f"holdout_{key}"])
    for key in ("tp", "fp", "fn", "tn"):
        assert metrics[f"holdout_{key}"] >= 0
    assert metrics["mode_TWF_predictable"] == 0.0
    assert metrics["mode_OSF_predictable"] == 1.0
    assert metrics["mode_PWF_predictable"] == 1.0


def test_run_logs_lineage_plots_and_threshold(trained, tracking, dataset_path):
    client = MlflowClient()
    run = client.get_run(trained.payload["run_id"])
    params = run.data.params

    assert params["data_uri"] == str(dataset_path)
    assert params["data_sha256"] == trained.payload["data_sha256"]
    assert params["git_commit"]
    assert params["features"].split(",") == list(FEATURE_NAMES)
    assert float(params["threshold"]) == pytest.approx(trained.payload["threshold"])
    assert params["rows_total"] == "10000"
    plots = {
        Path(item.path).name for item in client.list_artifacts(run.info.run_id, "plots")
    }
    assert {
        "precision_recall.png",
        "confusion_matrix.png",
        "feature_importance.png",
        "calibration.png",
    } <= plots


def test_version_is_challenger_and_tagged_with_run_key_sha_and_commit(
    trained, tracking
):
    client = MlflowClient()
    version = client.get_model_version_by_alias(
        names.MODEL_NAME, names.ALIAS_CHALLENGER
    )

    assert str(version.version) == trained.payload["version"]
    assert version.tags["cloudguard.run_key"] == trained.run_key
    assert version.tags["cloudguard.data_sha256"] == trained.payload["data_sha256"]
    assert version.tags["cloudguard.git_commit"]


def test_same_run_key_returns_the_registered_version_without_training(
    trained, tracking, dataset_path
):
    from cloudguard_cli.main import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(
        app,
        ["train", "--data", str(dataset_path), "--run-key", trained.run_key, "--json"],
    )

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["reused"] is True
    assert payload["version"] == trained.payload["version"]
    assert payload["run_id"] == trained.payload["run_id"]
    versions = MlflowClient().search_model_versions(f"name='{names.MODEL_NAME}'")
    assert len(versions) == 1


@pytest.fixture(scope="module")
def champion(trained):
    """The trained version promoted to champion and loaded from the registry."""
    client = MlflowClient(tracking_uri=trained.tracking_uri)
    client.set_registered_model_alias(
        names.MODEL_NAME, names.ALIAS_CHAMPION, trained.payload["version"]
    )
    mlflow.set_tracking_uri(trained.tracking_uri)
    try:
        yield mlflow.pyfunc.load_model(f"models:/{names.MODEL_NAME}@champion")
    finally:
        mlflow.set_tracking_uri(None)


def test_pyfunc_from_registry_predicts_from_raw_readings(champion, dataset_path):
    frame = pd.read_csv(dataset_path).tail(50)

    predictions = champion.predict(frame[list(INPUT_COLUMNS)])

    assert list(predictions.columns) == list(PREDICTION_COLUMNS)
    assert len(predictions) == 50
    assert predictions["failure_probability"].between(0, 1).all()


def test_unwrapped_model_is_a_scorer_with_its_training_facts(champion, trained):
    model = champion.unwrap_python_model()

    assert isinstance(model, Scorer)
    assert model.threshold == pytest.approx(trained.payload["threshold"])
    assert tuple(model.feature_names) == FEATURE_NAMES
    assert dict(model.type_codes) == {"L": 0, "M": 1, "H": 2}
    assert set(model.reference) == set(FEATURE_NAMES)
    assert model.safe_bands["power_w"].low == 3500.0
    assert model.safe_bands["power_w"].high == 9000.0


def test_h_reading_scores_the_same_alone_and_in_a_batch(champion, dataset_path):
    model = champion.unwrap_python_model()
    frame = pd.read_csv(dataset_path).head(400)
    types = frame["Type"].to_numpy(dtype=object)
    numeric = frame[list(NUMERIC_COLUMNS)].to_numpy(dtype=np.float64)
    row = int(np.flatnonzero(types == "H")[0])

    batch = model.score(types, numeric)
    alone = model.score(types[row : row + 1], numeric[row : row + 1])

    assert alone.probability[0] == batch.probability[row]
    np.testing.assert_array_equal(
        alone.mode_probability[0], batch.mode_probability[row]
    )


def test_unknown_product_type_is_an_error(champion):
    model = champion.unwrap_python_model()

    with pytest.raises(FeatureError, match="unknown product type 'X'"):
        model.score(np.array(["X"], dtype=object), [[300.0, 310.0, 1500.0, 40.0, 10.0]])


def test_explain_contributions_add_up_to_the_failure_log_odds(champion, dataset_path):
    model = champion.unwrap_python_model()
    frame = pd.read_csv(dataset_path).head(20)
    types = frame["Type"].to_numpy(dtype=object)
    numeric = frame[list(NUMERIC_COLUMNS)].to_numpy(dtype=np.float64)

    scores = model.score(types, numeric, explain=True)

    assert scores.contributions is not None
    assert scores.contributions.shape == (20, len(FEATURE_NAMES) + 1)
    log_odds = np.log(scores.probability / (1 - scores.probability))
    np.testing.assert_allclose(scores.contributions.sum(axis=1), log_odds, atol=1e-4)
