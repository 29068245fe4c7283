"""Every promotion rule of issue 4, against a real MLflow server on SQLite.

One server and one set of registered subjects per module; each test arranges
the aliases it needs, runs the gate, and checks the record and the registry.
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudguard_model import gate
from cloudguard_model.decision import DecisionRecord
from cloudguard_model.errors import GateError
from cloudguard_model.evaluation import EvaluationError
from cloudguard_model.registry import RegistryError
from mlflow_server import MlflowServer, free_port, mlflow_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with mlflow_server(tmp_path_factory.mktemp("mlflow-sqlite")) as running:
        yield running


@pytest.fixture(scope="module")
def versions(
    server: MlflowServer, kit: Any, evaluation_set: Any, shuffled_label_config: Any
) -> dict[str, str]:
    """Register every subject once; name -> version."""
    sha = evaluation_set.sha256
    subjects = {
        "champion": kit.CHAMPION,
        "better": kit.BETTER,
        "better_twin": kit.BETTER,
        "worse": kit.WORSE,
        "tie": kit.CHAMPION,
        "never_fails": kit.NEVER_FAILS,
        "shuffled": shuffled_label_config,
        "slice_broken": kit.SLICE_BROKEN,
    }
    found = {
        name: kit.register(server.url, config, evaluation_sha256=sha, label=name)
        for name, config in subjects.items()
    }
    found["no_holdout"] = kit.register(
        server.url, kit.BETTER, evaluation_sha256="", label="no_holdout"
    )
    found["trained_on_eval"] = kit.register(
        server.url,
        kit.BETTER,
        evaluation_sha256=sha,
        data_sha256=sha,
        label="trained_on_eval",
    )
    return found


def _run(
    kit: Any,
    server: MlflowServer,
    tmp_path: Path,
    evaluation_set: Any,
    **arrange: str | None,
) -> DecisionRecord:
    kit.set_aliases(server.url, **arrange)
    settings = kit.settings(server.url, tmp_path)
    return gate.promote(settings, evaluation_uri=evaluation_set.uri)


def _check(record: DecisionRecord, name: str) -> dict[str, Any]:
    return next(check for check in record.checks if check["name"] == name)


def test_better_challenger_is_promoted_and_old_champion_becomes_previous(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=versions["champion"], challenger=versions["better"], previous=None,
    )  # fmt: skip

    assert record.promoted
    assert record.outcome == "promoted"
    assert kit.aliases_of(server.url)["champion"] == versions["better"]
    assert kit.aliases_of(server.url)["previous"] == versions["champion"]
    assert record.aliases_after["champion"] == versions["better"]
    assert record.evaluation["sha256"] == evaluation_set.sha256
    assert {check["status"] for check in record.checks} <= {"pass", "skipped"}
    stored = list((tmp_path / "decisions").rglob("records/*.json"))
    assert len(stored) == 1
    assert json.loads(stored[0].read_text())["promoted"] is True


def test_decision_record_is_attached_to_the_challenger_run(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    from mlflow import MlflowClient

    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=versions["champion"], challenger=versions["worse"],
    )  # fmt: skip

    client = MlflowClient(tracking_uri=server.url)
    run_id = record.challenger["run_id"]
    logged = client.download_artifacts(
        run_id, f"gate/{record.file_name}", str(tmp_path)
    )
    assert json.loads(Path(logged).read_text())["decision_id"] == record.decision_id
    assert record.code_commit


def test_worse_challenger_is_rejected_and_nothing_moves(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=versions["champion"], challenger=versions["worse"], previous=None,
    )  # fmt: skip

    assert not record.promoted
    assert record.outcome == "rejected"
    assert _check(record, "primary")["status"] == "fail"
    assert kit.aliases_of(server.url).get("champion") == versions["champion"]
    assert "previous" not in kit.aliases_of(server.url)


def test_tie_keeps_the_champion(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=versions["champion"], challenger=versions["tie"],
    )  # fmt: skip

    primary = _check(record, "primary")
    assert primary["challenger"] == primary["champion"]
    assert primary["status"] == "fail"
    assert not record.promoted
    assert kit.aliases_of(server.url)["champion"] == versions["champion"]


def test_never_fails_predictor_is_rejected_despite_high_accuracy(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=versions["champion"], challenger=versions["never_fails"],
    )  # fmt: skip

    assert record.challenger["metrics"]["accuracy"] > 0.96
    assert not record.promoted
    assert _check(record, "floor:recall")["status"] == "fail"
    assert kit.aliases_of(server.url)["champion"] == versions["champion"]


def test_never_fails_predictor_is_rejected_even_as_first_promotion(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=None, previous=None, challenger=versions["never_fails"],
    )  # fmt: skip

    assert record.champion is None
    assert not record.promoted
    assert "champion" not in kit.aliases_of(server.url)


def test_shuffled_label_model_is_rejected(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=versions["champion"], challenger=versions["shuffled"],
    )  # fmt: skip

    assert not record.promoted
    assert _check(record, "floor:pr_auc")["status"] == "fail"
    assert kit.aliases_of(server.url)["champion"] == versions["champion"]


def test_slice_regression_is_rejected_although_overall_metrics_improve(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=versions["worse"], challenger=versions["slice_broken"],
    )  # fmt: skip

    failed = [check["name"] for check in record.checks if check["status"] == "fail"]
    assert failed == ["slice:Type=H:brier"]
    assert _check(record, "primary")["status"] == "pass"
    assert kit.aliases_of(server.url)["champion"] == versions["worse"]


def test_first_promotion_is_judged_by_the_floors(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    record = _run(
        kit, server, tmp_path, evaluation_set,
        champion=None, previous=None, challenger=versions["better"],
    )  # fmt: skip

    assert record.promoted
    assert record.champion is None
    assert "first promotion" in record.reason
    assert _check(record, "primary")["status"] == "skipped"
    assert _check(record, "floor:recall")["status"] == "pass"
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == versions["better"]
    assert "previous" not in aliases


def test_champion_whose_version_was_deleted_counts_as_first_promotion(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    from mlflow import MlflowClient

    doomed = kit.register(
        server.url, kit.WORSE, evaluation_sha256=evaluation_set.sha256, label="doomed"
    )
    kit.set_aliases(server.url, champion=doomed, previous=None)
    MlflowClient(tracking_uri=server.url).delete_model_version(
        "cloudguard-failure", doomed
    )

    record = _run(kit, server, tmp_path, evaluation_set, challenger=versions["better"])

    assert record.promoted
    assert record.champion is None
    assert kit.aliases_of(server.url)["champion"] == versions["better"]


@pytest.mark.parametrize("subject", ["no_holdout", "trained_on_eval"])
def test_model_that_may_have_seen_the_evaluation_rows_is_refused(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any, subject: str,
) -> None:  # fmt: skip
    with pytest.raises(EvaluationError, match=f"version {versions[subject]}"):
        _run(
            kit, server, tmp_path, evaluation_set,
            champion=versions["champion"], challenger=versions[subject],
        )  # fmt: skip

    assert kit.aliases_of(server.url)["champion"] == versions["champion"]


def test_same_scheduled_run_twice_promotes_once(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    kit.set_aliases(
        server.url, champion=versions["champion"], challenger=versions["better"]
    )
    settings = kit.settings(server.url, tmp_path)
    run_key = "2026-12-04T03:00:00Z"

    first = gate.promote(settings, evaluation_uri=evaluation_set.uri, run_key=run_key)
    kit.set_aliases(server.url, challenger=versions["better_twin"])
    second = gate.promote(settings, evaluation_uri=evaluation_set.uri, run_key=run_key)

    assert first.promoted
    assert not first.reused
    assert second.reused
    assert second.decision_id == first.decision_id
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == versions["better"]
    assert aliases["previous"] == versions["champion"]


def test_champion_moved_during_evaluation_aborts_the_slower_promotion(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    kit.set_aliases(
        server.url, champion=versions["champion"], challenger=versions["better"]
    )
    settings = kit.settings(server.url, tmp_path)
    outcomes: list[DecisionRecord] = []

    def other_pipeline_wins(stage: str) -> None:
        # The other run promotes between our evaluation and our alias move.
        if stage == "decided" and not outcomes:
            outcomes.append(
                gate.promote(
                    settings,
                    evaluation_uri=evaluation_set.uri,
                    challenger_version=versions["better_twin"],
                )
            )

    with pytest.raises(gate.ChampionMovedError, match="nothing moved"):
        gate.promote(
            settings, evaluation_uri=evaluation_set.uri, observer=other_pipeline_wins
        )

    assert outcomes[0].promoted
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == versions["better_twin"]
    assert aliases["previous"] == versions["champion"]


def test_rollback_returns_champion_to_previous(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    kit.set_aliases(
        server.url, champion=versions["better"], previous=versions["champion"]
    )
    settings = kit.settings(server.url, tmp_path)

    record = gate.rollback(settings)

    assert record.kind == "rollback"
    assert record.outcome == "rolled_back"
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == versions["champion"]
    assert aliases["previous"] == versions["better"]
    assert list((tmp_path / "decisions").rglob("records/*rollback*.json"))


def test_rollback_to_a_given_version(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    kit.set_aliases(server.url, champion=versions["better"], previous=None)

    gate.rollback(kit.settings(server.url, tmp_path), to_version=versions["worse"])

    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == versions["worse"]
    assert aliases["previous"] == versions["better"]


def test_rollback_without_previous_is_an_error(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
) -> None:  # fmt: skip
    kit.set_aliases(server.url, champion=versions["better"], previous=None)

    with pytest.raises(GateError, match="pass --to VERSION"):
        gate.rollback(kit.settings(server.url, tmp_path))

    assert kit.aliases_of(server.url)["champion"] == versions["better"]


def test_registry_down_mid_gate_moves_nothing_and_fails_fast(
    kit: Any, server: MlflowServer, versions: dict[str, str], tmp_path: Path,
    evaluation_set: Any,
) -> None:  # fmt: skip
    kit.set_aliases(
        server.url, champion=versions["champion"], challenger=versions["better"],
        previous=None,
    )  # fmt: skip
    settings = kit.settings(server.url, tmp_path)
    killed_at: list[float] = []

    def crash_the_server(stage: str) -> None:
        if stage == "decided":
            server.kill()
            killed_at.append(time.monotonic())

    try:
        with pytest.raises(RegistryError, match="tracking server"):
            gate.promote(
                settings, evaluation_uri=evaluation_set.uri, observer=crash_the_server
            )
        failed_after = time.monotonic() - killed_at[0]
    finally:
        server.restart()

    assert failed_after < settings.registry.worst_case_s()
    assert failed_after < 15
    aliases = kit.aliases_of(server.url)
    assert aliases["champion"] == versions["champion"]
    assert "previous" not in aliases


def test_dead_tracking_server_fails_the_gate_within_seconds(
    kit: Any, tmp_path: Path, evaluation_set: Any
) -> None:
    # Nothing listens on this loopback port: the server is down from the start.
    settings = kit.settings(f"http://127.0.0.1:{free_port()}", tmp_path)

    started = time.monotonic()
    with pytest.raises(RegistryError, match="tracking server"):
        gate.promote(settings, evaluation_uri=evaluation_set.uri)
    elapsed = time.monotonic() - started

    assert elapsed < 15
    assert not (tmp_path / "decisions").exists()
