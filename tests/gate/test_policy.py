"""The policy file and its checks, on hand-built evaluation reports."""

from pathlib import Path
from typing import Any

import pytest
from cloudguard_model.evaluation import EvaluationReport, ModelScore, compute_metrics
from cloudguard_model.policy import PolicyError, apply_policy, load_policy

GOOD = {"pr_auc": 0.80, "recall": 0.80, "precision": 0.90, "brier": 0.010}
SLICE = {"pr_auc": 0.80, "brier": 0.010, "rows": 100.0, "positives": 3.0}


def _score(version: str, metrics: dict[str, Any], **slices: Any) -> ModelScore:
    per_type = {value: dict(SLICE) for value in ("L", "M", "H")}
    for value, changes in slices.items():
        per_type[value].update(changes)
    return ModelScore(version, None, 0.5, {**GOOD, **metrics}, per_type)


def _report(challenger: ModelScore, champion: ModelScore | None) -> EvaluationReport:
    return EvaluationReport(
        "eval.csv", "ab" * 32, 2000, 39, "Type", challenger, champion, "", "now"
    )


def _statuses(report: EvaluationReport) -> dict[str, str]:
    return {check.name: check.status for check in apply_policy(load_policy(), report)}


def test_packaged_policy_loads_with_pr_auc_as_primary_metric() -> None:
    policy = load_policy()

    assert policy.primary_metric == "pr_auc"
    assert {floor.metric for floor in policy.floors} >= {"recall"}
    assert policy.slices.values == ("L", "M", "H")
    assert len(policy.sha256) == 64


def test_improvement_below_the_margin_is_rejected() -> None:
    report = _report(_score("2", {"pr_auc": 0.801}), _score("1", {}))

    assert _statuses(report)["primary"] == "fail"


def test_tie_is_rejected_even_with_a_zero_margin(tmp_path: Path) -> None:
    text = load_policy().source
    policy_file = tmp_path / "zero.yaml"
    policy_file.write_text(
        Path(text).read_text().replace("min_improvement: 0.005", "min_improvement: 0")
    )
    report = _report(_score("2", {}), _score("1", {}))

    checks = apply_policy(load_policy(policy_file), report)

    assert checks[0].name == "primary"
    assert checks[0].status == "fail"


def test_guard_regression_beyond_tolerance_is_rejected() -> None:
    report = _report(_score("2", {"pr_auc": 0.9, "recall": 0.70}), _score("1", {}))

    statuses = _statuses(report)

    assert statuses["primary"] == "pass"
    assert statuses["guard:recall"] == "fail"


def test_brier_is_judged_lower_is_better() -> None:
    report = _report(_score("2", {"pr_auc": 0.9, "brier": 0.005}), _score("1", {}))

    assert _statuses(report)["guard:brier"] == "pass"


def test_slice_without_failures_is_judged_on_brier_only() -> None:
    no_failures = {"pr_auc": None, "positives": 0.0}
    report = _report(
        _score("2", {"pr_auc": 0.9}, H={**no_failures, "brier": 0.05}),
        _score("1", {}, H=no_failures),
    )

    statuses = _statuses(report)

    assert statuses["slice:Type=H:pr_auc"] == "skipped"
    assert statuses["slice:Type=H:brier"] == "fail"


def test_first_promotion_checks_only_the_floors() -> None:
    report = _report(_score("1", {"recall": 0.3}), None)

    statuses = _statuses(report)

    assert statuses["primary"] == "skipped"
    assert statuses["floor:recall"] == "fail"


def test_never_fails_predictor_scores_high_accuracy_and_zero_recall() -> None:
    labels = [True] * 34 + [False] * 966

    metrics = compute_metrics(labels, [0.0] * 1000, [False] * 1000)

    assert metrics["accuracy"] == pytest.approx(0.966)
    assert metrics["recall"] == 0.0
    assert metrics["precision"] == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\n", "missing or malformed field"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_bad_policy_file_is_refused_with_the_reason(
    tmp_path: Path, text: str, message: str
) -> None:
    policy_file = tmp_path / "bad.yaml"
    policy_file.write_text(text)

    with pytest.raises(PolicyError, match=message):
        load_policy(policy_file)


def test_policy_naming_an_unknown_metric_is_refused(tmp_path: Path) -> None:
    packaged = Path(load_policy().source).read_text()
    policy_file = tmp_path / "typo.yaml"
    policy_file.write_text(packaged.replace("metric: pr_auc", "metric: prauc", 1))

    with pytest.raises(PolicyError, match="unknown metric 'prauc'"):
        load_policy(policy_file)
