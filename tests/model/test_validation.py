"""Each kind of bad data stops training with a finding that names the column,
the row (UDI) and the reason; label quirks are warnings, not errors."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cloudguard_model.errors import DataValidationError
from cloudguard_model.validation import raise_for_report, validate_data


@pytest.fixture(scope="module")
def good(dataset_path: Path) -> pd.DataFrame:
    return pd.read_csv(dataset_path).head(300)


def _write(frame: pd.DataFrame, tmp_path: Path, name: str = "data.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def _set(frame: pd.DataFrame, udi: int, column: str, value: object) -> pd.DataFrame:
    broken = frame.copy()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        broken[column] = broken[column].astype(object)
    broken.loc[broken["UDI"] == udi, column] = value
    return broken


BAD_CELLS = [
    ("Torque [Nm]", -3.0, "below the physical minimum"),
    ("Rotational speed [rpm]", -1, "below the physical minimum"),
    ("Air temperature [K]", 12.5, "below the physical minimum"),
    ("Process temperature [K]", 900.0, "above the plausible maximum"),
    ("Tool wear [min]", np.nan, "missing"),
    ("Torque [Nm]", np.inf, "infinite"),
    ("Air temperature [K]", "warm", "expected a number"),
    ("Type", "X", "'X' is not one of"),
    ("Machine failure", 2, "expected 0 or 1"),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_CELLS)
def test_bad_cell_is_named_by_column_udi_and_reason(
    good, tmp_path, column, value, reason
):
    uri = _write(_set(good, 17, column, value), tmp_path)

    report = validate_data(uri)

    assert not report.ok
    finding = report.errors[0]
    assert (finding.column, finding.udi) == (column, 17)
    assert reason in finding.reason
    expected = re.escape(f"column `{column}` UDI 17")
    with pytest.raises(DataValidationError, match=expected):
        raise_for_report(report)


def test_missing_required_column_is_named(good, tmp_path):
    report = validate_data(_write(good.drop(columns=["Torque [Nm]"]), tmp_path))

    assert [(f.column, f.udi) for f in report.errors] == [("Torque [Nm]", None)]
    assert "required column is missing" in report.errors[0].reason


def test_duplicate_udi_is_named(good, tmp_path):
    duplicated = pd.concat([good, good[good["UDI"] == 42]], ignore_index=True)

    report = validate_data(_write(duplicated, tmp_path))

    assert [(f.column, f.udi) for f in report.errors] == [("UDI", 42)]
    assert "more than once" in report.errors[0].reason


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")

    report = validate_data(str(path))

    assert not report.ok
    assert "empty" in report.errors[0].reason


def test_header_without_rows_is_an_error(good, tmp_path):
    report = validate_data(_write(good.head(0), tmp_path))

    assert not report.ok
    assert "no data rows" in report.errors[0].reason


def test_single_class_is_an_error(good, tmp_path):
    healthy = good[good["Machine failure"] == 0]

    report = validate_data(_write(healthy, tmp_path))

    assert [f.column for f in report.errors] == ["Machine failure"]
    assert "only class [0]" in report.errors[0].reason


def test_label_quirks_of_the_real_data_are_warnings_not_errors(dataset_path):
    report = validate_data(str(dataset_path))

    assert report.ok
    assert report.rows == 10_000
    assert any(w.startswith("9 failures carry no mode flag") for w in report.warnings)
    assert any(w.startswith("18 rows flag a mode") for w in report.warnings)


def test_parquet_is_validated_the_same_way(good, tmp_path):
    path = tmp_path / "data.parquet"
    _set(good, 5, "Torque [Nm]", -1.0).to_parquet(path, index=False)

    report = validate_data(str(path))

    assert [(f.column, f.udi) for f in report.errors] == [("Torque [Nm]", 5)]


def test_cli_data_validate_exits_1_with_the_named_row(good, tmp_path):
    from cloudguard_cli.main import app
    from typer.testing import CliRunner

    uri = _write(_set(good, 23, "Torque [Nm]", -4.0), tmp_path)

    result = CliRunner().invoke(app, ["data", "validate", "--data", uri, "--json"])

    assert result.exit_code == 1
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["ok"] is False
    assert payload["errors"][0]["column"] == "Torque [Nm]"
    assert payload["errors"][0]["udi"] == 23


def test_training_refuses_invalid_data(good, tmp_path):
    from cloudguard_model.config import TrainConfig
    from cloudguard_model.dataio import materialize
    from cloudguard_model.training import fit_model

    uri = _write(_set(good, 9, "Rotational speed [rpm]", -100), tmp_path)

    with materialize(uri) as data, pytest.raises(DataValidationError, match="UDI 9"):
        fit_model(data, TrainConfig())
