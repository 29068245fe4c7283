"""The Litestar application: routes, auth guard, error shape, OpenAPI.

Every non-2xx answer has the `ErrorBody` shape; no handler lets a stack trace
reach the caller. OpenAPI is served at /schema (JSON at /schema/openapi.json).
"""

import logging
import re
from dataclasses import dataclass
from typing import Any, cast

import msgspec
from litestar import Litestar, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, Operation, SecurityScheme

from cloudguard_serving.auth import KeyRing
from cloudguard_serving.errors import (
    ModelUnavailableError,
    OverloadedError,
    ServingError,
)
from cloudguard_serving.metrics import ObserveMiddleware
from cloudguard_serving.reload import LoadFn, ResolveFn
from cloudguard_serving.request_id import request_id_from
from cloudguard_serving.schemas import (
    ErrorBody,
    FieldError,
    PredictRequest,
    PredictResponse,
    physical_errors,
)
from cloudguard_serving.service import Service
from cloudguard_serving.settings import Settings

logger = logging.getLogger(__name__)

_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)
_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_reading",
    429: "too_many_requests",
    503: "unavailable",
}


class RequestError(ServingError):
    """A request the service refuses with a specific status and field errors."""

    def __init__(
        self, status: int, message: str, details: list[FieldError] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []


def _service(state: State) -> Service:
    service: Service = state.service
    return service


def _error(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    details: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorBody]:
    body = ErrorBody(
        status=status,
        error=_CODES.get(status, "error" if status < 500 else "internal_error"),
        message=message,
        request_id=request_id_from(request.scope),
        details=details or [],
    )
    return Response(body, status_code=status, headers=headers)


def _validation_details(error: ValidationException) -> list[FieldError]:
    details = []
    for item in error.extra if isinstance(error.extra, list) else []:
        text = str(item.get("message", "")) if isinstance(item, dict) else str(item)
        match = _AT_PATH.match(text)
        path = (match and match.group("path")) or "body"
        details.append(
            FieldError(field=path, message=match.group("message") if match else text)
        )
    return details


def _on_http_error(
    request: Request[Any, Any, Any], error: HTTPException
) -> Response[ErrorBody]:
    status = error.status_code
    if isinstance(error, ValidationException):
        details = _validation_details(error)
        message = "the request body is not a valid PredictRequest"
        if details:
            message = f"{message}: {details[0].field}: {details[0].message}"
        return _error(request, 400, message, details)
    if isinstance(error, NotAuthorizedException):
        return _error(
            request,
            401,
            "a valid `Authorization: Bearer <key>` header is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if status == 413:
        limit = request.app.state.service.settings.max_body_bytes
        return _error(request, 413, f"request body is over the limit of {limit} bytes")
    if status >= 500:
        logger.error("event=http_error status=%d detail=%s", status, error.detail)
        return _error(request, status, "the service failed; quote the request id")
    return _error(request, status, str(error.detail))


def _on_request_error(
    request: Request[Any, Any, Any], error: RequestError
) -> Response[ErrorBody]:
    return _error(request, error.status, error.message, error.details)


def _on_unavailable(
    request: Request[Any, Any, Any], error: ServingError
) -> Response[ErrorBody]:
    return _error(request, 503, str(error), headers={"Retry-After": "1"})


def _on_crash(request: Request[Any, Any, Any], error: Exception) -> Response[ErrorBody]:
    logger.exception(
        "event=unhandled_error request_id=%s path=%s",
        request_id_from(request.scope),
        request.url.path,
        exc_info=error,
    )
    return _error(request, 500, "unexpected error in the service; quote the request id")


def require_key(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guard: a bearer key of a known gateway, unless auth is off."""
    service = _service(connection.app.state)
    if not service.settings.auth:
        cast(dict[str, Any], connection.scope)["cloudguard.gateway"] = "anonymous"
        return
    gateway = service.keyring.gateway_for(connection.headers.get("authorization"))
    if gateway is None:
        raise NotAuthorizedException()
    cast(dict[str, Any], connection.scope)["cloudguard.gateway"] = gateway


def require_key_for_metrics(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    if _service(connection.app.state).settings.metrics_auth:
        require_key(connection, handler)


_DECODER = msgspec.json.Decoder(PredictRequest)


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """Replace msgspec's `#/$defs/X` references by the definitions themselves."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {key: _inline_refs(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(value, defs) for value in node]
    return node


def _request_schema() -> dict[str, Any]:
    schema = msgspec.json.schema(PredictRequest)
    defs = schema.pop("$defs")
    inlined: dict[str, Any] = _inline_refs(schema, defs)
    return inlined


@dataclass
class _PredictOperation(Operation):
    """Documents the body that `predict` decodes itself (strictly, with msgspec)."""

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        schema["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _request_schema()}},
        }
        return schema


def decode_request(body: bytes) -> PredictRequest:
    """Strict decode: numbers must be JSON numbers (int or float), never strings."""
    if not body.strip():
        raise RequestError(400, "the request body is empty; send a PredictRequest")
    try:
        return _DECODER.decode(body)
    except msgspec.ValidationError as error:
        match = _AT_PATH.match(str(error))
        message = match.group("message") if match else str(error)
        field = (match and match.group("path")) or "body"
        raise RequestError(
            400,
            f"the request body is not a valid PredictRequest: {field}: {message}",
            [FieldError(field=field, message=message)],
        ) from error
    except msgspec.DecodeError as error:
        raise RequestError(
            400, f"the request body is not valid JSON: {error}"
        ) from error


@post(
    "/v1/predict",
    guards=[require_key],
    status_code=200,
    tags=["predict"],
    operation_class=_PredictOperation,
)
async def predict(request: Request[Any, Any, Any], state: State) -> PredictResponse:
    """Score one or many readings with the served model."""
    service = _service(state)
    data = decode_request(await request.body())
    limit = service.settings.max_readings
    if len(data.readings) > limit:
        raise RequestError(
            413,
            f"{len(data.readings)} readings in one request; the limit is {limit}",
        )
    errors = physical_errors(data.readings)
    if errors:
        raise RequestError(
            422, f"{len(errors)} field(s) hold impossible values", errors
        )
    return await service.predict(
        data,
        request_id_from(request.scope),
        str(request.scope.get("cloudguard.gateway", "anonymous")),
    )


class DriftResponse(msgspec.Struct, kw_only=True):
    model_version: str | None
    window_readings: int
    psi: dict[str, float]


@get("/v1/drift", guards=[require_key], tags=["monitoring"])
async def drift(state: State) -> DriftResponse:
    """PSI per feature of the sliding window against the model's training data."""
    service = _service(state)
    current = service.watcher.current
    return DriftResponse(
        model_version=current.version if current else None,
        window_readings=service.drift.size,
        psi=service.drift_report(),
    )


@get("/health/live", tags=["health"])
async def live() -> dict[str, str]:
    """The process is up and its event loop answers."""
    return {"status": "live"}


@get("/health/ready", tags=["health"])
async def ready(state: State) -> Response[dict[str, Any]]:
    """Ready once a model is loaded; details say which, and any reload trouble."""
    service = _service(state)
    details = service.readiness()
    return Response(details, status_code=200 if service.ready else 503)


@get("/metrics", guards=[require_key_for_metrics], tags=["monitoring"])
async def metrics(state: State) -> Response[bytes]:
    """Prometheus text exposition of this instance."""
    service = _service(state)
    service.refresh_gauges()
    return Response(
        service.metrics.render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


class ReloadResponse(msgspec.Struct, kw_only=True):
    swapped: bool
    model_version: str | None
    last_error: str | None


@post("/admin/reload", guards=[require_key], status_code=200, tags=["admin"])
async def reload(state: State) -> ReloadResponse:
    """Check the registry alias now and swap if it moved (pipeline nudge)."""
    service = _service(state)
    swapped = await service.watcher.check_now()
    if service.shadow_watcher is not None:
        service.shadow_watcher.nudge()
    current = service.watcher.current
    return ReloadResponse(
        swapped=swapped,
        model_version=current.version if current else None,
        last_error=service.watcher.status.last_error,
    )


def create_app(
    settings: Settings | None = None,
    *,
    keyring: KeyRing | None = None,
    resolve: ResolveFn | None = None,
    load: LoadFn | None = None,
) -> Litestar:
    """Build the app; resolve/load replace the MLflow registry calls if given."""
    settings = settings or Settings.from_env()
    service = Service(settings, keyring=keyring, resolve=resolve, load=load)

    async def startup(app: Litestar) -> None:
        await service.start()

    async def shutdown(app: Litestar) -> None:
        await service.stop()

    openapi = OpenAPIConfig(
        title="CloudGuard serving",
        version="1.0.0",
        description="Failure prediction for plant gateways (see docs/serving.md).",
        path="/schema",
        components=Components(
            security_schemes={
                "gatewayKey": SecurityScheme(type="http", scheme="bearer")
            }
        ),
        security=[{"gatewayKey": []}],
    )
    return Litestar(
        route_handlers=[predict, drift, live, ready, metrics, reload],
        state=State({"service": service}),
        on_startup=[startup],
        on_shutdown=[shutdown],
        middleware=[
            DefineMiddleware(cast(Any, ObserveMiddleware), metrics=service.metrics)
        ],
        exception_handlers={
            HTTPException: _on_http_error,
            RequestError: _on_request_error,
            ModelUnavailableError: _on_unavailable,
            OverloadedError: _on_unavailable,
            Exception: _on_crash,
        },
        openapi_config=openapi,
        request_max_body_size=settings.max_body_bytes,
        debug=False,
    )


def app_from_env() -> Litestar:
    """Factory used by `cloudguard-serve` (granian calls it in each worker)."""
    return create_app(Settings.from_env())
