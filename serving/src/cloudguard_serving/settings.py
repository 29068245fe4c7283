"""One typed settings object for the service, read from the environment.

Every field maps to `CLOUDGUARD_<FIELD>` (upper case), except the tracking URI,
which is MLflow's own `MLFLOW_TRACKING_URI`. Defaults run on a laptop: a local
MLflow store, the demo bucket names and a spool directory under `.cloudguard/`.
"""

import os
from collections.abc import Mapping

import msgspec
from cloudguard_model import names

from cloudguard_serving.errors import ConfigError

ENV_PREFIX = "CLOUDGUARD_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Service configuration; see docs/serving.md for the operator's view."""

    host: str = "127.0.0.1"
    """Address `cloudguard-serve` binds (use 0.0.0.0 only inside a pod)."""
    port: int = 8000
    """TCP port `cloudguard-serve` listens on."""
    workers: int = 1
    """Server worker processes; one per pod keeps micro-batches large."""

    tracking_uri: str | None = None
    """MLflow tracking/registry URI (`MLFLOW_TRACKING_URI`); None uses MLflow's
    local default."""
    model_name: str = names.MODEL_NAME
    """Registered model to serve."""
    model_alias: str = names.ALIAS_CHAMPION
    """Registry alias the service follows (`CLOUDGUARD_MODEL_ALIAS`)."""
    poll_interval_s: float = 10.0
    """Seconds between alias checks while the registry answers."""
    reload_backoff_max_s: float = 120.0
    """Upper bound of the exponential backoff after a failed check or load."""
    registry_timeout_s: float = 10.0
    """Timeout of one registry HTTP call (`MLFLOW_HTTP_REQUEST_TIMEOUT`)."""
    registry_max_retries: int = 1
    """Retries of one registry HTTP call before the poll counts as failed."""

    shadow_alias: str = names.ALIAS_CHALLENGER
    """Alias scored in shadow next to the served model."""
    shadow_share: float = 0.0
    """Share (0..1) of readings also scored by the shadow model; 0 disables it."""
    shadow_queue_limit: int = 2048
    """Readings waiting for shadow scoring; beyond it shadow work is shed."""

    api_keys: str = ""
    """Gateway keys as `gateway=sha256hex` pairs separated by commas; the hex is
    `cloudguard hash-key KEY`, never the key itself."""
    api_keys_file: str = ""
    """File with one `gateway sha256hex` pair per line (e.g. a mounted Secret)."""
    auth: bool = True
    """Require a bearer key on /v1 and /admin; false only for local trials."""
    metrics_auth: bool = False
    """Require a bearer key on /metrics as well (health stays open)."""

    max_readings: int = 256
    """Readings per request; more is answered 413."""
    max_body_bytes: int = 262_144
    """Request body size cap in bytes; more is answered 413."""
    batch_max_readings: int = 1024
    """Readings scored in one model call by the micro-batcher."""
    batch_max_wait_ms: float = 0.5
    """Extra wait for more requests once a batch is open and the model is idle."""
    batch_queue_limit: int = 20_000
    """Readings queued for scoring; beyond it requests are answered 503."""
    score_threads: int = 1
    """XGBoost threads per model call. 1 avoids OpenMP stalls when the cores
    are shared (a busy neighbour turned 1 ms calls into 70 ms ones); raise it
    only on dedicated cores with large batches."""
    explain_top: int = 3
    """Contributing factors returned per reading."""

    inference_log: bool = True
    """Log every prediction (JSON Lines) to S3, or locally when no bucket is set."""
    inference_bucket: str = ""
    """S3 bucket of the inference log (`CLOUDGUARD_INFERENCE_BUCKET`, e.g.
    cloudguard-inference-logs); empty writes under `inference_dir` instead, so
    a default run never reaches a remote endpoint."""
    inference_prefix: str = "predictions"
    """Key prefix; objects go to `<prefix>/date=YYYY-MM-DD/model_version=V/`."""
    inference_dir: str = ".cloudguard/inference-log"
    """Local destination of the log when `inference_bucket` is empty."""
    log_flush_interval_s: float = 2.0
    """Seconds between inference-log uploads."""
    log_batch_records: int = 5000
    """Records per uploaded object at most."""
    log_queue_limit: int = 200_000
    """Records held in memory; beyond it new records are dropped and counted."""
    spool_dir: str = ".cloudguard/spool"
    """Local directory for log batches S3 refused; re-sent on later flushes."""

    drift_window: int = 2000
    """Readings in the sliding window that PSI drift is computed over."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from `CLOUDGUARD_*` variables (and MLFLOW_TRACKING_URI)."""
        environ = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        for field in msgspec.structs.fields(cls):
            value = environ.get(ENV_PREFIX + field.name.upper())
            if value is not None:
                raw[field.name] = value
        tracking_uri = environ.get(names.ENV_TRACKING_URI)
        if tracking_uri:
            raw["tracking_uri"] = tracking_uri
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as error:
            raise ConfigError(
                f"bad environment setting: {error}; fix the matching "
                f"{ENV_PREFIX}* variable (see docs/serving.md)"
            ) from error
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse settings that cannot work, naming the variable to fix."""
        if not 0.0 <= self.shadow_share <= 1.0:
            raise ConfigError(
                f"CLOUDGUARD_SHADOW_SHARE={self.shadow_share} is outside 0..1"
            )
        for name in (
            "max_readings",
            "max_body_bytes",
            "batch_max_readings",
            "batch_queue_limit",
            "log_batch_records",
            "drift_window",
            "workers",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"{ENV_PREFIX}{name.upper()}={getattr(self, name)} must be >= 1"
                )
        if self.poll_interval_s <= 0 or self.registry_timeout_s <= 0:
            raise ConfigError(
                "CLOUDGUARD_POLL_INTERVAL_S and CLOUDGUARD_REGISTRY_TIMEOUT_S "
                "must be positive"
            )
