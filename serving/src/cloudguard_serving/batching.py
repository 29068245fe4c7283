"""Adaptive micro-batching: many concurrent requests, one model call.

Requests park a job and await its future. One worker task takes every job
that queued while the previous model call ran (so batches grow with load and
stay at one request when idle), optionally waits `batch_max_wait_ms` for
more once concurrency has been seen, and runs the model in a dedicated
thread so the event loop keeps reading requests meanwhile. Jobs are grouped
by the `LoadedModel` they started with, so a hot swap never moves a request
to another version mid-flight.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from cloudguard_model.features import FEATURE_NAMES, build_features

from cloudguard_serving.errors import OverloadedError
from cloudguard_serving.metrics import Metrics
from cloudguard_serving.reload import LoadedModel
from cloudguard_serving.settings import Settings

logger = logging.getLogger(__name__)


def _pin_threads(threads: int) -> None:
    import xgboost

    xgboost.set_config(nthread=threads)


def scoring_executor(name: str, threads: int) -> ThreadPoolExecutor:
    """One worker thread whose XGBoost calls use `threads` OpenMP threads.

    XGBoost's global configuration is per thread, so it is set in the worker.
    """
    return ThreadPoolExecutor(
        1, thread_name_prefix=name, initializer=_pin_threads, initargs=(threads,)
    )


@dataclass(frozen=True)
class BatchResult:
    """Scores of one job's readings (views into the batch arrays)."""

    model: LoadedModel
    probability: np.ndarray
    failure: np.ndarray
    mode_probability: np.ndarray
    features: np.ndarray
    """Feature matrix in cloudguard_model.features.FEATURE_NAMES order."""
    contributions: np.ndarray | None
    """Per-feature contributions in the scorer's `feature_names` order + bias."""
    score_seconds: float
    """Duration of the model call this job was part of."""


@dataclass
class _Job:
    model: LoadedModel
    types: list[str]
    numeric: np.ndarray
    explain: bool
    future: asyncio.Future[BatchResult]
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """Collects jobs from the event loop and scores them in batches."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._jobs: deque[_Job] = deque()
        self._queued_readings = 0
        self._wake = asyncio.Event()
        self._executor = scoring_executor("cloudguard-score", settings.score_threads)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._busy = False
        self._last_jobs = 1
        self.observers: list[Callable[[np.ndarray], None]] = []
        """Called with each batch's feature matrix (drift), in the score thread."""

    @property
    def queued_readings(self) -> int:
        return self._queued_readings

    @property
    def busy(self) -> bool:
        """True while a model call runs or jobs wait: shadow work holds back."""
        return self._busy or bool(self._jobs)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def score(
        self,
        model: LoadedModel,
        types: list[str],
        numeric: np.ndarray,
        *,
        explain: bool,
    ) -> BatchResult:
        """Queue readings for `model` and wait for their scores."""
        if self._closing:
            raise OverloadedError("the service is shutting down; retry elsewhere")
        if self._queued_readings + len(types) > self.settings.batch_queue_limit:
            raise OverloadedError(
                f"{self._queued_readings} readings already queued (limit "
                f"{self.settings.batch_queue_limit}); retry after a short pause"
            )
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(model, types, numeric, explain, future))
        self._queued_readings += len(types)
        self.metrics.batch_queue.set(self._queued_readings)
        self._wake.set()
        return await future

    async def close(self) -> None:
        """Refuse new jobs, finish every queued one, then stop the worker."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self.settings.batch_max_wait_ms / 1000.0
            if (
                wait > 0
                and self._last_jobs > 1
                and self._queued_readings < self.settings.batch_max_readings
            ):
                await asyncio.sleep(wait)
            batch = self._take()
            self._last_jobs = len(batch)
            self._busy = True
            try:
                await self._score_batch(loop, batch)
            finally:
                self._busy = False

    def _take(self) -> list[_Job]:
        """Jobs for one model call: same model, up to the reading cap."""
        first = self._jobs.popleft()
        batch = [first]
        readings = len(first.types)
        while self._jobs:
            job = self._jobs[0]
            if job.model is not first.model:
                break
            if readings + len(job.types) > self.settings.batch_max_readings:
                break
            batch.append(self._jobs.popleft())
            readings += len(job.types)
        self._queued_readings -= readings
        self.metrics.batch_queue.set(self._queued_readings)
        return batch

    async def _score_batch(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Job]
    ) -> None:
        live = [job for job in batch if not job.future.cancelled()]
        if not live:
            return
        try:
            results = await loop.run_in_executor(self._executor, self._score_sync, live)
        except Exception as error:
            logger.exception(
                "event=batch_failed model_version=%s jobs=%d",
                live[0].model.version,
                len(live),
            )
            for job in live:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        for job, result in zip(live, results, strict=True):
            if not job.future.done():
                job.future.set_result(result)

    def _score_sync(self, jobs: list[_Job]) -> list[BatchResult]:
        """Runs in the score thread: one model call per explain group."""
        model = jobs[0].model
        results: list[BatchResult | None] = [None] * len(jobs)
        for explain in (False, True):
            group = [i for i, job in enumerate(jobs) if job.explain is explain]
            if not group:
                continue
            types: list[str] = []
            for i in group:
                types.extend(jobs[i].types)
            numeric = np.concatenate([jobs[i].numeric for i in group])

            started = time.perf_counter()
            scores = model.scorer.score(types, numeric, explain=explain)
            seconds = time.perf_counter() - started
            features = build_features(types, numeric, model.scorer.type_codes)
            self.metrics.batch_size.observe(len(types))
            for observe in self.observers:
                observe(features)

            probability = np.asarray(scores.probability, dtype=np.float64)
            failure = np.asarray(scores.failure, dtype=bool)
            modes = np.asarray(scores.mode_probability, dtype=np.float64)
            contributions = (
                np.asarray(scores.contributions, dtype=np.float64)
                if explain and scores.contributions is not None
                else None
            )
            start = 0
            for i in group:
                stop = start + len(jobs[i].types)
                results[i] = BatchResult(
                    model=model,
                    probability=probability[start:stop],
                    failure=failure[start:stop],
                    mode_probability=modes[start:stop],
                    features=features[start:stop],
                    contributions=(
                        contributions[start:stop] if contributions is not None else None
                    ),
                    score_seconds=seconds,
                )
                start = stop
        return [result for result in results if result is not None]


FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
