"""The registry lifecycle through the `cloudguard` CLI, as a pipeline runs it.

A real MLflow server on PostgreSQL, S3 from a moto server on 127.0.0.1 (the
evaluation set, decision records and the lease lock live there), the real
trainer for the challenger that should win, and each step as a subprocess.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudguard_model import names
from mlflow_server import MlflowServer, free_port, mlflow_server, postgres_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    # CI sets CLOUDGUARD_REQUIRE_POSTGRES=1: there a missing server fails loudly.
    pytest.mark.skipif(
        not postgres_available() and not os.environ.get("CLOUDGUARD_REQUIRE_POSTGRES"),
        reason="initdb/pg_ctl not on PATH",
    ),
]

BUCKET = names.DEFAULT_ARTIFACT_BUCKET
CLI = [str(Path(sys.executable).with_name("cloudguard"))]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with the artifact bucket."""
    import boto3

    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [Path(sys.executable).with_name("moto_server"), "-H", "127.0.0.1",
             "-p", str(port)],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.3)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-pg"), "postgresql") as running:
        yield running


@pytest.fixture(scope="module")
def env(
    server: MlflowServer, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Environment of each CLI step; it runs in a scratch working directory."""
    return {
        **os.environ,
        "CLOUDGUARD_TEST_CWD": str(tmp_path_factory.mktemp("cwd")),
        names.ENV_TRACKING_URI: server.url,
        names.ENV_S3_ENDPOINT: s3_endpoint,
        names.ENV_ARTIFACT_BUCKET: BUCKET,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    }


@pytest.fixture(scope="module")
def evaluation_uri(evaluation_set: Any, s3_endpoint: str) -> str:
    """The frozen evaluation set, stored in S3 as the pipeline stores it."""
    import boto3

    data = Path(evaluation_set.uri).read_bytes()
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=BUCKET, Key="evaluation/evaluation.csv", Body=data
    )
    return f"s3://{BUCKET}/evaluation/evaluation.csv"


@pytest.fixture(scope="module")
def training_csv(training_frame: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("train") / "train.csv"
    training_frame.to_csv(path, index=False)
    return path


def cli(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    """Run `cloudguard ARGS --json`; return (exit code, last JSON line, stderr)."""
    done = subprocess.run(
        [*CLI, *args, "--json"],
        env=env,
        cwd=env["CLOUDGUARD_TEST_CWD"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = done.stdout.strip().splitlines()
    payload = json.loads(lines[-1]) if lines else {}
    return done.returncode, payload, done.stderr


def test_lifecycle_on_postgres_with_real_trainer(
    kit: Any, server: MlflowServer, env: dict[str, str], evaluation_uri: str,
    evaluation_set: Any, training_csv: Path,
) -> None:  # fmt: skip
    sha = evaluation_set.sha256
    first = kit.register(server.url, kit.WORSE, evaluation_sha256=sha)
    twin_a = kit.register(server.url, kit.CHAMPION, evaluation_sha256=sha)
    twin_b = kit.register(server.url, kit.CHAMPION, evaluation_sha256=sha)

    # First promotion: no champion yet, the floors decide.
    kit.set_aliases(server.url, challenger=first)
    code, record, err = cli(env, "promote", "--evaluation", evaluation_uri)
    assert code == 0, err
    assert record["promoted"] is True
    assert record["champion"] is None

    # Two pipeline runs promote at once: exactly one moves the champion.
    command = [*CLI, "promote", "--evaluation", evaluation_uri, "--json"]
    runs = [
        subprocess.Popen(
            [*command, "--challenger", version],
            env=env,
            cwd=env["CLOUDGUARD_TEST_CWD"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in (twin_a, twin_b)
    ]
    results = [(run.wait(timeout=240), run.communicate()) for run in runs]
    codes = sorted(code for code, _ in results)
    assert codes[0] == 0, results
    assert codes[1] in (1, 3), results
    winner = [twin_a, twin_b][[code for code, _ in results].index(0)]
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == winner
    assert aliases["previous"] == first

    # The real trainer's challenger, registered and promoted by one scheduled
    # run that the CronWorkflow fires twice.
    run_key = "2026-12-04T03:00:00Z"
    trained = []
    for _ in range(2):
        code, result, err = cli(
            env, "train", "--data", str(training_csv), "--evaluation",
            evaluation_uri, "--run-key", run_key,
        )  # fmt: skip
        assert code == 0, err
        trained.append(result)
    assert trained[0]["version"] == trained[1]["version"]
    assert trained[1]["reused"] is True

    decisions = []
    for _ in range(2):
        code, record, err = cli(
            env, "promote", "--evaluation", evaluation_uri, "--run-key", run_key
        )
        decisions.append((code, record, err))
    (code_1, record_1, err_1), (code_2, record_2, _) = decisions
    assert code_1 == 0, err_1 + json.dumps(record_1)
    assert record_1["challenger"]["version"] == trained[0]["version"]
    assert record_2["reused"] is True
    assert record_2["decision_id"] == record_1["decision_id"]
    assert code_2 == 0
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == trained[0]["version"]
    assert aliases["previous"] == winner

    # Rollback puts the previous champion back, with a record.
    code, record, err = cli(env, "rollback", "--reason", "alarm storm on line 3")
    assert code == 0, err
    assert record["kind"] == "rollback"
    assert record["reason"] == "alarm storm on line 3"
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == winner
    assert aliases["previous"] == trained[0]["version"]


def test_rejected_promotion_exits_3_with_the_record_last(
    kit: Any, server: MlflowServer, env: dict[str, str], evaluation_uri: str,
    evaluation_set: Any,
) -> None:  # fmt: skip
    sha = evaluation_set.sha256
    champion = kit.register(server.url, kit.BETTER, evaluation_sha256=sha)
    never_fails = kit.register(server.url, kit.NEVER_FAILS, evaluation_sha256=sha)
    kit.set_aliases(server.url, champion=champion, challenger=never_fails)

    code, record, _ = cli(env, "promote", "--evaluation", evaluation_uri)

    assert code == 3
    assert record["promoted"] is False
    assert record["outcome"] == "rejected"
    assert kit.aliases_of(server.url)["champion"] == champion


def test_separate_gate_and_promote_steps_with_one_run_key_move_champion(
    kit: Any, server: MlflowServer, env: dict[str, str], evaluation_uri: str,
    evaluation_set: Any,
) -> None:  # fmt: skip
    sha = evaluation_set.sha256
    champion = kit.register(server.url, kit.WORSE, evaluation_sha256=sha)
    challenger = kit.register(server.url, kit.BETTER, evaluation_sha256=sha)
    kit.set_aliases(server.url, champion=champion, challenger=challenger)
    report = f"s3://{BUCKET}/reports/step-report.json"
    decision = f"s3://{BUCKET}/reports/step-decision.json"

    code, evaluated, err = cli(
        env, "evaluate", "--evaluation", evaluation_uri, "--out", report
    )
    assert code == 0, err
    assert evaluated["champion"]["version"] == champion
    run_key = "separate-steps-2026-12-04T05:00:00Z"
    code, decided, err = cli(
        env, "gate", "--report", report, "--out", decision, "--run-key", run_key
    )
    assert code == 0, err
    assert decided["promoted"] is True
    assert kit.aliases_of(server.url)["champion"] == champion  # gate moves nothing
    code, promoted, err = cli(
        env, "promote", "--decision", decision, "--run-key", run_key
    )

    assert code == 0, err
    assert promoted["decision_id"] == decided["decision_id"]
    assert kit.aliases_of(server.url)["champion"] == challenger
