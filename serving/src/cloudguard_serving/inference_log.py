"""Inference log: every prediction to S3 as JSON Lines, never on the request path.

Requests hand over one small entry each (`put` is a deque append). A flusher
thread expands entries into records, groups them by date and model version,
and writes `s3://<bucket>/<prefix>/date=YYYY-MM-DD/model_version=V/part-*.jsonl`.
When S3 refuses, the batch goes to a local spool directory under the same key
and is re-sent on later flushes. Records are dropped only when the in-memory
queue is full or the spool cannot be written, and every drop is counted.
"""

import logging
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from cloudguard_model.features import FAILURE_MODES
from cloudguard_model.storage import StorageError, write_bytes

from cloudguard_serving.metrics import Metrics
from cloudguard_serving.schemas import Reading
from cloudguard_serving.settings import Settings

logger = logging.getLogger(__name__)

Writer = Callable[[str, bytes], None]
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class PredictionEntry:
    """One answered request: its readings and the served model's scores."""

    request_id: str
    gateway: str
    model_version: str
    received_at: float
    readings: list[Reading]
    probability: np.ndarray
    failure: np.ndarray
    mode_probability: np.ndarray

    def __len__(self) -> int:
        return len(self.readings)

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        logged_at = datetime.fromtimestamp(self.received_at, UTC).isoformat()
        for i, reading in enumerate(self.readings):
            modes = self.mode_probability[i]
            yield (
                self.model_version,
                {
                    "kind": "prediction",
                    "request_id": self.request_id,
                    "gateway": self.gateway,
                    "model_version": self.model_version,
                    "received_at": logged_at,
                    "reading_index": i,
                    "inputs": reading,
                    "failure_probability": float(self.probability[i]),
                    "failure": bool(self.failure[i]),
                    "failure_mode": (
                        FAILURE_MODES[int(np.argmax(modes))]
                        if self.failure[i]
                        else "none"
                    ),
                    "mode_probabilities": {
                        mode: float(p)
                        for mode, p in zip(FAILURE_MODES, modes, strict=True)
                    },
                },
            )


@dataclass(frozen=True)
class ShadowEntry:
    """Readings scored by both the served and the shadow model."""

    request_id: str
    gateway: str
    received_at: float
    machine_ids: list[str | None]
    champion_version: str
    challenger_version: str
    champion_probability: np.ndarray
    champion_failure: np.ndarray
    challenger_probability: np.ndarray
    challenger_failure: np.ndarray
    champion_score_ms: float
    challenger_score_ms: float

    def __len__(self) -> int:
        return len(self.machine_ids)

    def records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        logged_at = datetime.fromtimestamp(self.received_at, UTC).isoformat()
        for i, machine_id in enumerate(self.machine_ids):
            yield (
                self.champion_version,
                {
                    "kind": "shadow",
                    "request_id": self.request_id,
                    "gateway": self.gateway,
                    "machine_id": machine_id,
                    "received_at": logged_at,
                    "model_version": self.champion_version,
                    "challenger_version": self.challenger_version,
                    "champion_probability": float(self.champion_probability[i]),
                    "champion_failure": bool(self.champion_failure[i]),
                    "challenger_probability": float(self.challenger_probability[i]),
                    "challenger_failure": bool(self.challenger_failure[i]),
                    "champion_score_ms": round(self.champion_score_ms, 4),
                    "challenger_score_ms": round(self.challenger_score_ms, 4),
                },
            )


Entry = PredictionEntry | ShadowEntry


class InferenceLog:
    """Buffered, spooling uploader of inference records."""

    def __init__(
        self, settings: Settings, metrics: Metrics, *, writer: Writer | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._write = writer or write_bytes
        self._entries: deque[Entry] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.spool = Path(settings.spool_dir)
        self.base = (
            f"s3://{settings.inference_bucket}/{settings.inference_prefix}"
            if settings.inference_bucket
            else f"{settings.inference_dir}/{settings.inference_prefix}"
        )

    @property
    def queued(self) -> int:
        return self._queued

    def put(self, entry: Entry) -> None:
        """Hand over an entry; never blocks, counts a drop when the queue is full."""
        size = len(entry)
        with self._lock:
            if self._queued + size > self.settings.log_queue_limit:
                self.metrics.log_dropped.inc(size)
                logger.warning("event=log_dropped records=%d reason=queue_full", size)
                return
            self._entries.append(entry)
            self._queued += size
        self.metrics.log_queue.set(self._queued)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="cloudguard-inference-log", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the flusher and flush everything left (to S3 or the spool)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.log_flush_interval_s):
            try:
                self.flush()
            except Exception:  # the flusher must outlive any single failure
                logger.exception("event=log_flush_crash")

    def flush(self) -> None:
        """Upload queued records, then retry spooled batches while S3 answers."""
        with self._lock:
            entries = list(self._entries)
            self._entries.clear()
            self._queued = 0
        self.metrics.log_queue.set(0)

        groups: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        for entry in entries:
            day = datetime.fromtimestamp(entry.received_at, UTC).date().isoformat()
            for version, record in entry.records():
                groups[(day, version)].append(_encoder.encode(record))

        s3_ok = True
        for (day, version), lines in groups.items():
            for start in range(0, len(lines), self.settings.log_batch_records):
                chunk = lines[start : start + self.settings.log_batch_records]
                key = self._key(day, version)
                body = b"\n".join(chunk) + b"\n"
                if s3_ok:
                    s3_ok = self._upload(key, body, len(chunk))
                if not s3_ok:
                    self._spool(key, body, len(chunk))
        if s3_ok:
            self._resend_spool()
        self._count_spool()

    def _key(self, day: str, version: str) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return (
            f"date={day}/model_version={version}/"
            f"part-{stamp}-{uuid.uuid4().hex[:12]}.jsonl"
        )

    def _upload(self, key: str, body: bytes, records: int) -> bool:
        try:
            self._write(f"{self.base}/{key}", body)
        except (StorageError, OSError) as error:
            logger.warning("event=log_upload_failed key=%s error=%s", key, error)
            return False
        self.metrics.log_uploaded.inc(records)
        return True

    def _spool(self, key: str, body: bytes, records: int) -> None:
        path = self.spool / key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(body)
            temporary.replace(path)
        except OSError as error:
            self.metrics.log_dropped.inc(records)
            logger.error(
                "event=log_dropped records=%d reason=spool_failed error=%s",
                records,
                error,
            )
            return
        self.metrics.log_spooled.inc(records)
        logger.info("event=log_spooled key=%s records=%d", key, records)

    def _resend_spool(self) -> None:
        if not self.spool.is_dir():
            return
        for path in sorted(
            self.spool.rglob("*.jsonl"), key=lambda p: p.stat().st_mtime
        ):
            key = path.relative_to(self.spool).as_posix()
            body = path.read_bytes()
            if not self._upload(key, body, body.count(b"\n")):
                return
            path.unlink()
            logger.info("event=log_resent key=%s", key)

    def _count_spool(self) -> None:
        files = (
            sum(1 for _ in self.spool.rglob("*.jsonl")) if self.spool.is_dir() else 0
        )
        self.metrics.log_spool_files.set(files)
