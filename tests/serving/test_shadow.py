"""Shadow scoring: answers from the champion only, both outputs logged, shed
under overload, and the summary command that the gate can read."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cloudguard_serving import Settings, create_app
from cloudguard_serving.auth import hash_key
from cloudguard_serving.shadow import summarise
from litestar.testing import TestClient

from tests.serving.conftest import (
    KEY,
    Trained,
    dataset_readings,
    register_copy,
    set_alias,
)

AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def challenger(trained: Trained) -> str:
    version = register_copy(trained)
    set_alias(trained, "challenger", version)
    set_alias(trained, "champion", trained.version)
    return version


def shadow_app(trained: Trained, log: Path, **overrides: Any) -> Any:
    settings = Settings(
        tracking_uri=trained.tracking_uri,
        api_keys=f"plant-a={hash_key(KEY)}",
        shadow_share=1.0,
        inference_dir=str(log),
        log_flush_interval_s=3600,
        spool_dir=str(log / "spool"),
        **overrides,
    )
    return create_app(settings)


def wait_for(client: Any, alias_key: str) -> None:
    deadline = time.monotonic() + 60
    while client.get("/health/ready").json().get(alias_key, {}).get("version") is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def logged_records(spool: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in spool.rglob("*.jsonl")
        for line in path.read_text().splitlines()
    ]


def test_shadow_logs_both_models_while_answers_come_from_the_champion(
    trained: Trained, challenger: str, tmp_path: Path, dataset_path: Path
) -> None:
    log = tmp_path / "log"
    rows = dataset_readings(dataset_path, 40)
    with TestClient(shadow_app(trained, log)) as client:
        wait_for(client, "model")
        wait_for(client, "shadow")
        answers = [
            client.post("/v1/predict", json={"readings": rows[i : i + 4]}, headers=AUTH)
            for i in range(0, 40, 4)
        ]
        time.sleep(1.0)  # shadow work runs after the answers
        metrics = client.get("/metrics").text
    records = logged_records(log)  # shutdown flushed the log

    assert {a.json()["model_version"] for a in answers} == {trained.version}
    shadow = [r for r in records if r["kind"] == "shadow"]
    served = [r for r in records if r["kind"] == "prediction"]
    assert len(served) == 40
    assert len(shadow) == 40
    assert {r["model_version"] for r in shadow} == {trained.version}
    assert {r["challenger_version"] for r in shadow} == {challenger}
    by_id = {(r["request_id"], r["inputs"]["machine_id"]): r for r in served}
    for record in shadow:
        champion = by_id[(record["request_id"], record["machine_id"])]
        assert record["champion_probability"] == champion["failure_probability"]
    assert "cloudguard_shadow_scored_readings_total 40.0" in metrics

    summary = summarise(records)
    (pair,) = summary["pairs"]
    assert pair["readings"] == 40
    assert pair["agreement"] == 1.0  # same artifacts under two versions


def test_shadow_sheds_itself_under_overload_and_answers_still_flow(
    trained: Trained, challenger: str, tmp_path: Path, dataset_path: Path
) -> None:
    rows = dataset_readings(dataset_path, 200)
    app = shadow_app(trained, tmp_path / "log", shadow_queue_limit=20)
    with TestClient(app) as client:
        wait_for(client, "model")
        wait_for(client, "shadow")

        def call(start: int) -> int:
            batch = rows[start % 180 : start % 180 + 20]
            answer = client.post("/v1/predict", json={"readings": batch}, headers=AUTH)
            return answer.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(0, 2000, 10)))
        time.sleep(1.0)
        metrics = client.get("/metrics").text

    shed = metric_value(metrics, "cloudguard_shadow_shed_readings_total")
    scored = metric_value(metrics, "cloudguard_shadow_scored_readings_total")
    assert set(statuses) == {200}
    assert shed > 0
    assert shed + scored == 200 * 20


def metric_value(text: str, name: str) -> float:
    (line,) = [x for x in text.splitlines() if x.startswith(f"{name} ")]
    return float(line.split()[1])


def test_shadow_summary_command_reads_a_log_directory(tmp_path: Path) -> None:
    from cloudguard_cli.main import app
    from typer.testing import CliRunner

    log = tmp_path / "log" / "date=2026-01-01" / "model_version=3"
    log.mkdir(parents=True)
    lines = [
        {
            "kind": "shadow",
            "model_version": "3",
            "challenger_version": "4",
            "champion_probability": 0.1,
            "champion_failure": i < 2,
            "challenger_probability": 0.2,
            "challenger_failure": i < 4,
            "champion_score_ms": 1.0,
            "challenger_score_ms": 2.0 + i,
        }
        for i in range(10)
    ]
    lines.append({"kind": "prediction", "model_version": "3"})
    (log / "part-1.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")

    result = CliRunner().invoke(
        app, ["shadow", "summary", "--log", str(tmp_path / "log"), "--json"]
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    (pair,) = summary["pairs"]
    assert pair["readings"] == 10
    assert pair["agreement"] == 0.8
    assert pair["champion_alarm_rate"] == 0.2
    assert pair["challenger_alarm_rate"] == 0.4
    assert pair["mean_abs_probability_delta"] == pytest.approx(0.1)
    assert pair["challenger_score_ms_p50"] == pytest.approx(6.5)
