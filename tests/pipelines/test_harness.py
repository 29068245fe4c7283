"""The step harness: what the cluster's containers and the local runner share."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cloudguard_pipelines.errors import StepFailedError
from cloudguard_pipelines.harness import (
    check_command,
    drop_empty_optional,
    is_transient,
    output_value,
    parse_result,
)
from cloudguard_pipelines.spec import TRANSIENT_EXIT_CODE, step_named

CLOUDGUARD = str(Path(sys.executable).with_name("cloudguard"))


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory: pytest.TempPathFactory, dataset_path: Path) -> Path:
    lines = dataset_path.read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path_factory.mktemp("data") / "first-1200.csv"
    path.write_text("".join(lines[:1201]), encoding="utf-8")
    return path


def _step(
    args: list[str], outputs: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """`cloudguard pipeline step NAME --outputs-dir OUTPUTS -- ARGV...`."""
    name, *argv = args
    harness = [CLOUDGUARD, "pipeline", "step", name, "--outputs-dir", str(outputs)]
    return subprocess.run(
        [*harness, "--", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )


def test_step_publishes_each_output_as_a_file(small_csv: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    argv = ["ingest", "--source", str(small_csv), "--snapshot-prefix"]
    argv += [f"{tmp_path}/snap/", "--evaluation-uri", str(tmp_path / "e.csv"), "--json"]

    done = _step(["ingest", *argv], outputs)

    assert done.returncode == 0, done.stderr
    step = step_named("ingest")
    assert {path.name for path in outputs.iterdir()} == {*step.outputs, "result.json"}
    assert (outputs / "rows").read_text() == "1200"
    assert Path((outputs / "snapshot_uri").read_text()).is_file()


def test_a_step_that_cannot_reach_s3_exits_transient(tmp_path: Path) -> None:
    # A port nothing listens on, on this machine: the connection is refused.
    argv = ["ingest", "--source", "s3://cloudguard-raw-data/incoming/"]
    argv += ["--snapshot-prefix", "s3://cloudguard-raw-data/snapshots/", "--json"]

    done = _step(["ingest", *argv], tmp_path, AWS_ENDPOINT_URL_S3="http://127.0.0.1:9")

    assert done.returncode == TRANSIENT_EXIT_CODE, done.stderr


def test_a_step_that_fails_on_its_input_is_not_retried(tmp_path: Path) -> None:
    argv = ["ingest", "--source", str(tmp_path / "missing.csv")]
    argv += ["--snapshot-prefix", f"{tmp_path}/snap/", "--json"]

    done = _step(["ingest", *argv], tmp_path / "out")

    assert done.returncode == 1
    assert "missing.csv" in done.stderr
    assert not (tmp_path / "out").exists()


def test_step_refuses_to_run_another_command(tmp_path: Path) -> None:
    done = _step(["ingest", "train", "--data", "x", "--json"], tmp_path)

    assert done.returncode == 1
    assert "cloudguard ingest" in done.stderr


def test_empty_optional_flag_is_dropped_with_its_value() -> None:
    promote = step_named("promote")
    argv = ["promote", "--decision", "d.json", "--notify-url", "", "--json"]

    assert drop_empty_optional(promote, argv) == [
        "promote",
        "--decision",
        "d.json",
        "--json",
    ]
    kept = ["promote", "--notify-url", "http://127.0.0.1:1/admin/reload"]
    assert drop_empty_optional(promote, kept) == kept


def test_required_flag_is_kept_even_when_empty() -> None:
    ingest = step_named("ingest")
    argv = ["ingest", "--source", "", "--json"]

    assert drop_empty_optional(ingest, argv) == argv


def test_result_is_the_last_json_line_after_any_table() -> None:
    gate = step_named("gate")
    stdout = [
        "check   value  pass",
        "pr_auc  0.91   yes",
        json.dumps({"promoted": False}),
    ]

    assert parse_result(gate, stdout, 3) == {"promoted": False}
    assert output_value(False) == "false"
    assert output_value(7) == "7"
    assert output_value("s3://b/k") == "s3://b/k"


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        ([], "printed nothing"),
        (["done"], "not JSON"),
        (["[1, 2]"], "not a JSON object"),
        (['{"decision": "no"}'], "lacks"),
    ],
)
def test_a_step_without_its_promised_result_fails(
    stdout: list[str], reason: str
) -> None:
    with pytest.raises(StepFailedError, match=reason):
        parse_result(step_named("gate"), stdout, 0)


def test_transient_means_exit_75_or_a_network_symptom() -> None:
    assert is_transient(TRANSIENT_EXIT_CODE, [])
    assert is_transient(1, ["botocore.exceptions.EndpointConnectionError: ..."])
    assert is_transient(1, ["HTTPConnectionPool(...): Max retries exceeded"])
    assert not is_transient(1, ["column `Torque [Nm]` row 17: -3.0 is below 0"])
    assert not is_transient(3, ["challenger rejected: pr_auc did not improve"])


def test_command_check_allows_two_word_commands() -> None:
    check_command(step_named("validate"), ["data", "validate", "--data", "x"])
    with pytest.raises(StepFailedError):
        check_command(step_named("validate"), ["data", "synth", "--rows", "3"])
