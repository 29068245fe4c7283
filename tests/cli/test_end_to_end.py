"""The main job through the `cloudguard` command, as a user drives it:
train -> promote -> serve -> predict, on a small slice of the real data, with a
real MLflow tracking server and moto's S3 server, both on 127.0.0.1."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloudguard_model import names
from cloudguard_pipelines.demo import (
    DemoReading,
    ServiceProcess,
    api_keys_setting,
    load_readings,
)
from cloudguard_pipelines.sandbox import BUCKETS
from mlflow_server import mlflow_server
from moto.server import ThreadedMotoServer

CLOUDGUARD = str(Path(sys.executable).with_name("cloudguard"))
# Both from the frozen evaluation set (the latest 20 % of the slice): never
# trained on.
HEAT_DISSIPATION_UDI = 4832
HEALTHY_UDIS = (4801, 4802, 5500)
API_KEY = "end-to-end-test-key-0123456789abcdefghij"


@dataclass
class Flow:
    train: dict[str, Any]
    promote: dict[str, Any]
    readings: list[DemoReading]
    predictions: dict[str, Any]
    unauthorised_status: int
    service_exit_code: int | None


def _cloudguard(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [CLOUDGUARD, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"cloudguard {args[0]}: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with the product's buckets."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    for bucket in BUCKETS:
        client.create_bucket(Bucket=bucket)
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def flow(
    tracking: Any,
    s3_endpoint: str,
    tmp_path_factory: pytest.TempPathFactory,
    dataset_path: Path,
) -> Flow:
    workdir = tmp_path_factory.mktemp("e2e")
    rows = dataset_path.read_text(encoding="utf-8").splitlines(keepends=True)
    data = workdir / "ai4i-first-6000.csv"
    data.write_text("".join(rows[:6001]), encoding="utf-8")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.upload_file(str(data), names.DEFAULT_RAW_BUCKET, "incoming/slice.csv")
    data_uri = f"s3://{names.DEFAULT_RAW_BUCKET}/incoming/slice.csv"
    evaluation = f"s3://{names.DEFAULT_ARTIFACT_BUCKET}/evaluation/slice.csv"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking.url,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        names.ENV_ARTIFACT_BUCKET: names.DEFAULT_ARTIFACT_BUCKET,
    }

    _cloudguard(
        env,
        workdir,
        "data",
        "freeze-evaluation",
        "--data",
        data_uri,
        "--out",
        evaluation,
        "--json",
    )
    trained = _cloudguard(
        env,
        workdir,
        "train",
        "--data",
        data_uri,
        "--evaluation",
        evaluation,
        "--json",
    )
    promoted = _cloudguard(
        env, workdir, "promote", "--evaluation", evaluation, "--json"
    )

    readings = load_readings(dataset_path, (HEAT_DISSIPATION_UDI, *HEALTHY_UDIS))
    service_env = {**env, "CLOUDGUARD_API_KEYS": api_keys_setting("e2e", API_KEY)}
    service = ServiceProcess(
        service_env, api_key=API_KEY, cwd=workdir, log_path=workdir / "serve.log"
    )
    with service:
        predictions = service.predict([item.reading for item in readings])
        service.api_key = "wrong-key"
        status, _ = service.request(
            "POST", "/v1/predict", {"readings": [readings[0].reading]}
        )
        exit_code = service.stop()
    return Flow(trained, promoted, readings, predictions, status, exit_code)


@pytest.mark.slow
def test_train_registers_a_version_and_says_where(flow: Flow) -> None:
    assert {"run_id", "version", "model_uri"} <= set(flow.train)
    assert flow.train["model_uri"].startswith("models:/cloudguard-failure")


@pytest.mark.slow
def test_promote_makes_the_first_version_champion(flow: Flow) -> None:
    assert flow.promote["promoted"] is True


@pytest.mark.slow
def test_service_scores_every_reading_with_the_champion(flow: Flow) -> None:
    predictions = flow.predictions["predictions"]

    assert str(flow.predictions["model_version"]) == str(flow.train["version"])
    assert len(predictions) == len(flow.readings)
    for prediction in predictions:
        assert 0.0 <= prediction["failure_probability"] <= 1.0
        assert isinstance(prediction["failure"], bool)


@pytest.mark.slow
def test_heat_dissipation_failure_scores_above_healthy_readings(flow: Flow) -> None:
    by_udi = {
        item.udi: prediction["failure_probability"]
        for item, prediction in zip(
            flow.readings, flow.predictions["predictions"], strict=True
        )
    }

    failing = by_udi.pop(HEAT_DISSIPATION_UDI)
    assert failing > max(by_udi.values())
    assert flow.predictions["predictions"][0]["failure"] is True


@pytest.mark.slow
def test_service_refuses_a_wrong_key(flow: Flow) -> None:
    assert flow.unauthorised_status == 401


@pytest.mark.slow
def test_service_stops_cleanly_on_sigterm(flow: Flow) -> None:
    assert flow.service_exit_code == 0
