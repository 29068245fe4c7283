"""The one feature step shared by training and serving.

Inputs are the six raw readings of the AI4I 2020 data set. The derived
features follow the physics the failure modes depend on: heat dissipation
needs the temperature difference and speed, power failure needs mechanical
power, overstrain needs tool wear times torque against a per-type limit.

Everything works on numpy arrays so the service never builds a DataFrame on
the request path; `frame_to_inputs` adapts a DataFrame for training and pyfunc.
"""

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from cloudguard_model.errors import FeatureError, LeakageError

TYPE_COLUMN: Final = "Type"
NUMERIC_COLUMNS: Final = (
    "Air temperature [K]",
    "Process temperature [K]",
    "Rotational speed [rpm]",
    "Torque [Nm]",
    "Tool wear [min]",
)
PLAUSIBLE_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "Air temperature [K]": (200.0, 400.0),
    "Process temperature [K]": (200.0, 500.0),
    "Rotational speed [rpm]": (0.0, 20_000.0),
    "Torque [Nm]": (0.0, 1_000.0),
    "Tool wear [min]": (0.0, 10_000.0),
}
"""Closed ranges outside which a reading cannot come from a working machine;
the data validation and the service's request checks both use these."""
INPUT_COLUMNS: Final = (TYPE_COLUMN, *NUMERIC_COLUMNS)
"""The AI4I columns the model reads; any other column is ignored."""

LABEL_COLUMN: Final = "Machine failure"
FAILURE_MODES: Final = ("TWF", "HDF", "PWF", "OSF", "RNF")
ID_COLUMNS: Final = ("UDI", "Product ID")
FORBIDDEN_FEATURES: Final = frozenset((LABEL_COLUMN, *FAILURE_MODES, *ID_COLUMNS))
"""Columns that identify a row or are only known after a failure."""

PRODUCT_TYPES: Final = ("L", "M", "H")
DEFAULT_TYPE_CODES: Final[Mapping[str, int]] = {"L": 0, "M": 1, "H": 2}

# Overstrain limit (tool wear x torque, min*Nm) per product type, from the
# data set's documented generating process.
OVERSTRAIN_LIMITS: Final[Mapping[str, float]] = {
    "L": 11_000.0,
    "M": 12_000.0,
    "H": 13_000.0,
}

# Safe bands from the data set's documented generating process: power failure
# outside 3,500-9,000 W; heat dissipation failure when the process runs less
# than 8.6 K above air temperature at under 1,380 rpm.
POWER_BAND_W: Final = (3_500.0, 9_000.0)
HEAT_DISSIPATION_MIN_DIFFERENCE_K: Final = 8.6
HEAT_DISSIPATION_MIN_SPEED_RPM: Final = 1_380.0
# Scale that puts 100 rpm of speed on a par with 1 K of temperature difference
# in the heat dissipation margin.
_HEAT_SPEED_SCALE_RPM: Final = 100.0

FEATURE_NAMES: Final = (
    "type_code",
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
    "temperature_difference_k",
    "power_w",
    "tool_strain_min_nm",
    "tool_strain_ratio",
    "power_band_margin_w",
    "heat_dissipation_margin",
)
"""Model features in column order. Appended names keep earlier columns stable:
`power_band_margin_w` is the distance inside the safe power band (negative
outside it); `heat_dissipation_margin` is positive when either the temperature
difference or the speed is high enough to carry the heat away."""

_RPM_TO_RAD_PER_S: Final = 2.0 * np.pi / 60.0

FloatArray = npt.NDArray[np.float64]


def check_no_leakage(columns: Sequence[str]) -> None:
    """Refuse identifier, label and failure-mode columns as model inputs."""
    leaked = sorted(set(columns) & FORBIDDEN_FEATURES)
    if leaked:
        raise LeakageError(
            f"columns {leaked} cannot be model inputs: identifiers and failure "
            "labels are only known after the fact; use only "
            f"{list(INPUT_COLUMNS)}"
        )


def encode_types(
    types: Sequence[str] | npt.NDArray[np.object_],
    type_codes: Mapping[str, int] = DEFAULT_TYPE_CODES,
) -> FloatArray:
    """Map product type letters to the codes fixed at training time."""
    codes = np.empty(len(types), dtype=np.float64)
    for row, product_type in enumerate(types):
        code = type_codes.get(product_type)
        if code is None:
            raise FeatureError(
                f"column `{TYPE_COLUMN}` row {row}: unknown product type "
                f"{product_type!r}; expected one of {sorted(type_codes)}"
            )
        codes[row] = code
    return codes


def build_features(
    types: Sequence[str] | npt.NDArray[np.object_],
    numeric: npt.ArrayLike,
    type_codes: Mapping[str, int] = DEFAULT_TYPE_CODES,
) -> FloatArray:
    """Return the feature matrix (rows x FEATURE_NAMES) for raw readings.

    `numeric` holds NUMERIC_COLUMNS in that order, one row per reading.
    """
    values = np.asarray(numeric, dtype=np.float64).reshape(-1, len(NUMERIC_COLUMNS))
    if values.shape[0] != len(types):
        raise FeatureError(
            f"{len(types)} product types for {values.shape[0]} numeric rows"
        )
    air, process, speed, torque, wear = values.T
    limits = np.array([OVERSTRAIN_LIMITS.get(t, np.nan) for t in types])
    strain = wear * torque
    difference = process - air
    power = torque * speed * _RPM_TO_RAD_PER_S
    low_power, high_power = POWER_BAND_W

    return np.column_stack(
        [
            encode_types(types, type_codes),
            values,
            difference,
            power,
            strain,
            strain / limits,
            np.minimum(power - low_power, high_power - power),
            np.maximum(
                difference - HEAT_DISSIPATION_MIN_DIFFERENCE_K,
                (speed - HEAT_DISSIPATION_MIN_SPEED_RPM) / _HEAT_SPEED_SCALE_RPM,
            ),
        ]
    )


def frame_to_inputs(frame: pd.DataFrame) -> tuple[npt.NDArray[np.object_], FloatArray]:
    """Pick the input columns from a DataFrame by name; ignore all others."""
    missing = [column for column in INPUT_COLUMNS if column not in frame.columns]
    if missing:
        raise FeatureError(f"missing input columns {missing}")
    types = frame[TYPE_COLUMN].astype(str).to_numpy(dtype=object)
    numeric = frame[list(NUMERIC_COLUMNS)].to_numpy(dtype=np.float64)
    return types, numeric


def features_from_frame(
    frame: pd.DataFrame, type_codes: Mapping[str, int] = DEFAULT_TYPE_CODES
) -> FloatArray:
    """Feature matrix for a DataFrame with the AI4I input columns."""
    types, numeric = frame_to_inputs(frame)
    return build_features(types, numeric, type_codes)
