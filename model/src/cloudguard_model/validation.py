"""Data validation before training: one declarative schema, checked in chunks.

`AI4I_SCHEMA` says what each column must hold; `validate_data` walks the file
chunk by chunk against it and returns a report whose findings each name the
column, the row (`UDI`) and the reason. Findings that make training unsafe
are errors; label quirks that the real data set has (a failure without a mode
flag, a mode flag without a failure) are counted as warnings.
"""

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from cloudguard_model.dataio import UDI_COLUMN, LocalData, iter_raw_chunks, materialize
from cloudguard_model.errors import DataValidationError
from cloudguard_model.features import (
    FAILURE_MODES,
    LABEL_COLUMN,
    PLAUSIBLE_RANGES,
    PRODUCT_TYPES,
    TYPE_COLUMN,
)

logger = logging.getLogger(__name__)

Kind = Literal["integer", "number", "flag", "category"]

_MAX_LISTED_PER_RULE = 5
"""Findings listed per (column, reason); the rest are counted."""


@dataclass(frozen=True)
class ColumnRule:
    """What one column must hold."""

    name: str
    kind: Kind
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] = ()
    unit: str = ""


def _unit(column: str) -> str:
    """`Torque [Nm]` -> `Nm`."""
    return column.rsplit("[", 1)[-1].rstrip("]")


AI4I_SCHEMA: tuple[ColumnRule, ...] = (
    ColumnRule(UDI_COLUMN, "integer", minimum=0),
    ColumnRule(TYPE_COLUMN, "category", allowed=PRODUCT_TYPES),
    # Plausible ranges for a machine hall and a milling process, shared with
    # the service's request checks.
    *(
        ColumnRule(column, "number", minimum=low, maximum=high, unit=_unit(column))
        for column, (low, high) in PLAUSIBLE_RANGES.items()
    ),
    ColumnRule(LABEL_COLUMN, "flag"),
    *(ColumnRule(mode, "flag") for mode in FAILURE_MODES),
)
"""The AI4I 2020 columns the trainer needs; `Product ID` and others are ignored."""


@dataclass(frozen=True)
class Finding:
    """One problem: which column, which row (UDI, when there is one), why."""

    column: str
    udi: int | None
    reason: str

    def __str__(self) -> str:
        where = f"UDI {self.udi}" if self.udi is not None else "whole file"
        return f"column `{self.column}` {where}: {self.reason}"


@dataclass
class ValidationReport:
    """The outcome of validating one data set."""

    uri: str
    rows: int = 0
    errors: list[Finding] = field(default_factory=list)
    error_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    label_counts: Counter[int] = field(default_factory=Counter)
    udis: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.empty(0, dtype=np.int64)
    )
    """Every UDI read, in file order (the trainer splits by them)."""

    @property
    def ok(self) -> bool:
        return not self.error_counts

    def add(self, column: str, rule: str, udis: npt.ArrayLike, reason: str) -> None:
        """Record `reason` for each row in `udis` (listing only the first few)."""
        udi_list = [int(u) if pd.notna(u) else None for u in np.asarray(udis)]
        if not udi_list:
            return
        listed = self.error_counts[(column, rule)]
        self.error_counts[(column, rule)] += len(udi_list)
        for udi in udi_list[: max(0, _MAX_LISTED_PER_RULE - listed)]:
            self.errors.append(Finding(column, udi, reason))

    def add_file_error(self, column: str, reason: str) -> None:
        self.error_counts[(column, reason)] += 1
        self.errors.append(Finding(column, None, reason))

    def summary(self) -> str:
        lines = [
            f"{self.uri}: {self.rows} rows, {sum(self.error_counts.values())} errors"
        ]
        lines += [f"  error: {finding}" for finding in self.errors]
        for (column, rule), count in sorted(self.error_counts.items()):
            if count > _MAX_LISTED_PER_RULE:
                lines.append(f"  ... column `{column}` {rule}: {count} rows in all")
        lines += [f"  warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "uri": self.uri,
            "rows": self.rows,
            "errors": [
                {"column": f.column, "udi": f.udi, "reason": f.reason}
                for f in self.errors
            ],
            "error_count": sum(self.error_counts.values()),
            "warnings": list(self.warnings),
        }


@dataclass
class _Tally:
    """State carried across chunks."""

    udis: list[npt.NDArray[np.int64]] = field(default_factory=list)
    failure_without_mode: int = 0
    mode_without_failure: int = 0
    first_failure_without_mode: list[int] = field(default_factory=list)
    first_mode_without_failure: list[int] = field(default_factory=list)


def _check_missing_columns(report: ValidationReport, columns: pd.Index) -> bool:
    missing = [rule.name for rule in AI4I_SCHEMA if rule.name not in columns]
    for name in missing:
        report.add_file_error(
            name, f"required column is missing; the file has {list(columns)}"
        )
    return not missing


def _numeric(
    chunk: pd.DataFrame, rule: ColumnRule, report: ValidationReport, udi: pd.Series
) -> pd.Series:
    raw = chunk[rule.name]
    values = pd.to_numeric(raw, errors="coerce")
    wrong_type = values.isna() & raw.notna()
    report.add(
        rule.name,
        "wrong type",
        udi[wrong_type],
        f"expected a number, got {raw[wrong_type].head(1).tolist()}",
    )
    report.add(rule.name, "missing value", udi[raw.isna()], "value is missing (NaN)")
    as_float = values.astype(np.float64)
    infinite = np.isinf(as_float)
    report.add(rule.name, "infinite", udi[infinite], "value is infinite")
    return as_float.where(~infinite)


def _check_rule(
    chunk: pd.DataFrame, rule: ColumnRule, report: ValidationReport, udi: pd.Series
) -> None:
    if rule.kind == "category":
        raw = chunk[rule.name]
        bad = ~raw.astype("string").isin(rule.allowed)
        for value, rows in udi[bad].groupby(raw[bad].astype("string"), dropna=False):
            report.add(
                rule.name,
                "unknown category",
                rows,
                f"{value!r} is not one of {list(rule.allowed)}",
            )
        return

    values = _numeric(chunk, rule, report, udi)
    if rule.kind == "flag":
        bad = values.notna() & ~values.isin((0.0, 1.0))
        report.add(rule.name, "not a flag", udi[bad], "expected 0 or 1")
        return
    if rule.kind == "integer":
        bad = values.notna() & (values != np.floor(values))
        report.add(rule.name, "not an integer", udi[bad], "expected a whole number")
    if rule.minimum is not None:
        low = values < rule.minimum
        for value, rows in list(udi[low].groupby(values[low]))[:_MAX_LISTED_PER_RULE]:
            report.add(
                rule.name,
                "below minimum",
                rows,
                f"{value} {rule.unit} is below the physical minimum {rule.minimum}",
            )
    if rule.maximum is not None:
        high = values > rule.maximum
        for value, rows in list(udi[high].groupby(values[high]))[:_MAX_LISTED_PER_RULE]:
            report.add(
                rule.name,
                "above maximum",
                rows,
                f"{value} {rule.unit} is above the plausible maximum {rule.maximum}",
            )


def _tally_labels(
    chunk: pd.DataFrame, tally: _Tally, report: ValidationReport, udi: pd.Series
) -> None:
    label = pd.to_numeric(chunk[LABEL_COLUMN], errors="coerce")
    modes = chunk[list(FAILURE_MODES)].apply(pd.to_numeric, errors="coerce")
    any_mode = modes.fillna(0).sum(axis=1) > 0
    report.label_counts.update(label.dropna().astype(int).tolist())

    no_mode = (label == 1) & ~any_mode
    tally.failure_without_mode += int(no_mode.sum())
    tally.first_failure_without_mode += udi[no_mode].head(3).astype(int).tolist()
    no_failure = (label == 0) & any_mode
    tally.mode_without_failure += int(no_failure.sum())
    tally.first_mode_without_failure += udi[no_failure].head(3).astype(int).tolist()


def _check_chunk(chunk: pd.DataFrame, report: ValidationReport, tally: _Tally) -> None:
    udi = pd.to_numeric(chunk[UDI_COLUMN], errors="coerce")
    for rule in AI4I_SCHEMA:
        _check_rule(chunk, rule, report, udi)
    clean = udi.dropna()
    tally.udis.append(clean.to_numpy(dtype=np.int64))
    _tally_labels(chunk, tally, report, udi)


def _finish(report: ValidationReport, tally: _Tally) -> None:
    if report.rows == 0:
        report.add_file_error("*", "the file has no data rows")
        return

    udis = np.concatenate(tally.udis) if tally.udis else np.empty(0, np.int64)
    report.udis = udis
    values, counts = np.unique(udis, return_counts=True)
    duplicated = values[counts > 1]
    report.add(
        UDI_COLUMN,
        "duplicate",
        duplicated,
        "UDI appears more than once; each reading needs its own id",
    )

    classes = sorted(report.label_counts)
    if len(classes) < 2:
        report.add_file_error(
            LABEL_COLUMN,
            f"only class {classes} present; training needs failures and non-failures",
        )

    if tally.failure_without_mode:
        report.warnings.append(
            f"{tally.failure_without_mode} failures carry no mode flag "
            f"(e.g. UDI {tally.first_failure_without_mode[:3]})"
        )
    if tally.mode_without_failure:
        report.warnings.append(
            f"{tally.mode_without_failure} rows flag a mode without `{LABEL_COLUMN}` "
            f"(e.g. UDI {tally.first_mode_without_failure[:3]})"
        )


def validate_local(data: LocalData, chunk_rows: int = 250_000) -> ValidationReport:
    """Validate a local copy chunk by chunk; memory holds one chunk plus UDIs."""
    report = ValidationReport(uri=data.uri)
    tally = _Tally()
    chunks: Iterator[pd.DataFrame] = iter_raw_chunks(data, chunk_rows)
    try:
        for chunk in chunks:
            if report.rows == 0 and not _check_missing_columns(report, chunk.columns):
                return report
            report.rows += len(chunk)
            _check_chunk(chunk, report, tally)
    except pd.errors.EmptyDataError:
        report.add_file_error("*", "the file is empty (no header, no rows)")
        return report
    _finish(report, tally)

    for warning in report.warnings:
        logger.warning("event=data_quirk uri=%s detail=%r", data.uri, warning)
    logger.info(
        "event=data_validated uri=%s rows=%d errors=%d warnings=%d",
        data.uri,
        report.rows,
        sum(report.error_counts.values()),
        len(report.warnings),
    )
    return report


def validate_data(uri: str, chunk_rows: int = 250_000) -> ValidationReport:
    """Validate the data at `uri` (local path or s3://) and return the report."""
    with materialize(uri) as data:
        return validate_local(data, chunk_rows)


def raise_for_report(report: ValidationReport) -> None:
    """Raise DataValidationError naming every finding when the report has errors."""
    if not report.ok:
        raise DataValidationError(
            f"data validation failed; fix these rows and retry:\n{report.summary()}",
            report,
        )
