"""Run the pipeline's steps in order on this machine, as the CronWorkflow would.

The runner walks `spec.STEPS`, fills each step's placeholders from the
pipeline parameters and the earlier steps' outputs, and runs the step through
the same harness the cluster uses. It honours each step's `when`, its
accepted exit codes, its deadline and its transient-only retry policy.
"""

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlparse

from cloudguard_pipelines.errors import CloudGuardPipelineError, StepFailedError
from cloudguard_pipelines.harness import (
    LineSink,
    StepResult,
    TransientStepError,
    run_step,
)
from cloudguard_pipelines.spec import (
    PARAMETERS,
    STEP_ENV,
    STEPS,
    Step,
    check_spec,
    substitute,
)

if TYPE_CHECKING:
    from cloudguard_pipelines.sandbox import Sandbox

logger = logging.getLogger(__name__)

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class StepStatus(StrEnum):
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass
class StepRecord:
    """What happened to one step in a local run."""

    step: str
    status: StepStatus
    argv: list[str]
    seconds: float = 0.0
    attempts: int = 0
    result: dict[str, object] = field(default_factory=dict)
    error: str = ""


@dataclass
class PipelineRun:
    """A finished local run: one record per step, in order."""

    params: dict[str, str]
    records: list[StepRecord]

    @property
    def succeeded(self) -> bool:
        return all(record.status is not StepStatus.FAILED for record in self.records)

    def record(self, step: str) -> StepRecord:
        for record in self.records:
            if record.step == step:
                return record
        raise KeyError(step)


StepEvent = Callable[[StepRecord], None]


def plan(params: Mapping[str, str] | None = None) -> list[tuple[Step, list[str]]]:
    """Each step with its argv; placeholders stay when no params are given.

    This is the list the runner executes and the one the render test compares
    with the WorkflowTemplate.
    """
    check_spec()
    if params is None:
        return [(step, list(step.argv)) for step in STEPS]
    outputs = {
        step.name: {key: f"{{steps.{step.name}.{key}}}" for key in step.outputs}
        for step in STEPS
    }
    return [
        (step, [substitute(arg, params, outputs) for arg in step.argv])
        for step in STEPS
    ]


def check_local_params(params: Mapping[str, str], env: Mapping[str, str]) -> None:
    """Refuse parameters that would make a local run reach another machine."""
    missing = [
        p.name
        for p in PARAMETERS
        if not params.get(p.name) and p.name != "serving-reload-url"
    ]
    if missing:
        raise CloudGuardPipelineError(f"local run needs values for {missing}")
    tracking = params["tracking-uri"]
    if urlparse(tracking).scheme in {"http", "https"}:
        _require_loopback("tracking-uri", tracking)
    elif not tracking.startswith(("sqlite:///", "file:")):
        raise CloudGuardPipelineError(
            f"tracking-uri {tracking!r}: a local run uses sqlite:///PATH, file:PATH or "
            "http://127.0.0.1:PORT"
        )
    if params.get("serving-reload-url"):
        _require_loopback("serving-reload-url", params["serving-reload-url"])
    uses_s3 = any(value.startswith("s3://") for value in params.values())
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if uses_s3:
        if not endpoint:
            raise CloudGuardPipelineError(
                "s3:// parameters need a local S3: set AWS_ENDPOINT_URL_S3 to a moto "
                "server on 127.0.0.1 (`cloudguard pipeline run --local` starts one)"
            )
        _require_loopback("AWS_ENDPOINT_URL_S3", endpoint)


def _require_loopback(name: str, url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in _LOOPBACK_HOSTS:
        raise CloudGuardPipelineError(
            f"{name} {url!r} is not on this machine; a local run talks to "
            "127.0.0.1 only"
        )


class LocalRunner:
    """Executes `spec.STEPS` in order with the shared harness."""

    def __init__(
        self,
        params: Mapping[str, str],
        *,
        env: Mapping[str, str],
        workdir: Path,
        on_step: StepEvent | None = None,
        stdout_sink: LineSink | None = None,
        stderr_sink: LineSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_spec()
        check_local_params(params, env)
        self.params = dict(params)
        self.env = dict(env)
        self.workdir = workdir
        self.on_step = on_step
        self.stdout_sink = stdout_sink
        self.stderr_sink = stderr_sink
        self.sleep = sleep

    def run(self) -> PipelineRun:
        """Run every step; stop at the first failure (later steps are not run)."""
        outputs: dict[str, dict[str, str]] = {}
        records: list[StepRecord] = []
        for step in STEPS:
            record = self._run_one(step, outputs)
            records.append(record)
            if self.on_step is not None:
                self.on_step(record)
            if record.status is StepStatus.FAILED:
                break
        return PipelineRun(self.params, records)

    def _run_one(self, step: Step, outputs: dict[str, dict[str, str]]) -> StepRecord:
        argv = [substitute(arg, self.params, outputs) for arg in step.argv]
        if step.when is not None:
            actual = outputs.get(step.when.step, {}).get(step.when.key)
            if actual != step.when.equals:
                logger.info(
                    "event=step_skipped step=%s because=%s.%s=%s",
                    step.name,
                    step.when.step,
                    step.when.key,
                    actual,
                )
                return StepRecord(step.name, StepStatus.SKIPPED, argv)
        env = dict(self.env)
        env.update(
            {
                name: substitute(value, self.params, outputs)
                for name, value in STEP_ENV.items()
            }
        )
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                result = self._attempt(step, argv, env)
            except TransientStepError as error:
                if attempt > step.retry.limit:
                    return self._failed(step, argv, started, attempt, error)
                delay = step.retry.delay(attempt)
                logger.warning(
                    "event=step_retry step=%s attempt=%d delay=%.0f",
                    step.name,
                    attempt,
                    delay,
                )
                self.sleep(delay)
                continue
            except StepFailedError as error:
                return self._failed(step, argv, started, attempt, error)
            outputs[step.name] = result.outputs
            return StepRecord(
                step.name,
                StepStatus.SUCCEEDED,
                result.argv,
                time.monotonic() - started,
                attempt,
                result.result,
            )

    def _attempt(self, step: Step, argv: list[str], env: dict[str, str]) -> StepResult:
        return run_step(
            step,
            argv,
            env=env,
            cwd=self.workdir,
            stdout_sink=self.stdout_sink,
            stderr_sink=self.stderr_sink,
        )

    @staticmethod
    def _failed(
        step: Step,
        argv: list[str],
        started: float,
        attempts: int,
        error: StepFailedError,
    ) -> StepRecord:
        return StepRecord(
            step.name,
            StepStatus.FAILED,
            argv,
            time.monotonic() - started,
            attempts,
            error=str(error),
        )


@dataclass(frozen=True)
class RegistryState:
    """Where the aliases of the registered model point (None: unset)."""

    champion: str | None
    challenger: str | None
    previous: str | None
    versions: int


def registry_state(tracking_uri: str) -> RegistryState:
    """Read the model's aliases and version count from the tracking store."""
    from cloudguard_model import names
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        model = client.get_registered_model(names.MODEL_NAME)
    except MlflowException:
        return RegistryState(None, None, None, 0)
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    versions = client.search_model_versions(f"name='{names.MODEL_NAME}'")
    return RegistryState(
        aliases.get(names.ALIAS_CHAMPION),
        aliases.get(names.ALIAS_CHALLENGER),
        aliases.get(names.ALIAS_PREVIOUS),
        len(versions),
    )


RAW_OBJECT_KEY: Final = "incoming/"


def run_in_sandbox(
    sandbox: "Sandbox",
    *,
    data: Path,
    run_key: str,
    on_step: StepEvent | None = None,
    stdout_sink: LineSink | None = None,
    stderr_sink: LineSink | None = None,
) -> PipelineRun:
    """Upload `data` as the newest raw object, then run every step on the sandbox."""
    from cloudguard_model import names

    prefix = f"s3://{names.DEFAULT_RAW_BUCKET}/{RAW_OBJECT_KEY}"
    sandbox.upload(data, prefix + data.name)
    runner = LocalRunner(
        sandbox.params(run_key, data_uri=prefix),
        env=sandbox.env(),
        workdir=sandbox.workdir,
        on_step=on_step,
        stdout_sink=stdout_sink,
        stderr_sink=stderr_sink,
    )
    return runner.run()


def promoted(run: PipelineRun) -> bool:
    """True when this run's promote step ran and moved the champion."""
    try:
        record = run.record("promote")
    except KeyError:
        return False
    return (
        record.status is StepStatus.SUCCEEDED and record.result.get("promoted") is True
    )


def champion_metrics(tracking_uri: str) -> dict[str, float]:
    """Metrics logged by the training run of the current champion ({} if none)."""
    from cloudguard_model import names
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(
            names.MODEL_NAME, names.ALIAS_CHAMPION
        )
    except MlflowException:
        return {}
    if not version.run_id:
        return {}
    return dict(client.get_run(version.run_id).data.metrics)
