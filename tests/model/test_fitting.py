"""Leakage, time-ordered splits, threshold choice and reproducibility, checked
on the fit step directly (no MLflow)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cloudguard_model.config import TrainConfig
from cloudguard_model.dataio import materialize
from cloudguard_model.errors import ConfigError, LeakageError
from cloudguard_model.evalset import freeze_evaluation_set, load_evaluation_set
from cloudguard_model.features import FAILURE_MODES, LABEL_COLUMN
from cloudguard_model.metrics import choose_threshold
from cloudguard_model.training import fit_model


def _fit(path: Path | str, **overrides: object):
    with materialize(str(path)) as data:
        return fit_model(data, TrainConfig(**overrides))


@pytest.fixture(scope="module")
def baseline(dataset_path):
    return _fit(dataset_path)


@pytest.mark.parametrize("column", ["UDI", "Product ID", LABEL_COLUMN, *FAILURE_MODES])
def test_identifier_label_and_mode_columns_are_refused_as_inputs(column):
    with pytest.raises(LeakageError, match=column):
        TrainConfig(input_columns=("Type", "Torque [Nm]", column))


def test_a_column_that_is_not_a_reading_is_refused():
    with pytest.raises(ConfigError, match="not AI4I readings"):
        TrainConfig(input_columns=("Type", "Humidity"))


def test_holdout_is_the_latest_udis_and_validation_the_latest_training_udis(baseline):
    plan = baseline.plan

    assert plan.holdout_from == 8001
    assert plan.validation_from == 6401
    roles = plan.roles(np.arange(1, 10_001))
    assert (roles[:6400] == 0).all()
    assert (roles[6400:8000] == 1).all()
    assert (roles[8000:] == 2).all()


def test_threshold_and_model_do_not_depend_on_holdout_labels(
    baseline, dataset_path, tmp_path
):
    frame = pd.read_csv(dataset_path)
    holdout = frame["UDI"] > 8000
    rng = np.random.default_rng(0)
    frame.loc[holdout, LABEL_COLUMN] = rng.permutation(
        frame.loc[holdout, LABEL_COLUMN].to_numpy()
    )
    path = tmp_path / "shuffled_holdout.csv"
    frame.to_csv(path, index=False)

    shuffled = _fit(path)

    assert shuffled.model.threshold == baseline.model.threshold
    assert shuffled.heads.failure.save_raw("json") == baseline.heads.failure.save_raw(
        "json"
    )
    assert shuffled.metrics["holdout_f1"] != baseline.metrics["holdout_f1"]


def test_same_data_and_config_give_the_same_model(baseline, dataset_path):
    again = _fit(dataset_path)

    assert again.model.threshold == baseline.model.threshold
    assert again.heads.failure.save_raw("json") == baseline.heads.failure.save_raw(
        "json"
    )
    for mode, booster in baseline.heads.modes.items():
        assert again.heads.modes[mode].save_raw("json") == booster.save_raw("json")


def test_training_never_sees_evaluation_set_udis(dataset_path, tmp_path):
    evaluation = freeze_evaluation_set(
        str(dataset_path), str(tmp_path / "evaluation.csv"), fraction=0.2
    )

    with materialize(str(dataset_path)) as data:
        outcome = fit_model(data, TrainConfig(), evaluation)

    roles = outcome.plan.roles(evaluation.frame["UDI"].to_numpy())
    assert (roles == 3).all()
    assert outcome.metrics["rows_fit"] + outcome.metrics["rows_validation"] == 8000
    assert outcome.metrics["rows_holdout"] == len(evaluation.frame) == 2000


def test_evaluation_set_is_latest_udis_and_never_overwritten(dataset_path, tmp_path):
    out = tmp_path / "evaluation.csv"
    first = freeze_evaluation_set(str(dataset_path), str(out), fraction=0.1)

    second = freeze_evaluation_set(str(dataset_path), str(out), fraction=0.5)

    assert first.frame["UDI"].tolist() == list(range(9001, 10_001))
    assert second.sha256 == first.sha256
    assert len(second.frame) == 1000
    assert load_evaluation_set(str(out)).sha256 == first.sha256


def test_threshold_choice_ignores_rows_it_is_not_given():
    labels = np.array([0] * 90 + [1] * 10)
    scores = np.r_[np.linspace(0.0, 0.2, 90), np.linspace(0.7, 0.99, 10)]

    choice = choose_threshold(labels, scores)

    # Perfect separation: the cut lies in the gap, at best-F1 / 2 = 0.5.
    assert 0.2 < choice.threshold <= 0.7
    assert choice.value == 1.0


def test_cost_objective_flags_more_when_misses_cost_more():
    rng = np.random.default_rng(1)
    labels = rng.random(2000) < 0.05
    scores = np.clip(labels * 0.35 + rng.normal(0.2, 0.15, 2000), 0, 1)

    cheap = choose_threshold(labels, scores, objective="cost", missed_failure_cost=1.0)
    dear = choose_threshold(labels, scores, objective="cost", missed_failure_cost=50.0)

    assert dear.threshold < cheap.threshold
