"""The service object: wires watcher, batcher, log, drift and shadow together.

The web layer (`app.py`) only parses, authenticates and formats; everything
with state or a background task lives here, started and stopped by the app's
lifespan so that shutdown drains in a fixed order: refuse new work, finish
queued scoring, stop shadow work, flush the inference log.
"""

import asyncio
import contextlib
import logging
import time
from typing import Any

from cloudguard_serving.auth import KeyRing
from cloudguard_serving.batching import FEATURE_INDEX, MicroBatcher
from cloudguard_serving.drift import DriftMonitor
from cloudguard_serving.errors import ModelUnavailableError
from cloudguard_serving.explain import top_factors
from cloudguard_serving.inference_log import InferenceLog, PredictionEntry
from cloudguard_serving.metrics import Metrics
from cloudguard_serving.reload import (
    LoadFn,
    ModelWatcher,
    ResolveFn,
    configure_registry_timeouts,
)
from cloudguard_serving.schemas import (
    MODE_NAMES,
    Prediction,
    PredictRequest,
    PredictResponse,
    to_arrays,
)
from cloudguard_serving.settings import Settings
from cloudguard_serving.shadow import ShadowScorer

logger = logging.getLogger(__name__)

NO_MODE = "none"
"""`failure_mode` when the reading is not flagged (as the pyfunc's predict)."""


class Service:
    """State and background work of one serving instance."""

    def __init__(
        self,
        settings: Settings,
        *,
        keyring: KeyRing | None = None,
        resolve: ResolveFn | None = None,
        load: LoadFn | None = None,
    ) -> None:
        configure_registry_timeouts(settings)
        self.settings = settings
        self.metrics = Metrics()
        self.keyring = (
            keyring if keyring is not None else KeyRing.from_settings(settings)
        )
        self.watcher = ModelWatcher(
            settings, settings.model_alias, self.metrics, resolve=resolve, load=load
        )
        self.shadow_watcher: ModelWatcher | None = None
        if settings.shadow_share > 0:
            self.shadow_watcher = ModelWatcher(
                settings,
                settings.shadow_alias,
                self.metrics,
                resolve=resolve,
                load=load,
            )
        self.drift = DriftMonitor(settings.drift_window)
        self.log = InferenceLog(settings, self.metrics)
        self.batcher: MicroBatcher | None = None
        self.shadow: ShadowScorer | None = None
        self.accepting = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ready(self) -> bool:
        return self.accepting and self.watcher.current is not None

    async def start(self) -> None:
        """Start background work; the first model load happens in the watcher."""
        self.batcher = MicroBatcher(self.settings, self.metrics)
        self.batcher.observers.append(self.drift.observe)
        self.batcher.start()
        if self.settings.inference_log:
            self.log.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.watcher.run()))
        if self.shadow_watcher is not None:
            self.shadow = ShadowScorer(
                self.settings, self.metrics, self.shadow_watcher, self.batcher, self.log
            )
            self.shadow.start()
            self._tasks.append(loop.create_task(self.shadow_watcher.run()))
        self.accepting = True
        self.metrics.ready.set(1)
        logger.info(
            "event=service_started alias=%s shadow_share=%s",
            self.settings.model_alias,
            self.settings.shadow_share,
        )

    async def stop(self) -> None:
        """Graceful shutdown: not ready, drain scoring, shed shadow, flush log."""
        self.accepting = False
        self.metrics.ready.set(0)
        started = time.perf_counter()
        if self.batcher is not None:
            await self.batcher.close()
        if self.shadow is not None:
            await self.shadow.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.settings.inference_log:
            await asyncio.to_thread(self.log.close)
        logger.info(
            "event=service_stopped seconds=%.2f log_queue=%d",
            time.perf_counter() - started,
            self.log.queued,
        )

    async def predict(
        self, body: PredictRequest, request_id: str, gateway: str
    ) -> PredictResponse:
        """Score a validated request on the model current at its arrival."""
        model = self.watcher.current
        if model is None or self.batcher is None:
            raise ModelUnavailableError(
                "no model version is loaded yet; see GET /health/ready for why"
            )
        received_at = time.time()
        types, numeric = to_arrays(body.readings)
        result = await self.batcher.score(model, types, numeric, explain=body.explain)

        scorer = model.scorer
        names = list(scorer.feature_names)
        bands = getattr(scorer, "safe_bands", None)
        predictions = []
        failures = 0
        for i, reading in enumerate(body.readings):
            modes = result.mode_probability[i]
            failed = bool(result.failure[i])
            failures += failed
            factors = None
            if result.contributions is not None:
                factors = top_factors(
                    names,
                    _feature_values(names, result.features[i]),
                    result.contributions[i],
                    self.settings.explain_top,
                    bands,
                )
            predictions.append(
                Prediction(
                    failure_probability=round(float(result.probability[i]), 6),
                    failure=failed,
                    failure_mode=MODE_NAMES[int(modes.argmax())] if failed else NO_MODE,
                    mode_probabilities={
                        mode: round(float(p), 6)
                        for mode, p in zip(MODE_NAMES, modes, strict=True)
                    },
                    top_factors=factors,
                    machine_id=reading.machine_id,
                    timestamp=reading.timestamp,
                )
            )
        self._count(model.version, failures, len(predictions))

        if self.settings.inference_log:
            self.log.put(
                PredictionEntry(
                    request_id=request_id,
                    gateway=gateway,
                    model_version=model.version,
                    received_at=received_at,
                    readings=body.readings,
                    probability=result.probability,
                    failure=result.failure,
                    mode_probability=result.mode_probability,
                )
            )
        if self.shadow is not None:
            self.shadow.offer(
                request_id, gateway, received_at, body.readings, types, numeric, result
            )
        return PredictResponse(
            request_id=request_id,
            model_version=model.version,
            threshold=float(scorer.threshold),
            predictions=predictions,
        )

    def _count(self, version: str, failures: int, total: int) -> None:
        if failures:
            self.metrics.predictions.labels("failure", version).inc(failures)
        if total - failures:
            self.metrics.predictions.labels("no_failure", version).inc(total - failures)

    def drift_report(self) -> dict[str, float]:
        model = self.watcher.current
        if model is None:
            return {}
        report = self.drift.report(model.scorer.reference)
        for feature, value in report.items():
            self.metrics.drift.labels(feature).set(value)
        return report

    def readiness(self) -> dict[str, Any]:
        """Readiness plus the details an on-call engineer needs."""
        details: dict[str, Any] = {
            "ready": self.ready,
            "accepting": self.accepting,
            "alias": self.settings.model_alias,
            "model": _watch_details(self.watcher),
            "inference_log": {
                "enabled": self.settings.inference_log,
                "destination": self.log.base,
                "queued_records": self.log.queued,
            },
        }
        if self.shadow_watcher is not None:
            details["shadow"] = _watch_details(self.shadow_watcher)
        return details

    def refresh_gauges(self) -> None:
        """Update gauges that are computed, not counted (called per scrape)."""
        self.metrics.log_queue.set(self.log.queued)
        self.drift_report()


def _feature_values(names: list[str], features: Any) -> Any:
    if len(names) == len(FEATURE_INDEX) and all(
        FEATURE_INDEX.get(name) == i for i, name in enumerate(names)
    ):
        return features
    return [
        features[FEATURE_INDEX[name]] if name in FEATURE_INDEX else float("nan")
        for name in names
    ]


def _watch_details(watcher: ModelWatcher) -> dict[str, Any]:
    current = watcher.current
    status = watcher.status
    return {
        "alias": watcher.alias,
        "version": current.version if current else None,
        "loaded_at": current.loaded_at if current else None,
        "registry_ok": status.registry_ok,
        "last_check_at": status.last_check_at,
        "last_success_at": status.last_success_at,
        "last_error": status.last_error,
        "consecutive_failures": status.consecutive_failures,
        "serving_last_good": current is not None and status.last_error is not None,
    }
