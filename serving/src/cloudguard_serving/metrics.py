"""Prometheus metrics of one service instance, in their own registry.

Label sets stay small on purpose: routes are the fixed templates of this API
(anything else is `unmatched`), statuses are HTTP codes, versions change only
when the registry alias moves.
"""

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from cloudguard_serving.request_id import request_id_from

LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
ROUTES: Final = frozenset(
    {
        "/v1/predict",
        "/v1/drift",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/admin/reload",
        "/schema/openapi.json",
    }
)


class Metrics:
    """All series the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "cloudguard_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "cloudguard_http_request_duration_seconds",
            "Time from request start to the last response byte.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "cloudguard_predictions",
            "Readings scored, by decision and model version.",
            ["decision", "model_version"],
            registry=r,
        )
        self.model_info = Gauge(
            "cloudguard_model_info",
            "1 for the model version currently served per alias.",
            ["alias", "version"],
            registry=r,
        )
        self.model_version = Gauge(
            "cloudguard_model_version",
            "Numeric registry version currently served per alias (0: none).",
            ["alias"],
            registry=r,
        )
        self.reloads = Counter(
            "cloudguard_model_reloads",
            "Model reload attempts by alias and outcome (success or failure).",
            ["alias", "outcome"],
            registry=r,
        )
        self.registry_up = Gauge(
            "cloudguard_registry_up",
            "1 when the last registry check for the alias succeeded.",
            ["alias"],
            registry=r,
        )
        self.ready = Gauge(
            "cloudguard_ready",
            "1 while the instance accepts predictions.",
            [],
            registry=r,
        )
        self.batch_size = Histogram(
            "cloudguard_batch_readings",
            "Readings per model call made by the micro-batcher.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048),
            registry=r,
        )
        self.batch_queue = Gauge(
            "cloudguard_batch_queue_readings",
            "Readings waiting for the micro-batcher.",
            registry=r,
        )
        self.log_queue = Gauge(
            "cloudguard_inference_log_queue_records",
            "Inference-log records waiting for upload.",
            registry=r,
        )
        self.log_dropped = Counter(
            "cloudguard_inference_log_dropped_records",
            "Inference-log records lost (queue full or spool unwritable).",
            registry=r,
        )
        self.log_uploaded = Counter(
            "cloudguard_inference_log_uploaded_records",
            "Inference-log records written to S3.",
            registry=r,
        )
        self.log_spooled = Counter(
            "cloudguard_inference_log_spooled_records",
            "Inference-log records written to the local spool because S3 failed.",
            registry=r,
        )
        self.log_spool_files = Gauge(
            "cloudguard_inference_log_spool_files",
            "Spooled batches waiting to be re-sent to S3.",
            registry=r,
        )
        self.drift = Gauge(
            "cloudguard_feature_drift_psi",
            "Population stability index of a feature over the sliding window.",
            ["feature"],
            registry=r,
        )
        self.shadow_scored = Counter(
            "cloudguard_shadow_scored_readings",
            "Readings scored by the shadow model.",
            registry=r,
        )
        self.shadow_shed = Counter(
            "cloudguard_shadow_shed_readings",
            "Readings picked for shadow scoring but shed (queue full, too old, "
            "no shadow model or shutdown).",
            registry=r,
        )
        self.shadow_agreement = Counter(
            "cloudguard_shadow_agreements",
            "Shadow-scored readings whose decision matched the served model's.",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def route_of(path: str) -> str:
    """Bounded route label for a request path."""
    return path if path in ROUTES else "unmatched"


class ObserveMiddleware:
    """ASGI middleware: request id, request counts and latency by route/status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        scope["cloudguard.request_id"] = request_id
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode("ascii"))

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            labels = (route_of(scope["path"]), scope["method"], str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
