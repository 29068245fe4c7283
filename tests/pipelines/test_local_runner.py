"""The local runner on embedded S3 and a SQLite MLflow store: it runs the step
list as the CronWorkflow does, and a duplicate scheduled run promotes nothing."""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cloudguard_pipelines.errors import CloudGuardPipelineError
from cloudguard_pipelines.harness import drop_empty_optional, output_value
from cloudguard_pipelines.local import (
    PipelineRun,
    RegistryState,
    StepStatus,
    check_local_params,
    plan,
    promoted,
    registry_state,
    run_in_sandbox,
)
from cloudguard_pipelines.sandbox import Sandbox
from cloudguard_pipelines.spec import STEPS, substitute

RUN_KEY = "2026-12-04T03:00:00Z"
CLOUDGUARD = str(Path(sys.executable).with_name("cloudguard"))


@dataclass
class Runs:
    first: PipelineRun
    after_first: RegistryState
    second: PipelineRun
    after_second: RegistryState
    bad: PipelineRun
    after_bad: RegistryState


@pytest.fixture(scope="module")
def slice_csv(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Path:
    """The first 6,000 readings: enough failures for the policy's floors."""
    lines = dataset_path.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path_factory.mktemp("data") / "ai4i-first-6000.csv"
    path.write_text("".join(lines[:6001]), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, slice_csv: Path) -> Runs:
    """The same scheduled time twice, then bad data, in one sandbox."""
    workdir = tmp_path_factory.mktemp("pipeline")
    with Sandbox(workdir) as sandbox:
        first = run_in_sandbox(sandbox, data=slice_csv, run_key=RUN_KEY)
        after_first = registry_state(sandbox.tracking_uri)
        second = run_in_sandbox(sandbox, data=slice_csv, run_key=RUN_KEY)
        after_second = registry_state(sandbox.tracking_uri)
        bad_csv = _with_negative_torque(slice_csv, workdir / "bad.csv")
        bad = run_in_sandbox(sandbox, data=bad_csv, run_key="2026-12-05T03:00:00Z")
        after_bad = registry_state(sandbox.tracking_uri)
    return Runs(first, after_first, second, after_second, bad, after_bad)


def _with_negative_torque(source: Path, target: Path) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    header, first = lines[0], lines[1].split(",")
    first[6] = "-3.0"  # Torque [Nm] below zero
    target.write_text(header + ",".join(first) + "".join(lines[2:]), encoding="utf-8")
    return target


@pytest.mark.slow
def test_first_run_runs_every_step_and_promotes(runs: Runs) -> None:
    run = runs.first

    assert [r.step for r in run.records] == [step.name for step in STEPS]
    assert all(r.status is StepStatus.SUCCEEDED for r in run.records), [
        (r.step, str(r.status), r.error or r.result.get("reason")) for r in run.records
    ]
    assert promoted(run)
    assert runs.after_first.champion == run.record("train").result["version"]


@pytest.mark.slow
def test_runner_executes_the_planned_commands(runs: Runs) -> None:
    run = runs.first
    outputs: dict[str, dict[str, str]] = {}

    for (step, planned), record in zip(plan(run.params), run.records, strict=True):
        expected = drop_empty_optional(
            step, [substitute(arg, {}, outputs) for arg in planned]
        )
        assert record.argv == expected
        outputs[step.name] = {k: output_value(record.result[k]) for k in step.outputs}


@pytest.mark.slow
def test_same_scheduled_time_again_trains_and_promotes_nothing(
    runs: Runs,
) -> None:
    second = runs.second

    assert second.succeeded, [(r.step, r.error) for r in second.records]
    assert second.record("train").result["reused"] is True
    assert (
        second.record("train").result["version"]
        == runs.first.record("train").result["version"]
    )
    assert not promoted(second)
    assert runs.after_second == runs.after_first
    assert runs.after_second.versions == 1


@pytest.mark.slow
def test_bad_data_stops_the_run_at_validate_and_moves_nothing(
    runs: Runs,
) -> None:
    statuses = {r.step: r.status for r in runs.bad.records}

    assert statuses == {"ingest": StepStatus.SUCCEEDED, "validate": StepStatus.FAILED}
    assert "Torque" in runs.bad.record("validate").error
    assert runs.after_bad == runs.after_first


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("tracking-uri", "http://mlflow.example.com:5000"),
        ("tracking-uri", "postgresql://db.internal/mlflow"),
        ("serving-reload-url", "http://10.0.0.8/admin/reload"),
    ],
)
def test_local_run_refuses_anything_off_this_machine(name: str, value: str) -> None:
    params = dict.fromkeys(("data-uri", "snapshot-prefix", "evaluation-uri"), "x")
    params |= {"artifact-bucket": "b", "run-key": RUN_KEY, "serving-reload-url": ""}
    params["tracking-uri"] = "sqlite:////tmp/mlflow.db"
    params[name] = value

    with pytest.raises(CloudGuardPipelineError, match=name):
        check_local_params(params, {})


def test_local_run_refuses_s3_without_a_loopback_endpoint() -> None:
    params = {
        "data-uri": "s3://raw/incoming/",
        "snapshot-prefix": "s3://raw/snapshots/",
        "evaluation-uri": "s3://artifacts/e.csv",
        "artifact-bucket": "artifacts",
        "tracking-uri": "sqlite:////tmp/mlflow.db",
        "serving-reload-url": "",
        "run-key": RUN_KEY,
    }

    with pytest.raises(CloudGuardPipelineError, match="local S3"):
        check_local_params(params, {})
    with pytest.raises(CloudGuardPipelineError, match="AWS_ENDPOINT_URL_S3"):
        check_local_params(params, {"AWS_ENDPOINT_URL_S3": "https://s3.amazonaws.com"})
    check_local_params(params, {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:5000"})


@pytest.mark.slow
def test_pipeline_command_stops_at_bad_data_and_says_where(
    tmp_path: Path, dataset_path: Path
) -> None:
    small = tmp_path / "small.csv"
    lines = dataset_path.read_text(encoding="utf-8").splitlines(keepends=True)
    small.write_text("".join(lines[:400]), encoding="utf-8")
    bad = _with_negative_torque(small, tmp_path / "bad.csv")

    options = ["--data", str(bad), "--workdir", str(tmp_path / "work")]
    options += ["--scheduled-time", RUN_KEY, "--json"]
    done = subprocess.run(
        [CLOUDGUARD, "pipeline", "run", "--local", *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 1
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # On a first run ingest freezes the evaluation set from this snapshot, and
    # refuses to freeze bad data; later runs would stop at validate instead.
    assert summary["failed_step"] == "ingest", summary["error"]
    assert summary["steps"] == {"ingest": "failed"}
    assert "Torque" in summary["error"]
    assert "-3.0" in summary["error"]
    assert summary["champion"] is None
