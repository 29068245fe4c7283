"""The HTTP contract: scores, validation, error shape, auth, limits, metrics."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudguard_serving import Settings, create_app
from litestar.testing import TestClient

from tests.serving.conftest import KEY, Trained, dataset_readings, reading


def wait_ready(client: TestClient[Any]) -> None:
    import time

    deadline = time.monotonic() + 60
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health/ready").json()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def client(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from cloudguard_serving.auth import hash_key

    settings = Settings(
        tracking_uri=trained.tracking_uri,
        api_keys=f"plant-a={hash_key(KEY)}",
        inference_log=False,
        max_readings=50,
        max_body_bytes=20_000,
        spool_dir=str(tmp_path_factory.mktemp("spool")),
    )
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def predict(client: Any, auth: dict[str, str], *readings: dict[str, Any]) -> Any:
    return client.post("/v1/predict", json={"readings": list(readings)}, headers=auth)


def test_prediction_carries_scores_version_request_id_and_plant_terms(
    client: Any, auth: dict[str, str], trained: Trained
) -> None:
    hot = reading(
        product_type="L", rotational_speed_rpm=1400, torque_nm=70, tool_wear_min=200
    )
    answer = predict(
        client,
        auth,
        reading(machine_id="mill-7", timestamp="2026-03-01T10:00:00Z"),
        hot,
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["model_version"] == trained.version
    assert body["request_id"] == answer.headers["x-request-id"]
    normal, strained = body["predictions"]
    assert normal["machine_id"] == "mill-7"
    assert normal["timestamp"].startswith("2026-03-01T10:00:00")
    assert 0.0 <= normal["failure_probability"] < strained["failure_probability"] <= 1
    assert strained["failure"] is True
    assert strained["failure_mode"] in strained["mode_probabilities"]
    assert set(strained["mode_probabilities"]) == {"TWF", "HDF", "PWF", "OSF", "RNF"}
    assert len(strained["top_factors"]) == 3
    assert any("safe band" in f["description"] for f in strained["top_factors"])


def test_integers_and_floats_give_the_same_score(
    client: Any, auth: dict[str, str]
) -> None:
    as_int = predict(
        client, auth, reading(rotational_speed_rpm=1551, tool_wear_min=108)
    )
    as_float = predict(
        client, auth, reading(rotational_speed_rpm=1551.0, tool_wear_min=108.0)
    )

    assert as_int.json()["predictions"] == as_float.json()["predictions"]


def test_readings_are_assembled_by_name_not_key_order(
    client: Any, auth: dict[str, str]
) -> None:
    forward = reading(torque_nm=55.0, tool_wear_min=180)
    backward = dict(reversed(list(forward.items())))

    first = predict(client, auth, forward).json()["predictions"]
    second = predict(client, auth, backward).json()["predictions"]

    assert first == second


def test_concurrent_requests_share_model_calls_and_get_their_own_scores(
    client: Any, auth: dict[str, str], dataset_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rows = dataset_readings(dataset_path, 200, skip=3000)
    before = client.get("/metrics").text

    def one(row: dict[str, Any]) -> float:
        answer = predict(client, auth, row).json()
        return float(answer["predictions"][0]["failure_probability"])

    with ThreadPoolExecutor(16) as pool:
        concurrent = list(pool.map(one, rows))
    after = client.get("/metrics").text
    alone = [one(row) for row in rows[:20]]

    calls = metric(after, "cloudguard_batch_readings_count") - metric(
        before, "cloudguard_batch_readings_count"
    )
    assert concurrent[:20] == alone
    assert calls < len(rows)


def metric(text: str, name: str) -> float:
    (line,) = [x for x in text.splitlines() if x.startswith(f"{name} ")]
    return float(line.split()[1])


def test_caller_request_id_is_reused(client: Any, auth: dict[str, str]) -> None:
    answer = client.post(
        "/v1/predict",
        json={"readings": [reading()]},
        headers={**auth, "X-Request-ID": "gw-42.7"},
    )

    assert answer.json()["request_id"] == "gw-42.7"


BAD_BODIES = {
    "empty": b"",
    "malformed": b'{"readings": [',
    "bare_nan": b'{"readings":[{"product_type":"L","air_temperature_k":NaN}]}',
    "bare_infinity": b'{"readings":[{"product_type":"L","torque_nm":Infinity}]}',
    "nan_string": None,
    "infinity_string": None,
    "number_as_string": None,
    "unknown_product_type": None,
    "extra_field": None,
    "missing_field": None,
    "no_readings": b'{"readings": []}',
    "array_body": b"[]",
    "null_body": b"null",
    "boolean_value": None,
}


def bad_body(name: str) -> bytes:
    import json

    raw = BAD_BODIES[name]
    if raw is not None:
        return raw
    row = reading()
    if name == "nan_string":
        row["torque_nm"] = "NaN"
    elif name == "infinity_string":
        row["air_temperature_k"] = "Infinity"
    elif name == "number_as_string":
        row["rotational_speed_rpm"] = "1551"
    elif name == "unknown_product_type":
        row["product_type"] = "X"
    elif name == "extra_field":
        row["spindle_colour"] = "red"
    elif name == "missing_field":
        del row["tool_wear_min"]
    elif name == "boolean_value":
        row["torque_nm"] = True
    return json.dumps({"readings": [row]}).encode()


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_bad_bodies_get_400_in_the_error_shape(
    client: Any, auth: dict[str, str], name: str
) -> None:
    answer = client.post(
        "/v1/predict",
        content=bad_body(name),
        headers={**auth, "content-type": "application/json"},
    )

    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"status", "error", "message", "request_id", "details"}
    assert body["error"] == "invalid_request"
    assert "Traceback" not in answer.text


def test_impossible_values_get_422_with_one_entry_per_field(
    client: Any, auth: dict[str, str]
) -> None:
    bad = reading(air_temperature_k=-5.0, torque_nm=1e9, tool_wear_min=-1)
    answer = predict(client, auth, reading(), bad)

    assert answer.status_code == 422
    fields = [detail["field"] for detail in answer.json()["details"]]
    assert sorted(fields) == [
        "readings[1].air_temperature_k",
        "readings[1].tool_wear_min",
        "readings[1].torque_nm",
    ]


def test_too_many_readings_is_413_naming_the_limit(
    client: Any, auth: dict[str, str]
) -> None:
    answer = predict(client, auth, *[reading()] * 51)

    assert answer.status_code == 413
    assert "limit is 50" in answer.json()["message"]


def test_too_large_body_is_413_naming_the_limit(
    client: Any, auth: dict[str, str]
) -> None:
    answer = client.post(
        "/v1/predict",
        content=b" " * 30_000,
        headers={**auth, "content-type": "application/json"},
    )

    assert answer.status_code == 413
    assert "20000 bytes" in answer.json()["message"]


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-key", f"Basic {KEY}", "Bearer", f"bearer{KEY}"]
)
def test_predict_without_a_valid_key_is_401(client: Any, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}

    answer = client.post("/v1/predict", json={"readings": [reading()]}, headers=headers)

    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_health_and_metrics_are_open_and_admin_is_not(client: Any) -> None:
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.post("/admin/reload").status_code == 401
    assert client.get("/v1/drift").status_code == 401


def test_metrics_expose_requests_latency_decisions_and_version(
    client: Any, auth: dict[str, str], trained: Trained
) -> None:
    predict(client, auth, reading())
    text = client.get("/metrics").text

    assert (
        'cloudguard_http_requests_total{method="POST",route="/v1/predict",status="200"}'
        in text
    )
    assert "cloudguard_http_request_duration_seconds_bucket" in text
    assert (
        f'cloudguard_predictions_total{{decision="no_failure",model_version="{trained.version}"}}'
        in text
    )
    assert (
        f'cloudguard_model_info{{alias="champion",version="{trained.version}"}} 1.0'
        in text
    )
    assert 'cloudguard_model_reloads_total{alias="champion",outcome="success"}' in text
    assert "cloudguard_inference_log_queue_records" in text
    assert "cloudguard_inference_log_dropped_records_total" in text


def test_drift_reports_psi_per_feature_and_grows_when_inputs_shift(
    client: Any, auth: dict[str, str], dataset_path: Path
) -> None:
    rows = dataset_readings(dataset_path, 2000)
    for start in range(0, len(rows), 50):
        predict(client, auth, *rows[start : start + 50])
    typical = client.get("/v1/drift", headers=auth).json()
    for start in range(0, len(rows), 50):
        hot = [dict(row, air_temperature_k=330.0) for row in rows[start : start + 50]]
        predict(client, auth, *hot)
    shifted = client.get("/v1/drift", headers=auth).json()

    assert typical["window_readings"] == 2000
    assert typical["psi"]["torque_nm"] < 0.1
    assert shifted["psi"]["air_temperature_k"] > typical["psi"]["air_temperature_k"] + 1
    assert shifted["psi"]["torque_nm"] < 0.1
    assert "cloudguard_feature_drift_psi" in client.get("/metrics").text


def test_openapi_documents_the_predict_body(client: Any) -> None:
    schema = client.get("/schema/openapi.json").json()

    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]
    reading_schema = body["content"]["application/json"]["schema"]["properties"][
        "readings"
    ]["items"]
    assert reading_schema["additionalProperties"] is False
    assert "torque_nm" in reading_schema["required"]


def test_no_model_means_not_ready_and_503_but_alive(tmp_path: Any) -> None:
    from tests.serving.conftest import free_port

    settings = Settings(
        tracking_uri=f"http://127.0.0.1:{free_port()}",
        auth=False,
        inference_log=False,
        registry_timeout_s=1,
        registry_max_retries=0,
        spool_dir=str(tmp_path),
    )
    with TestClient(create_app(settings)) as test_client:
        ready = test_client.get("/health/ready")
        answer = test_client.post("/v1/predict", json={"readings": [reading()]})
        live = test_client.get("/health/live")

    assert ready.status_code == 503
    assert ready.json()["model"]["version"] is None
    assert answer.status_code == 503
    assert answer.json()["error"] == "unavailable"
    assert live.status_code == 200


def test_a_bare_hash_as_api_keys_stops_the_server_with_one_line(tmp_path) -> None:
    env = {**os.environ, "CLOUDGUARD_API_KEYS": "0" * 64, "CLOUDGUARD_PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "cloudguard_serving"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 2
    assert "CLOUDGUARD_API_KEYS" in done.stderr
    assert "gateway=sha256hex" in done.stderr
    assert "Traceback" not in done.stderr
