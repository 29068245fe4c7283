"""Hot reload against a real `cloudguard-serve` process and a real tracking
server (tests/support/mlflow_server.py), under steady load.

One tracking server and one service for the module: both take seconds to
start. The last test kills the tracking server.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import (
    KEY,
    Load,
    Served,
    Trained,
    dataset_readings,
    register_copy,
    set_alias,
    start_server,
)
from tests.support.mlflow_server import MlflowServer, mlflow_server

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def tracking(trained: Trained, registry_dir: Path) -> Iterator[MlflowServer]:
    """A tracking server over the registry the session model lives in."""
    with mlflow_server(registry_dir) as server:
        yield server


@pytest.fixture(scope="module")
def via_server(trained: Trained, tracking: MlflowServer) -> Trained:
    """The trained model, reached through the tracking server."""
    set_alias(trained, "champion", trained.version)
    return Trained(tracking.url, trained.version, trained.source, trained.run_id)


@pytest.fixture(scope="module")
def served(
    via_server: Trained, tmp_path_factory: pytest.TempPathFactory, key_hash: str
) -> Iterator[Served]:
    server = start_server(
        tmp_path_factory.mktemp("reload"),
        key_hash,
        via_server.tracking_uri,
        CLOUDGUARD_POLL_INTERVAL_S=0.5,
        CLOUDGUARD_REGISTRY_TIMEOUT_S=2,
        CLOUDGUARD_INFERENCE_LOG=0,
    )
    yield server
    server.stop()


def ready_details(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/health/ready", timeout=5).json())


def test_five_alias_moves_under_load_drop_nothing_and_serve_the_champion(
    via_server: Trained, served: Served, dataset_path: Path
) -> None:
    versions = [register_copy(via_server) for _ in range(5)]
    # (version, alias set at, reload answered at): the service may serve a
    # version from its alias move until the next move's reload has answered.
    timeline = [(via_server.version, 0.0, 0.0)]

    with Load(served.url, dataset_readings(dataset_path, 300)) as load:
        for version in versions:
            time.sleep(0.8)
            set_at = time.monotonic()
            set_alias(via_server, "champion", version)
            answer = httpx.post(f"{served.url}/admin/reload", headers=AUTH, timeout=60)
            assert answer.json()["model_version"] == version
            timeline.append((version, set_at, time.monotonic()))
        time.sleep(0.8)

    assert load.errors == []
    assert len(load.outcomes) > 100
    assert {o.status for o in load.outcomes} == {200}
    for outcome in load.outcomes:
        allowed = {
            version
            for i, (version, set_at, _) in enumerate(timeline)
            if set_at <= outcome.ended
            and (i + 1 == len(timeline) or timeline[i + 1][2] >= outcome.started)
        }
        assert outcome.version in allowed, (outcome, timeline)
    assert {o.version for o in load.outcomes} == {via_server.version, *versions}


def test_polling_follows_the_alias_without_a_nudge(
    via_server: Trained, served: Served
) -> None:
    newer = register_copy(via_server)

    set_alias(via_server, "champion", newer)
    deadline = time.monotonic() + 60
    while ready_details(served.url)["model"]["version"] != newer:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    metrics = httpx.get(f"{served.url}/metrics").text
    assert f'cloudguard_model_info{{alias="champion",version="{newer}"}} 1.0' in metrics


def test_a_broken_version_keeps_the_last_good_model(
    trained: Trained, via_server: Trained, served: Served, registry_dir: Path
) -> None:
    from cloudguard_model import names
    from mlflow import MlflowClient

    good = ready_details(served.url)["model"]["version"]
    # The REST server refuses a local source outside a run; the store does not.
    client = MlflowClient(trained.tracking_uri, registry_uri=trained.tracking_uri)
    empty = registry_dir / "not-a-model"
    empty.mkdir(exist_ok=True)
    broken = str(client.create_model_version(names.MODEL_NAME, str(empty)).version)

    set_alias(via_server, "champion", broken)
    answer = httpx.post(f"{served.url}/admin/reload", headers=AUTH, timeout=60).json()
    scored = httpx.post(
        f"{served.url}/v1/predict",
        json={"readings": [strained_reading()]},
        headers=AUTH,
    )
    details = ready_details(served.url)
    metrics = httpx.get(f"{served.url}/metrics").text
    set_alias(via_server, "champion", good)

    assert answer["swapped"] is False
    assert answer["model_version"] == good
    assert f"version {broken} failed to load" in answer["last_error"]
    assert scored.status_code == 200
    assert scored.json()["model_version"] == good
    assert details["ready"] is True
    assert details["model"]["serving_last_good"] is True
    assert 'cloudguard_model_reloads_total{alias="champion",outcome="failure"}' in (
        metrics
    )


def strained_reading() -> dict[str, Any]:
    return {
        "product_type": "L",
        "air_temperature_k": 298.9,
        "process_temperature_k": 309.1,
        "rotational_speed_rpm": 2861,
        "torque_nm": 4.6,
        "tool_wear_min": 143,
    }


def test_serving_continues_when_the_tracking_server_dies(
    via_server: Trained, served: Served, tracking: MlflowServer, dataset_path: Path
) -> None:
    serving = ready_details(served.url)["model"]["version"]

    with Load(served.url, dataset_readings(dataset_path, 200)) as load:
        time.sleep(1.0)
        tracking.kill()
        time.sleep(4.0)
        details = ready_details(served.url)
        metrics = httpx.get(f"{served.url}/metrics").text
        time.sleep(1.0)

    assert load.errors == []
    assert len(load.outcomes) > 50
    assert {o.status for o in load.outcomes} == {200}
    assert {o.version for o in load.outcomes} == {serving}
    assert details["ready"] is True
    assert details["model"]["registry_ok"] is False
    assert "registry check failed" in details["model"]["last_error"]
    assert 'cloudguard_registry_up{alias="champion"} 0.0' in metrics
