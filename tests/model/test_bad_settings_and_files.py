"""Bad training settings and unreadable files end in one clear error."""

from pathlib import Path

import pytest
from cloudguard_model.config import TrainConfig
from cloudguard_model.errors import CloudGuardModelError, ConfigError
from cloudguard_model.validation import validate_data


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_depth": "deep"}, "max_depth='deep' must be a int"),
        ({"chunk_rows": "abc"}, "chunk_rows='abc' must be a int"),
        ({"learning_rate": float("nan")}, "learning_rate=nan must be a float"),
        ({"monotone": "yes"}, "monotone='yes' must be a bool"),
        ({"num_boost_round": -5}, "num_boost_round=-5 must be at least 1"),
        ({"reference_bins": 0}, "reference_bins=0 must be at least 2"),
        ({"input_columns": "Machine failure"}, "must be a list of column names"),
    ],
)
def test_bad_setting_is_refused_naming_it(settings, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        TrainConfig.from_mapping(settings)


def test_integers_are_accepted_for_float_settings() -> None:
    config = TrainConfig.from_mapping({"learning_rate": 1, "subsample": 1})

    assert config.learning_rate == 1.0


def test_binary_file_is_refused_as_not_text(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    path.write_bytes(bytes(range(256)) * 8)

    with pytest.raises(CloudGuardModelError, match="is not UTF-8 text"):
        validate_data(str(path))
