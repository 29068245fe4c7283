"""Typed request and response bodies (msgspec), shared by the API and the log.

JSON field names are the plant's own, in snake case with the unit last. A
reading is turned into the model's input by these names (see `to_arrays`), so
the order of keys in the JSON never matters.
"""

import math
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec
import numpy as np
from cloudguard_model.features import (
    FAILURE_MODES,
    NUMERIC_COLUMNS,
    PLAUSIBLE_RANGES,
)

ProductType = Literal["L", "M", "H"]
MachineId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Reading(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One sensor reading from a milling machine."""

    product_type: Annotated[
        ProductType, msgspec.Meta(description="Product quality variant: L, M or H.")
    ]
    air_temperature_k: Annotated[
        float, msgspec.Meta(description="Air temperature in kelvin (200-400).")
    ]
    process_temperature_k: Annotated[
        float, msgspec.Meta(description="Process temperature in kelvin (200-500).")
    ]
    rotational_speed_rpm: Annotated[
        float, msgspec.Meta(description="Spindle speed in rpm (0-20000).")
    ]
    torque_nm: Annotated[float, msgspec.Meta(description="Torque in Nm (0-1000).")]
    tool_wear_min: Annotated[
        float, msgspec.Meta(description="Tool wear in minutes of use (0-10000).")
    ]
    machine_id: MachineId | None = None
    """Echoed back and logged; never used by the model."""
    timestamp: datetime | None = None
    """When the reading was taken (RFC 3339); echoed back and logged."""


READING_FIELDS: Final = (
    "air_temperature_k",
    "process_temperature_k",
    "rotational_speed_rpm",
    "torque_nm",
    "tool_wear_min",
)
"""Reading fields in the order of cloudguard_model.features.NUMERIC_COLUMNS."""
assert len(READING_FIELDS) == len(NUMERIC_COLUMNS)

PHYSICAL_RANGES: Final[dict[str, tuple[float, float]]] = {
    field: PLAUSIBLE_RANGES[column]
    for field, column in zip(READING_FIELDS, NUMERIC_COLUMNS, strict=True)
}
"""Closed ranges outside which a value cannot come from a working machine."""


class PredictRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A batch of readings from one gateway."""

    readings: Annotated[list[Reading], msgspec.Meta(min_length=1)]
    explain: bool = True
    """Return the top contributing factors per reading (costs some latency)."""


class Factor(msgspec.Struct, kw_only=True):
    """One feature's share of the failure score, in plant terms."""

    feature: str
    value: float
    contribution: float
    """Contribution to the failure log-odds (XGBoost's own, per feature)."""
    description: str


class Prediction(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The model's answer for one reading."""

    failure_probability: float
    failure: bool
    failure_mode: str
    mode_probabilities: dict[str, float]
    top_factors: list[Factor] | None = None
    machine_id: str | None = None
    timestamp: datetime | None = None


class PredictResponse(msgspec.Struct, kw_only=True):
    request_id: str
    model_version: str
    threshold: float
    predictions: list[Prediction]


class FieldError(msgspec.Struct, kw_only=True):
    field: str
    """JSON path of the offending field, e.g. `readings[2].torque_nm`."""
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """The one error shape of every non-2xx answer."""

    status: int
    error: str
    """Stable machine-readable code, e.g. `invalid_reading`."""
    message: str
    request_id: str
    details: list[FieldError] = []


def physical_errors(readings: list[Reading]) -> list[FieldError]:
    """One entry per field whose value is not finite or not physically possible."""
    errors: list[FieldError] = []
    for index, reading in enumerate(readings):
        for name in READING_FIELDS:
            value = getattr(reading, name)
            low, high = PHYSICAL_RANGES[name]
            if not math.isfinite(value):
                errors.append(
                    FieldError(
                        field=f"readings[{index}].{name}",
                        message=f"{value} is not a finite number",
                    )
                )
            elif not low <= value <= high:
                errors.append(
                    FieldError(
                        field=f"readings[{index}].{name}",
                        message=f"{value:g} is outside the physical range "
                        f"{low:g}..{high:g}",
                    )
                )
    return errors


def to_arrays(readings: list[Reading]) -> tuple[list[str], np.ndarray]:
    """Product types and the numeric matrix in NUMERIC_COLUMNS order."""
    types: list[str] = [reading.product_type for reading in readings]
    numeric = np.array(
        [[getattr(reading, name) for name in READING_FIELDS] for reading in readings],
        dtype=np.float64,
    )
    return types, numeric


MODE_NAMES: Final = FAILURE_MODES
