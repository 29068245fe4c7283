"""The rendered Argo manifests: fresh, schema-valid, safe, and the same pipeline
as the local runner's step list."""

import copy
import itertools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudguard_pipelines import render
from cloudguard_pipelines.errors import SpecError
from cloudguard_pipelines.local import plan
from cloudguard_pipelines.spec import STEPS, Step, StepResources, check_spec
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "pipelines"
AGREED_PARAMETERS = {
    "data-uri",
    "snapshot-prefix",
    "evaluation-uri",
    "tracking-uri",
    "serving-reload-url",
    "run-key",
}
_INPUT = re.compile(r"\{\{inputs\.parameters\.([a-z0-9-]+)\}\}")
_WORKFLOW_PARAM = re.compile(r"^\{\{workflow\.parameters\.([a-z0-9-]+)\}\}$")
_TASK_OUTPUT = re.compile(
    r"^\{\{tasks\.([a-z0-9-]+)\.outputs\.parameters\.([a-z0-9_]+)\}\}$"
)


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load(render.TEMPLATE_FILE)


@pytest.fixture(scope="module")
def cron() -> dict[str, Any]:
    return _load(render.CRON_FILE)


def _templates(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in manifest["spec"]["templates"]}


def _dag_tasks(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    entry = _templates(manifest)[manifest["spec"]["entrypoint"]]
    return entry["dag"]["tasks"]


def _as_placeholder(source: str) -> str:
    """A DAG argument expression written in the step list's placeholder syntax."""
    if match := _WORKFLOW_PARAM.match(source):
        return f"{{params.{match[1]}}}"
    if match := _TASK_OUTPUT.match(source):
        return f"{{steps.{match[1]}.{match[2]}}}"
    raise AssertionError(f"unexpected DAG argument {source!r}")


def test_committed_manifests_are_what_render_writes_now(tmp_path: Path) -> None:
    written = render.render(tmp_path)

    assert sorted(path.name for path in written) == sorted(
        path.name for path in DEPLOY.glob("*.yaml")
    )
    for path in written:
        committed = (DEPLOY / path.name).read_text(encoding="utf-8")
        assert path.read_text(encoding="utf-8") == committed, (
            f"deploy/pipelines/{path.name} is stale: run "
            "`cloudguard pipeline render --out deploy/pipelines`"
        )


def test_render_command_writes_both_files(tmp_path: Path) -> None:
    from cloudguard_cli.main import app

    result = CliRunner().invoke(app, ["pipeline", "render", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    written = {p.name for p in tmp_path.iterdir()}
    assert written == {render.TEMPLATE_FILE, render.CRON_FILE}


@pytest.mark.parametrize("name", [render.TEMPLATE_FILE, render.CRON_FILE])
def test_committed_manifests_pass_argo_schema(name: str) -> None:
    render.validate_manifest(_load(name), source=name)


def test_dag_runs_the_local_runners_steps_with_the_same_arguments(
    template: dict[str, Any],
) -> None:
    templates = _templates(template)
    tasks = _dag_tasks(template)
    planned = plan()

    assert [task["name"] for task in tasks] == [step.name for step, _ in planned]
    for task, (step, argv) in zip(tasks, planned, strict=True):
        container = templates[task["template"]]["container"]
        args = container["args"]
        assert container["command"] == ["cloudguard"]
        assert args[:3] == ["pipeline", "step", step.name]
        rendered_argv = args[args.index("--") + 1 :]
        feeds = {
            arg["name"]: _as_placeholder(arg["value"])
            for arg in task.get("arguments", {}).get("parameters", [])
        }
        resolved = [_INPUT.sub(lambda m, f=feeds: f[m[1]], a) for a in rendered_argv]
        assert resolved == argv, f"step {step.name} drifted from the step list"


def test_dag_is_a_chain_in_step_order_with_the_gate_condition(
    template: dict[str, Any],
) -> None:
    tasks = _dag_tasks(template)

    assert "depends" not in tasks[0]
    for before, task in itertools.pairwise(tasks):
        assert task["depends"] == before["name"]
    conditions = {task["name"]: task.get("when") for task in tasks}
    for step in STEPS:
        if step.when is None:
            assert conditions[step.name] is None
        else:
            source = f"tasks.{step.when.step}.outputs.parameters.{step.when.key}"
            assert conditions[step.name] == f"{{{{{source}}}}} == {step.when.equals}"


def test_every_step_publishes_its_declared_outputs_from_files(
    template: dict[str, Any],
) -> None:
    templates = _templates(template)
    for step in STEPS:
        published = templates[step.name].get("outputs", {}).get("parameters", [])
        assert [p["name"] for p in published] == list(step.outputs)
        for parameter in published:
            assert parameter["valueFrom"]["path"].startswith("/tmp/outputs/")


def test_step_containers_are_locked_down_and_bounded(template: dict[str, Any]) -> None:
    for step in STEPS:
        spec = _templates(template)[step.name]
        container = spec["container"]
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind])
        image = container["image"]
        assert ":" in image
        assert not image.endswith(":latest")
        assert spec["activeDeadlineSeconds"] == step.deadline_seconds
        retry = spec["retryStrategy"]
        assert retry["limit"] == step.retry.limit
        assert retry["backoff"]["duration"]
        assert retry["backoff"]["factor"]
        assert "lastRetry.status" in retry["expression"]
        assert "lastRetry.exitCode" in retry["expression"]
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert "/tmp" in mounts


def test_workflow_runs_as_a_named_account_with_gc_and_deadline(
    template: dict[str, Any],
) -> None:
    spec = template["spec"]

    assert spec["serviceAccountName"] not in {"", "default"}
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] > 0
    assert spec["activeDeadlineSeconds"] > max(step.deadline_seconds for step in STEPS)
    assert spec["podGC"]["strategy"]
    assert spec["ttlStrategy"]["secondsAfterSuccess"] > 0
    assert spec["ttlStrategy"]["secondsAfterFailure"] > 0


def test_template_takes_the_agreed_parameters(template: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in template["spec"]["arguments"]["parameters"]}

    assert set(parameters) >= AGREED_PARAMETERS
    assert "value" not in parameters["run-key"], "run-key must be passed by the caller"


def test_cron_workflow_passes_its_scheduled_time_as_run_key(
    cron: dict[str, Any], template: dict[str, Any]
) -> None:
    spec = cron["spec"]
    workflow_spec = spec["workflowSpec"]

    assert workflow_spec["workflowTemplateRef"]["name"] == template["metadata"]["name"]
    assert workflow_spec["arguments"]["parameters"] == [
        {"name": "run-key", "value": "{{workflow.scheduledTime}}"}
    ]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["timezone"]
    assert spec["schedules"]
    assert workflow_spec["serviceAccountName"] == template["spec"]["serviceAccountName"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "templates", 0, "container", "securityContxt"), {}),
        (("spec", "activeDeadlineSeconds"), "two hours"),
        (("spec", "podGc"), {"strategy": "OnPodSuccess"}),
    ],
)
def test_schema_check_rejects_a_broken_manifest(
    template: dict[str, Any], path: tuple[Any, ...], value: Any
) -> None:
    broken = copy.deepcopy(template)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(SpecError):
        render.validate_manifest(broken)


def test_step_list_refuses_an_output_from_a_later_step() -> None:
    resources = StepResources("100m", "200m", "64Mi", "128Mi")
    argv = ("x", "{steps.late.value}")
    early = Step("early", "uses a later output", argv, (), resources, 60)
    late = Step("late", "produces it", ("y",), ("value",), resources, 60)

    with pytest.raises(SpecError, match=r"late\.value"):
        check_spec((early, late))


def test_step_list_refuses_an_unknown_parameter() -> None:
    resources = StepResources("100m", "200m", "64Mi", "128Mi")
    step = Step("one", "typo", ("x", "{params.data-url}"), (), resources, 60)

    with pytest.raises(SpecError, match="data-url"):
        check_spec((step,))
