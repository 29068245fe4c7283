"""The frozen evaluation set: the latest readings, written once, never replaced.

Challenger and champion are scored on the same rows, so a comparison between
them means something. The set is the latest share of rows by `UDI` (time
order), stored as CSV with every AI4I column; training excludes its UDIs.
"""

import hashlib
import io
import logging
from dataclasses import dataclass

import pandas as pd

from cloudguard_model import storage
from cloudguard_model.dataio import UDI_COLUMN, materialize
from cloudguard_model.errors import CloudGuardModelError
from cloudguard_model.validation import raise_for_report, validate_local

logger = logging.getLogger(__name__)


class EvaluationSetError(CloudGuardModelError, ValueError):
    """The evaluation set cannot be made or read."""


@dataclass(frozen=True)
class EvaluationSet:
    frame: pd.DataFrame
    """All AI4I columns, including UDI and labels, ordered by UDI."""
    sha256: str
    """sha256 of the stored CSV bytes."""
    uri: str


def load_evaluation_set(uri: str) -> EvaluationSet:
    """Read a frozen evaluation set, validating it like training data."""
    with materialize(uri) as data:
        raise_for_report(validate_local(data))
        frame = pd.read_csv(data.path)
        sha256 = data.sha256
    return EvaluationSet(frame=frame, sha256=sha256, uri=uri)


def freeze_evaluation_set(
    data_uri: str, out_uri: str, fraction: float = 0.2
) -> EvaluationSet:
    """Write the latest `fraction` of rows (by UDI) of `data_uri` to `out_uri`.

    An evaluation set that already exists is never overwritten: it is loaded
    and returned as it is, so every later model is judged on the same rows.
    """
    if not 0.0 < fraction < 1.0:
        raise EvaluationSetError(f"fraction={fraction} must be between 0 and 1")
    if storage.exists(out_uri):
        logger.info("event=evaluation_set_kept uri=%s", out_uri)
        return load_evaluation_set(out_uri)

    with materialize(data_uri) as data:
        raise_for_report(validate_local(data))
        frame = (
            pd.read_csv(data.path)
            if data.format == "csv"
            else pd.read_parquet(data.path)
        )
    frame = frame.sort_values(UDI_COLUMN, kind="stable")
    count = max(1, round(len(frame) * fraction))
    latest = frame.tail(count).reset_index(drop=True)

    buffer = io.StringIO()
    latest.to_csv(buffer, index=False)
    payload = buffer.getvalue().encode("utf-8")
    storage.write_bytes(out_uri, payload)
    logger.info(
        "event=evaluation_set_frozen uri=%s rows=%d first_udi=%d",
        out_uri,
        len(latest),
        int(latest[UDI_COLUMN].iloc[0]),
    )
    return EvaluationSet(
        frame=latest, sha256=hashlib.sha256(payload).hexdigest(), uri=out_uri
    )
