"""The training pipeline, defined once.

Every consumer reads this module: the Argo renderer turns `STEPS` into a
WorkflowTemplate, the local runner executes `STEPS` in order on this machine,
and a test checks that the rendered template still says what `STEPS` says.

A step is a `cloudguard` CLI command. Its arguments are strings that may hold
two kinds of placeholder, resolved by whoever runs the step:

- `{params.NAME}`: a pipeline parameter (an Argo workflow parameter);
- `{steps.STEP.KEY}`: the value of KEY in the JSON that an earlier step printed
  as the last line of its stdout (an Argo output parameter).

Values travel between steps only through these placeholders, never through a
shared disk.
"""

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from cloudguard_model import names

from cloudguard_pipelines.errors import SpecError

TRANSIENT_EXIT_CODE: Final = 75
"""Exit code of a step that failed for a reason worth retrying (EX_TEMPFAIL)."""

OUTPUTS_DIR: Final = "/tmp/outputs"  # noqa: S108 - an emptyDir in the pod
"""Where the in-cluster step harness writes one file per output for Argo."""

_PLACEHOLDER = re.compile(
    r"\{(?:params\.(?P<param>[a-z][a-z0-9-]*)"
    r"|steps\.(?P<step>[a-z][a-z0-9-]*)\.(?P<key>[a-z][a-z0-9_]*))\}"
)


@dataclass(frozen=True)
class PipelineParameter:
    """One input of the whole pipeline (an Argo workflow parameter)."""

    name: str
    description: str
    default: str | None = None
    """Value used in the cluster when the caller passes none; None: required."""


@dataclass(frozen=True)
class StepResources:
    """Kubernetes requests and limits of a step's container."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    ephemeral_request: str = "256Mi"
    ephemeral_limit: str = "1Gi"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff, for transient failures only.

    A failure is transient when the pod errored (node loss, eviction, executor
    trouble: Argo status `Error`) or the step exited with TRANSIENT_EXIT_CODE.
    A step that ran and said no (bad data, rejected model) is never retried.
    """

    limit: int = 3
    backoff_seconds: int = 15
    factor: int = 2
    max_backoff_seconds: int = 300

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return float(
            min(
                self.backoff_seconds * self.factor ** (attempt - 1),
                self.max_backoff_seconds,
            )
        )


@dataclass(frozen=True)
class Condition:
    """Run a step only when an earlier step's output equals a value."""

    step: str
    key: str
    equals: str


@dataclass(frozen=True)
class Step:
    """One pipeline step: a `cloudguard` command and how to run it."""

    name: str
    summary: str
    argv: tuple[str, ...]
    """Arguments after `cloudguard`, with placeholders."""
    outputs: tuple[str, ...]
    """Keys of the step's JSON result that later steps may use."""
    resources: StepResources
    deadline_seconds: int
    """Wall-clock limit of one attempt (Argo activeDeadlineSeconds)."""
    accepted_exit_codes: frozenset[int] = frozenset({0})
    """Exit codes that mean the step did its job (a rejection is not an error)."""
    optional_flags: tuple[str, ...] = ()
    """Flags dropped, with their value, when the value resolves to ''."""
    when: Condition | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def placeholders(text: str) -> Iterator[tuple[str, str | None]]:
    """Yield (param or step, output key or None) for each placeholder in text."""
    for match in _PLACEHOLDER.finditer(text):
        if match["param"]:
            yield match["param"], None
        else:
            yield match["step"], match["key"]


def substitute(
    text: str,
    params: Mapping[str, str],
    outputs: Mapping[str, Mapping[str, str]],
) -> str:
    """Replace every placeholder in text with its value; unknown names raise."""

    def value(match: re.Match[str]) -> str:
        if match["param"]:
            if match["param"] not in params:
                raise SpecError(f"{text!r}: no pipeline parameter {match['param']!r}")
            return params[match["param"]]
        step, key = match["step"], match["key"]
        if key not in outputs.get(step, {}):
            raise SpecError(
                f"{text!r}: step {step!r} has produced no output {key!r} yet; "
                "list the step earlier or declare the key in its outputs"
            )
        return outputs[step][key]

    return _PLACEHOLDER.sub(value, text)


PARAMETERS: Final = (
    PipelineParameter(
        "data-uri",
        "Raw data to train on: an s3:// object, or a prefix ending in '/' whose "
        "newest object is taken.",
        f"s3://{names.DEFAULT_RAW_BUCKET}/incoming/",
    ),
    PipelineParameter(
        "snapshot-prefix",
        "Where ingest writes the immutable, content-addressed data snapshot.",
        f"s3://{names.DEFAULT_RAW_BUCKET}/snapshots/",
    ),
    PipelineParameter(
        "evaluation-uri",
        "The frozen evaluation set; created once from the first snapshot, then "
        "only read.",
        f"s3://{names.DEFAULT_ARTIFACT_BUCKET}/evaluation/ai4i-frozen.csv",
    ),
    PipelineParameter(
        "artifact-bucket",
        "Bucket for evaluation reports and gate decisions of each run.",
        names.DEFAULT_ARTIFACT_BUCKET,
    ),
    PipelineParameter(
        "tracking-uri",
        "MLflow tracking server (in-cluster service; the stack overrides it).",
        "http://mlflow.cloudguard.svc.cluster.local:5000",
    ),
    PipelineParameter(
        "serving-reload-url",
        "POSTed after a promotion so the service reloads at once; '' for none.",
        "http://cloudguard-serving.cloudguard.svc.cluster.local/admin/reload",
    ),
    PipelineParameter(
        "run-key",
        "Identity of this run. The CronWorkflow passes its scheduled time, so a "
        "run that fires twice trains and promotes once. Required.",
    ),
)

STEP_ENV: Final = {
    names.ENV_TRACKING_URI: "{params.tracking-uri}",
    names.ENV_ARTIFACT_BUCKET: "{params.artifact-bucket}",
}
"""Environment every step gets; values may hold placeholders."""

_REPORTS = "s3://{params.artifact-bucket}/pipeline-runs/{params.run-key}"

STEPS: Final = (
    Step(
        name="ingest",
        summary="Pull the newest raw data and snapshot it with its hash",
        argv=(
            "ingest",
            "--source",
            "{params.data-uri}",
            "--snapshot-prefix",
            "{params.snapshot-prefix}",
            "--evaluation-uri",
            "{params.evaluation-uri}",
            "--json",
        ),
        outputs=("snapshot_uri", "sha256", "rows", "evaluation_uri"),
        resources=StepResources("250m", "1", "512Mi", "1Gi"),
        deadline_seconds=900,
    ),
    Step(
        name="validate",
        summary="Check the snapshot's schema, ranges and labels",
        argv=("data", "validate", "--data", "{steps.ingest.snapshot_uri}", "--json"),
        outputs=("ok", "rows"),
        resources=StepResources("250m", "1", "512Mi", "2Gi"),
        deadline_seconds=900,
    ),
    Step(
        name="train",
        summary="Train, log and register a challenger (once per run key)",
        argv=(
            "train",
            "--data",
            "{steps.ingest.snapshot_uri}",
            "--evaluation",
            "{steps.ingest.evaluation_uri}",
            "--run-key",
            "{params.run-key}",
            "--json",
        ),
        outputs=("run_id", "version", "model_uri", "reused"),
        resources=StepResources("1", "2", "2Gi", "4Gi", "512Mi", "2Gi"),
        deadline_seconds=3600,
    ),
    Step(
        name="evaluate",
        summary="Score challenger and champion on the frozen evaluation set",
        argv=(
            "evaluate",
            "--evaluation",
            "{steps.ingest.evaluation_uri}",
            "--challenger",
            "{steps.train.version}",
            "--out",
            _REPORTS + "/evaluation.json",
            "--json",
        ),
        outputs=(),
        resources=StepResources("500m", "1", "1Gi", "2Gi"),
        deadline_seconds=1200,
    ),
    Step(
        name="gate",
        summary="Apply the promotion policy to the evaluation report",
        argv=(
            "gate",
            "--report",
            _REPORTS + "/evaluation.json",
            "--out",
            _REPORTS + "/decision.json",
            "--json",
        ),
        outputs=("promoted",),
        resources=StepResources("100m", "500m", "512Mi", "1Gi"),
        deadline_seconds=600,
        accepted_exit_codes=frozenset({0, 3}),
    ),
    Step(
        name="promote",
        summary="Move the champion alias and nudge serving to reload",
        argv=(
            "promote",
            "--decision",
            _REPORTS + "/decision.json",
            "--run-key",
            "{params.run-key}",
            "--notify-url",
            "{params.serving-reload-url}",
            "--json",
        ),
        outputs=("promoted",),
        resources=StepResources("100m", "500m", "512Mi", "1Gi"),
        deadline_seconds=600,
        optional_flags=("--notify-url",),
        when=Condition("gate", "promoted", "true"),
    ),
)


def step_named(name: str) -> Step:
    """The step called `name`; SpecError names the known steps otherwise."""
    for step in STEPS:
        if step.name == name:
            return step
    known = ", ".join(step.name for step in STEPS)
    raise SpecError(f"no pipeline step {name!r}; the steps are {known}")


def check_spec(steps: Sequence[Step] = STEPS) -> None:
    """Refuse a step list that refers to unknown parameters or later outputs."""
    param_names = {parameter.name for parameter in PARAMETERS}
    produced: dict[str, set[str]] = {}
    for step in steps:
        texts = [*step.argv, *STEP_ENV.values()]
        if step.when is not None:
            texts.append(f"{{steps.{step.when.step}.{step.when.key}}}")
        for text in texts:
            for name, key in placeholders(text):
                if key is None and name not in param_names:
                    raise SpecError(f"step {step.name!r}: unknown parameter {name!r}")
                if key is not None and key not in produced.get(name, set()):
                    raise SpecError(
                        f"step {step.name!r} uses {name}.{key}, which no earlier "
                        "step declares as an output"
                    )
        produced[step.name] = set(step.outputs)
