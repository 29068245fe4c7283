"""The gate's shadow check, fed by the service's own shadow summary."""

import json
from pathlib import Path
from typing import Any

import pytest
from cloudguard_model.evaluation import EvaluationReport, ModelScore
from cloudguard_model.gate import GateSettings, judge
from cloudguard_model.policy import load_policy
from cloudguard_model.shadow_check import (
    ShadowRule,
    ShadowSummaryError,
    load_summary,
    shadow_checks,
)
from cloudguard_serving.shadow import summarise

METRICS = {"pr_auc": 0.80, "recall": 0.80, "precision": 0.90, "brier": 0.010}
SLICE = {"pr_auc": 0.80, "brier": 0.010, "rows": 100.0, "positives": 3.0}


def _shadow_records(readings: int, disagreements: int, extra_alarms: int) -> list:
    records = []
    for index in range(readings):
        champion_alarm = index % 100 == 0
        challenger_alarm = champion_alarm != (index < disagreements)
        if extra_alarms and not champion_alarm and index >= readings - extra_alarms:
            challenger_alarm = True
        records.append(
            {
                "kind": "shadow",
                "model_version": "3",
                "challenger_version": "4",
                "champion_failure": champion_alarm,
                "challenger_failure": challenger_alarm,
                "champion_probability": 0.9 if champion_alarm else 0.01,
                "challenger_probability": 0.9 if challenger_alarm else 0.01,
                "champion_score_ms": 0.4,
                "challenger_score_ms": 0.5,
            }
        )
    return records


def _report() -> EvaluationReport:
    per_type = {value: dict(SLICE) for value in ("L", "M", "H")}
    champion = ModelScore("3", None, 0.5, dict(METRICS), per_type)
    better = {**METRICS, "pr_auc": 0.85}
    challenger = ModelScore("4", None, 0.5, better, per_type)
    return EvaluationReport(
        "eval.csv", "ab" * 32, 2000, 39, "Type", challenger, champion, "", "now"
    )


def _failed(summary: dict[str, Any]) -> set[str]:
    checks = shadow_checks(ShadowRule(), summary, champion="3", challenger="4")
    return {check.name for check in checks if check.status == "fail"}


def test_agreeing_challenger_passes_every_shadow_check() -> None:
    summary = summarise(_shadow_records(1000, disagreements=2, extra_alarms=0))

    assert _failed(summary) == set()


def test_too_few_live_readings_fail_the_shadow_check() -> None:
    summary = summarise(_shadow_records(100, disagreements=0, extra_alarms=0))

    assert _failed(summary) == {"shadow:readings"}


def test_alarm_storm_in_shadow_blocks_an_otherwise_better_challenger() -> None:
    summary = summarise(_shadow_records(1000, disagreements=0, extra_alarms=40))

    settings = GateSettings(tracking_uri="sqlite:///unused.db")

    decision = judge(settings, _report(), load_policy(), None, summary)

    assert decision.promoted is False
    failed = {check["name"] for check in decision.to_dict()["checks"]
              if check["status"] == "fail"}  # fmt: skip
    assert failed == {"shadow:agreement", "shadow:alarm_rate"}


def test_summary_without_the_judged_pair_is_an_error() -> None:
    summary = {"pairs": [{"champion_version": "1", "challenger_version": "2"}]}

    with pytest.raises(ShadowSummaryError, match="challenger v4"):
        shadow_checks(ShadowRule(), summary, champion="3", challenger="4")


def test_unreadable_summary_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"readings": 3}))

    with pytest.raises(ShadowSummaryError, match="no `pairs` list"):
        load_summary(str(path))
