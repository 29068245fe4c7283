"""Follow a registry alias and hot-swap the served model without a dropped request.

A `ModelWatcher` polls the alias off the request path. When it points at a new
version, the version is loaded by number (not by alias, so the alias may move
again meanwhile), warmed and checked on canned readings, then swapped in with
one reference assignment. Requests hold the `LoadedModel` they started with,
so in-flight work finishes on it. Any failure keeps the last good model, is
reported in readiness details and metrics, and is retried with backoff.
"""

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from cloudguard_model.contract import Scorer
from cloudguard_model.features import FAILURE_MODES

from cloudguard_serving.errors import ModelLoadError
from cloudguard_serving.metrics import Metrics
from cloudguard_serving.settings import Settings

logger = logging.getLogger(__name__)

# Typical, hot and strained readings from the AI4I ranges (Type, air K,
# process K, rpm, Nm, wear min): a new version must score all of them.
CANNED_TYPES: Final = ("L", "M", "H", "L")
CANNED_NUMERIC: Final = np.array(
    [
        [298.1, 308.6, 1551.0, 42.8, 0.0],
        [302.5, 310.9, 1305.0, 60.1, 120.0],
        [300.8, 310.3, 2861.0, 4.6, 143.0],
        [299.0, 309.5, 1302.0, 66.0, 220.0],
    ]
)

LoadFn = Callable[[str, str], Scorer]
ResolveFn = Callable[[str, str], tuple[str, str | None]]


@dataclass(frozen=True)
class LoadedModel:
    """A warmed model version; immutable, shared by all requests using it."""

    version: str
    scorer: Scorer
    alias: str
    run_id: str | None = None
    loaded_at: float = field(default_factory=time.time)


@dataclass
class WatchStatus:
    """What readiness reports about one alias."""

    last_check_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    registry_ok: bool = False
    next_check_in_s: float = 0.0


def configure_registry_timeouts(settings: Settings) -> None:
    """Bound every MLflow HTTP call the service makes (read per call by MLflow)."""
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(settings.registry_timeout_s))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(settings.registry_max_retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")


def mlflow_resolver(settings: Settings) -> ResolveFn:
    """Resolve `alias` of `name` to (version, run_id) through the MLflow client."""
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri
    )

    def resolve(name: str, alias: str) -> tuple[str, str | None]:
        found = client.get_model_version_by_alias(name, alias)
        return str(found.version), found.run_id

    return resolve


def mlflow_loader(settings: Settings) -> LoadFn:
    """Load a registered version as a pyfunc and unwrap the fast-path scorer."""

    def load(name: str, version: str) -> Scorer:
        import mlflow

        if settings.tracking_uri:
            mlflow.set_tracking_uri(settings.tracking_uri)
            mlflow.set_registry_uri(settings.tracking_uri)
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        scorer: Any = model.unwrap_python_model()
        if not isinstance(scorer, Scorer):
            raise ModelLoadError(
                f"{name} version {version} is a {type(scorer).__name__}, which "
                "does not satisfy cloudguard_model.contract.Scorer; register it "
                "with cloudguard_model.pyfunc.FailureModel"
            )
        return scorer

    return load


def warm_and_check(scorer: Scorer, name: str, version: str) -> None:
    """Score the canned readings with and without explanations; refuse garbage."""
    for explain in (False, True):
        scores = scorer.score(list(CANNED_TYPES), CANNED_NUMERIC, explain=explain)
        probability = np.asarray(scores.probability, dtype=np.float64)
        modes = np.asarray(scores.mode_probability, dtype=np.float64)
        rows = len(CANNED_TYPES)
        if probability.shape != (rows,) or modes.shape != (rows, len(FAILURE_MODES)):
            raise ModelLoadError(
                f"{name} version {version}: canned check returned shapes "
                f"{probability.shape} and {modes.shape}, expected ({rows},) and "
                f"({rows}, {len(FAILURE_MODES)})"
            )
        if not (np.isfinite(probability).all() and np.isfinite(modes).all()):
            raise ModelLoadError(
                f"{name} version {version}: canned check returned non-finite scores"
            )
        if probability.min() < 0.0 or probability.max() > 1.0:
            raise ModelLoadError(
                f"{name} version {version}: probabilities outside 0..1"
            )
        if explain and scores.contributions is None:
            raise ModelLoadError(
                f"{name} version {version}: explain=True returned no contributions"
            )
    if not 0.0 <= float(scorer.threshold) <= 1.0 or math.isnan(scorer.threshold):
        raise ModelLoadError(
            f"{name} version {version}: threshold {scorer.threshold} is outside 0..1"
        )


class ModelWatcher:
    """Keeps `current` on the version the alias points at, or the last good one."""

    def __init__(
        self,
        settings: Settings,
        alias: str,
        metrics: Metrics,
        *,
        resolve: ResolveFn | None = None,
        load: LoadFn | None = None,
    ) -> None:
        self.settings = settings
        self.alias = alias
        self.metrics = metrics
        self.current: LoadedModel | None = None
        self.status = WatchStatus()
        self._resolve = resolve
        self._load = load or mlflow_loader(settings)
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    async def check_now(self) -> bool:
        """Resolve the alias once and swap if it moved; True when it swapped."""
        async with self._lock:
            return await self._check()

    def nudge(self) -> None:
        """Make the polling loop check immediately (after POST /admin/reload)."""
        self._wake.set()

    async def run(self) -> None:
        """Poll forever: the interval while healthy, backoff after failures."""
        while True:
            try:
                async with self._lock:
                    await self._check()
            except Exception:  # the loop must survive anything a check throws
                logger.exception("event=watch_crash alias=%s", self.alias)
            delay = self._next_delay()
            self.status.next_check_in_s = delay
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _next_delay(self) -> float:
        failures = self.status.consecutive_failures
        if failures == 0:
            return self.settings.poll_interval_s
        backoff = min(0.5 * 2.0 ** (failures - 1), self.settings.reload_backoff_max_s)
        return max(backoff, 0.25)

    async def _check(self) -> bool:
        name = self.settings.model_name
        self.status.last_check_at = time.time()
        if self._resolve is None:
            self._resolve = await asyncio.to_thread(mlflow_resolver, self.settings)
        call_budget = self.settings.registry_timeout_s * (
            self.settings.registry_max_retries + 1
        )
        try:
            version, run_id = await asyncio.wait_for(
                asyncio.to_thread(self._resolve, name, self.alias),
                timeout=call_budget + 5.0,
            )
        except Exception as error:
            self._fail(f"registry check failed: {type(error).__name__}: {error}")
            self.metrics.registry_up.labels(self.alias).set(0)
            return False
        self.metrics.registry_up.labels(self.alias).set(1)
        self.status.registry_ok = True

        if self.current is not None and self.current.version == version:
            self._succeed()
            return False
        try:
            loaded = await asyncio.to_thread(self._load_and_warm, version, run_id)
        except Exception as error:
            self.metrics.reloads.labels(self.alias, "failure").inc()
            self._fail(
                f"version {version} failed to load: {type(error).__name__}: {error}"
            )
            return False
        self._swap(loaded)
        self._succeed()
        return True

    def _load_and_warm(self, version: str, run_id: str | None) -> LoadedModel:
        import xgboost

        xgboost.set_config(nthread=self.settings.score_threads)
        name = self.settings.model_name
        started = time.perf_counter()
        scorer = self._load(name, version)
        warm_and_check(scorer, name, version)
        logger.info(
            "event=model_loaded model=%s alias=%s version=%s seconds=%.2f",
            name,
            self.alias,
            version,
            time.perf_counter() - started,
        )
        return LoadedModel(
            version=version, scorer=scorer, alias=self.alias, run_id=run_id
        )

    def _swap(self, loaded: LoadedModel) -> None:
        previous = self.current
        self.current = loaded  # one reference assignment: atomic for readers
        self.metrics.reloads.labels(self.alias, "success").inc()
        if previous is not None:
            self.metrics.model_info.remove(self.alias, previous.version)
        self.metrics.model_info.labels(self.alias, loaded.version).set(1)
        try:
            self.metrics.model_version.labels(self.alias).set(float(loaded.version))
        except ValueError:
            self.metrics.model_version.labels(self.alias).set(0)
        logger.info(
            "event=model_swapped alias=%s from_version=%s to_version=%s",
            self.alias,
            previous.version if previous else None,
            loaded.version,
        )

    def _succeed(self) -> None:
        self.status.last_success_at = time.time()
        self.status.consecutive_failures = 0
        self.status.last_error = None

    def _fail(self, message: str) -> None:
        self.status.consecutive_failures += 1
        self.status.last_error = message
        if "registry" in message:
            self.status.registry_ok = False
        logger.warning(
            "event=watch_failed alias=%s serving_version=%s failures=%d error=%s",
            self.alias,
            self.current.version if self.current else None,
            self.status.consecutive_failures,
            message,
        )
