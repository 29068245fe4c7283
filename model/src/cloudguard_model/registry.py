"""The gate's view of the MLflow model registry: versions, aliases, records.

Every call goes through MLflow's REST client with bounded waits (see
`RegistrySettings`), and every failure becomes a `RegistryError` that names
the call and the tracking URI, so the gate can stop with nothing moved.
"""

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from cloudguard_model import names
from cloudguard_model.errors import GateError

logger = logging.getLogger(__name__)

TAG_RUN_KEY: Final = "cloudguard.run_key"
"""Version tag: the scheduled-run key that registered the version (trainer)."""
TAG_TRAINING_DATA_SHA256: Final = "cloudguard.data_sha256"
"""Version tag: sha256 of the data the version was trained on (trainer)."""
PARAM_DATA_SHA256: Final = "data_sha256"
"""Run param of the training run: sha256 of its training data (trainer)."""
PARAM_EVALUATION_SHA256: Final = "evaluation_sha256"
"""Run param of the training run: sha256 of the evaluation set whose rows it
held out of training; empty when it held none out (trainer)."""

_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_T = TypeVar("_T")


class RegistryError(GateError):
    """The tracking server failed, timed out or refused a registry call."""


@dataclass(frozen=True)
class RegistrySettings:
    """Bounded waits for every MLflow REST call the gate makes.

    Each field maps to MLflow's own HTTP retry setting and is read from that
    variable when set; the defaults are far tighter than MLflow's (120 s
    timeout, 7 retries), so a dead server fails the gate in seconds.
    """

    timeout_s: int = 10
    """MLFLOW_HTTP_REQUEST_TIMEOUT: seconds per HTTP request."""
    max_retries: int = 2
    """MLFLOW_HTTP_REQUEST_MAX_RETRIES: retries after the first attempt."""
    backoff_factor: int = 1
    """MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: exponential backoff base, seconds."""
    backoff_jitter: float = 0.2
    """MLFLOW_HTTP_REQUEST_BACKOFF_JITTER: random extra wait per retry, seconds."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "RegistrySettings":
        env = os.environ if environ is None else environ
        defaults = cls()
        try:
            return cls(
                timeout_s=int(
                    env.get("MLFLOW_HTTP_REQUEST_TIMEOUT", defaults.timeout_s)
                ),
                max_retries=int(
                    env.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", defaults.max_retries)
                ),
                backoff_factor=int(
                    env.get(
                        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", defaults.backoff_factor
                    )
                ),
                backoff_jitter=float(
                    env.get(
                        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", defaults.backoff_jitter
                    )
                ),
            )
        except ValueError as error:
            raise RegistryError(
                f"an MLFLOW_HTTP_REQUEST_* variable is not a number ({error}); "
                "unset it or give whole seconds"
            ) from error

    def apply(self) -> None:
        """Export the settings where MLflow reads them (at each request)."""
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(self.timeout_s)
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(self.max_retries)
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(self.backoff_factor)
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = str(self.backoff_jitter)

    def worst_case_s(self) -> float:
        """Upper bound of one call: every attempt times out, every backoff waits."""
        attempts = self.max_retries + 1
        backoff = sum(
            self.backoff_factor * 2**retry + self.backoff_jitter
            for retry in range(self.max_retries)
        )
        return float(attempts * self.timeout_s + backoff)


@dataclass(frozen=True)
class VersionInfo:
    """A registered model version as the gate needs it."""

    version: str
    run_id: str | None
    tags: Mapping[str, str]

    @property
    def run_key(self) -> str | None:
        return self.tags.get(TAG_RUN_KEY)


def _error_code(error: BaseException) -> str | None:
    return getattr(error, "error_code", None)


class Registry:
    """Registry operations on one registered model at one tracking URI."""

    def __init__(self, tracking_uri: str, model_name: str = names.MODEL_NAME) -> None:
        import mlflow
        from mlflow import MlflowClient

        # Loading `models:/` URIs goes through the process-wide URIs.
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self._client = MlflowClient(
            tracking_uri=tracking_uri, registry_uri=tracking_uri
        )

    def _failure(self, what: str, error: BaseException) -> "RegistryError":
        first_line = str(error).splitlines()[0] if str(error) else ""
        return RegistryError(
            f"registry call {what} on {self.tracking_uri} failed: "
            f"{first_line or type(error).__name__}; check that the tracking "
            "server is up and reachable"
        )

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except GateError:
            raise
        except Exception as error:
            raise self._failure(what, error) from error

    def version(self, version: str) -> VersionInfo:
        """A version that must exist (the challenger, a rollback target)."""
        found = self._call(
            f"get_model_version({self.model_name!r}, {version!r})",
            lambda: self._client.get_model_version(self.model_name, str(version)),
        )
        return VersionInfo(str(found.version), found.run_id, dict(found.tags or {}))

    def aliases(self) -> dict[str, str]:
        """alias -> version of the registered model; {} when it is not registered."""
        try:
            model = self._client.get_registered_model(self.model_name)
        except Exception as error:
            if _error_code(error) == _NOT_FOUND:
                return {}
            raise self._failure("get_registered_model", error) from error
        return {alias: str(version) for alias, version in (model.aliases or {}).items()}

    def resolve(self, alias: str) -> tuple[VersionInfo | None, str]:
        """The version behind an alias, or (None, why) when it has none.

        A missing alias and an alias whose version was deleted both mean "no
        such model"; any other failure is a RegistryError.
        """
        version = self.aliases().get(alias)
        if version is None:
            return None, f"alias {alias!r} is not set"
        try:
            found = self._client.get_model_version(self.model_name, version)
        except Exception as error:
            if _error_code(error) == _NOT_FOUND:
                return None, f"alias {alias!r} points at deleted version {version}"
            raise self._failure(f"get_model_version({version!r})", error) from error
        return VersionInfo(str(found.version), found.run_id, dict(found.tags or {})), ""

    def versions_with_run_key(self, run_key: str) -> list[VersionInfo]:
        """Versions tagged with a scheduled-run key (normally at most one)."""
        found = self._call(
            "search_model_versions",
            lambda: self._client.search_model_versions(f"name = '{self.model_name}'"),
        )
        return [
            VersionInfo(str(item.version), item.run_id, dict(item.tags or {}))
            for item in found
            if (item.tags or {}).get(TAG_RUN_KEY) == run_key
        ]

    def provenance(self, version: VersionInfo) -> tuple[str, str]:
        """(training data sha256, held-out evaluation sha256) of a version.

        Read from the version's tag and its training run's params; '' when
        the trainer did not record one.
        """
        run_id = version.run_id
        if run_id is None:
            return version.tags.get(TAG_TRAINING_DATA_SHA256, ""), ""
        run = self._call(f"get_run({run_id!r})", lambda: self._client.get_run(run_id))
        params = run.data.params or {}
        data_sha = version.tags.get(TAG_TRAINING_DATA_SHA256) or params.get(
            PARAM_DATA_SHA256, ""
        )
        return data_sha, params.get(PARAM_EVALUATION_SHA256, "")

    def set_alias(self, alias: str, version: str) -> None:
        self._call(
            f"set_registered_model_alias({alias!r}, {version!r})",
            lambda: self._client.set_registered_model_alias(
                self.model_name, alias, str(version)
            ),
        )
        logger.info(
            "event=alias_set model=%s alias=%s version=%s",
            self.model_name,
            alias,
            version,
        )

    def load_model(self, version: str) -> Any:
        """The pyfunc of a version (downloads its artifacts, bounded waits)."""
        import mlflow

        uri = f"models:/{self.model_name}/{version}"
        return self._call(f"load_model({uri})", lambda: mlflow.pyfunc.load_model(uri))

    def log_record(self, run_id: str, record: Mapping[str, Any], name: str) -> None:
        """Attach a JSON record to a run as an artifact under `gate/`."""
        text = json.dumps(record, indent=2, sort_keys=True)
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / name
            path.write_text(text, encoding="utf-8")
            self._call(
                f"log_artifact(run {run_id}, gate/{name})",
                lambda: self._client.log_artifact(run_id, str(path), "gate"),
            )
