"""Render the step list as an Argo WorkflowTemplate and the CronWorkflow that runs it.

The manifests are built with Hera from `spec.STEPS` and `spec.PARAMETERS`
only; nothing here decides what a step does. The platform program loads the
rendered YAML files and overrides, per stack, the schedule, timezone,
namespace, images, service account and parameter values.

Each DAG task runs the step harness (`cloudguard pipeline step NAME -- ...`)
around the step's own command, because Argo reads output parameters from
files while our commands print their result as a JSON line (decision 0501).
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from hera.workflows import (
    DAG,
    Container,
    CronWorkflow,
    EmptyDirVolume,
    Env,
    Parameter,
    Resources,
    RetryStrategy,
    Task,
    WorkflowTemplate,
)
from hera.workflows.models import (
    Backoff,
    Capabilities,
    IntOrString,
    PodGC,
    PodSecurityContext,
    Quantity,
    SeccompProfile,
    SecurityContext,
    TTLStrategy,
    ValueFrom,
    WorkflowTemplateRef,
)
from hera.workflows.models.io.argoproj.workflow import v1alpha1 as argo
from pydantic import BaseModel

from cloudguard_pipelines import __version__
from cloudguard_pipelines.errors import SpecError
from cloudguard_pipelines.spec import (
    OUTPUTS_DIR,
    PARAMETERS,
    STEP_ENV,
    STEPS,
    TRANSIENT_EXIT_CODE,
    Step,
    check_spec,
    placeholders,
)

TEMPLATE_FILE: Final = "workflow-template.yaml"
CRON_FILE: Final = "cron-workflow.yaml"

_PLACEHOLDER = re.compile(
    r"\{(?:params\.(?P<param>[a-z][a-z0-9-]*)"
    r"|steps\.(?P<step>[a-z][a-z0-9-]*)\.(?P<key>[a-z][a-z0-9_]*))\}"
)

# The transient-only retry rule, in Argo's expression language: the pod errored
# (Argo status Error, not Failed) or the step itself said "try again".
_RETRY_EXPRESSION: Final = (
    f'lastRetry.status == "Error" || asInt(lastRetry.exitCode) == {TRANSIENT_EXIT_CODE}'
)


@dataclass(frozen=True)
class RenderSettings:
    """What the rendered manifests default to; the platform overrides per stack."""

    name: str = "cloudguard-retrain"
    namespace: str = "cloudguard"
    image: str = f"cloudguard/trainer:{__version__}"
    service_account: str = "cloudguard-pipeline"
    """Bound to the trainer's IAM role through IRSA by the platform stack."""
    schedule: str = "0 3 * * *"
    timezone: str = "Etc/UTC"
    run_as_user: int = 10001
    workflow_deadline_seconds: int = 4 * 3600
    ttl_after_success_seconds: int = 24 * 3600
    ttl_after_failure_seconds: int = 7 * 24 * 3600


def input_name(
    param: str | None, step: str | None = None, key: str | None = None
) -> str:
    """Name of the template input that carries a parameter or a step output."""
    if param is not None:
        return param
    return f"{step}-{key}".replace("_", "-")


def to_argo(text: str) -> str:
    """Rewrite spec placeholders as references to the template's inputs."""

    def reference(match: re.Match[str]) -> str:
        name = input_name(match["param"], match["step"], match["key"])
        return f"{{{{inputs.parameters.{name}}}}}"

    return _PLACEHOLDER.sub(reference, text)


def harness_args(step: Step) -> list[str]:
    """The container args: the harness, then the step's own command."""
    return [
        "pipeline",
        "step",
        step.name,
        "--outputs-dir",
        OUTPUTS_DIR,
        "--",
        *(to_argo(arg) for arg in step.argv),
    ]


def _inputs_of(step: Step) -> dict[str, str]:
    """Template input name -> the DAG expression that feeds it, in first-use order."""
    inputs: dict[str, str] = {}
    for text in (*step.argv, *STEP_ENV.values()):
        for name, key in placeholders(text):
            if key is None:
                inputs[input_name(name)] = f"{{{{workflow.parameters.{name}}}}}"
            else:
                source = f"{{{{tasks.{name}.outputs.parameters.{key}}}}}"
                inputs[input_name(None, name, key)] = source
    return inputs


def _container_security() -> SecurityContext:
    return SecurityContext(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        privileged=False,
        capabilities=Capabilities(drop=["ALL"]),
        seccomp_profile=SeccompProfile(type="RuntimeDefault"),
    )


def _tmp_volume() -> EmptyDirVolume:
    """The only writable place in the container (read-only root file system)."""
    return EmptyDirVolume(
        name="tmp",
        mount_path="/tmp",  # noqa: S108 - an emptyDir of the pod's own
        size_limit=Quantity("1Gi"),
    )


def _step_template(step: Step, settings: RenderSettings) -> Container:
    env = [Env(name="HOME", value="/tmp")]  # noqa: S108 - the emptyDir
    env += [Env(name=name, value=to_argo(value)) for name, value in STEP_ENV.items()]
    resources = step.resources
    return Container(
        name=step.name,
        image=settings.image,
        image_pull_policy="IfNotPresent",
        command=["cloudguard"],
        args=harness_args(step),
        env=env,
        inputs=[Parameter(name=name) for name in _inputs_of(step)],
        outputs=[
            Parameter(name=key, value_from=ValueFrom(path=f"{OUTPUTS_DIR}/{key}"))
            for key in step.outputs
        ],
        resources=Resources(
            cpu_request=resources.cpu_request,
            cpu_limit=resources.cpu_limit,
            memory_request=resources.memory_request,
            memory_limit=resources.memory_limit,
            ephemeral_request=resources.ephemeral_request,
            ephemeral_limit=resources.ephemeral_limit,
        ),
        security_context=_container_security(),
        volumes=[_tmp_volume()],
        active_deadline_seconds=step.deadline_seconds,
        retry_strategy=RetryStrategy(
            limit=step.retry.limit,
            retry_policy="Always",
            expression=_RETRY_EXPRESSION,
            backoff=Backoff(
                duration=f"{step.retry.backoff_seconds}s",
                factor=IntOrString(root=step.retry.factor),
                cap=f"{step.retry.max_backoff_seconds}s",
            ),
        ),
        labels={"app.kubernetes.io/component": f"pipeline-{step.name}"},
    )


def _labels(settings: RenderSettings) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "cloudguard",
        "app.kubernetes.io/component": "retrain-pipeline",
        "app.kubernetes.io/part-of": "cloudguard",
        "app.kubernetes.io/version": __version__,
    }


def build_workflow_template(settings: RenderSettings | None = None) -> WorkflowTemplate:
    """The WorkflowTemplate: one container template per step, wired as a DAG."""
    settings = settings or RenderSettings()
    check_spec()
    with WorkflowTemplate(
        name=settings.name,
        namespace=settings.namespace,
        labels=_labels(settings),
        entrypoint="retrain",
        service_account_name=settings.service_account,
        active_deadline_seconds=settings.workflow_deadline_seconds,
        pod_gc=PodGC(strategy="OnPodSuccess", delete_delay_duration="10m"),
        ttl_strategy=TTLStrategy(
            seconds_after_success=settings.ttl_after_success_seconds,
            seconds_after_failure=settings.ttl_after_failure_seconds,
        ),
        security_context=PodSecurityContext(
            run_as_non_root=True,
            run_as_user=settings.run_as_user,
            run_as_group=settings.run_as_user,
            fs_group=settings.run_as_user,
            seccomp_profile=SeccompProfile(type="RuntimeDefault"),
        ),
        arguments=[
            Parameter(name=p.name, description=p.description)
            if p.default is None
            else Parameter(name=p.name, description=p.description, value=p.default)
            for p in PARAMETERS
        ],
    ) as template:
        containers = {step.name: _step_template(step, settings) for step in STEPS}
        with DAG(name="retrain"):
            previous: str | None = None
            for step in STEPS:
                when = None
                if step.when is not None:
                    source = (
                        f"tasks.{step.when.step}.outputs.parameters.{step.when.key}"
                    )
                    when = f"{{{{{source}}}}} == {step.when.equals}"
                Task(
                    name=step.name,
                    template=containers[step.name],
                    arguments=[
                        Parameter(name=name, value=value)
                        for name, value in _inputs_of(step).items()
                    ],
                    depends=previous,
                    when=when,
                )
                previous = step.name
    return template


def build_cron_workflow(settings: RenderSettings | None = None) -> CronWorkflow:
    """The CronWorkflow: runs the template on schedule, keyed by scheduled time."""
    settings = settings or RenderSettings()
    return CronWorkflow(
        name=settings.name,
        namespace=settings.namespace,
        labels=_labels(settings),
        schedules=[settings.schedule],
        timezone=settings.timezone,
        concurrency_policy="Forbid",
        starting_deadline_seconds=3600,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=5,
        service_account_name=settings.service_account,
        workflow_template_ref=WorkflowTemplateRef(name=settings.name),
        arguments=[Parameter(name="run-key", value="{{workflow.scheduledTime}}")],
    )


def manifests(settings: RenderSettings | None = None) -> dict[str, dict[str, Any]]:
    """File name -> manifest, validated against Argo's schema."""
    rendered = {
        TEMPLATE_FILE: build_workflow_template(settings).to_dict(),
        CRON_FILE: build_cron_workflow(settings).to_dict(),
    }
    for name, manifest in rendered.items():
        validate_manifest(manifest, source=name)
    return rendered


def to_yaml(manifest: dict[str, Any]) -> str:
    """Stable YAML: keys in the order built, block style, no aliases."""
    header = (
        "# Rendered by `cloudguard pipeline render`; edit pipelines/, not this file.\n"
    )
    body: str = yaml.safe_dump(manifest, sort_keys=False, width=88)
    return header + body


def render(out_dir: Path, settings: RenderSettings | None = None) -> list[Path]:
    """Write the WorkflowTemplate and CronWorkflow YAML files into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, manifest in manifests(settings).items():
        path = out_dir / name
        path.write_text(to_yaml(manifest), encoding="utf-8")
        written.append(path)
    return written


_MODELS: Final[dict[str, type[BaseModel]]] = {
    "WorkflowTemplate": argo.WorkflowTemplate,
    "CronWorkflow": argo.CronWorkflow,
}


def validate_manifest(manifest: dict[str, Any], *, source: str = "manifest") -> None:
    """Check a manifest against Argo's schema (Hera's generated models).

    Hera's models ignore unknown fields, so a round trip that loses or changes
    anything is reported too: a misspelt field cannot hide.
    """
    kind = manifest.get("kind")
    if kind not in _MODELS:
        raise SpecError(f"{source}: kind {kind!r} is not one of {sorted(_MODELS)}")
    if manifest.get("apiVersion") != "argoproj.io/v1alpha1":
        raise SpecError(f"{source}: apiVersion must be argoproj.io/v1alpha1")
    try:
        model = _MODELS[kind].model_validate(manifest)
    except ValueError as error:
        raise SpecError(f"{source}: not a valid {kind}: {error}") from error
    again = model.model_dump(exclude_none=True, by_alias=True)
    if again != manifest:
        raise SpecError(
            f"{source}: a field unknown to Argo's {kind} schema at "
            f"{_diff(manifest, again)}"
        )


def _diff(original: Any, parsed: Any, path: str = "") -> str:
    """The first path where a round trip through the schema changed the value."""
    if isinstance(original, dict) and isinstance(parsed, dict):
        for key in original:
            if key not in parsed:
                return f"{path}.{key}"
            found = _diff(original[key], parsed[key], f"{path}.{key}")
            if found:
                return found
        return ""
    if isinstance(original, list) and isinstance(parsed, list):
        for index, (left, right) in enumerate(zip(original, parsed, strict=False)):
            found = _diff(left, right, f"{path}[{index}]")
            if found:
                return found
        return "" if len(original) == len(parsed) else f"{path} (length)"
    return "" if original == parsed else path or "."
