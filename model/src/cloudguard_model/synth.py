"""Synthetic AI4I-style readings at any scale, following the data set's
documented generating process.

- `Type` L/M/H with shares 50/30/20 %; `Product ID` is the letter and a serial.
- Air temperature: a slow random process around 300 K (sd 2 K); process
  temperature: air + 10 K plus its own slow process (sd 1 K).
- Torque: normal around 40 Nm (sd 10 Nm), never negative; speed falls as
  torque rises (roughly constant power) with multiplicative noise.
- Tool wear: each process adds 5/3/2 min for H/M/L; the tool is replaced or
  fails at a wear drawn uniformly from 200-240 min.
- Failure modes, exactly as documented: TWF at some tool replacements;
  HDF when process - air < 8.6 K and speed < 1380 rpm; PWF when power is
  outside 3,500-9,000 W; OSF when wear x torque exceeds 11,000/12,000/13,000
  min*Nm for L/M/H; RNF with probability 0.1 %. `Machine failure` is any mode.

Generation is chunked with the random state carried across chunks, so ten
million rows need memory for one chunk only.
"""

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import lfilter

from cloudguard_model import storage
from cloudguard_model.dataio import detect_format
from cloudguard_model.features import (
    HEAT_DISSIPATION_MIN_DIFFERENCE_K,
    HEAT_DISSIPATION_MIN_SPEED_RPM,
    OVERSTRAIN_LIMITS,
    POWER_BAND_W,
    PRODUCT_TYPES,
)

logger = logging.getLogger(__name__)

TYPE_SHARES: Final = (0.5, 0.3, 0.2)
"""Shares of L, M, H."""
WEAR_PER_PROCESS_MIN: Final = {"L": 2.0, "M": 3.0, "H": 5.0}
REPLACEMENT_WEAR_MIN: Final = (200.0, 240.0)
TOOL_FAILURE_SHARE: Final = 51 / 120
"""Share of tool replacements that are tool wear failures in the original data."""
RANDOM_FAILURE_RATE: Final = 0.001
_PERSISTENCE: Final = 0.999
"""AR(1) coefficient of the temperature processes: slow drift, as in a hall."""
_RPM_TO_RAD_PER_S: Final = 2.0 * np.pi / 60.0
CHUNK_ROWS: Final = 500_000

COLUMNS: Final = (
    "UDI",
    "Product ID",
    "Type",
    "Air temperature [K]",
    "Process temperature [K]",
    "Rotational speed [rpm]",
    "Torque [Nm]",
    "Tool wear [min]",
    "Machine failure",
    "TWF",
    "HDF",
    "PWF",
    "OSF",
    "RNF",
)


@dataclass
class _State:
    """What carries from one chunk to the next."""

    next_udi: int = 1
    air: float = 0.0
    process: float = 0.0
    wear: float = 0.0
    replace_at: float = 220.0


def _ar1(
    noise: npt.NDArray[np.float64], start: float
) -> tuple[npt.NDArray[np.float64], float]:
    values, state = lfilter(
        [1.0], [1.0, -_PERSISTENCE], noise, zi=[_PERSISTENCE * start]
    )
    return values, float(state[0] / _PERSISTENCE)


def _tool_wear(
    increments: npt.NDArray[np.float64], state: _State, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Wear per row and the rows where the tool reached its replacement wear."""
    n = len(increments)
    wear = np.empty(n)
    replaced = np.zeros(n, dtype=bool)
    cumulative = np.cumsum(increments)
    position, offset, start = 0, 0.0, state.wear
    while position < n:
        # First row at or after `position` whose wear reaches the limit.
        target = offset + (state.replace_at - start)
        hit = int(np.searchsorted(cumulative, target - 1e-9, side="left"))
        hit = max(hit, position)
        end = min(hit, n - 1)
        wear[position : end + 1] = start + cumulative[position : end + 1] - offset
        if hit >= n:
            start = float(wear[-1])
            break
        replaced[hit] = True
        offset = float(cumulative[hit])
        start = 0.0
        position = hit + 1
        state.replace_at = float(rng.uniform(*REPLACEMENT_WEAR_MIN))
    else:
        start = 0.0
    state.wear = start
    return wear, replaced


def _chunk(rows: int, state: _State, rng: np.random.Generator) -> pd.DataFrame:
    type_index = rng.choice(len(PRODUCT_TYPES), size=rows, p=TYPE_SHARES)
    types = np.asarray(PRODUCT_TYPES)[type_index]

    scale = np.sqrt(1.0 - _PERSISTENCE**2)
    air_noise, state.air = _ar1(rng.normal(0.0, 2.0 * scale, rows), state.air)
    process_noise, state.process = _ar1(
        rng.normal(0.0, 1.0 * scale, rows), state.process
    )
    air = np.round(300.0 + air_noise, 1)
    process = np.round(air + 10.0 + process_noise, 1)

    torque = np.round(np.clip(rng.normal(40.0, 10.0, rows), 3.0, None), 1)
    speed = np.round(
        1540.0 * (40.0 / torque) ** 0.45 * rng.normal(1.0, 0.04, rows)
    ).astype(np.int64)

    increments = np.array([WEAR_PER_PROCESS_MIN[t] for t in PRODUCT_TYPES])[type_index]
    wear_float, replaced = _tool_wear(increments, state, rng)
    wear = np.round(wear_float).astype(np.int64)

    power = torque * speed * _RPM_TO_RAD_PER_S
    limits = np.array([OVERSTRAIN_LIMITS[t] for t in PRODUCT_TYPES])[type_index]
    twf = replaced & (rng.random(rows) < TOOL_FAILURE_SHARE)
    hdf = (process - air < HEAT_DISSIPATION_MIN_DIFFERENCE_K) & (
        speed < HEAT_DISSIPATION_MIN_SPEED_RPM
    )
    pwf = (power < POWER_BAND_W[0]) | (power > POWER_BAND_W[1])
    osf = wear * torque > limits
    rnf = rng.random(rows) < RANDOM_FAILURE_RATE
    failure = twf | hdf | pwf | osf | rnf

    udi = np.arange(state.next_udi, state.next_udi + rows, dtype=np.int64)
    state.next_udi += rows
    serial = (10_000 + udi).astype(str)
    return pd.DataFrame(
        {
            "UDI": udi,
            "Product ID": np.char.add(types.astype(str), serial),
            "Type": types,
            "Air temperature [K]": air,
            "Process temperature [K]": process,
            "Rotational speed [rpm]": speed,
            "Torque [Nm]": torque,
            "Tool wear [min]": wear,
            "Machine failure": failure.astype(np.int64),
            "TWF": twf.astype(np.int64),
            "HDF": hdf.astype(np.int64),
            "PWF": pwf.astype(np.int64),
            "OSF": osf.astype(np.int64),
            "RNF": rnf.astype(np.int64),
        },
        columns=list(COLUMNS),
    )


def iter_synthetic(
    rows: int, seed: int = 2020, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield `rows` synthetic readings in UDI order, at most `chunk_rows` at a time."""
    rng = np.random.default_rng(seed)
    state = _State(replace_at=float(rng.uniform(*REPLACEMENT_WEAR_MIN)))
    remaining = rows
    while remaining > 0:
        size = min(chunk_rows, remaining)
        yield _chunk(size, state, rng)
        remaining -= size


def synthesize(rows: int, seed: int = 2020) -> pd.DataFrame:
    """All `rows` readings in one DataFrame (small sizes)."""
    return pd.concat(list(iter_synthetic(rows, seed)), ignore_index=True)


def _write_local(path: Path, rows: int, seed: int) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    written = 0
    writer: pq.ParquetWriter | None = None
    try:
        for index, chunk in enumerate(iter_synthetic(rows, seed)):
            failures += int(chunk["Machine failure"].sum())
            written += len(chunk)
            if detect_format(str(path)) == "parquet":
                table = pa.Table.from_pandas(chunk, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            else:
                chunk.to_csv(
                    path,
                    mode="w" if index == 0 else "a",
                    header=index == 0,
                    index=False,
                )
    finally:
        if writer is not None:
            writer.close()
    return {"rows": written, "failures": failures}


def write_synthetic(out_uri: str, *, rows: int, seed: int = 2020) -> dict[str, Any]:
    """Write synthetic readings to a path or S3 URI (.csv or .parquet)."""
    if storage.is_s3(out_uri):
        bucket, key = storage.split_s3(out_uri)
        with tempfile.TemporaryDirectory(prefix="cloudguard-synth-") as directory:
            path = Path(directory) / Path(key).name
            summary = _write_local(path, rows, seed)
            # upload_file streams from disk in parts; no copy in memory.
            storage.s3_client().upload_file(str(path), bucket, key)
    else:
        summary = _write_local(Path(out_uri), rows, seed)
    summary.update({"uri": out_uri, "seed": seed})
    logger.info(
        "event=synthetic_written uri=%s rows=%d failures=%d",
        out_uri,
        summary["rows"],
        summary["failures"],
    )
    return summary
