"""The promotion policy: which checks a challenger must pass, read from YAML.

The file is versioned in the repository and shipped as package data
(`cloudguard_model/policies/promotion.yaml`); docs/gate.md is its reference.
Applying a policy to an `EvaluationReport` is a pure function, so every rule
can be tested without a registry.
"""

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from cloudguard_model.errors import GateError
from cloudguard_model.evaluation import METRIC_DIRECTIONS, EvaluationReport
from cloudguard_model.policies import DEFAULT_POLICY_PATH

logger = logging.getLogger(__name__)

CheckKind = Literal["primary", "guard", "floor", "slice", "shadow"]
CheckStatus = Literal["pass", "fail", "skipped"]


class PolicyError(GateError):
    """The policy file is missing, malformed or names an unknown metric."""


@dataclass(frozen=True)
class Guard:
    metric: str
    max_regression: float


@dataclass(frozen=True)
class Floor:
    metric: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class SliceRule:
    column: str
    values: tuple[str, ...]
    max_regression: tuple[tuple[str, float], ...]
    """(metric, tolerance) pairs checked on every slice value."""


@dataclass(frozen=True)
class Policy:
    """A parsed promotion policy; `sha256` identifies the exact file."""

    version: int
    primary_metric: str
    min_improvement: float
    guards: tuple[Guard, ...]
    floors: tuple[Floor, ...]
    slices: SliceRule
    source: str
    sha256: str
    shadow: Mapping[str, Any] | None = None
    """The optional `shadow:` section, applied when a shadow summary is given
    (cloudguard_model.shadow_check)."""


@dataclass(frozen=True)
class CheckResult:
    """One check of the policy with the values it compared."""

    name: str
    kind: CheckKind
    metric: str
    status: CheckStatus
    challenger: float | None
    champion: float | None
    limit: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _metric(name: Any, where: str) -> str:
    if name not in METRIC_DIRECTIONS:
        raise PolicyError(
            f"{where}: unknown metric {name!r}; use one of {sorted(METRIC_DIRECTIONS)}"
        )
    return str(name)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where}: {value!r} is not a number")
    if not math.isfinite(value):
        raise PolicyError(f"{where}: {value!r} is not a finite number")
    if value < 0:
        raise PolicyError(f"{where}: {value!r} is negative; margins are >= 0")
    return float(value)


def parse_policy(data: Mapping[str, Any], source: str, sha256: str) -> Policy:
    """Validate the YAML document of a policy file."""
    try:
        primary = data["primary"]
        slices = data["slices"]
        policy = Policy(
            version=int(data["version"]),
            primary_metric=_metric(primary["metric"], "primary.metric"),
            min_improvement=_number(
                primary["min_improvement"], "primary.min_improvement"
            ),
            guards=tuple(
                Guard(
                    metric=_metric(guard["metric"], f"guards[{index}].metric"),
                    max_regression=_number(
                        guard["max_regression"], f"guards[{index}].max_regression"
                    ),
                )
                for index, guard in enumerate(data.get("guards") or [])
            ),
            floors=tuple(
                Floor(
                    metric=_metric(floor["metric"], f"floors[{index}].metric"),
                    min=None if "min" not in floor else float(floor["min"]),
                    max=None if "max" not in floor else float(floor["max"]),
                )
                for index, floor in enumerate(data.get("floors") or [])
            ),
            slices=SliceRule(
                column=str(slices["column"]),
                values=tuple(str(value) for value in slices["values"]),
                max_regression=tuple(
                    (
                        _metric(metric, f"slices.max_regression.{metric}"),
                        _number(limit, f"slices.max_regression.{metric}"),
                    )
                    for metric, limit in slices["max_regression"].items()
                ),
            ),
            source=source,
            sha256=sha256,
            shadow=data.get("shadow"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise PolicyError(
            f"policy {source}: missing or malformed field ({error!r}); see "
            "docs/gate.md for the format"
        ) from error
    for floor in policy.floors:
        if floor.min is None and floor.max is None:
            raise PolicyError(
                f"policy {source}: floor on {floor.metric} sets no min/max"
            )
    return policy


def load_policy(path: Path | str | None = None) -> Policy:
    """Read a policy file; the packaged promotion.yaml when no path is given."""
    location = Path(path) if path is not None else DEFAULT_POLICY_PATH
    try:
        raw = location.read_bytes()
    except OSError as error:
        raise PolicyError(f"cannot read policy {location}: {error}") from error
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise PolicyError(f"policy {location} is not valid YAML: {error}") from error
    if not isinstance(data, Mapping):
        raise PolicyError(f"policy {location} must be a YAML mapping")
    return parse_policy(data, str(location), hashlib.sha256(raw).hexdigest())


def _regression(metric: str, challenger: float, champion: float) -> float:
    """How much worse the challenger is (positive = worse)."""
    return (champion - challenger) * METRIC_DIRECTIONS[metric]


def _primary(policy: Policy, report: EvaluationReport) -> CheckResult:
    metric = policy.primary_metric
    new = report.challenger.metrics.get(metric)
    if report.champion is None:
        return CheckResult(
            "primary", "primary", metric, "skipped", new, None, None,
            f"no champion ({report.champion_note}); floors decide",
        )  # fmt: skip
    old = report.champion.metrics.get(metric)
    if new is None or old is None:
        return CheckResult(
            "primary", "primary", metric, "fail", new, old, policy.min_improvement,
            f"{metric} is undefined on the evaluation set",
        )  # fmt: skip
    improvement = -_regression(metric, new, old)
    # A tie never promotes, even with a zero margin.
    passed = improvement >= policy.min_improvement and improvement > 0
    return CheckResult(
        "primary", "primary", metric, "pass" if passed else "fail", new, old,
        policy.min_improvement,
        f"improvement {improvement:+.4f}, needs >= {policy.min_improvement:.4f}"
        + ("" if improvement > 0 else " (a tie keeps the champion)"),
    )  # fmt: skip


def _guard(guard: Guard, report: EvaluationReport) -> CheckResult:
    name = f"guard:{guard.metric}"
    new = report.challenger.metrics.get(guard.metric)
    if report.champion is None:
        return CheckResult(
            name, "guard", guard.metric, "skipped", new, None,
            guard.max_regression, "no champion to compare with",
        )  # fmt: skip
    old = report.champion.metrics.get(guard.metric)
    if new is None or old is None:
        return CheckResult(
            name, "guard", guard.metric, "fail", new, old, guard.max_regression,
            f"{guard.metric} is undefined on the evaluation set",
        )  # fmt: skip
    regression = _regression(guard.metric, new, old)
    passed = regression <= guard.max_regression
    return CheckResult(
        name, "guard", guard.metric, "pass" if passed else "fail", new, old,
        guard.max_regression,
        f"regression {regression:+.4f}, allowed <= {guard.max_regression:.4f}",
    )  # fmt: skip


def _floor(floor: Floor, report: EvaluationReport) -> CheckResult:
    name = f"floor:{floor.metric}"
    value = report.challenger.metrics.get(floor.metric)
    limit = floor.min if floor.min is not None else floor.max
    if value is None:
        return CheckResult(
            name, "floor", floor.metric, "fail", None, None, limit,
            f"{floor.metric} is undefined on the evaluation set",
        )  # fmt: skip
    failures = []
    if floor.min is not None and value < floor.min:
        failures.append(f"{value:.4f} is below the floor {floor.min:.4f}")
    if floor.max is not None and value > floor.max:
        failures.append(f"{value:.4f} is above the ceiling {floor.max:.4f}")
    bounds = " and ".join(
        text
        for text in (
            None if floor.min is None else f">= {floor.min:.4f}",
            None if floor.max is None else f"<= {floor.max:.4f}",
        )
        if text
    )
    return CheckResult(
        name, "floor", floor.metric, "fail" if failures else "pass", value, None,
        limit, "; ".join(failures) or f"{value:.4f} {bounds}",
    )  # fmt: skip


def _slice(
    rule: SliceRule, value: str, metric: str, limit: float, report: EvaluationReport
) -> CheckResult:
    name = f"slice:{rule.column}={value}:{metric}"
    slice_new = report.challenger.slices.get(value, {})
    new = slice_new.get(metric)
    if not slice_new.get("rows"):
        return CheckResult(
            name, "slice", metric, "fail", None, None, limit,
            f"slice {rule.column}={value} has no rows in the evaluation set; "
            "freeze a set that covers every product type",
        )  # fmt: skip
    if report.champion is None:
        return CheckResult(
            name, "slice", metric, "skipped", new, None, limit,
            "no champion to compare with",
        )  # fmt: skip
    old = report.champion.slices.get(value, {}).get(metric)
    if new is None and old is None and not slice_new.get("positives"):
        # Ranking metrics need a failure; the other slice metrics still judge it.
        return CheckResult(
            name, "slice", metric, "skipped", None, None, limit,
            f"slice {rule.column}={value} has no failures; {metric} is undefined",
        )  # fmt: skip
    if new is None or old is None:
        return CheckResult(
            name, "slice", metric, "fail", new, old, limit,
            f"{metric} is undefined on slice {rule.column}={value}",
        )  # fmt: skip
    regression = _regression(metric, new, old)
    passed = regression <= limit
    return CheckResult(
        name, "slice", metric, "pass" if passed else "fail", new, old, limit,
        f"regression {regression:+.4f}, allowed <= {limit:.4f}",
    )  # fmt: skip


def apply_policy(policy: Policy, report: EvaluationReport) -> list[CheckResult]:
    """Every check of the policy, in a fixed order, with its values."""
    if report.slice_column != policy.slices.column:
        raise PolicyError(
            f"report slices by {report.slice_column!r} but the policy by "
            f"{policy.slices.column!r}; re-run `cloudguard evaluate` with this policy"
        )
    checks = [_primary(policy, report)]
    checks += [_guard(guard, report) for guard in policy.guards]
    checks += [_floor(floor, report) for floor in policy.floors]
    checks += [
        _slice(policy.slices, value, metric, limit, report)
        for value in policy.slices.values
        for metric, limit in policy.slices.max_regression
    ]
    logger.info(
        "event=policy_applied policy_version=%s failed=%s",
        policy.version,
        ",".join(check.name for check in checks if check.status == "fail") or "-",
    )
    return checks
