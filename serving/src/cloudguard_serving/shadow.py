"""Shadow scoring: a share of live readings also scored by the challenger.

The caller is always answered by the served model; shadow work happens after
the answer, in its own thread, and only while the served model's batcher is
idle. Jobs wait in a bounded queue and are shed (and counted) when the queue
is full, when they grow stale under load, when no challenger is loaded, or at
shutdown. Both outputs go to the inference log as `kind=shadow` records, which
`summarise` turns into agreement, alarm rates and latency for the gate.
"""

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np
from cloudguard_model.storage import is_s3, read_bytes, s3_client

from cloudguard_serving.batching import BatchResult, MicroBatcher, scoring_executor
from cloudguard_serving.errors import ServingError
from cloudguard_serving.inference_log import InferenceLog, ShadowEntry
from cloudguard_serving.metrics import Metrics
from cloudguard_serving.reload import ModelWatcher
from cloudguard_serving.schemas import Reading
from cloudguard_serving.settings import Settings

logger = logging.getLogger(__name__)

STALE_AFTER_S: Final = 5.0
"""A shadow job older than this is shed: the comparison would be stale."""


@dataclass(frozen=True)
class _ShadowJob:
    request_id: str
    gateway: str
    received_at: float
    readings: list[Reading]
    types: list[str]
    numeric: np.ndarray
    champion: BatchResult
    queued_at: float


class ShadowScorer:
    """Samples readings, scores them with the challenger off the request path."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        watcher: ModelWatcher,
        batcher: MicroBatcher,
        log: InferenceLog,
        *,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.watcher = watcher
        self.batcher = batcher
        self.log = log
        self._random = random.Random(seed)  # noqa: S311 (sampling, not secrets)
        self._jobs: deque[_ShadowJob] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._executor = scoring_executor("cloudguard-shadow", settings.score_threads)
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def offer(
        self,
        request_id: str,
        gateway: str,
        received_at: float,
        readings: list[Reading],
        types: list[str],
        numeric: np.ndarray,
        champion: BatchResult,
    ) -> None:
        """Pick a share of a request's readings for shadow scoring (non-blocking)."""
        share = self.settings.shadow_share
        picked = [i for i in range(len(readings)) if self._random.random() < share]
        if not picked:
            return
        if self._closing or self.watcher.current is None:
            self.metrics.shadow_shed.inc(len(picked))
            return
        if self._queued + len(picked) > self.settings.shadow_queue_limit:
            self.metrics.shadow_shed.inc(len(picked))
            return
        rows = np.asarray(picked)
        self._jobs.append(
            _ShadowJob(
                request_id=request_id,
                gateway=gateway,
                received_at=received_at,
                readings=[readings[i] for i in picked],
                types=[types[i] for i in picked],
                numeric=numeric[rows],
                champion=BatchResult(
                    model=champion.model,
                    probability=champion.probability[rows],
                    failure=champion.failure[rows],
                    mode_probability=champion.mode_probability[rows],
                    features=champion.features[rows],
                    contributions=None,
                    score_seconds=champion.score_seconds,
                ),
                queued_at=time.monotonic(),
            )
        )
        self._queued += len(picked)
        self._wake.set()

    async def close(self) -> None:
        """Shed what is queued (the answers went out already) and stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._closing:
                self._shed_all()
                return
            if not self._jobs:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.batcher.busy:
                # The served model has work: yield the CPU, shed what went stale.
                self._shed_stale()
                await asyncio.sleep(0.002)
                continue
            jobs = self._take()
            try:
                await loop.run_in_executor(self._executor, self._score, jobs)
            except Exception:
                self.metrics.shadow_shed.inc(sum(len(job.types) for job in jobs))
                logger.exception("event=shadow_failed jobs=%d", len(jobs))

    def _take(self) -> list[_ShadowJob]:
        jobs: list[_ShadowJob] = []
        readings = 0
        while self._jobs and readings < self.settings.batch_max_readings:
            job = self._jobs.popleft()
            jobs.append(job)
            readings += len(job.types)
        self._queued -= readings
        return jobs

    def _shed_stale(self) -> None:
        now = time.monotonic()
        while self._jobs and now - self._jobs[0].queued_at > STALE_AFTER_S:
            job = self._jobs.popleft()
            self._queued -= len(job.types)
            self.metrics.shadow_shed.inc(len(job.types))

    def _shed_all(self) -> None:
        while self._jobs:
            job = self._jobs.popleft()
            self.metrics.shadow_shed.inc(len(job.types))
        self._queued = 0

    def _score(self, jobs: list[_ShadowJob]) -> None:
        challenger = self.watcher.current
        if challenger is None:
            self.metrics.shadow_shed.inc(sum(len(job.types) for job in jobs))
            return
        types = [t for job in jobs for t in job.types]
        numeric = np.concatenate([job.numeric for job in jobs])
        started = time.perf_counter()
        scores = challenger.scorer.score(types, numeric, explain=False)
        seconds = time.perf_counter() - started
        probability = np.asarray(scores.probability, dtype=np.float64)
        failure = np.asarray(scores.failure, dtype=bool)

        start = 0
        for job in jobs:
            stop = start + len(job.types)
            agree = int(np.sum(failure[start:stop] == job.champion.failure))
            self.metrics.shadow_scored.inc(len(job.types))
            self.metrics.shadow_agreement.inc(agree)
            self.log.put(
                ShadowEntry(
                    request_id=job.request_id,
                    gateway=job.gateway,
                    received_at=job.received_at,
                    machine_ids=[r.machine_id for r in job.readings],
                    champion_version=job.champion.model.version,
                    challenger_version=challenger.version,
                    champion_probability=job.champion.probability,
                    champion_failure=job.champion.failure,
                    challenger_probability=probability[start:stop],
                    challenger_failure=failure[start:stop],
                    champion_score_ms=1000.0 * job.champion.score_seconds,
                    challenger_score_ms=1000.0 * seconds,
                )
            )
            start = stop


def summarise(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Agreement, alarm rates and latency of `kind=shadow` inference records.

    Grouped by (champion version, challenger version) pair, newest pair last.
    """
    pairs: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for record in records:
        if record.get("kind") != "shadow":
            continue
        pair = (str(record["model_version"]), str(record["challenger_version"]))
        pairs.setdefault(pair, []).append(record)

    summaries = []
    for (champion, challenger), rows in pairs.items():
        champ = np.array([bool(r["champion_failure"]) for r in rows])
        chall = np.array([bool(r["challenger_failure"]) for r in rows])
        champ_ms = np.array([float(r["champion_score_ms"]) for r in rows])
        chall_ms = np.array([float(r["challenger_score_ms"]) for r in rows])
        delta = np.abs(
            np.array([float(r["challenger_probability"]) for r in rows])
            - np.array([float(r["champion_probability"]) for r in rows])
        )
        summaries.append(
            {
                "champion_version": champion,
                "challenger_version": challenger,
                "readings": len(rows),
                "agreement": round(float(np.mean(champ == chall)), 6),
                "champion_alarm_rate": round(float(np.mean(champ)), 6),
                "challenger_alarm_rate": round(float(np.mean(chall)), 6),
                "mean_abs_probability_delta": round(float(np.mean(delta)), 6),
                "champion_score_ms_p50": round(float(np.percentile(champ_ms, 50)), 4),
                "champion_score_ms_p99": round(float(np.percentile(champ_ms, 99)), 4),
                "challenger_score_ms_p50": round(float(np.percentile(chall_ms, 50)), 4),
                "challenger_score_ms_p99": round(float(np.percentile(chall_ms, 99)), 4),
            }
        )
    return {"pairs": summaries, "readings": sum(s["readings"] for s in summaries)}


def read_log_records(uri: str) -> Iterator[dict[str, Any]]:
    """Records of every `.jsonl` object under an inference-log URI.

    `uri` is `s3://bucket/prefix` (listing through the shared S3 client) or a
    local directory (e.g. a spool or a downloaded copy).
    """
    decoder = msgspec.json.Decoder(dict[str, Any])
    if not is_s3(uri):
        root = Path(uri)
        if not root.is_dir():
            raise ServingError(f"{uri}: no such directory of inference-log files")
        for path in sorted(root.rglob("*.jsonl")):
            yield from _lines(decoder, path.read_bytes())
        return
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    pages = (
        s3_client()
        .get_paginator("list_objects_v2")
        .paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/" if prefix else "")
    )
    for page in pages:
        for item in page.get("Contents", []):
            if item["Key"].endswith(".jsonl"):
                yield from _lines(decoder, read_bytes(f"s3://{bucket}/{item['Key']}"))


def _lines(
    decoder: msgspec.json.Decoder[dict[str, Any]], body: bytes
) -> Iterator[dict[str, Any]]:
    for line in body.splitlines():
        if line.strip():
            yield decoder.decode(line)
