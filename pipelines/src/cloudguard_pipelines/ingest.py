"""The ingest step: take the newest raw data, snapshot it under its hash.

A snapshot is immutable and content-addressed (`<prefix><sha256>.csv`), so a
rerun of the same data writes nothing new and every later step can name the
exact bytes it used. The frozen evaluation set is created from the first
snapshot that ingest sees and never rewritten afterwards.
"""

import csv
import hashlib
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cloudguard_model import storage

from cloudguard_pipelines.errors import IngestError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What ingest hands to the later steps (the step's JSON result)."""

    source_uri: str
    """The object actually read (the newest one when a prefix was given)."""
    snapshot_uri: str
    sha256: str
    rows: int
    created: bool
    """False when a snapshot with the same bytes already existed."""
    evaluation_uri: str
    evaluation_sha256: str
    evaluation_created: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def newest_object(source: str) -> str:
    """Resolve a source to one object: itself, or the newest under a prefix.

    A source ending in '/' is a prefix (S3) or directory (local); the newest
    object by modification time is taken, ties broken by the larger key so the
    choice is stable.
    """
    if not source.endswith("/"):
        return source
    if storage.is_s3(source):
        return _newest_s3(source)
    directory = Path(source)
    files = (
        [path for path in directory.iterdir() if path.is_file()]
        if directory.is_dir()
        else []
    )
    if not files:
        raise IngestError(
            f"{source}: no files to ingest; upload the raw CSV there first"
        )
    newest = max(files, key=lambda path: (path.stat().st_mtime, path.name))
    return str(newest)


def _newest_s3(prefix_uri: str) -> str:
    bucket, _, prefix = prefix_uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise IngestError(f"{prefix_uri!r} is not an s3://bucket/prefix/ URI")
    best: tuple[Any, str] | None = None
    try:
        pages = (
            storage.s3_client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=bucket, Prefix=prefix)
        )
        for page in pages:
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue
                candidate = (item["LastModified"], item["Key"])
                if best is None or candidate > best:
                    best = candidate
    except Exception as error:
        raise IngestError(f"cannot list {prefix_uri}: {error}") from error
    if best is None:
        raise IngestError(
            f"{prefix_uri}: no objects to ingest; upload the raw CSV there first"
        )
    return f"s3://{bucket}/{best[1]}"


def _count_rows(data: bytes, uri: str) -> int:
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8")))
        header = next(reader, None)
    except UnicodeDecodeError as error:
        raise IngestError(
            f"{uri}: not UTF-8 text ({error}); expected the AI4I CSV"
        ) from error
    if not header:
        raise IngestError(f"{uri}: empty file; expected a CSV with a header line")
    return sum(1 for row in reader if row)


def ingest(
    source: str, snapshot_prefix: str, evaluation_uri: str | None = None
) -> IngestResult:
    """Snapshot the newest raw data and make sure the frozen evaluation set exists.

    Args:
        source: an object URI or a prefix ending in '/' (S3 or local).
        snapshot_prefix: where snapshots live; the snapshot is `<prefix><sha256>.csv`.
        evaluation_uri: the frozen evaluation set; created from this snapshot only
            if it does not exist yet. Defaults to `<prefix>evaluation.csv`.
    """
    object_uri = newest_object(source)
    prefix = snapshot_prefix if snapshot_prefix.endswith("/") else snapshot_prefix + "/"
    try:
        data = storage.read_bytes(object_uri)
    except storage.StorageError as error:
        raise IngestError(f"cannot read the raw data: {error}") from error
    rows = _count_rows(data, object_uri)

    # Content-addressed snapshot: same bytes, same key, nothing rewritten.
    digest = hashlib.sha256(data).hexdigest()
    snapshot_uri = f"{prefix}{digest}.csv"
    created = not storage.exists(snapshot_uri)
    if created:
        storage.write_bytes(snapshot_uri, data)
    logger.info(
        "event=snapshot source=%s snapshot=%s sha256=%s rows=%d created=%s",
        object_uri,
        snapshot_uri,
        digest,
        rows,
        created,
    )

    evaluation_uri = evaluation_uri or f"{prefix}evaluation.csv"
    evaluation, evaluation_created = _ensure_evaluation_set(
        snapshot_uri, evaluation_uri
    )
    return IngestResult(
        source_uri=object_uri,
        snapshot_uri=snapshot_uri,
        sha256=digest,
        rows=rows,
        created=created,
        evaluation_uri=evaluation_uri,
        evaluation_sha256=evaluation.sha256,
        evaluation_created=evaluation_created,
    )


def _ensure_evaluation_set(snapshot_uri: str, evaluation_uri: str) -> tuple[Any, bool]:
    from cloudguard_model import evalset

    if storage.exists(evaluation_uri):
        frozen = evalset.load_evaluation_set(evaluation_uri)
        logger.info(
            "event=evaluation_set uri=%s sha256=%s created=false",
            evaluation_uri,
            frozen.sha256,
        )
        return frozen, False
    frozen = evalset.freeze_evaluation_set(snapshot_uri, evaluation_uri)
    logger.info(
        "event=evaluation_set uri=%s sha256=%s created=true",
        evaluation_uri,
        frozen.sha256,
    )
    return frozen, True
