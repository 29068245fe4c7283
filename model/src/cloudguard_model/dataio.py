"""Read AI4I-shaped data by URI, whole or in bounded chunks.

An S3 object is streamed once to a local temporary file (hashing it on the
way), so later passes read the disk, not the network, and memory holds one
chunk at a time. CSV and Parquet are told apart by the file suffix.
"""

import hashlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from cloudguard_model import storage
from cloudguard_model.features import (
    FAILURE_MODES,
    LABEL_COLUMN,
    NUMERIC_COLUMNS,
    TYPE_COLUMN,
)

logger = logging.getLogger(__name__)

Format = Literal["csv", "parquet"]
UDI_COLUMN = "UDI"
TRAINING_COLUMNS = (
    UDI_COLUMN,
    TYPE_COLUMN,
    *NUMERIC_COLUMNS,
    LABEL_COLUMN,
    *FAILURE_MODES,
)
"""Columns the trainer reads; any other column in the file is ignored."""

_COPY_CHUNK = 1 << 20
_CSV_BLOCK_BYTES = 16 << 20


@dataclass(frozen=True)
class LocalData:
    """A data set on local disk, with the identity of the bytes it came from."""

    uri: str
    path: Path
    format: Format
    sha256: str


_TEXT_PROBE_BYTES: Final = 64 * 1024


def detect_format(uri: str) -> Format:
    name = uri.lower().rstrip("/")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "csv"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_text(path: Path, uri: str) -> None:
    """Refuse a CSV that is not UTF-8 text before a parser trips over it."""
    with path.open("rb") as handle:
        head = handle.read(_TEXT_PROBE_BYTES)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the probe's end is not an error.
        if error.start < len(head) - 3:
            raise storage.StorageError(
                f"{uri}: byte {error.start} is not UTF-8 text; expected a CSV "
                "(or a .parquet file)"
            ) from error


@contextmanager
def materialize(uri: str) -> Iterator[LocalData]:
    """Yield the data at `uri` as a local file; S3 objects are copied once."""
    data_format = detect_format(uri)
    if not storage.is_s3(uri):
        path = Path(uri)
        if not path.is_file():
            raise storage.StorageError(f"{uri}: no such file")
        if data_format == "csv":
            _check_text(path, uri)
        yield LocalData(uri, path, data_format, _sha256_file(path))
        return

    with tempfile.TemporaryDirectory(prefix="cloudguard-data-") as directory:
        path = Path(directory) / f"data.{data_format}"
        digest = hashlib.sha256()
        with storage.open_for_read(uri) as source, path.open("wb") as target:
            while chunk := source.read(_COPY_CHUNK):
                digest.update(chunk)
                target.write(chunk)
        logger.info("event=data_copied uri=%s bytes=%d", uri, path.stat().st_size)
        if data_format == "csv":
            _check_text(path, uri)
        yield LocalData(uri, path, data_format, digest.hexdigest())


def _csv_types(columns: Sequence[str]) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {UDI_COLUMN: pa.int64(), TYPE_COLUMN: pa.string()}
    types.update({name: pa.float64() for name in NUMERIC_COLUMNS})
    types.update({name: pa.float64() for name in (LABEL_COLUMN, *FAILURE_MODES)})
    return {name: kind for name, kind in types.items() if name in columns}


def iter_typed_chunks(
    data: LocalData, columns: Sequence[str], chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of `columns` with numeric dtypes, at most `chunk_rows` each.

    Meant for data that already passed validation: a bad value raises.
    """
    for batch in _iter_batches(data, columns, chunk_rows):
        for start in range(0, batch.num_rows, chunk_rows):
            yield batch.slice(start, chunk_rows).to_pandas()


def _iter_batches(
    data: LocalData, columns: Sequence[str], chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    if data.format == "parquet":
        parquet = pq.ParquetFile(data.path)
        yield from parquet.iter_batches(batch_size=chunk_rows, columns=list(columns))
        return
    reader = pa_csv.open_csv(
        data.path,
        read_options=pa_csv.ReadOptions(block_size=_CSV_BLOCK_BYTES, use_threads=True),
        convert_options=pa_csv.ConvertOptions(
            include_columns=list(columns), column_types=_csv_types(columns)
        ),
    )
    with reader:
        yield from reader


def iter_raw_chunks(data: LocalData, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield DataFrames as the file holds them, with no type coercion.

    Validation reads this way so that a bad cell becomes a finding with its
    row, not a parser crash.
    """
    if data.format == "parquet":
        parquet = pq.ParquetFile(data.path)
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(data.path, chunksize=chunk_rows, low_memory=False)


def read_columns(data: LocalData, columns: Sequence[str]) -> pd.DataFrame:
    """Read whole columns into one DataFrame (small data only)."""
    frames = list(iter_typed_chunks(data, columns, 1_000_000))
    if not frames:
        return pd.DataFrame({name: pd.Series(dtype=np.float64) for name in columns})
    return pd.concat(frames, ignore_index=True)


def read_frame(uri: str) -> pd.DataFrame:
    """Read a whole (small) CSV or Parquet file by URI, every column kept."""
    with materialize(uri) as data:
        if data.format == "parquet":
            return pq.read_table(data.path).to_pandas()
        return pd.read_csv(data.path)
