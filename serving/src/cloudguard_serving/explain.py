"""Turn XGBoost per-feature contributions into sentences a plant engineer reads.

Values are named in plant terms with their unit; where the model ships a safe
band for a feature (`FailureModel.safe_bands`: documented physics or the
training data's quiet range), the sentence says whether the value is inside
it, e.g. "power 9,400 W is above the safe band (3,500-9,000 W)".
"""

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
from cloudguard_model.contract import SafeBand
from cloudguard_model.features import (
    HEAT_DISSIPATION_MIN_DIFFERENCE_K,
    HEAT_DISSIPATION_MIN_SPEED_RPM,
    POWER_BAND_W,
)

from cloudguard_serving.schemas import Factor

_TYPES: Final = {0: "L", 1: "M", 2: "H"}
# feature -> (plant name, unit, number format)
_LABELS: Final[dict[str, tuple[str, str, str]]] = {
    "air_temperature_k": ("air temperature", "K", ",.1f"),
    "process_temperature_k": ("process temperature", "K", ",.1f"),
    "rotational_speed_rpm": ("rotational speed", "rpm", ",.0f"),
    "torque_nm": ("torque", "Nm", ",.1f"),
    "tool_wear_min": ("tool wear", "min", ",.0f"),
    "temperature_difference_k": ("process-air temperature gap", "K", ",.1f"),
    "power_w": ("power", "W", ",.0f"),
    "tool_strain_min_nm": ("tool wear x torque", "min·Nm", ",.0f"),
}


def _band_text(value: float, band: SafeBand, fmt: str) -> str:
    unit = f" {band.unit}" if band.unit else ""
    if band.low is None and band.high is not None:
        span = f"(up to {format(band.high, fmt)}{unit})"
    elif band.high is None and band.low is not None:
        span = f"({format(band.low, fmt)}{unit} or more)"
    else:
        span = f"({format(band.low or 0.0, fmt)}-{format(band.high or 0.0, fmt)}{unit})"
    if band.high is not None and value > band.high:
        return f" is above the safe band {span}"
    if band.low is not None and value < band.low:
        return f" is below the safe band {span}"
    return f" is within the safe band {span}"


def _power_margin(value: float) -> str:
    low, high = POWER_BAND_W
    band = f"({low:,.0f}-{high:,.0f} W)"
    if value < 0:
        return f"power is {-value:,.0f} W outside the safe band {band}"
    return f"power is {value:,.0f} W inside the safe band {band}"


def _heat_margin(value: float) -> str:
    rule = (
        f"process-air gap of {HEAT_DISSIPATION_MIN_DIFFERENCE_K} K or "
        f"{HEAT_DISSIPATION_MIN_SPEED_RPM:,.0f} rpm"
    )
    if value < 0:
        return f"heat dissipation is short of the {rule}"
    return f"heat dissipation has margin over the {rule}"


def describe(
    feature: str, value: float, contribution: float, band: SafeBand | None = None
) -> str:
    """One sentence: the value, its safe band if any, and its push on the risk."""
    direction = "raises" if contribution > 0 else "lowers"
    if feature == "type_code":
        text = f"product type {_TYPES.get(int(value), value)}"
    elif feature == "power_band_margin_w":
        text = _power_margin(value)
    elif feature == "heat_dissipation_margin":
        text = _heat_margin(value)
    elif feature == "tool_strain_ratio":
        text = f"tool strain at {100.0 * value:.0f}% of the overstrain limit"
        if value > 1.0:
            text += " is over the limit"
    else:
        name, unit, fmt = _LABELS.get(feature, (feature, "", "g"))
        text = f"{name} {format(value, fmt)} {unit}".rstrip()
        if band is not None:
            text += _band_text(value, band, fmt)
    return f"{text}; {direction} the failure risk"


def top_factors(
    feature_names: Sequence[str],
    features: Sequence[float] | np.ndarray,
    contributions: np.ndarray,
    top: int,
    bands: Mapping[str, SafeBand] | None = None,
) -> list[Factor]:
    """The `top` features with the largest absolute contribution for one row.

    `contributions` has one entry per feature plus the bias last, as XGBoost
    returns them; the bias is not a factor and is skipped.
    """
    bands = bands or {}
    per_feature = contributions[: len(feature_names)]
    order = np.argsort(-np.abs(per_feature))[:top]
    return [
        Factor(
            feature=feature_names[i],
            value=round(float(features[i]), 4),
            contribution=round(float(per_feature[i]), 4),
            description=describe(
                feature_names[i],
                float(features[i]),
                float(per_feature[i]),
                bands.get(feature_names[i]),
            ),
        )
        for i in order
    ]
